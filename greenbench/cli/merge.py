"""greenbench merge: profiles from several hosts or runs into one fleet profile."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from greenbench.cli.common import (
    EXIT_CODES_HELP,
    check_out_paths,
    fail,
    load_profile,
    note,
    out,
    same_file,
    stdout_format,
    user_errors,
    write_out,
)
from greenbench.cli.tables import Col, Section, Wide, print_lines, print_sections, to_markdown

HELP = f"""Merge PROFILES measured on different hosts or runs (one `greenbench profile` per host, or per task of a Slurm job array) into one profile, written to --out. fit, price and report then read the hardware as one more axis: the frontier spans every host's accelerators, and price may choose H on one GPU type and R on another.

Each point's device names its host (gpu-a:cuda:0), so the same model on two hosts is two points. Refused, with one line: another ladder (or the ladder defined differently), another protocol (quick, repeats, min window, warm-up, counter updates, min steps, idle time or energy basis; the seed and --max-cv may differ), or the same point of the same host and GPU in two files. Every record is kept, failed ones too, and names its source: provenance.sources holds each file's host, provenance, settings and idle baselines. See docs/fleet.md.

{EXIT_CODES_HELP}"""


def merge_command(
    profiles: list[Path] = typer.Argument(..., help="The profiles (JSON) to merge, one or more."),
    out_path: Path = typer.Option(..., "--out", "-o", metavar="FILE", help="The merged profile to write (JSON)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    as_json: bool = typer.Option(False, "--json", help="Print what came from where as JSON (versioned) on stdout instead of the table."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the table as Markdown on stdout instead."),
    wide: Wide = False,
) -> None:
    from greenbench.profile import MAX_PROFILE_BYTES
    from greenbench.profile import merge as mg

    fmt = stdout_format(json=as_json, markdown=markdown)
    for i, p in enumerate(profiles):
        twice = next((q for q in profiles[:i] if same_file(p, q)), None)
        if twice is not None:
            raise fail(f"{p}: given twice (also as {twice}); give each profile once")
    if out_path.exists() and not force:
        raise fail(f"{out_path} exists: pass --force to replace it, or choose another --out")
    check_out_paths(out_path, inputs=profiles)
    with user_errors():
        loaded = [load_profile(p, "profile") for p in profiles]
        merged = mg.merge(loaded, [str(p) for p in profiles])
        summary = mg.summarize(merged)
    text = merged.to_json()
    if len(text.encode("utf-8")) > MAX_PROFILE_BYTES:
        raise fail(f"{out_path}: the merged profile would be {len(text) / 2**20:.0f} MiB, beyond the "
                   f"{MAX_PROFILE_BYTES // 2**20} MiB a profile may hold; merge fewer files")
    write_out(out_path, text)
    for line in summary.notes:
        note(f"note: {line}")
    if fmt == "json":
        print(json.dumps(summary.to_dict(str(out_path)), indent=1, allow_nan=False))
        return
    section = Section(
        f"merged into {out_path}",
        [Col("file", "name"), Col("host", "name"), Col("devices", "text"), Col("points"), Col("ok"),
         Col("as", "name", wide=True)],
        [[s.file, s.host, ", ".join(s.device_names) or "—", str(s.points), str(s.ok), ", ".join(s.devices) or "—"]
         for s in summary.sources],
        legend=["devices: the accelerators (or CPUs) each file measured on; as: the device names its points "
                "have in the merged profile (--wide)"],
    )
    if fmt == "markdown":
        print(to_markdown([section], [summary.line]), end="")
        return
    print_sections(out, [section], wide=wide)
    print_lines(out, [summary.line])
