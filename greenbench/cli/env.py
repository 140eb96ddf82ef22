"""greenbench env: the devices here and which energy method each will use, and why."""

from __future__ import annotations

import typer
from rich.table import Table

from .common import out


def env_command(
    zones: bool = typer.Option(False, "--zones", help="Also list the bundled grid zones and their 2023 mean intensity."),
) -> None:
    """Show devices, the energy meter each would use (and why the others cannot), and versions."""
    from .. import carbon, devices, meters

    t = Table(title="devices and energy methods")
    for col in ("device", "name", "role", "domain", "method", "available", "why", "not used, and why"):
        t.add_column(col)
    specs = ["cpu"] + [f"cuda:{i}" for i in range(devices._cuda_count())]
    resolved = [devices.resolve(spec) for spec in specs]
    for dev in resolved:
        for info in meters.describe_energy([dev.uuid or dev.spec]):
            not_used = "; ".join(f"{k}: {v}" for k, v in info.details.get("not_used", {}).items())
            t.add_row(dev.spec, dev.name, info.details.get("role", ""), info.domain, info.method,
                      "yes" if info.available else "no", info.reason, not_used)
    out.print(t)
    gpus = meters.list_gpus()
    if not gpus:
        out.print(f"NVML: no GPU listed ({getattr(gpus, 'reason', None) or 'none found'})", highlight=False)
    for g in gpus:
        out.print(f"NVML GPU {g}", highlight=False)
    p = devices.provenance()
    out.print("versions: " + ", ".join(f"{k} {p[k]}" for k in
              ("python", "torch", "torch_cuda", "transformers", "codecarbon", "nvidia_ml_py", "greenbench")),
              highlight=False)
    if zones:
        z = Table(title="grid zones (Electricity Maps 2023 annual mean, ODbL)")
        for col in ("zone", "lca gCO2e/kWh", "direct gCO2e/kWh"):
            z.add_column(col)
        means = carbon.annual_means()
        for name in carbon.zones():
            z.add_row(name + (" (default)" if name == carbon.DEFAULT_ZONE else ""),
                      f"{means[(name, 'lca')]:.0f}", f"{means[(name, 'direct')]:.0f}")
        out.print(z)
