"""What `greenbench profile` shows: the progress of a sweep and the tables of its profile."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import JustifyMethod
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from greenbench.cli.common import err
from greenbench.methods import method_label

if TYPE_CHECKING:
    from greenbench.measure.runner import Event, RunConfig
    from greenbench.profile import Profile


def run_with_progress(cfg: RunConfig) -> Profile:
    from greenbench.measure.runner import run_profile

    live = err.is_terminal
    progress = Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(),
        TextColumn("{task.completed}/{task.total} windows"), TimeRemainingColumn(),
        console=err, transient=True, disable=not live,
    )
    task: TaskID | None = None
    flagged: dict[str, list[str]] = {}
    fixes: dict[str, str] = {}

    def on_event(e: Event) -> None:
        nonlocal task
        if e.kind == "flag":
            flagged.setdefault(e.code, []).append(e.text)
            fixes[e.code] = e.fix
        elif e.kind == "start":
            task = progress.add_task(e.text, total=e.total)
        elif e.kind == "window" and task is not None:
            progress.update(task, completed=e.done, description=e.text)
        elif e.kind == "note":
            progress.console.print(f"[dim]{e.text}[/]", highlight=False)
        elif e.kind == "warning":
            progress.console.print(f"[yellow]warning:[/] {e.text}", highlight=False)
        elif e.kind == "point" and not live and e.record is not None:  # a point event carries its record
            r = e.record
            progress.console.print(f"[{e.done}/{e.total}] {r.model} b{r.batch_size} {r.precision} {r.device}: {r.status}", highlight=False)

    try:
        with progress:
            return run_profile(cfg, on_event)
    finally:  # one line per kind of flag, naming the points and the option that fixes it
        for code, where in flagged.items():
            shown = ", ".join(where[:4]) + (f" and {len(where) - 4} more" if len(where) > 4 else "")
            err.print(f"[yellow]warning:[/] {code} at {len(where)} point(s) ({shown}): {fixes[code]}",
                      highlight=False)


def _fmt(x: float | None, spec: str = ".3g") -> str:
    return "—" if x is None else format(x, spec)


def summary_table(profile) -> Table:
    t = Table(title=f"greenbench profile: {profile.ladder.name}"
              + (" (quick)" if profile.settings.quick else ""))
    scored = {r.quality_metric for r in profile.ok_records()}
    quality = "accuracy [95% CI]" if scored <= {"accuracy", None} else "quality"
    columns: list[tuple[str, JustifyMethod]] = [
        ("model", "left"), ("params", "right"), ("batch", "right"), ("prec", "left"),
        ("device", "left"), (quality, "right"), ("p50 ms/batch", "right"),
        ("p95 ms/batch", "right"), ("items/s", "right"), ("J/item ± σ", "right"),
        ("CV", "right"), ("method", "left"), ("W", "right"), ("mgCO2e/item", "right"),
        ("flags", "left")]
    for col, just in columns:
        t.add_column(col, justify=just)
    for r in profile.records:
        if r.status != "ok":
            t.add_row(r.model, _fmt(r.params, ","), str(r.batch_size), r.precision, r.device,
                      f"[red]{r.status}[/]", "", "", "", "", "", "", "", "", r.error or "")
            continue
        acc = _quality(r)
        energy = "null" if r.energy_j_per_item is None else f"{r.energy_j_per_item:.3g}" + (
            "" if r.energy_j_per_item_std is None else f" ± {r.energy_j_per_item_std:.2g}")
        co2 = None if r.co2e_g_per_item is None else r.co2e_g_per_item * 1e3
        t.add_row(r.model, f"{r.params:,}", str(r.batch_size), r.precision, r.device, acc,
                  _fmt(r.latency_p50_ms), _fmt(r.latency_p95_ms), f"{r.items_per_s:,.0f}", energy,
                  "—" if r.energy_j_per_item_cv is None else f"{r.energy_j_per_item_cv:.1%}",
                  r.energy_method, _fmt(r.power_w, ".1f"), _fmt(co2), ",".join(r.flags))
    return t


def _quality(r) -> str:
    if r.accuracy is not None:
        return f"{r.accuracy:.3f} [{r.accuracy_ci95[0]:.3f}, {r.accuracy_ci95[1]:.3f}]"
    if r.perplexity is not None:
        return f"perplexity {r.perplexity:.4g}"
    return "—"


def lm_table(profile) -> Table | None:
    """Causal LMs: time to first token, time per output token, and prefill/decode energy."""
    rows = [r for r in profile.ok_records() if r.output_tokens is not None]
    if not rows:
        return None
    t = Table(title="causal LM requests: prefill and decode")
    for col in ("model", "batch", "prec", "device", "prompt→output tokens", "TTFT p50 ms",
                "TTFT p95 ms", "TPOT ms", "output tokens/s", "J/request prefill",
                "J/token decode", "J/output token", "method"):
        t.add_column(col, justify="left" if col in ("model", "prec", "device", "method") else "right")
    for r in rows:
        t.add_row(r.model, str(r.batch_size), r.precision, r.device,
                  f"{r.prompt_tokens}→{r.output_tokens}", _fmt(r.ttft_p50_ms), _fmt(r.ttft_p95_ms),
                  _fmt(r.tpot_ms), _fmt(r.output_tokens_per_s, ",.0f"), _fmt(r.energy_prefill_j_per_item),
                  _fmt(r.energy_decode_j_per_token), _fmt(r.energy_j_per_output_token), r.energy_method)
    return t


def summary_lines(profile) -> list[str]:
    """The hyperfine-style verdict: best accuracy, least energy, and the spread between them."""
    ok = [r for r in profile.ok_records() if r.energy_j_per_item is not None and r.accuracy is not None]
    lines = []
    if not ok and any(r.energy_j_per_item is not None for r in profile.ok_records()):
        return ["No accuracy to compare (the ladder scores perplexity): see the tables above."]
    if not ok:
        reasons = {r.energy_reason or r.error for r in profile.records}
        return [f"No energy figure: {'; '.join(sorted(x for x in reasons if x))}"]
    best_acc = max(ok, key=lambda r: (r.accuracy, -r.energy_j_per_item))
    least = min(ok, key=lambda r: r.energy_j_per_item)
    method = {r.energy_method for r in ok}
    lines.append(f"Most accurate: {best_acc.model} (accuracy {best_acc.accuracy:.3f}) at "
                 f"{best_acc.energy_j_per_item:.3g} J/item (batch {best_acc.batch_size}, "
                 f"{method_label(best_acc.energy_method)}).")
    if least is not best_acc and least.energy_j_per_item > 0:
        ratio = best_acc.energy_j_per_item / least.energy_j_per_item
        lines.append(f"Least energy: {least.model} batch {least.batch_size}: {ratio:.3g} x less energy "
                     f"per item, accuracy {least.accuracy:.3f} ({least.accuracy - best_acc.accuracy:+.3f}).")
    carbon = profile.carbon
    lines.append(f"Carbon at {carbon.gco2e_per_kwh} gCO2e/kWh ({carbon.where}, PUE {carbon.pue}); "
                 f"energy method(s): {', '.join(sorted(method))}.")
    return lines
