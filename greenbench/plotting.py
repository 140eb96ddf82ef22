"""The one plotting style of the analysis stages: fit (``tradeoff/plots``), simulate
(``price/simulate``) and the report (``report/plots``) draw with these helpers.

matplotlib's object API only: a figure is a ``matplotlib.figure.Figure``, never pyplot's, so no
backend is selected or switched (a notebook that imports greenbench keeps its own), no window
opens, no display is needed and nothing global is left behind; ``savefig`` picks the PNG (Agg) or
SVG canvas by itself. matplotlib is imported inside the functions, when a plot is drawn.

One look everywhere: the PNG resolution, title, legend and grid, colours per series, PNG and SVG
files that are the same on every rerun, and one set of words for energy that is not a
measurement. Imports nothing of greenbench but the top level (``methods``).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from greenbench.methods import ESTIMATE, FAKE, is_measurement

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.legend import Legend

DPI = 120  # every PNG, files and the report's inline images
TITLE_FONTSIZE = 10
SUBTITLE_FONTSIZE = 9  # a second title, a panel of several, an annotation
LEGEND_FONTSIZE = 8
GRID_ALPHA = 0.25
PNG_METADATA = {"Software": "greenbench"}  # no matplotlib version: the same bytes on every install
SVG_METADATA = {"Date": None}  # no date: a rerun writes the same file

# How a plot says that energy is not a meter reading (axis labels, titles).
ESTIMATE_WORDS = "ESTIMATE, not metered"
ESTIMATE_TAG = " (estimate)"


# --- figures ------------------------------------------------------------------------------------

def figure(width_in: float, height_in: float, *,
           layout: Literal["constrained", "compressed", "tight"] | None = "constrained") -> Figure:
    """A new figure of this size (inches), laid out by matplotlib's constrained layout."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=DPI, layout=layout)


def colours(n: int) -> list[Any]:
    """``n`` distinct colours, one per series: tab10 up to 10, evenly spaced viridis beyond."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"] if n <= 10 else colormaps["viridis"].resampled(n)
    return [cmap(i) for i in range(n)]


def sequential(n: int) -> list[Any]:
    """``n`` colours for an ordered quantity (batch sizes): viridis, light ends left out."""
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(0.15 + 0.7 * j / max(1, n - 1)) for j in range(n)]


def title(ax: Axes, text: str, *, small: bool = False) -> None:
    ax.set_title(text, fontsize=SUBTITLE_FONTSIZE if small else TITLE_FONTSIZE)


def grid(ax: Axes, *, which: Literal["major", "minor", "both"] = "major",
         axis: Literal["both", "x", "y"] = "both") -> None:
    ax.grid(True, which=which, axis=axis, alpha=GRID_ALPHA)


def legend(target: Axes | Figure, **kw: Any) -> Legend:
    """A legend on an axes or a figure; without a frame unless asked (``frameon=True``: a legend
    drawn over the data)."""
    kw.setdefault("fontsize", LEGEND_FONTSIZE)
    kw.setdefault("frameon", False)
    if kw["frameon"]:
        kw.setdefault("framealpha", 0.9)
    return target.legend(**kw)


def right_legend(ax: Axes, *, loc: str = "center left", y: float = 0.5) -> Legend:
    """The legend outside the plot, to the right of the axes."""
    return legend(ax, loc=loc, bbox_to_anchor=(1.01, y))


def date_axis(ax: Axes) -> None:
    """Dates on the x axis, as short as they can be ("Feb", "03", the year once)."""
    import matplotlib.dates as mdates

    loc = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))


# --- files ----------------------------------------------------------------------------------------

def render(fig: Figure) -> dict[str, bytes]:
    """The figure as PNG and SVG bytes, keyed by suffix (".png", ".svg"), drawn in memory so that a
    caller can write every file of a set only once all of them have been drawn. SVG text stays
    text (searchable, smaller), and a rerun gives the same bytes (no date, fixed element ids)."""
    from matplotlib import rc_context

    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=DPI, metadata=PNG_METADATA)
    svg = io.BytesIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "greenbench"}):  # fixed ids, same file
        fig.savefig(svg, format="svg", metadata=SVG_METADATA)
    return {".png": png.getvalue(), ".svg": svg.getvalue()}


def save(fig: Figure, base: Path | str) -> list[Path]:
    """Write ``<base>.png`` and ``<base>.svg`` (see ``render``) and return both paths; an OSError
    is the caller's to turn into its own one-line error. The suffixes are added to ``base``'s
    whole name: a base of ``curve.v2`` writes ``curve.v2.png``."""
    base = Path(base)
    paths = []
    for suffix, data in render(fig).items():
        path = base.with_name(base.name + suffix)
        path.write_bytes(data)
        paths.append(path)
    return paths


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes (the report inlines them)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata=PNG_METADATA)
    return buf.getvalue()


# --- energy that is not a measurement -----------------------------------------------------------

def not_measured(methods: Iterable[str | None]) -> list[str]:
    """The energy methods among ``methods`` that are not a meter reading, sorted."""
    return sorted({m for m in methods if m is not None and not is_measurement(m)})


def method_words(methods: Iterable[str]) -> list[str]:
    """Each method as an axis label names it: an estimate loudly, the others by name."""
    return [ESTIMATE_WORDS if m == ESTIMATE else m for m in methods]


def energy_caveat(methods: Iterable[str]) -> str:
    """What a title says when some energy is not a meter reading; '' when all of it is."""
    methods = list(methods)
    if ESTIMATE in methods:
        return "energy is an ESTIMATE, not metered"
    if FAKE in methods:
        return "energy from the FAKE test meter"
    unmetered = not_measured(methods)
    return f"energy is not a measurement: energy_method {', '.join(unmetered)}" if unmetered else ""


def estimate_tag(text: str, estimate: bool) -> str:
    """``text`` with " (estimate)" after it when what it names rests on estimated energy."""
    return text + ESTIMATE_TAG if estimate else text
