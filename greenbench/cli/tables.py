"""Tables that read in an 80-column terminal: the one layout every command's tables share.

A table (a ``Section``) has a compact default set of columns (``--wide`` shows every one), short
headers with the units said once in a legend line under it, numbers to 3 significant figures, and
names that are never cut: a name column folds a name onto a second line rather than end it with
"…". The same sections print as Markdown (``to_markdown``, every column, HTML escaped).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Literal

import typer
from rich import box
from rich.console import Console, JustifyMethod
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from greenbench.markdown import escape

__all__ = ["WIDE_HELP", "Col", "Section", "Wide", "constant", "make_table", "md_escape", "print_legend",
           "print_lines", "print_sections", "sig", "sig_si", "to_markdown"]

WIDE_HELP = "Show every column (the default view keeps the columns that fit in 80 columns)."
# The --wide flag of every command that prints a table: ``wide: Wide = False``.
Wide = Annotated[bool, typer.Option("--wide", help=WIDE_HELP)]

Kind = Literal["number", "name", "text"]


@dataclass(frozen=True)
class Col:
    """One column: ``name`` cells are folded, never cut; ``text`` cells wrap at spaces; ``number``
    cells stay on one line. ``wide`` columns are shown with --wide only."""

    header: str
    kind: Kind = "number"
    wide: bool = False
    justify: JustifyMethod | None = None  # default: numbers right, names and text left


@dataclass(frozen=True)
class Section:
    """A titled table and the legend under it (``wide_legend``: what only --wide shows);
    ``styles`` colours whole rows on a terminal."""

    title: str
    columns: Sequence[Col]
    rows: Sequence[Sequence[str]]
    legend: Sequence[str | None] = ()
    styles: Sequence[str | None] | None = field(default=None)
    wide_legend: Sequence[str | None] = ()


def sig_si(x: float | None) -> str:
    """A rate to 3 significant figures with an SI prefix from 1000 up: 13.4M, 834k, 950."""
    if x is None or not math.isfinite(x) or abs(x) < 1e3:
        return sig(x)
    for div, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div * 0.9995:  # 999,600 is 1.00M, not 1000k
            return sig(x / div) + prefix
    return sig(x)  # pragma: no cover - the loop ends at k


def sig(x: float | None, digits: int = 3) -> str:
    """``x`` to ``digits`` significant figures, without an exponent from 0.001 to below 1000 and
    with every integer digit, grouped, from 1000 up (156,544 rather than 1.57e+05: a total is
    read, not compared); "—" for None."""
    if x is None:
        return "—"
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    ax = abs(x)
    if ax >= 10.0 ** digits:
        return f"{x:,.0f}"
    if ax >= 1e-3:
        decimals = max(0, digits - 1 - math.floor(math.log10(ax)))
        text = f"{x:.{decimals}f}"
        if decimals > 0 and len(text.lstrip("-").replace(".", "").lstrip("0")) > digits:
            text = f"{x:.{decimals - 1}f}"  # 9.996 rounded to 10.00: one decimal too many
        return text
    return f"{x:.{digits - 1}e}"


def constant(values: Iterable[str]) -> str | None:
    """The one value every row has (a column worth stating once, in the legend), or None."""
    seen = set(values)
    return next(iter(seen)) if len(seen) == 1 else None


def make_table(columns: Sequence[Col], rows: Iterable[Sequence[str]], *, title: str | None = None,
               wide: bool = False, styles: Sequence[str | None] | None = None,
               fit: tuple[Console, int] | None = None) -> Table:
    """A Rich table of the columns the view shows (every one with ``wide``); each row has a cell
    for every column of ``columns``, the hidden ones dropped here. Cells are plain text: a name
    with brackets is printed as it is, never read as markup.

    Names stay on one line while the table can fit ``fit``'s (console, width) with its text
    columns wrapped; only a table that cannot lets its row names (the first name column) fold
    onto more lines."""
    keep = [i for i, c in enumerate(columns) if wide or not c.wide]
    body = [[Text(row[i]) for i in keep] for row in rows]

    first_name = next((i for i in keep if columns[i].kind == "name"), None)

    def build(names_fold: bool) -> Table:
        t = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False, collapse_padding=True, header_style="bold")
        for i in keep:
            c = columns[i]
            justify: JustifyMethod = c.justify or ("right" if c.kind == "number" else "left")
            # the row's own name (the first name column) is the one that may fold; the others
            # (a device, a method) are short and stay whole
            if c.kind == "number" or (c.kind == "name" and not (names_fold and i == first_name)):
                t.add_column(c.header, justify=justify, no_wrap=True)
            else:  # text wraps at its spaces; a name, when it must, folds onto the next line
                t.add_column(c.header, justify=justify, overflow="fold")
        for n, cells in enumerate(body):
            t.add_row(*cells, style=None if styles is None else styles[n])
        return t

    table = build(names_fold=False)
    if fit is not None:
        console, width = fit
        # measured unbounded: a measurement within ``width`` is clamped to it and never says "too wide"
        if Measurement.get(console, console.options.update_width(10**4), table).minimum > width:
            table = build(names_fold=True)
    return table


def print_legend(console: Console, parts: Iterable[str | None]) -> None:
    """The legend under a table: what its headers abbreviate and their units, wrapped at spaces."""
    text = "; ".join(p for p in parts if p)
    if text:
        console.print(Text(text, style="dim"), soft_wrap=False)


def print_sections(console: Console, sections: Iterable[Section], wide: bool = False) -> None:
    """Each table and its legend. The default view is laid out for the console's width; --wide
    at its own full width, wider than the console if it must be (for ``less -S`` or a wide
    window), so that no column is squeezed into "…"."""
    for s in sections:
        console.print(Text(s.title, style="bold"), soft_wrap=False)  # wrapped at spaces, unlike a table title
        table = make_table(s.columns, s.rows, wide=wide, styles=s.styles, fit=(console, console.width))
        if wide:
            natural = Measurement.get(console, console.options.update_width(10**4), table).maximum
            with _at_least(console, natural):
                console.print(table)
        else:
            console.print(table)
        print_legend(console, [*s.legend, *(s.wide_legend if wide else ())])


@contextmanager
def _at_least(console: Console, width: int) -> Iterator[None]:
    """The console ``width`` columns wide, or wider, for one print (Console.print's own width
    argument can only narrow it)."""
    before = console._width
    console.width = max(console.width, width)
    try:
        yield
    finally:
        console._width = before


def print_lines(console: Console, lines: Iterable[str]) -> None:
    """Summary lines under the tables: plain text (never markup), wrapped at spaces."""
    for line in lines:
        console.print(Text(line), soft_wrap=False)


def md_escape(text: str) -> str:
    """Text for Markdown: HTML and Markdown's specials escaped (``greenbench.markdown.escape``)."""
    return escape(text)


def to_markdown(sections: Iterable[Section], summary: Iterable[str] = ()) -> str:
    """Every section as a Markdown table with every column (a document has no width to fit),
    its legend in italics under it, then the summary as a list."""
    parts: list[str] = []
    for s in sections:
        parts.append(f"**{md_escape(s.title)}**\n")
        parts.append("| " + " | ".join(md_escape(c.header) for c in s.columns) + " |")
        parts.append("|" + "|".join("--:" if (c.justify or ("right" if c.kind == "number" else "left")) == "right"
                                    else "---" for c in s.columns) + "|")
        parts.extend("| " + " | ".join(md_escape(x) for x in r) + " |" for r in s.rows)
        legend = "; ".join(p for p in (*s.legend, *s.wide_legend) if p)
        if legend:
            parts.append(f"\n_{md_escape(legend)}_")
        parts.append("")
    parts.extend(f"- {md_escape(line)}" for line in summary)
    return "\n".join(parts) + "\n"
