"""greenbench fit: the carbon-QoE tradeoff of a profile (frontier and validated curves)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import JustifyMethod
from rich.table import Table

from greenbench.cli.common import EXIT_CODES_HELP, err, fail, out, user_errors
from greenbench.meters.base import is_measurement

if TYPE_CHECKING:
    from greenbench.tradeoff.curves import Curve, Tradeoff

HELP = f"""Turn a profile into the carbon-QoE tradeoff: every operating point with its Pareto flag
(maximise accuracy, minimise latency and energy per item), and fitted curves: accuracy against
energy per item across models, batch latency and energy per item against batch size per model.

A fit is kept only if its largest relative residual and its leave-one-out prediction error are
within --max-residual; otherwise the measured points are interpolated (piecewise-linear in log
space) and the output says why. Writes tradeoff.json, tradeoff.csv, curves.csv and PNG/SVG plots
to --out (default: next to the profile, <profile stem>-fit/). See docs/fit.md.

{EXIT_CODES_HELP}"""


def fit_command(
    profile: Path = typer.Argument(..., help="Profile JSON written by `greenbench profile`."),
    out_dir: Path | None = typer.Option(None, "--out", help="Output folder. Default: next to the profile, <stem>-fit/."),
    latency: str = typer.Option("p95", "--latency", help="Batch-latency statistic per request: p95, p50, p90, p99 or mean."),
    energy: str = typer.Option("gross", "--energy", help="Energy per item: gross (what the meter saw) or net (minus idle power x time)."),
    max_residual: float = typer.Option(0.15, "--max-residual", help="Reject a fit whose max relative residual or leave-one-out error exceeds this fraction."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Draw the PNG and SVG plots."),
    as_json: bool = typer.Option(False, "--json", help="Print the tradeoff document (JSON) instead of the tables."),
) -> None:
    from greenbench import profile as prof
    from greenbench.methods import METHOD_NOTES
    from greenbench.tradeoff.curves import fit
    from greenbench.tradeoff.outputs import default_out_dir, to_doc, write_outputs
    from greenbench.tradeoff.points import ENERGY_BASES, LATENCY_STATS

    # Checked here too so that the message names the option that fixes it.
    if latency not in LATENCY_STATS:
        raise fail(f"--latency {latency!r}: choose one of {', '.join(LATENCY_STATS)}")
    if energy not in ENERGY_BASES:
        raise fail(f"--energy {energy!r}: choose one of {', '.join(ENERGY_BASES)}")
    if not 0 < max_residual < 10:  # also false for NaN
        raise fail(f"--max-residual {max_residual}: give a fraction such as 0.15 (15%)")
    with user_errors():
        p = prof.load(profile)
        result = fit(p, latency=latency, energy=energy, max_residual=max_residual)
        target = out_dir if out_dir is not None else default_out_dir(profile)
        written = write_outputs(result, target, profile=p, profile_path=str(profile), plots=plots)

    if as_json:
        print(json.dumps(to_doc(result, p, str(profile)), indent=1, allow_nan=False))
    else:
        out.print(frontier_table(result))
        out.print(curves_table(result))
    for line in result.excluded:
        err.print(f"[yellow]note:[/] {line}", highlight=False)
    for method in result.energy_methods:
        if not is_measurement(method):
            err.print(f"[yellow]warning:[/] energy method {method}: {METHOD_NOTES.get(method, method)}; "
                      "profile on a host with RAPL or NVML for measured energy", highlight=False)
    for path in written:
        err.print(f"wrote {path}", highlight=False)


def frontier_table(t: Tradeoff) -> Table:
    n = len(t.points)
    table = Table(title=f"Pareto frontier: {len(t.frontier)} of {n} operating points "
                        "(max accuracy, min latency, min energy)")
    columns: list[tuple[str, JustifyMethod]] = [
        ("point", "left"), ("params", "right"), ("accuracy", "right"),
        (f"latency {t.latency} ms", "right"), (f"J/item ({t.energy})", "right"), ("energy method", "left")]
    for col, just in columns:
        table.add_column(col, justify=just)
    for p in sorted(t.frontier, key=lambda p: (-p.accuracy, p.energy_j_per_item, p.latency_ms)):
        table.add_row(p.label, "—" if p.params is None else f"{p.params:,}", f"{p.accuracy:.4f}",
                      f"{p.latency_ms:.4g}", f"{p.energy_j_per_item:.4g}", p.energy_method)
    return table


def _params(c: Curve) -> str:
    if not c.params:
        return "—"
    return ", ".join(f"{k}={v:.4g}" for k, v in c.params.items())


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


def curves_table(t: Tradeoff) -> Table:
    table = Table(title=f"Curves (a fit is kept if max residual and leave-one-out error <= {t.max_residual:.0%})")
    for col in ("curve", "model", "status", "form", "parameters", "max resid.", "LOO err.", "why"):
        table.add_column(col, justify="right" if col in ("max resid.", "LOO err.") else "left")
    for c in t.curves:
        status = {"fitted": "[green]fitted[/]", "interpolated": "[yellow]interpolated[/]"}.get(
            c.status, f"[red]{c.status}[/]")
        table.add_row(c.name, c.group or "all (lowest-energy point each)", status,
                      c.expression if c.status == "fitted" else (c.form or "—"), _params(c),
                      _pct(c.max_residual), _pct(c.loo_max_error), c.reason)
    return table
