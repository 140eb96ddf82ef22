"""greenbench profile: measure accuracy, latency and energy over a ladder."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from greenbench.cli.common import (
    EXIT_CODES_HELP,
    check_out_paths,
    default_cache_dir,
    err,
    fail,
    note,
    out,
    same_file,
    stdout_format,
    user_errors,
    write_out,
)
from greenbench.cli.profile_view import print_profile, profile_csv, profile_markdown, run_with_progress
from greenbench.cli.tables import Wide
from greenbench.errors import Exit

if TYPE_CHECKING:
    from greenbench.profile import Profile

HELP = f"""Measure each operating point of a ladder: accuracy (95% Wilson interval), latency
per batch (p50/p90/p95/p99), throughput, and energy per item (mean, CV, 95% t interval) with
the method that measured it (nvml_counter, rapl, estimate, or unavailable and null).

With no LADDER, runs the embedded default ladder (MNIST-1D, trained here at first use; offline).
The profile is written after every finished point; --resume finishes an interrupted run.

{EXIT_CODES_HELP}"""


def _threads_help() -> str:
    from greenbench.measure.devices import default_threads

    return (f"torch threads for inference (and first-use training). Default: half the CPUs this "
            f"process may use, here {default_threads()}: torch's one thread per CPU slows 10-30x "
            "on a small machine as soon as another program takes a core. Recorded in the profile.")


THREADS_HELP = _threads_help()


def _precision_help() -> str:
    from greenbench.measure.zoo import PRECISION_TABLE

    embedded = [name for name, p in PRECISION_TABLE.items() if not p.quantised]
    return (f"{', '.join(PRECISION_TABLE)} (repeatable); the embedded ladders run "
            f"{', '.join(embedded)}.")


PRECISION_HELP = _precision_help()


def profile_command(
    ladder: str | None = typer.Argument(None, help="Ladder name (see `greenbench zoo`). Default: mnist1d."),
    zoo: Path | None = typer.Option(None, "--zoo", help="Model zoo YAML. Default: $GREENBENCH_ZOO, else ./model_zoo.yaml if present; built-in ladders always."),
    out_dir: Path = typer.Option(Path("profiles"), "--out", help="Folder for the profile JSON."),
    name: str | None = typer.Option(None, "--name", help="Profile file name in --out, .json added (a .json given is kept, not doubled). Default: the ladder name (+ '-quick')."),
    quick: bool = typer.Option(False, "--quick", help="Smoke run: 3 repeats of 0.25 s windows, 1 s idle; flagged 'quick' in the profile."),
    resume: bool = typer.Option(False, "--resume", help="Finish an interrupted profile without measuring finished points again."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing profile."),
    repeats: int | None = typer.Option(None, "--repeats", min=3, help="Trials per point, at least 3 (default 5; quick 3)."),
    min_window: float | None = typer.Option(None, "--min-window", min=0.01, help="Minimum window in seconds (default 2; quick 0.25)."),
    min_updates: int | None = typer.Option(None, "--min-updates", min=1, help="Minimum energy-counter updates per window (default 20)."),
    warmup: float | None = typer.Option(None, "--warmup", min=0, help="Warm-up seconds before each window (default 0.5)."),
    idle: float | None = typer.Option(None, "--idle", min=0, help="Idle-baseline seconds before the sweep (default 5; 0 turns it off)."),
    max_cv: float = typer.Option(0.05, "--max-cv", min=0, help="Flag points whose energy or throughput CV exceeds this."),
    device: list[str] | None = typer.Option(None, "--device", help="cpu, cuda:N, a GPU UUID, auto, or GPUs joined by + for a served ladder's tensor-parallel server (repeatable). Default: the ladder's (auto: the first visible GPU, else the CPU)."),
    devices: str | None = typer.Option(None, "--devices", help="GPUs by index or UUID, comma-separated (e.g. 0,1 or GPU-8f3e...); 'all' for every visible GPU. Each point is measured on one GPU with that GPU's counter; GPUs joined by + (0+1) are one tensor-parallel server's, their energy summed and each GPU recorded."),
    parallel: bool | None = typer.Option(None, "--parallel/--sequential", help="Measure devices at once, one process each (default: at once when two or more GPUs are given)."),
    ray: str | None = typer.Option(None, "--ray", metavar="ADDRESS", help="Run every group (model, precision, device) as a Ray task on a cluster: 'local' starts one on this host (127.0.0.1, stopped at the end), 'auto' joins the one running here, or HOST:PORT. Needs `pip install 'greenbench[ray]'` on the driver and every node (docs/fleet.md)."),
    accelerator: list[str] | None = typer.Option(None, "--accelerator", metavar="TYPE", help="With --ray: measure each GPU group on this Ray accelerator type (H100, A100, L4; repeatable: once per type). Default: any GPU, its type recorded."),
    download: bool = typer.Option(False, "--download", help="Let hub ladders download models and datasets that are not cached (off: offline)."),
    model: list[str] | None = typer.Option(None, "--model", help="Only these models (repeatable)."),
    batch_size: list[int] | None = typer.Option(None, "--batch-size", min=1, help="Only these batch sizes (repeatable)."),
    precision: list[str] | None = typer.Option(None, "--precision", help=PRECISION_HELP),
    meter: str = typer.Option("auto", "--meter", help="auto, nvml, rapl, codecarbon, none, or fake (a constant-power test meter)."),
    zone: str | None = typer.Option(None, "--zone", help="Grid zone whose 2023 mean intensity converts energy to carbon (default US-MIDA-PJM; see `greenbench env --zones`)."),
    intensity: float | None = typer.Option(None, "--intensity", help="Carbon intensity in gCO2e/kWh (overrides --zone)."),
    basis: str = typer.Option("lca", "--basis", help="Intensity basis: lca (life-cycle) or direct."),
    pue: float = typer.Option(1.0, "--pue", help="Power usage effectiveness applied to carbon (default 1.0)."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Where trained models and data are cached. Default: $GREENBENCH_CACHE or ~/.cache/greenbench."),
    as_json: bool = typer.Option(False, "--json", help="Print the profile document (JSON) on stdout instead of the table."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the tables as Markdown on stdout instead."),
    as_csv: bool = typer.Option(False, "--csv", help="Print the records as CSV (one row per point) on stdout instead."),
    json_out: Path | None = typer.Option(None, "--json-out", metavar="FILE", help="Also write the profile document (JSON) to FILE (the profile itself is in --out)."),
    markdown_out: Path | None = typer.Option(None, "--markdown-out", metavar="FILE", help="Also write the tables as Markdown to FILE."),
    csv_out: Path | None = typer.Option(None, "--csv-out", "--export-csv", metavar="FILE", help="Also write the records as CSV to FILE (one row per point; --export-csv is the older name)."),
    wide: Wide = False,
    seed: int = typer.Option(0, "--seed", help="Seed of the interleaved order of batch sizes."),
    threads: int | None = typer.Option(None, "--threads", min=1, help=THREADS_HELP),
) -> None:
    from greenbench.carbon import intensity as carbon
    from greenbench.measure import runner as runner
    from greenbench.measure import zoo as zoomod
    from greenbench.measure.devices import default_threads
    from greenbench.measure.protocol import QUICK, Protocol
    from greenbench.meters.select import check_prefer

    base = QUICK if quick else Protocol()
    fmt = stdout_format(json=as_json, markdown=markdown, csv=as_csv)
    if name is not None:
        name = name.removesuffix(".json")  # --name x.json: x.json, not x.json.json
        if not name.strip():
            raise fail("--name: give a file name for the profile (e.g. --name my-run), or leave --name out "
                       "for the ladder's name")
    if any(not a.strip() for a in accelerator or []):
        raise fail("--accelerator: give a Ray accelerator type (H100, A100, L4), not an empty one")
    if accelerator and ray is None:
        raise fail("--accelerator pins GPU groups to a Ray accelerator type: give --ray ADDRESS too")
    if ray is not None and parallel is not None:
        raise fail("--parallel/--sequential choose how one host measures its devices; with --ray the cluster "
                   "schedules the groups: leave them out")
    if ray is not None and not ray.strip():
        raise fail("--ray: give 'local', 'auto' or the cluster's HOST:PORT")
    ladder_notes: list[str] = []  # said once every input is known good: no note before an error
    with user_errors():  # the library's own checks speak for --meter, --precision and the protocol
        check_prefer(meter)
        for p in precision or []:
            zoomod.check_precision(p)
        lad = zoomod.get_ladder(ladder, zoo, on_note=ladder_notes.append)
        if not math.isfinite(pue):  # NaN: said apart from carbon's "at least 1.0", which NaN is not
            raise fail(f"--pue {pue}: PUE takes finite numbers of at least 1.0")
        intens = carbon.static_intensity(zone=zone, gco2e_per_kwh=intensity, basis=basis, pue=pue)
        proto = Protocol(
            repeats=repeats or base.repeats,
            min_window_s=min_window or base.min_window_s,
            min_counter_updates=min_updates or base.min_counter_updates,
            warmup_s=base.warmup_s if warmup is None else warmup,
            idle_s=base.idle_s if idle is None else idle,
            max_cv=max_cv, seed=seed, quick=quick,
        )
        cache = cache_dir or default_cache_dir()
        try:  # unusable folders are bad input: say so now, not after the sweep
            cache.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise fail(f"{cache}: cannot use as the cache folder: {e.strerror or e}") from None
        stem = name if name is not None else lad.name + ("-quick" if quick else "")
        out_path = runner.profile_path(out_dir, stem, option="--name" if name is not None else "ladder")
        check_outputs(out_path, json_out=json_out, markdown_out=markdown_out, csv_out=csv_out,
                      resume=resume and not force)
        for line in ladder_notes:
            note(line)
        cfg = runner.RunConfig(
            ladder=lad, out_path=out_path,
            protocol=proto, intensity=intens, export_csv=csv_out,
            cache_dir=cache, meter=meter,
            models=tuple(model) if model else None,
            batch_sizes=tuple(batch_size) if batch_size else None,
            precisions=tuple(precision) if precision else None,
            devices=device_specs(device, devices), resume=resume, force=force,
            allow_download=download, parallel=parallel, threads=threads or default_threads(),
            ray=None if ray is None else runner.RayOptions(
                address=ray.strip(), accelerators=tuple(dict.fromkeys(a.strip() for a in accelerator or [])),
                cache_dir=cache_dir),
        )
        try:
            result = run_with_progress(cfg)
        except KeyboardInterrupt as e:
            if isinstance(e, runner.RunInterrupted) and not e.saved:
                err.print("interrupted before any point finished: nothing was saved", highlight=False)
            else:
                saved = e.points_saved if isinstance(e, runner.RunInterrupted) else "finished"
                err.print(f"interrupted: {saved} point(s) saved in {cfg.out_path}; "
                          "run again with --resume to finish", highlight=False)
            raise typer.Exit(int(Exit.INTERRUPTED)) from None
    if csv_out is not None:  # the runner rewrote it with the profile after every group
        note(f"wrote {csv_out}")
    show_profile(result, fmt, wide=wide, json_out=json_out, markdown_out=markdown_out)
    note(f"profile: {cfg.out_path}")
    if not result.ok_records():
        raise typer.Exit(int(Exit.NOTHING_MEASURED))


def check_outputs(out_path: Path, *, json_out: Path | None, markdown_out: Path | None, csv_out: Path | None,
                  resume: bool) -> None:
    """Before anything is measured or noted: no output is the profile itself, each can be written
    (``check_out_paths``), and a profile to resume is one (a bad one is one line now, not after
    the device notes)."""
    from greenbench import profile as prof

    for option, path in (("--json-out", json_out), ("--markdown-out", markdown_out), ("--csv-out", csv_out)):
        if path is not None and same_file(path, out_path):
            raise fail(f"{option} {path}: is the profile itself (--out and --name make it); choose another file")
    check_out_paths(json_out, markdown_out, csv_out)
    if resume and out_path.exists():
        try:
            prof.load(out_path)
        except prof.ProfileError as e:
            raise fail(f"--resume: {e}") from None


def show_profile(result: Profile, fmt: str | None, *, wide: bool, json_out: Path | None = None,
                 markdown_out: Path | None = None, csv_out: Path | None = None) -> None:
    """The files asked for, then stdout: the tables, or the one format asked for."""
    texts = {"json": result.to_json, "markdown": lambda: profile_markdown(result), "csv": lambda: profile_csv(result)}
    for path, kind in ((json_out, "json"), (markdown_out, "markdown"), (csv_out, "csv")):
        if path is not None:
            write_out(path, texts[kind]())
    if fmt is not None:
        print(texts[fmt](), end="")
        return
    print_profile(out, result, wide=wide)


def device_specs(device: list[str] | None, devices: str | None) -> tuple[str, ...] | None:
    """--device (repeatable) and --devices (comma list: 0,1 / UUIDs / all) -> device specs."""
    specs = list(device or [])
    for item in (devices or "").split(","):
        item = item.strip()
        if not item:
            continue
        if item == "all":
            from greenbench.measure.devices import visible_gpus

            specs.extend(visible_gpus())
        else:  # "0+1": the GPUs of one tensor-parallel server, metered together
            specs.append("+".join(f"cuda:{w.strip()}" if w.strip().isdigit() else w.strip()
                                  for w in item.split("+")))
    if devices is not None and not specs:
        raise fail("--devices: give GPU indices or UUIDs, comma-separated (e.g. 0,1), or all")
    return tuple(dict.fromkeys(specs)) or None


