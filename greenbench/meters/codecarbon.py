"""CPU+RAM energy estimated by CodeCarbon (offline). Always labelled ``estimate``, never measured.

Why an estimate: without RAPL, CodeCarbon models CPU power from the CPU load and a guessed TDP and
adds a constant RAM power (about 20 W), so its "energy" is a linear function of wall time. Even
where CodeCarbon reads RAPL itself, the RAM share stays that constant, so the sum is still an
estimate; where RAPL is readable, ``select_meters`` uses our RaplMeter instead.

How it is driven, and why:
* ``OfflineEmissionsTracker``: no network call (the online tracker, offline, silently falls back
  to a wrong region).
* ``tracking_mode="machine"``: the whole box, as RAPL and NVML meter their whole device and as
  the idle baseline (net = gross - idle) assumes. "process" scales CPU power by this process's CPU
  share with no idle floor, so idle power would read about 0 and gross and net would blur.
* ``gpu_ids=[]``: its GPU figure is never added to ours (NVML is the GPU measurement; adding it
  would count twice). On a GPU box CodeCarbon still opens NVML at window edges, outside the
  timed loop; ``gpu_energy`` is ignored regardless.
* only ``start_task``/``stop_task`` (never ``start``) and ``measure_power_secs=3600``: no periodic
  measurement thread. ``start_task`` still arms a 1 s utilisation monitor; it is cancelled,
  because ``stop_task`` takes one sample covering the whole window (load from cumulative CPU
  times, or RAPL counters), so the monitor adds nothing but wake-ups inside the timed loop.
* ``output_methods=[]``: nothing written (``save_to_file`` is deprecated in 3.x and would warn).
* CodeCarbon's logger and warnings are captured while it runs: nothing reaches stdout/stderr,
  and its warnings and errors feed the reasons of unavailable readings.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .base import ESTIMATE, UNAVAILABLE, EnergyReading, Meter, MeterError, MeterInfo

J_PER_KWH = 3.6e6
_MODEL = (
    "CPU power modelled from CPU load and a guessed TDP (RAPL where CodeCarbon can read it), "
    "plus a constant RAM power"
)


class _LogSink(logging.Filter):
    """Keeps CodeCarbon's warnings and errors, and lets no record through to its handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: deque[str] = deque(maxlen=20)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            self.lines.append(f"{record.levelname.lower()}: {record.getMessage()}")
        return False

    def last(self) -> str:
        return f" (CodeCarbon said: {self.lines[-1]})" if self.lines else ""


@contextmanager
def _quiet(sink: _LogSink) -> Iterator[None]:
    logger = logging.getLogger("codecarbon")
    logger.addFilter(sink)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
        sink.lines.extend(f"warning: {w.message}" for w in caught)
    finally:
        logger.removeFilter(sink)


@dataclass(frozen=True)
class _Start:
    t_s: float
    error: str | None = None


class CodeCarbonMeter(Meter):
    domain = "cpu+ram"
    method = ESTIMATE

    def __init__(
        self,
        country_iso_code: str = "USA",
        *,
        tracking_mode: str = "machine",
        tracker_factory: Callable[[], Any] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.country_iso_code = country_iso_code
        self.tracking_mode = tracking_mode
        self._factory = tracker_factory  # tests pass a fake tracker
        self._clock = clock
        self._tracker: Any = None
        self._hardware: dict[str, Any] = {}
        self._log = _LogSink()
        self._active = False

    def _make_tracker(self) -> Any:
        from codecarbon import OfflineEmissionsTracker

        return OfflineEmissionsTracker(
            country_iso_code=self.country_iso_code,
            output_methods=[],
            log_level="error",
            measure_power_secs=3600,
            tracking_mode=self.tracking_mode,
            gpu_ids=[],
            allow_multiple_runs=True,  # no lock file
        )

    def _ensure_tracker(self) -> Any:
        if self._tracker is not None:
            return self._tracker
        with _quiet(self._log):
            try:
                tracker = (self._factory or self._make_tracker)()
                # CPU/RAM detection (about 1.3 s) happens here, not inside the first window
                detect = getattr(tracker, "get_detected_hardware", None)
                hardware = dict(detect()) if detect else {}
            except ImportError as exc:
                raise MeterError(f"codecarbon is not installed (pip install codecarbon): {exc}")
            except Exception as exc:  # noqa: BLE001 -- CodeCarbon fails in many ways
                raise MeterError(f"CodeCarbon could not start: {exc!r}{self._log.last()}")
        conf = getattr(tracker, "_conf", None)
        hardware["hardware"] = list(conf.get("hardware") or []) if isinstance(conf, dict) else []
        self._hardware = hardware
        self._tracker = tracker
        return tracker

    def reads_rapl(self) -> bool | None:
        """Whether CodeCarbon's CPU figure comes from RAPL (None until it has detected hardware)."""
        if not self._hardware:
            return None
        return any("rapl" in str(h).lower() for h in self._hardware.get("hardware", []))

    def info(self) -> MeterInfo:
        with _quiet(self._log):
            try:
                import codecarbon
            except Exception as exc:  # noqa: BLE001 -- a broken install is "not available" too
                return MeterInfo(
                    self.domain, UNAVAILABLE, False,
                    f"codecarbon is not installed or fails to import (pip install codecarbon): {exc}",
                )
        details: dict[str, Any] = {
            "codecarbon_version": getattr(codecarbon, "__version__", "?"),
            "model": _MODEL,
            "country_iso_code": self.country_iso_code,
            "tracking_mode": self.tracking_mode,
        }
        if self._hardware:
            details.update(self._hardware)
            details["cpu_source"] = "rapl" if self.reads_rapl() else "load model"
        else:
            details["hardware"] = "detected on the first window (about 1.3 s)"
        reason = f"estimate, not a measurement: {_MODEL}"
        return MeterInfo(self.domain, ESTIMATE, True, reason, details)

    def begin(self) -> _Start:
        tracker = self._ensure_tracker()
        self._log.lines.clear()
        error = None
        with _quiet(self._log):
            try:
                tracker.start_task()
                self._active = True
                monitor = getattr(tracker, "_scheduler_monitor_power", None)
                if monitor is not None:  # see the module docstring
                    monitor.stop()
            except Exception as exc:  # noqa: BLE001
                error = f"CodeCarbon start_task failed: {exc!r}{self._log.last()}"
        return _Start(self._clock(), error)

    def _unavailable(self, duration_s: float, reason: str) -> EnergyReading:
        return EnergyReading(self.domain, UNAVAILABLE, None, duration_s, reason=reason)

    def end(self, start: _Start, t_end: float | None = None) -> EnergyReading:
        # t_end is not used: CodeCarbon's figure runs to this call, so its duration must too
        duration_s = self._clock() - start.t_s
        if start.error:
            return self._unavailable(duration_s, start.error)
        with _quiet(self._log):
            try:
                data = self._tracker.stop_task()
            except Exception as exc:  # noqa: BLE001
                return self._unavailable(duration_s, f"CodeCarbon stop_task failed: {exc!r}")
            finally:
                self._active = False
        if data is None:
            return self._unavailable(
                duration_s, f"CodeCarbon stop_task returned no data{self._log.last()}"
            )
        try:  # kWh -> J; gpu_energy is never added (NVML meters the GPU)
            energy_j = (float(data.cpu_energy) + float(data.ram_energy)) * J_PER_KWH
        except (AttributeError, TypeError, ValueError) as exc:
            return self._unavailable(duration_s, f"CodeCarbon returned unreadable energy: {exc!r}")
        if not math.isfinite(energy_j) or energy_j <= 0:
            return self._unavailable(
                duration_s, f"CodeCarbon reported {energy_j} J for this window{self._log.last()}"
            )
        return EnergyReading(self.domain, ESTIMATE, energy_j, duration_s)

    def close(self) -> None:
        if self._tracker is not None and self._active:
            with _quiet(self._log):
                try:
                    self._tracker.stop_task()
                except Exception:  # noqa: BLE001 -- closing must not raise
                    pass
        self._active = False
        self._tracker = None
