"""Plots of the carbon-QoE tradeoff, in the style of ``greenbench.plotting`` (matplotlib, imported
only when a plot is drawn).

Each function writes ``<base>.png`` and ``<base>.svg`` and returns both paths. An estimate is always
said to be one, in the axis label and the title.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from greenbench import plotting

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.lines import Line2D

    from greenbench.tradeoff.curves import Curve, Tradeoff


def _energy_label(t: Tradeoff) -> str:
    return f"energy per item (J, {t.energy}; method: {', '.join(t.energy_methods)})"


def _caveat(t: Tradeoff) -> str:
    """A title suffix when some energy is not a meter reading."""
    caveat = plotting.energy_caveat(t.energy_methods)
    return f"  ({caveat})" if caveat else ""


def _curve_line(ax: Axes, curve: Curve, color: Any, label_prefix: str = "") -> None:
    """Draw a curve over its measured range: solid when fitted, dashed when interpolated."""
    if curve.status == "unavailable":
        return
    xs = np.geomspace(curve.x[0], curve.x[-1], 200)
    style = "-" if curve.status == "fitted" else "--"
    what = f"fit: {curve.form}" if curve.status == "fitted" else "interpolated"
    ax.plot(xs, curve.predict(xs), style, color=color, lw=1.6, alpha=0.9,
            label=f"{label_prefix}{what}")


def accuracy_vs_energy(t: Tradeoff, base: Path) -> list[Path]:
    """Every measured point, the Pareto frontier, and the accuracy curve across model sizes."""
    fig = plotting.figure(10, 5.4)
    ax = fig.add_subplot()
    models = sorted({p.model for p in t.points}, key=lambda m: min(
        p.energy_j_per_item for p in t.points if p.model == m))
    for m, colour in zip(models, plotting.colours(len(models)), strict=True):
        pts = [p for p in t.points if p.model == m]
        ax.scatter([p.energy_j_per_item for p in pts], [p.accuracy for p in pts], s=36,
                   color=colour, alpha=0.75, label=m, zorder=3)
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
    plotting.title(ax, "Accuracy vs energy per item" + _caveat(t))
    plotting.grid(ax, which="both")
    plotting.right_legend(ax, loc="upper left", y=1.0)
    return plotting.save(fig, Path(base))


def batch_curves(t: Tradeoff, base: Path) -> list[Path]:
    """Per model: batch latency and energy per item against batch size, points and curves.
    Nothing is written when no model was measured at two batch sizes or more."""
    groups = sorted({c.group for c in t.curves if c.group is not None})
    if not groups:
        return []
    from matplotlib.lines import Line2D

    fig = plotting.figure(12, 5.6)
    ax_l, ax_e = fig.subplots(1, 2)
    colours = plotting.colours(len(groups))
    handles: list[Line2D] = []
    for g, colour in zip(groups, colours, strict=True):
        status: list[str] = []
        for ax, name, what in ((ax_l, "latency_vs_batch", "latency"), (ax_e, "energy_vs_batch", "energy")):
            c = next(c for c in t.curves if c.group == g and c.name == name)
            ax.scatter(c.x, c.y, color=colour, s=30, zorder=3)
            _curve_line(ax, c, colour)
            status.append(f"{what}: " + (f"fit {c.form}" if c.status == "fitted" else c.status))
        handles.append(Line2D([], [], color=colour, marker="o", label=f"{g} ({', '.join(status)})"))
    for ax in (ax_l, ax_e):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch size")
        plotting.grid(ax, which="both")
    ax_l.set_ylabel(f"batch latency {t.latency} (ms, what each request waits)")
    ax_e.set_ylabel(_energy_label(t))
    plotting.title(ax_l, "Latency vs batch size")
    plotting.title(ax_e, "Energy per item vs batch size" + _caveat(t))
    handles += [Line2D([], [], color="0.3", ls="-", label="solid: validated fit"),
                Line2D([], [], color="0.3", ls="--", label="dashed: interpolated (every fit rejected)")]
    plotting.legend(fig, handles=handles, loc="outside lower center", ncol=2)
    return plotting.save(fig, Path(base))
