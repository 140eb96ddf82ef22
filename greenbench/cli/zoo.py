"""greenbench zoo: the ladders in model_zoo.yaml and the built-in ones."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from greenbench.cli.common import out, user_errors


def zoo_command(
    ladder: str | None = typer.Argument(None, help="Show one ladder's models in detail."),
    zoo: Path | None = typer.Option(None, "--zoo", help="Model zoo YAML (default: $GREENBENCH_ZOO or ./model_zoo.yaml)."),
) -> None:
    """List the ladders (validated): workload, models, batch sizes, precisions, devices."""
    from greenbench.measure import zoo as zoomod

    with user_errors():
        ladders = zoomod.load_zoo(zoo)
        if ladder is not None:
            ladders = {ladder: zoomod.get_ladder(ladder, zoo)}
    if ladder is None:
        t = Table(title="ladders")
        for col in ("ladder", "workload", "models (small to large)", "batch sizes", "precisions", "devices", "source"):
            t.add_column(col)
        for name, lad in ladders.items():
            t.add_row(name + (" (default)" if name == zoomod.DEFAULT_LADDER else ""), lad.workload,
                      lad.model_names(), ", ".join(map(str, lad.batch_sizes)),
                      ", ".join(lad.precisions), ", ".join(lad.devices), lad.source)
        out.print(t)
        return
    lad = ladders[ladder]
    out.print(f"[bold]{lad.name}[/]: {lad.description or lad.workload} ({lad.source})")
    out.print(f"dataset: {lad.dataset.model_dump()}", highlight=False)
    t = Table()
    for col in ("model", "spec"):
        t.add_column(col)
    for m in lad.models:
        t.add_row(m.name, ", ".join(f"{k}={v}" for k, v in zoomod.model_dict(m).items() if k != "name"))
    out.print(t)
    points = len(lad.models) * len(lad.batch_sizes) * len(lad.precisions) * len(lad.devices)
    out.print(f"{points} operating points: batch sizes {list(lad.batch_sizes)}, precisions "
              f"{list(lad.precisions)}, devices {list(lad.devices)}", highlight=False)
