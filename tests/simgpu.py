"""A simulated NVIDIA GPU on a virtual clock, for tests and benchmarks (test code: not shipped).

Only three things are simulated: the NVML library (``pynvml``), the clock greenbench reads
(``greenbench.meters.clock``), and the device's timing (a CUDA-like stream whose steps take a configured
time). greenbench's own runner, window protocol, NvmlMeter and record builder run on it
unchanged, so a result here is a result of greenbench's code, and the same on every machine:
nothing depends on this machine's scheduling.

The physics (``SimConfig``):
* power is ``busy_w`` while a step runs on the stream; otherwise the idle power, which is
  ``cold_idle_w`` until the first work and ``warm_idle_w`` for ``warm_hold_s`` after any work
  (an H200 idles at 78 W cold and 118-128 W after load), plus, when ``decay_tau_s`` > 0, a decay
  ``(busy_w - idle) exp(-t / tau)`` after the work stops;
* the total-energy counter (mJ) changes every ``tick_s`` (first tick at ``tick_phase_s``); each
  tick adds the true energy of its interval times ``1 + N(0, tick_noise)``; a read returns the
  value as of the middle of the call, ``lag_s`` late;
* every NVML call costs ``read_cost_s`` of host time, plus ``N(0, read_jitter_s)``, plus
  ``hiccup_s`` with probability ``hiccup_p``;
* the host pays ``launch_s`` to enqueue a step and blocks when ``queue_depth`` steps are queued;
  ``synchronize`` waits for the stream; a CUDA event takes the time the stream reaches it.

``calibration`` in tests/test_simgpu.py checks that it reproduces the facts measured on the H200
(docs/measurement.md): plain edges CV about 5% at 1 s; tick-aligned edges 0.2-0.5% at 1 s; an
aligned end without tail correction +1.9% at 1 s.
"""

from __future__ import annotations

import math
import random
import sys
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

import fakes as _fake

SIM_UUID = "GPU-5170a7ed-0000-4000-8000-00000000h200"
SIM_NAME = "NVIDIA H200 (simulated)"


@dataclass(frozen=True)
class SimConfig:
    busy_w: float = 600.0
    warm_idle_w: float = 120.0
    cold_idle_w: float = 78.0
    warm_hold_s: float = 180.0
    decay_tau_s: float = 0.0
    tick_s: float = 0.1
    tick_phase_s: float = 0.0371
    tick_noise: float = 0.01
    lag_s: float = 0.0
    read_cost_s: float = 0.002
    read_jitter_s: float = 0.0
    hiccup_p: float = 0.0
    hiccup_s: float = 0.005
    launch_s: float = 20e-6
    queue_depth: int = 64
    sync_s: float = 10e-6
    clock_read_s: float = 50e-9  # reading the clock costs a little, so a clock-only loop advances
    power_limit_w: float = 700.0
    sm_clock_mhz: float = 1980.0
    temperature_c: float = 45.0
    seed: int = 0


class SimGpu:
    """The device, its NVML counter and the host clock, in one virtual timeline (seconds)."""

    def __init__(self, cfg: SimConfig = SimConfig(), t0_s: float = 1000.0):
        self.cfg = cfg
        self.t_s = t0_s
        self._tick_rng = random.Random(f"{cfg.seed}:ticks")
        self._read_rng = random.Random(f"{cfg.seed}:reads")
        self._stream_free_s = t0_s
        self._queued_ends: deque[float] = deque()
        self._busy: deque[list[float]] = deque()  # merged [start, end] intervals not yet integrated
        self._last_busy_end_s: float | None = None
        self._cursor_s = t0_s  # true energy is integrated up to here
        self._next_tick_s = t0_s + cfg.tick_phase_s
        self.counter_j = 0.0  # what NVML shows (noisy, at the last tick)
        self.true_j = 0.0  # the true energy up to the cursor
        self.steps_run = 0
        self.frozen_until_s = -math.inf  # the counter publishes nothing before this (a stall)
        self.fail_next_reads = 0  # energy reads that raise NVMLError (a transient fault)
        self.nvml_calls = 0
        self.events_made = 0
        self.nvml = SimNvml(self)

    # -- the host clock ---------------------------------------------------------------------
    def now(self) -> float:
        self.t_s += self.cfg.clock_read_s
        return self.t_s

    def sleep(self, seconds: float) -> None:
        self.t_s += max(0.0, seconds)

    # -- the stream -------------------------------------------------------------------------
    def launch(self, step_s: float) -> None:
        """Enqueue one step of ``step_s`` seconds of GPU time."""
        self.t_s += self.cfg.launch_s
        while self._queued_ends and self._queued_ends[0] <= self.t_s:
            self._queued_ends.popleft()
        if len(self._queued_ends) >= self.cfg.queue_depth:  # the launch queue is full: wait
            self.t_s = self._queued_ends.popleft()
        start = max(self.t_s, self._stream_free_s)
        end = start + step_s
        if self._busy and self._busy[-1][1] == start:
            self._busy[-1][1] = end
        else:
            self._busy.append([start, end])
        self._stream_free_s = end
        self._queued_ends.append(end)
        self.steps_run += 1

    def synchronize(self) -> None:
        self.t_s = max(self.t_s, self._stream_free_s) + self.cfg.sync_s
        self._queued_ends.clear()

    def stream_time_s(self) -> float:
        """When the work queued so far is done (what an event recorded now will read)."""
        return max(self.t_s, self._stream_free_s)

    # -- energy -----------------------------------------------------------------------------
    def _idle_j(self, a: float, b: float) -> float:
        cfg, last = self.cfg, self._last_busy_end_s
        if last is None:
            return cfg.cold_idle_w * (b - a)
        warm_until = last + cfg.warm_hold_s
        if a < warm_until < b:
            return self._idle_j(a, warm_until) + self._idle_j(warm_until, b)
        idle = cfg.warm_idle_w if a < warm_until else cfg.cold_idle_w
        energy = idle * (b - a)
        if cfg.decay_tau_s > 0:
            tau = cfg.decay_tau_s
            energy += (cfg.busy_w - idle) * tau * (math.exp(-(a - last) / tau) - math.exp(-(b - last) / tau))
        return energy

    def energy_between_j(self, a: float, b: float) -> float:
        """True energy in [a, b]; ``a`` must not precede the cursor (time only moves on)."""
        total, t = 0.0, a
        busy = self._busy
        while t < b:
            while busy and busy[0][1] <= t:
                self._last_busy_end_s = busy[0][1]
                busy.popleft()
            if busy and busy[0][0] <= t:
                end = min(b, busy[0][1])
                total += self.cfg.busy_w * (end - t)
            else:
                end = min(b, busy[0][0]) if busy else b
                total += self._idle_j(t, end)
            t = end
        while busy and busy[0][1] <= b:
            self._last_busy_end_s = busy[0][1]
            busy.popleft()
        return total

    def _advance_counter(self, visible_s: float) -> None:
        if visible_s < self.frozen_until_s:
            return
        while self._next_tick_s <= visible_s:
            delta = self.energy_between_j(self._cursor_s, self._next_tick_s)
            self.true_j += delta
            self.counter_j += delta * (1 + self._tick_rng.gauss(0.0, self.cfg.tick_noise))
            self._cursor_s = self._next_tick_s
            self._next_tick_s += self.cfg.tick_s

    def nvml_call(self) -> float:
        """Charge one NVML call to the host clock; returns when in it the value is sampled."""
        cfg = self.cfg
        cost = cfg.read_cost_s
        if cfg.read_jitter_s:
            cost = max(0.2 * cfg.read_cost_s, cost + self._read_rng.gauss(0.0, cfg.read_jitter_s))
        if cfg.hiccup_p and self._read_rng.random() < cfg.hiccup_p:
            cost += cfg.hiccup_s
        sample_s = self.t_s + cost / 2
        self.t_s += cost
        self.nvml_calls += 1
        return sample_s

    def freeze(self, seconds: float) -> None:
        """The counter stops publishing for ``seconds`` from now (then catches up)."""
        self.frozen_until_s = self.t_s + seconds

    def read_counter_mj(self) -> int:
        sample_s = self.nvml_call()
        if self.fail_next_reads > 0:
            self.fail_next_reads -= 1
            raise _fake.NVMLError()
        self._advance_counter(sample_s - self.cfg.lag_s)
        return round(self.counter_j * 1000)


class SimNvml:
    """The part of ``pynvml`` greenbench uses, over a SimGpu (errors from the fake module)."""

    NVMLError = _fake.NVMLError
    NVMLError_Uninitialized = _fake.NVMLError_Uninitialized
    NVMLError_InvalidArgument = _fake.NVMLError_InvalidArgument
    NVMLError_NotSupported = _fake.NVMLError_NotSupported
    NVMLError_NotFound = _fake.NVMLError_NotFound
    NVMLError_LibraryNotFound = _fake.NVMLError_LibraryNotFound
    NVML_CLOCK_SM = 1
    NVML_TEMPERATURE_GPU = 0

    def __init__(self, gpu: SimGpu):
        self._gpu = gpu
        self.init_count = 0
        self.process_pids: list[int] = []  # the compute processes NVML lists on the GPU
        self.sm_clock_mhz, self.temperature_c = gpu.cfg.sm_clock_mhz, gpu.cfg.temperature_c

    def _call(self) -> None:
        if self.init_count <= 0:
            raise self.NVMLError_Uninitialized()
        self._gpu.nvml_call()

    def nvmlInit(self) -> None:  # noqa: N802 -- pynvml's names
        self.init_count += 1

    def nvmlShutdown(self) -> None:  # noqa: N802
        self.init_count -= 1

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        self._call()
        return 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:  # noqa: N802
        self._call()
        if index != 0:
            raise self.NVMLError_InvalidArgument()
        return "h0"

    def nvmlDeviceGetHandleByUUID(self, uuid: str | bytes) -> str:  # noqa: N802
        self._call()
        uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
        if uuid != SIM_UUID:
            raise self.NVMLError_NotFound()
        return "h0"

    def nvmlDeviceGetUUID(self, handle: str) -> str:  # noqa: N802
        self._call()
        return SIM_UUID

    def nvmlDeviceGetName(self, handle: str) -> str:  # noqa: N802
        self._call()
        return SIM_NAME

    def nvmlSystemGetDriverVersion(self) -> str:  # noqa: N802
        return "580.159.04-sim"

    def nvmlSystemGetNVMLVersion(self) -> str:  # noqa: N802
        return "13.580.159.04-sim"

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: str) -> int:  # noqa: N802
        self._call()
        return int(self._gpu.cfg.power_limit_w * 1000)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: str) -> int:  # noqa: N802
        if self.init_count <= 0:
            raise self.NVMLError_Uninitialized()
        return self._gpu.read_counter_mj()

    def nvmlDeviceGetClockInfo(self, handle: str, clock_type: int) -> int:  # noqa: N802
        self._call()
        return int(self.sm_clock_mhz)

    def nvmlDeviceGetTemperature(self, handle: str, sensor: int) -> int:  # noqa: N802
        self._call()
        return int(self.temperature_c)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: str) -> list:  # noqa: N802
        self._call()
        return [SimpleNamespace(pid=p, usedGpuMemory=None) for p in self.process_pids]


class SimEvent:
    """torch.cuda.Event over the simulated stream."""

    gpu: SimGpu  # set per simulation by ``simulated``

    def __init__(self, enable_timing: bool = False):
        self.t_s: float | None = None
        type(self).gpu.events_made += 1
        type(self).gpu.t_s += 1e-6

    def record(self, stream: Any = None) -> None:
        gpu = type(self).gpu
        gpu.t_s += 2e-6
        self.t_s = gpu.stream_time_s()

    def elapsed_time(self, other: SimEvent) -> float:
        return (other.t_s - self.t_s) * 1e3


@dataclass
class SimStepModel:
    """A ladder model on the simulated device: GPU seconds per step at each batch size."""

    step_s: Callable[[int], float]
    params: int = 1_000_000
    correct: int = 900
    total: int = 1000


def _workload_class():
    from greenbench.workloads.base import Score, Workload

    class SimWorkload(Workload):
        """A model whose step takes a configured time on the simulated stream."""

        def __init__(self, gpu: SimGpu, model: SimStepModel):
            self._gpu, self._model = gpu, model

        @property
        def params(self) -> int:
            return self._model.params

        def make_step(self, batch_size: int) -> Callable[[], Any]:
            seconds, launch = self._model.step_s(batch_size), self._gpu.launch
            return lambda: launch(seconds)

        def evaluate(self, batch_size: int) -> Score:
            return Score(self._model.correct, self._model.total)

        def sync(self) -> None:
            self._gpu.synchronize()

        def provenance(self) -> dict[str, Any]:
            return {"simulated": True}

    return SimWorkload


class _Patches:
    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def setattr(self, obj: Any, name: str, value: Any) -> None:
        missing = object()
        old = getattr(obj, name, missing)
        setattr(obj, name, value)
        self._undo.append(lambda: delattr(obj, name) if old is missing else setattr(obj, name, old))

    def setitem(self, mapping: dict, key: Any, value: Any) -> None:
        missing = object()
        old = mapping.get(key, missing)
        mapping[key] = value
        self._undo.append(lambda: mapping.pop(key, None) if old is missing else mapping.__setitem__(key, old))

    def undo(self) -> None:
        while self._undo:
            self._undo.pop()()


@contextmanager
def simulated(cfg: SimConfig, models: dict[str, SimStepModel]) -> Iterator[SimGpu]:
    """Run greenbench against a SimGpu: ``cuda:0`` is the simulated H200, ``pynvml`` its NVML,
    ``greenbench.meters.clock`` its host clock, and a ladder's models (by name) its steps. The host CPU
    is not simulated, so no host meter and no host-load reading are taken."""
    import torch

    from greenbench import meters as metermod
    from greenbench.measure import devices as devices
    from greenbench.measure import protocol as measure
    from greenbench.measure import runner as runner
    from greenbench.meters import clock as clock
    from greenbench.meters import select as meter_select

    gpu = SimGpu(cfg)
    SimEvent.gpu = gpu
    workload = _workload_class()
    p = _Patches()
    try:
        p.setattr(clock, "now", gpu.now)
        p.setattr(clock, "sleep", gpu.sleep)
        p.setitem(sys.modules, "pynvml", gpu.nvml)
        p.setattr(devices, "resolve", lambda spec: devices.Device("cuda:0", SIM_NAME, SIM_UUID))
        p.setattr(torch.cuda, "Event", SimEvent)
        p.setattr(torch.cuda, "device", lambda dev: _NullContext())
        p.setattr(torch.cuda, "synchronize", lambda device=None: gpu.synchronize())
        p.setattr(torch.cuda, "set_device", lambda device: None)
        p.setattr(meter_select, "host_plan", lambda prefer, country: meter_select.Plan(
            metermod.NullMeter("cpu", "the host CPU is not simulated")))
        p.setattr(measure, "host_load", lambda: measure.HostLoad(enabled=False))

        def build(kind: str, *, model: Any, **kw: Any) -> Any:
            return workload(gpu, models[model.name])

        p.setattr(runner, "build_workload", build)
        yield gpu
    finally:
        p.undo()


class _NullContext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def ladder(models: dict[str, SimStepModel], batch_sizes: tuple[int, ...] = (1,)):
    """An in-memory ladder of the simulated models (embedded schema: names are what count)."""
    from greenbench.measure import zoo as zoo

    return zoo.EmbeddedLadder.model_validate({
        "name": "sim", "workload": "embedded", "source": "simulation",
        "models": [{"name": n, "arch": "linear"} for n in models],
        "batch_sizes": list(batch_sizes), "precisions": ["fp32"], "devices": ["cuda:0"],
    })


def profile(cfg: SimConfig, models: dict[str, SimStepModel], out_path, *, protocol=None,
            batch_sizes: tuple[int, ...] = (1,), after_window=None, on_event=None):
    """greenbench's runner over the simulated GPU; returns (profile, SimGpu)."""
    from greenbench.carbon import intensity as carbon
    from greenbench.measure import runner as runner
    from greenbench.measure.protocol import Protocol

    with simulated(cfg, models) as gpu:
        run_cfg = runner.RunConfig(
            ladder=ladder(models, batch_sizes), out_path=out_path, protocol=protocol or Protocol(),
            intensity=carbon.static_intensity(), cache_dir=out_path.parent, meter="nvml",
            force=True, after_window=after_window,
        )
        result = runner.run_profile(run_cfg, on_event)
    return result, gpu


def constant_step(seconds: float, **kw: Any) -> SimStepModel:
    return SimStepModel(lambda batch: seconds, **kw)


def with_(cfg: SimConfig, **changes: Any) -> SimConfig:
    return replace(cfg, **changes)


__all__ = [
    "SIM_NAME",
    "SIM_UUID",
    "SimConfig",
    "SimEvent",
    "SimGpu",
    "SimNvml",
    "SimStepModel",
    "constant_step",
    "ladder",
    "profile",
    "simulated",
    "with_",
]
