"""Energy methods: the one rule for "is this energy a measurement?" and the words every output uses.

Every energy value carries one of ``METHODS``. Only a meter's reading (an NVML counter or power
samples, a RAPL counter) is a measurement; CodeCarbon's ``estimate``, the ``fake`` test meter and
anything else are not, and every output (profile summary, report, compare, fit, price, carbon)
says so with ``method_label`` or ``method_note``. Shared by the measuring stages (meters, which
re-export the names) and the analysis stages, which import them from here, never from meters.
"""

from __future__ import annotations

NVML_COUNTER = "nvml_counter"
NVML_POWER = "nvml_power"
RAPL = "rapl"
ESTIMATE = "estimate"
UNAVAILABLE = "unavailable"
FAKE = "fake"  # only from the test meters; never produced on real hardware
METHODS = (NVML_COUNTER, NVML_POWER, RAPL, ESTIMATE, UNAVAILABLE, FAKE)
MEASURED_METHODS = (NVML_COUNTER, NVML_POWER, RAPL)  # energy a meter read; anything else is not

# What each method's energy rests on (tradeoff.json's "energy_methods" and fit's warnings).
METHOD_NOTES = {
    NVML_COUNTER: "measured: NVIDIA GPU energy counter (NVML)",
    NVML_POWER: "measured: NVIDIA GPU power samples (NVML) integrated over the window",
    RAPL: "measured: CPU package energy counter (RAPL)",
    ESTIMATE: "estimated, not metered: CodeCarbon's power model (TDP share x utilisation)",
    FAKE: "a constant-power test meter: not a measurement",
    UNAVAILABLE: "no energy meter: energy is null",
}

# How a sentence names energy that is not a measurement: "energy is <source>".
_SOURCES = {ESTIMATE: "an estimate", FAKE: "from the fake test meter"}


def is_measurement(energy_method: str | None) -> bool:
    """Whether energy with this method was read from a meter (NVML, RAPL). An ``estimate``
    (CodeCarbon's power model), the ``fake`` test meter, or anything else, is not a measurement."""
    return energy_method in MEASURED_METHODS


def method_label(energy_method: str | None) -> str:
    """The words for energy of this method: 'measured (nvml_counter)', 'estimate, not a
    measurement', 'fake test meter, not a measurement', 'unavailable'."""
    if is_measurement(energy_method):
        return f"measured ({energy_method})"
    if energy_method == ESTIMATE:
        return "estimate, not a measurement"
    if energy_method == FAKE:
        return "fake test meter, not a measurement"
    if energy_method in (UNAVAILABLE, None):
        return "unavailable"
    return f"{energy_method}, not a measurement"


def method_source(energy_method: str | None) -> str:
    """How a sentence says where non-measured energy comes from: 'an estimate', 'from the fake
    test meter', 'not metered'."""
    return _SOURCES.get(energy_method or "", "not metered")


def method_note(energy_method: str | None) -> str:
    """A non-measured energy in a sentence: "an estimate (energy_method 'estimate'), not a
    measurement" and so on."""
    return f"{method_source(energy_method)} (energy_method {energy_method!r}), not a measurement"
