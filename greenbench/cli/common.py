"""What every command shares: exit codes, the two consoles, and error mapping."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from greenbench.errors import Exit, GreenbenchError

if TYPE_CHECKING:
    from greenbench.profile import Profile

__all__ = ["EXIT_CODES_HELP", "Exit", "default_cache_dir", "err", "error_line", "fail", "load_profile", "out",
           "user_errors"]

EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 regression (compare); 2 usage or bad input; "
    "3 nothing could be measured; 4 internal error; 130 interrupted (finished points are kept)."
)

# Results go to stdout; progress, notes and warnings to stderr.
out = Console(soft_wrap=True)
if not out.is_terminal:  # a pipe or file: do not squeeze tables into 80 columns
    out = Console(soft_wrap=True, width=220)
err = Console(stderr=True, soft_wrap=True)


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
    env = os.environ.get("GREENBENCH_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "greenbench"
