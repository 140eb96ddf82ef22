"""Operating points and the Pareto frontier of a profile: what pricing needs of the tradeoff.

Library only (no typer, no rich, no scipy). A profile's ok records become ``OperatingPoint``
values with one quality metric, one latency (kind and statistic) and one energy basis chosen up
front, so that everything downstream (the frontier, the fits in ``curves``, pricing) compares like
with like.

Quality has a metric and a direction (``greenbench.profile.schema.QUALITY_DIRECTIONS``): accuracy
and exact match are better higher, perplexity lower. Latency is what the user waits: the batch
latency of a batched classifier (every request of a batch waits for it), or for generation the end
to end request latency (``e2e``, the default), the time to first token (``ttft``) or the time per
output token (``tpot``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from greenbench.errors import GreenbenchError
from greenbench.profile import QUALITY_DIRECTIONS, Profile, Record, setting_label


class TradeoffError(GreenbenchError):
    """No usable operating point, or an unknown option (one line)."""


Direction = Literal["higher", "lower"]
QUALITY_METRICS = tuple(QUALITY_DIRECTIONS)  # accuracy, exact_match, perplexity
# Metrics that are a share of items (in [0, 1]); the others (perplexity) are positive numbers.
FRACTION_METRICS = ("accuracy", "exact_match")
# How tables and formulas abbreviate each metric (A_min, PPL_max, ...).
QUALITY_SYMBOL = {"accuracy": "A", "exact_match": "EM", "perplexity": "PPL"}


@dataclass(frozen=True)
class OperatingPoint:
    label: str  # unique within the list: Record.label, e.g. "cnn-64 b256 fp32 cpu", "qwen c16 bf16 cuda:0"
    model: str
    batch_size: int | None  # None for a served point (its load is concurrency and/or a request rate)
    precision: str
    device: str
    params: int | None
    quality: float  # the task metric in its own units (accuracy in [0, 1], perplexity >= 1)
    latency_ms: float  # per request: batch latency, or for generation e2e / TTFT / TPOT
    energy_j_per_item: float  # per item (a request); gross (what the meter saw) unless net was asked for
    energy_method: str  # one of greenbench.methods.METHODS; never "unavailable"
    quality_metric: str = "accuracy"  # accuracy | exact_match | perplexity
    concurrency: int | None = None  # closed-loop requests in flight (served points)
    request_rate_per_s: float | None = None  # open-loop Poisson arrivals (served points)
    # What the point ran on (``Record.hardware``): a fleet's accelerator type ("H100", "L4"), else
    # the device's own name ("NVIDIA L4", the CPU model); None when the profile does not say.
    hardware: str | None = None

    @property
    def direction(self) -> Direction:
        return QUALITY_DIRECTIONS.get(self.quality_metric, "higher")

    @property
    def goodness(self) -> float:
        """Quality oriented so that larger is better (perplexity negated): what comparisons use."""
        return self.quality if self.direction == "higher" else -self.quality

    @property
    def accuracy(self) -> float | None:
        """The accuracy of an accuracy-scored point, else None."""
        return self.quality if self.quality_metric == "accuracy" else None

    @property
    def setting(self) -> str:
        """``b8``, ``c16``, ``r2/s c16``: the point's resource setting, as its label writes it."""
        return setting_label(self.batch_size, self.concurrency, self.request_rate_per_s)

    @property
    def resource(self) -> tuple[str, float]:
        """The axis this point's resources are set on and its value: batch size (in-process), else
        concurrency (served, closed loop), else the request rate (served, open loop)."""
        if self.batch_size is not None:
            return "batch_size", float(self.batch_size)
        if self.concurrency is not None:
            return "concurrency", float(self.concurrency)
        return "request_rate_per_s", float(self.request_rate_per_s or 0.0)

    def sort_key(self) -> tuple[str, int, float, float, float, str, str, str]:
        return (self.model, self.batch_size is None, float(self.batch_size or 0), float(self.concurrency or 0),
                float(self.request_rate_per_s or 0.0), self.precision, self.device, self.label)


def format_quality(value: float | None, metric: str) -> str:
    """A quality figure as tables print it: a share to 3 decimals, a perplexity to 3 figures."""
    if value is None:
        return "—"
    if metric in FRACTION_METRICS:
        return f"{value:.3f}"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


# Statistic name -> the record field holding it, per latency kind.
LATENCY_STATS = ("p95", "p50", "p90", "p99", "mean")
LATENCY_KINDS = ("e2e", "ttft", "tpot")
LATENCY_FIELD = {s: f"latency_{s}_ms" for s in LATENCY_STATS}  # e2e: per batch, or per served request
LATENCY_KIND_WORDS = {
    "e2e": "latency per request (a batch's latency for batched inference; end to end for a served request)",
    "ttft": "time to first token",
    "tpot": "time per output token after the first",
}
LATENCY_SYMBOL = {"e2e": "L", "ttft": "TTFT", "tpot": "TPOT"}
# Energy basis -> record field. Net subtracts idle power x time (see the profile's idle section).
ENERGY_BASES = ("gross", "net")
ENERGY_FIELD = {"gross": "energy_j_per_item", "net": "energy_net_j_per_item"}


def latency_field_of(stat: str, kind: str) -> str:
    """``latency_field`` without the checks (both names known)."""
    if kind == "e2e":
        return LATENCY_FIELD[stat]
    return "tpot_ms" if kind == "tpot" and stat == "mean" else f"{kind}_{stat}_ms"


def latency_field(stat: str = "p95", kind: str = "e2e") -> str:
    """The record field of a latency kind and statistic: latency_p95_ms, ttft_p95_ms, tpot_p95_ms;
    the mean TTFT is ttft_mean_ms and the mean TPOT tpot_ms."""
    if stat not in LATENCY_STATS:
        raise TradeoffError(f"latency statistic {stat!r}: choose one of {', '.join(LATENCY_STATS)}",
                            option="--latency")
    if kind not in LATENCY_KINDS:
        raise TradeoffError(f"latency kind {kind!r}: choose one of {', '.join(LATENCY_KINDS)}",
                            option="--latency-kind")
    return latency_field_of(stat, kind)


def latency_header(stat: str = "p95", kind: str = "e2e") -> str:
    """A table header for the latency: "p95 ms", "TTFT p95 ms", "TPOT p95 ms"."""
    return f"{stat} ms" if kind == "e2e" else f"{LATENCY_SYMBOL[kind]} {stat} ms"


def record_metric(r: Record) -> str | None:
    """The metric a record was scored by (accuracy where it has one and names none)."""
    return r.quality_metric or ("accuracy" if r.accuracy is not None else None)


def quality_of(r: Record, metric: str) -> float | None:
    """The record's figure of ``metric`` (accuracy, perplexity, or one of its other quality figures)."""
    if metric == "accuracy":
        return r.accuracy
    if metric == "perplexity":
        return r.perplexity
    return r.quality.get(metric)


def profile_metric(profile: Profile, quality: str = "auto") -> str:
    """The quality metric to read: ``quality`` as given, or (``auto``) the one most ok records were
    scored by (ties: accuracy, exact_match, perplexity); accuracy when none was scored."""
    if quality != "auto":
        if quality not in QUALITY_DIRECTIONS:
            raise TradeoffError(f"quality metric {quality!r}: choose auto or one of {', '.join(QUALITY_METRICS)}",
                                option="--quality")
        return quality
    counts = Counter(m for r in profile.records if r.status == "ok" and (m := record_metric(r)) in QUALITY_DIRECTIONS)
    if not counts:
        return "accuracy"
    return max(QUALITY_METRICS, key=lambda m: (counts.get(m, 0), -QUALITY_METRICS.index(m)))


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _why_excluded(r: Record, metric: str, latency_field: str, energy: str) -> str | None:
    """Why this record cannot be an operating point, or None when it can."""
    if r.status != "ok":
        return f"{r.status}" + (f": {r.error}" if r.error else "")
    q = quality_of(r, metric)
    if q is None or not math.isfinite(q):
        other = record_metric(r)
        if other and other != metric:
            return f"{metric} missing (scored by {other}: --quality {other})"
        return f"{metric} missing"
    if metric in FRACTION_METRICS and not 0.0 <= q <= 1.0:
        return f"{metric} {q} outside [0, 1]"
    if metric == "perplexity" and q < 1.0:
        return f"perplexity {q} below 1"
    lat = getattr(r, latency_field)
    if not _finite(lat):
        kind = next((k for k in LATENCY_KINDS if k != "e2e" and latency_field.startswith(k)), "e2e")
        have = [s for s in LATENCY_STATS if _finite(getattr(r, latency_field_of(s, kind)))]
        return f"{latency_field} missing" + (f" (it has --latency {', '.join(have)})" if have else "")
    if lat <= 0:
        return f"{latency_field} = {lat} is not positive"
    if r.energy_method == "unavailable" or not _finite(r.energy_j_per_item):
        return "energy unavailable" + (f": {r.energy_reason}" if r.energy_reason else "")
    e = getattr(r, ENERGY_FIELD[energy])
    if not _finite(e):
        return "net energy missing (no idle baseline for this device)" if energy == "net" \
            else "energy missing"
    if e <= 0:
        # A net value can dip to or below zero when idle power is close to gross power: noise,
        # not a free point.
        return f"{energy} energy {e:.3g} J/item is not positive"
    return None


def operating_points(
    profile: Profile, *, latency: str = "p95", energy: str = "gross", quality: str = "auto",
    latency_kind: str = "e2e",
) -> tuple[list[OperatingPoint], list[str]]:
    """The profile's usable operating points (sorted) and one line per excluded record.

    ``quality``: the metric (``auto``: the profile's own, see ``profile_metric``); ``latency`` the
    statistic and ``latency_kind`` what is timed (e2e, ttft, tpot)."""
    lat_field = latency_field(latency, latency_kind)
    if energy not in ENERGY_FIELD:
        raise TradeoffError(f"energy basis {energy!r}: choose one of {', '.join(ENERGY_BASES)}",
                            option="--energy")
    metric = profile_metric(profile, quality)
    usable: list[Record] = []
    excluded: list[str] = []
    for r in profile.records:
        why = _why_excluded(r, metric, lat_field, energy)
        if why is None:
            usable.append(r)
        else:
            excluded.append(f"{r.label}: excluded, {why}")

    # A profile holds one ladder, but be safe: name the ladder only when labels would collide.
    labels = [r.label for r in usable]
    if len(set(labels)) != len(labels):
        labels = [f"{r.ladder}/{r.label}" for r in usable]
    points: list[OperatingPoint] = []
    for lab, r in zip(labels, usable, strict=True):
        q = quality_of(r, metric)
        assert q is not None  # _why_excluded let only records with the metric through
        points.append(OperatingPoint(
            label=lab, model=r.model, batch_size=None if r.batch_size is None else int(r.batch_size),
            precision=r.precision, device=r.device, params=r.params, quality=float(q),
            latency_ms=float(getattr(r, lat_field)),
            energy_j_per_item=float(getattr(r, ENERGY_FIELD[energy])),
            energy_method=r.energy_method, quality_metric=metric,
            concurrency=r.concurrency, request_rate_per_s=r.request_rate_per_s, hardware=r.hardware,
        ))
    if len(set(p.label for p in points)) != len(points):
        raise TradeoffError("the profile holds the same operating point twice")
    if not points:
        n = len(profile.records)
        raise TradeoffError(
            f"no usable operating point: {n} record(s), none ok with {metric}, "
            f"{lat_field} and {energy} energy" + (f" (first: {excluded[0]})" if excluded else "")
        )
    points.sort(key=OperatingPoint.sort_key)
    return points, excluded


UNKNOWN_HARDWARE = "unknown hardware"  # how a point whose hardware the profile does not say is named


@dataclass(frozen=True)
class HardwareShare:
    """One hardware type of a set of points: how many points ran on it and how many of them are on
    the Pareto frontier."""

    hardware: str | None  # None: the profile does not say (shown as UNKNOWN_HARDWARE)
    points: int
    frontier: int

    @property
    def name(self) -> str:
        return self.hardware if self.hardware is not None else UNKNOWN_HARDWARE


def hardware_types(points: Sequence[OperatingPoint]) -> tuple[str | None, ...]:
    """The distinct hardware of ``points``, named ones sorted by name, an unnamed one (None) last.
    More than one: the hardware is an axis of the tradeoff (a fleet profile)."""
    seen = {p.hardware for p in points}
    return (*sorted(h for h in seen if h is not None), *((None,) if None in seen else ()))


def hardware_shares(points: Sequence[OperatingPoint], frontier: Sequence[OperatingPoint]) -> tuple[HardwareShare, ...]:
    """Per hardware type (``hardware_types`` order): its points and its frontier points. Empty
    when the points are all on one hardware: there is no hardware axis to show."""
    kinds = hardware_types(points)
    if len(kinds) < 2:
        return ()
    on_front = {p.label for p in frontier}
    return tuple(HardwareShare(h, sum(p.hardware == h for p in points),
                               sum(p.hardware == h and p.label in on_front for p in points)) for h in kinds)


def dominates(a: OperatingPoint, b: OperatingPoint) -> bool:
    """a is at least as good as b on all three objectives and strictly better on one (quality in
    its direction: a lower perplexity is better)."""
    no_worse = (a.goodness >= b.goodness and a.latency_ms <= b.latency_ms
                and a.energy_j_per_item <= b.energy_j_per_item)
    better = (a.goodness > b.goodness or a.latency_ms < b.latency_ms
              or a.energy_j_per_item < b.energy_j_per_item)
    return no_worse and better


def pareto_front(points: Sequence[OperatingPoint]) -> list[OperatingPoint]:
    """Non-dominated points (best quality, min latency, min energy); exact ties are all kept."""
    # O(n^2) is fine: a ladder has tens of points, and this form is obviously correct.
    front = [p for p in points if not any(dominates(q, p) for q in points)]
    return sorted(front, key=OperatingPoint.sort_key)
