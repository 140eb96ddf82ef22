"""Which meters measure a device: NVML for a GPU, RAPL or CodeCarbon's estimate for the CPU.

Never a silent fallback: a meter that cannot measure becomes a NullMeter whose reason says why,
and ``describe_energy`` (for ``greenbench env``) says why each other method was not used.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from greenbench.errors import OptionError
from greenbench.meters.base import Meter, MeterError, MeterInfo, NullMeter
from greenbench.meters.codecarbon import CodeCarbonMeter
from greenbench.meters.fake import FakeMeter
from greenbench.meters.group import GroupMeter
from greenbench.meters.nvml import NvmlMeter, parse_gpu_selector
from greenbench.meters.rapl import RaplMeter

PREFER_CHOICES = ("auto", "nvml", "rapl", "codecarbon", "fake", "none")
OFF_REASON = "energy metering turned off (--meter none)"
FAKE_GPU_POWER_W, FAKE_HOST_POWER_W, FAKE_TICK_S = 50.0, 20.0, 0.01


@dataclass
class Plan:
    headline: Meter
    components: list[Meter] = field(default_factory=list)
    not_used: dict[str, str] = field(default_factory=dict)  # method -> why it was not used


def gpu_selector(device: str) -> int | str | None:
    """The GPU selector in a device string, None for "cpu"; MeterError for anything else."""
    text = device.strip()
    if text.lower() == "cpu":
        return None
    try:
        index, uuid = parse_gpu_selector(text)
    except MeterError:
        raise MeterError(f"no energy meter for device {device!r}: use cpu, cuda:N or a GPU UUID") from None
    return index if uuid is None else uuid


def host_plan(prefer: str, country_iso_code: str) -> Plan:
    """The host CPU meter: RAPL if readable, else CodeCarbon's estimate, else a NullMeter."""
    not_used: dict[str, str] = {}
    if prefer in ("auto", "rapl"):
        rapl = RaplMeter()
        info = rapl.info()
        if info.available:
            not_used["codecarbon"] = "RAPL is readable: a measurement beats an estimate"
            return Plan(rapl, not_used=not_used)
        not_used["rapl"] = info.reason
        if prefer == "rapl":
            return Plan(NullMeter("cpu_package", f"--meter rapl: {info.reason}"), not_used=not_used)
    else:
        not_used["rapl"] = f"not tried (--meter {prefer})"
    if prefer in ("auto", "codecarbon"):
        estimate = CodeCarbonMeter(country_iso_code)
        info = estimate.info()
        if info.available:
            return Plan(estimate, not_used=not_used)
        not_used["codecarbon"] = info.reason
    else:
        not_used["codecarbon"] = f"not tried (--meter {prefer})"
    reason = "no CPU energy meter: " + "; ".join(f"{k}: {v}" for k, v in not_used.items())
    return Plan(NullMeter("cpu", reason), not_used=not_used)


def check_prefer(prefer: str) -> str:
    """``prefer`` if it is one of PREFER_CHOICES; OptionError (``--meter``) otherwise."""
    if prefer not in PREFER_CHOICES:
        raise OptionError(f"--meter {prefer!r}: unknown meter; choose one of {', '.join(PREFER_CHOICES)}",
                          option="--meter")
    return prefer


def plan_for(device: str, prefer: str, country_iso_code: str) -> Plan:
    check_prefer(prefer)
    if "+" in device:
        return _group_plan(device, prefer, country_iso_code)
    try:
        selector = gpu_selector(device)
    except MeterError as exc:
        return Plan(NullMeter(device, str(exc)))
    domain = "cpu" if selector is None else f"gpu:{selector}"
    if prefer == "none":
        return Plan(NullMeter(domain, OFF_REASON))
    if prefer == "fake":
        if selector is None:
            return Plan(FakeMeter(FAKE_HOST_POWER_W, FAKE_TICK_S, domain="cpu_package"))
        host_meter = FakeMeter(FAKE_HOST_POWER_W, FAKE_TICK_S, domain="cpu_package")
        return Plan(FakeMeter(FAKE_GPU_POWER_W, FAKE_TICK_S, domain=domain), [host_meter])
    if selector is None:
        if prefer == "nvml":
            return Plan(NullMeter("cpu", "--meter nvml meters GPUs, and the device is cpu"))
        return host_plan(prefer, country_iso_code)
    gpu = NvmlMeter(selector)
    info = gpu.info()
    if info.available:
        headline: Meter = gpu
    else:  # no silent fallback: the GPU figure is unavailable, with the reason
        gpu.close()
        headline = NullMeter(gpu.domain, f"no GPU energy meter: {info.reason}")
    host = host_plan("auto" if prefer == "nvml" else prefer, country_iso_code)
    not_used = {} if info.available else {"nvml": info.reason}
    return Plan(headline, [host.headline], {**not_used, **host.not_used})


def _group_plan(device: str, prefer: str, country_iso_code: str) -> Plan:
    """The GPUs of a tensor-parallel server (``cuda:0+cuda:1`` or UUIDs joined by "+"): one meter
    that sums their counters (``GroupMeter``, each GPU kept), and the host meter once beside it.
    No partial sum: a GPU that cannot be metered makes the group's figure unavailable, said why."""
    parts = [p.strip() for p in device.split("+")]
    try:
        selectors = [gpu_selector(p) for p in parts]
    except MeterError as exc:
        return Plan(NullMeter(device, str(exc)))
    if any(s is None for s in selectors):
        return Plan(NullMeter(device, f"no energy meter for device {device!r}: a group is of GPUs, not the cpu"))
    if prefer == "none":
        return Plan(NullMeter("+".join(f"gpu:{s}" for s in selectors), OFF_REASON))
    plans = [plan_for(p, prefer, country_iso_code) for p in parts]
    for extra in plans[1:]:  # the host is metered once, beside the first GPU
        for m in extra.components:
            m.close()
    heads = [pl.headline for pl in plans]
    not_used = {k: v for pl in plans for k, v in pl.not_used.items()}
    unavailable = [h for h in heads if not h.info().available]
    if unavailable:
        reason = "; ".join(f"{h.domain}: {h.info().reason}" for h in unavailable)
        for h in heads:
            h.close()
        domain = "+".join(h.domain for h in heads)
        return Plan(NullMeter(domain, f"a GPU of the group cannot be metered, so the group is not: {reason}"),
                    plans[0].components, not_used)
    return Plan(GroupMeter(heads), plans[0].components, not_used)


def select_meters(
    device: str, *, prefer: str = "auto", country_iso_code: str = "USA"
) -> tuple[Meter, list[Meter]]:
    """The headline meter for ``device`` ("cpu", "cuda", "cuda:N" or a GPU UUID) and its
    component meters (for a GPU: the host CPU meter).

    ``prefer``: "auto" (NVML for GPUs; RAPL, else CodeCarbon's estimate, for the CPU), "nvml",
    "rapl", "codecarbon" (the method for the meter it applies to, with no fallback), "fake"
    (synthetic counters for pipeline tests) or "none" (metering off).
    """
    plan = plan_for(device, prefer, country_iso_code)
    return plan.headline, plan.components


def describe_energy(
    devices: Iterable[str], *, prefer: str = "auto", country_iso_code: str = "USA"
) -> list[MeterInfo]:
    """For ``greenbench env``: one row per meter that each device would use.

    Each row's details add ``device``, ``role`` ("headline" or "component") and ``not_used``
    (each other method and why it was not used).
    """
    rows: list[MeterInfo] = []
    for device in devices:
        plan = plan_for(device, prefer, country_iso_code)
        for role, meter in [("headline", plan.headline)] + [("component", m) for m in plan.components]:
            info = meter.info()
            details = {**info.details, "device": device, "role": role, "not_used": dict(plan.not_used)}
            rows.append(replace(info, details=details))
            meter.close()
    return rows
