"""Tables that read in an 80-column terminal: the one layout every command's tables share.

A table (a ``Section``) has a compact default set of columns (``--wide`` shows every one), short
headers with the units said once in a legend line under it, and numbers to 3 significant figures,
in one notation down a column. Nothing is ever cut to "…": numbers and headers are whole, text
wraps at its spaces and a name too long for the terminal folds onto more lines (``_layout``); a
table whose numbers alone are wider than the terminal is printed wider. The same sections print
as Markdown (``to_markdown``, every column, HTML escaped).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Literal

import typer
from rich import box
from rich.cells import cell_len
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
    cells stay on one line, in one notation down the column (``_one_notation``) unless ``mixed``:
    a column whose rows hold different quantities (compare's before and after: an accuracy under
    an energy), each cell as it was written. ``wide`` columns are shown with --wide only."""

    header: str
    kind: Kind = "number"
    wide: bool = False
    justify: JustifyMethod | None = None  # default: numbers right, names and text left
    mixed: bool = False


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


# A name folded to fit keeps at least this many columns a line (or its header's longest word):
# narrower, a name reads as a column of fragments.
NAME_FLOOR = 12
# Text (a status, a reason) wraps down to this many columns before any name folds, and only then
# to its longest word: a name whole reads better, and a sentence one word a line reads worst.
TEXT_FLOOR = 12


def _cell_width(text: str) -> int:
    return max((cell_len(line) for line in text.splitlines()), default=0)


def _word_width(text: str) -> int:
    return max((cell_len(w) for w in text.split()), default=0)


def _height(text: str, width: int) -> int:
    """The lines ``text`` takes in a column ``width`` wide, wrapped at spaces and a word longer
    than the column folded (as Rich lays it out; a cost to compare layouts by, not a render)."""
    lines = 0
    for para in text.splitlines() or [""]:
        lines += 1
        used = 0
        for word in para.split():
            n = cell_len(word)
            if used and used + 1 + n <= width:
                used += 1 + n
                continue
            if used:
                lines += 1
            lines += (n - 1) // width if n > width else 0
            used = n - width * ((n - 1) // width) if n > width else n
    return lines


def _cost(kind: Kind, cells: Sequence[str], width: int) -> list[int]:
    """Per cell, the lines it takes at ``width``; a name cut inside a word counts one line more (a
    name folded at its spaces reads better than one split mid-word)."""
    split = kind == "name"
    return [_height(x, width) + (split and _word_width(x) > width) for x in cells]


def _layout(columns: Sequence[Col], cells: Sequence[Sequence[str]], width: int, overhead: int) -> list[int]:
    """Each column's width for a table ``width`` wide (``overhead``: its padding and rules).

    Every column starts at its natural width (its widest cell or header, on one line). A table too
    wide for ``width`` is laid out by the first of these that fits: text wrapped at spaces down to
    TEXT_FLOOR columns, names whole; then names folded too, down to NAME_FLOOR; then text down to
    its longest word. In each, a column gives one column at a time, the one that adds the fewest
    lines to the table (on a tie text first, then the widest). Number columns never give (they
    are short by construction), nor a header's longest word. A table that fits none is wider than
    ``width``: the caller prints it so, rather than cut a number."""
    rows = [[c.header, *col] for c, col in zip(columns, cells, strict=True)]  # the header wraps as its cells do
    natural = [max(_cell_width(x) for x in col) for col in rows]
    if not columns or sum(natural) + overhead <= width:
        return natural
    words = [max(_word_width(x) for x in rows[i]) if c.kind == "text" else natural[i] for i, c in enumerate(columns)]
    soft = [max(words[i], min(natural[i], TEXT_FLOOR)) for i in range(len(columns))]
    folded = [max(_word_width(c.header), min(natural[i], NAME_FLOOR)) if c.kind == "name" else natural[i]
              for i, c in enumerate(columns)]
    text_soft = [soft[i] if c.kind == "text" else natural[i] for i, c in enumerate(columns)]
    stages = (text_soft,  # names whole
              [min(a, b) for a, b in zip(text_soft, folded, strict=True)],
              [min(a, b) for a, b in zip(words, folded, strict=True)])
    widths = natural
    for floors in stages:
        widths = _give(columns, rows, list(natural), floors, sum(natural) + overhead - width)
        if sum(widths) + overhead <= width:
            break
    return widths


def _give(columns: Sequence[Col], rows: Sequence[Sequence[str]], widths: list[int], floors: list[int],
          excess: int) -> list[int]:
    """``widths`` narrowed by ``excess`` columns (or down to ``floors``), one column at a time, each
    time the one whose narrowing adds the fewest lines to the table."""
    costs = [_cost(c.kind, col, w) for c, col, w in zip(columns, rows, widths, strict=True)]
    while excess > 0:
        # per row, the tallest cell and the tallest of the others: a row's height without column i
        tall = [sorted(((costs[j][r], j) for j in range(len(columns))), reverse=True)[:2] for r in range(len(rows[0]))]
        best: tuple[int, bool, int, int] | None = None  # (table height, not text, -width, column)
        trial: list[int] = []
        for i, c in enumerate(columns):
            if widths[i] <= floors[i]:
                continue
            new = _cost(c.kind, rows[i], widths[i] - 1)
            others = [next((h for h, j in t if j != i), 0) for t in tall]
            added = sum(max(n, o) for n, o in zip(new, others, strict=True))
            key = (added, c.kind != "text", -widths[i], i)
            if best is None or key < best:
                best, trial = key, new
        if best is None:
            break
        i = best[3]
        widths[i] -= 1
        costs[i] = trial
        excess -= 1
    return widths


def _new_table(title: str | None) -> Table:
    return Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, show_edge=False,
                 pad_edge=False, collapse_padding=True, header_style="bold")


@lru_cache(maxsize=64)
def _overhead(n: int) -> int:
    """The columns a table of ``n`` columns spends on padding and rules, measured once on a probe
    (not from Rich's private sums); it depends on the table's style alone."""
    probe = _new_table(None)
    for _ in range(n):
        probe.add_column("", width=1)
    console = Console(width=10**4)
    return Measurement.get(console, console.options, probe).maximum - n


def make_table(columns: Sequence[Col], rows: Iterable[Sequence[str]], *, title: str | None = None,
               wide: bool = False, styles: Sequence[str | None] | None = None,
               fit: tuple[Console, int] | None = None) -> tuple[Table, int]:
    """A Rich table of the columns the view shows (every one with ``wide``), and the width it
    needs; each row has a cell for every column of ``columns``, the hidden ones dropped here.
    Cells are plain text: a name with brackets is printed as it is, never read as markup.

    With ``fit``, a (console, width), the table is laid out for that width (``_layout``): text
    wraps and names fold before anything is cut, and nothing ever is; without, every column is
    at its natural width, on one line."""
    keep = [i for i, c in enumerate(columns) if wide or not c.wide]
    cols = [columns[i] for i in keep]
    body = [list(r) for r in rows]
    cells = [_column(columns[i], [row[i] for row in body]) for i in keep]
    overhead = _overhead(len(cols))
    widths = _layout(cols, cells, fit[1] if fit is not None else 10**6, overhead)
    table = _new_table(title)
    for c, w in zip(cols, widths, strict=True):
        justify: JustifyMethod = c.justify or ("right" if c.kind == "number" else "left")
        if c.kind == "number":  # short by construction, and never cut
            table.add_column(c.header, justify=justify, width=w, no_wrap=True)
        else:  # text wraps at its spaces; a name, when it must, folds onto the next lines
            table.add_column(c.header, justify=justify, width=w, overflow="fold")
    for n in range(len(body)):
        table.add_row(*(Text(col[n]) for col in cells), style=None if styles is None else styles[n])
    return table, sum(widths) + overhead


_SCIENTIFIC = re.compile(r"-?\d(?:\.\d+)?e[+-]\d+")
_PLAIN = re.compile(r"-?\d+(?:\.\d+)?")


def _column(col: Col, cells: list[str]) -> list[str]:
    return _one_notation(cells) if col.kind == "number" and not col.mixed else cells


def _one_notation(cells: Sequence[str]) -> list[str]:
    """A number column in one notation: where ``sig`` wrote any cell with an exponent (below
    0.001), the plain decimals beside it (0.00302, 11.3) are written so too (3.02e-03, 1.13e+01),
    to the same significant figures, so that a column reads down. Other cells (grouped totals,
    percentages, "—") are as they were."""
    out = list(cells)
    sci = [_SCIENTIFIC.fullmatch(x) for x in out]
    if not any(sci):
        return out
    digits = max(len(x.split("e")[0].lstrip("-").replace(".", "")) for x, m in zip(out, sci, strict=True) if m)
    for n, x in enumerate(out):
        if not sci[n] and _PLAIN.fullmatch(x) and float(x) != 0:
            out[n] = f"{float(x):.{digits - 1}e}"
    return out


def print_legend(console: Console, parts: Iterable[str | None]) -> None:
    """The legend under a table: what its headers abbreviate and their units, wrapped at spaces."""
    text = "; ".join(p for p in parts if p)
    if text:
        console.print(Text(text, style="dim"), soft_wrap=False)


def print_sections(console: Console, sections: Iterable[Section], wide: bool = False) -> None:
    """Each table and its legend. The default view is laid out for the console's width; --wide
    at its own full width, wider than the console if it must be (for ``less -S`` or a wide
    window), and so is a default table whose numbers alone are wider: nothing is cut to "…"."""
    for s in sections:
        console.print(Text(s.title, style="bold"), soft_wrap=False)  # wrapped at spaces, unlike a table title
        table, needed = make_table(s.columns, s.rows, wide=wide, styles=s.styles,
                                   fit=None if wide else (console, console.width))
        with _at_least(console, needed):
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
        cols = [_column(c, [r[i] for r in s.rows]) for i, c in enumerate(s.columns)]
        parts.extend("| " + " | ".join(md_escape(col[n]) for col in cols) + " |" for n in range(len(s.rows)))
        legend = "; ".join(p for p in (*s.legend, *s.wide_legend) if p)
        if legend:
            parts.append(f"\n_{md_escape(legend)}_")
        parts.append("")
    parts.extend(f"- {md_escape(line)}" for line in summary)
    return "\n".join(parts) + "\n"
