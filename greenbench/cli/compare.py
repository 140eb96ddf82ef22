"""greenbench compare: the CI gate of a candidate profile against a baseline."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import typer
from rich.console import JustifyMethod
from rich.table import Table

from greenbench.cli.common import (
    EXIT_CODES_HELP,
    err,
    fail,
    load_profile,
    out,
    user_errors,
)
from greenbench.errors import Exit
from greenbench.methods import ESTIMATE

HELP = f"""Compare a CANDIDATE profile with a BASELINE profile and fail (exit 1) on a regression.

Points are matched by ladder, model, batch size, precision and device.

A row (one point, one metric) is a regression when its change crosses the metric's threshold in the bad direction AND is statistically significant on the per-repeat samples of both profiles (one-sided Welch test on log samples; two-proportion test for accuracy; Holm-corrected over the rows of the comparison). Rows without samples are judged on the threshold alone and say so.

Thresholds (--fail-on, repeatable): METRIC:+5% (relative) or METRIC:-0.01 (absolute). Default: energy_j_per_item:+5%, latency_p95_ms:+10%, accuracy:-0.01. Metrics: energy_j_per_item, energy_net_j_per_item, co2e_g_per_item, latency_p50_ms, latency_p95_ms, latency_p99_ms (lower is better), items_per_s, accuracy (higher is better); for language models perplexity, ttft_p50_ms, ttft_p95_ms, tpot_ms, energy_j_per_output_token (lower is better), output_tokens_per_s (higher is better).

Another model or other evaluation data marks a row not comparable (never a failure); other hardware is a warning. Energy that is not a measurement (CodeCarbon's estimate, the fake test meter) is marked 'estimate'. Exports (--markdown, --json, --junit) are written before a non-zero exit. See docs/ci.md.

{EXIT_CODES_HELP}"""


def compare_command(
    baseline: Path = typer.Argument(..., help="The baseline profile (JSON)."),
    candidate: Path = typer.Argument(..., help="The candidate profile (JSON)."),
    fail_on: list[str] | None = typer.Option(None, "--fail-on", metavar="METRIC:THRESHOLD", help="Regression threshold, e.g. energy_j_per_item:+5%, latency_p95_ms:+10%, accuracy:-0.01 (repeatable; replaces the defaults)."),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level of the one-sided tests (after Holm's correction)."),
    no_stats: bool = typer.Option(False, "--no-stats", help="No significance test: a row fails on its threshold alone."),
    no_stats_for: list[str] | None = typer.Option(None, "--no-stats-for", metavar="METRIC", help="No significance test for this metric only, e.g. accuracy where it is deterministic (repeatable)."),
    correction: str = typer.Option("holm", "--correction", help="holm (the default: a noise-only comparison fails at most alpha of the time) or none (each row at alpha)."),
    estimates: str = typer.Option("fail", "--estimates", help="Estimated energy: fail (thresholds apply; rows are marked), warn (never fails, warns), ignore (not judged)."),
    markdown: Path | None = typer.Option(None, "--markdown", help="Write the result as Markdown (a pull-request comment)."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the result as JSON (versioned)."),
    junit: Path | None = typer.Option(None, "--junit", help="Write the result as JUnit XML (one testcase per row)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the summary line on stdout, no table."),
) -> None:
    from greenbench.compare import export as export
    from greenbench.compare import gate as cmp

    for path in (markdown, json_path, junit):
        if path is not None and not path.parent.is_dir():
            raise fail(f"{path}: the folder {path.parent} does not exist")
    with user_errors():
        options = cmp.Options(thresholds=cmp.parse_thresholds(fail_on), alpha=alpha, stats=not no_stats,
                              no_stats_for=frozenset(no_stats_for or ()),
                              # Options checks both choices and raises a one-line CompareError
                              correction=cast(cmp.Correction, correction),
                              estimates=cast(cmp.Estimates, estimates))
        before, after = (load_profile(path, side) for path, side in ((baseline, "baseline"), (candidate, "candidate")))
        result = cmp.compare(before, after, options, names=(str(baseline), str(candidate)))
    for w in result.warnings:
        err.print(f"[yellow]warning:[/] {w}", highlight=False)
    for path, render in ((markdown, export.to_markdown), (json_path, export.to_json), (junit, export.to_junit)):
        if path is None:
            continue
        try:
            path.write_text(render(result), encoding="utf-8")
        except OSError as e:
            raise fail(f"{path}: cannot write: {e.strerror or e}") from None
        err.print(f"wrote {path}", highlight=False)
    if not quiet:
        out.print(table(result))
        for line in footer(result):
            out.print(f"[dim]{line}[/]", highlight=False)
    style = "bold red" if result.regressions else "green"
    out.print(f"[{style}]{result.summary_line()}[/]", highlight=False)
    if result.exit_code == Exit.REGRESSION:
        raise typer.Exit(int(Exit.REGRESSION))
    if result.nothing_compared:
        raise fail(result.nothing_compared, result.exit_code)


_STYLE = {"regression": "bold red", "improvement": "green", "not_comparable": "dim", "missing": "yellow",
          "new": "dim", "warning": "yellow", "ignored": "dim"}


def table(result) -> Table:
    from greenbench.compare.export import fmt_ratio, fmt_value

    t = Table(title=f"greenbench compare: {result.baseline_name} -> {result.candidate_name}")
    columns: list[tuple[str, JustifyMethod]] = [
        ("Point", "left"), ("Metric", "left"), ("Change", "right"), ("Before", "right"),
        ("After", "right"), ("Ratio", "right"), ("Test", "left"), ("Verdict", "left")]
    for col, just in columns:
        t.add_column(col, justify=just)
    for r in result.rows:
        style = _STYLE.get(r.status, "yellow" if r.crossed else "")
        verdict = r.verdict() + ("; " + "; ".join(r.notes) if r.notes else "")
        metric = r.metric + (" (estimate)" if r.estimate else "")
        t.add_row(r.point, metric, r.change_text(), fmt_value(r.before), fmt_value(r.after),
                  fmt_ratio(r.ratio), r.p_text(), verdict, style=style or None)
    return t


def footer(result) -> list[str]:
    o = result.options
    lines = [f"thresholds: {', '.join(t.text for t in o.thresholds)}"]
    if o.stats:
        corr = (f"Holm-corrected over {result.family_size} tested rows" if o.correction == "holm"
                else "no correction")
        lines.append(f"test: one-sided, alpha {o.alpha:g}, {corr}; p shown after correction; "
                     "'exact' = candidate samples are the baseline's times a constant; "
                     "'untested' = judged on the threshold alone")
    else:
        lines.append("no significance test (--no-stats): thresholds alone")
    if any(r.estimate for r in result.rows):
        what = ("modelled by CodeCarbon (power model x time), not metered"
                if result.unmeasured_methods == [ESTIMATE] else result.unmeasured_text())
        lines.append(f"(estimate): energy {what}; --estimates {o.estimates}")
    return lines
