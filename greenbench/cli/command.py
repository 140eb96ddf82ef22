"""What every greenbench command shares in its parsing and its help: the Typer classes.

- Help: a flag takes no value, so it shows no type (Typer 0.29's rich help writes ``<bool>`` for
  every flag: its ``display_type_rich`` falls back to the annotation, ``bool``); and a default is
  said once: an option whose help text states its default ("Default: ...", "(default 5)") does not
  also get Typer's "[default: ...]".
- ``CompareCommand``: the spelling `greenbench compare` documented first, ``--markdown FILE`` and
  ``--json FILE``, still works (read as ``--markdown-out FILE``, with a note on stderr), now that
  ``--markdown`` and ``--json`` print to stdout as they do on every other command.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from typer.core import TyperCommand, TyperGroup

__all__ = ["STDOUT_FORMATS", "Command", "CompareCommand", "Group", "extra_argument_hint", "legacy_output_args"]

# The flags that print a format on stdout, and the option that writes it to a file instead.
STDOUT_FORMATS = {"--markdown": "--markdown-out", "--json": "--json-out", "--csv": "--csv-out"}

_STATES_DEFAULT = re.compile(r"\bdefault(:| [^)])", re.IGNORECASE)  # "Default: x", "(default 5)"


def _tidy_help(params: list[Any]) -> None:
    for p in params:
        if getattr(p, "param_type_name", None) != "option":
            continue
        if getattr(p, "is_flag", False) and p.metavar is None:
            p.metavar = ""  # shown as the type column: nothing, for an option that takes no value
        if p.help and _STATES_DEFAULT.search(p.help):
            p.show_default = False


def _argument_names(params: list[Any]) -> None:
    """Arguments named in capitals, as Click and the README write them: Typer 0.29 names an
    argument by its parameter (``profile``) wherever no metavar is given, in the help's rows and in
    errors ("Missing argument 'profile'")."""
    for p in params:
        if getattr(p, "param_type_name", None) == "argument" and p.metavar is None and p.name:
            p.metavar = p.name.upper()


def _usage_piece(p: Any) -> str:
    """An argument on the usage line: ``PROFILE``, ``[LADDER]``, ``FILES...`` (Typer 0.29 writes
    a required one as ``{profile}``, a choice's notation, not an argument's)."""
    name = p.metavar or p.name.upper()
    piece = name if p.required else f"[{name}]"
    return piece + ("..." if p.nargs != 1 else "")


class Command(TyperCommand):
    """A greenbench command: its help without ``<bool>`` and with each default once; its
    arguments in capitals on the usage line, in the help and in errors."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _argument_names(self.params)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for p in self.get_params(ctx):
            if getattr(p, "param_type_name", None) == "argument":
                pieces.append(_usage_piece(p))
            else:
                pieces.extend(p.get_usage_pieces(ctx))
        return pieces

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _tidy_help(self.get_params(ctx))
        super().format_help(ctx, formatter)


class Group(TyperGroup):
    """greenbench and greenbench carbon: the same help as their commands'."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _tidy_help(self.get_params(ctx))
        super().format_help(ctx, formatter)


def _takes_value(params: list[Any]) -> set[str]:
    names: set[str] = set()
    for p in params:
        if getattr(p, "param_type_name", None) == "option" and not getattr(p, "is_flag", False):
            names.update(p.opts)
            names.update(p.secondary_opts)
    return names


def legacy_output_args(args: list[str], takes_value: set[str], positionals: int) -> tuple[list[str], list[str]]:
    """``args`` with ``--markdown FILE`` / ``--json FILE`` read as ``--markdown-out FILE`` /
    ``--json-out FILE`` where the command would otherwise get more than ``positionals``
    positional arguments (the token after the flag is then the file, not a positional); and the
    flags so read. Leftmost first; nothing after ``--`` is touched."""
    candidates: list[int] = []
    count = 0
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            count += len(args) - i - 1
            break
        if a in takes_value:
            i += 2  # the option and its value
            continue
        if a.startswith("-") and a != "-":
            if a in ("--markdown", "--json") and i + 1 < len(args) and not args[i + 1].startswith("-"):
                candidates.append(i)
        else:
            count += 1
        i += 1
    new = list(args)
    rewritten: list[str] = []
    for i in candidates:
        if count <= positionals:
            break
        rewritten.append(new[i])
        new[i] = STDOUT_FORMATS[new[i]]
        count -= 1
    return new, rewritten


class CompareCommand(Command):
    """greenbench compare: BASELINE and CANDIDATE, and the file-taking spelling of its exports."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        args, rewritten = legacy_output_args(args, _takes_value(self.get_params(ctx)), positionals=2)
        for flag in rewritten:
            print(f"greenbench: note: '{flag} FILE' is read as '{STDOUT_FORMATS[flag]} FILE'; {flag} alone now "
                  "prints to stdout (write the new spelling to silence this note)", file=sys.stderr)
        return super().parse_args(ctx, args)


def extra_argument_hint(message: str, argv: list[str]) -> str:
    """For "Got unexpected extra argument (x.md)" after ``--markdown x.md``: the option meant."""
    m = re.search(r"unexpected extra argument(?:s|\(s\))? \((.+?)\)", message)
    if not m:
        return ""
    extra = m.group(1).split()[0]
    for i, a in enumerate(argv[:-1]):
        if a in STDOUT_FORMATS and argv[i + 1] == extra:
            return f"; {a} prints to stdout: to write a file, use {STDOUT_FORMATS[a]} {extra}"
    return ""
