"""Plots of the carbon-QoE tradeoff, in the style of ``greenbench.plotting`` (matplotlib, imported
only when a plot is drawn).

Each function returns a matplotlib figure (``outputs`` draws it to PNG and SVG bytes and writes
the files once every output has been drawn). An estimate is always said to be one, in the axis
label and the title. A model has one colour in every plot of a fit.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

import numpy as np

from greenbench import plotting

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
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


def model_colours(t: Tradeoff) -> dict[str, Any]:
    """One colour per model, the same in every plot of this tradeoff: models in order of their
    lowest energy per item (for a ladder, roughly smallest first)."""
    models = sorted({p.model for p in t.points},
                    key=lambda m: (min(p.energy_j_per_item for p in t.points if p.model == m), m))
    return dict(zip(models, plotting.colours(len(models)), strict=True))


def frontier_note(t: Tradeoff) -> str:
    """What the rings of the accuracy plot mean for this tradeoff, as its legend says it."""
    n, k = len(t.points), len(t.frontier)
    if k == n:
        # Rings round every point would say nothing: say it in words instead.
        return (f"every point ({n} of {n}) is on the Pareto frontier (accuracy, latency, energy): "
                "none is beaten on all three, so none is ringed")
    return f"ringed: the Pareto frontier (accuracy, latency, energy), {k} of {n} points"


def accuracy_vs_energy(t: Tradeoff) -> Figure:
    """Every measured point, the Pareto frontier, and the accuracy curve across model sizes."""
    from matplotlib.lines import Line2D

    fig = plotting.figure(10, 5.4)
    ax = fig.add_subplot()
    for m, colour in model_colours(t).items():
        pts = [p for p in t.points if p.model == m]
        ax.scatter([p.energy_j_per_item for p in pts], [p.accuracy for p in pts], s=36,
                   color=colour, alpha=0.75, label=m, zorder=3)
    front = t.frontier
    note = frontier_note(t)
    if len(front) < len(t.points):
        ax.scatter([p.energy_j_per_item for p in front], [p.accuracy for p in front], s=130,
                   facecolors="none", edgecolors="crimson", lw=1.6, zorder=4, label=textwrap.fill(note, 36))
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
    handles, _ = ax.get_legend_handles_labels()
    if len(front) == len(t.points):  # the note as a legend line of its own, without a marker
        handles.append(Line2D([], [], ls="none", label=textwrap.fill(note, 36)))
    plotting.legend(ax, handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def batch_curves(t: Tradeoff) -> Figure | None:
    """Per model: batch latency and energy per item against batch size, points and curves.
    None when no model was measured at two batch sizes or more."""
    groups = sorted({c.group for c in t.curves if c.group is not None})
    if not groups:
        return None
    from matplotlib.lines import Line2D

    fig = plotting.figure(12, 5.6)
    ax_l, ax_e = fig.subplots(1, 2)
    colours = model_colours(t)
    # A group is "model precision device": the model's colour, and a marker per group of one model.
    model_of = {f"{p.model} {p.precision} {p.device}": p.model for p in t.points}  # as curves names groups
    handles: list[Line2D] = []
    seen: dict[str, int] = {}
    for g in groups:
        model = model_of[g]
        colour = colours.get(model, "0.3")
        marker = "os^Dv"[seen.get(model, 0) % 5]
        seen[model] = seen.get(model, 0) + 1
        status: list[str] = []
        for ax, name, what in ((ax_l, "latency_vs_batch", "latency"), (ax_e, "energy_vs_batch", "energy")):
            c = next(c for c in t.curves if c.group == g and c.name == name)
            ax.scatter(c.x, c.y, color=colour, marker=marker, s=30, zorder=3)
            _curve_line(ax, c, colour)
            status.append(f"{what}: " + (f"fit {c.form}" if c.status == "fitted" else c.status))
        handles.append(Line2D([], [], color=colour, marker=marker, label=f"{g} ({', '.join(status)})"))
    batches = sorted({p.batch_size for p in t.points})
    for ax in (ax_l, ax_e):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(batches, [str(b) for b in batches])  # the measured batch sizes, not powers of 2
        ax.set_xlabel("batch size")
        plotting.grid(ax, which="both")
    ax_l.set_ylabel(f"batch latency {t.latency} (ms, what each request waits)")
    ax_e.set_ylabel(_energy_label(t))
    plotting.title(ax_l, "Latency vs batch size")
    plotting.title(ax_e, "Energy per item vs batch size" + _caveat(t))
    handles += [Line2D([], [], color="0.3", ls="-", label="solid: validated fit"),
                Line2D([], [], color="0.3", ls="--", label="dashed: interpolated (every fit rejected)")]
    plotting.legend(fig, handles=handles, loc="outside lower center", ncol=2)
    return fig
