"""greenbench fit: the carbon-QoE tradeoff of a profile (frontier and validated curves)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from greenbench.cli.common import EXIT_CODES_HELP, err, fail, note, out, stdout_format, user_errors
from greenbench.cli.tables import Col, Section, Wide, constant, print_lines, print_sections, sig, to_markdown
from greenbench.methods import is_measurement, method_label

if TYPE_CHECKING:
    from greenbench.tradeoff.curves import Curve, Tradeoff

HELP = f"""Turn a profile into the carbon-QoE tradeoff: every operating point with its Pareto flag
(best quality, minimise latency and energy per item), and fitted curves: quality against energy
per item across models, latency and energy per item against batch size (or, for a served model,
concurrency) per model. Quality is the profile's own metric with its direction (accuracy higher,
perplexity lower is better; --quality picks another).

A fit is kept only if its largest relative residual and its leave-one-out prediction error are
within --max-residual; otherwise the measured points are interpolated (piecewise-linear in log
space) and the output says why. Writes tradeoff.json, tradeoff.csv, curves.csv and PNG/SVG plots
to --out (default: next to the profile, <profile stem>-fit/). See docs/fit.md.

{EXIT_CODES_HELP}"""


def fit_command(
    profile: Path = typer.Argument(..., help="Profile JSON written by `greenbench profile`."),
    out_dir: Path | None = typer.Option(None, "--out", help="Output folder. Default: next to the profile, <stem>-fit/."),
    latency: str = typer.Option("p95", "--latency", help="Latency statistic per request: p95, p50, p90, p99 or mean."),
    latency_kind: str = typer.Option("e2e", "--latency-kind", help="What latency is: e2e (the batch's latency for batched inference, a served request's end to end), ttft (time to first token) or tpot (time per output token)."),
    quality: str = typer.Option("auto", "--quality", help="Quality metric: auto (the profile's own), accuracy, exact_match or perplexity."),
    energy: str = typer.Option("gross", "--energy", help="Energy per item: gross (what the meter saw) or net (minus idle power x time)."),
    max_residual: float = typer.Option(0.15, "--max-residual", help="Reject a fit whose max relative residual or leave-one-out error exceeds this fraction."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Draw the PNG and SVG plots."),
    as_json: bool = typer.Option(False, "--json", help="Print the tradeoff document (JSON) on stdout instead of the tables."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the tables as Markdown on stdout instead."),
    as_csv: bool = typer.Option(False, "--csv", help="Print the operating points (tradeoff.csv) on stdout instead."),
    wide: Wide = False,
) -> None:
    from greenbench import profile as prof
    from greenbench.methods import METHOD_NOTES
    from greenbench.tradeoff.curves import fit
    from greenbench.tradeoff.outputs import default_out_dir, render_outputs, to_doc, write_outputs
    from greenbench.tradeoff.points import ENERGY_BASES, LATENCY_KINDS, LATENCY_STATS, QUALITY_METRICS

    fmt = stdout_format(json=as_json, markdown=markdown, csv=as_csv)
    # Checked here too so that the message names the option that fixes it.
    if latency not in LATENCY_STATS:
        raise fail(f"--latency {latency!r}: choose one of {', '.join(LATENCY_STATS)}")
    if latency_kind not in LATENCY_KINDS:
        raise fail(f"--latency-kind {latency_kind!r}: choose one of {', '.join(LATENCY_KINDS)}")
    if quality != "auto" and quality not in QUALITY_METRICS:
        raise fail(f"--quality {quality!r}: choose auto or one of {', '.join(QUALITY_METRICS)}")
    if energy not in ENERGY_BASES:
        raise fail(f"--energy {energy!r}: choose one of {', '.join(ENERGY_BASES)}")
    if not 0 < max_residual < 10:  # also false for NaN
        raise fail(f"--max-residual {max_residual}: give a fraction such as 0.15 (15%)")
    with user_errors():
        p = prof.load(profile)
        result = fit(p, latency=latency, energy=energy, max_residual=max_residual, quality=quality,
                     latency_kind=latency_kind)
        target = out_dir if out_dir is not None else default_out_dir(profile)
        written = write_outputs(result, target, profile=p, profile_path=str(profile), plots=plots)

    if fmt == "json":
        print(json.dumps(to_doc(result, p, str(profile)), indent=1, allow_nan=False))
    elif fmt == "csv":
        with user_errors():
            print(render_outputs(result, profile=p, profile_path=str(profile), plots=False)["tradeoff.csv"]
                  .decode("utf-8"), end="")
    elif fmt == "markdown":
        print(to_markdown(fit_sections(result), hardware_lines(result)), end="")
    else:
        frontier, *others = fit_sections(result)
        print_sections(out, [frontier], wide=wide)
        print_lines(out, hardware_lines(result))  # under the frontier it speaks of
        print_sections(out, others, wide=wide)
    for line in result.excluded:
        err.print(f"[yellow]note:[/] {line}", highlight=False)
    for method in result.energy_methods:
        if not is_measurement(method):
            err.print(f"[yellow]warning:[/] energy method {method}: {METHOD_NOTES.get(method, method)}; "
                      "profile on a host with RAPL or NVML for measured energy", highlight=False)
    for path in written:
        note(f"wrote {path}")


def fit_sections(t: Tradeoff) -> list[Section]:
    return [frontier_section(t), curves_section(t)]


def frontier_section(t: Tradeoff) -> Section:
    from greenbench.tradeoff.points import LATENCY_KIND_WORDS, format_quality, latency_header

    n = len(t.points)
    metric = t.quality_metric
    same_method = constant(p.energy_method for p in t.points)
    lat = latency_header(t.latency, t.latency_kind)
    served = all(p.batch_size is None for p in t.points)
    columns = [Col("point", "name"), Col("params", wide=True), Col(_short(metric)), Col(lat),
               Col("J/request" if served else "J/item"), Col("method", "name", wide=same_method is not None)]
    points = sorted(t.frontier, key=lambda p: (-p.goodness, p.energy_j_per_item, p.latency_ms))
    rows = [[p.label, "—" if p.params is None else f"{p.params:,}", format_quality(p.quality, metric),
             sig(p.latency_ms), sig(p.energy_j_per_item), p.energy_method] for p in points]
    every = len(t.frontier) == n and n > 1
    best = "min" if t.direction == "lower" else "max"
    kind = LATENCY_KIND_WORDS[t.latency_kind].split(" (")[0]
    legend = [("every point is on it: none is beaten at once" if every else "the points no other beats")
              + f" on {metric.replace('_', ' ')} ({best}), latency and energy (min)",
              f"{_short(metric)}: {metric.replace('_', ' ')}" if _short(metric) != metric else None,
              f"{lat}: " + ("latency per batch" if t.latency_kind == "e2e" and not served else kind),
              f"J/{'request' if served else 'item'}: {t.energy} energy per {'request' if served else 'item'}",
              f"energy {method_label(same_method)}" if same_method else None]
    return Section(f"Pareto frontier: {len(t.frontier)} of {n} operating points", columns, rows, legend)


def hardware_lines(t: Tradeoff) -> list[str]:
    """One line when the points ran on more than one hardware type (a fleet profile): which types
    the frontier spans and how many of each type's points are on it; none on one hardware."""
    from greenbench.tradeoff.points import hardware_shares

    shares = hardware_shares(t.points, t.frontier)
    if not shares:
        return []
    on = [s for s in shares if s.frontier]
    off = [s for s in shares if not s.frontier]
    none = _and([f"{s.name}'s {s.points}" for s in off]) if off else ""
    if len(on) == 1:
        return [f"hardware: the frontier is all on {on[0].name} ({on[0].frontier} of its {on[0].points} points); "
                f"none of {none} point{'s' if off[-1].points != 1 or len(off) > 1 else ''} is on it"]
    spans = f"{len(on)}" if not off else f"{len(on)} of the {len(shares)}"
    parts = [("all " if s.frontier == s.points > 1 else "") + f"{s.frontier} of {s.name}'s {s.points}"
             + (" points" if i == 0 else "") for i, s in enumerate(on)]
    return [f"hardware: the frontier spans {spans} hardware types, with {_and(parts)}"
            + (f"; none of {none}" if off else "")]


def _and(items: list[str]) -> str:
    """a, b and c."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _short(metric: str) -> str:
    """The frontier table's header for a quality metric."""
    return {"perplexity": "PPL", "exact_match": "EM"}.get(metric, metric)


def _params(c: Curve) -> str:
    if not c.params:
        return "—"
    return ", ".join(f"{k}={sig(v)}" for k, v in c.params.items())


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


def curves_section(t: Tradeoff) -> Section:
    columns = [Col("curve", "name"), Col("model", "name"), Col("fit", "name"),
               Col("expression", "text", wide=True), Col("parameters", "text", wide=True), Col("resid."),
               Col("LOO"), Col("why", "text", wide=True)]
    rows = [[c.name, c.group or "all", (c.form or "fitted") if c.status == "fitted" else c.status,
             c.expression if c.status == "fitted" and c.expression else "—", _params(c),
             _pct(c.max_residual), _pct(c.loo_max_error), c.reason] for c in t.curves]
    styles = [{"fitted": None, "interpolated": "yellow"}.get(c.status, "red") for c in t.curves]
    legend = ["model all: the lowest-energy point of each model", "fit: the form kept, or interpolated "
              "(piecewise-linear in log space)", "resid.: largest relative residual of the fit",
              "LOO: largest leave-one-out error (— with too few points)",
              f"a fit is kept if both are <= {t.max_residual:.0%}", "--wide: expressions, parameters and why"]
    return Section("Curves", columns, rows, legend, styles)
