"""The command line: a thin layer that parses options, calls one library function, renders."""

from __future__ import annotations

import typer

from .common import EXIT_CODES_HELP
from .env import env_command
from .profile import HELP as PROFILE_HELP, profile_command
from .zoo import zoo_command

app = typer.Typer(
    name="greenbench",
    help="Measure the accuracy, latency and energy of inference over a ladder of models. " + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("profile", help=PROFILE_HELP)(profile_command)
app.command("env")(env_command)
app.command("zoo")(zoo_command)


def main() -> None:
    app()
