"""The window protocol: warm-up, device sync at the edges, a minimum window, idle baseline.

One trial = one window in which a step (one batch of inference) runs back to back, exactly as a
user would run it: no per-step device sync and no meter call inside the loop (both change what is
measured; see docs/measurement.md). Meters are read only at the window edges, after a
device sync. Per-step times come from the clock (``greenbench.meters.clock``, ``perf_counter``) on the CPU,
and from CUDA events recorded in the stream on a GPU (read after the closing sync, so they never
stall the queue).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from greenbench.errors import OptionError
from greenbench.meters import clock as clock
from greenbench.meters.base import EnergyReading, Meter

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
            raise OptionError(f"repeats must be at least {MIN_REPEATS} (an interval needs them)",
                              option="--repeats")
        times = {"--min-window": self.min_window_s, "--warmup": self.warmup_s, "--idle": self.idle_s,
                 "--max-cv": self.max_cv}
        bad = [option for option, t in times.items() if not math.isfinite(t)]
        if bad:
            raise OptionError("window, warm-up, idle and CV settings must be finite numbers", option=bad[0])
        if self.min_window_s <= 0 or self.warmup_s < 0 or self.idle_s < 0:
            option = "--min-window" if self.min_window_s <= 0 else "--warmup" if self.warmup_s < 0 else "--idle"
            raise OptionError("window, warm-up and idle times must be positive", option=option)

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
    host_other_cores: float | None = None  # CPU cores other processes kept busy in the window
    memory: MemoryPeak | None = None  # peak memory over the window (None: not asked for)
    t0_s: float | None = None  # the window's start on clock.now (its end: t0_s + window_s)


@dataclass(frozen=True)
class MemoryPeak:
    """Peak memory over one window; a None figure says why in its reason, and is never a 0."""

    gpu_mib: float | None = None  # torch's allocator on the window's GPU (max_memory_allocated)
    host_rss_mib: float | None = None  # this process's peak resident set (Linux VmHWM)
    gpu_reason: str | None = None  # None with gpu_mib None: a CPU window, nothing to say
    host_reason: str | None = None


MIB = 2**20
CLEAR_REFS_PATH, STATUS_PATH = "/proc/self/clear_refs", "/proc/self/status"  # Linux


def _reset_host_peak() -> str | None:
    """Reset this process's peak RSS to its current RSS (Linux: "5" to clear_refs); None if done,
    else why not (then no peak is recorded: VmHWM would be the whole process's lifetime peak)."""
    try:
        with open(CLEAR_REFS_PATH, "w") as f:
            f.write("5")
    except OSError as e:
        return f"the host peak RSS cannot be reset per window ({CLEAR_REFS_PATH}: {e.strerror or type(e).__name__})"
    return None


def _host_peak_mib() -> tuple[float | None, str | None]:
    try:
        with open(STATUS_PATH) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024, None  # kB
    except (OSError, ValueError, IndexError) as e:
        return None, f"the host peak RSS cannot be read ({STATUS_PATH}: {type(e).__name__})"
    return None, f"the host peak RSS cannot be read ({STATUS_PATH} has no VmHWM)"


class MemoryWatch:
    """Resets the peaks when a window opens and reads them when it closes: the GPU's with torch's
    ``reset_peak_memory_stats``/``max_memory_allocated`` (so it counts what the model and its
    batch allocate, not what other processes hold), the host's from VmHWM."""

    def __init__(self, cuda_device: str | None):
        self._cuda = cuda_device
        self._gpu_reason: str | None = None
        if cuda_device is not None:
            try:
                import torch

                torch.cuda.reset_peak_memory_stats(cuda_device)
            except Exception as e:  # noqa: BLE001 -- no statistics (another allocator): say why
                self._gpu_reason = f"torch's GPU memory statistics are unavailable ({type(e).__name__})"
        self._host_reason = _reset_host_peak()

    def read(self) -> MemoryPeak:
        gpu_mib = None
        gpu_reason = self._gpu_reason
        if self._cuda is not None and gpu_reason is None:
            try:
                import torch

                gpu_mib = torch.cuda.max_memory_allocated(self._cuda) / MIB
            except Exception as e:  # noqa: BLE001
                gpu_reason = f"torch's GPU memory statistics are unavailable ({type(e).__name__})"
            if gpu_mib is not None and gpu_mib <= 0:  # the model's weights alone are more: not counted
                gpu_mib, gpu_reason = None, "torch's allocator counted no GPU memory (another allocator backend?)"
        host_mib, host_reason = (None, self._host_reason) if self._host_reason else _host_peak_mib()
        return MemoryPeak(gpu_mib, host_mib, gpu_reason, host_reason)


def warm_up(step: Callable[[], Any], sync: Callable[[], None], seconds: float, min_steps: int = 2) -> float:
    """Run ``step`` for ``seconds`` (and at least ``min_steps`` times); excluded from all figures.

    It runs in chunks that each end in a sync, each sized from the rate seen so far to fill the
    time left: a GPU's host queues steps ahead of the device, so a deadline on the host's clock
    alone would let the device run a whole launch queue past it (seconds, for slow steps).
    Returns the steps per second of the longest chunk: the steady rate, which sizes the window.
    """
    deadline = clock.now() + seconds
    done, chunk = 0, max(1, min_steps)
    best_steps, best_s = 0, 0.0
    while True:
        t = clock.now()
        for _ in range(chunk):
            step()
        sync()
        took_s = clock.now() - t
        done += chunk
        if took_s >= best_s:
            best_steps, best_s = chunk, took_s
        rate = best_steps / max(best_s, 1e-9)
        left_s = deadline - clock.now()
        if done >= min_steps and left_s <= 0:
            return rate
        chunk = max(1, min_steps - done, int(left_s * rate))


def _cpu_loop(step: Callable[[], Any], window_s: float, min_steps: int) -> tuple[float, np.ndarray]:
    now = clock.now
    marks = [now()]
    append = marks.append
    deadline = marks[0] + window_s
    while True:
        step()
        t = now()
        append(t)
        if t >= deadline and len(marks) > min_steps:
            break
    times = np.asarray(marks)
    return float(times[0]), np.diff(times)


class _EventPool:
    """CUDA timing events for one window, made and recorded once before its start edge: creating
    tens of thousands of events (fast steps) inside the window would charge their CPU time and the
    GPU's idle energy to the point. The pool grows inside the window only if the window runs more
    steps than the warm-up's rate suggested."""

    def __init__(self, size: int):
        import torch

        self._event = torch.cuda.Event
        self.events = [self._event(enable_timing=True) for _ in range(size)]
        for e in self.events:
            e.record()
        torch.cuda.synchronize()

    def record(self, i: int) -> None:
        if i == len(self.events):
            self.events.append(self._event(enable_timing=True))
        self.events[i].record()

    def durations_s(self, steps: int) -> np.ndarray:
        marks = self.events[: steps + 1]
        return np.asarray([a.elapsed_time(b) / 1e3 for a, b in itertools.pairwise(marks)], dtype=float)


def _cuda_loop(step: Callable[[], Any], sync: Callable[[], None], window_s: float, min_steps: int,
               steps_per_s: float | None, pool: _EventPool) -> tuple[float, int]:
    """The GPU's window: the host queues steps ahead of the device, so a deadline read on the
    host's clock would end the window up to a whole launch queue later on the device. So it runs
    the number of steps that the warm-up's rate says fill the window, syncs, and only if the
    device was faster than that tops up with more (a rare extra sync inside the window)."""
    now = clock.now
    t0 = now()
    pool.record(0)
    n = 0
    target = max(min_steps, math.ceil(window_s * steps_per_s)) if steps_per_s else min_steps
    while True:
        while n < target:
            step()
            n += 1
            pool.record(n)
        sync()
        elapsed_s = now() - t0
        if elapsed_s >= window_s:
            return t0, n
        target = n + max(1, math.ceil((window_s - elapsed_s) * n / max(elapsed_s, 1e-9)))


class HostLoad:
    """CPU time that other processes (and other VMs: steal) used during a window, from psutil:
    on a shared machine that is the main source of noise. None where psutil is missing."""

    def __init__(self, enabled: bool = True) -> None:
        self._psutil = None
        if not enabled:
            return
        try:
            import psutil
        except ImportError:
            return
        self._psutil = psutil
        self._me = psutil.Process()
        try:  # only the CPUs this process may run on (a cpuset job on a big node)
            self._cpus: set[int] | None = set(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            self._cpus = None

    def busy_s(self) -> tuple[float, float] | None:
        """(busy CPU seconds of the CPUs this process may use, of this process and its children)."""
        if self._psutil is None:
            return None
        keys = ("user", "nice", "system", "irq", "softirq", "steal")
        per_cpu = self._psutil.cpu_times(percpu=True)
        mine = [t for i, t in enumerate(per_cpu) if self._cpus is None or i in self._cpus]
        machine = sum(getattr(t, k, 0.0) for t in mine for k in keys)
        p = self._me.cpu_times()
        return machine, p.user + p.system + p.children_user + p.children_system

    @staticmethod
    def other_cores(before: tuple[float, float] | None, after: tuple[float, float] | None,
                    seconds: float) -> float | None:
        if before is None or after is None or seconds <= 0:
            return None
        return max(0.0, ((after[0] - before[0]) - (after[1] - before[1])) / seconds)


_host = None


def host_load() -> HostLoad:
    global _host
    if _host is None:
        _host = HostLoad()
    return _host


def other_cores_now(seconds: float = 0.2) -> float | None:
    """CPU cores other processes keep busy, sampled over ``seconds`` (for a warning at start)."""
    host = host_load()
    before = host.busy_s()
    clock.sleep(seconds)
    return host.other_cores(before, host.busy_s(), seconds)


def _begin_all(meters: Sequence[Meter]) -> list[Any]:
    """Begin every meter, the headline (``meters[0]``) first: its begin spins to a counter tick
    (up to a period), which must not fall into the components' windows; theirs are quick."""
    return [m.begin() for m in meters]


def _end_all(meters: Sequence[Meter], starts: list[Any], t_end: float,
             t_start: float | None = None) -> list[EnergyReading]:
    """End every meter at the same ``t_end``, components first, so the headline's end-of-window
    spin is not charged to them. Readings come back in the meters' order."""
    return [m.end(s, t_end, t_start) for m, s in list(zip(meters, starts, strict=True))[::-1]][::-1]


def run_window(
    step: Callable[[], Any],
    sync: Callable[[], None],
    meters: Sequence[Meter],
    window_s: float,
    *,
    min_steps: int = 3,
    cuda_device: str | None = None,
    steps_per_s_hint: float | None = None,
    dither_s: float = 0.0,
) -> Trial:
    """One measured window. ``meters[0]`` is the headline meter: it begins first (its spin to a
    tick stays out of the component meters' windows) and is told when the work really started,
    so the idle moment between its start tick and the work is taken off like the tail; every
    meter is told the same end time (the closing sync), and the component meters end first, so
    the headline's end-of-window spin is not charged to them.
    ``cuda_device`` ("cuda:N"): time steps with CUDA events on that device's current stream.
    ``dither_s``: added to the window, so that windows do not all end at the same phase of the
    counter's ticks (an error that depends on that phase would repeat as a bias, unseen by the CV)."""
    window_s += max(0.0, dither_s)
    sync()
    host = host_load()
    pool = device_ctx = None
    if cuda_device is not None:
        import torch

        device_ctx = torch.cuda.device(torch.device(cuda_device))
        device_ctx.__enter__()
    try:
        if cuda_device is not None:
            expected = int((steps_per_s_hint or 0) * window_s * 1.2) + min_steps
            pool = _EventPool(min(expected, 1_000_000) + 1)
        watch = MemoryWatch(cuda_device)  # outside the metered window: its reads cost nothing there
        starts = _begin_all(meters)
        load_before = host.busy_s()
        try:
            if pool is not None:
                t0, steps = _cuda_loop(step, sync, window_s, min_steps, steps_per_s_hint, pool)
            else:
                t0, durations = _cpu_loop(step, window_s, min_steps)
                sync()
        except BaseException:  # close every window, so a failed one leaks into no later reading
            for m, s in zip(meters, starts, strict=False):  # never mask the original error
                try:
                    m.end(s)
                except Exception:  # noqa: BLE001 -- the original error is the one to report
                    pass
            raise
        t_end = clock.now()
        load_after = host.busy_s()
        readings = _end_all(meters, starts, t_end, t0)
        memory = watch.read()
        if pool is not None:
            durations = pool.durations_s(steps)
    finally:
        if device_ctx is not None:
            device_ctx.__exit__(None, None, None)
    others = host.other_cores(load_before, load_after, t_end - t0)
    return Trial(int(durations.size), t_end - t0, durations, tuple(readings), others, memory, t0)


def measure_idle(meters: Sequence[Meter], seconds: float,
                 sync: Callable[[], None] | None = None) -> list[EnergyReading]:
    """Energy each meter sees while nothing runs: the idle baseline for net energy."""
    if sync is not None:
        sync()
    starts = _begin_all(meters)
    t0 = clock.now()
    clock.sleep(seconds)
    return _end_all(meters, starts, clock.now(), t0)
