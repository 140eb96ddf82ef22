"""Plots of the carbon-QoE tradeoff (matplotlib, Agg backend, imported only when a plot is drawn).

Each function writes ``<base>.png`` and ``<base>.svg`` and returns both paths. An energy estimate
is always said to be one, in the axis label and the title.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window, work without a display
    import matplotlib.pyplot as plt

    return plt


def _energy_label(t) -> str:
    return f"energy per item (J, {t.energy}; method: {', '.join(t.energy_methods)})"


def _caveat(t) -> str:
    """A title suffix when some energy is not a meter reading."""
    if "estimate" in t.energy_methods:
        return "  (energy is an ESTIMATE, not metered)"
    if "fake" in t.energy_methods:
        return "  (energy from the FAKE test meter)"
    return ""


def _colors(plt, n: int):
    """Distinct colours (tab10 up to 10 series; a continuous map beyond)."""
    return plt.get_cmap("tab10") if n <= 10 else plt.get_cmap("viridis", n)


def _save(fig, base: Path) -> list[Path]:
    plt = _pyplot()
    paths = [base.with_suffix(".png"), base.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=130)
    # SVG text stays text (searchable, smaller); no date, so reruns give the same file
    with plt.rc_context({"svg.fonttype": "none"}):
        fig.savefig(paths[1], metadata={"Date": None})
    plt.close(fig)
    return paths


def _curve_line(ax, curve, color, label_prefix=""):
    """Draw a curve over its measured range: solid when fitted, dashed when interpolated."""
    if curve.status == "unavailable":
        return
    xs = np.geomspace(curve.x[0], curve.x[-1], 200)
    style = "-" if curve.status == "fitted" else "--"
    what = f"fit: {curve.form}" if curve.status == "fitted" else "interpolated"
    ax.plot(xs, curve.predict(xs), style, color=color, lw=1.6, alpha=0.9,
            label=f"{label_prefix}{what}")


def accuracy_vs_energy(t, base: Path) -> list[Path]:
    """Every measured point, the Pareto frontier, and the accuracy curve across model sizes."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 5.4), layout="constrained")
    models = sorted({p.model for p in t.points}, key=lambda m: min(
        p.energy_j_per_item for p in t.points if p.model == m))
    cmap = _colors(plt, len(models))
    for i, m in enumerate(models):
        pts = [p for p in t.points if p.model == m]
        ax.scatter([p.energy_j_per_item for p in pts], [p.accuracy for p in pts], s=36,
                   color=cmap(i), alpha=0.75, label=m, zorder=3)
    front = t.frontier
    ax.scatter([p.energy_j_per_item for p in front], [p.accuracy for p in front], s=130,
               facecolors="none", edgecolors="crimson", lw=1.6, zorder=4,
               label="Pareto frontier (accuracy, latency, energy)")
    for p in t.points:  # batch size beside each point: what moves a model along x
        ax.annotate(f"b{p.batch_size}", (p.energy_j_per_item, p.accuracy), fontsize=7,
                    xytext=(4, -9), textcoords="offset points", color="0.35")
    curve = next(c for c in t.curves if c.name == "accuracy_vs_energy")
    _curve_line(ax, curve, "black", "each model's lowest-energy point, ")
    ax.set_xscale("log")
    ax.set_xlabel(_energy_label(t))
    ax.set_ylabel("accuracy")
    title = "Accuracy vs energy per item"
    title += _caveat(t)
    ax.set_title(title, fontsize=11)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _save(fig, Path(base))


def batch_curves(t, base: Path) -> list[Path]:
    """Per model: batch latency and energy per item against batch size, points and curves.
    Nothing is written when no model was measured at two batch sizes or more."""
    groups = sorted({c.group for c in t.curves if c.group is not None})
    if not groups:
        return []
    plt = _pyplot()
    from matplotlib.lines import Line2D

    fig, (ax_l, ax_e) = plt.subplots(1, 2, figsize=(12, 5.6), layout="constrained")
    colors = _colors(plt, len(groups))
    handles = []
    for i, g in enumerate(groups):
        status = []
        for ax, name, what in ((ax_l, "latency_vs_batch", "latency"), (ax_e, "energy_vs_batch", "energy")):
            c = next(c for c in t.curves if c.group == g and c.name == name)
            ax.scatter(c.x, c.y, color=colors(i), s=30, zorder=3)
            _curve_line(ax, c, colors(i))
            status.append(f"{what}: " + (f"fit {c.form}" if c.status == "fitted" else c.status))
        handles.append(Line2D([], [], color=colors(i), marker="o", label=f"{g} ({', '.join(status)})"))
    for ax in (ax_l, ax_e):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch size")
        ax.grid(True, which="both", alpha=0.25)
    ax_l.set_ylabel(f"batch latency {t.latency} (ms, what each request waits)")
    ax_e.set_ylabel(_energy_label(t))
    ax_l.set_title("Latency vs batch size", fontsize=11)
    ax_e.set_title("Energy per item vs batch size" + (_caveat(t)),
                   fontsize=11)
    handles += [Line2D([], [], color="0.3", ls="-", label="solid: validated fit"),
                Line2D([], [], color="0.3", ls="--", label="dashed: interpolated (every fit rejected)")]
    fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    return _save(fig, Path(base))
