"""The GPUs of one tensor-parallel server read as one meter: their energies summed, each kept.

A server that spans several GPUs (``--device cuda:0+cuda:1``) draws energy on all of them, so its
figure is the sum of their counters. Each GPU's counter ticks on its own schedule, so each part
keeps its own tick-aligned window (``CounterMeter``): they begin one after the other, are all told
when the work started and ended (the same ``t_start`` and ``t_end``), and each trims its idle lead
and tail with its own power; the sum covers the same interval on every GPU. A part that cannot
give a figure makes the sum unavailable, with that part's reason: a partial sum is not the server's
energy. Every part's reading is kept (``EnergyReading.parts``) and recorded per GPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from greenbench.meters.base import UNAVAILABLE, EnergyReading, Meter, MeterInfo
from greenbench.meters.clock import now


class GroupMeter(Meter):
    """The sum of several GPU meters (one per GPU of a tensor-parallel server)."""

    def __init__(self, parts: Sequence[Meter]):
        if len(parts) < 2:
            raise ValueError("a group meter sums two or more meters")
        self.parts = list(parts)
        self.domain = "+".join(p.domain for p in self.parts)
        methods = {p.method for p in self.parts}
        # one method for the sum: a measurement only when every part is the same measurement
        self.method = methods.pop() if len(methods) == 1 else UNAVAILABLE

    def info(self) -> MeterInfo:
        infos = [p.info() for p in self.parts]
        ok = all(i.available for i in infos) and self.method != UNAVAILABLE
        if ok:
            reason = f"sum of {len(infos)} GPUs: " + "; ".join(f"{i.domain}: {i.reason}" for i in infos)
        else:
            bad = [i for i in infos if not i.available] or infos
            reason = "a GPU of the group cannot be metered: " + "; ".join(f"{i.domain}: {i.reason}" for i in bad)
        parts = [{"domain": i.domain, "method": i.method, "available": i.available, "reason": i.reason,
                  **i.details} for i in infos]
        return MeterInfo(self.domain, self.method if ok else UNAVAILABLE, ok, reason, {"parts": parts})

    def begin(self) -> list[Any]:
        return [p.begin() for p in self.parts]

    def end(self, start: list[Any], t_end: float | None = None, t_start: float | None = None) -> EnergyReading:
        if t_end is None:  # the parts' own clock (a counter meter may be given one), else the protocol's
            t_end = getattr(self.parts[0], "_clock", now)()
        readings = tuple(p.end(s, t_end, t_start) for p, s in zip(self.parts, start, strict=True))
        return combine(self.domain, self.method, readings)

    def update_period_s(self) -> float | None:
        """The slowest part's: a window must span enough updates of every counter."""
        periods = [p.update_period_s() for p in self.parts]
        return None if any(x is None for x in periods) else max(x for x in periods if x is not None)

    def power_limit_w(self) -> float | None:
        limits = [p.power_limit_w() for p in self.parts]
        return None if any(x is None for x in limits) else sum(x for x in limits if x is not None)

    def close(self) -> None:
        for p in self.parts:
            p.close()


def combine(domain: str, method: str, readings: tuple[EnergyReading, ...]) -> EnergyReading:
    """One reading of the group: the energies summed when every part has a valid one."""
    flags = tuple(dict.fromkeys(f for r in readings for f in r.flags))
    bad = [r for r in readings if not r.valid]
    energy = None if bad else sum(r.energy_j for r in readings if r.energy_j is not None)
    reason = None if not bad else "; ".join(f"{r.domain}: {r.reason or 'no valid reading'}" for r in bad)
    updates = [r.counter_updates for r in readings]
    periods = [r.update_period_s for r in readings if r.update_period_s is not None]
    tails = [r.tail_s for r in readings if r.tail_s is not None]
    return EnergyReading(
        domain, method, energy, max(r.duration_s for r in readings),
        counter_updates=None if any(u is None for u in updates) else min(u for u in updates if u is not None),
        reason=reason, flags=flags, update_period_s=max(periods) if periods else None,
        tail_s=max(tails) if tails else None, checks=_merged_checks(readings), parts=readings)


def _merged_checks(readings: tuple[EnergyReading, ...]) -> dict[str, Any]:
    """The validity reads of every GPU as one: the lowest SM clock, the highest temperature, every
    other process (a drift or a tenant on any GPU of the group is a drift of the group)."""
    out: dict[str, Any] = {}
    for side in ("start", "end"):
        sides = [r.checks.get(side) or {} for r in readings]
        merged: dict[str, Any] = {}
        clocks = [c["sm_clock_mhz"] for c in sides if c.get("sm_clock_mhz") is not None]
        temps = [c["temperature_c"] for c in sides if c.get("temperature_c") is not None]
        if clocks:
            merged["sm_clock_mhz"] = min(clocks)
        if temps:
            merged["temperature_c"] = max(temps)
        for key in ("gpu_pids", "other_gpu_pids"):
            if any(key in c for c in sides):
                merged[key] = sorted({p for c in sides for p in c.get(key, [])})
        out[side] = merged
    return out
