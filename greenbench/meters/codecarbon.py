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

``estimate_provenance()`` says which TDP and which RAM power the estimate used, and where each
came from, read off CodeCarbon's own objects (its CPU and RAM hardware objects, its CPU power
table), so an estimate can be checked. CodeCarbon's private attributes change between versions:
each is read defensively, and a value it does not expose is None with a ``<key>_reason``.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from greenbench.meters.base import (
    ESTIMATE,
    UNAVAILABLE,
    EnergyReading,
    Meter,
    MeterError,
    MeterInfo,
)
from greenbench.units import J_PER_KWH

_MODEL = (
    "CPU power modelled from CPU load and a guessed TDP (RAPL where CodeCarbon can read it), "
    "plus a constant RAM power"
)
# Modes in which CodeCarbon reads the CPU's energy counters (Linux RAPL, Windows' RAPL interface)
_RAPL_MODES = ("intel_rapl", "windows_emi")
# estimate_provenance()'s values, in order; each may be None with a "<key>_reason" beside it
PROVENANCE_KEYS = (
    "cpu_model", "cpu_tdp_w", "cpu_tdp_source", "cpu_power_source", "ram_power_w",
    "ram_power_source", "ram_total_gb", "codecarbon_version", "country_iso_code", "tracking_mode",
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


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _positive(value: Any) -> float | None:
    """A power or size CodeCarbon holds, as a finite positive float, else None."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) and x > 0 else None


def _conf_of(tracker: Any, detected: dict[str, Any]) -> dict[str, Any]:
    """CodeCarbon's configuration, its public get_detected_hardware() output taking precedence."""
    conf = getattr(tracker, "_conf", None)
    merged = dict(conf) if isinstance(conf, dict) else {}
    merged.update({k: v for k, v in detected.items() if v is not None})
    return merged


def _hardware_of(tracker: Any, type_name: str, part: str | None = None) -> Any:
    """CodeCarbon's hardware object of this class name (by name: its cache rebuilds them)."""
    for hw in getattr(tracker, "_hardware", None) or []:
        if type(hw).__name__ == type_name and (part is None or getattr(hw, "chip_part", None) == part):
            return hw
    return None


class _Provenance:
    """The provenance dict under construction: a value, or None with its reason."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def set(self, key: str, value: Any, reason: str | None = None) -> None:
        self.values[key] = value
        if value is None:
            self.values[f"{key}_reason"] = reason or "CodeCarbon does not expose it"

    def fill(self, reason: str) -> None:
        """Every key not set yet becomes None with this reason."""
        for key in PROVENANCE_KEYS:
            if key not in self.values:
                self.set(key, None, reason)

    def ordered(self) -> dict[str, Any]:
        """PROVENANCE_KEYS' order, each reason beside its key."""
        self.fill("not computed")
        out: dict[str, Any] = {}
        for key in PROVENANCE_KEYS:
            out[key] = self.values[key]
            if f"{key}_reason" in self.values:
                out[f"{key}_reason"] = self.values[f"{key}_reason"]
        return out


def _table_tdp(model: str) -> tuple[str | None, float | None]:
    """CodeCarbon's own CPU power table lookup: (matched table name, its TDP in W), or Nones."""
    from codecarbon.core import cpu as cc_cpu
    from codecarbon.input import DataSource

    tdp_cls = getattr(cc_cpu, "TDP", None)
    match = getattr(tdp_cls, "_get_matching_cpu", None)
    power = getattr(tdp_cls, "_get_cpu_constant_power", None)
    if tdp_cls is None or match is None or power is None:
        raise MeterError("this CodeCarbon has no CPU power table lookup (cpu.TDP._get_matching_cpu)")
    table = DataSource().get_cpu_power_data()
    lookup = tdp_cls.__new__(tdp_cls)  # TDP() would detect the CPU again; only its lookup is used
    name = lookup._get_matching_cpu(model, table)
    return (name, float(lookup._get_cpu_constant_power(name, table))) if name else (None, None)


def _tdp_source(
    tracker: Any, conf: dict[str, Any], cpu: Any, tdp_w: float, model: str | None
) -> tuple[str | None, str | None]:
    """Where the TDP in CodeCarbon's CPU object came from: (source, None) or (None, reason).

    CodeCarbon (3.x) takes the table TDP of the detected model, else a default per thread
    (DEFAULT_POWER_PER_CORE), else a generic constant (POWER_CONSTANT), and multiplies the first
    two by the physical CPU count; the constants are read off its modules.
    """
    from codecarbon.core import cpu as cc_cpu
    from codecarbon.external import hardware as cc_hw

    forced = getattr(tracker, "_force_cpu_power", None)
    if forced is not None:
        return f"force_cpu_power given to CodeCarbon ({forced:g} W)", None
    sockets = conf.get("cpu_physical_count") or 1
    times = f" x {sockets} physical CPUs" if sockets > 1 else ""
    generic_w = getattr(cc_hw, "POWER_CONSTANT", None)
    if getattr(cpu, "_is_generic_tdp", False) or (not model and tdp_w == generic_w):
        return f"CodeCarbon's generic default ({tdp_w:g} W): no CPU model and TDP found", None
    if not model:
        return None, "CodeCarbon detected no CPU model, so no table lookup can be checked"
    try:
        name, table_w = _table_tdp(model)
    except Exception as exc:  # noqa: BLE001 -- a missing or changed table is a reason, not a crash
        return None, f"CodeCarbon's CPU power table could not be read: {_one_line(exc)}"
    if name is not None and table_w is not None:
        if math.isclose(table_w * sockets, tdp_w):
            return f"CodeCarbon's CPU power table: {name!r} at {table_w:g} W{times}", None
        return None, (f"CodeCarbon's CPU power table gives {table_w:g} W{times} for {name!r}, "
                      f"but its CPU object uses {tdp_w:g} W")
    per_thread_w = getattr(cc_cpu, "DEFAULT_POWER_PER_CORE", None)
    threads = conf.get("cpu_count")
    if per_thread_w and threads and math.isclose(per_thread_w * threads * sockets, tdp_w):
        return (f"CodeCarbon's default of {per_thread_w:g} W per thread x {threads} threads{times}: "
                f"{model!r} is not in its CPU power table"), None
    if generic_w is not None and math.isclose(generic_w, tdp_w):
        return f"CodeCarbon's generic default ({tdp_w:g} W): {model!r} is not in its CPU power table", None
    return None, (f"{model!r} is not in CodeCarbon's CPU power table, and {tdp_w:g} W matches "
                  "none of its defaults")


def _cpu_provenance(p: _Provenance, tracker: Any, conf: dict[str, Any], reads_rapl: bool | None) -> None:
    cpu = _hardware_of(tracker, "CPU")
    model = conf.get("cpu_model") or getattr(cpu, "_model", None)
    p.set("cpu_model", str(model) if model else None, "CodeCarbon did not detect the CPU model")
    mode = getattr(cpu, "_mode", None)
    if cpu is None:
        others = ", ".join(str(h) for h in conf.get("hardware") or []) or "none"
        reason = f"CodeCarbon set up no CPU object (its hardware: {others})"
        p.set("cpu_power_source", "rapl" if reads_rapl else None, reason)
        p.set("cpu_tdp_w", None, reason)
        p.set("cpu_tdp_source", None, reason)
        return
    if mode in _RAPL_MODES or (mode is None and reads_rapl):
        p.set("cpu_power_source", "rapl")
        reason = "CodeCarbon reads the CPU's RAPL counters: no TDP enters its figure"
        p.set("cpu_tdp_w", None, reason)
        p.set("cpu_tdp_source", None, reason)
        return
    from codecarbon.external import hardware as cc_hw

    if mode == getattr(cc_hw, "MODE_CPU_LOAD", "cpu_load"):
        p.set("cpu_power_source", "load model: TDP scaled by CPU load (CodeCarbon's cpu_load mode)")
    elif mode == "constant":
        share = getattr(cc_hw, "CONSUMPTION_PERCENTAGE_CONSTANT", None)
        p.set("cpu_power_source", f"constant model: {share:.0%} of TDP" if share else "constant model")
    else:
        p.set("cpu_power_source", f"CodeCarbon's {mode} mode" if mode else None,
              "CodeCarbon's CPU object has no mode (_mode)")
    tdp_w = _positive(getattr(cpu, "_tdp", None))
    if tdp_w is None:
        reason = f"CodeCarbon's CPU object holds no usable TDP (_tdp = {getattr(cpu, '_tdp', None)!r})"
        p.set("cpu_tdp_w", None, reason)
        p.set("cpu_tdp_source", None, reason)
        return
    p.set("cpu_tdp_w", tdp_w)
    source, why_none = _tdp_source(tracker, conf, cpu, tdp_w, str(model) if model else None)
    p.set("cpu_tdp_source", source, why_none)


def _ram_provenance(p: _Provenance, tracker: Any, conf: dict[str, Any], tracking_mode: str) -> None:
    ram = _hardware_of(tracker, "RAM")
    # CodeCarbon's "GB" is 2**30 bytes (its B_TO_GB)
    total_gb = _positive(conf.get("ram_total_size"))
    if total_gb is None and ram is not None:
        try:
            total_gb = _positive(ram.machine_memory_GB)
        except Exception:  # noqa: BLE001 -- an unknown size is a reason below
            total_gb = None
    p.set("ram_total_gb", total_gb, "CodeCarbon did not report the RAM size (ram_total_size)")
    if ram is None:
        reason = ("measured by the Raspberry Pi's PMIC, not a constant"
                  if _hardware_of(tracker, "Raspberry", "RAM") is not None
                  else "CodeCarbon set up no RAM object")
        p.set("ram_power_w", None, reason)
        p.set("ram_power_source", None, reason)
        return
    try:  # machine mode: a function of the RAM size only, so one reading is the constant it adds
        ram_w = _positive(getattr(ram.total_power(), "W", None))
        reason = "CodeCarbon's RAM object reported no positive power"
    except Exception as exc:  # noqa: BLE001
        ram_w, reason = None, f"CodeCarbon's RAM power failed: {_one_line(exc)}"
    p.set("ram_power_w", ram_w, reason)
    forced = getattr(ram, "_force_ram_power", None)
    dimm_count = getattr(ram, "_estimate_dimm_count", None)
    if forced is not None:
        p.set("ram_power_source", f"force_ram_power given to CodeCarbon ({forced:g} W)")
    elif tracking_mode != "machine":
        p.set("ram_power_source", "CodeCarbon's RAM model on this process's memory (varies with it)")
    elif dimm_count is not None and total_gb is not None:
        try:
            dimms = dimm_count(total_gb)
        except Exception as exc:  # noqa: BLE001
            p.set("ram_power_source", None, f"CodeCarbon's DIMM count failed: {_one_line(exc)}")
        else:
            p.set("ram_power_source", f"CodeCarbon's RAM model: {dimms} DIMMs guessed for {total_gb:.1f} GB")
    else:
        p.set("ram_power_source", None, "this CodeCarbon does not expose its RAM model (_estimate_dimm_count)")


def _set_version(p: _Provenance) -> None:
    try:
        import codecarbon
    except Exception as exc:  # noqa: BLE001 -- a broken install is a reason too
        p.set("codecarbon_version", None, f"codecarbon does not import: {_one_line(exc)}")
        return
    p.set("codecarbon_version", getattr(codecarbon, "__version__", None), "codecarbon has no __version__")


def estimate_provenance_of(
    tracker: Any,
    detected: dict[str, Any],
    *,
    country_iso_code: str,
    tracking_mode: str,
    reads_rapl: bool | None,
) -> dict[str, Any]:
    """The TDP, RAM power and their sources of a tracker whose hardware is detected
    (``detected``: its get_detected_hardware() output)."""
    p = _Provenance()
    _set_version(p)
    p.set("country_iso_code", getattr(tracker, "_country_iso_code", None) or country_iso_code)
    mode = getattr(tracker, "_tracking_mode", None) or tracking_mode
    p.set("tracking_mode", mode)
    conf = _conf_of(tracker, detected)
    for part in (lambda: _cpu_provenance(p, tracker, conf, reads_rapl),
                 lambda: _ram_provenance(p, tracker, conf, mode)):
        try:
            part()
        except Exception as exc:  # noqa: BLE001 -- CodeCarbon's internals change between versions
            p.fill(f"CodeCarbon's hardware objects are not as expected: {_one_line(exc)}")
    return p.ordered()


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
        self._provenance: dict[str, Any] = {}  # kept after close(): the hardware does not change
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
                raise MeterError(f"codecarbon is not installed (pip install codecarbon): {exc}") from None
            except Exception as exc:  # noqa: BLE001 -- CodeCarbon fails in many ways
                raise MeterError(f"CodeCarbon could not start: {exc!r}{self._log.last()}") from None
        conf = getattr(tracker, "_conf", None)
        hardware["hardware"] = list(conf.get("hardware") or []) if isinstance(conf, dict) else []
        self._hardware = hardware
        self._tracker = tracker
        if not self._provenance:
            with _quiet(self._log):  # the table lookup loads a CSV once (about 0.25 s)
                self._provenance = estimate_provenance_of(
                    tracker, hardware, country_iso_code=self.country_iso_code,
                    tracking_mode=self.tracking_mode, reads_rapl=self.reads_rapl(),
                )
        return tracker

    def estimate_provenance(self) -> dict[str, Any]:
        """Which CPU TDP and RAM power CodeCarbon's estimate uses, and where each came from.

        Keys (PROVENANCE_KEYS): cpu_model, cpu_tdp_w, cpu_tdp_source, cpu_power_source ("rapl"
        where CodeCarbon reads RAPL, else its load/TDP model), ram_power_w (the constant RAM
        power it adds), ram_power_source, ram_total_gb (CodeCarbon's GB: 2**30 bytes),
        codecarbon_version, country_iso_code, tracking_mode. A value CodeCarbon does not expose
        is None with a ``<key>_reason`` beside it. Detects the hardware first if needed (about
        1.3 s, once); never raises: a CodeCarbon that cannot start is the reason of every value.
        """
        if not self._provenance:
            try:
                self._ensure_tracker()
            except MeterError as exc:
                p = _Provenance()
                _set_version(p)
                p.set("country_iso_code", self.country_iso_code)
                p.set("tracking_mode", self.tracking_mode)
                p.fill(str(exc))
                return p.ordered()
        return dict(self._provenance)

    @property
    def tracker(self) -> Any:
        """CodeCarbon's tracker: made by the first window or estimate_provenance(), None again
        after close() (the provenance is kept: the hardware does not change)."""
        return self._tracker

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
            details.update(self._provenance)
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

    def end(self, start: _Start, t_end: float | None = None, t_start: float | None = None) -> EnergyReading:
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
