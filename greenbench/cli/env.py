"""greenbench env: the devices here and which energy method each will use, and why."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from greenbench.cli.common import out
from greenbench.cli.tables import Col, Section, Wide, print_lines, print_sections

_COLUMNS = ("device", "name", "role", "domain", "method", "available", "why", "not used, and why")


def _devices_table(rows: list[tuple[str, ...]], wide: bool) -> None:
    """One block of "column  value" lines per meter, which reads at any width; --wide: one table
    row per meter, at the table's full width."""
    if wide:
        columns = [Col(c, "text" if c in ("why", "not used, and why") else "name") for c in _COLUMNS]
        print_sections(out, [Section("devices and energy methods", columns, rows)], wide=True)
        return
    out.print("devices and energy methods", style="bold", highlight=False)
    for row in rows:
        g = Table.grid(padding=(0, 2))
        g.add_column(no_wrap=True)
        g.add_column(overflow="fold")
        for col, value in zip(_COLUMNS, row, strict=True):
            if value:
                g.add_row(col, Text(value))
        out.print(g)
        out.print()


def _value(p: dict[str, Any], key: str, fmt: str = "{}") -> str:
    """A provenance value, or why CodeCarbon does not give it."""
    value = p.get(key)
    if value is None:
        return f"unknown: {p.get(f'{key}_reason') or 'not reported'}"
    return fmt.format(value)


def _estimate_provenance(details: dict[str, Any]) -> dict[str, Any]:
    """The meter's provenance, detecting CodeCarbon's hardware (about 1.3 s) if info() had not."""
    from greenbench import meters

    if "cpu_tdp_w" in details:
        return details
    meter = meters.CodeCarbonMeter(details.get("country_iso_code") or "USA",
                                   tracking_mode=details.get("tracking_mode") or "machine")
    try:
        return meter.estimate_provenance()
    finally:
        meter.close()


def _print_estimate(device: str, p: dict[str, Any]) -> None:
    """Which TDP and RAM power CodeCarbon's estimate uses, so that it can be checked."""
    out.print(f"CodeCarbon estimate for {device} (CodeCarbon {_value(p, 'codecarbon_version')}, "
              f"country {_value(p, 'country_iso_code')}, tracking {_value(p, 'tracking_mode')}):",
              style="bold", highlight=False)
    g = Table.grid(padding=(0, 2), pad_edge=True)  # the left pad indents it under the heading
    g.add_column(no_wrap=True)
    g.add_column(overflow="fold")
    g.add_row("CPU model", _value(p, "cpu_model"))
    g.add_row("CPU power", _value(p, "cpu_power_source"))
    tdp = _value(p, "cpu_tdp_w", "{:g} W")
    if p.get("cpu_tdp_w") is not None:
        tdp += f", from {_value(p, 'cpu_tdp_source')}"
    g.add_row("CPU TDP", tdp)
    ram = _value(p, "ram_power_w", "{:g} W, constant")
    if p.get("ram_power_w") is not None:
        ram += f", from {_value(p, 'ram_power_source')}"
    g.add_row("RAM power", ram)
    g.add_row("RAM size", _value(p, "ram_total_gb", "{:.1f} GB (2^30 bytes)"))
    out.print(g, highlight=False)
    out.print()


def env_command(
    zones: bool = typer.Option(False, "--zones", help="Also list the bundled grid zones and their 2023 mean intensity."),
    wide: Wide = False,
) -> None:
    """Show devices, the energy meter each would use (and why the others cannot), and versions."""
    from greenbench import meters
    from greenbench.carbon import intensity as carbon
    from greenbench.measure import devices as devices

    specs = ["cpu"] + [f"cuda:{i}" for i in range(devices.cuda_count())]
    resolved = [devices.resolve(spec) for spec in specs]
    rows: list[tuple[str, ...]] = []
    estimates: list[tuple[str, dict[str, Any]]] = []
    for dev in resolved:
        for info in meters.describe_energy([dev.uuid or dev.spec]):
            not_used = "; ".join(f"{k}: {v}" for k, v in info.details.get("not_used", {}).items())
            rows.append((dev.spec, dev.name, info.details.get("role", ""), info.domain, info.method,
                         "yes" if info.available else "no", info.reason, not_used))
            if info.method == meters.ESTIMATE and "codecarbon_version" in info.details:
                estimates.append((dev.spec, info.details))
    _devices_table(rows, wide)
    for device, details in estimates:
        _print_estimate(device, _estimate_provenance(details))
    gpus = meters.list_gpus()
    lines = [f"NVML: no GPU listed ({getattr(gpus, 'reason', None) or 'none found'})"] if not gpus else []
    lines += [f"NVML GPU {g}" for g in gpus]
    p = devices.provenance()
    lines.append("versions: " + ", ".join(f"{k} {p[k]}" for k in
                 ("python", "torch", "torch_cuda", "transformers", "codecarbon", "nvidia_ml_py", "greenbench")))
    print_lines(out, lines)
    if zones:
        means = carbon.annual_means()
        rows_z = [[name + (" (default)" if name == carbon.DEFAULT_ZONE else ""), f"{means[(name, 'lca')]:.0f}",
                   f"{means[(name, 'direct')]:.0f}"] for name in carbon.zones()]
        print_sections(out, [Section("grid zones (Electricity Maps 2023 annual mean, ODbL)",
                                     [Col("zone", "name"), Col("lca"), Col("direct")], rows_z,
                                     ["gCO2e/kWh, lca: life-cycle, direct: operational emissions only"])], wide=wide)
