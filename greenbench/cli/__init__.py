"""The command line: a thin layer that parses options, calls one library function, renders."""

from __future__ import annotations

import os
import sys
import types

import click
import typer

from greenbench.cli.carbon import HELP as CARBON_HELP
from greenbench.cli.carbon import carbon_app
from greenbench.cli.command import Command, CompareCommand, Group, extra_argument_hint
from greenbench.cli.common import CONTEXT_SETTINGS, EXIT_CODES_HELP, Exit
from greenbench.cli.compare import HELP as COMPARE_HELP
from greenbench.cli.compare import compare_command
from greenbench.cli.env import env_command
from greenbench.cli.fit import HELP as FIT_HELP
from greenbench.cli.fit import fit_command
from greenbench.cli.merge import HELP as MERGE_HELP
from greenbench.cli.merge import merge_command
from greenbench.cli.price import HELP as PRICE_HELP
from greenbench.cli.price import price_command
from greenbench.cli.profile import HELP as PROFILE_HELP
from greenbench.cli.profile import profile_command
from greenbench.cli.report import HELP as REPORT_HELP
from greenbench.cli.report import report_command
from greenbench.cli.simulate import HELP as SIMULATE_HELP
from greenbench.cli.simulate import simulate_command
from greenbench.cli.zoo import zoo_command

_typer_click: types.ModuleType
try:  # recent Typer vendors its own copy of click: its exceptions are not click's
    from typer._click import exceptions as _typer_click
except ImportError:  # pragma: no cover - older Typer uses click itself
    _typer_click = click.exceptions

_CLICK_ERRORS = (click.ClickException, _typer_click.ClickException)
_NO_ARGS = tuple(m.NoArgsIsHelpError for m in (click.exceptions, _typer_click) if hasattr(m, "NoArgsIsHelpError"))
_ABORT = (typer.Abort, *(m.Abort for m in (click.exceptions, _typer_click) if hasattr(m, "Abort")))

app = typer.Typer(
    name="greenbench",
    cls=Group,
    help="Measure the accuracy, latency and energy of inference over a ladder of models, fit the "
         "carbon-QoE tradeoff, price a green tier, and gate regressions in CI. " + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
    context_settings=CONTEXT_SETTINGS,
    pretty_exceptions_enable=False,
)


def version_line() -> str:
    """greenbench's version and what it runs on, in one line; torch's version is read from its
    package metadata, so that --version answers at once."""
    import platform
    from importlib import metadata

    from greenbench import __version__

    try:
        torch = f", torch {metadata.version('torch')}"
    except metadata.PackageNotFoundError:
        torch = ""
    return f"greenbench {__version__} (python {platform.python_version()}{torch})"


def _show_version(value: bool) -> None:
    if value:
        print(version_line())
        raise typer.Exit(0)


@app.callback()
def _main_options(
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                 help="Print greenbench's version (and python's and torch's) and exit."),
) -> None:
    """The options of greenbench itself (the commands have theirs)."""


# In the order of the data flow: measure, then everything that reads a profile.
app.command("profile", cls=Command, help=PROFILE_HELP,
            short_help="Measure accuracy, latency and energy of every point of a ladder.")(profile_command)
app.command("merge", cls=Command, help=MERGE_HELP,
            short_help="Merge profiles of several hosts or runs into one fleet profile.")(merge_command)
app.command("fit", cls=Command, help=FIT_HELP,
            short_help="Pareto frontier and validated tradeoff curves of a profile.")(fit_command)
app.command("price", cls=Command, help=PRICE_HELP,
            short_help="Price the two-tier green subscription from a profile and a carbon trace.")(price_command)
app.command("simulate", cls=Command, help=SIMULATE_HELP,
            short_help="Replay a year of hourly carbon intensity under the green tier.")(simulate_command)
app.add_typer(carbon_app, name="carbon", help=CARBON_HELP,
              short_help="Grid zones and their 2023 statistics; carbon of a profile; trace checks.")
app.command("compare", cls=CompareCommand, help=COMPARE_HELP,
            short_help="Compare a profile with a baseline; exit 1 on a significant regression.")(compare_command)
app.command("report", cls=Command, help=REPORT_HELP,
            short_help="Self-contained HTML report of a profile (and its changes), with PNG plots.")(report_command)
app.command("env", cls=Command,
            short_help="Devices, the energy method each gets and why; versions.")(env_command)
app.command("zoo", cls=Command, short_help="The ladders (built in and in model_zoo.yaml), validated.")(zoo_command)


def main() -> None:
    """The console script: Typer in non-standalone mode, so usage errors become one line too."""
    try:
        code = app(standalone_mode=False)
    except _NO_ARGS as e:
        print(e.format_message())
        sys.exit(int(Exit.USAGE))
    except _CLICK_ERRORS as e:  # bad option or argument: one line, exit 2
        ctx = getattr(e, "ctx", None)
        message = e.format_message()
        hint = extra_argument_hint(message, sys.argv[1:])
        hint += f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        print(f"greenbench: error: {message}{hint}", file=sys.stderr)
        sys.exit(e.exit_code)
    except _ABORT:
        sys.exit(int(Exit.INTERRUPTED))
    except KeyboardInterrupt:
        sys.exit(int(Exit.INTERRUPTED))
    except Exception as e:  # a bug: one line and exit 4, the traceback with GREENBENCH_DEBUG=1
        if os.environ.get("GREENBENCH_DEBUG"):
            raise
        print(f"greenbench: internal error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
              "(a bug in greenbench; run again with GREENBENCH_DEBUG=1 for the traceback and report it)",
              file=sys.stderr)
        sys.exit(int(Exit.INTERNAL))
    sys.exit(code if isinstance(code, int) else 0)
