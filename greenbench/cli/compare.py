"""greenbench compare: the CI gate of a candidate profile against a baseline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import typer
from rich.text import Text

from greenbench.cli.common import (
    EXIT_CODES_HELP,
    check_out_paths,
    err,
    fail,
    load_profile,
    out,
    stdout_format,
    user_errors,
    write_out,
)
from greenbench.cli.tables import Col, Section, Wide, print_lines, print_sections, sig
from greenbench.errors import Exit
from greenbench.methods import ESTIMATE

if TYPE_CHECKING:
    from greenbench.compare.gate import Result, Row

HELP = f"""Compare a CANDIDATE profile with a BASELINE profile and fail (exit 1) on a regression.

Points are matched by ladder, model, batch size (a served model's: concurrency and request rate), precision and device.

A row (one point, one metric) is a regression when its change crosses the metric's threshold in the bad direction AND is statistically significant on the per-repeat samples of both profiles (one-sided Welch test on log samples; two-proportion test for accuracy; Holm-corrected over the rows of the comparison). Rows without samples are judged on the threshold alone and say so.

Thresholds (--fail-on, repeatable): METRIC:+5% (relative) or METRIC:-0.01 (absolute). Default: energy_j_per_item:+5%, latency_p95_ms:+10%, accuracy:-0.01, and for language models perplexity:+1%, exact_match:-0.01 (each only where a profile has it). Metrics: energy_j_per_item, energy_net_j_per_item, co2e_g_per_item, latency_p50_ms, latency_p95_ms, latency_p99_ms (lower is better), items_per_s, accuracy (higher is better); for language models perplexity, ttft_p50_ms, ttft_p95_ms, ttft_p99_ms, tpot_ms, tpot_p50_ms, tpot_p95_ms, tpot_p99_ms, itl_p95_ms, energy_j_per_output_token (lower is better), exact_match, output_tokens_per_s, requests_per_s, goodput_requests_per_s (higher is better). A served model's latency_* is its requests' end-to-end latency.

Another model or other evaluation data marks a row not comparable (never a failure); other hardware is a warning. Energy that is not a measurement (CodeCarbon's estimate, the fake test meter) is marked 'estimate'. Files (--markdown-out, --json-out, --csv-out, --junit) are written before a non-zero exit; --markdown, --json and --csv print that format on stdout instead of the table (the verdict then goes to stderr). See docs/ci.md.

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
    markdown: bool = typer.Option(False, "--markdown", help="Print the result as Markdown (a pull-request comment) on stdout instead of the table. '--markdown FILE', the older spelling, still writes FILE."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON (versioned) on stdout instead. '--json FILE' still writes FILE."),
    as_csv: bool = typer.Option(False, "--csv", help="Print the rows as CSV on stdout instead."),
    markdown_out: Path | None = typer.Option(None, "--markdown-out", metavar="FILE", help="Write the result as Markdown (a pull-request comment) to FILE."),
    json_out: Path | None = typer.Option(None, "--json-out", metavar="FILE", help="Write the result as JSON (versioned) to FILE."),
    csv_out: Path | None = typer.Option(None, "--csv-out", metavar="FILE", help="Write the rows as CSV to FILE."),
    junit: Path | None = typer.Option(None, "--junit", metavar="FILE", help="Write the result as JUnit XML (one testcase per row) to FILE."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the summary line on stdout, no table."),
    wide: Wide = False,
) -> None:
    from greenbench.compare import export as export
    from greenbench.compare import gate as cmp

    fmt = stdout_format(json=as_json, markdown=markdown, csv=as_csv)
    check_out_paths(markdown_out, json_out, csv_out, junit, inputs=(baseline, candidate))
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
    texts = {"markdown": export.to_markdown, "json": export.to_json, "csv": export.to_csv, "junit": export.to_junit}
    for path, kind in ((markdown_out, "markdown"), (json_out, "json"), (csv_out, "csv"), (junit, "junit")):
        if path is not None:  # before a non-zero exit, so that CI can post them
            write_out(path, texts[kind](result))
    style = "bold red" if result.regressions else "green"
    if fmt is not None:  # stdout is that document alone; the verdict goes to stderr
        print(texts[fmt](result), end="")
        err.print(f"[{style}]{result.summary_line()}[/]", highlight=False)
    else:
        if not quiet:
            print_sections(out, [section(result)], wide=wide)
            print_lines(out, note_lines(result) + footer(result))
        out.print(Text(result.summary_line(), style=style), soft_wrap=False)
    if result.exit_code == Exit.REGRESSION:
        raise typer.Exit(int(Exit.REGRESSION))
    if result.nothing_compared:
        raise fail(result.nothing_compared, result.exit_code)


_STYLE = {"regression": "bold red", "improvement": "green", "not_comparable": "dim", "missing": "yellow",
          "new": "dim", "warning": "yellow", "ignored": "dim"}


def section(result: Result) -> Section:
    """One row per (point, metric), grouped under a line naming the point: the point's name has a
    line of its own, so that the metrics and numbers fit in 80 columns beside a long name."""
    from greenbench.compare.export import fmt_ratio
    from greenbench.compare.gate import METRICS

    columns = [Col("point / metric", "name"), Col("before", mixed=True), Col("after", mixed=True), Col("change"),
               Col("ratio", wide=True, mixed=True),
               Col("test", "name"), Col("n", wide=True), Col("verdict", "text"), Col("notes", "text", wide=True)]
    rows: list[list[str]] = []
    styles: list[str | None] = []
    point = None
    for r in result.rows:
        if r.point != point:
            point = r.point
            rows.append([r.point, *[""] * (len(columns) - 1)])
            styles.append("bold")
        n = "—" if r.n_before is None and r.n_after is None else f"{r.n_before or '—'}/{r.n_after or '—'}"
        rows.append(["  " + r.metric + (" *" if r.estimate else ""), sig(r.before), sig(r.after), r.change_text(),
                     fmt_ratio(r.ratio), r.p_text(), n, _verdict(r), "; ".join(r.notes)])
        styles.append(_STYLE.get(r.status, "yellow" if r.crossed else "") or None)
    units = sorted({f"{m} {METRICS[m].unit}" for m in {r.metric for r in result.rows}
                    if m in METRICS and METRICS[m].unit})
    legend = ["before, after: in the metric's unit (" + ", ".join(units) + ")" if units else None,
              "change: relative, or absolute where the threshold is", "test: p after correction",
              "n.s.: crossed its threshold, not significantly" if any("n.s." in x[7] for x in rows) else None,
              "* energy not metered (see below)" if any(r.estimate for r in result.rows) else None]
    return Section(f"greenbench compare: {result.baseline_name} -> {result.candidate_name}", columns, rows, legend,
                   styles, wide_legend=["ratio: after/before", "n: samples before/after"])


def _verdict(r: Row) -> str:
    """The row's verdict in few words: the metric's * says "estimate" already."""
    if r.status == "ok" and r.crossed and not r.significant:
        return "crossed, n.s."
    return "REGRESSION" if r.status == "regression" else r.verdict()


def note_lines(result: Result) -> list[str]:
    """The rows' notes (the default table has no room for them): one line each, or one line for
    a metric whose rows all say the same (a perplexity scored once per model has no samples)."""
    by_note: dict[tuple[str, str], list[str]] = {}
    for r in result.rows:
        if r.notes:
            by_note.setdefault((r.metric, "; ".join(r.notes)), []).append(r.point)
    lines = []
    for (metric, text), points in by_note.items():
        if len(points) > 2:
            lines.append(f"{metric} at {len(points)} points ({points[0]}, ...): {text}")
        else:
            lines += [f"{p} {metric}: {text}" for p in points]
    return lines


def footer(result: Result) -> list[str]:
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
        lines.append(f"(estimate) *: energy {what}; --estimates {o.estimates}")
    return lines
