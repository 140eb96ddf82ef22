"""What `greenbench profile` shows: the progress of a sweep and the tables of its profile."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column

from greenbench.cli.common import err
from greenbench.cli.tables import Col, Section, constant, print_lines, print_sections, sig, sig_si, to_markdown
from greenbench.methods import is_measurement, method_label

if TYPE_CHECKING:
    from greenbench.measure.runner import Event, RunConfig
    from greenbench.profile import Profile, Record

# The bar's parts beside the description: the bar, "999/999", "0:00:00" elapsed, "ETA 59m 59s",
# their four gaps and a spare column; the description gets what is left, so the ETA is never cut.
_BAR_WIDTH = 20
_BAR_FIXED = _BAR_WIDTH + 7 + 7 + 11 + 4 + 1


def duration(seconds: float) -> str:
    """A duration for a person: 42s, 1m 42s, 2h 05m."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def point_label(r: Record) -> str:
    return r.label


def first_line(text: str | None) -> str:
    """A failed point's error in one line (a server's log tail stays in the record)."""
    return (text or "").splitlines()[0] if text else ""


def _words(r: Record) -> str:
    """The setting in a sentence: "batch 256", or a served point's load ("c16")."""
    return f"batch {r.batch_size}" if r.batch_size is not None else f"load {r.setting}"


def _setting(r: Record) -> str:
    """The resource column: the batch size as a number, or a served point's load (c16, r2/s)."""
    return str(r.batch_size) if r.batch_size is not None else r.setting


def point_line(position: int, total: int, r: Record) -> str:
    """The line a finished point gets: "[9/45] cnn-32 b256 fp32 cpu: ok, 0.00123 J/item"."""
    if r.status != "ok":
        what = f"{r.status}" + (f": {first_line(r.error)}" if r.error else "")
    elif r.energy_j_per_item is None:
        what = "ok, energy null" + (f" ({r.energy_reason})" if r.energy_reason else "")
    else:
        what = f"ok, {sig(r.energy_j_per_item)} J/item"
    return f"[{position}/{total}] {point_label(r)}: {what}"


def closing_line(records: list[Record], seconds: float) -> str:
    """The sweep's last line: "measured 15 points (0 failed) in 1m 42s"."""
    failed = sum(r.status == "failed" for r in records)
    skipped = sum(r.status == "skipped" for r in records)
    counts = f"{failed} failed" + (f", {skipped} skipped" if skipped else "")
    return f"measured {len(records)} point{'s' if len(records) != 1 else ''} ({counts}) in {duration(seconds)}"


def make_progress(console: Console) -> Progress:
    """The bar: "cnn-64 b256 ━━━━━━━━━━━━━━━━━━━━ 9/45 0:00:12 ETA 1m 03s", on a terminal only,
    gone at the end (the closing line says what it measured)."""
    return Progress(
        TextColumn("{task.description}", table_column=Column(no_wrap=True)),
        BarColumn(bar_width=_BAR_WIDTH),
        TextColumn("{task.completed}/{task.total}", table_column=Column(no_wrap=True)),
        TimeElapsedColumn(),
        TextColumn("{task.fields[eta]}", table_column=Column(no_wrap=True)),
        console=console, transient=True, disable=not console.is_terminal,
    )


def bar_description(text: str, console_width: int) -> str:
    """A window event's "cnn-64 b256: 1,234 items/s, ..." as "cnn-64 b256", cut to what the line
    leaves beside the bar's fixed parts."""
    width = max(8, console_width - _BAR_FIXED)
    short = text.split(": ", 1)[0]
    return short if len(short) <= width else short[: width - 1] + "…"


def run_with_progress(cfg: RunConfig) -> Profile:
    """Run the sweep: on a terminal a bar (its ETA kept at 80 columns) over a line per finished
    point; in a log, the line per finished point alone; and a closing line either way."""
    if cfg.ray is not None:  # Ray is imported there, and only with --ray
        from greenbench.measure.cluster import run_profile
    else:
        from greenbench.measure.runner import run_profile

    progress = make_progress(err)
    task: TaskID | None = None
    points_total = 0
    finished: list[Record] = []
    flagged: dict[str, list[str]] = {}
    fixes: dict[str, str] = {}
    t0 = time.monotonic()

    def on_event(e: Event) -> None:
        nonlocal task, points_total
        if e.kind == "flag":
            flagged.setdefault(e.code, []).append(e.text)
            fixes[e.code] = e.fix
        elif e.kind == "start":
            # the runner counts windows (points x repeats); a point line counts points
            points_total = max(1, round(e.total / max(1, cfg.protocol.repeats))) if e.total else 0
            task = progress.add_task("starting", total=e.total, eta="")
        elif e.kind == "window" and task is not None:
            eta = "" if e.eta_s is None else f"ETA {duration(e.eta_s)}"
            progress.update(task, completed=e.done, eta=eta,
                            description=bar_description(e.text, err.width))
        elif e.kind == "note":
            progress.console.print(f"[dim]{e.text}[/]", highlight=False)
        elif e.kind == "warning":
            progress.console.print(f"[yellow]warning:[/] {e.text}", highlight=False)
        elif e.kind == "point" and e.record is not None:
            # One line per point, numbered by the points finished: the event's own counter is
            # the windows done when its group was saved, the same for every point of the group.
            finished.append(e.record)
            progress.console.print(point_line(len(finished), max(points_total, len(finished)), e.record),
                                   highlight=False, markup=False)

    try:
        with progress:
            result = run_profile(cfg, on_event)
    finally:  # one line per kind of flag, naming the points and the option that fixes it
        for code, where in flagged.items():
            shown = ", ".join(where[:4]) + (f" and {len(where) - 4} more" if len(where) > 4 else "")
            err.print(f"[yellow]warning:[/] {code} at {len(where)} point(s) ({shown}): {fixes[code]}",
                      highlight=False)
    err.print(closing_line(finished, time.monotonic() - t0), highlight=False)
    return result


# ------------------------------------------------------------------------------------------------
# the tables


def _mem(r: Record, field: str) -> str:
    value = getattr(r, field, None)  # peak memory: fields newer than some profiles
    return sig(value) if isinstance(value, int | float) else "—"


def _quality(r: Record) -> str:
    if r.accuracy is not None:
        return f"{r.accuracy:.3f}"
    if r.perplexity is not None:
        return f"ppl {sig(r.perplexity)}"
    return "—"


def _ci(r: Record) -> str:
    if r.accuracy_ci95 is None:
        return "—"
    return f"{r.accuracy_ci95[0]:.3f}-{r.accuracy_ci95[1]:.3f}"


def summary_section(profile: Profile) -> Section:
    """Every record: the compact view keeps model, batch, accuracy, p95 latency, throughput,
    energy and its CV; precision, device and method only where they vary (else the legend says
    them once); --wide adds everything else."""
    recs = profile.records
    ok = [r for r in recs if r.status == "ok"]
    same_prec = constant(r.precision for r in recs)
    same_dev = constant(r.device for r in recs)
    same_method = constant(r.energy_method for r in ok) if ok else None
    scored = {r.quality_metric for r in ok}
    quality = "accuracy" if scored <= {"accuracy", None} else "quality"
    served = any(r.batch_size is None for r in recs)
    columns = [
        Col("model", "name"), Col("params", wide=True), Col("load" if served else "batch"),
        Col("prec", "name", wide=same_prec is not None), Col("device", "name", wide=same_dev is not None),
        Col(quality), Col("95% CI", wide=True), Col("p50 ms", wide=True), Col("p95 ms"), Col("items/s"),
        Col("J/item"), Col("± σ J", wide=True), Col("CV"), Col("method", "name", wide=same_method is not None),
        Col("W", wide=True), Col("mgCO2e", wide=True), Col("GPU MiB", wide=True), Col("RSS MiB", wide=True),
        Col("flags", "text", wide=True),
    ]
    rows: list[list[str]] = []
    styles: list[str | None] = []
    for r in recs:
        head = [r.model, "—" if r.params is None else f"{r.params:,}", _setting(r), r.precision, r.device]
        if r.status != "ok":
            rows.append([*head, r.status, *["—"] * 12, first_line(r.error)])
            styles.append("red")
            continue
        co2 = None if r.co2e_g_per_item is None else r.co2e_g_per_item * 1e3
        rows.append([*head, _quality(r), _ci(r), sig(r.latency_p50_ms), sig(r.latency_p95_ms),
                     sig_si(r.items_per_s), "null" if r.energy_j_per_item is None else sig(r.energy_j_per_item),
                     sig(r.energy_j_per_item_std), "—" if r.energy_j_per_item_cv is None else f"{r.energy_j_per_item_cv:.1%}",
                     r.energy_method, sig(r.power_w), sig(co2), _mem(r, "gpu_mem_peak_mib"),
                     _mem(r, "host_rss_peak_mib"), ", ".join(r.flags)])
        styles.append("yellow" if r.flags else None)
    repeats = constant(str(r.repeats) for r in ok)
    same = [x for x in (same_prec, same_dev) if x]
    legend = [
        "accuracy on the held-out split" if quality == "accuracy" else "quality: accuracy, or perplexity (ppl)",
        "load: c concurrent requests, r requests/s" if served else None,
        "p95 ms: end-to-end latency per request" if served else "p95 ms: latency per batch",
        "items/s: requests per second" if served else "items/s: throughput",
        f"J/item: {profile.settings.energy_basis or 'gross'} energy per " + ("request" if served else "item"),
        f"CV: of J/item over {repeats} repeats" if repeats else "CV: of J/item over the repeats",
        ("all points " + " on ".join(same)) if same else None,
        f"energy {method_label(same_method)}" if same_method else None,
    ]
    wide_legend = ["95% CI: of accuracy (Wilson)", "p50 ms: median latency per batch",
                   "± σ J: standard deviation of J/item", "W: mean power", "mgCO2e: carbon per item",
                   "GPU MiB: peak GPU memory allocated", "RSS MiB: peak host memory (resident set)"]
    title = f"greenbench profile: {profile.ladder.name}" + (" (quick)" if profile.settings.quick else "")
    return Section(title, columns, rows, legend, styles, wide_legend)


def flag_lines(profile: Profile) -> list[str]:
    """One line per validity flag, naming its points (the default table has no room for them)."""
    where: dict[str, list[str]] = {}
    for r in profile.records:
        for f in r.flags:
            where.setdefault(f, []).append(f"{r.model} {r.setting}")
    n = len(profile.records)
    return [f"flag {f}: every point" if len(points) == n else f"flag {f}: {len(points)} of {n} points "
            f"({', '.join(points)})" for f, points in where.items()]


def lm_section(profile: Profile) -> Section | None:
    """Causal LMs: time to first token, time per output token, and prefill/decode energy."""
    rows = [r for r in profile.ok_records() if r.output_tokens is not None]
    if not rows:
        return None
    if all(r.batch_size is None for r in rows):
        return _served_section(rows)
    columns = [Col("model", "name"), Col("batch"), Col("prec", "name", wide=True), Col("device", "name", wide=True),
               Col("tokens", justify="right"), Col("TTFT p50"), Col("TTFT p95", wide=True), Col("TPOT"),
               Col("tokens/s"), Col("J prefill", wide=True), Col("J/token decode", wide=True),
               Col("J/output token"), Col("method", "name", wide=True)]
    body = [[r.model, _setting(r), r.precision, r.device, f"{r.prompt_tokens}→{r.output_tokens}",
             sig(r.ttft_p50_ms), sig(r.ttft_p95_ms), sig(r.tpot_ms), sig_si(r.output_tokens_per_s),
             sig(r.energy_prefill_j_per_item), sig(r.energy_decode_j_per_token), sig(r.energy_j_per_output_token),
             r.energy_method] for r in rows]
    legend = ["tokens: prompt→output per request", "TTFT: time to first token, ms", "TPOT: ms per output token",
              "tokens/s: output tokens per second", "J prefill: per request; J/token decode and J/output token"]
    return Section("causal LM requests: prefill and decode", columns, body, legend)


def _served_section(rows: list[Record]) -> Section:
    """Served models under load: what the stream showed per request, and energy per token."""
    columns = [Col("model", "name"), Col("load"), Col("prec", "name", wide=True), Col("device", "name", wide=True),
               Col("tokens", justify="right", wide=True), Col("TTFT p50"), Col("TTFT p99", wide=True),
               Col("TPOT p50"), Col("ITL p99", wide=True), Col("tokens/s"), Col("req/s", wide=True),
               Col("goodput", wide=True), Col("J/token"), Col("load CPU", wide=True), Col("engine", "name", wide=True)]
    body = [[r.model, r.setting, r.precision, r.device, f"{r.prompt_tokens}→{r.output_tokens}",
             sig(r.ttft_p50_ms), sig(r.ttft_p99_ms), sig(r.tpot_p50_ms), sig(r.itl_p99_ms),
             sig_si(r.output_tokens_per_s), sig(r.requests_per_s), sig(r.goodput_requests_per_s),
             sig(r.energy_j_per_output_token), "—" if r.load_cpu_share is None else f"{r.load_cpu_share:.0%}",
             " ".join(x for x in (r.engine, r.engine_version) if x) or "—"] for r in rows]
    legend = ["TTFT: time to first token, ms", "TPOT: ms per output token after the first",
              "tokens/s: output tokens per second streamed inside the windows",
              "J/token: the windows' energy over the tokens streamed inside them"]
    wide_legend = ["tokens: prompt→output per request", "ITL: inter-token latency, ms",
                   "goodput: requests/s meeting the ladder's SLOs", "load CPU: greenbench's load generator, of one core"]
    return Section("served requests under load", columns, body, legend, wide_legend=wide_legend)


def failure_lines(profile: Profile) -> list[str]:
    """Why each point that is not ok failed: its own line, so that the table stays narrow."""
    return [f"{point_label(r)}: {r.status}: {first_line(r.error)}" + (f" (server log: {r.server_log})" if r.server_log
            else "") for r in profile.records if r.status != "ok" and r.error]


def summary_lines(profile: Profile) -> list[str]:
    """The hyperfine-style verdict: best accuracy, least energy, and the spread between them."""
    ok = [r for r in profile.ok_records() if r.energy_j_per_item is not None and r.accuracy is not None]
    lines = []
    if not ok and any(r.energy_j_per_item is not None for r in profile.ok_records()):
        scored = {r.quality_metric for r in profile.ok_records()} - {None}
        why = f"the ladder scores {', '.join(sorted(m for m in scored if m))}" if scored else "no quality was scored"
        return [f"No accuracy to compare ({why}): see the tables above."]
    if not ok:
        reasons = {r.energy_reason or r.error for r in profile.records}
        return [f"No energy figure: {'; '.join(sorted(x for x in reasons if x))}"]
    best_acc = max(ok, key=lambda r: (r.accuracy, -r.energy_j_per_item))  # type: ignore[operator]
    least = min(ok, key=lambda r: r.energy_j_per_item)  # type: ignore[arg-type,return-value]
    method = {r.energy_method for r in ok}
    assert best_acc.accuracy is not None and best_acc.energy_j_per_item is not None
    lines.append(f"Most accurate: {best_acc.model} (accuracy {best_acc.accuracy:.3f}) at "
                 f"{sig(best_acc.energy_j_per_item)} J/item ({_words(best_acc)}, "
                 f"{method_label(best_acc.energy_method)}).")
    if least is not best_acc and least.energy_j_per_item and least.accuracy is not None:
        ratio = best_acc.energy_j_per_item / least.energy_j_per_item
        lines.append(f"Least energy: {least.model} {_words(least)}: {sig(ratio)} x less energy "
                     f"per item, accuracy {least.accuracy:.3f} ({least.accuracy - best_acc.accuracy:+.3f}).")
    carbon = profile.carbon
    measured = "" if all(is_measurement(m) for m in method) else " (not metered)"
    lines.append(f"Carbon at {carbon.gco2e_per_kwh} gCO2e/kWh ({carbon.where}, PUE {carbon.pue}); "
                 f"energy method(s): {', '.join(sorted(method))}{measured}.")
    return lines


def profile_sections(profile: Profile) -> list[Section]:
    lm = lm_section(profile)
    return [summary_section(profile)] + ([lm] if lm is not None else [])


def print_profile(console: Console, profile: Profile, *, wide: bool = False) -> None:
    """The tables, why a point failed, and the verdict."""
    print_sections(console, profile_sections(profile), wide=wide)
    print_lines(console, [*([] if wide else flag_lines(profile)), *failure_lines(profile), *summary_lines(profile)])


def profile_markdown(profile: Profile) -> str:
    return to_markdown(profile_sections(profile), failure_lines(profile) + summary_lines(profile))


def profile_csv(profile: Profile) -> str:
    """The records as CSV, one row per point: the columns and rows of ``--csv-out``."""
    import pandas as pd

    from greenbench.profile.export import CSV_COLUMNS, to_rows

    text: str = pd.DataFrame(to_rows(profile), columns=CSV_COLUMNS).to_csv(index=False)
    return text
