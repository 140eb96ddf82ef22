"""The report's plots, drawn from a profile (and a comparison) as PNG bytes, in the style of
``greenbench.plotting`` (matplotlib's object API: no pyplot state, no backend switched).

Each function returns PNG bytes, or None when the profile lacks the data (the report then says so
instead of drawing an empty plot).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from greenbench import plotting
from greenbench.profile import Profile, Record

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from greenbench.compare.gate import Result

MARKERS = "os^Dvp*hX"
STATUS_COLOURS = {"regression": "#c62828", "crossed": "#ef8f00", "improvement": "#2e7d32", "ok": "#78909c",
                  "warning": "#ef8f00", "ignored": "#b0bec5"}


def energy_label(records: list[Record], short: bool = False) -> str:
    """'energy per item, J (gross; rapl)', saying loudly when any of it is an estimate."""
    methods = sorted({r.energy_method for r in records if r.energy_j_per_item is not None})
    words = plotting.method_words(methods) or ["no method"]
    unit = "request" if records and all(r.batch_size is None for r in records) else "item"  # served: requests
    if short:
        return f"J per {unit} ({', '.join(words)})"
    return f"energy per {unit}, J (gross; {', '.join(words)})"


def _models(records: list[Record]) -> list[str]:
    return list(dict.fromkeys(r.model for r in records))


def _colours(models: list[str]) -> dict[str, Any]:
    return dict(zip(models, plotting.colours(len(models)), strict=True))


# --- the resource axis: batch size in-process, concurrency (or request rate) for a served model ---

AXES = {"batch": ("batch size", "batch_size"), "concurrency": ("concurrency (requests in flight)", "concurrency"),
        "rate": ("request rate (requests/s)", "request_rate_per_s")}


def resource_axis(records: list[Record]) -> str:
    """The axis most of these records set their resources on: batch, concurrency or rate."""
    counts = {"batch": sum(r.batch_size is not None for r in records),
              "concurrency": sum(r.batch_size is None and r.concurrency is not None for r in records),
              "rate": sum(r.batch_size is None and r.concurrency is None and r.request_rate_per_s is not None
                          for r in records)}
    return max(counts, key=lambda k: (counts[k], -list(counts).index(k)))


def _x(r: Record, axis: str) -> float | None:
    v = getattr(r, AXES[axis][1])
    return None if v is None else float(v)


def setting_words(r: Record) -> str:
    """A point's setting in words: "batch 8", "concurrency 16", "rate 2/s, concurrency 16"."""
    if r.batch_size is not None:
        return f"batch {r.batch_size}"
    parts = ([] if r.request_rate_per_s is None else [f"rate {r.request_rate_per_s:g}/s"]) + (
        [] if r.concurrency is None else [f"concurrency {r.concurrency}"])
    return ", ".join(parts)


def _setting_order(r: Record) -> tuple:
    return (r.batch_size is None, r.batch_size or 0, r.request_rate_per_s or 0.0, r.concurrency or 0)


def _log_x(ax: Any, values: list[float]) -> None:
    """A log-2 x axis ticked at the measured settings (not at powers of 2)."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(values, [f"{v:g}" for v in values])


# --- quality against energy --------------------------------------------------------------------

QUALITY_WORDS = {"accuracy": "accuracy", "exact_match": "exact match", "perplexity": "perplexity"}


def quality_metric(profile: Profile) -> str | None:
    """The quality metric most ok records were scored by (None when none was)."""
    from collections import Counter

    counts = Counter(r.quality_metric or ("accuracy" if r.accuracy is not None else None)
                     for r in profile.ok_records())
    counts.pop(None, None)
    return max(counts, key=lambda m: (counts[m], m == "accuracy")) if counts else None


def quality_plot_name(profile: Profile) -> str:
    """The file of the quality plot: accuracy_vs_energy.png, perplexity_vs_energy.png."""
    return f"{quality_metric(profile) or 'accuracy'}_vs_energy.png"


def _quality(r: Record, metric: str) -> float | None:
    if metric == "accuracy":
        return r.accuracy
    if metric == "perplexity":
        return r.perplexity
    return r.quality.get(metric)


def accuracy_vs_energy(profile: Profile) -> bytes | None:
    """Quality (accuracy, or perplexity on a log axis: lower is better) against energy per item."""
    metric = quality_metric(profile) or "accuracy"
    # (record, energy per item, quality) of the points that have both
    points = [(r, r.energy_j_per_item, q) for r in profile.ok_records()
              if r.energy_j_per_item is not None and (q := _quality(r, metric)) is not None]
    if not points:
        return None
    recs = [r for r, _, _ in points]
    fig = plotting.figure(10.2, 4.6)
    ax = fig.add_subplot()
    settings = sorted({setting_words(r) for r in recs}, key=lambda w: _setting_order(
        next(r for r in recs if setting_words(r) == w)))
    markers = {w: MARKERS[i % len(MARKERS)] for i, w in enumerate(settings)}
    colours = _colours(_models(recs))
    for model, colour in colours.items():
        pts = sorted((p for p in points if p[0].model == model), key=lambda p: _setting_order(p[0]))
        ax.plot([e for _, e, _ in pts], [a for _, _, a in pts], "-", color=colour, alpha=0.45)
        for r, e, a in pts:
            lo, hi = r.energy_j_per_item_ci95 or (e, e)
            alo, ahi = (r.accuracy_ci95 if metric == "accuracy" else None) or (a, a)
            ax.errorbar(e, a, xerr=[[max(0.0, e - lo)], [max(0.0, hi - e)]],
                        yerr=[[max(0.0, a - alo)], [max(0.0, ahi - a)]],
                        fmt=markers[setting_words(r)], color=colour, ms=6, capsize=2)
        ax.plot([], [], "-", color=colour, lw=3, label=model)
    for w, m in markers.items():
        ax.plot([], [], m, color="grey", label=w)
    ax.set_xscale("log")
    ax.set_xlabel(energy_label(recs))
    words = QUALITY_WORDS.get(metric, metric)
    unit = "request" if all(r.batch_size is None for r in recs) else "item"
    if metric == "perplexity":
        from greenbench.tradeoff.plots import plain_log_ticks

        ax.set_yscale("log")
        plain_log_ticks(ax.yaxis)
        ax.set_ylabel("perplexity (lower is better)")
        plotting.title(ax, f"Perplexity against energy per {unit} (lower is better; bars: 95% intervals of energy)")
    else:
        ax.set_ylabel(f"{words} (95% interval)")
        plotting.title(ax, f"{words[:1].upper()}{words[1:]} against energy per {unit} (bars: 95% intervals)")
    plotting.right_legend(ax)
    plotting.grid(ax, which="both")
    return plotting.png_bytes(fig)


quality_vs_energy = accuracy_vs_energy


# --- per model against the resource axis -------------------------------------------------------

def _against_setting(profile: Profile, p50: str, p95: str | None, ylabel: str, title: str,
                     log_y: bool = True) -> bytes | None:
    """One line per model of ``p50`` (solid) and ``p95`` (dashed) against the profile's resource
    axis; None when no point has ``p50``."""
    recs_all = profile.ok_records()
    axis = resource_axis(recs_all)
    points = [(r, x, getattr(r, p50)) for r in recs_all
              if getattr(r, p50) is not None and (x := _x(r, axis)) is not None]
    if not points:
        return None
    recs = [r for r, _, _ in points]
    fig = plotting.figure(10.2, 4.6)
    ax = fig.add_subplot()
    for model, colour in _colours(_models(recs)).items():
        pts = sorted((p for p in points if p[0].model == model), key=lambda p: p[1])
        ax.plot([x for _, x, _ in pts], [y for _, _, y in pts], "o-", color=colour,
                label=f"{model}" + (" p50" if p95 else ""))
        if p95 is not None:
            hi = [(x, getattr(r, p95)) for r, x, _ in pts if getattr(r, p95) is not None]
            if hi:
                ax.plot([x for x, _ in hi], [y for _, y in hi], "^--", color=colour, alpha=0.6, ms=4)
    if p95 is not None:
        ax.plot([], [], "k^--", alpha=0.6, ms=4, label="p95 (dashed)")
    _log_x(ax, sorted({x for _, x, _ in points}))
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(AXES[axis][0])
    ax.set_ylabel(ylabel)
    plotting.title(ax, title)
    plotting.right_legend(ax)
    plotting.grid(ax, which="both")
    return plotting.png_bytes(fig)


def latency_vs_batch(profile: Profile) -> bytes | None:
    """Latency per batch (served: per request, end to end) against the resource axis, per model."""
    axis = resource_axis(profile.ok_records())
    if axis == "batch":
        return _against_setting(profile, "latency_p50_ms", "latency_p95_ms", "latency per batch, ms",
                                "Latency per batch against batch size (solid p50, dashed p95)")
    return _against_setting(profile, "latency_p50_ms", "latency_p95_ms", "request latency end to end, ms",
                            f"Request latency against {AXES[axis][0].split(' (')[0]} (solid p50, dashed p95)")


def latency_plot_name(profile: Profile) -> str:
    return f"latency_vs_{resource_axis(profile.ok_records())}.png"


def energy_per_token(profile: Profile) -> bytes | None:
    """Energy per output token against the resource axis, per model (language models)."""
    recs = [r for r in profile.ok_records() if r.energy_j_per_output_token is not None]
    axis = resource_axis(profile.ok_records())
    methods = sorted({r.energy_method for r in recs})
    words = ", ".join(plotting.method_words(methods)) or "no method"
    return _against_setting(profile, "energy_j_per_output_token", None, f"J per output token ({words})",
                            f"Energy per output token against {AXES[axis][0].split(' (')[0]}"
                            + (f"  ({c})" if (c := plotting.energy_caveat(methods)) else ""))


def ttft(profile: Profile) -> bytes | None:
    """Time to first token against the resource axis, per model (language models)."""
    axis = resource_axis(profile.ok_records())
    return _against_setting(profile, "ttft_p50_ms", "ttft_p95_ms", "time to first token, ms",
                            f"Time to first token against {AXES[axis][0].split(' (')[0]} (solid p50, dashed p95)")


def energy_by_model(profile: Profile) -> bytes | None:
    fig = energy_by_model_figure(profile)
    return None if fig is None else plotting.png_bytes(fig)


def energy_by_model_figure(profile: Profile) -> Figure | None:
    """Energy per item of every point as a marker on a log axis, one column per model.

    Points, not bars: a bar's height on a log axis is measured from wherever the axis happens to
    start, so bars of 1e-5 and 1e-2 J would look a few times apart instead of a thousand."""
    points = [(r, r.energy_j_per_item) for r in profile.ok_records()
              if r.energy_j_per_item is not None and r.energy_j_per_item > 0]
    if not points:
        return None
    recs = [r for r, _ in points]
    models = _models(recs)
    order = {setting_words(r): _setting_order(r) for r in recs}
    settings = sorted(order, key=lambda w: order[w])
    fig = plotting.figure(10.2, 4.6)
    ax = fig.add_subplot()
    step = 0.45 / (len(settings) - 1) if len(settings) > 1 else 0.0  # side by side within a column
    for j, (w, colour) in enumerate(zip(settings, plotting.sequential(len(settings)), strict=True)):
        marker = MARKERS[j % len(MARKERS)]
        xs: list[float] = []
        ys: list[float] = []
        lo: list[float] = []
        hi: list[float] = []
        for i, m in enumerate(models):
            found = next((p for p in points if p[0].model == m and setting_words(p[0]) == w), None)
            if found is None:
                continue
            r, e = found
            ci = r.energy_j_per_item_ci95 or (e, e)
            xs.append(i + (j - (len(settings) - 1) / 2) * step)
            ys.append(e)
            # a lower bound at or below zero cannot be drawn on a log axis: clip it just above zero
            lo.append(min(max(0.0, e - ci[0]), e * 0.999))
            hi.append(max(0.0, ci[1] - e))
        ax.plot(xs, ys, ":", color=colour, lw=0.8, alpha=0.6)  # one setting across the models
        ax.errorbar(xs, ys, yerr=[lo, hi], fmt=marker, color=colour, ms=6, capsize=2, label=w)
    ax.set_xticks(range(len(models)), models)
    ax.set_xlim(-0.6, len(models) - 0.4)
    ax.set_yscale("log")
    served = all(r.batch_size is None for r in recs)
    ax.set_ylabel(energy_label(recs, short=True) + ", log scale")
    what = "load" if served else "batch size"
    plotting.title(ax, f"Energy per {'request' if served else 'item'} by model and {what} "
                   "(log scale; whiskers: 95% intervals)")
    plotting.right_legend(ax)
    plotting.grid(ax, axis="y", which="both")
    return fig


def changes(result: Result) -> bytes | None:
    """One panel per gated metric: each point's change, coloured by the verdict, with the threshold."""
    metrics = [t for t in result.options.thresholds
               if any(r.metric == t.metric and r.change is not None for r in result.rows)]
    if not metrics:
        return None
    points = list(dict.fromkeys(r.point for r in result.rows if r.change is not None))
    height = 1.2 + 0.24 * len(points)
    fig = plotting.figure(3.3 * len(metrics) + 1.6, height)
    axes = fig.subplots(1, len(metrics), sharey=True, squeeze=False)[0]
    y = {p: i for i, p in enumerate(points)}
    for ax, th in zip(axes, metrics, strict=True):
        # (row, its change) of this metric's rows that have one
        rows = [(r, r.change) for r in result.rows if r.metric == th.metric and r.change is not None]
        scale = 100 if th.relative else 1
        for r, change in rows:
            key = "crossed" if r.status == "ok" and r.crossed else r.status
            ax.barh(y[r.point], change * scale, color=STATUS_COLOURS.get(key, "#78909c"), height=0.7)
        if all(change == 0 for _, change in rows):
            ax.text(0.5, 0.5, "no change at any point", transform=ax.transAxes, ha="center", va="center",
                    fontsize=plotting.SUBTITLE_FONTSIZE, color="#5f6b73")
        ax.axvline(th.value * scale, color="#c62828", ls="--", lw=1)
        ax.axvline(0, color="black", lw=0.6)
        plotting.title(ax, plotting.estimate_tag(th.metric, any(r.estimate for r, _ in rows)), small=True)
        ax.set_xlabel(f"change, {'%' if th.relative else 'absolute'} (dashed: {th.text.split(':')[1]})", fontsize=8)
        plotting.grid(ax, axis="x")
        ax.tick_params(labelsize=8)
    axes[0].set_yticks(range(len(points)), points)
    axes[0].invert_yaxis()
    from matplotlib.patches import Patch

    handles = [Patch(color=STATUS_COLOURS[k], label=lab) for k, lab in
               (("regression", "regression"), ("crossed", "crossed, not significant"),
                ("improvement", "improved"), ("ok", "within threshold"))]
    plotting.legend(fig, handles=handles, loc="outside lower center", ncol=4)
    return plotting.png_bytes(fig)
