"""The base of greenbench's own errors, and greenbench's exit codes.

Every error greenbench raises for the user derives from ``GreenbenchError``: its message is one
clear line, and ``option`` names the command-line option it concerns, where one does. The CLI
turns any ``GreenbenchError`` into that line and exit code 2 (``Exit.USAGE``), never a traceback;
anything else is a bug (``Exit.INTERNAL``).
"""

from __future__ import annotations

from enum import IntEnum


class GreenbenchError(Exception):
    """Bad input or a state the user can fix; ``str(e)`` is one line saying what and how.

    ``option`` is the command-line option that fixes it (``"--meter"``), or None.
    """

    def __init__(self, message: str = "", *, option: str | None = None):
        super().__init__(message)
        self.option = option


class OptionError(GreenbenchError, ValueError):
    """A setting's value is not one greenbench accepts (an unknown choice, a number out of
    range); a ``ValueError`` too, since that is what it is."""


class Exit(IntEnum):
    """greenbench's exit codes (also listed in ``greenbench --help``)."""

    OK = 0
    REGRESSION = 1  # compare found a regression
    USAGE = 2  # bad option, bad input file, unknown ladder, unwritable output
    NOTHING_MEASURED = 3  # every operating point failed or was skipped
    INTERNAL = 4  # a bug in greenbench (never 1, which a CI job reads as a regression)
    INTERRUPTED = 130  # Ctrl-C; finished points are saved
