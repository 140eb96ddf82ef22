"""What every command shares: exit codes, the two consoles, and error mapping."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console, ConsoleDimensions

from greenbench.errors import Exit, GreenbenchError

if TYPE_CHECKING:
    from greenbench.profile import Profile

__all__ = ["CONTEXT_SETTINGS", "EXIT_CODES_HELP", "PIPE_WIDTH", "Exit", "check_out_paths", "console_width",
           "default_cache_dir", "err", "error_line", "fail", "load_profile", "note", "out", "same_file", "stdout_format",
           "user_errors", "write_out"]

EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 regression (compare); 2 usage or bad input; "
    "3 nothing could be measured; 4 internal error; 130 interrupted (finished points are kept)."
)

# -h beside --help, on every command (a group's context settings reach its commands).
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}

# Width of a console writing to a pipe or file with no $COLUMNS: wide enough that a --wide table or a
# long summary line reaches a log unbroken (the default tables fit in 80 columns anyway).
PIPE_WIDTH = 220


def console_width(is_terminal: bool, terminal_width: int) -> int:
    """The width tables are laid out for: $COLUMNS when set (users and tests set it), else the
    terminal's, else PIPE_WIDTH for a pipe or file."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return terminal_width if is_terminal else PIPE_WIDTH


class _Console(Console):
    """A Console whose width is decided when it prints, not when it is made: $COLUMNS and the
    stream (a terminal, a pipe, a test's capture) are read at that moment."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if "width" not in kwargs:  # Console fixes $COLUMNS at creation: read it at each print instead
            self._width = None

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size  # the terminal's (or 80 x 25) when no width was fixed
        if self._width is not None:
            return size
        return ConsoleDimensions(console_width(self.is_terminal, size.width), size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


# Results go to stdout; progress, notes and warnings to stderr.
out: Console = _Console(soft_wrap=True)
err: Console = _Console(stderr=True, soft_wrap=True)


def note(message: str) -> None:
    """A note on stderr (a file written, a plot drawn): results alone go to stdout."""
    err.print(message, highlight=False, markup=False)


def stdout_format(**flags: bool) -> str | None:
    """The one format a command prints on stdout instead of its tables (``json=True`` ->
    "json"), or None for the tables; two at once is a usage error."""
    chosen = [name for name, on in flags.items() if on]
    if len(chosen) > 1:
        raise fail(f"{' and '.join('--' + c for c in chosen)}: choose one (each prints to stdout; "
                   "--json-out, --markdown-out and --csv-out write files)")
    return chosen[0] if chosen else None


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file: the same inode where both exist (a hard link, a
    symlink, ``./x`` and ``x``), else the same path once symlinks are resolved."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_out_paths(*paths: Path | None, inputs: Iterable[Path | str | None] = ()) -> None:
    """Before any work, each output file (one line naming it, exit 2): its folder exists and is a
    folder, it is not itself a folder, a FIFO or a device, the disk takes it (a full disk, a
    read-only folder: ``profile.io.check_writable``), it is none of ``inputs`` (a profile given
    as ``--json-out`` of the command that reads it would be replaced by the result), and no two
    outputs are one file. ``inputs`` may hold option values that are a file or a name (``--trace
    DE``, ``--demand flat``): only those that are an existing file count."""
    from greenbench.profile.io import WriteError, check_writable

    given = [p for p in paths if p is not None]
    sources = [Path(p) for p in inputs if p is not None and os.path.exists(p)]
    for n, path in enumerate(given):
        source = next((s for s in sources if same_file(path, s)), None)
        if source is not None:
            same = "" if str(source) == str(path) else f" ({source})"
            raise fail(f"{path}: is an input of this command{same}; writing there would replace it: "
                       "choose another file")
        twice = next((q for q in given[:n] if same_file(path, q)), None)
        if twice is not None:
            raise fail(f"{path}: given for two outputs (also as {twice}); give each its own file")
        try:
            check_writable(path)
        except WriteError as e:
            raise fail(str(e)) from None


def write_out(path: Path, text: str) -> None:
    """Write an output file atomically (``profile.io.write_atomic``: a reader sees the old file or
    the new one, its mode kept, a symlink's target written) and say so on stderr; a write that
    fails is one line naming it."""
    from greenbench.profile.io import WriteError, write_atomic

    try:
        write_atomic(path, text)
    except WriteError as e:
        raise fail(str(e)) from None
    note(f"wrote {path}")


def fail(message: str, code: Exit = Exit.USAGE) -> typer.Exit:
    """Print one clear line on stderr and return the Exit to raise."""
    err.print(f"[bold red]greenbench: error:[/] {message}", markup=True, highlight=False)
    return typer.Exit(int(code))


def error_line(e: GreenbenchError) -> str:
    """The one line for a greenbench error: its message, led by the option it concerns where the
    message does not name it already."""
    message = str(e)
    if e.option and e.option not in message:
        return f"{e.option}: {message}"
    return message


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn greenbench's own errors into one line and exit code 2, never a traceback."""
    try:
        yield
    except GreenbenchError as e:
        raise fail(error_line(e)) from None


def load_profile(path: Path, side: str) -> Profile:
    """A profile, or one line naming the side ("baseline", "candidate", "profile") and saying what
    the file is not (compare and report)."""
    from greenbench import profile as prof

    try:
        return prof.load(path)
    except prof.ProfileError as e:
        hint = ", so not a greenbench profile" if "not JSON" in str(e) else ""
        raise fail(f"{side} {e}{hint}") from None


def default_cache_dir() -> Path:
    from greenbench.measure.devices import default_cache_dir as cache_dir

    return cache_dir()
