"""The two-tier green subscription calculator (shared/docs/pricing-model.md §3, §5-§7).

Library only (numpy; no typer, no rich). Given a profile's operating points, the user types and an
hourly carbon trace: the utility of each user type at each point, the premium point H and the
reduced point R (with the ranking), the high-carbon slots (``greenbench.price.slots``, shared with
``simulate``), the realised share p and p_max per month, the minimum discount δ* per user type,
uptake at an offered discount, the carbon saved (ρ beside ρ_blind), and the provider's net.

Everything over users is vectorised: a ``Users`` holds one row per user type, or one row per drawn
user (``draw_users``), and the same code prices both.

Conventions (documented in docs/pricing.md):
- n(t) = N · d(t) / D̄: each user sends N requests per billing period of 730 hours (a twelfth of a
  year), spread over the slots by the demand profile d (flat by default).
- All accounting uses the actual CI; the forecast only picks the slots.
- δ is a share of the standard price P. P is given, or each type's full valuation N·V·U_H.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from greenbench.carbon.intensity import co2e_g
from greenbench.errors import GreenbenchError
from greenbench.methods import is_measurement, method_note  # pricing.is_measurement too
from greenbench.price import mix as mixmod
from greenbench.price import slots as slotsmod
from greenbench.price.users import (
    LATENCY_KEYS,
    MAX_STANDARD_PRICE,
    MAX_SUBSCRIBERS,
    QUALITY_KEYS,
    Users,
    load_users,
)
from greenbench.profile import QUALITY_DIRECTIONS
from greenbench.tradeoff.points import (
    LATENCY_KINDS,
    QUALITY_METRICS,
    OperatingPoint,
    dominates,
    hardware_types,
    operating_points,
    pareto_front,
)
from greenbench.units import G_PER_TONNE, J_PER_KWH  # also read as pricing.J_PER_KWH

UTILITY_SHAPES = ("linear", "log", "sigmoid")
DEFAULT_UTILITY_K = {"log": 9.0, "sigmoid": 10.0}
UTILITY_K_RANGE = (1e-6, 1e3)  # below: a straight line; above: a step (sigmoid) or a constant 1 (log)
CONSCIOUSNESS_MODES = ("discount", "reward")
DEFAULT_SUBSCRIBERS = 1000
SCHEMA = "greenbench/price"
SCHEMA_VERSION = 1


class PricingError(GreenbenchError):
    """An option or input the calculator cannot work with (one line)."""


@dataclass(frozen=True)
class PricingOptions:
    """Every choice the specification leaves open, with its documented default."""

    latency: str = "p95"  # latency statistic of the profile (per request = per batch)
    energy: str = "gross"  # energy basis: gross | net
    latency_kind: str = "e2e"  # e2e (batch, or a served request end to end) | ttft | tpot
    quality: str = "auto"  # the quality metric: auto (the profile's own) | accuracy | exact_match | perplexity
    utility_shape: str = "linear"
    utility_k: float | None = None  # curvature of log/sigmoid; default 9 (log), 10 (sigmoid)
    consciousness: str = "discount"  # discount | reward
    reward_per_gco2e: float | None = None  # β (currency per gram saved), reward mode only
    latency_slo_ms: float | None = None  # H must meet it
    accuracy_floor: float | None = None  # R's quality must be at least this good (in the metric's units)
    latency_ceiling_ms: float | None = None  # R must meet it
    premium: str | None = None  # name H by label
    reduced: str | None = None  # name R by label
    rank_by: str | None = None  # a user type whose utility ranks R; default the share-weighted mean
    standard_price: float | None = None  # P; default from the users file, else full valuation
    subscribers: int | None = None  # default from the users file, else 1000
    discount: float | None = None  # offered δ (share of P)
    electricity_price_per_kwh: float | None = None  # π_e
    carbon_price_per_tonne: float | None = None  # π_c
    slots: slotsmod.SlotPolicy = field(default_factory=slotsmod.SlotPolicy)
    mix: bool = False  # §10: R may mix two points (greenbench.price.mix)
    mix_utility_floor: float | None = None  # with mix: the least ranking utility Ū_R the mix keeps

    def check(self) -> None:
        if self.latency_kind not in LATENCY_KINDS:
            raise PricingError(f"latency kind {self.latency_kind!r}: choose one of {', '.join(LATENCY_KINDS)}")
        if self.quality != "auto" and self.quality not in QUALITY_METRICS:
            raise PricingError(f"quality metric {self.quality!r}: choose auto or one of {', '.join(QUALITY_METRICS)}")
        if self.utility_shape not in UTILITY_SHAPES:
            raise PricingError(f"utility shape {self.utility_shape!r}: choose one of {', '.join(UTILITY_SHAPES)}")
        if self.consciousness not in CONSCIOUSNESS_MODES:
            raise PricingError(f"consciousness {self.consciousness!r}: choose one of {', '.join(CONSCIOUSNESS_MODES)}")
        if self.consciousness == "reward" and self.reward_per_gco2e is None:
            raise PricingError("--consciousness reward needs --reward-per-gco2e (β, currency per gram CO2e saved)")
        if self.consciousness == "discount" and self.reward_per_gco2e is not None:
            raise PricingError("--reward-per-gco2e applies to --consciousness reward only")
        if self.utility_k is not None and self.utility_shape == "linear":
            raise PricingError("--utility-k bends the log and sigmoid shapes; linear has none")
        lo_k, hi_k = UTILITY_K_RANGE
        if self.utility_k is not None and not (math.isfinite(self.utility_k) and lo_k <= self.utility_k <= hi_k):
            raise PricingError(f"utility k {self.utility_k:g}: give a number from {lo_k:g} to {hi_k:g} "
                               "(smaller is a straight line, larger a step)")
        checks = (("reward per gCO2e", self.reward_per_gco2e, 0, None, False),
                  ("latency SLO (ms)", self.latency_slo_ms, 0, None, True),
                  ("quality floor", self.accuracy_floor, 0, None, False),  # its metric's range: choose_points
                  ("latency ceiling (ms)", self.latency_ceiling_ms, 0, None, True),
                  ("standard price", self.standard_price, 0, MAX_STANDARD_PRICE, True),
                  ("discount", self.discount, 0, 1, False),
                  ("electricity price per kWh", self.electricity_price_per_kwh, 0, None, False),
                  ("carbon price per tonne", self.carbon_price_per_tonne, 0, None, False))
        for name, v, lo, hi, strict in checks:
            if v is None:
                continue
            bad = not math.isfinite(v) or v < lo or (strict and v == lo) or (hi is not None and v > hi)
            if bad:
                rng = f"from {lo} to {hi}" if hi is not None else (f"above {lo}" if strict else f"of at least {lo}")
                raise PricingError(f"{name} {v}: give a finite number {rng}")
        if self.subscribers is not None and not 0 < self.subscribers <= MAX_SUBSCRIBERS:
            raise PricingError(f"subscribers {self.subscribers}: give a positive number of at most "
                               f"{MAX_SUBSCRIBERS:.0e}")
        if self.mix_utility_floor is not None and not self.mix:
            raise PricingError("--mix-utility-floor applies with --mix only")
        if self.mix_utility_floor is not None and not (math.isfinite(self.mix_utility_floor)
                                                       and 0 <= self.mix_utility_floor <= 1):
            raise PricingError(f"mix utility floor {self.mix_utility_floor}: give a utility from 0 to 1")
        if self.mix and self.reduced is not None:
            raise PricingError("--mix chooses R as a mix of two points; --reduced names one point: give one")
        self.slots.check()


# ------------------------------------------------------------------------------------------------
# §3 utility


def shape(x: np.ndarray, kind: str = "linear", k: float | None = None) -> np.ndarray:
    """Bend a normalised term in [0, 1]; every shape is increasing with f(0) = 0 and f(1) = 1."""
    x = np.clip(np.asarray(x, dtype=float), 0.0, 1.0)
    if kind == "linear":
        return x
    k = DEFAULT_UTILITY_K[kind] if k is None else float(k)
    if kind == "log":  # concave: early gains matter most
        return np.log1p(k * x) / math.log1p(k)
    if kind == "sigmoid":  # S-shaped around the midpoint, rescaled to pass through (0,0) and (1,1)
        # logistic(z) = (1 + tanh(z/2)) / 2, so the rescaled logistic k(x - 1/2) is
        # (tanh(k(x - 1/2)/2) + tanh(k/4)) / (2 tanh(k/4)): no exp to overflow for a large k, and
        # no difference of two numbers near 1/2 that cancels to 0/0 for a tiny one.
        t = math.tanh(k / 4)
        return (np.tanh(k * (x - 0.5) / 2) + t) / (2 * t)
    raise PricingError(f"utility shape {kind!r}: choose one of {', '.join(UTILITY_SHAPES)}")


@dataclass(frozen=True)
class Bounds:
    """Per user row, the points where each normalised term is 0 and 1 (spec §3), in the units of the
    profile's quality metric and latency kind; the frontier's range where the file gives none.

    For a quality that is better higher (accuracy) ``q_zero`` is A_min and ``q_sat`` A_sat; for one
    better lower (perplexity) ``q_zero`` is Q_max (worthless at or above) and ``q_sat`` Q_sat
    (satisfied at or below). ``given`` says, per threshold name, which rows the users file set."""

    q_zero: np.ndarray
    q_sat: np.ndarray
    l_sat: np.ndarray
    l_max: np.ndarray
    metric: str = "accuracy"
    direction: str = "higher"
    latency_kind: str = "e2e"
    given: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def a_min(self) -> np.ndarray:
        return self.q_zero

    @property
    def a_sat(self) -> np.ndarray:
        return self.q_sat


def bounds(users: Users, quality: np.ndarray, latency_ms: np.ndarray, metric: str = "accuracy",
           latency_kind: str = "e2e") -> Bounds:
    """Each user row's thresholds: the users file's keys for ``metric`` and ``latency_kind``
    (``users.QUALITY_KEYS``, ``users.LATENCY_KEYS``), else the min and max of ``quality`` and
    ``latency_ms``: the values of the profile's points on the Pareto frontier (spec §3: a dominated
    point must not move anyone's utility)."""
    direction = QUALITY_DIRECTIONS.get(metric, "higher")
    zero_key, sat_key = QUALITY_KEYS[metric]
    lmax_key, lsat_key = LATENCY_KEYS[latency_kind]
    q = np.asarray(quality, dtype=float)
    lo, hi = float(np.min(q)), float(np.max(q))
    worst, best = (lo, hi) if direction == "higher" else (hi, lo)

    def fill(key: str, default: float) -> np.ndarray:
        v = users.threshold(key)
        return np.where(np.isnan(v), default, v)

    given = {k: ~np.isnan(users.threshold(k)) for k in (zero_key, sat_key, lsat_key, lmax_key)}
    return Bounds(fill(zero_key, worst), fill(sat_key, best),
                  fill(lsat_key, float(np.min(latency_ms))), fill(lmax_key, float(np.max(latency_ms))),
                  metric=metric, direction=direction, latency_kind=latency_kind, given=given)


def _norm(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den clipped to [0, 1]; a zero range (all points alike) counts as fully satisfied."""
    shp = np.broadcast_shapes(num.shape, den.shape)
    pos = np.broadcast_to(den > 0, shp)
    out = np.empty(shp)
    np.divide(num, den, out=out, where=pos)
    if not pos.all():
        out[~pos] = np.broadcast_to(num, shp)[~pos] >= 0
    return np.clip(out, 0.0, 1.0, out=out)


def utility(users: Users, b: Bounds, quality, latency_ms, kind: str = "linear", k: float | None = None) -> np.ndarray:
    """U[user, point] = w_A · f(â) + (1 - w_A) · f(l̂), with â in the quality's own units and
    direction: (A - A_min) / (A_sat - A_min), or (Q_max - Q) / (Q_max - Q_sat) for a quality that is
    better lower (perplexity); l̂ = (L_max - L) / (L_max - L_sat)."""
    a = np.atleast_1d(np.asarray(quality, dtype=float))[None, :]
    lat = np.atleast_1d(np.asarray(latency_ms, dtype=float))[None, :]
    if b.direction == "lower":
        a_hat = _norm(b.q_zero[:, None] - a, (b.q_zero - b.q_sat)[:, None])
    else:
        a_hat = _norm(a - b.q_zero[:, None], (b.q_sat - b.q_zero)[:, None])
    l_hat = _norm(b.l_max[:, None] - lat, (b.l_max - b.l_sat)[:, None])
    w = users.accuracy_weight[:, None]
    return w * shape(a_hat, kind, k) + (1 - w) * shape(l_hat, kind, k)


# ------------------------------------------------------------------------------------------------
# §7 H and R


@dataclass(frozen=True)
class Ranked:
    """A frontier point considered for R: its score, or why it is not eligible."""

    point: OperatingPoint
    utility: float  # the ranking utility (share-weighted mean, or the --rank-by type's)
    energy_saved_j: float  # E_H - E_k
    utility_lost: float  # U_H - U_k
    score: float | None  # (E_H - E_k) / (U_H - U_k), J per unit of utility; None if not eligible
    reason: str  # "eligible" or why not
    rank: int | None = None


@dataclass(frozen=True)
class Choice:
    premium: OperatingPoint
    reduced: OperatingPoint
    premium_how: str
    reduced_how: str
    frontier: tuple[OperatingPoint, ...]
    ranking: tuple[Ranked, ...]
    rank_utility: str  # what ranked R
    excluded: tuple[str, ...]  # profile records that are not operating points, and why
    # §10 (--mix): the reduced tier as a mix of two points; ``reduced`` stays the best single R (§7)
    mix: mixmod.Mix | None = None
    # The hardware types of the profile's points (``points.hardware_types``): more than one in a
    # fleet profile, where H may run on one GPU type and R on another
    hardware: tuple[str | None, ...] = ()

    @property
    def spans_hardware(self) -> bool:
        """The points ran on more than one hardware type: H's and R's are worth naming."""
        return len(self.hardware) > 1

    @property
    def reduced_energy_j_per_item(self) -> float:
        """E_R as served: the mix's f·E_a + (1-f)·E_b with --mix, else the reduced point's."""
        return self.reduced.energy_j_per_item if self.mix is None else self.mix.energy_j_per_item


def _find(points: list[OperatingPoint], label: str, what: str) -> OperatingPoint:
    for p in points:
        if p.label == label:
            return p
    low = [p for p in points if p.label.lower() == label.strip().lower()]
    if len(low) == 1:
        return low[0]
    raise PricingError(f"{what} {label!r} is not an operating point of the profile; "
                       f"choose one of: {', '.join(p.label for p in points)}")


def _rank_utility(users: Users, u: np.ndarray, rank_by: str | None) -> tuple[np.ndarray, str]:
    if rank_by is None:
        return users.weight @ u / users.weight.sum(), "share-weighted mean utility of the user types"
    rows = [i for i, n in enumerate(users.names) if n == rank_by]
    if not rows:
        raise PricingError(f"--rank-by {rank_by!r}: no such user type (types: {', '.join(sorted(set(users.names)))})")
    return u[rows[0]], f"utility of user type {rank_by!r}"


NAMED_POINTS_MAX = 10  # points an explanation names one by one; a whole large ladder would not be read


def no_reduced_point(h: OperatingPoint, h_how: str, points: list[OperatingPoint], front: list[OperatingPoint],
                     ranking: list[Ranked], opts: PricingOptions, rank_u: dict[str, float]) -> PricingError:
    """Why no point of this profile can be R, point by point, and what would make one: the error
    of ``choose_points`` when no frontier point is eligible. Only options the user set are named.
    ``rank_u`` is the ranking utility of every point by label (to tell which other H would work)."""
    stat = f"{opts.latency} latency" if opts.latency_kind == "e2e" else f"{opts.latency} {opts.latency_kind.upper()}"
    metric = h.quality_metric
    floor_opt = floor_option(metric)
    why: list[str] = []
    fixes: list[str] = []
    if not ranking:
        why.append("H is the only point on the frontier")
    for r in ranking:
        p = r.point
        if r.reason.startswith("uses no less energy"):
            why.append(f"{p.label} uses no less energy than H ({p.energy_j_per_item:.3g} against "
                       f"{h.energy_j_per_item:.3g} J/item)")
        elif r.reason.startswith("loses no utility"):
            why.append(f"{p.label} saves energy and loses no utility (a better H than a reduced tier)")
            fixes.append(f"make it H with --premium {p.label!r}")
        elif "the floor" in r.reason:
            assert opts.accuracy_floor is not None  # the reason names the floor the user set
            side, fix = ("below", "lower") if p.direction == "higher" else ("above", "raise")
            why.append(f"{p.label} has {metric} {p.quality:.3g}, {side} {floor_opt} {opts.accuracy_floor:g}")
            fixes.append(f"{fix} {floor_opt}")
        elif r.reason.startswith("latency above"):
            why.append(f"{p.label} has {stat} {p.latency_ms:.3g} ms, above --latency-ceiling-ms "
                       f"{opts.latency_ceiling_ms:g}")
            fixes.append("raise --latency-ceiling-ms")
        else:
            why.append(f"{p.label}: {r.reason}")
    on_front = {p.label for p in front}
    off = [p for p in points if p.label not in on_front and p.label != h.label]
    named = off[:max(0, NAMED_POINTS_MAX - len(why))]
    for p in named:  # a dominated point is dominated by a frontier point (dominance is transitive)
        by = h if dominates(h, p) else next(q for q in front if dominates(q, p))
        why.append(f"{p.label} is not on the frontier (dominated by {'H' if by is h else by.label})")
    if len(off) > len(named):
        why.append(f"{len(off) - len(named)} more point(s) are not on the frontier")
    if all(p.energy_j_per_item >= h.energy_j_per_item for p in points):
        why.append("no point of the profile uses less energy than H")
    fixes.append("profile more models or batch sizes, so that a point uses less energy than H at some cost in "
                 "accuracy or latency")
    # another H helps only where some frontier point would be eligible below it: less energy, some
    # utility lost, within the floor and ceiling the user set (the same tests as the ranking's)
    def within(f: OperatingPoint) -> bool:
        return (meets_floor(f, opts.accuracy_floor)
                and (opts.latency_ceiling_ms is None or f.latency_ms <= opts.latency_ceiling_ms))

    def below(q: OperatingPoint) -> bool:
        return any(f.label != q.label and f.energy_j_per_item < q.energy_j_per_item
                   and rank_u[f.label] < rank_u[q.label] and within(f) for f in front)

    other_h = [q for q in sorted(points, key=lambda q: (q.label not in on_front, q.sort_key()))
               if q.label != h.label and below(q)]
    if other_h:
        fixes.append(f"choose H with --premium, e.g. --premium {other_h[0].label!r} (below it the frontier "
                     "holds a point that uses less energy at a loss of utility)")
    cheaper = [p.label for p in points if p.energy_j_per_item < h.energy_j_per_item]
    if cheaper:
        fixes.append(f"name R with --reduced (points using less energy than H: {', '.join(cheaper[:5])}"
                     f"{', ...' if len(cheaper) > 5 else ''})")
    fixes = list(dict.fromkeys(fixes))  # each fix once, in the order found
    return PricingError(f"no reduced point R below H = {h.label} ({h_how}): {'; '.join(why)}. "
                        f"To make one: {'; or '.join(fixes)}")


def floor_option(metric: str) -> str:
    """The option that sets R's quality floor, as messages name it for this metric."""
    return "--accuracy-floor" if metric == "accuracy" else "--quality-floor"


def meets_floor(p: OperatingPoint, floor: float | None) -> bool:
    """p's quality is at least as good as ``floor`` (None: no floor), in its metric's direction."""
    if floor is None:
        return True
    return p.quality >= floor if p.direction == "higher" else p.quality <= floor


def premium_words(metric: str) -> str:
    """How H's default choice is named: the best-quality frontier point."""
    if metric == "accuracy":
        return "most accurate frontier point"
    best = "lowest" if QUALITY_DIRECTIONS.get(metric) == "lower" else "highest"
    return f"{best}-{metric.replace('_', ' ')} frontier point"


def quality_metric(points: list[OperatingPoint]) -> str:
    """The one quality metric of the points (a profile's operating points share one)."""
    metrics = sorted({p.quality_metric for p in points})
    if len(metrics) != 1:
        raise PricingError(f"the operating points mix quality metrics ({', '.join(metrics)}); price one at a time")
    return metrics[0]


def frontier_bounds(users: Users, front: list[OperatingPoint], opts: PricingOptions) -> Bounds:
    """The thresholds of every user row, the frontier's range where the users file gives none."""
    return bounds(users, np.array([p.quality for p in front]), np.array([p.latency_ms for p in front]),
                  quality_metric(front), opts.latency_kind)


def choose_points(points: list[OperatingPoint], users: Users, opts: PricingOptions,
                  excluded: tuple[str, ...] = ()) -> Choice:
    """H and R by §7: H the best-quality frontier point within the SLO; R the frontier point with
    the most energy saved per unit of utility lost, within the floor and ceiling. Either can be named."""
    points = sorted(points, key=OperatingPoint.sort_key)
    metric = quality_metric(points)
    floor = opts.accuracy_floor
    if floor is not None and metric in ("accuracy", "exact_match") and floor > 1:
        raise PricingError(f"{floor_option(metric)} {floor:g}: {metric} is a share; give a number from 0 to 1")
    front = pareto_front(points)
    qual = np.array([p.quality for p in points])
    lat = np.array([p.latency_ms for p in points])
    b = frontier_bounds(users, front, opts)
    if opts.premium is not None:
        h = _find(points, opts.premium, "--premium")
        h_how = "named (--premium)"
    else:
        ok = [p for p in front if opts.latency_slo_ms is None or p.latency_ms <= opts.latency_slo_ms]
        if not ok:
            fastest = min(front, key=lambda p: p.latency_ms)
            raise PricingError(f"no frontier point meets the latency SLO of {opts.latency_slo_ms:g} ms "
                               f"(fastest: {fastest.label} at {fastest.latency_ms:.3g} ms); raise --latency-slo-ms")
        h = min(ok, key=lambda p: (-p.goodness, p.energy_j_per_item, p.latency_ms, p.label))
        h_how = premium_words(metric) + (
            f" within the {opts.latency_slo_ms:g} ms SLO" if opts.latency_slo_ms else "")

    cands = [p for p in front if p.label != h.label]
    if opts.reduced is not None:
        named = _find(points, opts.reduced, "--reduced")
        if named.label not in {p.label for p in cands}:
            cands.append(named)
    u_all = utility(users, b, [p.quality for p in [h, *cands]], [p.latency_ms for p in [h, *cands]],
                    opts.utility_shape, opts.utility_k)
    ur, rank_what = _rank_utility(users, u_all, opts.rank_by)
    u_h = float(ur[0])
    ranking = []
    for p, uk in zip(cands, ur[1:], strict=True):
        saved, lost = h.energy_j_per_item - p.energy_j_per_item, u_h - float(uk)
        if saved <= 0:
            why = "uses no less energy than H"
        elif lost <= 0:
            why = "loses no utility (a better default, not a reduced tier)"
        elif not meets_floor(p, floor):
            assert floor is not None
            why = (f"{metric} below the floor {floor:g}" if p.direction == "higher"
                   else f"{metric} above the floor {floor:g} (lower is better)")
        elif opts.latency_ceiling_ms is not None and p.latency_ms > opts.latency_ceiling_ms:
            why = f"latency above the ceiling {opts.latency_ceiling_ms:g} ms"
        else:
            why = "eligible"
        ranking.append(Ranked(p, float(uk), saved, lost, saved / lost if why == "eligible" else None, why))
    scored = [(r.score, r) for r in ranking if r.score is not None]
    eligible = [r for _, r in sorted(scored, key=lambda sr: (-sr[0], -sr[1].utility, sr[1].point.label))]
    order = {id(r): i + 1 for i, r in enumerate(eligible)}
    ranking = [replace(r, rank=order.get(id(r))) for r in ranking]
    ranking.sort(key=lambda r: (r.rank is None, r.rank or 0, r.point.sort_key()))
    if opts.reduced is not None:
        r_point = named
        if r_point.label == h.label:
            raise PricingError(f"--reduced {named.label!r} is the premium point H itself; choose another")
        if r_point.energy_j_per_item >= h.energy_j_per_item:
            raise PricingError(f"--reduced {named.label!r} uses no less energy than H ({h.label}): "
                               "the green tier would save nothing")
        r_how = "named (--reduced)"
    else:
        if not eligible:
            u_points, _ = _rank_utility(users, utility(users, b, qual, lat, opts.utility_shape, opts.utility_k),
                                        opts.rank_by)
            rank_u = {p.label: float(x) for p, x in zip(points, u_points, strict=True)}
            raise no_reduced_point(h, h_how, points, front, ranking, opts, rank_u)
        r_point = eligible[0].point
        r_how = "best ranked: most energy saved per unit of utility lost"
    mix = None
    if opts.mix:  # §10: the same score over two-point mixes of H and the eligible points
        mix = mixmod.best_mix(mixmod.Candidate(h, u_h), [mixmod.Candidate(r.point, r.utility)
                                                         for r in eligible], opts.mix_utility_floor)
        if mix is None:
            raise PricingError(f"--mix-utility-floor {opts.mix_utility_floor:g}: at or above the ranking utility "
                               f"of H ({u_h:.4g}), so no reduced tier keeps it; lower it")
    return Choice(h, r_point, h_how, r_how, tuple(front), tuple(ranking), rank_what, tuple(excluded), mix=mix,
                  hardware=hardware_types(points))


# ------------------------------------------------------------------------------------------------
# §5 carbon, §6 discount and uptake


@dataclass(frozen=True)
class Carbon:
    """Per request (grams, averaged over the trace's requests) and the ratios of §5."""

    c_base_g_per_request: float  # Σ w E_H CI / 3.6e6
    saved_g_per_request: float  # Σ_High w (E_H - E_R) CI / 3.6e6
    saved_kwh_per_request: float  # p (E_H - E_R) / 3.6e6
    p: float
    rho: float
    rho_blind: float

    @property
    def awareness_ratio(self) -> float | None:
        """ρ / ρ_blind: what carbon-awareness adds over merely using a cheaper model."""
        return self.rho / self.rho_blind if self.rho_blind > 0 else None


def carbon(s: slotsmod.Slots, e_h: float, e_r: float, mask: np.ndarray | None = None) -> Carbon:
    """§5 over the slots (or the subset ``mask``, e.g. one month), per request."""
    w = s.demand if mask is None else np.where(mask, s.demand, 0.0)
    tot = w.sum()
    w = w / tot if tot > 0 else w
    hi = np.where(s.high, w, 0.0)
    p = float(hi.sum())
    base = co2e_g(e_h, float(w @ s.intensity))
    saved = co2e_g(e_h - e_r, float(hi @ s.intensity))
    return Carbon(base, saved, p * (e_h - e_r) / J_PER_KWH, p, saved / base if base > 0 else 0.0,
                  p * (1 - e_r / e_h) if e_h > 0 else 0.0)


def min_discount(*, e, p_max: float, n, v, u_h, u_r, price=None, mode: str = "discount",
                 beta: float = 0.0, saved_g_per_period=0.0) -> np.ndarray:
    """δ* per user row (§6), as a share of the standard price P (default P = N·V·U_H).

    A row that loses nothing (U_R >= U_H), or whose P is 0, needs no discount: δ* = 0.
    """
    e, n, v, u_h, u_r = (np.asarray(x, dtype=float) for x in (e, n, v, u_h, u_r))
    p_price = n * v * u_h if price is None else np.broadcast_to(np.asarray(price, dtype=float), u_h.shape)
    loss = np.maximum(p_max * n * v * (u_h - u_r), 0.0)  # value lost per period at the ceiling
    if mode == "discount":
        need = (1 - e) * loss
    else:
        need = np.maximum(0.0, loss - e * beta * np.asarray(saved_g_per_period, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p_price > 0, need / np.where(p_price > 0, p_price, 1.0), 0.0)


def takes_up(discount: float, delta_star: np.ndarray) -> np.ndarray:
    """Every row whose δ* the offered δ covers (a hair of float tolerance)."""
    return discount >= delta_star - 1e-12


@dataclass(frozen=True)
class Population:
    """Totals per billing period at an offered discount."""

    discount: float
    discount_source: str
    subscribers: int
    uptake: float  # share of subscribers on the green tier
    green_subscribers: float
    green_requests: float  # per period
    all_requests: float
    saved_g: float  # ΔC per period, all green users
    c_base_g: float  # C_base per period, all subscribers at H
    rho: float  # population reduction: saved / base
    discount_cost: float  # Σ δ·P over green users, per period
    savings_value: float | None  # Σ_High n (E_H - E_R)(π_e + π_c CI), per period; None without prices
    net: float | None  # savings_value - discount_cost


@dataclass(frozen=True)
class UserRow:
    name: str
    share: float
    u_h: float
    u_r: float
    price: float  # P per period
    delta_star: float
    takes_up: bool
    saved_g_per_period: float  # ΔC of one green user of this type
    discount_cost: float  # δ·P per green user per period
    net_per_user: float | None
    no_discount_wins: bool = False  # δ* > 1: not even a 100% discount makes up this type's loss


@dataclass(frozen=True, eq=False)
class UserArrays:
    """Per user row (one per type, or one per drawn user) the inputs of the discount curve
    (``greenbench.price.decision``): shares s_i (sum 1), N_i, P_i per period, U_H and U_R."""

    names: tuple[str, ...]
    share: np.ndarray
    requests_per_period: np.ndarray
    price: np.ndarray
    u_h: np.ndarray
    u_r: np.ndarray


@dataclass(frozen=True)
class Month:
    label: str
    hours: int
    complete: bool
    p_candidate: float
    p: float
    high_hours: int
    carbon: Carbon


QUALITY_KEYS_ALL = tuple(k for keys in QUALITY_KEYS.values() for k in keys)
LATENCY_KEYS_ALL = tuple(k for keys in LATENCY_KEYS.values() for k in keys)
QUALITY_SYMBOLS = {"accuracy": "A", "exact_match": "EM", "perplexity": "PPL"}
LATENCY_SYMBOLS = {"e2e": "L", "ttft": "TTFT", "tpot": "TPOT"}


@dataclass(frozen=True)
class Threshold:
    """One threshold of one user type: its name in §3 (A_min, PPL_sat, L_max), the users file's key,
    its value, and where it came from ("users file", or the frontier's min or max)."""

    name: str
    key: str
    value: float
    source: str


@dataclass(frozen=True)
class TypeThresholds:
    user_type: str
    quality_zero: Threshold  # â = 0: A_min, or Q_max for a quality better lower
    quality_sat: Threshold  # â = 1
    latency_sat: Threshold  # l̂ = 1
    latency_max: Threshold  # l̂ = 0

    @property
    def all(self) -> tuple[Threshold, ...]:
        return (self.quality_zero, self.quality_sat, self.latency_sat, self.latency_max)


@dataclass(frozen=True)
class Thresholds:
    """§3's thresholds as they ran: the metric and latency they are in, the frontier's range (the
    defaults), and each user type's four values with their sources (empty for a drawn population)."""

    quality_metric: str
    quality_direction: str
    latency_kind: str
    latency_statistic: str
    frontier_points: int
    quality_range: tuple[float, float]  # (worst, best) over the frontier
    latency_range_ms: tuple[float, float]  # (min, max) over the frontier
    user_types: tuple[TypeThresholds, ...]

    @property
    def any_given(self) -> bool:
        return any(t.source == "users file" for u in self.user_types for t in u.all)


def thresholds(users: Users, b: Bounds, front: list[OperatingPoint], opts: PricingOptions) -> Thresholds:
    """The thresholds that ran, named, with where each came from."""
    metric, kind = b.metric, b.latency_kind
    qs, ls = QUALITY_SYMBOLS.get(metric, metric), LATENCY_SYMBOLS.get(kind, kind)
    zero_key, sat_key = QUALITY_KEYS[metric]
    lmax_key, lsat_key = LATENCY_KEYS[kind]
    lower = b.direction == "lower"
    zero_name = f"{qs}_max" if lower else f"{qs}_min"
    quality = [p.quality for p in front]
    lat = [p.latency_ms for p in front]
    worst, best = (max(quality), min(quality)) if lower else (min(quality), max(quality))
    # the frontier point each default came from, named in the output (a threshold is a point's figure)
    q_hi = front[int(np.argmax(quality))].label
    q_lo = front[int(np.argmin(quality))].label
    l_lo, l_hi = front[int(np.argmin(lat))].label, front[int(np.argmax(lat))].label
    rows = []
    if len(set(users.names)) == len(users.names):
        def one(name: str, key: str, values: np.ndarray, i: int, default: str) -> Threshold:
            given = bool(b.given[key][i])
            return Threshold(name, key, float(values[i]), "users file" if given else default)

        for i, n in enumerate(users.names):
            rows.append(TypeThresholds(
                n, one(zero_name, zero_key, b.q_zero, i,
                       f"frontier {'max' if lower else 'min'} ({q_hi if lower else q_lo})"),
                one(f"{qs}_sat", sat_key, b.q_sat, i,
                    f"frontier {'min' if lower else 'max'} ({q_lo if lower else q_hi})"),
                one(f"{ls}_sat", lsat_key, b.l_sat, i, f"frontier min ({l_lo})"),
                one(f"{ls}_max", lmax_key, b.l_max, i, f"frontier max ({l_hi})")))
    return Thresholds(metric, b.direction, kind, opts.latency, len(front), (worst, best), (min(lat), max(lat)),
                      tuple(sorted(rows, key=lambda r: r.user_type)))  # by name: no order of the types shows


@dataclass(frozen=True)
class PricingResult:
    options: PricingOptions
    trace_name: str
    trace_source: str
    trace_basis: str | None
    trace_tz: str | None
    currency: str
    users_source: str
    choice: Choice
    slots: slotsmod.Slots
    carbon: Carbon
    months: tuple[Month, ...]
    users: tuple[UserRow, ...]
    population: Population
    delta_star: np.ndarray  # per user row (vectorised form of users)
    value_per_request: float | None  # (E_H-E_R)(π_e + π_c CI) per request on average; None without prices
    notes: tuple[str, ...]
    users_default: bool = False  # the users were the example shipped with greenbench (no users file given)
    thresholds: Thresholds | None = None  # §3's thresholds of each user type, and where each came from
    user_arrays: UserArrays | None = None  # per user row: s_i, N_i, P_i, U_H, U_R (the discount curve reads them)

    @property
    def high_hours(self) -> int:
        return int(self.slots.high.sum())

    @property
    def trace_summary(self) -> TraceSummary:
        s = self.slots
        return TraceSummary(self.trace_name, self.trace_source, self.trace_basis, self.trace_tz, len(s.time_utc),
                            str(s.time_utc[0]) + "Z", s.periods)

    @property
    def options_used(self) -> OptionsUsed:
        """Every option as it ran: defaults resolved (utility k, forecast, I_cap, p_max, subscribers)."""
        o, s = self.options, self.slots
        k = None if o.utility_shape == "linear" else (
            o.utility_k if o.utility_k is not None else DEFAULT_UTILITY_K[o.utility_shape])
        return OptionsUsed(
            utility_shape=o.utility_shape, utility_k=k, quality_metric=self.choice.premium.quality_metric,
            quality_direction=self.choice.premium.direction, latency_kind=o.latency_kind,
            latency_statistic=o.latency, energy_basis=o.energy,
            forecast=s.forecast_used, forecast_option=s.policy.forecast, cap_mode=s.policy.cap_mode,
            cap_gco2e_per_kwh=s.cap_gco2e_per_kwh, cap_source=s.cap_source, daily_share=s.daily_share,
            p_max=s.p_max, p_max_source=s.p_max_source, truncation=s.policy.truncation,
            demand_profile=s.policy.demand, billing_period_hours=slotsmod.HOURS_PER_PERIOD,
            consciousness=o.consciousness, reward_per_gco2e=o.reward_per_gco2e,
            latency_slo_ms=o.latency_slo_ms, accuracy_floor=o.accuracy_floor,
            latency_ceiling_ms=o.latency_ceiling_ms, premium=o.premium, reduced=o.reduced,
            rank_by=self.choice.rank_utility, standard_price=o.standard_price, subscribers=self.population.subscribers,
            discount=o.discount, electricity_price_per_kwh=o.electricity_price_per_kwh,
            carbon_price_per_tonne=o.carbon_price_per_tonne)


@dataclass(frozen=True)
class TraceSummary:
    """The trace a result was priced on (the JSON document's "trace")."""

    name: str
    source: str
    basis: str | None
    tz: str | None
    hours: int
    start_utc: str  # ISO 8601 with a Z
    periods: float  # billing periods of 730 h


@dataclass(frozen=True)
class OptionsUsed:
    """The options that ran, defaults resolved (the JSON document's "options", in this order)."""

    utility_shape: str
    utility_k: float | None  # None for linear
    quality_metric: str  # the metric utility read (auto resolved)
    quality_direction: str  # higher | lower (is better)
    latency_kind: str  # e2e | ttft | tpot
    latency_statistic: str
    energy_basis: str
    forecast: str  # the forecast used (auto resolved)
    forecast_option: str  # as given
    cap_mode: str
    cap_gco2e_per_kwh: float | None  # I_cap; None in share mode
    cap_source: str
    daily_share: float | None  # q, share mode only
    p_max: float
    p_max_source: str
    truncation: str
    demand_profile: str
    billing_period_hours: float
    consciousness: str
    reward_per_gco2e: float | None
    latency_slo_ms: float | None
    accuracy_floor: float | None
    latency_ceiling_ms: float | None
    premium: str | None  # as named by --premium
    reduced: str | None  # as named by --reduced
    rank_by: str  # what ranked R
    standard_price: float | None  # as given
    subscribers: int  # as used
    discount: float | None  # as given
    electricity_price_per_kwh: float | None
    carbon_price_per_tonne: float | None


@dataclass(frozen=True)
class UptakeStep:
    """One step of the uptake curve: a discount of ``discount`` (a user type's δ*) is taken by ``uptake``."""

    discount: float  # share of P
    uptake: float  # share of subscribers
    types: tuple[str, ...]  # the user types whose δ* this is


def draw_users(users: Users, n: int, seed: int = 0, jitter: float = 0.0) -> Users:
    """n users drawn from the types by share; w_A and e jittered uniformly by ±jitter (clipped)."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(users), size=n, p=users.weight / users.weight.sum())
    drawn = users.take(idx, np.full(n, 1.0 / n))
    if jitter:
        wa = np.clip(drawn.accuracy_weight + rng.uniform(-jitter, jitter, n), 0, 1)
        e = np.clip(drawn.consciousness + rng.uniform(-jitter, jitter, n), 0, 1)
        drawn = replace(drawn, accuracy_weight=wa, consciousness=e)
    return drawn


def _prices(users: Users, opts: PricingOptions, u_h: np.ndarray) -> tuple[np.ndarray, str]:
    p = opts.standard_price if opts.standard_price is not None else users.standard_price
    if p is not None:
        return np.full(len(users), float(p)), f"{p:g} {users.currency} per period (" + (
            "--standard-price)" if opts.standard_price is not None else "users file)")
    return users.requests_per_period * users.value_per_request * u_h, "full valuation N·V·U_H of each user type"


def price_points(points: list[OperatingPoint], users: Users, trace, opts: PricingOptions = PricingOptions(),
                 excluded: tuple[str, ...] = (), slots: slotsmod.Slots | None = None,
                 choice: Choice | None = None) -> PricingResult:
    """The calculator on operating points (``price`` reads them from a profile).

    ``choice`` (from ``choose_points`` with the same points, users and options) skips choosing H
    and R again: they do not depend on the trace (see ``price_traces``). A result that overflows
    is refused with one line (``check_finite``), so numpy's overflow warnings are not printed too."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _price_points(points, users, trace, opts, excluded, slots, choice)


def _price_points(points, users, trace, opts, excluded, slots, choice) -> PricingResult:
    opts.check()
    if not points:
        raise PricingError("no operating points to price")
    if choice is None:
        choice = choose_points(points, users, opts, excluded)
    h, r = choice.premium, choice.reduced
    s = slots if slots is not None else slotsmod.select(trace, opts.slots)
    b = frontier_bounds(users, list(choice.frontier), opts)
    u = utility(users, b, [h.quality, r.quality], [h.latency_ms, r.latency_ms], opts.utility_shape, opts.utility_k)
    u_h, u_r = u[:, 0], u[:, 1]
    e_h, e_r = h.energy_j_per_item, r.energy_j_per_item
    if choice.mix is not None:  # §10: U_R and E_R of the mix itself (utility is not linear in quality)
        mx = choice.mix
        u_mix = utility(users, b, [p.quality for p in mx.points], [p.latency_ms for p in mx.points],
                        opts.utility_shape, opts.utility_k)
        u_r, e_r = u_mix @ np.array(mx.shares), mx.energy_j_per_item
    c = carbon(s, e_h, e_r)
    saved_user = users.requests_per_period * c.saved_g_per_request  # g per period per green user
    price, price_src = _prices(users, opts, u_h)
    beta = opts.reward_per_gco2e or 0.0
    ds = min_discount(e=users.consciousness, p_max=s.p_max, n=users.requests_per_period, v=users.value_per_request,
                      u_h=u_h, u_r=u_r, price=price, mode=opts.consciousness, beta=beta,
                      saved_g_per_period=saved_user)
    if opts.discount is not None:
        offered, offered_src = opts.discount, "offered (--discount)"
    elif float(ds.max()) > 1.0:  # a δ* above 1: no discount wins that type, so the default offer stops at 100%
        offered = 1.0
        offered_src = "not given: max δ* capped at 1 (100% of P): no discount wins every user type"
    else:
        offered = float(ds.max())
        offered_src = "not given: the smallest discount every user type takes (max δ*)"
    take = takes_up(offered, ds)
    unwinnable = ~takes_up(1.0, ds)  # δ* > 1: not even the whole price makes up this type's loss
    subs = opts.subscribers or users.subscribers or DEFAULT_SUBSCRIBERS
    w = users.weight / users.weight.sum()
    n = users.requests_per_period

    value_req = None
    if opts.electricity_price_per_kwh is not None or opts.carbon_price_per_tonne is not None:
        pe, pc = opts.electricity_price_per_kwh or 0.0, opts.carbon_price_per_tonne or 0.0
        wts = s.weight
        hi = np.where(s.high, wts, 0.0)
        value_req = float((e_h - e_r) / J_PER_KWH * (pe * hi.sum() + pc / G_PER_TONNE * float(hi @ s.intensity)))
    green_req = subs * float(np.sum(w * take * n))
    all_req = subs * float(np.sum(w * n))
    cost = subs * float(np.sum(w * take * offered * price))
    value = None if value_req is None else float(green_req * value_req)
    saved = green_req * c.saved_g_per_request
    base = all_req * c.c_base_g_per_request
    pop = Population(offered, offered_src, subs, float(np.sum(w * take)), subs * float(np.sum(w * take)), green_req,
                     all_req, saved, base, saved / base if base > 0 else 0.0, cost, value,
                     None if value is None else value - cost)

    rows = []
    names = users.names
    if len(set(names)) == len(names):  # one row per type (a drawn population is summarised elsewhere)
        for i, name in enumerate(names):
            net_i = None if value_req is None else n[i] * value_req - offered * price[i]
            rows.append(UserRow(name, float(w[i]), float(u_h[i]), float(u_r[i]), float(price[i]), float(ds[i]),
                                bool(take[i]), float(saved_user[i]), float(offered * price[i]), net_i,
                                no_discount_wins=bool(unwinnable[i])))

    months = []
    for m, label in enumerate(s.month_labels):
        mask = s.month == m
        months.append(Month(label, int(s.month_hours[m]), bool(s.complete_months[m]), float(s.p_month_candidate[m]),
                            float(s.p_month[m]), int(np.sum(s.high & mask)), carbon(s, e_h, e_r, mask)))

    check_finite({"C_base": c.c_base_g_per_request, "ΔC": c.saved_g_per_request, "ρ": c.rho, "ρ_blind": c.rho_blind,
                  "δ*": ds, "U_H": u_h, "U_R": u_r, "standard price P": price,
                  "population emissions": (pop.c_base_g, pop.saved_g, pop.green_requests, pop.all_requests),
                  "discount cost": pop.discount_cost, "net": 0.0 if pop.net is None else pop.net},
                 f"E_H {e_h:g} J and E_R {e_r:g} J per request, N up to {float(np.max(n)):g} requests and V up to "
                 f"{float(np.max(users.value_per_request)):g} {users.currency} per request, {subs} subscribers")

    notes = []
    used = set(QUALITY_KEYS[b.metric]) | set(LATENCY_KEYS[b.latency_kind])
    unused = sorted(k for k in {*QUALITY_KEYS_ALL, *LATENCY_KEYS_ALL} - used
                    if not np.all(np.isnan(users.threshold(k))))
    if unused:
        notes.append(f"thresholds in the users file that this run does not read (it prices {b.metric} and "
                     f"{opts.latency_kind} latency): "
                     + ", ".join(unused))
    served = [("R", r)] if choice.mix is None else [("R's mix", p) for p in choice.mix.points if p.label != h.label]
    for role, pt in (("H", h), *served):
        if not is_measurement(pt.energy_method):
            notes.append(f"energy of {role} ({pt.label}) is {method_note(pt.energy_method)}")
    notes.append(f"standard price P: {price_src}")
    if unwinnable.any():
        lost = sorted(set(n for n, x in zip(names, unwinnable, strict=True) if x))
        notes.append(f"no discount up to 100% wins {len(lost)} user type(s) (δ* > 1, max {float(ds.max()):.2%}): "
                     + ", ".join(lost[:5]) + (", ..." if len(lost) > 5 else "")
                     + ("; the default offer is capped at 100%" if opts.discount is None else ""))
    if opts.consciousness == "reward":
        notes.append(f"reward mode: δ* = max(0, p_max·N·V·(U_H-U_R) - e·β·ΔC)/P with β = {beta:g} "
                     f"{users.currency}/gCO2e and ΔC per user per period averaged over the trace")
    if not s.complete_months.all():
        partial = [lab for lab, ok in zip(s.month_labels, s.complete_months, strict=True) if not ok]
        notes.append(f"partial months (under {slotsmod.COMPLETE_MONTH_HOURS} hours): {', '.join(partial)}")
    notes.extend(s.notes)  # the slot selection's own (p_max = 0, share mode's whole hours, ...)
    return PricingResult(opts, getattr(trace, "name", "trace"), getattr(trace, "source", ""),
                         getattr(trace, "basis", None), getattr(trace, "tz", None), users.currency, users.source,
                         choice, s, c, tuple(months), tuple(rows), pop, ds, value_req, tuple(notes),
                         thresholds=thresholds(users, b, list(choice.frontier), opts),
                         user_arrays=UserArrays(tuple(names), w, n, price, u_h, u_r))


def check_finite(values: dict, inputs: str) -> None:
    """Refuse a result that is not a finite number (inputs so extreme that a product overflows):
    one line naming the first such figure, never an inf or NaN printed as if it were a result."""
    for name, v in values.items():
        arr = np.asarray(v, dtype=float)
        if not np.all(np.isfinite(arr)):
            raise PricingError(f"{name} is not a finite number (inf or NaN): the inputs are too extreme to price "
                               f"({inputs})")


def price_traces(points: list[OperatingPoint], users: Users | None, traces, opts: PricingOptions = PricingOptions(),
                 excluded: tuple[str, ...] = ()) -> list[PricingResult]:
    """The calculator on several traces (e.g. every zone): H and R are chosen once.

    ``users`` None: the example shipped with greenbench (``load_users()``); each result says so
    (``users_default``)."""
    opts.check()
    given = load_users() if users is None else users
    choice = choose_points(points, given, opts, excluded)
    results = [price_points(points, given, tr, opts, excluded, choice=choice) for tr in traces]
    return [replace(r, users_default=True) for r in results] if users is None else results


def price(profile, users: Users | None, trace, opts: PricingOptions = PricingOptions()) -> PricingResult:
    """The calculator of shared/docs/pricing-model.md on a profile, users (None: the shipped
    example, said in ``users_default``) and an hourly trace."""
    opts.check()
    points, excluded = operating_points(profile, latency=opts.latency, energy=opts.energy, quality=opts.quality,
                                        latency_kind=opts.latency_kind)
    return price_traces(points, users, [trace], opts, tuple(excluded))[0]


# ------------------------------------------------------------------------------------------------
# JSON


def uptake_steps(res: PricingResult) -> tuple[UptakeStep, ...]:
    """For each user type's δ*, ascending: the share of subscribers that a discount of δ* takes."""
    rows = sorted(res.users, key=lambda u: (u.delta_star, u.name))
    steps: list[tuple[float, float, list[str]]] = []  # names collected in lists: linear in the types
    cum = 0.0
    for u in rows:
        cum += u.share
        if steps and abs(steps[-1][0] - u.delta_star) <= 1e-12:
            steps[-1] = (steps[-1][0], cum, steps[-1][2])
            steps[-1][2].append(u.name)
        else:
            steps.append((u.delta_star, cum, [u.name]))
    return tuple(UptakeStep(d, up, tuple(names)) for d, up, names in steps)


def uptake_curve(res: PricingResult) -> list[dict]:
    """``uptake_steps`` as JSON: [{"discount", "uptake", "types"}]."""
    return [{"discount": st.discount, "uptake": st.uptake, "types": list(st.types)} for st in uptake_steps(res)]


def finite_or_none(x) -> float | None:
    """A float, or None for a missing or non-finite one (JSON has no inf or NaN)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _point(p: OperatingPoint) -> dict:
    return {"label": p.label, "model": p.model, "batch_size": p.batch_size, "concurrency": p.concurrency,
            "request_rate_per_s": p.request_rate_per_s, "precision": p.precision,
            "device": p.device, "hardware": p.hardware, "params": p.params, "quality_metric": p.quality_metric,
            "quality_direction": p.direction, "quality": p.quality,
            **{p.quality_metric: p.quality, "accuracy": p.accuracy}, "latency_ms": p.latency_ms,
            "energy_j_per_item": p.energy_j_per_item, "energy_method": p.energy_method,
            "energy_is_estimate": p.energy_method == "estimate",
            "energy_is_measurement": is_measurement(p.energy_method)}


def _thresholds(t: Thresholds) -> dict:
    return {"quality_metric": t.quality_metric, "quality_direction": t.quality_direction,
            "latency_kind": t.latency_kind, "latency_statistic": t.latency_statistic,
            "frontier_points": t.frontier_points,
            "frontier_quality_worst_best": list(t.quality_range),
            "frontier_latency_ms_min_max": list(t.latency_range_ms),
            "user_types": [{"name": u.user_type, **{f: asdict(getattr(u, f)) for f in
                                                   ("quality_zero", "quality_sat", "latency_sat", "latency_max")}}
                           for u in t.user_types]}


def _carbon(c: Carbon) -> dict:
    return {"p": c.p, "c_base_g_per_request": c.c_base_g_per_request, "saved_g_per_request": c.saved_g_per_request,
            "saved_kwh_per_request": c.saved_kwh_per_request, "rho": c.rho, "rho_blind": c.rho_blind,
            "rho_over_rho_blind": finite_or_none(c.awareness_ratio)}


def options_dict(res: PricingResult) -> dict:
    return asdict(res.options_used)


def to_dict(res: PricingResult) -> dict:
    ch, pop = res.choice, res.population
    return {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
        "trace": asdict(res.trace_summary),
        "users_file": res.users_source, "currency": res.currency,
        "options": options_dict(res),
        "premium": {**_point(ch.premium), "how": ch.premium_how},
        "reduced": {**_point(ch.reduced), "how": ch.reduced_how},
        "ranking": {"by": ch.rank_utility, "score": "(E_H - E_k) / (U_H - U_k), J per unit of utility",
                    "rows": [{"rank": r.rank, **_point(r.point), "utility": r.utility,
                              "energy_saved_j_per_item": r.energy_saved_j, "utility_lost": r.utility_lost,
                              "score": finite_or_none(r.score), "status": r.reason} for r in ch.ranking]},
        "frontier": [p.label for p in ch.frontier],
        "hardware_types": list(ch.hardware),
        "thresholds": None if res.thresholds is None else _thresholds(res.thresholds),
        "excluded_records": list(ch.excluded),
        "high_hours": res.high_hours,
        "carbon": {**_carbon(res.carbon), "e_h_j_per_item": ch.premium.energy_j_per_item,
                   "e_r_j_per_item": ch.reduced_energy_j_per_item},
        "months": [{"month": m.label, "hours": m.hours, "complete": m.complete, "p_candidate": m.p_candidate,
                    "p": m.p, "p_max": res.slots.p_max, "high_hours": m.high_hours, **_carbon(m.carbon)}
                   for m in res.months],
        "user_types": [{"name": u.name, "share": u.share, "u_h": u.u_h, "u_r": u.u_r, "standard_price": u.price,
                        "delta_star": u.delta_star, "takes_up": u.takes_up,
                        "saved_g_per_period": u.saved_g_per_period, "discount_cost_per_period": u.discount_cost,
                        "net_per_user_per_period": finite_or_none(u.net_per_user),
                        "no_discount_wins": u.no_discount_wins} for u in res.users],
        "uptake_curve": uptake_curve(res),
        "population": {"discount": pop.discount, "discount_source": pop.discount_source, "subscribers": pop.subscribers,
                       "uptake": pop.uptake, "green_subscribers": pop.green_subscribers,
                       "green_requests_per_period": pop.green_requests, "requests_per_period": pop.all_requests,
                       "saved_g_per_period": pop.saved_g, "c_base_g_per_period": pop.c_base_g, "rho": pop.rho,
                       "discount_cost_per_period": pop.discount_cost,
                       "savings_value_per_period": finite_or_none(pop.savings_value),
                       "net_per_period": finite_or_none(pop.net)},
        "notes": list(res.notes),
        "users_default": res.users_default,
        "mix": None if ch.mix is None else mixmod.mix_dict(ch.mix, [(u.name, u.u_r) for u in res.users]),
    }


def dumps(doc: dict) -> str:
    """A pricing document as JSON: indented, no NaN or inf, ending in a newline."""
    return json.dumps(doc, indent=1, allow_nan=False, ensure_ascii=False) + "\n"


def to_json(res: PricingResult) -> str:
    """The JSON document (schema greenbench/price, indented), ending in a newline."""
    return dumps(to_dict(res))
