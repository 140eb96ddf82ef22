"""The meter interface (after Zeus): begin a window, end it, get the energy with its method.

Vendor calls and vendor errors stay inside one module per meter; nothing touches hardware at
import time; a meter that cannot measure says so (``info().available`` is False, with a reason) and the
caller falls back to a labelled estimate or to ``unavailable`` -- never to a silent zero.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Any, Callable

# Every energy value carries one of these.
NVML_COUNTER = "nvml_counter"
NVML_POWER = "nvml_power"
RAPL = "rapl"
ESTIMATE = "estimate"
UNAVAILABLE = "unavailable"
FAKE = "fake"  # only from the test meters; never produced on real hardware
MEASURED_METHODS = (NVML_COUNTER, NVML_POWER, RAPL)  # energy a meter read; anything else is not


def is_measurement(energy_method: str | None) -> bool:
    """Whether energy with this method was read from a meter (NVML, RAPL). An ``estimate``
    (CodeCarbon's power model), the ``fake`` test meter, or anything else, is not a measurement."""
    return energy_method in MEASURED_METHODS
METHODS = (NVML_COUNTER, NVML_POWER, RAPL, ESTIMATE, UNAVAILABLE, FAKE)

# Flags a reading can carry.
COUNTER_DID_NOT_MOVE = "counter_did_not_move"
COUNTER_WRAPPED = "counter_wrapped"
COUNTER_WENT_BACKWARDS = "counter_went_backwards"


class MeterError(Exception):
    """A meter failed in a way the caller should record (the message is one clear line)."""


@dataclass(frozen=True)
class EnergyReading:
    """What one meter saw over one window."""

    domain: str  # what was metered: "gpu:0", "cpu_package", "dram", "cpu+ram"
    method: str  # one of METHODS
    energy_j: float | None  # None when not measured; reason then says why
    duration_s: float
    counter_updates: int | None = None  # counter changes inside the window, where known
    reason: str | None = None
    flags: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        bad = (COUNTER_DID_NOT_MOVE, COUNTER_WENT_BACKWARDS)
        return self.energy_j is not None and not any(f in self.flags for f in bad)


@dataclass(frozen=True)
class MeterInfo:
    """What ``greenbench env`` shows for a meter."""

    domain: str
    method: str
    available: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


class Meter(ABC):
    """One energy source. ``begin()`` returns an opaque start state that ``end()`` consumes."""

    domain: str = "?"
    method: str = UNAVAILABLE

    @abstractmethod
    def info(self) -> MeterInfo: ...

    @abstractmethod
    def begin(self) -> Any: ...

    @abstractmethod
    def end(self, start: Any, t_end: float | None = None) -> EnergyReading:
        """Close the window. ``t_end`` (perf_counter seconds) is when the work stopped, where the
        caller knows it better than the time of this call (several meters end one window)."""

    def update_period_s(self) -> float | None:
        """How often the underlying counter changes (None: not a counter, or unknown)."""
        return None

    def power_limit_w(self) -> float | None:
        """The enforced power limit, for the validity check; None where the meter has none."""
        return None

    def close(self) -> None:
        """Release vendor handles; safe to call twice."""


class NullMeter(Meter):
    """Measures nothing and says why: every reading is ``unavailable`` with a null value."""

    method = UNAVAILABLE

    def __init__(self, domain: str, reason: str):
        self.domain = domain
        self.reason = reason

    def info(self) -> MeterInfo:
        return MeterInfo(self.domain, UNAVAILABLE, False, self.reason)

    def begin(self) -> float:
        return time.perf_counter()

    def end(self, start: float, t_end: float | None = None) -> EnergyReading:
        stop = time.perf_counter() if t_end is None else t_end
        return EnergyReading(self.domain, UNAVAILABLE, None, stop - start, reason=self.reason)


@dataclass(frozen=True)
class _Edge:
    t_s: float  # perf_counter time at which the counter value was first seen
    counter_j: float
    wraps: int = 0  # the meter's wrap count then (for the COUNTER_WRAPPED flag)


class CounterMeter(Meter):
    """A meter over a cumulative energy counter that changes in discrete ticks (NVML, RAPL).

    Subclasses give ``_read_j()`` (the raw counter in joules) and ``_wrap_j`` (the value at
    which it wraps, or None). The window protocol (shared/docs/measurement.md) lives here:

    * ``begin`` spin-reads until the counter ticks, so the window starts on a tick;
    * ``end`` spin-reads to the next tick after the work stopped, then to one more tick to learn
      the power just after the work, and takes that power times the idle tail off the total
      (the tail would otherwise add about 2% at 1 s windows);
    * the number of counter updates in the window is its duration over the tick period seen at
      the end; a counter that did not move at all makes the reading invalid, never 0 J.

    Reads happen only at the edges, outside the timed loop, so measuring does not perturb it.
    """

    _wrap_j: float | None = None
    _wraps: int = 0  # wraps that a subclass unwrapped itself inside _read_j (exact integer maths)
    max_align_s: float = 0.5  # give up aligning after this long (a stuck counter)

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self._clock = clock
        self._period_s: float | None = None

    @abstractmethod
    def _read_j(self) -> float: ...

    def _delta_j(self, before: float, after: float) -> tuple[float, tuple[str, ...]]:
        if after >= before:
            return after - before, ()
        if self._wrap_j is not None:
            return after + self._wrap_j - before, (COUNTER_WRAPPED,)
        return 0.0, (COUNTER_WENT_BACKWARDS,)

    def _tight_s(self) -> float:
        """Widest bracket around a tick that still dates it well: 2 ms, or a quarter period."""
        return min(0.002, self._period_s / 4) if self._period_s else 0.002

    def _next_tick(self, after: float) -> _Edge | None:
        """Spin until the counter differs from ``after``; None if it does not within max_align_s.

        A change seen across a wide bracket (the process was descheduled between two reads, as on
        a loaded machine) may span several ticks and cannot be dated: wait for the next change,
        seen between two close reads. Only when none comes in time is the wide one used.
        """
        before = self._clock()
        deadline = before + self.max_align_s
        loose: _Edge | None = None
        while True:
            value = self._read_j()
            now = self._clock()
            if value != after:  # it changed between the previous read and this one: take the middle
                edge = _Edge((before + now) / 2, value)
                if now - before <= self._tight_s():
                    return edge
                loose, after = edge, value
            if now > deadline:
                return loose
            before = now

    def _prepare(self) -> None:
        """Raise MeterError (one line) when the meter cannot read; called by ``begin``."""

    def begin(self) -> _Edge:
        self._prepare()
        first = self._read_j()
        edge = self._next_tick(first) or _Edge(self._clock(), first)
        return _Edge(edge.t_s, edge.counter_j, self._wraps)

    def end(self, start: _Edge, t_end: float | None = None) -> EnergyReading:
        reading = self._end(start, t_end)
        if self._wraps != start.wraps and COUNTER_WRAPPED not in reading.flags:
            reading = replace(reading, flags=reading.flags + (COUNTER_WRAPPED,))
        return reading

    def _end(self, start: _Edge, t_end: float | None) -> EnergyReading:
        t_end = self._clock() if t_end is None else t_end
        at_end = self._read_j()
        tick = self._next_tick(at_end)
        if tick is None:  # the counter stopped: plain edge if it moved in the window, else null
            delta, flags = self._delta_j(start.counter_j, at_end)
            if delta == 0:
                return EnergyReading(
                    self.domain, self.method, None, t_end - start.t_s, counter_updates=0,
                    reason="the energy counter did not move in the window",
                    flags=flags + (COUNTER_DID_NOT_MOVE,),
                )
            return EnergyReading(self.domain, self.method, delta, t_end - start.t_s, flags=flags)
        after = self._next_tick(tick.counter_j)
        delta, flags = self._delta_j(start.counter_j, tick.counter_j)
        tail_j = 0.0
        if after is not None and after.t_s > tick.t_s:
            period = after.t_s - tick.t_s
            self._period_s = period
            tail_power_w = self._delta_j(tick.counter_j, after.counter_j)[0] / period
            tail_j = tail_power_w * max(0.0, tick.t_s - t_end)
        window_s = t_end - start.t_s
        updates = round((tick.t_s - start.t_s) / self._period_s) if self._period_s else None
        if COUNTER_WENT_BACKWARDS in flags:
            return EnergyReading(
                self.domain, self.method, None, window_s, counter_updates=updates, flags=flags,
                reason="the energy counter went backwards (driver reload or device reset)",
            )
        energy = delta - tail_j
        if energy <= 0:  # the tail ate everything: no usable figure, and never a silent 0 J
            return EnergyReading(
                self.domain, self.method, None, window_s, counter_updates=updates, flags=flags,
                reason="no energy above the idle tail in the window; lengthen --min-window",
            )
        return EnergyReading(
            self.domain, self.method, energy, window_s, counter_updates=updates, flags=flags
        )

    def update_period_s(self) -> float | None:
        if self._period_s is None:
            first = self._next_tick(self._read_j())
            second = self._next_tick(first.counter_j) if first else None
            if first and second:
                self._period_s = second.t_s - first.t_s
        return self._period_s
