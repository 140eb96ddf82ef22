"""The window protocol: warm-up, device sync at the edges, a minimum window, idle baseline.

One trial = one window in which a step (one batch of inference) runs back to back, exactly as a
user would run it: no per-step device sync and no meter call inside the loop (both change what is
measured; see shared/docs/measurement.md). Meters are read only at the window edges, after a
device sync. Per-step times come from ``perf_counter`` on the CPU, and from CUDA events recorded in
the stream on a GPU (read after the closing sync, so they never stall the queue).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .meters.base import EnergyReading, Meter


MIN_REPEATS = 3


@dataclass(frozen=True)
class Protocol:
    """Measurement settings; every one is a command-line option."""

    repeats: int = 5
    min_window_s: float = 2.0
    min_counter_updates: int = 20
    min_steps: int = 3
    warmup_s: float = 0.5  # before every window: the previous point left other state in caches
    idle_s: float = 5.0
    max_cv: float = 0.05
    seed: int = 0  # order of batch sizes within each round
    quick: bool = False

    def __post_init__(self) -> None:
        if self.repeats < MIN_REPEATS:
            raise ValueError(f"repeats must be at least {MIN_REPEATS} (an interval needs them)")
        times = (self.min_window_s, self.warmup_s, self.idle_s, self.max_cv)
        if not all(math.isfinite(t) for t in times):
            raise ValueError("window, warm-up, idle and CV settings must be finite numbers")
        if self.min_window_s <= 0 or self.warmup_s < 0 or self.idle_s < 0:
            raise ValueError("window, warm-up and idle times must be positive")

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# A smoke run: fewer repeats and short windows. Profiles made with it carry the flag "quick".
QUICK = Protocol(
    repeats=3, min_window_s=0.25, min_counter_updates=3, warmup_s=0.05, idle_s=1.0, quick=True
)


def required_window_s(min_window_s: float, min_counter_updates: int, period_s: float | None) -> float:
    """A window must last ``min_window_s`` and span ``min_counter_updates`` counter updates."""
    if period_s is None or period_s <= 0:
        return min_window_s
    return max(min_window_s, min_counter_updates * period_s)


@dataclass(frozen=True)
class Trial:
    steps: int
    window_s: float  # first step start to closing sync
    step_durations_s: np.ndarray = field(repr=False)
    readings: tuple[EnergyReading, ...]  # same order as the meters given


def warm_up(step: Callable[[], Any], sync: Callable[[], None], seconds: float, min_steps: int = 2) -> float:
    """Run ``step`` for ``seconds`` (and at least ``min_steps`` times); excluded from all figures.
    Returns the steps per second it saw (a hint for sizing the next window's event pool)."""
    t0 = time.perf_counter()
    deadline = t0 + seconds
    n = 0
    while n < min_steps or time.perf_counter() < deadline:
        step()
        n += 1
    sync()
    return n / max(time.perf_counter() - t0, 1e-9)


def _cpu_loop(step: Callable[[], Any], window_s: float, min_steps: int) -> tuple[float, np.ndarray]:
    clock = time.perf_counter
    marks = [clock()]
    append = marks.append
    deadline = marks[0] + window_s
    while True:
        step()
        now = clock()
        append(now)
        if now >= deadline and len(marks) > min_steps:
            break
    t = np.asarray(marks)
    return float(t[0]), np.diff(t)


def _cuda_loop(step: Callable[[], Any], window_s: float, min_steps: int, expected_steps: int) -> tuple[float, Any]:
    import torch

    # Events are made before the clock starts, so the loop pays one record() per step and no
    # allocation; the pool grows only if the window runs more steps than the warm-up suggested.
    pool = [torch.cuda.Event(enable_timing=True) for _ in range(expected_steps + 1)]
    clock = time.perf_counter
    t0 = clock()
    pool[0].record()
    deadline = t0 + window_s
    n = 0
    while True:
        step()
        n += 1
        if n == len(pool):
            pool.append(torch.cuda.Event(enable_timing=True))
        pool[n].record()
        if n >= min_steps and clock() >= deadline:
            break
    return t0, pool[: n + 1]


def _begin_all(meters: Sequence[Meter]) -> list[Any]:
    """Begin every meter, the headline (``meters[0]``) last: its start sits closest to the work."""
    return [m.begin() for m in reversed(meters)][::-1]


def _end_all(meters: Sequence[Meter], starts: list[Any], t_end: float) -> list[EnergyReading]:
    """End every meter at the same ``t_end``, components first, so the headline's end-of-window
    spin is not charged to them. Readings come back in the meters' order."""
    return [m.end(s, t_end) for m, s in list(zip(meters, starts))[::-1]][::-1]


def run_window(
    step: Callable[[], Any],
    sync: Callable[[], None],
    meters: Sequence[Meter],
    window_s: float,
    *,
    min_steps: int = 3,
    cuda_device: str | None = None,
    steps_per_s_hint: float | None = None,
) -> Trial:
    """One measured window. ``meters[0]`` is the headline meter: it begins last, so its start
    sits closest to the work; every meter is told the same end time (the closing sync), and the
    component meters end first, so the headline's end-of-window spin is not charged to them.
    ``cuda_device`` ("cuda:N"): time steps with CUDA events on that device's current stream."""
    sync()
    starts = _begin_all(meters)
    try:
        if cuda_device is not None:
            import torch

            expected = int((steps_per_s_hint or 0) * window_s * 1.2) + min_steps
            with torch.cuda.device(torch.device(cuda_device)):
                t0, events = _cuda_loop(step, window_s, min_steps, min(expected, 1_000_000))
        else:
            t0, durations = _cpu_loop(step, window_s, min_steps)
        sync()
    except BaseException:  # close every window, so a failed one leaks into no later reading
        for m, s in zip(meters, starts):
            try:
                m.end(s)
            except Exception:  # noqa: BLE001 -- the original error is the one to report
                pass
        raise
    t_end = time.perf_counter()
    readings = _end_all(meters, starts, t_end)
    if cuda_device is not None:
        durations = np.asarray(
            [a.elapsed_time(b) / 1e3 for a, b in zip(events[:-1], events[1:])], dtype=float
        )
    return Trial(int(durations.size), t_end - t0, durations, tuple(readings))


def measure_idle(meters: Sequence[Meter], seconds: float, sync: Callable[[], None] | None = None) -> list[EnergyReading]:
    """Energy each meter sees while nothing runs: the idle baseline for net energy."""
    if sync is not None:
        sync()
    starts = _begin_all(meters)
    time.sleep(seconds)
    return _end_all(meters, starts, time.perf_counter())
