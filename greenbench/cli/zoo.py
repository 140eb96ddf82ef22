"""greenbench zoo: the ladders in model_zoo.yaml and the built-in ones."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.text import Text

from greenbench.cli.common import note, out, user_errors
from greenbench.cli.tables import Col, Section, Wide, print_sections

if TYPE_CHECKING:
    from greenbench.measure.zoo import Ladder


def zoo_command(
    ladder: str | None = typer.Argument(None, help="Show one ladder's models in detail."),
    zoo: Path | None = typer.Option(None, "--zoo", help="Model zoo YAML (default: $GREENBENCH_ZOO or ./model_zoo.yaml)."),
    wide: Wide = False,
) -> None:
    """List the ladders (validated): workload, models, batch sizes, precisions, devices."""
    from greenbench.measure import zoo as zoomod

    with user_errors():
        ladders = zoomod.load_zoo(zoo, on_note=note)
        if ladder is not None:
            if ladder not in ladders:
                raise zoomod.unknown_ladder(ladder, ladders)
            ladders = {ladder: ladders[ladder]}
    if ladder is None:
        columns = [Col("ladder", "name"), Col("workload", "name"), Col("models"), Col("model names", "text", wide=True),
                   Col("batch sizes / loads", "text"), Col("precisions", "text"), Col("devices", "text", wide=True),
                   Col("points"), Col("source", "text", wide=True)]
        rows = [[name + (" (default)" if name == zoomod.DEFAULT_LADDER else ""), lad.workload, str(len(lad.models)),
                 lad.model_names(), _axis(lad), ", ".join(lad.precisions),
                 ", ".join(lad.devices), str(_points(lad)), lad.source] for name, lad in ladders.items()]
        own = [f"{name} from {lad.source}" for name, lad in ladders.items() if lad.source != zoomod.BUILTIN_SOURCE]
        legend = ["models: how many (`greenbench zoo LADDER` lists them)",
                  "points: models x batch sizes (or loads: c concurrency, r requests/s) x precisions x devices",
                  "built in unless said: " + "; ".join(own) if own else "all built in"]
        print_sections(out, [Section("ladders", columns, rows, legend)], wide=wide)
        return
    lad = ladders[ladder]
    out.print(Text(f"{lad.name}: {lad.description or lad.workload} ({lad.source})"), soft_wrap=False)
    if lad.dataset is not None:
        dataset = ", ".join(f"{k}={v}" for k, v in lad.dataset.model_dump().items() if v is not None)
        out.print(Text(f"dataset: {dataset}"), soft_wrap=False)
    if lad.workload == "served-lm":
        server = lad.server.url or f"launched: {lad.server.launch}"
        out.print(Text(f"server: {server}"), soft_wrap=False)
    rows = [[m.name, ", ".join(f"{k}={v}" for k, v in zoomod.model_dict(m).items() if k != "name")]
            for m in lad.models]
    print_sections(out, [Section("models, small to large", [Col("model", "name"), Col("spec", "text")], rows)],
                   wide=wide)
    axis = "loads" if lad.workload == "served-lm" else "batch sizes"
    out.print(Text(f"{_points(lad)} operating points: {axis} {_axis(lad)}, precisions "
                   f"{list(lad.precisions)}, devices {list(lad.devices)}"), soft_wrap=False)


def _axis(lad: Ladder) -> str:
    """The ladder's resource axis: "1, 32, 256" (batch sizes) or "c1, c4, c16" (loads)."""
    settings = lad.settings()
    if all(s.batch_size is not None for s in settings):
        return ", ".join(str(s.batch_size) for s in settings)
    return ", ".join(s.label for s in settings)


def _points(lad: Ladder) -> int:
    return len(lad.models) * len(lad.settings()) * len(lad.precisions) * len(lad.devices)
