"""Curves of the carbon-QoE tradeoff: candidate forms fitted on relative residuals, validated
(max residual, leave-one-out), else interpolated; and ``fit``, a profile's whole tradeoff
(operating points, frontier and curves). Library only (numpy; scipy imported when a form is fitted).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TypedDict

import numpy as np
from numpy.typing import ArrayLike, NDArray

from greenbench.methods import is_measurement
from greenbench.profile import QUALITY_DIRECTIONS, Profile
from greenbench.tradeoff.points import OperatingPoint, TradeoffError, operating_points, pareto_front

# ---------------------------------------------------------------------------------------------
# Curves: candidate forms, fitted on relative residuals, validated, else interpolated.
# ---------------------------------------------------------------------------------------------

DEFAULT_MAX_RESIDUAL = 0.15  # a fit whose max relative residual or held-out error exceeds this is rejected

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Form:
    """A candidate family y = f(x; theta). Fitted on x / x_scale and y / y_scale (the values span
    decades), then ``denorm`` maps the parameters back to physical units."""

    name: str
    expression: str
    params: tuple[str, ...]
    f: Callable[[FloatArray, FloatArray], FloatArray]
    guesses: Callable[[FloatArray, FloatArray], list[list[float]]]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    denorm: Callable[[FloatArray, float, float], FloatArray]  # (theta, x_scale, y_scale)
    scaled_axis: str = "y"  # the axis divided by its geometric mean before fitting


def _pos(x: FloatArray) -> FloatArray:
    return np.maximum(x, 1e-300)


def _energy_forms(v: str) -> tuple[Form, ...]:
    """Energy per item against a resource setting ``v`` (batch size b, concurrency c, request rate r):
    a fixed cost shared by the items served together (launch, weight reads, idle power, Python
    overhead) plus a per-item cost; or an empirical power law."""
    return (
        Form("amortised", f"E({v}) = e_inf_j + e0_j / {v}", ("e_inf_j", "e0_j"),
             lambda b, t: t[0] + t[1] / b,
             lambda b, y: [[y.min() * 0.5, y.max()], [0.0, y.max()]],
             (0.0, 0.0), (np.inf, np.inf), lambda t, xs, ys: t * ys),
        Form("power", f"E({v}) = c_j * {v}^(-k)", ("c_j", "k"),
             lambda b, t: t[0] * b ** (-t[1]),
             lambda b, y: [[y.max(), 0.5], [y.max(), 1.0]],
             (0.0, 0.0), (np.inf, 3.0), lambda t, xs, ys: t * [ys, 1.0]),
    )


def _latency_forms(v: str) -> tuple[Form, ...]:
    """Latency against a resource setting ``v``: a fixed overhead plus per-item compute (or
    queueing); or sublinear growth (parallel hardware absorbs part of the load)."""
    return (
        Form("linear", f"L({v}) = l0_ms + l1_ms * {v}", ("l0_ms", "l1_ms"),
             lambda b, t: t[0] + t[1] * b,
             lambda b, y: [[y.min(), 0.0], [y.min(), (y.max() - y.min()) / max(b.max() - 1, 1)]],
             (0.0, 0.0), (np.inf, np.inf), lambda t, xs, ys: t * ys),
        Form("power", f"L({v}) = c_ms * {v}^k", ("c_ms", "k"),
             lambda b, t: t[0] * b ** t[1],
             lambda b, y: [[y.min(), 0.3], [y.min(), 1.0]],
             (0.0, 0.0), (np.inf, 3.0), lambda t, xs, ys: t * [ys, 1.0]),
    )


ENERGY_BATCH_FORMS = _energy_forms("b")
LATENCY_BATCH_FORMS = _latency_forms("b")
# Accuracy (or exact match, a share too) against energy per item across model sizes: diminishing
# returns in log energy.
ACCURACY_ENERGY_FORMS = (
    Form("log", "A(E) = a + b * ln(E / 1 J)", ("a", "b"),
         lambda e, t: t[0] + t[1] * np.log(_pos(e)),
         lambda e, y: [[y.mean(), 0.1]],
         (-np.inf, 0.0), (np.inf, np.inf),
         lambda t, xs, ys: np.array([t[0] - t[1] * np.log(xs), t[1]]), "x"),
    Form("saturating", "A(E) = a_max - c * (E / 1 J)^(-k)", ("a_max", "c", "k"),
         lambda e, t: t[0] - t[1] * _pos(e) ** (-t[2]),
         lambda e, y: [[min(1.0, y.max() + 0.01), 0.1, 0.5], [min(1.0, y.max() + 0.05), 0.3, 1.0]],
         (0.0, 0.0, 1e-3), (1.0, np.inf, 5.0),
         lambda t, xs, ys: np.array([t[0], t[1] * xs ** t[2], t[2]]), "x"),
    Form("logistic", "A(E) = a_lo + (a_hi - a_lo) / (1 + (E / e50_j)^(-s))",
         ("a_lo", "a_hi", "e50_j", "s"),
         lambda e, t: t[0] + (t[1] - t[0]) / (1.0 + (_pos(e) / t[2]) ** (-t[3])),
         lambda e, y: [[y.min() * 0.9, min(1.0, y.max() * 1.02), 1.0, 1.0],
                       [y.min() * 0.5, min(1.0, y.max() * 1.05), 0.3, 2.0]],
         (0.0, 0.0, 1e-6, 0.05), (1.0, 1.0, 1e6, 20.0),
         lambda t, xs, ys: np.array([t[0], t[1], t[2] * xs, t[3]]), "x"),
)
# Perplexity against energy per item across model sizes: it falls as models grow (lower is
# better), with diminishing returns; never below 1. Energy is rescaled by its geometric mean.
PERPLEXITY_ENERGY_FORMS = (
    Form("log", "PPL(E) = a - b * ln(E / 1 J)", ("a", "b"),
         lambda e, t: t[0] - t[1] * np.log(_pos(e)),
         lambda e, y: [[y.mean(), 0.1 * y.mean()], [y.mean(), y.max() - y.min()]],
         (-np.inf, 0.0), (np.inf, np.inf),
         lambda t, xs, ys: np.array([t[0] + t[1] * np.log(xs), t[1]]), "x"),
    Form("power", "PPL(E) = c * (E / 1 J)^(-k)", ("c", "k"),
         lambda e, t: t[0] * _pos(e) ** (-t[1]),
         lambda e, y: [[y.mean(), 0.1], [y.mean(), 0.5]],
         (1e-12, 0.0), (np.inf, 5.0),
         lambda t, xs, ys: np.array([t[0] * xs ** t[1], t[1]]), "x"),
    Form("saturating", "PPL(E) = ppl_min + c * (E / 1 J)^(-k)", ("ppl_min", "c", "k"),
         lambda e, t: t[0] + t[1] * _pos(e) ** (-t[2]),
         lambda e, y: [[max(1.0, y.min() * 0.9), max(y.max() - y.min(), 1e-3), 0.5],
                       [max(1.0, y.min() * 0.5), y.max(), 1.0]],
         (1.0, 0.0, 1e-3), (np.inf, np.inf, 5.0),
         lambda t, xs, ys: np.array([t[0], t[1] * xs ** t[2], t[2]]), "x"),
)

# The resource axes of the per-model curves, as curve names write them: batch size (in-process),
# concurrency (a served model under a closed-loop load), request rate (open loop).
RESOURCE_AXES = {"batch_size": "batch", "concurrency": "concurrency", "request_rate_per_s": "rate"}
RESOURCE_WORDS = {"batch_size": "batch size", "concurrency": "concurrency (requests in flight)",
                  "request_rate_per_s": "request rate (requests/s)"}
_SYMBOL = {"batch_size": "b", "concurrency": "c", "request_rate_per_s": "r"}


def quality_curve_name(metric: str) -> str:
    """``accuracy_vs_energy``, ``perplexity_vs_energy``, ``exact_match_vs_energy``."""
    return f"{metric}_vs_energy"


@dataclass(frozen=True)
class Candidate:
    """One form tried on one curve, and what validation said about it."""

    form: str
    expression: str
    params: dict[str, float] | None  # None when the form could not be fitted
    residuals: tuple[float, ...] | None  # relative, (fit - measured) / measured, per point
    max_residual: float | None
    loo_max_error: float | None  # None when the held-out check could not run (see note)
    passed: bool
    note: str


@dataclass(frozen=True)
class Curve:
    """A curve y(x) over measured points: fitted with a validated form, or interpolated."""

    name: str  # <metric>_vs_energy | latency_vs_<axis> | energy_vs_<axis> (axis: batch, concurrency, rate)
    group: str | None  # "cnn-64 fp32 cpu" for per-model resource curves; None across models
    x_name: str
    y_name: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    point_labels: tuple[str, ...]
    energy_methods: tuple[str, ...]
    status: str  # fitted | interpolated | unavailable (a single point)
    form: str | None  # the kept form, "piecewise-linear" when interpolated, None if unavailable
    expression: str | None
    params: dict[str, float] | None  # fitted parameters (units in their names); None otherwise
    residuals: tuple[float, ...] | None  # of the kept fit; None when interpolated (0 by construction)
    max_residual: float | None
    loo_max_error: float | None
    reason: str
    candidates: tuple[Candidate, ...]
    log_y: bool  # interpolation space: log x always; log y for energy and latency

    def predict(self, x: ArrayLike) -> FloatArray:
        """y at x: the fitted form, or the interpolant (NaN outside the measured range: the
        interpolant never extrapolates)."""
        xa = np.asarray(x, dtype=float)
        if self.status == "fitted":
            # fit_curve gives every fitted curve its form and parameters
            assert self.form is not None and self.params is not None
            form = _FORMS[self.name][self.form]
            return form.f(xa, np.array([self.params[p] for p in form.params]))
        if self.status == "interpolated":
            xs, ys = np.log(self.x), np.asarray(self.y)
            ys = np.log(ys) if self.log_y else ys
            inside = (xa >= self.x[0]) & (xa <= self.x[-1])
            v = np.interp(np.log(_pos(xa)), xs, ys)
            v = np.exp(v) if self.log_y else v
            return np.where(inside, v, np.nan)
        return np.full(xa.shape, np.nan)


_FORMS: dict[str, dict[str, Form]] = {
    "accuracy_vs_energy": {f.name: f for f in ACCURACY_ENERGY_FORMS},
    "exact_match_vs_energy": {f.name: f for f in ACCURACY_ENERGY_FORMS},
    "perplexity_vs_energy": {f.name: f for f in PERPLEXITY_ENERGY_FORMS},
}
# (x, y) of each curve
_AXES: dict[str, tuple[str, str]] = {
    "accuracy_vs_energy": ("energy_j_per_item", "accuracy"),
    "exact_match_vs_energy": ("energy_j_per_item", "exact_match"),
    "perplexity_vs_energy": ("energy_j_per_item", "perplexity"),
}
for _axis, _short in RESOURCE_AXES.items():
    _FORMS[f"energy_vs_{_short}"] = {f.name: f for f in _energy_forms(_SYMBOL[_axis])}
    _FORMS[f"latency_vs_{_short}"] = {f.name: f for f in _latency_forms(_SYMBOL[_axis])}
    _AXES[f"energy_vs_{_short}"] = (_axis, "energy_j_per_item")
    _AXES[f"latency_vs_{_short}"] = (_axis, "latency_ms")
# Curves whose y is a share in [0, 1]: interpolated in log x, linear y (the others in log-log).
_LINEAR_Y = {"accuracy_vs_energy", "exact_match_vs_energy"}


def _rel(pred: FloatArray, y: FloatArray) -> FloatArray:
    return (pred - y) / np.maximum(np.abs(y), 1e-12)


def _fit_form(form: Form, x: FloatArray, y: FloatArray) -> FloatArray | None:
    """Least squares on relative residuals (values span decades); best of a few starts."""
    from scipy.optimize import least_squares

    xs = float(np.exp(np.mean(np.log(x)))) if form.scaled_axis == "x" else 1.0
    ys = float(np.exp(np.mean(np.log(y)))) if form.scaled_axis == "y" else 1.0
    xn, yn = x / xs, y / ys
    lo, hi = np.array(form.lower), np.array(form.upper)
    best = None
    for g in form.guesses(xn, yn):
        g = np.clip(np.asarray(g, dtype=float), lo, hi)
        try:
            with np.errstate(all="ignore"):
                r = least_squares(lambda t: _rel(form.f(xn, t), yn), g, bounds=(lo, hi),
                                  x_scale="jac", max_nfev=2000)
        except (ValueError, FloatingPointError):
            continue
        if np.all(np.isfinite(r.x)) and np.isfinite(r.cost) and (best is None or r.cost < best.cost):
            best = r
    if best is None:
        return None
    theta = np.asarray(form.denorm(best.x, xs, ys), dtype=float)
    with np.errstate(all="ignore"):
        ok = np.all(np.isfinite(theta)) and np.all(np.isfinite(form.f(x, theta)))
    return theta if ok else None


def _try_form(form: Form, x: FloatArray, y: FloatArray, tol: float) -> Candidate:
    n, p = len(x), len(form.params)
    base = dict(form=form.name, expression=form.expression)
    if n < p + 1:  # n == p fits exactly whatever the data: no evidence for the form
        return Candidate(**base, params=None, residuals=None, max_residual=None, loo_max_error=None,
                         passed=False, note=f"{n} points: a {p}-parameter form needs at least {p + 1}")
    theta = _fit_form(form, x, y)
    if theta is None:
        return Candidate(**base, params=None, residuals=None, max_residual=None, loo_max_error=None,
                         passed=False, note="the fit did not converge")
    res = _rel(form.f(x, theta), y)
    max_res = float(np.max(np.abs(res)))
    params = {name: float(v) for name, v in zip(form.params, theta, strict=True)}
    residuals = tuple(float(r) for r in res)
    if max_res > tol:
        return Candidate(**base, params=params, residuals=residuals, max_residual=max_res,
                         loo_max_error=None, passed=False,
                         note=f"max residual {max_res:.1%} > {tol:.0%}")
    if n < p + 2:  # each held-out fit would pass exactly through its p points
        return Candidate(**base, params=params, residuals=residuals, max_residual=max_res,
                         loo_max_error=None, passed=True,
                         note=f"max residual {max_res:.1%} <= {tol:.0%}; held-out check skipped "
                              f"({n} points, needs {p + 2}): judged on residuals only")
    errs = []
    for i in range(n):
        keep = np.arange(n) != i
        t_i = _fit_form(form, x[keep], y[keep])
        errs.append(np.inf if t_i is None else abs(float(_rel(form.f(x[i:i + 1], t_i), y[i:i + 1])[0])))
    worst = int(np.argmax(errs))
    if not np.isfinite(errs[worst]):
        return Candidate(**base, params=params, residuals=residuals, max_residual=max_res,
                         loo_max_error=None, passed=False,
                         note=f"leave-one-out fit without point {worst + 1} of {n} did not converge")
    loo = float(errs[worst])
    if loo > tol:
        return Candidate(**base, params=params, residuals=residuals, max_residual=max_res,
                         loo_max_error=loo, passed=False,
                         note=f"leave-one-out error {loo:.1%} > {tol:.0%} (point {worst + 1} of {n})")
    return Candidate(**base, params=params, residuals=residuals, max_residual=max_res,
                     loo_max_error=loo, passed=True,
                     note=f"max residual {max_res:.1%}, leave-one-out error {loo:.1%}, both <= {tol:.0%}")


class _CurveData(TypedDict):
    """The fields every curve of ``fit_curve`` has, whatever its status."""

    name: str
    group: str | None
    x_name: str
    y_name: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    point_labels: tuple[str, ...]
    energy_methods: tuple[str, ...]
    log_y: bool


def fit_curve(name: str, x: ArrayLike, y: ArrayLike, *, group: str | None = None,
              point_labels: Sequence[str] = (), energy_methods: Iterable[str] = (),
              max_residual: float = DEFAULT_MAX_RESIDUAL) -> Curve:
    """Try every candidate form of ``name``; keep the best validated one, else interpolate.

    Best: a form that passed the held-out check beats one judged on residuals alone; then the
    smaller held-out error (or max residual); then fewer parameters.
    """
    forms = _FORMS[name]
    x_name, y_name = _AXES[name]
    log_y = name not in _LINEAR_Y
    xs, ys, labels = _merge_duplicates(np.asarray(x, float), np.asarray(y, float), list(point_labels))
    common = _CurveData(name=name, group=group, x_name=x_name, y_name=y_name, x=tuple(map(float, xs)),
                        y=tuple(map(float, ys)), point_labels=tuple(labels),
                        energy_methods=tuple(sorted(set(energy_methods))), log_y=log_y)
    if len(xs) < 2:
        return Curve(**common, status="unavailable", form=None, expression=None, params=None,
                     residuals=None, max_residual=None, loo_max_error=None, candidates=(),
                     reason=f"{len(xs)} point(s): nothing to fit or interpolate")
    cands = tuple(_try_form(f, xs, ys, max_residual) for f in forms.values())
    passed = [c for c in cands if c.passed]
    if passed:
        best = min(passed, key=lambda c: (c.loo_max_error is None,
                                          c.loo_max_error if c.loo_max_error is not None else c.max_residual,
                                          len(forms[c.form].params)))
        return Curve(**common, status="fitted", form=best.form, expression=best.expression,
                     params=best.params, residuals=best.residuals, max_residual=best.max_residual,
                     loo_max_error=best.loo_max_error, candidates=cands,
                     reason=f"{best.form}: {best.note}")
    why = "; ".join(f"{c.form}: {c.note}" for c in cands)
    space = "log-log" if log_y else "log x"
    return Curve(**common, status="interpolated", form="piecewise-linear",
                 expression=f"piecewise-linear in {space} through the measured points, no extrapolation",
                 params=None, residuals=None, max_residual=None, loo_max_error=None,
                 candidates=cands, reason=f"no form passed ({why})")


def _merge_duplicates(x: FloatArray, y: FloatArray, labels: list[str]) -> tuple[FloatArray, FloatArray, list[str]]:
    """Sort by x; points sharing an x become their mean (an interpolant needs distinct x)."""
    if not labels:
        labels = [""] * len(x)
    order = np.lexsort((y, x))
    x, y, labels = x[order], y[order], [labels[i] for i in order]
    ux, uy, ul = [], [], []
    for v in np.unique(x):
        m = x == v
        ux.append(v)
        uy.append(float(np.mean(y[m])))
        ul.append(" + ".join(lab for lab, k in zip(labels, m, strict=True) if k))
    return np.array(ux), np.array(uy), ul


# ---------------------------------------------------------------------------------------------
# The whole tradeoff of a profile.
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tradeoff:
    points: list[OperatingPoint]
    frontier: list[OperatingPoint]
    excluded: list[str]
    curves: list[Curve]
    latency: str
    energy: str
    max_residual: float
    quality_metric: str = "accuracy"
    latency_kind: str = "e2e"

    @property
    def energy_methods(self) -> list[str]:
        return sorted({p.energy_method for p in self.points})

    @property
    def estimated(self) -> bool:
        """Some energy is not a meter reading (an estimate, or the test meter)."""
        return any(not is_measurement(m) for m in self.energy_methods)

    @property
    def direction(self) -> str:
        return QUALITY_DIRECTIONS.get(self.quality_metric, "higher")

    @property
    def quality_curve(self) -> Curve:
        """The curve of quality against energy per item across models."""
        name = quality_curve_name(self.quality_metric)
        return next(c for c in self.curves if c.name == name)

    @property
    def resource_axes(self) -> list[str]:
        """The resource axes of the per-model curves (batch_size, concurrency, request_rate_per_s)."""
        return [a for a in RESOURCE_AXES if any(c.x_name == a and c.group is not None for c in self.curves)]

    def on_frontier(self, p: OperatingPoint) -> bool:
        return p in self.frontier


def fit(profile: Profile, *, latency: str = "p95", energy: str = "gross",
        max_residual: float = DEFAULT_MAX_RESIDUAL, quality: str = "auto", latency_kind: str = "e2e") -> Tradeoff:
    """Operating points, frontier and validated curves of a profile."""
    if not (math.isfinite(max_residual) and 0 < max_residual < 10):
        raise TradeoffError(f"max residual {max_residual}: give a fraction such as 0.15 (15%)",
                            option="--max-residual")
    points, excluded = operating_points(profile, latency=latency, energy=energy, quality=quality,
                                        latency_kind=latency_kind)
    metric = points[0].quality_metric
    curves: list[Curve] = []

    # Across model sizes: each model's lowest-energy point, i.e. its cheapest way to deliver its
    # quality (batch, load, precision and device change energy, not what the model knows).
    by_model: dict[str, OperatingPoint] = {}
    for p in points:
        if p.model not in by_model or p.energy_j_per_item < by_model[p.model].energy_j_per_item:
            by_model[p.model] = p
    # A model beaten on both quality and energy by another model's point costs more and knows
    # less: it is not part of the tradeoff, and would bend the curve the wrong way.
    best = sorted(by_model.values(), key=OperatingPoint.sort_key)
    beaten = [p for p in best if any(
        q.goodness >= p.goodness and q.energy_j_per_item <= p.energy_j_per_item
        and (q.goodness > p.goodness or q.energy_j_per_item < p.energy_j_per_item) for q in best)]
    best = [p for p in best if p not in beaten]
    q_curve = fit_curve(
        quality_curve_name(metric), [p.energy_j_per_item for p in best], [p.quality for p in best],
        point_labels=[p.label for p in best], energy_methods=[p.energy_method for p in best],
        max_residual=max_residual)
    if beaten:
        q_curve = replace(q_curve, reason=q_curve.reason + f"; left out, beaten on {metric} "
                          "and energy by another model: " + ", ".join(p.model for p in beaten))
    curves.append(q_curve)

    # Per model (and precision, device): how its resource setting (batch size, or the load on a
    # served model) trades latency for energy. A served point with both a rate and a concurrency is
    # grouped by its rate and drawn against concurrency.
    groups: dict[tuple, list[OperatingPoint]] = {}
    for p in points:
        axis, _ = p.resource
        rate = p.request_rate_per_s if axis == "concurrency" else None
        groups.setdefault((axis, p.model, p.precision, p.device, rate), []).append(p)
    order = list(RESOURCE_AXES)
    for key in sorted(groups, key=lambda k: (order.index(k[0]), k[1:4], k[4] or 0.0)):
        g = groups[key]
        axis, model, precision, device, rate = key
        if len({p.resource[1] for p in g}) < 2:
            continue  # one setting: no curve to speak of
        name = " ".join((model, precision, device)) + ("" if rate is None else f" r{rate:g}/s")
        short = RESOURCE_AXES[axis]
        for curve, attr in ((f"latency_vs_{short}", "latency_ms"), (f"energy_vs_{short}", "energy_j_per_item")):
            curves.append(fit_curve(
                curve, [p.resource[1] for p in g], [getattr(p, attr) for p in g], group=name,
                point_labels=[p.label for p in g], energy_methods=[p.energy_method for p in g],
                max_residual=max_residual))
    return Tradeoff(points=points, frontier=pareto_front(points), excluded=excluded, curves=curves,
                    latency=latency, energy=energy, max_residual=max_residual, quality_metric=metric,
                    latency_kind=latency_kind)
