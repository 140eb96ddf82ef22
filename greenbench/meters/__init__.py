"""Energy meters: NVML counters for GPUs, RAPL or a CodeCarbon estimate for the host CPU.

Importing this package touches no hardware and imports neither pynvml nor codecarbon; meters
initialise lazily. ``select_meters`` (in ``select``) picks the meters for a device and never falls
back silently: a meter that cannot measure becomes a NullMeter whose reason says why. The test
doubles of the vendor libraries (a fake pynvml, a counter-log replay) live in tests/fakes.py;
``FakeMeter`` stays here because ``--meter fake`` runs the whole pipeline without hardware.
"""

from __future__ import annotations

from greenbench.meters.base import (
    COUNTER_DID_NOT_MOVE,
    COUNTER_STALLED,
    COUNTER_WENT_BACKWARDS,
    COUNTER_WRAPPED,
    ESTIMATE,
    FAKE,
    METHODS,
    NVML_COUNTER,
    NVML_POWER,
    RAPL,
    UNAVAILABLE,
    CounterMeter,
    EnergyReading,
    Meter,
    MeterError,
    MeterInfo,
    NullMeter,
)
from greenbench.meters.codecarbon import CodeCarbonMeter
from greenbench.meters.fake import FakeMeter
from greenbench.meters.nvml import (
    NvmlMeter,
    list_gpus,
    nvml_handle_for,
    parse_gpu_selector,
)
from greenbench.meters.rapl import RaplMeter
from greenbench.meters.select import PREFER_CHOICES, describe_energy, select_meters

__all__ = [
    "COUNTER_DID_NOT_MOVE",
    "COUNTER_STALLED",
    "COUNTER_WENT_BACKWARDS",
    "COUNTER_WRAPPED",
    "ESTIMATE",
    "FAKE",
    "METHODS",
    "NVML_COUNTER",
    "NVML_POWER",
    "PREFER_CHOICES",
    "RAPL",
    "UNAVAILABLE",
    "CodeCarbonMeter",
    "CounterMeter",
    "EnergyReading",
    "FakeMeter",
    "Meter",
    "MeterError",
    "MeterInfo",
    "NullMeter",
    "NvmlMeter",
    "RaplMeter",
    "describe_energy",
    "list_gpus",
    "nvml_handle_for",
    "parse_gpu_selector",
    "select_meters",
]
