"""Uncertainty carried from the measurements into the price (shared/docs/pricing-model.md §9).

Library only (numpy; no typer, no rich). A parametric bootstrap over the profile's own spread:

- **energy per item** ~ Normal(E, σ/√n) truncated at 0, with σ the record's standard deviation of
  its per-repeat energies and n the repeats (``energy_model="normal"``, the default), or the mean of
  n repeats drawn with replacement from ``samples["energy_j_per_item"]`` (``"resample"``). A net
  energy moves with the gross draw (the idle baseline is held fixed);
- **accuracy** (and exact match) ~ Binomial(n_eval, A) / n_eval, with n_eval the record's
  ``accuracy_n``. Points of one model and precision with the same figure and count share one
  evaluation, so they share one draw (a batch size does not change which items a model gets
  right); different models are drawn independently. Perplexity is held fixed: a profile keeps no
  per-window spread of it;
- **latency** ~ Normal(L, s/√k) truncated at 0, with s the spread of the k per-repeat values of the
  latency field priced (``samples["latency_p95_ms"]``, ``samples["ttft_p50_ms"]``, ...); a field
  with no per-repeat samples is held fixed. ``"resample"`` resamples those repeats instead.

A figure held fixed says why in ``BootstrapResult.notes`` (and per point in ``spreads``): missing
spread is never read as zero spread. The trace is taken as given: its own uncertainty (measurement,
forecast) is out of scope.

Each draw reruns the whole choice on the drawn points: the frontier, H and R
(``calculator.choose_points``, so every tie rule is the calculator's), the thresholds that default
to the frontier's range, U_H and U_R. The slots depend only on the trace and the slot policy, so
they are selected once per zone. The per-zone figures of every draw (δ* per type, the offered
discount, uptake, ρ, ρ_blind, ΔC, net, cost per tonne K) are then computed at once over draws and
users with the calculator's formulas (§5, §6, §8); ``tests/test_bootstrap.py`` checks them
against ``calculator.price_points`` on drawn points. Row 0 of every array is the point estimate
(the undrawn profile) computed by the same path, so with zero measured spread every draw equals it
exactly (spec §11).

API::

    measured = measured_points(profile, opts)           # points and their spread (PointSpread)
    drawn = draw(measured, draws=1000, seed=0)          # DrawnPoints: arrays (draws, points)
    res = bootstrap(profile, users, traces, opts, draws=1000, seed=0)   # BootstrapResult
    res.zones[0].figure("uptake")                       # Interval: point, low, high (2.5-97.5%)
    res.zones[0].figure("uptake").text()                # "0.6 [0.55, 0.6]": the figure, its interval beside it
    res.premium_changed_share, res.reduced_changed_share
    to_dict(res)                                        # JSON-ready: no NaN or inf (None + reason)

Definitions (§8): K = (Σ δ·P over green users − ΔE·π_e) / ΔC, in currency per tonne CO2e, with ΔE
the energy saved (kWh) and ΔC the carbon saved (t) per period; π_e = 0 when no electricity price is
given (K then counts no electricity savings). net = ΔE·π_e + ΔC·π_c − Σ δ·P, None without prices.

Default of ``draws``: 1,000. The 2.5% tail then holds 25 draws, and a share such as "H changes in
5% of draws" is known to about ±0.7 percentage points (binomial standard error); 1,000 draws over
the 18 bundled zones of a year fit well within the 5 s target on a 2-core machine
(``benchmarks/pricing.py`` prints the time). The cost grows as draws x (points² for the frontier +
zones x user rows): a drawn population of many users is priced in chunks of draws.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import cast

import numpy as np

from greenbench.carbon.intensity import co2e_g
from greenbench.methods import is_measurement
from greenbench.price import calculator as pc
from greenbench.price import slots as slotsmod
from greenbench.price.calculator import PricingOptions
from greenbench.price.users import Users
from greenbench.profile import Profile, Record
from greenbench.tradeoff.points import (
    FRACTION_METRICS,
    OperatingPoint,
    latency_field,
    operating_points,
)
from greenbench.units import G_PER_TONNE, J_PER_KWH

SCHEMA = "greenbench/price-bootstrap"
SCHEMA_VERSION = 1
DEFAULT_DRAWS = 1000  # see the module docstring: tails of 25 draws, flip shares to about ±0.7 points
MAX_DRAWS = 1_000_000
ENERGY_MODELS = ("normal", "resample")
INTERVAL_PERCENTILES = (2.5, 97.5)
# Rows (draws x user rows) priced at once: bounds memory for a drawn population of many users.
_CHUNK_CELLS = 2_000_000
DEFAULT_OPTIONS = PricingOptions()  # frozen: one shared default is safe
# U_H and U_R are kept per draw and user row: 25e6 cells are 400 MB; beyond it, refuse (one line)
MAX_DRAW_CELLS = 25_000_000


class BootstrapError(pc.PricingError):
    """An option the bootstrap cannot work with (one line)."""


# ------------------------------------------------------------------------------------------------
# the spread of each point


@dataclass(frozen=True)
class PointSpread:
    """What the profile says of one point's uncertainty. A None spread is not measured (held fixed,
    ``notes`` says why); 0.0 is a measured spread of zero (identical repeats)."""

    label: str
    energy_se_j: float | None  # σ/√n of the mean energy per item (J)
    energy_repeats_j: tuple[float, ...]  # per-repeat gross energies per item (J), for "resample"
    quality_n: int | None  # evaluation items of the binomial; None: quality held fixed
    quality_group: str  # points that share one evaluation (one draw of quality)
    latency_se_ms: float | None  # s/√k of the priced latency field (ms)
    latency_repeats_ms: tuple[float, ...]  # per-repeat values of that field (ms), for "resample"
    latency_field: str  # the record field priced (latency_p95_ms, ttft_p50_ms, ...)
    notes: tuple[str, ...]  # why a figure is held fixed


@dataclass(frozen=True)
class MeasuredPoints:
    """A profile's operating points (as ``operating_points`` gives them, sorted) and their spread."""

    points: tuple[OperatingPoint, ...]
    spreads: tuple[PointSpread, ...]
    excluded: tuple[str, ...]
    notes: tuple[str, ...]  # model-wide notes (what is drawn, what is held fixed)


def _se(values: Sequence[float]) -> float | None:
    """σ/√n of a sample (ddof 1), None under two values."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2 or not np.all(np.isfinite(x)):
        return None
    return float(x.std(ddof=1) / math.sqrt(len(x)))


def _record_spread(r: Record, p: OperatingPoint, lat_field: str) -> PointSpread:
    notes: list[str] = []
    reps = tuple(float(x) for x in r.samples.get("energy_j_per_item", []))
    n_e = len(reps) if reps else r.repeats
    if r.energy_j_per_item_std is not None and n_e >= 2:
        e_se: float | None = r.energy_j_per_item_std / math.sqrt(n_e)
    else:
        e_se = _se(reps)
        if e_se is None:
            notes.append("energy held fixed: fewer than two repeats and no standard deviation")

    metric = p.quality_metric
    q_n = None
    if metric in FRACTION_METRICS:
        if r.accuracy_n is not None and r.accuracy_n > 0:
            q_n = int(r.accuracy_n)
        else:
            notes.append(f"{metric} held fixed: the record has no evaluation count (accuracy_n)")
    else:
        notes.append(f"{metric} held fixed: the profile keeps no spread of it")
    # One model and precision, one figure and count: one evaluation (the batch size is not in it).
    group = f"{r.ladder}/{r.model}/{r.precision}/{metric}={p.quality!r}/n={q_n}" if q_n else p.label

    lreps = tuple(float(x) for x in r.samples.get(lat_field, []))
    l_se = _se(lreps)
    if l_se is None:
        have = sorted(k for k in r.samples if "latency" in k or k.startswith(("ttft", "tpot")))
        notes.append(f"{lat_field} held fixed: no per-repeat samples of it"
                     + (f" (samples hold {', '.join(have)})" if have else ""))
    return PointSpread(p.label, e_se, reps, q_n, group, l_se, lreps, lat_field, tuple(notes))


def measured_points(profile: Profile, opts: PricingOptions = DEFAULT_OPTIONS) -> MeasuredPoints:
    """The profile's operating points under ``opts`` (quality, latency, energy basis) and the spread
    of each, read from its records (see the module docstring)."""
    opts.check()
    points, excluded = operating_points(profile, latency=opts.latency, energy=opts.energy, quality=opts.quality,
                                        latency_kind=opts.latency_kind)
    lat_field = latency_field(opts.latency, opts.latency_kind)
    by_label: dict[str, Record] = {}
    for r in profile.records:  # operating_points names a point by its label, or ladder/label on a collision
        if r.status == "ok":
            by_label.setdefault(r.label, r)
            by_label.setdefault(f"{r.ladder}/{r.label}", r)
    spreads = tuple(_record_spread(by_label[p.label], p, lat_field) for p in points)
    notes = ["the carbon trace is taken as given: its own uncertainty (measurement, forecast) is out of scope"]
    if any(sp.quality_n is not None for sp in spreads):  # only where some quality is drawn at all
        notes.append(f"{points[0].quality_metric} of different models drawn independently (a shared evaluation "
                     "set would correlate them); points of one model and precision share one draw")
    if opts.energy == "net":
        notes.append("net energy moves with the gross draw: the idle baseline is held fixed")
    if any(not is_measurement(p.energy_method) for p in points):
        notes.append("energy that is not a measurement (an estimate) carries only the spread of its repeats, "
                     "not the error of the estimate")
    fixed = Counter(n for s in spreads for n in s.notes)
    notes += [f"{n} ({k} of {len(points)} points)" for n, k in sorted(fixed.items())]
    return MeasuredPoints(tuple(points), spreads, tuple(excluded), tuple(notes))


# ------------------------------------------------------------------------------------------------
# drawing profiles


@dataclass(frozen=True, eq=False)
class DrawnPoints:
    """Drawn values of every point: row 0 is the point estimate, rows 1..draws the draws."""

    base: tuple[OperatingPoint, ...]
    quality: np.ndarray  # (draws + 1, points)
    latency_ms: np.ndarray
    energy_j_per_item: np.ndarray
    seed: int
    energy_model: str

    @property
    def draws(self) -> int:
        return len(self.quality) - 1

    def points(self, row: int) -> list[OperatingPoint]:
        """The operating points of row ``row`` (0: the point estimate, 1..draws: a draw)."""
        q, lat, e = (a[row].tolist() for a in (self.quality, self.latency_ms, self.energy_j_per_item))
        return [replace(p, quality=q[i], latency_ms=lat[i], energy_j_per_item=e[i]) for i, p in enumerate(self.base)]


def _positive(rng: np.random.Generator, base: float, draw_one, size: int) -> np.ndarray:
    """``size`` values base + draw_one(rng, k) redrawn where not positive (truncation at 0). The
    base is positive (``operating_points`` keeps only positive energies and latencies), so each
    value is kept with probability at least 1/2 and the loop ends."""
    out = base + draw_one(rng, size)
    bad = np.flatnonzero(out <= 0)
    while len(bad):
        out[bad] = base + draw_one(rng, len(bad))
        bad = bad[out[bad] <= 0]
    return out


def _column(rng: np.random.Generator, base: float, se: float | None, reps: tuple[float, ...], model: str,
            size: int) -> np.ndarray:
    if model == "resample" and len(reps) >= 2:
        r = np.asarray(reps, dtype=float)
        centre = r.mean()
        return _positive(rng, base, lambda g, k: r[g.integers(0, len(r), size=(k, len(r)))].mean(axis=1) - centre,
                         size)
    if se is None or se == 0:
        return np.full(size, base)
    return _positive(rng, base, lambda g, k: se * g.standard_normal(k), size)


def draw(measured: MeasuredPoints, draws: int = DEFAULT_DRAWS, seed: int = 0,
         energy_model: str = "normal") -> DrawnPoints:
    """``draws`` profiles drawn from the spread (seeded), beside the point estimate (row 0).

    Draws are made point by point in the points' sorted order and quality group by group in the
    groups' sorted order, so they depend on the seed only (never on the order of the profile's rows)."""
    if energy_model not in ENERGY_MODELS:
        raise BootstrapError(f"energy model {energy_model!r}: choose one of {', '.join(ENERGY_MODELS)}")
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or not 1 <= draws <= MAX_DRAWS:
        raise BootstrapError(f"draws {draws!r}: give a whole number from 1 to {MAX_DRAWS:,}")
    rng = np.random.default_rng(seed)
    pts, sp = measured.points, measured.spreads
    n = len(pts)
    q = np.empty((draws + 1, n))
    lat = np.empty((draws + 1, n))
    e = np.empty((draws + 1, n))
    q[0] = [p.quality for p in pts]
    lat[0] = [p.latency_ms for p in pts]
    e[0] = [p.energy_j_per_item for p in pts]
    for i, (p, s) in enumerate(zip(pts, sp, strict=True)):
        e[1:, i] = _column(rng, p.energy_j_per_item, s.energy_se_j, s.energy_repeats_j, energy_model, draws)
    for i, (p, s) in enumerate(zip(pts, sp, strict=True)):
        lat[1:, i] = _column(rng, p.latency_ms, s.latency_se_ms, s.latency_repeats_ms, energy_model, draws)
    q[1:] = q[0]
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(sp):
        if s.quality_n is not None:
            groups.setdefault(s.quality_group, []).append(i)
    for g in sorted(groups):
        idx = groups[g]
        n_eval, a = sp[idx[0]].quality_n, pts[idx[0]].quality
        assert n_eval is not None
        q[1:, idx] = (rng.binomial(n_eval, a, size=draws) / n_eval)[:, None]
    return DrawnPoints(pts, q, lat, e, seed, energy_model)


# ------------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class Interval:
    """One figure: its point estimate and its 2.5-97.5% interval over the draws that define it."""

    name: str
    unit: str
    point: float | None
    low: float | None
    high: float | None
    defined_draws: int  # draws where the figure exists
    undefined_draws: int  # draws with no R (no choice), or where the figure has no value (K at ΔC = 0)
    reason: str | None = None  # why point, low or high is None

    def text(self, fmt: str = ".3g") -> str:
        """``0.295 [0.202, 0.388]``: the figure with its interval beside it ("—" where None)."""
        def f(x: float | None) -> str:
            return "—" if x is None else format(x, fmt)
        return f"{f(self.point)} [{f(self.low)}, {f(self.high)}]"


FIGURES = {  # name -> unit, in output order (δ* of each type comes first, as delta_star:<type>)
    "discount": "share of P",
    "uptake": "share of subscribers",
    "rho": "share of C_base",
    "rho_blind": "share of C_base",
    "saved_g_per_period": "gCO2e per period",
    "net_per_period": "currency per period",
    "cost_per_tonne": "currency per t CO2e",
}


@dataclass(frozen=True, eq=False)
class ZoneBootstrap:
    """One zone: every figure with its interval, and how often H and R differ from the point choice
    (the same in every zone: the choice does not depend on the trace)."""

    zone: str
    figures: tuple[Interval, ...]
    premium_changed_share: float | None
    reduced_changed_share: float | None
    values: dict[str, np.ndarray]  # per figure: row 0 the point estimate, rows 1.. the draws (NaN: undefined)

    def figure(self, name: str) -> Interval:
        for f in self.figures:
            if f.name == name:
                return f
        raise KeyError(name)


@dataclass(frozen=True, eq=False)
class BootstrapResult:
    draws: int
    seed: int
    energy_model: str
    percentiles: tuple[float, float]
    premium: str  # H of the point estimate
    reduced: str  # R of the point estimate
    chosen_draws: int  # draws where H and R exist
    premium_changed: int  # among the chosen draws, those whose H differs from the point estimate's
    reduced_changed: int
    no_choice: dict[str, int]  # draws with no H or R, by reason (e.g. "no reduced point R")
    premium_drawn: dict[str, int]  # H of the chosen draws, by label
    reduced_drawn: dict[str, int]
    zones: tuple[ZoneBootstrap, ...]
    spreads: tuple[PointSpread, ...]
    notes: tuple[str, ...]
    options: pc.PricingOptions
    premium_index: np.ndarray  # per row (0: point estimate): index of H in ``points``, -1 where no choice
    reduced_index: np.ndarray
    points: tuple[OperatingPoint, ...]

    @property
    def premium_changed_share(self) -> float | None:
        return self.premium_changed / self.chosen_draws if self.chosen_draws else None

    @property
    def reduced_changed_share(self) -> float | None:
        return self.reduced_changed / self.chosen_draws if self.chosen_draws else None

    @property
    def no_choice_draws(self) -> int:
        return sum(self.no_choice.values())


# ------------------------------------------------------------------------------------------------
# the computation


@dataclass(frozen=True, eq=False)
class _Choices:
    ok: np.ndarray  # (rows,) bool
    h: np.ndarray  # (rows,) index of H, -1 where none
    r: np.ndarray
    e_h: np.ndarray  # (rows,) J per item, NaN where none
    e_r: np.ndarray
    u_h: np.ndarray  # (rows, users)
    u_r: np.ndarray
    failures: dict[str, int]


def _failure_kind(e: pc.PricingError) -> str:
    msg = str(e)
    if msg.startswith("no reduced point R"):
        return "no reduced point R below H"
    return msg.split(":")[0][:120]


def _choose_all(drawn: DrawnPoints, users: Users, opts: pc.PricingOptions, excluded: tuple[str, ...]) -> _Choices:
    rows, n_users = drawn.draws + 1, len(users)
    index = {p.label: i for i, p in enumerate(drawn.base)}
    ok = np.zeros(rows, dtype=bool)
    h = np.full(rows, -1)
    r = np.full(rows, -1)
    e_h = np.full(rows, np.nan)
    e_r = np.full(rows, np.nan)
    u_h = np.full((rows, n_users), np.nan)
    u_r = np.full((rows, n_users), np.nan)
    failures: Counter[str] = Counter()
    for row in range(rows):
        pts = drawn.points(row)
        try:
            ch = pc.choose_points(pts, users, opts, excluded)
        except pc.PricingError as e:
            if row == 0:  # no point estimate: nothing to carry uncertainty into
                raise
            failures[_failure_kind(e)] += 1
            continue
        hp, rp = ch.premium, ch.reduced
        # the calculator's own steps (price_points): thresholds from this draw's frontier, then U_H, U_R
        b = pc.frontier_bounds(users, list(ch.frontier), opts)
        u = pc.utility(users, b, [hp.quality, rp.quality], [hp.latency_ms, rp.latency_ms], opts.utility_shape,
                       opts.utility_k)
        ok[row] = True
        h[row], r[row] = index[hp.label], index[rp.label]
        e_h[row], e_r[row] = hp.energy_j_per_item, rp.energy_j_per_item
        u_h[row], u_r[row] = u[:, 0], u[:, 1]
    return _Choices(ok, h, r, e_h, e_r, u_h, u_r, dict(failures))


def _zone_values(s: slotsmod.Slots, users: Users, opts: pc.PricingOptions, ch: _Choices) -> dict[str, np.ndarray]:
    """Every figure of every row in one zone, with ``_price_points``'s formulas and order of
    operations (NaN where a row has no choice, or a figure no value)."""
    rows = len(ch.ok)
    w_slot = s.demand / s.demand.sum()
    hi = np.where(s.high, w_slot, 0.0)
    p = float(hi.sum())
    ci_all, ci_high = float(w_slot @ s.intensity), float(hi @ s.intensity)
    subs = opts.subscribers or users.subscribers or pc.DEFAULT_SUBSCRIBERS
    w = users.weight / users.weight.sum()
    n, v, e = users.requests_per_period, users.value_per_request, users.consciousness
    priced = opts.electricity_price_per_kwh is not None or opts.carbon_price_per_tonne is not None
    pe, pcarbon = opts.electricity_price_per_kwh or 0.0, opts.carbon_price_per_tonne or 0.0
    beta = opts.reward_per_gco2e or 0.0
    p_fixed = opts.standard_price if opts.standard_price is not None else users.standard_price
    names = users.names
    per_type = len(set(names)) == len(names)
    out = {k: np.full(rows, np.nan) for k in FIGURES}
    if per_type:
        out.update({f"delta_star:{nm}": np.full(rows, np.nan) for nm in names})
    okr = np.flatnonzero(ch.ok)
    step = max(1, _CHUNK_CELLS // max(1, len(users)))
    for start in range(0, len(okr), step):
        idx = okr[start:start + step]
        e_h, e_r = ch.e_h[idx], ch.e_r[idx]
        u_h, u_r = ch.u_h[idx], ch.u_r[idx]
        base_req = co2e_g(e_h, ci_all)  # carbon(): C_base and ΔC per request
        saved_req = co2e_g(e_h - e_r, ci_high)
        saved_kwh_req = p * (e_h - e_r) / J_PER_KWH
        rho = np.where(base_req > 0, saved_req / np.where(base_req > 0, base_req, 1.0), 0.0)
        rho_blind = np.where(e_h > 0, p * (1 - e_r / np.where(e_h > 0, e_h, 1.0)), 0.0)
        saved_user = n * saved_req[:, None]
        price = np.full(u_h.shape, float(p_fixed)) if p_fixed is not None else n * v * u_h
        ds = pc.min_discount(e=e, p_max=s.p_max, n=n, v=v, u_h=u_h, u_r=u_r, price=price, mode=opts.consciousness,
                             beta=beta, saved_g_per_period=saved_user)
        if opts.discount is not None:
            offered = np.full(len(idx), float(opts.discount))
        else:  # the calculator's default offer: max δ*, capped at 1 (δ* > 1: no discount wins that type)
            top = ds.max(axis=1)
            offered = np.where(top > 1.0, 1.0, top)
        take = pc.takes_up(cast(float, offered[:, None]), ds)  # element-wise: one offer per row
        green_req = subs * np.sum(w * take * n, axis=1)
        cost = subs * np.sum(w * take * offered[:, None] * price, axis=1)
        saved = green_req * saved_req
        out["discount"][idx] = offered
        out["uptake"][idx] = np.sum(w * take, axis=1)
        out["rho"][idx] = rho
        out["rho_blind"][idx] = rho_blind
        out["saved_g_per_period"][idx] = saved
        if priced:
            value_req = (e_h - e_r) / J_PER_KWH * (pe * p + pcarbon / G_PER_TONNE * ci_high)
            out["net_per_period"][idx] = green_req * value_req - cost
        kwh = green_req * saved_kwh_req
        tonnes = saved / G_PER_TONNE
        out["cost_per_tonne"][idx] = np.where(saved > 0, (cost - kwh * pe) / np.where(saved > 0, tonnes, 1.0), np.nan)
        if per_type:
            for j, nm in enumerate(names):
                out[f"delta_star:{nm}"][idx] = ds[:, j]
    return out


def _interval(name: str, unit: str, vals: np.ndarray, pcts: tuple[float, float], why: str) -> Interval:
    """Row 0 is the point estimate; the percentiles are over the draws (rows 1..) that define it."""
    pt = float(vals[0]) if math.isfinite(vals[0]) else None
    draws = vals[1:]
    defined = np.isfinite(draws)
    n_def = int(defined.sum())
    lo = hi = None
    if n_def:
        lo, hi = (float(x) for x in np.percentile(draws[defined], pcts))
    undefined = len(draws) - n_def
    return Interval(name, unit, pt, lo, hi, n_def, undefined, why if (pt is None or undefined) else None)


_UNDEFINED = {"net_per_period": "no electricity or carbon price given",
              "cost_per_tonne": "ΔC = 0 (no green user saves carbon)"}


def bootstrap(source: Profile | MeasuredPoints, users: Users, traces: Sequence,
              opts: PricingOptions = DEFAULT_OPTIONS, draws: int = DEFAULT_DRAWS, seed: int = 0,
              energy_model: str = "normal", slots: Sequence[slotsmod.Slots] | None = None) -> BootstrapResult:
    """The §9 bootstrap: ``draws`` profiles drawn from ``source``'s spread (seeded), the whole choice
    rerun on each, and every figure of every zone in ``traces`` with its 2.5-97.5% interval.

    ``slots`` (one per trace, from ``slots.select(trace, opts.slots)``) skips selecting them again.
    Draws with no H or R are counted in ``no_choice`` and left out of the intervals, never dropped
    silently. Raises ``PricingError`` when the point estimate itself has no H or R."""
    opts.check()
    measured = source if isinstance(source, MeasuredPoints) else measured_points(source, opts)
    if slots is not None and len(slots) != len(traces):
        raise BootstrapError(f"{len(slots)} slot selections for {len(traces)} traces: give one per trace")
    drawn = draw(measured, draws, seed, energy_model)
    if (draws + 1) * len(users) > MAX_DRAW_CELLS:
        raise BootstrapError(f"{draws:,} draws x {len(users):,} user rows is beyond {MAX_DRAW_CELLS:,} cells: "
                             "bootstrap the user types (not a drawn population) or fewer draws")
    ch = _choose_all(drawn, users, opts, measured.excluded)
    chosen = ch.ok[1:]
    n_chosen = int(chosen.sum())
    h_changed = int(np.sum(chosen & (ch.h[1:] != ch.h[0])))
    r_changed = int(np.sum(chosen & (ch.r[1:] != ch.r[0])))
    pts = drawn.base
    h_share = h_changed / n_chosen if n_chosen else None
    r_share = r_changed / n_chosen if n_chosen else None
    no_choice = dict(ch.failures)
    why_none = "; ".join(f"{k} in {c} draw(s)" for k, c in sorted(no_choice.items()))

    zones = []
    for i, tr in enumerate(traces):
        s = slots[i] if slots is not None else slotsmod.select(tr, opts.slots)
        vals = _zone_values(s, users, opts, ch)
        figs = []
        for name, arr in vals.items():
            base = name.split(":")[0]
            unit = "share of P" if base == "delta_star" else FIGURES[name]
            why = "; ".join(x for x in (_UNDEFINED.get(base, ""), why_none) if x)
            figs.append(_interval(name, unit, arr, INTERVAL_PERCENTILES, why or "not a finite number"))
        figs.sort(key=lambda f: (not f.name.startswith("delta_star:"), f.name if f.name.startswith("delta_star:")
                                 else list(FIGURES).index(f.name)))
        zones.append(ZoneBootstrap(getattr(tr, "name", f"zone {i + 1}"), tuple(figs), h_share, r_share, vals))

    notes = list(measured.notes)
    if no_choice:
        notes.append(f"{sum(no_choice.values())} of {draws} draw(s) have no H or R ({why_none}): counted, and left "
                     "out of the intervals")
    if len(set(users.names)) != len(users.names):
        notes.append("user rows repeat a type name (a drawn population): δ* is summarised by the offered "
                     "discount (max δ*), not per type")
    notes.append(f"intervals: {INTERVAL_PERCENTILES[0]:g}-{INTERVAL_PERCENTILES[1]:g} percentiles over the draws "
                 f"that define each figure; energy model {energy_model}; seed {seed}")
    return BootstrapResult(
        draws=draws, seed=seed, energy_model=energy_model, percentiles=INTERVAL_PERCENTILES,
        premium=pts[ch.h[0]].label, reduced=pts[ch.r[0]].label, chosen_draws=n_chosen,
        premium_changed=h_changed, reduced_changed=r_changed, no_choice=no_choice,
        premium_drawn=_labels(ch.h[1:][chosen], pts), reduced_drawn=_labels(ch.r[1:][chosen], pts),
        zones=tuple(zones), spreads=measured.spreads, notes=tuple(notes), options=opts,
        premium_index=ch.h, reduced_index=ch.r, points=pts)


def _labels(idx: np.ndarray, pts: tuple[OperatingPoint, ...]) -> dict[str, int]:
    counts = Counter(pts[i].label for i in idx.tolist())
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


# ------------------------------------------------------------------------------------------------
# JSON


def _interval_dict(f: Interval) -> dict:
    return {"name": f.name, "unit": f.unit, "point": pc.finite_or_none(f.point), "low": pc.finite_or_none(f.low),
            "high": pc.finite_or_none(f.high), "defined_draws": f.defined_draws,
            "undefined_draws": f.undefined_draws, "reason": f.reason}


def _spread_dict(s: PointSpread) -> dict:
    return {"label": s.label, "energy_se_j_per_item": pc.finite_or_none(s.energy_se_j),
            "energy_repeats": len(s.energy_repeats_j), "quality_n": s.quality_n, "quality_group": s.quality_group,
            "latency_field": s.latency_field, "latency_se_ms": pc.finite_or_none(s.latency_se_ms),
            "latency_repeats": len(s.latency_repeats_ms), "held_fixed": list(s.notes)}


def to_dict(res: BootstrapResult) -> dict:
    """The result as JSON-ready data (schema greenbench/price-bootstrap): no NaN or inf."""
    return {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
        "draws": res.draws, "seed": res.seed, "energy_model": res.energy_model,
        "percentiles": list(res.percentiles),
        "premium": res.premium, "reduced": res.reduced,
        "chosen_draws": res.chosen_draws,
        "premium_changed_draws": res.premium_changed, "premium_changed_share": res.premium_changed_share,
        "reduced_changed_draws": res.reduced_changed, "reduced_changed_share": res.reduced_changed_share,
        "no_choice_draws": res.no_choice_draws, "no_choice": dict(sorted(res.no_choice.items())),
        "premium_drawn": res.premium_drawn, "reduced_drawn": res.reduced_drawn,
        "zones": [{"zone": z.zone, "premium_changed_share": z.premium_changed_share,
                   "reduced_changed_share": z.reduced_changed_share,
                   "figures": [_interval_dict(f) for f in z.figures]} for z in res.zones],
        "options": asdict(res.options),
        "spreads": [_spread_dict(s) for s in res.spreads],
        "notes": list(res.notes),
    }
