"""The meter interface (after Zeus): begin a window, end it, get the energy with its method.

Vendor calls and vendor errors stay inside one module per meter; nothing touches hardware at
import time; a meter that cannot measure says so (``info().available`` is False, with a reason) and the
caller falls back to a labelled estimate or to ``unavailable`` -- never to a silent zero.
"""

from __future__ import annotations

import statistics
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from greenbench.errors import GreenbenchError
from greenbench.meters import clock as _clock

# Every energy value carries one of these; the names and the measured-or-not rule live in
# greenbench.methods (the analysis stages import them from there) and are re-exported here.
from greenbench.methods import (  # noqa: F401 -- re-exported: meters.base.ESTIMATE and so on
    ESTIMATE,
    FAKE,
    MEASURED_METHODS,
    METHODS,
    NVML_COUNTER,
    NVML_POWER,
    RAPL,
    UNAVAILABLE,
    is_measurement,
)


def _now() -> float:
    return _clock.now()  # looked up at each call: a simulation replaces greenbench.meters.clock.now

# Flags a reading can carry.
COUNTER_DID_NOT_MOVE = "counter_did_not_move"
COUNTER_WRAPPED = "counter_wrapped"
COUNTER_WENT_BACKWARDS = "counter_went_backwards"
COUNTER_STALLED = "counter_stalled"  # no update for 2 x max_align_s at an edge: it cannot be dated


class MeterError(GreenbenchError):
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
    update_period_s: float | None = None  # the counter's update period measured around this window
    tail_s: float | None = None  # idle time from the work's end to the end tick (corrected for)
    checks: dict[str, Any] = field(default_factory=dict, compare=False)  # validity reads at the edges
    parts: tuple[EnergyReading, ...] = ()  # a GPU group's reading: each GPU's own (meters.group)

    @property
    def valid(self) -> bool:
        bad = (COUNTER_DID_NOT_MOVE, COUNTER_WENT_BACKWARDS, COUNTER_STALLED)
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
    def end(self, start: Any, t_end: float | None = None, t_start: float | None = None) -> EnergyReading:
        """Close the window. ``t_end`` (clock seconds) is when the work stopped, where the caller
        knows it better than the time of this call (several meters end one window); ``t_start``
        when it started, where that is later than ``begin`` returned (other meters began between)."""

    def update_period_s(self) -> float | None:
        """How often the underlying counter changes (None: not a counter, or unknown)."""
        return None

    def power_limit_w(self) -> float | None:
        """The enforced power limit, for the validity check; None where the meter has none."""
        return None

    def close(self) -> None:  # noqa: B027 -- a meter with nothing to release need not override it
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
        return _now()

    def end(self, start: float, t_end: float | None = None, t_start: float | None = None) -> EnergyReading:
        stop = _now() if t_end is None else t_end
        begun = start if t_start is None else max(start, t_start)
        return EnergyReading(self.domain, UNAVAILABLE, None, stop - begun, reason=self.reason)


@dataclass(frozen=True)
class _Edge:
    t_s: float  # when the counter took this value: the middle of the two reads that bracket the change
    counter_j: float
    wraps: int = 0  # the meter's wrap count then (for the COUNTER_WRAPPED flag)
    bracket_s: float | None = None  # width of that bracket; None for a plain edge (no tick seen)
    tight: bool = False  # the bracket was narrow enough to date the tick (see CounterMeter)
    skipped: int = 0  # changes passed over for too wide a bracket before this one
    checks: dict[str, Any] = field(default_factory=dict, compare=False)  # validity reads before it


# A change of the counter is dated at the middle of the two reads around it. The bracket is
# trusted ("tight") when it is no wider than this, or than TIGHT_READ_FACTOR x the cost of one read
# observed on this machine (an NVML read costs about 2 ms in a VM): a dating error of 1 ms at each
# edge is 0.05% of a 2 s window. A wider bracket means the process was descheduled between two
# reads, or one read hiccupped: the change may then be anywhere in it, so the spin waits for the next.
MIN_TIGHT_S = 0.002
TIGHT_READ_FACTOR = 1.5
CALIBRATION_READS = 8  # timed reads before the first window, so the first edge knows the read cost
PERIOD_INTERVALS = 9  # tick-to-tick intervals the update period is the median of


class CounterMeter(Meter):
    """A meter over a cumulative energy counter that changes in discrete ticks (NVML, RAPL).

    Subclasses give ``_read_j()`` (the raw counter in joules) and ``_wrap_j`` (the value at
    which it wraps, or None). The window protocol (docs/measurement.md) lives here:

    * ``begin`` spin-reads until the counter ticks, so the window starts on a fresh, well-dated
      tick (never on a stale one: after ``max_align_s`` without a tight bracket it takes the next
      change it sees, at once);
    * ``end`` spin-reads to the next tick after the work stopped, then to one more tick to learn
      the power just after the work, and takes that power times the idle time at both ends (the
      tail after the work, and the lead between the start tick and the work) off the total;
    * the update period is the median of several tick-to-tick intervals, refined per window
      from the start and end ticks; the number of counter updates in a window follows from it;
      a counter that did not move at all makes the reading invalid, never 0 J.

    Reads happen only at the edges, outside the timed loop, so measuring does not perturb it.
    Power that is still decaying after the work is not corrected: with time constant tau it adds
    at most (P_work - P_idle) x tau to a window (docs/measurement.md states the bound).
    """

    _wrap_j: float | None = None
    _wraps: int = 0  # wraps that a subclass unwrapped itself inside _read_j (exact integer maths)
    max_align_s = 0.5  # wait this long for a tight tick; then take the next change seen
    # Ticks waited past the first at each edge: a counter may publish a tick's value late (its
    # value then lacks the last milliseconds before it), so the first tick after a sync may still
    # miss the end of the work, or hold the warm-up's. One more tick costs a period at each edge.
    settle_ticks = 1

    def __init__(self, clock: Callable[[], float] | None = None):
        self._clock = clock if clock is not None else _now
        self._period_s: float | None = None
        self._intervals_s: deque[float] = deque(maxlen=PERIOD_INTERVALS)
        self._read_costs_s: deque[float] = deque(maxlen=128)

    @abstractmethod
    def _read_j(self) -> float: ...

    def read_j(self) -> float:
        """The counter now, in joules, as one raw read (what every window edge is made of)."""
        return self._read_j()

    def _edge_checks(self) -> dict[str, Any]:
        """Validity readings taken at each edge, outside the work (NVML: clock, temperature)."""
        return {}

    def _delta_j(self, before: float, after: float) -> tuple[float, tuple[str, ...]]:
        if after >= before:
            return after - before, ()
        if self._wrap_j is not None:
            return after + self._wrap_j - before, (COUNTER_WRAPPED,)
        return 0.0, (COUNTER_WENT_BACKWARDS,)

    def read_cost_s(self) -> float | None:
        """The median time between two reads of the counter in a spin, as observed here."""
        return statistics.median(self._read_costs_s) if self._read_costs_s else None

    def _calibrate(self) -> None:
        if len(self._read_costs_s) >= CALIBRATION_READS:
            return
        before = self._clock()
        for _ in range(CALIBRATION_READS):
            self._read_j()
            now = self._clock()
            self._read_costs_s.append(now - before)
            before = now

    def _tight_s(self) -> float:
        """The widest bracket that dates a tick: 2 ms or 1.5 x the read cost, but at most a
        quarter period where the counter ticks that fast (a wider bracket could hold two ticks:
        RAPL updates about every millisecond), though never below what one read allows."""
        cost = self.read_cost_s()
        floor = TIGHT_READ_FACTOR * cost if cost is not None else 0.0
        tight = max(MIN_TIGHT_S, floor)
        return min(tight, max(self._period_s / 4, floor)) if self._period_s else tight

    def _next_tick(self, after: float, since: float | None = None) -> _Edge | None:
        """Spin until the counter differs from ``after`` (read at ``since``, if given); None if
        it does not move within 2 x max_align_s.

        A change seen across a wide bracket cannot be dated: wait for the next change. After
        ``max_align_s`` the first change seen is taken whatever its bracket, and returned at
        once, so the edge is still fresh (the work starts right after it).
        """
        tight_s = self._tight_s()
        before = self._clock() if since is None else since
        patient_until = before + self.max_align_s
        give_up = before + 2 * self.max_align_s
        skipped = 0
        while True:
            value = self._read_j()
            now = self._clock()
            gap = now - before
            if since is None or before != since:  # a spin's own read-to-read time: the read cost
                self._read_costs_s.append(gap)
            if value != after:
                tight = gap <= tight_s
                if tight or now > patient_until:
                    return _Edge((before + now) / 2, value, bracket_s=gap, tight=tight, skipped=skipped)
                after, skipped = value, skipped + 1
            elif now > give_up:
                return None
            before = now

    def _prepare(self) -> None:
        """Raise MeterError (one line) when the meter cannot read; called by ``begin``."""

    def _ticks_after(self, edge: _Edge, n: int) -> list[_Edge]:
        """``edge`` and up to ``n`` ticks after it; each interval between two tight consecutive
        ticks is a sample of the update period."""
        chain = [edge]
        for _ in range(n):
            nxt = self._next_tick(chain[-1].counter_j)
            if nxt is None:
                break
            if chain[-1].tight and nxt.tight and nxt.skipped == 0:
                self._intervals_s.append(nxt.t_s - chain[-1].t_s)
            chain.append(nxt)
        return chain

    def begin(self) -> _Edge:
        self._prepare()
        self._calibrate()
        checks = self._edge_checks()  # before the spin, so that these reads stay out of the window
        first = self._read_j()
        tick = self._next_tick(first)
        if tick is None:  # the counter stalled: a plain edge, which end() marks as such
            return _Edge(self._clock(), first, wraps=self._wraps, checks=checks)
        edge = self._ticks_after(tick, self.settle_ticks)[-1]
        return replace(edge, wraps=self._wraps, checks=checks)

    def end(self, start: _Edge, t_end: float | None = None, t_start: float | None = None) -> EnergyReading:
        reading = self._end(start, t_end, t_start)
        if self._wraps != start.wraps and COUNTER_WRAPPED not in reading.flags:
            reading = replace(reading, flags=(*reading.flags, COUNTER_WRAPPED))
        return reading

    def _learn_period(self, start: _Edge, tick: _Edge) -> float | None:
        """The update period around this window: the median of the recent tight tick-to-tick
        intervals, refined by the whole window's span when both its edges are tight ticks."""
        edge: _Edge | None = tick
        for _ in range(3):  # no clean interval yet (a busy machine): a few more ticks, once
            if self._intervals_s or edge is None:
                break
            nxt = self._next_tick(edge.counter_j)
            if nxt is not None and edge.tight and nxt.tight and nxt.skipped == 0:
                self._intervals_s.append(nxt.t_s - edge.t_s)
            edge = nxt
        if not self._intervals_s:
            return self._period_s
        self._period_s = _period_from(self._intervals_s)
        span_s = tick.t_s - start.t_s
        ticks = round(span_s / self._period_s)
        if start.tight and tick.tight and ticks >= 1 and abs(span_s / ticks / self._period_s - 1) < 0.1:
            return span_s / ticks
        return self._period_s

    def _end(self, start: _Edge, t_end: float | None, t_start: float | None) -> EnergyReading:
        t_end = self._clock() if t_end is None else t_end
        at_end = self._read_j()
        read_at = self._clock()
        checks = {"start": start.checks, "end": self._edge_checks()}
        # a tick during those checks shows as a wide first bracket: not dated, the next is waited for
        first = self._next_tick(at_end, since=read_at)
        t_work = start.t_s if t_start is None else max(t_start, start.t_s)
        window_s = t_end - t_work
        if first is None and self._delta_j(start.counter_j, at_end)[0] == 0:
            return EnergyReading(
                self.domain, self.method, None, window_s, counter_updates=0,
                reason="the energy counter did not move in the window",
                flags=self._delta_j(start.counter_j, at_end)[1] + (COUNTER_DID_NOT_MOVE,), checks=checks,
            )
        if first is None or start.bracket_s is None:  # stalled: a plain edge, off by up to a period,
            # so not a usable figure
            delta, flags = self._delta_j(start.counter_j, at_end if first is None else first.counter_j)
            return EnergyReading(
                self.domain, self.method, None, window_s, flags=(*flags, COUNTER_STALLED), checks=checks,
                reason=f"the energy counter did not update for {2 * self.max_align_s:g} s at a window "
                       "edge, so the window cannot be dated",
            )
        chain = self._ticks_after(first, self.settle_ticks + 1)
        settled = min(self.settle_ticks, len(chain) - 1)
        tick = chain[settled]
        after = chain[settled + 1] if len(chain) > settled + 1 else None
        delta, flags = self._delta_j(start.counter_j, tick.counter_j)
        period_s = self._learn_period(start, tick)
        tail_s = max(0.0, tick.t_s - t_end)
        idle_j = 0.0
        if after is not None and after.t_s > tick.t_s:
            tail_delta_j, tail_flags = self._delta_j(tick.counter_j, after.counter_j)
            flags += tuple(f for f in tail_flags if f not in flags)
            idle_j = tail_delta_j / (after.t_s - tick.t_s) * (tail_s + (t_work - start.t_s))
        # updates the work spanned (the settled end tick lies up to two periods later)
        updates = round((t_end - start.t_s) / period_s) if period_s else None
        reading = EnergyReading(self.domain, self.method, None, window_s, counter_updates=updates, flags=flags,
                                update_period_s=period_s, tail_s=tail_s, checks=checks)
        if COUNTER_WENT_BACKWARDS in flags:
            return replace(reading, reason="the energy counter went backwards (driver reload or device reset)")
        energy = delta - idle_j
        if energy <= 0:  # the idle correction ate everything: no usable figure, never a silent 0 J
            return replace(reading, reason="no energy above the idle tail in the window; lengthen --min-window")
        return replace(reading, energy_j=energy)

    def update_period_s(self) -> float | None:
        """How often the counter changes: measured once (a few tick-to-tick intervals, about
        0.4 s on NVML) if no window has measured it yet."""
        if self._period_s is None:
            self._calibrate()
            edge = self._next_tick(self._read_j())
            for _ in range(3):
                if edge is None:
                    break
                nxt = self._next_tick(edge.counter_j)
                if nxt is not None and edge.tight and nxt.tight and nxt.skipped == 0:
                    self._intervals_s.append(nxt.t_s - edge.t_s)
                edge = nxt
            if self._intervals_s:
                self._period_s = _period_from(self._intervals_s)
        return self._period_s


def _period_from(intervals_s: deque[float]) -> float:
    """The median tick-to-tick interval, leaving out those that span two ticks or more (a
    bracket that held two ticks looks like one change): an interval is never shorter than one
    period, so those at 1.5 x the shortest or more are multiples."""
    shortest = min(intervals_s)
    return statistics.median([i for i in intervals_s if i < 1.5 * shortest])
