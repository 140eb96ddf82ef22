"""Operating points and the Pareto frontier of a profile: what pricing needs of the tradeoff.

Library only (no typer, no rich, no scipy). A profile's ok records become ``OperatingPoint``
values with one latency statistic and one energy basis chosen up front, so that everything
downstream (the frontier, the fits in ``curves``, pricing) compares like with like.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from greenbench.errors import GreenbenchError
from greenbench.profile import Profile, Record


class TradeoffError(GreenbenchError):
    """No usable operating point, or an unknown option (one line)."""


@dataclass(frozen=True)
class OperatingPoint:
    label: str  # unique within the list, e.g. "cnn-64 b256 fp32 cpu"
    model: str
    batch_size: int
    precision: str
    device: str
    params: int | None
    accuracy: float  # task metric in [0, 1]
    latency_ms: float  # per request: the batch latency every request of a batch waits
    energy_j_per_item: float  # gross (what the meter saw) unless net was asked for
    energy_method: str  # one of greenbench.methods.METHODS; never "unavailable"

    def sort_key(self) -> tuple[str, int, str, str, str]:
        return (self.model, self.batch_size, self.precision, self.device, self.label)


# Statistic name -> the record field holding it (per batch: what each request waits).
LATENCY_STATS = ("p95", "p50", "p90", "p99", "mean")
LATENCY_FIELD = {s: f"latency_{s}_ms" for s in LATENCY_STATS}
# Energy basis -> record field. Net subtracts idle power x time (see the profile's idle section).
ENERGY_BASES = ("gross", "net")
ENERGY_FIELD = {"gross": "energy_j_per_item", "net": "energy_net_j_per_item"}


def _label(r: Record) -> str:
    return f"{r.model} b{r.batch_size} {r.precision} {r.device}"


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _why_excluded(r: Record, latency_field: str, energy: str) -> str | None:
    """Why this record cannot be an operating point, or None when it can."""
    if r.status != "ok":
        return f"{r.status}" + (f": {r.error}" if r.error else "")
    acc = r.accuracy
    if acc is None or not math.isfinite(acc):
        return "accuracy missing"
    if not 0.0 <= acc <= 1.0:
        return f"accuracy {acc} outside [0, 1]"
    lat = getattr(r, latency_field)
    if not _finite(lat):
        return f"{latency_field} missing"
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
    profile: Profile, *, latency: str = "p95", energy: str = "gross"
) -> tuple[list[OperatingPoint], list[str]]:
    """The profile's usable operating points (sorted) and one line per excluded record."""
    if latency not in LATENCY_FIELD:
        raise TradeoffError(f"latency statistic {latency!r}: choose one of {', '.join(LATENCY_STATS)}",
                            option="--latency")
    if energy not in ENERGY_FIELD:
        raise TradeoffError(f"energy basis {energy!r}: choose one of {', '.join(ENERGY_BASES)}",
                            option="--energy")
    lat_field = LATENCY_FIELD[latency]
    usable: list[Record] = []
    excluded: list[str] = []
    for r in profile.records:
        why = _why_excluded(r, lat_field, energy)
        if why is None:
            usable.append(r)
        else:
            excluded.append(f"{_label(r)}: excluded, {why}")

    # A profile holds one ladder, but be safe: name the ladder only when labels would collide.
    labels = [_label(r) for r in usable]
    if len(set(labels)) != len(labels):
        labels = [f"{r.ladder}/{_label(r)}" for r in usable]
    points: list[OperatingPoint] = []
    for lab, r in zip(labels, usable, strict=True):
        assert r.accuracy is not None  # _why_excluded let only records with an accuracy through
        points.append(OperatingPoint(
            label=lab, model=r.model, batch_size=int(r.batch_size), precision=r.precision,
            device=r.device, params=r.params, accuracy=float(r.accuracy),
            latency_ms=float(getattr(r, lat_field)),
            energy_j_per_item=float(getattr(r, ENERGY_FIELD[energy])),
            energy_method=r.energy_method,
        ))
    if len(set(p.label for p in points)) != len(points):
        raise TradeoffError("the profile holds the same operating point twice")
    if not points:
        n = len(profile.records)
        raise TradeoffError(
            f"no usable operating point: {n} record(s), none ok with accuracy, "
            f"{lat_field} and {energy} energy" + (f" (first: {excluded[0]})" if excluded else "")
        )
    points.sort(key=OperatingPoint.sort_key)
    return points, excluded


def dominates(a: OperatingPoint, b: OperatingPoint) -> bool:
    """a is at least as good as b on all three objectives and strictly better on one."""
    no_worse = (a.accuracy >= b.accuracy and a.latency_ms <= b.latency_ms
                and a.energy_j_per_item <= b.energy_j_per_item)
    better = (a.accuracy > b.accuracy or a.latency_ms < b.latency_ms
              or a.energy_j_per_item < b.energy_j_per_item)
    return no_worse and better


def pareto_front(points: Sequence[OperatingPoint]) -> list[OperatingPoint]:
    """Non-dominated points (max accuracy, min latency, min energy); exact ties are all kept."""
    # O(n^2) is fine: a ladder has tens of points, and this form is obviously correct.
    front = [p for p in points if not any(dominates(q, p) for q in points)]
    return sorted(front, key=OperatingPoint.sort_key)
