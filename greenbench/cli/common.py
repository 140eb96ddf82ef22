"""What every command shares: exit codes, the two consoles, and error mapping."""

from __future__ import annotations

import os
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from typing import Iterator

import typer
from rich.console import Console


class Exit(IntEnum):
    """greenbench's exit codes (also listed in ``greenbench --help``)."""

    OK = 0
    REGRESSION = 1  # compare found a regression
    USAGE = 2  # bad option, bad input file, unknown ladder, unwritable output
    NOTHING_MEASURED = 3  # every operating point failed or was skipped
    INTERNAL = 4  # a bug in greenbench (never 1, which a CI job reads as a regression)
    INTERRUPTED = 130  # Ctrl-C; finished points are saved


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


def _user_errors() -> tuple[type[Exception], ...]:
    from greenbench.carbon.intensity import CarbonError
    from greenbench.errors import GreenbenchError
    from greenbench.measure.devices import DeviceError
    from greenbench.measure.runner import RunError
    from greenbench.measure.zoo import ZooError
    from greenbench.meters.base import MeterError
    from greenbench.profile import ProfileError
    from greenbench.workloads.base import WorkloadError

    return (GreenbenchError, ZooError, RunError, ProfileError, DeviceError, CarbonError, MeterError,
            WorkloadError)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn greenbench's own errors into one line and exit code 2, never a traceback."""
    try:
        yield
    except _user_errors() as e:
        raise fail(str(e)) from None


def default_cache_dir() -> Path:
    env = os.environ.get("GREENBENCH_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "greenbench"
