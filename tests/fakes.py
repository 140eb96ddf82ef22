"""Test doubles: a fake ``pynvml`` module over an injectable clock, and a replay of a counter log.

They assert physics (energy = power x time on a ticking counter), not calls; greenbench's real
NvmlMeter and CounterMeter run on them unchanged.
"""

from __future__ import annotations

import bisect
import csv
import io
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from greenbench.meters.base import NVML_COUNTER, CounterMeter, MeterInfo

# -- a fake pynvml ----------------------------------------------------------------------------


class NVMLError(Exception):
    value = 999
    message = "Unknown Error"

    def __init__(self, value: int | None = None):
        super().__init__(self.message)
        if value is not None:
            self.value = value

    def __str__(self) -> str:
        return self.message


class NVMLError_Uninitialized(NVMLError):  # noqa: N801 -- pynvml's names
    value, message = 1, "Uninitialized"


class NVMLError_InvalidArgument(NVMLError):  # noqa: N801
    value, message = 2, "Invalid Argument"


class NVMLError_NotSupported(NVMLError):  # noqa: N801
    value, message = 3, "Not Supported"


class NVMLError_NotFound(NVMLError):  # noqa: N801
    value, message = 6, "Not Found"


class NVMLError_LibraryNotFound(NVMLError):  # noqa: N801
    value, message = 12, "NVML Shared Library Not Found"


@dataclass
class _FakeGpu:
    index: int
    uuid: str
    name: str
    segments: list[tuple[float, float]] = field(default_factory=list)  # (from t_s, power_w)

    def energy_mj(self, t_s: float) -> float:
        total_j = 0.0
        for i, (t0, power_w) in enumerate(self.segments):
            t1 = self.segments[i + 1][0] if i + 1 < len(self.segments) else math.inf
            if t_s <= t0:
                break
            total_j += power_w * (min(t_s, t1) - t0)
        return total_j * 1000


class FakeNvml:
    """The part of ``pynvml`` NvmlMeter uses, over an injectable clock.

    counter_mj = energy up to floor(t / tick_s) * tick_s, plus ``offset_mj``, modulo 2**64, where
    t is the clock minus its value at construction; with constant power that is
    floor(t / tick_s) * tick_s * power_w * 1000 + offset_mj. ``set_power`` changes a GPU's power
    from the current time on. Options: ``stuck`` (counter never moves), ``library_missing``
    (nvmlInit raises NVMLError_LibraryNotFound), ``counter_supported=False`` (pre-Volta).
    Device calls before nvmlInit raise NVMLError_Uninitialized, as the real library does.
    """

    NVMLError = NVMLError
    NVMLError_Uninitialized = NVMLError_Uninitialized
    NVMLError_InvalidArgument = NVMLError_InvalidArgument
    NVMLError_NotSupported = NVMLError_NotSupported
    NVMLError_NotFound = NVMLError_NotFound
    NVMLError_LibraryNotFound = NVMLError_LibraryNotFound

    def __init__(
        self,
        *,
        count: int = 1,
        power_w: float | Sequence[float] = 300.0,
        tick_s: float = 0.1,
        offset_mj: int = 0,
        stuck: bool = False,
        library_missing: bool = False,
        counter_supported: bool = True,
        power_limit_w: float = 700.0,
        uuids: Sequence[str] | None = None,
        name: str = "Fake H200",
        clock: Callable[[], float] = time.perf_counter,
    ):
        powers = [power_w] * count if isinstance(power_w, (int, float)) else list(power_w)
        uuids = list(uuids) if uuids else [f"GPU-fake{i:04d}-0000-0000-0000-000000000000" for i in range(count)]
        self.gpus = [_FakeGpu(i, uuids[i], name, [(0.0, float(powers[i]))]) for i in range(count)]
        self.tick_s, self.offset_mj, self.stuck = tick_s, offset_mj, stuck
        self.library_missing, self.counter_supported = library_missing, counter_supported
        self.power_limit_mw = int(power_limit_w * 1000)
        self.clock = clock
        self.t0_s = clock()
        self.sm_clock_mhz, self.temperature_c = 1980, 40  # what the validity checks read
        self.process_pids: list[int] = []  # compute processes NVML lists on every GPU
        self.init_count = 0  # nvmlInit minus nvmlShutdown calls, for tests of the lifecycle
        self.energy_reads = 0

    def _gpu(self, handle: _FakeGpu) -> _FakeGpu:
        if self.init_count <= 0:
            raise NVMLError_Uninitialized()
        return handle

    def set_power(self, power_w: float, index: int = 0) -> None:
        self.gpus[index].segments.append((self.clock() - self.t0_s, float(power_w)))

    def nvmlInit(self) -> None:  # noqa: N802 -- pynvml's names
        if self.library_missing:
            raise NVMLError_LibraryNotFound()
        self.init_count += 1

    def nvmlShutdown(self) -> None:  # noqa: N802
        if self.init_count <= 0:
            raise NVMLError_Uninitialized()
        self.init_count -= 1

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        if self.init_count <= 0:
            raise NVMLError_Uninitialized()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _FakeGpu:  # noqa: N802
        if self.init_count <= 0:
            raise NVMLError_Uninitialized()
        if not 0 <= index < len(self.gpus):
            raise NVMLError_InvalidArgument()
        return self.gpus[index]

    def nvmlDeviceGetHandleByUUID(self, uuid: str | bytes) -> _FakeGpu:  # noqa: N802
        if self.init_count <= 0:
            raise NVMLError_Uninitialized()
        uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
        for gpu in self.gpus:
            if gpu.uuid == uuid:
                return gpu
        raise NVMLError_NotFound()

    def nvmlDeviceGetUUID(self, handle: _FakeGpu) -> str:  # noqa: N802
        return self._gpu(handle).uuid

    def nvmlDeviceGetName(self, handle: _FakeGpu) -> str:  # noqa: N802
        return self._gpu(handle).name

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: _FakeGpu) -> int:  # noqa: N802
        gpu = self._gpu(handle)
        if not self.counter_supported:
            raise NVMLError_NotSupported()
        self.energy_reads += 1
        t_s = 0.0 if self.stuck else self.clock() - self.t0_s
        tick_t_s = math.floor(t_s / self.tick_s) * self.tick_s
        return (round(gpu.energy_mj(tick_t_s)) + self.offset_mj) % 2**64

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: _FakeGpu) -> int:  # noqa: N802
        self._gpu(handle)
        return self.power_limit_mw

    NVML_CLOCK_SM = 1
    NVML_TEMPERATURE_GPU = 0

    def nvmlDeviceGetClockInfo(self, handle: _FakeGpu, clock_type: int) -> int:  # noqa: N802
        self._gpu(handle)
        return self.sm_clock_mhz

    def nvmlDeviceGetTemperature(self, handle: _FakeGpu, sensor: int) -> int:  # noqa: N802
        self._gpu(handle)
        return self.temperature_c

    def nvmlDeviceGetComputeRunningProcesses(self, handle: _FakeGpu) -> list:  # noqa: N802
        from types import SimpleNamespace

        self._gpu(handle)
        return [SimpleNamespace(pid=pid, usedGpuMemory=None) for pid in self.process_pids]

    def nvmlSystemGetDriverVersion(self) -> str:  # noqa: N802
        return "000.00.00-fake"

    def nvmlSystemGetNVMLVersion(self) -> str:  # noqa: N802
        return "00.000.00-fake"


def read_counter_log(source: str | Path | Iterable[tuple[float, float]]
                     ) -> tuple[list[tuple[float, float]], dict[str, str]]:
    """Pairs (t_s, energy_j) and the ``# key: value`` header lines of a counter log CSV."""
    if not isinstance(source, (str, Path)):
        return sorted((float(t), float(e)) for t, e in source), {}
    meta: dict[str, str] = {}
    rows: list[tuple[float, float]] = []
    lines = []
    for line in Path(source).read_text().splitlines():
        if line.lstrip().startswith("#"):
            key, sep, value = line.lstrip("# ").partition(":")
            if sep:
                meta[key.strip()] = value.strip()
        elif line.strip():
            lines.append(line)
    for row in csv.DictReader(io.StringIO("\n".join(lines))):
        rows.append((float(row["t_s"]), float(row["energy_j"])))
    return sorted(rows), meta


class ReplayMeter(CounterMeter):
    """Replays a recorded counter: ``_read_j`` is the last value at or before (clock - t0).

    ``t0`` is the clock at construction. The method comes from the log's ``# method:`` header,
    else ``method``, else nvml_counter; the domain likewise from ``# domain:``.
    """

    def __init__(
        self,
        log: str | Path | Iterable[tuple[float, float]],
        *,
        method: str | None = None,
        domain: str | None = None,
        wrap_j: float | None = None,
        clock: Callable[[], float] | None = None,
    ):
        super().__init__(clock)
        pairs, meta = read_counter_log(log)
        if not pairs:
            raise ValueError("empty counter log")
        self._times_s = [t for t, _ in pairs]
        self._values_j = [e for _, e in pairs]
        self.method = meta.get("method") or method or NVML_COUNTER
        self.domain = meta.get("domain") or domain or "replay"
        self._wrap_j = wrap_j
        self._t0_s = self._clock()

    def info(self) -> MeterInfo:
        span_s = self._times_s[-1] - self._times_s[0]
        return MeterInfo(self.domain, self.method, True, f"replay of a recorded counter log ({span_s:g} s)")

    def _read_j(self) -> float:
        i = bisect.bisect_right(self._times_s, self._clock() - self._t0_s) - 1
        return self._values_j[max(i, 0)]


class FakeClock:
    """Advances ``step_s`` on every read, so spin loops end quickly and deterministically."""

    def __init__(self, t_s: float = 1000.0, step_s: float = 0.001):
        self.t_s, self.step_s = t_s, step_s

    def __call__(self) -> float:
        self.t_s += self.step_s
        return self.t_s

    def advance(self, dt_s: float) -> None:
        self.t_s += dt_s
