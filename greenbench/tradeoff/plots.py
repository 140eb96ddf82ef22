"""Plots of the carbon-QoE tradeoff, in the style of ``greenbench.plotting`` (matplotlib, imported
only when a plot is drawn).

Each function returns a matplotlib figure (``outputs`` draws it to PNG and SVG bytes and writes
the files once every output has been drawn). An estimate is always said to be one, in the axis
label and the title. A model has one colour in every plot of a fit.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from greenbench import plotting

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from greenbench.tradeoff.curves import Curve, Tradeoff


def _unit(t: Tradeoff) -> str:
    """What energy is per: an item, or for a served model a request."""
    return "request" if all(p.batch_size is None for p in t.points) else "item"


def _energy_label(t: Tradeoff) -> str:
    return f"energy per {_unit(t)} (J, {t.energy}; method: {', '.join(t.energy_methods)})"


def plain_log_ticks(axis: Any) -> None:
    """Tick labels of a log axis as plain numbers (15, 20, 30), not powers of ten."""
    from matplotlib.ticker import FuncFormatter

    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    axis.set_major_formatter(fmt)
    axis.set_minor_formatter(fmt)


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


def _quality_words(t: Tradeoff) -> str:
    return t.quality_metric.replace("_", " ")


def _objectives(t: Tradeoff) -> str:
    return f"{_quality_words(t)}, latency, energy"


def frontier_note(t: Tradeoff) -> str:
    """What the rings of the quality plot mean for this tradeoff, as its legend says it."""
    n, k = len(t.points), len(t.frontier)
    if k == n:
        # Rings round every point would say nothing: say it in words instead.
        return (f"every point ({n} of {n}) is on the Pareto frontier ({_objectives(t)}): "
                "none is beaten on all three, so none is ringed")
    return f"ringed: the Pareto frontier ({_objectives(t)}), {k} of {n} points"


def quality_vs_energy(t: Tradeoff) -> Figure:
    """Every measured point, the Pareto frontier, and the quality curve across model sizes
    (accuracy; or perplexity, on a log axis, lower is better)."""
    from matplotlib.lines import Line2D

    fig = plotting.figure(10, 5.4)
    ax = fig.add_subplot()
    for m, colour in model_colours(t).items():
        pts = [p for p in t.points if p.model == m]
        ax.scatter([p.energy_j_per_item for p in pts], [p.quality for p in pts], s=36,
                   color=colour, alpha=0.75, label=m, zorder=3)
    front = t.frontier
    note = frontier_note(t)
    if len(front) < len(t.points):
        ax.scatter([p.energy_j_per_item for p in front], [p.quality for p in front], s=130,
                   facecolors="none", edgecolors="crimson", lw=1.6, zorder=4, label=textwrap.fill(note, 36))
    for p in t.points:  # the resource setting beside each point (b8, c16): what moves a model along x
        ax.annotate(p.setting, (p.energy_j_per_item, p.quality), fontsize=7,
                    xytext=(4, -9), textcoords="offset points", color="0.35")
    _curve_line(ax, t.quality_curve, "black", "each model's lowest-energy point, ")
    ax.set_xscale("log")
    ax.set_xlabel(_energy_label(t))
    words = _quality_words(t)
    if t.direction == "lower":
        ax.set_yscale("log")
        plain_log_ticks(ax.yaxis)
        ax.set_ylabel(f"{words} (lower is better)")
    else:
        ax.set_ylabel(words)
    plotting.title(ax, f"{words[:1].upper()}{words[1:]} vs energy per {_unit(t)}" + _caveat(t))
    plotting.grid(ax, which="both")
    handles, _ = ax.get_legend_handles_labels()
    if len(front) == len(t.points):  # the note as a legend line of its own, without a marker
        handles.append(Line2D([], [], ls="none", label=textwrap.fill(note, 36)))
    plotting.legend(ax, handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


accuracy_vs_energy = quality_vs_energy  # the name of the plot of an accuracy-scored profile


_LATENCY_WORDS = {"e2e": "latency", "ttft": "time to first token", "tpot": "time per output token"}


def resource_curves(t: Tradeoff, axis: str = "batch_size") -> Figure | None:
    """Per model: latency and energy per item against its resource setting (batch size, or the
    concurrency or request rate of a served model), points and curves. None when no model was
    measured at two settings or more on that axis."""
    from greenbench.tradeoff.curves import RESOURCE_AXES, RESOURCE_WORDS

    short = RESOURCE_AXES[axis]
    groups = sorted({c.group for c in t.curves if c.group is not None and c.x_name == axis})
    if not groups:
        return None
    from matplotlib.lines import Line2D

    fig = plotting.figure(12, 5.6)
    ax_l, ax_e = fig.subplots(1, 2)
    colours = model_colours(t)
    # A group is "model precision device" (a rate after it for a served open-loop load): the
    # model's colour, and a marker per group of one model.
    model_of = {}
    for c in t.curves:
        if c.group is not None and c.x_name == axis:
            first = next(p for p in t.points if p.label == c.point_labels[0].split(" + ")[0])
            model_of[c.group] = first.model
    handles: list[Line2D] = []
    seen: dict[str, int] = {}
    for g in groups:
        model = model_of[g]
        colour = colours.get(model, "0.3")
        marker = "os^Dv"[seen.get(model, 0) % 5]
        seen[model] = seen.get(model, 0) + 1
        status: list[str] = []
        for ax, name, what in ((ax_l, f"latency_vs_{short}", "latency"), (ax_e, f"energy_vs_{short}", "energy")):
            c = next(c for c in t.curves if c.group == g and c.name == name)
            ax.scatter(c.x, c.y, color=colour, marker=marker, s=30, zorder=3)
            _curve_line(ax, c, colour)
            status.append(f"{what}: " + (f"fit {c.form}" if c.status == "fitted" else c.status))
        handles.append(Line2D([], [], color=colour, marker=marker, label=f"{g} ({', '.join(status)})"))
    settings = sorted({p.resource[1] for p in t.points if p.resource[0] == axis})
    words = RESOURCE_WORDS[axis]
    for ax in (ax_l, ax_e):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(settings, [f"{v:g}" for v in settings])  # the measured settings, not powers of 2
        ax.set_xlabel(words)
        plotting.grid(ax, which="both")
    lat = _LATENCY_WORDS.get(t.latency_kind, "latency")
    if axis == "batch_size" and t.latency_kind == "e2e":
        ax_l.set_ylabel(f"batch latency {t.latency} (ms, what each request waits)")
    else:
        ax_l.set_ylabel(f"{lat} {t.latency} per request (ms)")
    ax_e.set_ylabel(_energy_label(t))
    what = words.split(" (")[0]
    plotting.title(ax_l, f"{lat[:1].upper()}{lat[1:]} vs {what}")
    plotting.title(ax_e, f"Energy per {_unit(t)} vs {what}" + _caveat(t))
    handles += [Line2D([], [], color="0.3", ls="-", label="solid: validated fit"),
                Line2D([], [], color="0.3", ls="--", label="dashed: interpolated (every fit rejected)")]
    plotting.legend(fig, handles=handles, loc="outside lower center", ncol=2)
    return fig


def batch_curves(t: Tradeoff) -> Figure | None:
    """Per model: batch latency and energy per item against batch size (``resource_curves``)."""
    return resource_curves(t, "batch_size")


def resource_drawer(axis: str) -> Callable[[Tradeoff], Figure | None]:
    """The plot of one resource axis, as a function of the tradeoff (what ``outputs`` draws)."""
    return lambda t: resource_curves(t, axis)
