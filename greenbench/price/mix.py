"""A reduced tier on the fitted frontier (shared/docs/pricing-model.md §10), and the operating
points of what ``greenbench fit`` writes (tradeoff.json), for the calculator.

Library only (numpy; no typer, no rich). ``greenbench.price.calculator`` imports this module, never
the other way round (the errors here are ``InputError``; the calculator turns a ``None`` into its own
``PricingError``).

**Mixing.** Serving a share f of the reduced requests at point a and 1 - f at point b gives, per
request and for every user type i::

    E_R   = f·E_a + (1 - f)·E_b            (J per request)
    U_R,i = f·U_a,i + (1 - f)·U_b,i        (expected utility)

so every point of the lower convex hull of (U, E) over H and the eligible frontier points is
achievable by routing. Utility is a nonlinear function of quality and latency, so a mix is never an
interpolated ``OperatingPoint``: the calculator mixes U_R and E_R themselves. ΔC is linear in E_R, so
ΔC of a mix is f·ΔC_a + (1 - f)·ΔC_b, and δ* follows from U_R as for a single R. Either point may be
H itself: requests routed to H are simply not degraded.

**What a mix can gain.** §7 ranks R by the score s = (E_H - E_R) / (Ū_H - Ū_R), J per unit of
ranking utility (the share-weighted mean, or ``--rank-by``'s type). Along a mix of a and b,
s(f) = (f·ΔE_a + (1-f)·ΔE_b) / (f·ΔU_a + (1-f)·ΔU_b) is a ratio of two affine functions of f: monotone
in f, and between s_a and s_b (a weighted mediant). So **without a further constraint the best mix
is the best single point** (f = 1, reported as such: gain 0), and the invariant "a mixed R never
saves less energy per unit of utility lost than the best single R" holds with equality. A mix gains
where the reduced tier must keep a least ranking utility, Ū_R >= ``utility_floor``
(``PricingOptions.mix_utility_floor``): single points must then sit at or above the floor, while a
mix of H and the best single point v (which fails it) keeps exactly the floor at v's own score. That
mix lies on the hull edge H-v, below every point at that utility: at the floor it saves more energy
per unit of utility lost than any single point that keeps the floor.

**The choice** (``best_mix``): over every single eligible point and every two-point mix of H and
the eligible points, meeting the floor, the highest score; ties: a single point before a mix, then
higher Ū_R, then labels. Along a mix with H the score is constant, so f is the smallest share at H
that keeps the floor (the most energy saved). The candidates are pairs: the best of a linear-fractional
score over a polygon cut by the floor is at one of its vertices, which are points or the crossing of
a hull edge (two points) with the floor. Reported: the two points and f, E_R and Ū_R of the mix, its
score, the best single point that keeps the floor (or why none does) and the gain over it (score
ratio, energy saved difference), the lower hull's vertices and each eligible point's energy above the
hull at its own utility (what a mix at that utility would save beyond the point).

**tradeoff.json** (``load_tradeoff``): read bounded and safely (``greenbench.safeload``), schema
``greenbench/tradeoff`` v1 checked key by key (one ``InputError`` line naming the file, the point and
the key). It yields every point fit listed (quality in the fit's metric, latency of the fit's kind
and statistic, energy of the fit's basis, with its method) as ``OperatingPoint`` values, the
frontier's labels and the excluded records; ``pricing_settings`` gives the options the points were
fit with (price them with those), ``settings_conflicts`` names any option given that differs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from greenbench.methods import METHODS, UNAVAILABLE
from greenbench.profile import QUALITY_DIRECTIONS
from greenbench.safeload import InputError, load_json, read_text
from greenbench.tradeoff.outputs import TRADEOFF_SCHEMA, TRADEOFF_SCHEMA_VERSION
from greenbench.tradeoff.points import (
    ENERGY_BASES,
    FRACTION_METRICS,
    LATENCY_KINDS,
    LATENCY_STATS,
    QUALITY_METRICS,
    OperatingPoint,
)

SCORE_RTOL = 1e-12  # two scores this close (relative) are a tie, broken as documented
FLOOR_ATOL = 1e-12  # a utility this far below the floor keeps it: utilities carry float rounding
MAX_TRADEOFF_BYTES = 64 * 2**20  # as a profile: a fit of hundreds of points is a few MiB


# ------------------------------------------------------------------------------------------------
# §10 the mix


@dataclass(frozen=True)
class Candidate:
    """A point that may serve reduced requests, with its ranking utility Ū (what ranked R)."""

    point: OperatingPoint
    utility: float


@dataclass(frozen=True)
class HullGap:
    """An eligible point against the lower hull of (Ū, E) at its own utility."""

    label: str
    utility: float
    energy_j_per_item: float
    hull_energy_j_per_item: float  # the least energy any mix reaches at this utility

    @property
    def energy_above_hull_j_per_item(self) -> float:
        """Energy per request a mix at the same utility saves beyond this point (0 on the hull)."""
        return max(0.0, self.energy_j_per_item - self.hull_energy_j_per_item)


@dataclass(frozen=True)
class Mix:
    """The reduced tier as a mix: a share ``share_a`` of reduced requests at ``point_a``, the rest
    at ``point_b`` (None: a single point, share_a = 1). Utilities are ranking utilities (Ū)."""

    premium: OperatingPoint
    premium_utility: float  # Ū_H
    point_a: OperatingPoint  # the higher-utility point of the two (it may be H itself)
    point_b: OperatingPoint | None
    share_a: float  # f in [0, 1]
    utility_a: float
    utility_b: float | None
    energy_j_per_item: float  # E_R = f·E_a + (1-f)·E_b
    utility: float  # Ū_R = f·Ū_a + (1-f)·Ū_b
    energy_saved_j_per_item: float  # E_H - E_R
    utility_lost: float  # Ū_H - Ū_R
    score: float  # (E_H - E_R) / (Ū_H - Ū_R), J per unit of utility
    utility_floor: float | None  # Ū_R >= this (None: no floor)
    best_single: Candidate | None  # the best single eligible point that keeps the floor
    best_single_score: float | None
    best_single_energy_saved_j_per_item: float | None
    best_single_utility_lost: float | None
    best_single_reason: str  # why there is none, else ""
    hull: tuple[str, ...]  # labels of the lower hull's vertices, by utility (H last)
    above_hull: tuple[HullGap, ...]  # every eligible point, by label
    how: str  # one sentence: what was chosen and why

    @property
    def is_single(self) -> bool:
        return self.point_b is None

    @property
    def points(self) -> tuple[OperatingPoint, ...]:
        return (self.point_a,) if self.point_b is None else (self.point_a, self.point_b)

    @property
    def shares(self) -> tuple[float, ...]:
        """The share of reduced requests at each of ``points``."""
        return (1.0,) if self.point_b is None else (self.share_a, 1.0 - self.share_a)

    @property
    def score_ratio(self) -> float | None:
        """The mix's score over the best single point's (>= 1); None without such a point."""
        s = self.best_single_score
        return None if s is None or s <= 0 else self.score / s

    @property
    def energy_saved_gain_j_per_item(self) -> float | None:
        """Energy saved per reduced request by the mix beyond the best single point (may be < 0:
        the single point loses more utility); None without such a point."""
        s = self.best_single_energy_saved_j_per_item
        return None if s is None else self.energy_saved_j_per_item - s


@dataclass(frozen=True)
class _Option:
    """One candidate of the choice: a single point (b None) or a two-point mix."""

    a: Candidate
    b: Candidate | None
    f: float
    saved: float
    lost: float
    score: float

    @property
    def utility(self) -> float:
        return self.a.utility if self.b is None else self.f * self.a.utility + (1 - self.f) * self.b.utility

    @property
    def labels(self) -> tuple[str, ...]:
        return (self.a.point.label,) if self.b is None else (self.a.point.label, self.b.point.label)


def _better(x: _Option, y: _Option | None) -> bool:
    """x ranks before y: higher score (within SCORE_RTOL a tie), a single point before a mix,
    higher Ū_R, then labels."""
    if y is None:
        return True
    tol = SCORE_RTOL * max(abs(x.score), abs(y.score))
    if abs(x.score - y.score) > tol:
        return x.score > y.score
    if (x.b is None) != (y.b is None):
        return x.b is None
    if x.utility != y.utility:
        return x.utility > y.utility
    return x.labels < y.labels


def lower_hull(xs: Sequence[float], ys: Sequence[float]) -> list[int]:
    """Indices of the lower convex hull of the points (x, y), by x ascending (monotone chain).
    Points on a hull edge are left out; of points with the same x, the lowest y."""
    order = sorted(range(len(xs)), key=lambda i: (xs[i], ys[i]))
    hull: list[int] = []
    for i in order:
        if hull and xs[hull[-1]] == xs[i]:
            continue  # same x, higher (or equal) y: never below the one kept
        while len(hull) >= 2:
            o, a = hull[-2], hull[-1]
            cross = (xs[a] - xs[o]) * (ys[i] - ys[o]) - (ys[a] - ys[o]) * (xs[i] - xs[o])
            if cross <= 0:  # a lies on or above the segment o-i: not a vertex of the lower hull
                hull.pop()
            else:
                break
        hull.append(i)
    return hull


def hull_value(hx: Sequence[float], hy: Sequence[float], x: float) -> float:
    """The lower hull (vertices ``hx``, ``hy`` by x) at x: the least y any mix reaches there."""
    if x <= hx[0]:
        return float(hy[0])
    for j in range(1, len(hx)):
        if x <= hx[j]:
            t = (x - hx[j - 1]) / (hx[j] - hx[j - 1])
            return float(hy[j - 1] + t * (hy[j] - hy[j - 1]))
    return float(hy[-1])


def best_mix(premium: Candidate, eligible: Sequence[Candidate], utility_floor: float | None = None) -> Mix | None:
    """The best reduced tier by §7's score over single points and two-point mixes (module docstring).

    ``premium``: H with Ū_H; ``eligible``: the points §7 found eligible for R (less energy than H,
    some utility lost, within the floor and ceiling), each with Ū. None when nothing meets the floor
    (no eligible point, or a floor at or above Ū_H)."""
    h, u_h = premium.point, premium.utility
    e_h = h.energy_j_per_item
    cands = sorted(eligible, key=lambda c: c.point.label)  # no order of the input shows
    if not cands or (utility_floor is not None and utility_floor >= u_h):
        return None
    floor = -math.inf if utility_floor is None else utility_floor

    def single(c: Candidate) -> _Option:
        saved, lost = e_h - c.point.energy_j_per_item, u_h - c.utility
        return _Option(c, None, 1.0, saved, lost, saved / lost)

    singles = [single(c) for c in cands]
    keeps = [o.a.utility >= floor - FLOOR_ATOL for o in singles]
    options = [o for o, k in zip(singles, keeps, strict=True) if k]
    best_single = None
    for o in options:
        if _better(o, best_single):
            best_single = o
    # mixes with H: the score is b's own at every share; the least share at H that keeps the floor
    for o, k in zip(singles, keeps, strict=True):
        if not k:
            f = (floor - o.a.utility) / (u_h - o.a.utility)  # in (0, 1): Ū_b < floor < Ū_H
            options.append(_Option(premium, o.a, f, (1 - f) * o.saved, (1 - f) * o.lost, o.score))
    # mixes of two eligible points: only where the floor cuts their segment (else an end is better)
    for i, a in enumerate(singles):
        for b in singles[i + 1:]:
            hi, lo = (a, b) if a.a.utility >= b.a.utility else (b, a)
            if not (hi.a.utility > floor + FLOOR_ATOL and floor - FLOOR_ATOL > lo.a.utility):
                continue
            f = (floor - lo.a.utility) / (hi.a.utility - lo.a.utility)
            saved, lost = f * hi.saved + (1 - f) * lo.saved, f * hi.lost + (1 - f) * lo.lost
            options.append(_Option(hi.a, lo.a, f, saved, lost, saved / lost))
    best = None
    for o in options:
        if _better(o, best):
            best = o
    assert best is not None  # a mix with H keeps any floor below Ū_H

    # the lower hull of (Ū, E) over H and the eligible points
    pts = [premium, *cands]
    xs, ys = [c.utility for c in pts], [c.point.energy_j_per_item for c in pts]
    hull_idx = lower_hull(xs, ys)
    hx, hy = [xs[i] for i in hull_idx], [ys[i] for i in hull_idx]
    gaps = tuple(HullGap(c.point.label, c.utility, c.point.energy_j_per_item, hull_value(hx, hy, c.utility))
                 for c in cands)

    b_pt = None if best.b is None else best.b.point
    if best.b is None:
        how = ("the best single point: a mix of two points scores between their own scores, so no mix beats it"
               + ("" if utility_floor is None else f" (it keeps the utility floor {utility_floor:g})"))
    elif best.a.point.label == h.label:
        assert best.b is not None
        how = (f"a mix of H and {best.b.point.label}: a share {best.f:.4g} of reduced requests at H (not degraded) "
               f"and {1 - best.f:.4g} at {best.b.point.label}, which alone falls below the utility floor "
               f"{utility_floor:g}; the mix keeps the floor at {best.b.point.label}'s own score")
    else:
        assert best.b is not None
        how = (f"a mix of {best.a.point.label} and {best.b.point.label} at the utility floor {utility_floor:g}: "
               f"a share {best.f:.4g} at {best.a.point.label}")
    why_none = "" if best_single is not None else (
        f"no single eligible point keeps the utility floor {utility_floor:g}")
    return Mix(
        premium=h, premium_utility=u_h, point_a=best.a.point, point_b=b_pt, share_a=best.f,
        utility_a=best.a.utility, utility_b=None if best.b is None else best.b.utility,
        energy_j_per_item=e_h - best.saved, utility=u_h - best.lost, energy_saved_j_per_item=best.saved,
        utility_lost=best.lost, score=best.score, utility_floor=utility_floor,
        best_single=None if best_single is None else best_single.a,
        best_single_score=None if best_single is None else best_single.score,
        best_single_energy_saved_j_per_item=None if best_single is None else best_single.saved,
        best_single_utility_lost=None if best_single is None else best_single.lost,
        best_single_reason=why_none, hull=tuple(pts[i].point.label for i in hull_idx), above_hull=gaps, how=how)


def _finite(x: float | None) -> float | None:
    if x is None:
        return None
    return float(x) if math.isfinite(x) else None


def _brief(p: OperatingPoint, utility: float | None, premium: OperatingPoint) -> dict:
    return {"label": p.label, "is_premium": p.label == premium.label, "quality_metric": p.quality_metric,
            "quality": p.quality, "latency_ms": p.latency_ms, "energy_j_per_item": p.energy_j_per_item,
            "energy_method": p.energy_method, "utility": utility}


def mix_dict(m: Mix, utility_by_type: Sequence[tuple[str, float]] = ()) -> dict:
    """The JSON of a mix (``greenbench/price`` "mix"; no NaN or infinity). ``utility_by_type``:
    (user type, U_R of the mix) from the priced result."""
    single = m.best_single
    return {
        "utility_floor": m.utility_floor,
        "point_a": _brief(m.point_a, m.utility_a, m.premium),
        "point_b": None if m.point_b is None else _brief(m.point_b, m.utility_b, m.premium),
        "share_a": m.share_a, "share_b": 1.0 - m.share_a if m.point_b is not None else 0.0,
        "is_single": m.is_single,
        "energy_j_per_item": m.energy_j_per_item, "utility": m.utility,
        "utility_by_type": [{"name": n, "u_r": u} for n, u in utility_by_type],
        "energy_saved_j_per_item": m.energy_saved_j_per_item, "utility_lost": m.utility_lost,
        "score": _finite(m.score),
        "best_single": None if single is None else {
            "label": single.point.label, "utility": single.utility, "score": _finite(m.best_single_score),
            "energy_saved_j_per_item": m.best_single_energy_saved_j_per_item,
            "utility_lost": m.best_single_utility_lost},
        "best_single_reason": m.best_single_reason or None,
        "gain": {"score_ratio": _finite(m.score_ratio),
                 "energy_saved_j_per_item": _finite(m.energy_saved_gain_j_per_item),
                 "reason": None if single is not None else m.best_single_reason},
        "hull": list(m.hull),
        "above_hull": [{"label": g.label, "utility": g.utility, "energy_j_per_item": g.energy_j_per_item,
                        "hull_energy_j_per_item": g.hull_energy_j_per_item,
                        "energy_above_hull_j_per_item": g.energy_above_hull_j_per_item} for g in m.above_hull],
        "how": m.how,
    }


# ------------------------------------------------------------------------------------------------
# tradeoff.json -> operating points


class FitSettings(TypedDict):
    """The ``PricingOptions`` fields a tradeoff's points were fitted with: ``replace(opts, **s)``."""

    quality: str
    latency: str
    latency_kind: str
    energy: str


@dataclass(frozen=True)
class TradeoffPoints:
    """The operating points of a tradeoff.json, with the settings they were fitted with."""

    source: str
    points: tuple[OperatingPoint, ...]  # every point fit listed (the calculator finds the frontier again)
    frontier: tuple[str, ...]  # the frontier's labels as fit wrote them
    excluded: tuple[str, ...]  # the profile records fit left out, and why
    quality_metric: str
    latency: str  # the statistic (p95, ...)
    latency_kind: str  # e2e | ttft | tpot
    energy: str  # gross | net
    profile_path: str | None  # the profile fit read, as fit recorded it

    def pricing_settings(self) -> FitSettings:
        """The ``PricingOptions`` fields the points were fitted with: price them with these."""
        return {"quality": self.quality_metric, "latency": self.latency, "latency_kind": self.latency_kind,
                "energy": self.energy}

    def settings_conflicts(self, *, quality: str = "auto", latency: str | None = None,
                           latency_kind: str | None = None, energy: str | None = None) -> tuple[str, ...]:
        """One line per option given that the file cannot honour (its points hold one latency,
        one energy basis and one quality metric); ``quality`` auto and None match anything."""
        out = []
        for opt, given, have in (("--quality", None if quality == "auto" else quality, self.quality_metric),
                                 ("--latency", latency, self.latency), ("--latency-kind", latency_kind,
                                                                        self.latency_kind),
                                 ("--energy", energy, self.energy)):
            if given is not None and given != have:
                out.append(f"{opt} {given}: {self.source} was fitted with {opt} {have}; refit the profile with "
                           f"{opt} {given}, or price the profile itself")
        return tuple(out)


def load_tradeoff(path: Path | str) -> TradeoffPoints:
    """tradeoff.json (as ``greenbench fit`` writes it) as operating points, or one InputError line."""
    src = str(path)
    doc = load_json(read_text(path, what="tradeoff document", max_bytes=MAX_TRADEOFF_BYTES), src)
    return tradeoff_points(doc, src)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def tradeoff_points(doc: Any, source: str = "tradeoff.json") -> TradeoffPoints:
    """``load_tradeoff`` on a parsed document (e.g. ``greenbench.tradeoff.outputs.to_doc``)."""
    def bad(msg: str) -> InputError:
        return InputError(f"{source}: {msg}")

    if not isinstance(doc, dict):
        raise bad("not a tradeoff document (a JSON object written by `greenbench fit`)")
    schema = doc.get("schema")
    if schema != TRADEOFF_SCHEMA:
        hint = " (a profile: price takes it as is)" if schema == "greenbench/profile" else ""
        raise bad(f"schema {schema!r}, not {TRADEOFF_SCHEMA!r}{hint}; write one with `greenbench fit`")
    version = doc.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise bad(f"schema_version {version!r}: expected {TRADEOFF_SCHEMA_VERSION}")
    if version > TRADEOFF_SCHEMA_VERSION:
        raise bad(f"schema_version {version} was written by a newer greenbench (this one reads "
                  f"{TRADEOFF_SCHEMA_VERSION}); upgrade greenbench or refit")
    settings = doc.get("settings")
    if not isinstance(settings, dict):
        raise bad("no 'settings' object (quality metric, latency and energy basis of the points)")
    allowed = {"quality_metric": QUALITY_METRICS, "latency": LATENCY_STATS, "latency_kind": LATENCY_KINDS,
               "energy": ENERGY_BASES}
    for key, choices in allowed.items():
        if settings.get(key) not in choices:
            raise bad(f"settings.{key} {settings.get(key)!r}: expected one of {', '.join(choices)}")
    metric = settings["quality_metric"]
    direction = QUALITY_DIRECTIONS[metric]
    if "quality_direction" in settings and settings["quality_direction"] != direction:
        raise bad(f"settings.quality_direction {settings['quality_direction']!r}: {metric} is better {direction}")
    rows = doc.get("points")
    if not isinstance(rows, list) or not rows:
        raise bad("no 'points' list, or an empty one: nothing to price")
    points: list[OperatingPoint] = []
    seen: set[str] = set()
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise bad(f"point {i} is not an object")
        label = row.get("label")
        if not isinstance(label, str) or not label:
            raise bad(f"point {i} has no 'label'")
        if label in seen:
            raise bad(f"point {label!r} is listed twice")
        seen.add(label)
        where = f"point {i} ({label})"

        def need(key: str, kind: str, _row: dict = row, _where: str = where) -> Any:
            if key not in _row or _row[key] is None:
                raise bad(f"{_where} has no {key!r}; pricing needs its {metric}, latency_ms, energy_j_per_item "
                          "and energy_method (refit with `greenbench fit`)")
            v = _row[key]
            if kind == "str" and not isinstance(v, str):
                raise bad(f"{_where}: {key!r} {v!r} is not text")
            if kind == "pos" and not (_num(v) and math.isfinite(v) and v > 0):
                raise bad(f"{_where}: {key!r} {v!r} is not a positive finite number")
            if kind == "num" and not (_num(v) and math.isfinite(v)):
                raise bad(f"{_where}: {key!r} {v!r} is not a finite number")
            return v

        def opt_int(key: str, _row: dict = row, _where: str = where) -> int | None:
            v = _row.get(key)
            if v is None:
                return None
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise bad(f"{_where}: {key!r} {v!r} is not a positive whole number")
            return v

        q = float(need(metric, "num"))
        if metric in FRACTION_METRICS and not 0.0 <= q <= 1.0:
            raise bad(f"{where}: {metric} {q:g} is outside [0, 1]")
        if metric == "perplexity" and q < 1.0:
            raise bad(f"{where}: perplexity {q:g} is below 1")
        method = need("energy_method", "str")
        if method not in METHODS or method == UNAVAILABLE:
            raise bad(f"{where}: energy_method {method!r}: expected one of "
                      f"{', '.join(m for m in METHODS if m != UNAVAILABLE)}")
        rate = row.get("request_rate_per_s")
        if rate is not None and not (_num(rate) and math.isfinite(rate) and rate > 0):
            raise bad(f"{where}: 'request_rate_per_s' {rate!r} is not a positive finite number")
        params = row.get("params")
        if params is not None and (not isinstance(params, int) or isinstance(params, bool) or params < 0):
            raise bad(f"{where}: 'params' {params!r} is not a whole number")
        hardware = row.get("hardware")  # absent from a tradeoff.json of an earlier greenbench
        if hardware is not None and not isinstance(hardware, str):
            raise bad(f"{where}: 'hardware' {hardware!r} is not text")
        points.append(OperatingPoint(
            label=label, model=need("model", "str"), batch_size=opt_int("batch_size"),
            precision=need("precision", "str"), device=need("device", "str"), params=params, quality=q,
            latency_ms=float(need("latency_ms", "pos")), energy_j_per_item=float(need("energy_j_per_item", "pos")),
            energy_method=method, quality_metric=metric, concurrency=opt_int("concurrency"),
            request_rate_per_s=None if rate is None else float(rate), hardware=hardware or None))
    frontier = doc.get("frontier", [])
    if not isinstance(frontier, list) or not all(isinstance(x, str) for x in frontier):
        raise bad("'frontier' is not a list of labels")
    unknown = [x for x in frontier if x not in seen]
    if unknown:
        raise bad(f"'frontier' names {unknown[0]!r}, which is not one of its points")
    excluded = doc.get("excluded", [])
    if not isinstance(excluded, list) or not all(isinstance(x, str) for x in excluded):
        raise bad("'excluded' is not a list of lines")
    prof = doc.get("profile")
    prof_path = prof.get("path") if isinstance(prof, dict) and isinstance(prof.get("path"), str) else None
    return TradeoffPoints(source, tuple(sorted(points, key=OperatingPoint.sort_key)), tuple(frontier),
                          tuple(excluded), metric, settings["latency"], settings["latency_kind"], settings["energy"],
                          prof_path)
