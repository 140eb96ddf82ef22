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
    if short:
        return f"J per item ({', '.join(words)})"
    return f"energy per item, J (gross; {', '.join(words)})"


def _models(records: list[Record]) -> list[str]:
    return list(dict.fromkeys(r.model for r in records))


def _colours(models: list[str]) -> dict[str, Any]:
    return dict(zip(models, plotting.colours(len(models)), strict=True))


def accuracy_vs_energy(profile: Profile) -> bytes | None:
    # (record, energy per item, accuracy) of the points that have both
    points = [(r, r.energy_j_per_item, r.accuracy) for r in profile.ok_records()
              if r.energy_j_per_item is not None and r.accuracy is not None]
    if not points:
        return None
    recs = [r for r, _, _ in points]
    fig = plotting.figure(10.2, 4.6)
    ax = fig.add_subplot()
    batches = sorted({r.batch_size for r in recs})
    markers = dict(zip(batches, MARKERS, strict=False))
    colours = _colours(_models(recs))
    for model, colour in colours.items():
        pts = sorted((p for p in points if p[0].model == model), key=lambda p: p[0].batch_size)
        ax.plot([e for _, e, _ in pts], [a for _, _, a in pts], "-", color=colour, alpha=0.45)
        for r, e, a in pts:
            lo, hi = r.energy_j_per_item_ci95 or (e, e)
            alo, ahi = r.accuracy_ci95 or (a, a)
            ax.errorbar(e, a, xerr=[[max(0.0, e - lo)], [max(0.0, hi - e)]],
                        yerr=[[max(0.0, a - alo)], [max(0.0, ahi - a)]],
                        fmt=markers[r.batch_size], color=colour, ms=6, capsize=2)
        ax.plot([], [], "-", color=colour, lw=3, label=model)
    for b, m in markers.items():
        ax.plot([], [], m, color="grey", label=f"batch {b}")
    ax.set_xscale("log")
    ax.set_xlabel(energy_label(recs))
    ax.set_ylabel("accuracy (95% interval)")
    plotting.title(ax, "Accuracy against energy per item (bars: 95% intervals)")
    plotting.right_legend(ax)
    plotting.grid(ax, which="both")
    return plotting.png_bytes(fig)


def latency_vs_batch(profile: Profile) -> bytes | None:
    points = [(r, r.latency_p50_ms) for r in profile.ok_records() if r.latency_p50_ms is not None]
    if not points:
        return None
    recs = [r for r, _ in points]
    fig = plotting.figure(10.2, 4.6)
    ax = fig.add_subplot()
    for model, colour in _colours(_models(recs)).items():
        pts = sorted((p for p in points if p[0].model == model), key=lambda p: p[0].batch_size)
        b = [r.batch_size for r, _ in pts]
        ax.plot(b, [p50 for _, p50 in pts], "o-", color=colour, label=f"{model} p50")
        p95 = [(r.batch_size, r.latency_p95_ms) for r, _ in pts if r.latency_p95_ms is not None]
        if p95:
            ax.plot([x for x, _ in p95], [y for _, y in p95], "^--", color=colour, alpha=0.6, ms=4)
    ax.plot([], [], "k^--", alpha=0.6, ms=4, label="p95 (dashed)")
    batches = sorted({r.batch_size for r in recs})
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(batches, [str(b) for b in batches])
    ax.set_xlabel("batch size")
    ax.set_ylabel("latency per batch, ms")
    plotting.title(ax, "Latency per batch against batch size (solid p50, dashed p95)")
    plotting.right_legend(ax)
    plotting.grid(ax, which="both")
    return plotting.png_bytes(fig)


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
    batches = sorted({r.batch_size for r in recs})
    fig = plotting.figure(10.2, 4.6)
    ax = fig.add_subplot()
    step = 0.45 / (len(batches) - 1) if len(batches) > 1 else 0.0  # side by side within a column
    for j, (b, colour) in enumerate(zip(batches, plotting.sequential(len(batches)), strict=True)):
        marker = MARKERS[j % len(MARKERS)]
        xs: list[float] = []
        ys: list[float] = []
        lo: list[float] = []
        hi: list[float] = []
        for i, m in enumerate(models):
            found = next((p for p in points if p[0].model == m and p[0].batch_size == b), None)
            if found is None:
                continue
            r, e = found
            ci = r.energy_j_per_item_ci95 or (e, e)
            xs.append(i + (j - (len(batches) - 1) / 2) * step)
            ys.append(e)
            # a lower bound at or below zero cannot be drawn on a log axis: clip it just above zero
            lo.append(min(max(0.0, e - ci[0]), e * 0.999))
            hi.append(max(0.0, ci[1] - e))
        ax.plot(xs, ys, ":", color=colour, lw=0.8, alpha=0.6)  # one batch size across the models
        ax.errorbar(xs, ys, yerr=[lo, hi], fmt=marker, color=colour, ms=6, capsize=2, label=f"batch {b}")
    ax.set_xticks(range(len(models)), models)
    ax.set_xlim(-0.6, len(models) - 0.4)
    ax.set_yscale("log")
    ax.set_ylabel(energy_label(recs, short=True) + ", log scale")
    plotting.title(ax, "Energy per item by model and batch size (log scale; whiskers: 95% intervals)")
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
