"""GPU energy from NVML's total-energy counter (millijoules since driver load; Volta and later).

The counter is the measurement: integrating sampled power differed from it by -26% to +22%
(docs/measurement.md). ``pynvml`` is imported lazily and its errors stay in this module,
each turned into a one-line reason; the module itself is injectable so tests run without a GPU.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from greenbench.meters.base import NVML_COUNTER, CounterMeter, MeterError, MeterInfo

COUNTER_MODULUS_MJ = 2**64  # nvmlDeviceGetTotalEnergyConsumption is an unsigned 64-bit count
COUNTER_WRAP_J = COUNTER_MODULUS_MJ / 1000

_KNOWN_ERRORS = {
    "NVMLError_LibraryNotFound": "NVML library not found (no NVIDIA driver on this machine)",
    "NVMLError_DriverNotLoaded": "NVIDIA driver not loaded",
    "NVMLError_NotSupported": "not supported on this GPU",
    "NVMLError_NoPermission": "no permission to query NVML",
    "NVMLError_NotFound": "GPU not found by NVML",
    "NVMLError_GpuIsLost": "GPU is lost (fell off the bus)",
    "NVMLError_InvalidArgument": "invalid argument to NVML (no such GPU?)",
}


def _load_nvml(nvml: Any = None) -> Any:
    if nvml is not None:
        return nvml
    import pynvml  # lazily: importing greenbench.meters must not touch NVML

    return pynvml


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def nvml_error_reason(exc: BaseException) -> str:
    """One line for an NVML error (matched by class name, so a fake module works too)."""
    return f"{_KNOWN_ERRORS.get(type(exc).__name__, 'NVML error')}: {exc}"


def _full_uuid(uuid: Any) -> str:
    # torch reports "8d4b...-..." without the "GPU-" prefix NVML uses
    text = _text(uuid).strip()
    return text if text.upper().startswith(("GPU-", "MIG-")) else f"GPU-{text}"


def parse_gpu_selector(selector: int | str) -> tuple[int | None, str | None]:
    """(torch CUDA index, None) or (None, UUID) from 0, "0", "cuda", "cuda:1" or "GPU-...". """
    if isinstance(selector, int) and not isinstance(selector, bool):
        return selector, None
    text = str(selector).strip()
    if text == "cuda":
        return 0, None
    if text.startswith("cuda:"):
        text = text[len("cuda:") :]
    if text.isdigit():
        return int(text), None
    if text.upper().startswith(("GPU-", "MIG-")):
        return None, text
    raise MeterError(
        f"cannot read GPU selector {selector!r}: give a CUDA index (0, 'cuda:1') or a UUID ('GPU-...')"
    )


def _by_uuid(nvml: Any, uuid: str) -> Any:
    if uuid.upper().startswith("MIG-"):
        raise MeterError(
            f"{uuid} is a MIG instance: NVML's energy counter belongs to the whole GPU, shared "
            "with the other instances, so it cannot meter one instance"
        )
    try:
        return nvml.nvmlDeviceGetHandleByUUID(uuid)
    except nvml.NVMLError:
        pass
    # CUDA_VISIBLE_DEVICES accepts UUID prefixes; NVML's lookup wants the whole UUID
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        if _text(nvml.nvmlDeviceGetUUID(handle)).lower().startswith(uuid.lower()):
            return handle
    raise MeterError(f"no GPU with UUID {uuid} is known to NVML")


def _visible_entries(visible: str) -> list[str]:
    # CUDA stops at the first entry it cannot read ("-1" hides every GPU after it)
    entries = []
    for entry in (e.strip() for e in visible.split(",")):
        if not (entry.isdigit() or entry.upper().startswith(("GPU-", "MIG-"))):
            break
        entries.append(entry)
    return entries


def nvml_handle_for(selector: int | str, *, uuid: Any = None, nvml: Any = None) -> Any:
    """The NVML handle of the GPU torch calls ``selector``; NVML must already be initialised.

    ``uuid`` (what ``torch.cuda.get_device_properties(i).uuid`` reports) is the surest key: torch
    indices follow CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER, NVML indices the PCI bus order.
    Without it, an index is mapped through CUDA_VISIBLE_DEVICES (indices or UUIDs).
    Raises MeterError or the module's NVMLError.
    """
    nvml = _load_nvml(nvml)
    if uuid:
        return _by_uuid(nvml, _full_uuid(uuid))
    index, sel_uuid = parse_gpu_selector(selector)
    if sel_uuid is not None:
        return _by_uuid(nvml, sel_uuid)
    assert index is not None  # parse_gpu_selector gives an index or a UUID
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return nvml.nvmlDeviceGetHandleByIndex(index)
    entries = _visible_entries(visible)
    if index >= len(entries):
        raise MeterError(
            f"CUDA device {index} is not visible: CUDA_VISIBLE_DEVICES={visible!r} "
            f"exposes {len(entries)} GPU(s)"
        )
    entry = entries[index]
    if entry.isdigit():
        return nvml.nvmlDeviceGetHandleByIndex(int(entry))
    return _by_uuid(nvml, entry)


def _torch_uuid(index: int | None) -> str | None:
    """The UUID torch reports, only where torch has already initialised CUDA (never init it here)."""
    torch = sys.modules.get("torch")
    if index is None or torch is None:
        return None
    try:
        if torch.cuda.is_initialized():
            return str(torch.cuda.get_device_properties(index).uuid)
    except Exception:  # noqa: BLE001 -- an old torch without .uuid: fall back to the index
        return None
    return None


class NvmlMeter(CounterMeter):
    """One GPU's total-energy counter, read at window edges (CounterMeter aligns them to ticks).

    The raw counter wraps at 2**64 mJ (``COUNTER_WRAP_J``). ``_read_j`` unwraps it in integer
    millijoules relative to the first reading, because as a float in joules a value near 2**64 mJ
    is only good to 4 J; so ``_wrap_j`` stays None and a real decrease (a driver reload) reaches
    CounterMeter as COUNTER_WENT_BACKWARDS. A wrap inside a window adds COUNTER_WRAPPED.
    """

    method = NVML_COUNTER
    _wrap_j = None  # unwrapped exactly in _read_j; see the class docstring

    def __init__(self, selector: int | str = 0, *, uuid: Any = None, nvml: Any = None, clock=None):
        super().__init__(clock)
        self._selector = selector
        self._index, self._uuid_selector = parse_gpu_selector(selector)
        self._uuid_hint = uuid
        self._nvml_arg = nvml
        self.domain = f"gpu:{self._index if self._index is not None else self._uuid_selector}"
        self._nvml: Any = None
        self._handle: Any = None
        self._initialised = False
        self._error: str | None = None
        self._details: dict[str, Any] = {}
        self._base_mj: int | None = None
        self._last_raw_mj = 0
        self._wraps = 0

    # -- setup ---------------------------------------------------------------------------------
    def _ensure(self) -> bool:
        """Initialise NVML, find the GPU, check the counter; False (with _error) when it cannot."""
        if self._handle is not None or self._error is not None:
            return self._error is None
        try:
            self._nvml = _load_nvml(self._nvml_arg)
        except ImportError as exc:
            self._error = f"pynvml is not installed (pip install nvidia-ml-py): {exc}"
            return False
        nvml = self._nvml
        try:
            nvml.nvmlInit()
            self._initialised = True
            uuid = self._uuid_hint or _torch_uuid(self._index)
            handle = nvml_handle_for(self._selector, uuid=uuid, nvml=nvml)
            self._details = {
                "name": _text(nvml.nvmlDeviceGetName(handle)),
                "uuid": _text(nvml.nvmlDeviceGetUUID(handle)),
                "driver_version": _text(nvml.nvmlSystemGetDriverVersion()),
                "nvml_version": _text(nvml.nvmlSystemGetNVMLVersion()),
                "selected_by": "uuid" if (uuid or self._uuid_selector) else "index",
            }
            try:
                self._details["power_limit_w"] = nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000
            except nvml.NVMLError as exc:
                self._details["power_limit_w"] = None
                self._details["power_limit_reason"] = nvml_error_reason(exc)
            try:
                nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            except nvml.NVMLError as exc:
                name = self._details["name"]
                self._error = (
                    f"{name} has no total-energy counter (needs Volta or later, not vGPU/MIG): "
                    f"nvmlDeviceGetTotalEnergyConsumption: {nvml_error_reason(exc)}"
                )
            else:
                self._handle = handle
        except nvml.NVMLError as exc:
            self._error = nvml_error_reason(exc)
        except MeterError as exc:
            self._error = str(exc)
        if self._error is not None:
            self.close()
        return self._error is None

    def info(self) -> MeterInfo:
        ok = self._ensure()
        reason = "NVML total-energy counter (measured)" if ok else self._error
        return MeterInfo(self.domain, self.method, ok, reason or "", dict(self._details))

    def power_limit_w(self) -> float | None:
        """Read live: a limit changed during a run is one of the validity checks."""
        if not self._ensure() or self._handle is None:
            return None
        try:
            return self._nvml.nvmlDeviceGetEnforcedPowerLimit(self._handle) / 1000
        except self._nvml.NVMLError:
            return None

    def close(self) -> None:
        if self._initialised:
            self._initialised = False
            self._handle = None
            try:
                self._nvml.nvmlShutdown()  # NVML counts nvmlInit calls; one shutdown per init
            except self._nvml.NVMLError:
                pass

    # -- counter -------------------------------------------------------------------------------
    def _read_j(self) -> float:
        if self._handle is None and not self._ensure():
            raise MeterError(f"{self.domain}: {self._error}")
        try:
            raw_mj = int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except self._nvml.NVMLError as exc:
            raise MeterError(f"{self.domain}: reading the energy counter: {nvml_error_reason(exc)}") from None
        if self._base_mj is None:
            self._base_mj = self._last_raw_mj = raw_mj
        # a real wrap goes from near the top to near zero; any other decrease is a reset
        if raw_mj < self._last_raw_mj and self._last_raw_mj - raw_mj > COUNTER_MODULUS_MJ // 2:
            self._wraps += 1
        self._last_raw_mj = raw_mj
        return (raw_mj + self._wraps * COUNTER_MODULUS_MJ - self._base_mj) / 1000

    def _prepare(self) -> None:
        if not self._ensure():
            raise MeterError(f"{self.domain}: {self._error}")

    def _edge_checks(self) -> dict[str, Any]:
        """SM clock, temperature and the other compute processes on this GPU, read at each window
        edge outside the work (docs/measurement.md item 8). A query this GPU or driver does not
        answer is left out; it never fails the window."""
        nvml, handle = self._nvml, self._handle
        if handle is None:
            return {}
        out: dict[str, Any] = {}
        queries = {
            "sm_clock_mhz": ("nvmlDeviceGetClockInfo", "NVML_CLOCK_SM", 1),
            "temperature_c": ("nvmlDeviceGetTemperature", "NVML_TEMPERATURE_GPU", 0),
        }
        for key, (fn, const, default) in queries.items():
            call = getattr(nvml, fn, None)
            if call is None:
                continue
            try:
                out[key] = float(call(handle, getattr(nvml, const, default)))
            except nvml.NVMLError:
                pass
        listing = getattr(nvml, "nvmlDeviceGetComputeRunningProcesses", None)
        if listing is not None:
            try:
                pids = [p.pid for p in listing(handle)]
                out["gpu_pids"] = pids  # all of them: a served point tells its server's apart (measure/served.py)
                out["other_gpu_pids"] = other_gpu_pids(pids)
            except nvml.NVMLError:
                pass
        return out


def other_gpu_pids(pids: list[int], own: tuple[int, ...] | None = None) -> list[int]:
    """The compute processes on a GPU that are not this greenbench run (itself or its parent).

    In a container NVML lists host PIDs, so this process may not recognise itself: when none of
    the PIDs is ours, one of them is taken to be us (we hold a context on the GPU we measure).
    """
    own = own if own is not None else (os.getpid(), os.getppid())
    others = [p for p in pids if p not in own]
    if len(others) == len(pids) and others:
        others = others[1:]
    return others


class GpuList(list):
    """``list_gpus``'s rows; ``reason`` says why the list is empty (None when NVML answered)."""

    reason: str | None = None


def list_gpus(nvml: Any = None) -> GpuList:
    """Every GPU NVML sees: index (NVML order), uuid, name, energy_counter "yes"/"no", reason."""
    rows = GpuList()
    try:
        nvml = _load_nvml(nvml)
    except ImportError as exc:
        rows.reason = f"pynvml is not installed (pip install nvidia-ml-py): {exc}"
        return rows
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        rows.reason = nvml_error_reason(exc)
        return rows
    try:
        for index in range(nvml.nvmlDeviceGetCount()):
            row: dict[str, Any] = {"index": index}
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                row["uuid"] = _text(nvml.nvmlDeviceGetUUID(handle))
                row["name"] = _text(nvml.nvmlDeviceGetName(handle))
                nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
                row.update(energy_counter="yes", reason=None)
            except nvml.NVMLError as exc:
                row.update(energy_counter="no", reason=nvml_error_reason(exc))
            rows.append(row)
        if not rows:
            rows.reason = "NVML found no GPU"
    except nvml.NVMLError as exc:
        rows.reason = nvml_error_reason(exc)
    finally:
        try:
            nvml.nvmlShutdown()
        except nvml.NVMLError:
            pass
    return rows
