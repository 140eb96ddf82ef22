"""greenbench report: one self-contained HTML file (and PNG plots) from a profile."""

from __future__ import annotations

from pathlib import Path

import typer

from greenbench.cli.common import (
    EXIT_CODES_HELP,
    err,
    fail,
    load_profile,
    note,
    out,
    user_errors,
)

HELP = f"""Write a self-contained HTML report of PROFILE, with its plots as PNG files beside it.

Tables and plots are inline (no network access); the plots: accuracy against energy per item, latency against batch size, energy per item by model, and with --baseline the changes against it (judged as `greenbench compare` judges them). Estimated energy is labelled as such.

The report is not a gate: it exits 0 whatever changed (use `greenbench compare` in CI).

{EXIT_CODES_HELP}"""


def default_out_dir(profile: Path) -> Path:
    """Beside the profile, as fit's outputs are: <profile folder>/<stem>-report/."""
    return profile.parent / f"{profile.stem}-report"


def report_command(
    profile: Path = typer.Argument(..., help="The profile (JSON) to report on."),
    baseline: Path | None = typer.Option(None, "--baseline", help="A baseline profile: adds the changes against it."),
    out_dir: Path | None = typer.Option(None, "--out", help="Folder for report.html and the PNGs. Default: next to the profile, <profile stem>-report/ (as fit's <stem>-fit/)."),
    fail_on: list[str] | None = typer.Option(None, "--fail-on", metavar="METRIC:THRESHOLD", help="Thresholds for the changes, as in `greenbench compare` (repeatable)."),
    no_stats: bool = typer.Option(False, "--no-stats", help="Judge changes on thresholds alone, as in `greenbench compare`."),
) -> None:
    from greenbench.compare import gate as cmp
    from greenbench.report import html as rep

    folder = out_dir or default_out_dir(profile)
    with user_errors():
        options = cmp.Options(thresholds=cmp.parse_thresholds(fail_on), stats=not no_stats)
        current = load_profile(profile, "profile")
        base = load_profile(baseline, "baseline") if baseline is not None else None
        if folder.exists() and not folder.is_dir():
            raise fail(f"{folder}: exists and is not a folder; pick another with --out")
        result = rep.write_report(current, folder, profile_name=str(profile), baseline=base,
                                  baseline_name=str(baseline), options=options)
    if result.comparison is not None:
        for w in result.comparison.warnings:
            err.print(f"[yellow]warning:[/] {w}", highlight=False)
        out.print(result.comparison.summary_line(), highlight=False, markup=False)
    for name, why in result.missing_plots.items():
        err.print(f"note: {name} not drawn: {why}", highlight=False)
    for path in result.images.values():
        note(f"wrote {path}")
    note(f"wrote {result.html_path}")
