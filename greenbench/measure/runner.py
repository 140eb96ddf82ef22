"""Sweeps a ladder: builds each model once, measures its batch sizes in interleaved rounds, writes
each finished operating point to the profile at once (atomically), and resumes.

The unit of work is a group (model, precision, device): within it, every round visits the batch
sizes in a fresh random order (seeded), so slow drifts (thermal, clocks, other tenants) spread
over all points instead of biasing the last ones. A point is finished when all its repeats are;
an interrupted group is measured again on resume, finished points never are. Several devices may
measure at once, one process each; only this process writes the profile. Records are built from
the measured windows in ``records``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from greenbench import __version__
from greenbench import meters as metermod
from greenbench import profile as prof
from greenbench.carbon.intensity import Intensity
from greenbench.errors import GreenbenchError
from greenbench.measure import devices as devmod
from greenbench.measure import served
from greenbench.measure.protocol import (
    Protocol,
    Trial,
    measure_idle,
    other_cores_now,
    required_window_s,
    run_window,
    warm_up,
)
from greenbench.measure.records import (
    HOST_BUSY_MIN_CORES,
    PointContext,
    add_lm_fields,
    build_record,
    flag_fixes,
)
from greenbench.measure.zoo import Ladder, ServedLadder, Setting, model_dict
from greenbench.meters.base import ESTIMATE, UNAVAILABLE, EnergyReading, Meter, MeterError
from greenbench.workloads import (
    Workload,
    WorkloadError,
    WorkloadSkipped,
    build_workload,
)
from greenbench.workloads.base import Score, TrainingInfo


class RunError(GreenbenchError):
    """The run cannot start (bad output folder, mismatched resume); one line for the user."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run, with what is on disk: ``points_saved`` finished points in ``path``
    (0 and ``saved`` False when the interruption came before the first one was written)."""

    def __init__(self, path: Path, points_saved: int, saved: bool):
        super().__init__(f"interrupted: {points_saved} point(s) saved in {path}" if saved else "interrupted")
        self.path, self.points_saved, self.saved = path, points_saved, saved


def profile_path(out_dir: Path, stem: str, option: str = "--name") -> Path:
    """``out_dir/<stem>.json``, refusing a stem that would put the profile anywhere else (a path
    separator, ``..``, an absolute path, a leading dot, or a symlink pointing out of the folder).
    ``stem`` is a ladder name or --name; ``option`` names it in the message."""
    bad = (not stem or stem != stem.strip() or "/" in stem or "\\" in stem or "\0" in stem
           or stem.startswith(".") or any(ord(c) < 32 for c in stem))
    if bad:
        raise RunError(f"{option} {stem!r}: a profile name is a file name inside --out {out_dir} (no path "
                       "separators, no leading dot); give --name NAME", option=option)
    path = Path(out_dir) / f"{stem}.json"
    try:
        folder, resolved = Path(out_dir).resolve(), path.resolve()
    except (OSError, RuntimeError) as e:  # a symlink loop
        raise RunError(f"{path}: cannot resolve the profile path: {e}") from None
    if resolved.parent != folder:
        raise RunError(f"{path} points outside --out {out_dir} (to {resolved}); choose another --name",
                       option=option)
    return path


# Events for whoever renders progress (the CLI); the library itself never prints.
@dataclass(frozen=True)
class Event:
    kind: str  # "note", "warning", "flag" (a point's validity flag), "start", "window", "point"
    text: str = ""
    code: str = ""  # for "flag": the flag; text then names the point, fix the option to change
    done: int = 0  # windows finished so far
    total: int = 0  # windows planned
    eta_s: float | None = None
    record: prof.Record | None = None
    fix: str = ""


Emit = Callable[[Event], None]
# called after each group: the device, its idle baseline (None: none yet), the group's records
Finished = Callable[[str, prof.IdleBaseline | None, list[prof.Record]], None]


@dataclass(frozen=True)
class Point:
    model: str
    batch_size: int | None  # None: a served point (its load below)
    precision: str
    device: str  # as planned: the ladder's or user's spec; as run: the resolved "cpu" or "cuda:N"
    concurrency: int | None = None
    request_rate_per_s: float | None = None

    @property
    def setting(self) -> Setting:
        return Setting(self.batch_size, self.concurrency, self.request_rate_per_s)


@dataclass(frozen=True)
class Group:
    """The unit of work: one model at one precision on one device, built once; its batch sizes
    are measured in interleaved rounds."""

    model: str
    precision: str
    batch_sizes: tuple[int, ...]
    loads: tuple[Setting, ...] = ()  # a served model's loads (its batch_sizes are empty)

    @property
    def label(self) -> str:
        """What a warm idle baseline is measured after: "model precision"."""
        return f"{self.model} {self.precision}"


@dataclass(frozen=True)
class WindowDone:
    """One measured window, handed to ``RunConfig.after_window`` right after it closes: an observer
    (benchmarks/gpu_check.py) can run a reference window of the same step at once, so that the two
    interleave window by window. Not called in the spawned per-device processes."""

    model: str
    precision: str
    batch_size: int
    device: str  # "cpu" or "cuda:N"
    phase: str  # "request" (the point's own window) or a workload phase ("prefill")
    step: Callable[[], Any] = field(repr=False)
    sync: Callable[[], None] = field(repr=False)
    trial: Trial = field(repr=False)


@dataclass(frozen=True)
class RayOptions:
    """Where and how ``profile --ray`` runs its groups (``greenbench.measure.cluster``)."""

    address: str  # "local": a private cluster on this host, on 127.0.0.1, stopped at the end; "auto"; host:port
    accelerators: tuple[str, ...] = ()  # each GPU group once per Ray accelerator type ("H100", "L4")
    cache_dir: Path | None = None  # on the nodes; None: each node's own ($GREENBENCH_CACHE, ~/.cache)
    # Ray's worker_process_setup_hook ("module.function"), run in every worker before a group; the
    # tests install their fake GPUs with it. Not a CLI option.
    worker_setup: str | None = None
    worker_env: dict[str, str] = field(default_factory=dict)  # the workers' extra environment (tests)


@dataclass
class RunConfig:
    ladder: Ladder
    out_path: Path
    protocol: Protocol
    intensity: Intensity
    cache_dir: Path
    meter: str = "auto"
    models: tuple[str, ...] | None = None
    batch_sizes: tuple[int, ...] | None = None
    precisions: tuple[str, ...] | None = None
    devices: tuple[str, ...] | None = None
    resume: bool = False
    force: bool = False
    allow_download: bool = False  # hub models and datasets: offline unless the user asks
    # One process per device, measuring at once: None = when two or more GPUs (and no CPU) are
    # in the plan; True = always (every device, the CPU too); False = one device after another.
    parallel: bool | None = None
    country_iso_code: str = "USA"  # CodeCarbon's estimate needs a country; not used for carbon
    threads: int | None = None  # torch's intra-op threads for the run (None: leave torch's default)
    export_csv: Path | None = None  # also the records as CSV, rewritten (atomically) with the profile
    extra: dict[str, Any] = field(default_factory=dict)
    after_window: Callable[[WindowDone], None] | None = None  # an observer; not part of settings
    ray: RayOptions | None = None  # groups as Ray tasks on a cluster (greenbench.measure.cluster)

    def settings(self) -> prof.Settings:
        """What must match for a resumed run to continue an earlier one."""
        settings = prof.Settings(
            protocol=prof.ProtocolSettings(**self.protocol.to_dict()),
            meter=self.meter,
            energy_basis="gross",
            models=list(self.models) if self.models else None,
            batch_sizes=list(self.batch_sizes) if self.batch_sizes else None,
            precisions=list(self.precisions) if self.precisions else None,
            devices=list(self.devices) if self.devices else None,
            threads=self.threads,
        )
        if self.ray is not None:  # assigned: written only for a Ray run
            settings.executor = "ray"
            settings.accelerators = list(self.ray.accelerators) or None
        return settings


def plan(cfg: RunConfig) -> list[Point]:
    lad = cfg.ladder
    models = cfg.models or tuple(m.name for m in lad.models)
    for name in models:
        lad.model(name)  # raises ZooError naming the known models
    settings = lad.settings()
    if cfg.batch_sizes:
        if lad.workload == "served-lm":
            raise RunError(f"ladder {lad.name!r} is served: its points are loads "
                           f"({', '.join(s.label for s in settings)}), not batch sizes", option="--batch-size")
        settings = [Setting(batch_size=b) for b in cfg.batch_sizes]
    return [
        Point(m, s.batch_size, p, d, s.concurrency, s.request_rate_per_s)
        for d in (cfg.devices or lad.devices)
        for m in models
        for p in (cfg.precisions or lad.precisions)
        for s in settings
    ]


def open_profile(cfg: RunConfig) -> prof.Profile:
    """The profile to write: the earlier one on --resume (checked to be the same run), else a new
    one. The folder exists and the lock is held (``run_profile``)."""
    path = cfg.out_path
    settings = cfg.settings()
    if path.exists() and not cfg.force:
        if not cfg.resume:
            raise RunError(
                f"{path} exists: pass --resume to finish it, or --force to measure it again"
            )
        old = prof.load(path)
        if old.ladder.name != cfg.ladder.name:
            raise RunError(f"{path} holds ladder {old.ladder.name!r}, not {cfg.ladder.name!r}")
        definition = cfg.ladder.model_dump(mode="json", exclude={"source"})
        if old.ladder.definition != definition:
            raise RunError(
                f"{path}: ladder {cfg.ladder.name!r} was changed since this profile was started; "
                "pass --force to start over"
            )
        changed = _changed_settings(old.settings, settings)
        if changed:
            raise RunError(
                f"{path} was measured with other settings ({', '.join(changed)}); "
                "resume with the same options, or pass --force to start over"
            )
        return old
    now = prof.utc_now()
    return prof.Profile(
        greenbench_version=__version__,
        created_utc=now,
        updated_utc=now,
        ladder=prof.LadderInfo(name=cfg.ladder.name, source=cfg.ladder.source,  # resume checks it
                               definition=cfg.ladder.model_dump(mode="json", exclude={"source"})),
        settings=settings,
        provenance=prof.Provenance(**devmod.provenance()),
        carbon=_carbon(cfg.intensity),
    )


def _make_folder(path: Path) -> None:
    if not path.parent.is_dir():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunError(f"{path.parent}: cannot create the output folder: {e.strerror or e}") from None


def _check_outputs(cfg: RunConfig, since: float, emit: Emit) -> None:
    """Before anything is measured (on --resume too): stale temporary files of killed runs go, and
    the profile and the CSV export can be written (a full disk, a read-only folder, an immutable
    file fail here, naming the file, not after the sweep)."""
    outputs = [cfg.out_path] + ([cfg.export_csv] if cfg.export_csv is not None else [])
    if cfg.export_csv is not None and _same_file(cfg.export_csv, cfg.out_path):
        raise RunError(f"--csv-out {cfg.export_csv} is the profile itself; choose another file",
                       option="--export-csv")
    for path in outputs:
        removed = prof.remove_stale_temps(path, older_than=since)
        if removed:
            emit(Event("note", f"removed {len(removed)} temporary file(s) that an interrupted run left "
                               f"beside {path.name}"))
        prof.check_writable(path)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):
        return False


def _changed_settings(old: prof.Settings, new: prof.Settings) -> list[str]:
    """The settings whose values differ, as written (a key an older file lacks differs too)."""
    was, now = old.model_dump(), new.model_dump()
    return sorted(k for k in {**was, **now} if k not in was or k not in now or was[k] != now[k])


def _carbon(i: Intensity) -> prof.CarbonIntensity:
    return prof.CarbonIntensity(gco2e_per_kwh=i.gco2e_per_kwh, source=i.source, zone=i.zone, year=i.year,
                                basis=i.basis, pue=i.pue)


class Clock:
    """ETA from the mean seconds per finished window."""

    def __init__(self, total: int):
        self.total, self.done, self.t0 = total, 0, time.monotonic()

    def tick(self) -> float | None:
        self.done += 1
        rate = (time.monotonic() - self.t0) / self.done
        return rate * (self.total - self.done)


# How the points are measured once the profile is locked: on this host (``_run_locked``), or as
# tasks on a Ray cluster (``cluster.run_locked``)
Sweep = Callable[[RunConfig, "list[Point]", Emit, "Saved"], prof.Profile]


def run_profile(cfg: RunConfig, on_event: Callable[[Event], None] | None = None,
                sweep: Sweep | None = None) -> prof.Profile:
    """Measure every unfinished point of the plan, saving after each group. Returns the profile.

    The profile is locked for the whole run (a second writer is refused at once, ``ProfileBusy``);
    its folder and the CSV export are checked writable before the first point. Ctrl-C raises
    ``RunInterrupted`` (a KeyboardInterrupt) saying how many finished points are on disk."""
    if cfg.ray is not None and sweep is None:
        raise RunError("a run with RunConfig.ray is measured on the cluster: call "
                       "greenbench.measure.cluster.run_profile")
    emit = on_event or (lambda e: None)
    points = plan(cfg)
    _make_folder(cfg.out_path)
    saved = Saved(cfg.out_path)
    try:
        with prof.WriteLock(cfg.out_path) as lock:
            _check_outputs(cfg, lock.acquired_at, emit)
            return (sweep or _run_locked)(cfg, points, emit, saved)
    except KeyboardInterrupt:
        raise RunInterrupted(cfg.out_path, saved.points, saved.on_disk) from None


@dataclass
class Saved:
    """What of this run is on disk: for the line that follows Ctrl-C."""

    path: Path
    points: int = 0  # finished (ok) points in the file
    on_disk: bool = False  # the file exists (written by this run, or the one resumed)


def _run_locked(cfg: RunConfig, points: list[Point], emit: Emit, saved: Saved) -> prof.Profile:
    if cfg.threads is not None:
        devmod.set_threads(cfg.threads)  # before provenance, training and every window
    # Records name the device that ran ("cpu", "cuda:0"), not the request ("auto").
    resolved = {spec: devmod.resolve(spec) for spec in dict.fromkeys(p.device for p in points)}
    devmod.check_disjoint(list(resolved.values()))
    gpu_groups = [d.spec for d in resolved.values() if d.is_group]
    if gpu_groups and cfg.ladder.workload != "served-lm":
        raise RunError(f"device {gpu_groups[0]} is a group of GPUs, for a served ladder's tensor-parallel server; "
                       f"ladder {cfg.ladder.name!r} runs in-process on one device: give one GPU", option="--device")
    for device in resolved.values():
        if device.note:
            emit(Event("note", device.note))
    points = list(dict.fromkeys(replace(p, device=resolved[p.device].spec) for p in points))
    devices_by_spec = {d.spec: d for d in resolved.values()}
    profile = open_profile(cfg)
    _check_same_devices(cfg.out_path, profile, devices_by_spec)
    todo = points_to_measure(cfg, points, profile, emit, saved)
    clock = Clock(len(todo) * cfg.protocol.repeats)
    _warn_if_host_busy(profile, emit)
    emit(Event("start", f"{len(todo)} operating point(s)", total=clock.total))
    by_device = groups_by_device(todo)

    def write() -> None:
        save_profile(cfg, profile, saved)

    def finished(spec: str, idle: prof.IdleBaseline | None, records: list[prof.Record]) -> None:
        if idle is not None:
            profile.idle[spec] = idle
        profile.records.extend(records)
        write()  # every finished group is on disk at once
        for r in records:
            emit(Event("point", record=r, done=clock.done, total=clock.total))

    parallel = cfg.parallel
    if parallel is None:
        parallel = len(by_device) > 1 and all(devices_by_spec[d].is_cuda for d in by_device)
    if parallel:
        _run_parallel(cfg, profile, by_device, devices_by_spec, clock, emit, finished)
    else:
        for spec, groups in by_device.items():
            sweep_device(cfg, profile, devices_by_spec[spec], groups, clock, emit, finished)
    profile.complete = True
    write()
    return profile


def save_profile(cfg: RunConfig, profile: prof.Profile, saved: Saved,
                 records_json: prof.RecordsJson | None = None) -> None:
    """Write the profile (atomically) and its CSV export, and count what is now on disk."""
    prof.save(profile, cfg.out_path, records_json)
    saved.points, saved.on_disk = len(profile.ok_records()), True
    if cfg.export_csv is not None:
        prof.export_csv(profile, cfg.export_csv)


def points_to_measure(cfg: RunConfig, points: list[Point], profile: prof.Profile, emit: Emit,
                      saved: Saved) -> list[Point]:
    """The planned points the opened profile has not finished. Its failed and skipped records are
    dropped, to be tried again (an OOM may have been transient); on --resume, ``saved`` counts the
    finished ones already on disk."""
    profile.records = [r for r in profile.records if r.status == "ok"]
    if cfg.resume and cfg.out_path.exists() and not cfg.force:
        saved.points, saved.on_disk = len(profile.records), True
    done_keys = profile.finished_keys()
    todo = [p for p in points
            if prof.point_key(cfg.ladder.name, p.model, p.batch_size, p.precision, p.device, p.concurrency,
                              p.request_rate_per_s) not in done_keys]
    if done_keys and cfg.resume:
        emit(Event("note", f"resuming: {len(done_keys)} point(s) already finished, {len(todo)} to go"))
    return todo


def _check_same_devices(path: Path, profile: prof.Profile, devices_by_spec: dict[str, devmod.Device]) -> None:
    """Resuming: the same device names must mean the same devices (a GPU is known by its UUID)."""
    for spec, idle in profile.idle.items():
        now = devices_by_spec.get(spec)
        if now is not None and idle.uuid != now.uuid:
            raise RunError(f"{path}: {spec} was {idle.device_name} ({idle.uuid}) "
                           f"and is now {now.name} ({now.uuid}); resume with the same devices visible")


def groups_by_device(todo: list[Point]) -> dict[str, list[Group]]:
    """The points to measure as groups, by device; groups and batch sizes in plan order."""
    settings: dict[str, dict[tuple[str, str], list[Setting]]] = {}
    for p in todo:
        settings.setdefault(p.device, {}).setdefault((p.model, p.precision), []).append(p.setting)
    return {device: [Group(model, precision, tuple(s.batch_size for s in ss if s.batch_size is not None),
                           tuple(s for s in ss if s.batch_size is None))
                     for (model, precision), ss in groups.items()]
            for device, groups in settings.items()}


def _warn_if_host_busy(profile: prof.Profile, emit: Emit) -> None:
    """Say at once when other processes load the CPU: on a small shared machine they slow torch's
    thread pool by 10-30x and make every timing (and a CPU estimate) noisy."""
    others = other_cores_now()
    cores = profile.provenance.usable_cpu_count
    if others is None or not cores or others < HOST_BUSY_MIN_CORES:
        return
    threads = profile.provenance.torch_threads
    emit(Event("warning", f"other processes keep about {others:.1f} of this machine's {cores} CPU "
                          f"cores busy: timings will be noisy; close them, or keep --threads "
                          f"(now {threads}) below the free cores"))


@dataclass(frozen=True)
class _DeviceRun:
    """What every group measured on one device shares: the run, the profile being written, the
    device and its meters (the headline meter first), the ETA clock and the event sink."""

    cfg: RunConfig
    profile: prof.Profile
    device: devmod.Device
    headline: Meter
    components: tuple[Meter, ...]
    clock: Clock
    emit: Emit

    @property
    def meters(self) -> list[Meter]:
        return [self.headline, *self.components]

    @property
    def cuda_device(self) -> str | None:
        return self.device.spec if self.device.is_cuda and not self.device.is_group else None


@dataclass
class _GroupWindows:
    """One group's steps and measured windows by batch size, filled in while it is measured."""

    batch_sizes: tuple[int, ...]
    phases: tuple[str, ...]  # e.g. a causal LM's prefill, measured in windows of its own
    window_s: float
    steps: dict[int, Callable[[], Any]] = field(default_factory=dict)
    phase_steps: dict[tuple[str, int], Callable[[], Any]] = field(default_factory=dict)
    scores: dict[int, Score] = field(default_factory=dict)
    failures: dict[int, str] = field(default_factory=dict)  # batch size -> one line
    trials: dict[int, list[Trial]] = field(default_factory=dict)
    phase_trials: dict[tuple[str, int], list[Trial]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.trials = {b: [] for b in self.batch_sizes}
        self.phase_trials = {(ph, b): [] for ph in self.phases for b in self.batch_sizes}


@dataclass(frozen=True)
class _WorkloadFacts:
    """What records need from a workload, read before it is closed."""

    params: int | None
    provenance: dict[str, Any]
    request_shape: dict[str, int] | None  # a causal LM's prompt and output tokens
    training: prof.Training | None = None  # how greenbench trained the weights (embedded)


def sweep_device(cfg: RunConfig, profile: prof.Profile, device: devmod.Device, groups: list[Group],
                  clock: Clock, emit: Emit, finished: Finished, host_components: bool = True) -> None:
    """Every group of one device, in order, with that device's meters; ``finished`` after each.

    ``host_components`` False: no host-CPU component meter beside a GPU (with one process per GPU
    each would meter the whole host package, counting it once per process).
    """
    if device.is_cuda and not device.is_group:  # the device's own current CUDA device: nothing lands
        import torch  # on GPU 0 by default (a group's GPUs are its server's: greenbench uses none)

        torch.cuda.set_device(device.spec)
    headline, components = _open_device(cfg, profile, device, emit)
    if not host_components and components:
        for m in components:
            m.close()
        components = []
        emit(Event("note", f"{device.spec}: the host CPU is not metered beside it when several GPUs "
                           "measure at once (each process would count the whole host)"))
    run = _DeviceRun(cfg, profile, device, headline, tuple(components), clock, emit)
    try:
        for group in groups:
            records = _measure_group(run, group)
            finished(device.spec, profile.idle.get(device.spec), records)
    finally:
        for m in run.meters:
            m.close()


def _child_main(cfg: RunConfig, profile: prof.Profile, device: devmod.Device, groups: list[Group],
                total: int, queue) -> None:
    """One device's sweep in its own process: events and finished records go to the parent."""
    spec = device.spec
    try:
        if cfg.threads is not None:
            devmod.set_threads(cfg.threads)
        clock = Clock(total)
        sweep_device(cfg, profile, device, groups, clock, lambda e: queue.put(("event", spec, e)),
                      lambda s, idle, recs: queue.put(("records", s, idle, recs)), host_components=False)
        queue.put(("done", spec))
    except KeyboardInterrupt:
        queue.put(("done", spec))
    except BaseException as e:  # noqa: BLE001 - reported to the parent as one line
        queue.put(("error", spec, _one_line(e)))


def _run_parallel(cfg: RunConfig, profile: prof.Profile, by_device: dict[str, list[Group]],
                  devices_by_spec: dict[str, devmod.Device], clock: Clock, emit: Emit,
                  finished: Finished) -> None:
    """One process per device, all measuring at once; only this process writes the profile."""
    import multiprocessing as mp
    import queue as queuemod

    ctx = mp.get_context("spawn")  # a fresh interpreter: no CUDA state inherited across a fork
    q = ctx.Queue()
    procs = {}
    child_cfg = replace(cfg, after_window=None)  # an observer runs in this process only
    for spec, groups in by_device.items():
        windows = sum(len(g.batch_sizes) for g in groups) * cfg.protocol.repeats
        procs[spec] = ctx.Process(target=_child_main, name=f"greenbench-{spec}", daemon=True,
                                  args=(child_cfg, profile, devices_by_spec[spec], groups, windows, q))
    emit(Event("note", f"measuring {len(procs)} devices at once, one process each: {', '.join(procs)}"))
    errors: list[str] = []
    alive = set(procs)
    try:
        for p in procs.values():
            p.start()
        while alive:
            try:
                msg = q.get(timeout=0.5)
            except queuemod.Empty:
                for spec in [s for s in alive if not procs[s].is_alive()]:
                    alive.discard(spec)  # died without a word (killed, out of host memory)
                    errors.append(f"{spec}: the measuring process ended with code {procs[spec].exitcode}")
                continue
            kind, spec = msg[0], msg[1]
            if kind == "event":
                e = msg[2]
                if e.kind == "window":
                    eta = clock.tick()
                    emit(Event("window", f"[{spec}] {e.text}", done=clock.done, total=clock.total, eta_s=eta))
                elif e.kind not in ("point", "start"):
                    emit(e)
            elif kind == "records":
                finished(spec, msg[2], msg[3])
            else:
                alive.discard(spec)
                if kind == "error":
                    errors.append(f"{spec}: {msg[2]}")
    finally:
        for p in procs.values():
            if p.is_alive():
                p.terminate()
            p.join(timeout=10)
    if errors:
        raise RunError("; ".join(errors) + f" (finished points are saved in {cfg.out_path}; --resume goes on)")


def _open_device(cfg: RunConfig, profile: prof.Profile, device: devmod.Device,
                 emit: Emit) -> tuple[Meter, list[Meter]]:
    """The device's meters, and its cold idle baseline in the profile (unless resumed)."""
    headline, components = metermod.select_meters(
        device.uuid or device.spec, prefer=cfg.meter, country_iso_code=cfg.country_iso_code
    )
    info = headline.info()
    if not info.available:
        emit(Event("warning", f"{device.spec}: no energy meter ({info.reason}); energy will be null"))
    elif info.method == ESTIMATE:
        emit(Event("warning", f"{device.spec}: energy is an estimate ({info.reason})"))
    if device.spec not in profile.idle:  # resumed: keep the baseline measured with the finished points
        profile.idle[device.spec] = _cold_idle(cfg.protocol.idle_s, device, headline, components, emit)
    return headline, components


def _cold_idle(idle_s: float, device: devmod.Device, headline: Meter, components: list[Meter],
               emit: Emit) -> prof.IdleBaseline:
    """The idle baseline before the sweep, with what the meters said about themselves."""
    measured_utc = prof.utc_now()
    idle_reason = None
    try:
        idle = measure_idle([headline, *components], idle_s) if idle_s > 0 else []
    except MeterError as e:  # no baseline, said so; the windows are tried all the same
        idle, idle_reason = [], str(e)
        emit(Event("warning", f"{device.spec}: the idle baseline failed ({e}); net energy will be null"))
    read_cost_s = getattr(headline, "read_cost_s", lambda: None)()
    return prof.IdleBaseline(
        device=device.spec,
        device_name=device.name,
        uuid=device.uuid,
        measured_utc=measured_utc,  # the cold baseline, before the sweep; "warm" follows
        duration_s=idle_s,
        meters=_idle_rows(idle),
        reason=idle_reason,
        update_period_s=headline.update_period_s(),
        read_cost_s=read_cost_s,  # one read of the headline counter, as observed here
        power_limit_w=headline.power_limit_w(),
        meter=_meter_summary(headline),  # read again after the idle window: detection has run
        components=[_meter_summary(m) for m in components],
        warm=[],
    )


def _meter_summary(meter: Meter) -> prof.MeterSummary:
    """A meter's info for the profile; for an estimate, what it rests on (CodeCarbon's CPU model,
    TDP and RAM power), so that the estimate can be checked."""
    info = meter.info()
    details = dict(info.details)
    estimate = getattr(meter, "estimate_provenance", None)
    if estimate is not None:
        details.update(estimate())
    return prof.MeterSummary(domain=info.domain, method=info.method, available=info.available,
                             reason=info.reason, details=details)


def _idle_rows(readings: list[EnergyReading]) -> list[prof.IdleMeterPower]:
    rows = []
    for r in readings:
        power_w = r.energy_j / r.duration_s if r.valid and r.energy_j is not None and r.duration_s > 0 else None
        reason = r.reason
        if power_w is not None and not (math.isfinite(power_w) and 0 <= power_w <= prof.MAX_POWER_W):
            # a counter that went backwards or jumped: no baseline rather than an impossible one
            power_w, reason = None, f"the meter read {power_w:.3g} W at idle, not a power"
        rows.append(prof.IdleMeterPower(domain=r.domain, method=r.method, power_w=power_w, reason=reason,
                                        flags=list(r.flags)))
    return rows


def _warm_idle(run: _DeviceRun, group: Group) -> None:
    """The idle baseline right after a model ran, which net energy uses: a GPU stays far above
    its cold idle for minutes after load. Not for an estimate (CodeCarbon's idle is its model)."""
    idle_s, meters, spec = run.cfg.protocol.idle_s, run.meters, run.device.spec
    if idle_s <= 0 or not meters or meters[0].method in (ESTIMATE, UNAVAILABLE):
        return
    measured_utc = prof.utc_now()
    try:
        entry = prof.WarmIdle(measured_utc=measured_utc, duration_s=idle_s, after=group.label,
                              meters=_idle_rows(measure_idle(meters, idle_s)))
    except MeterError as e:  # a meter fault here must not cost the windows just measured
        entry = prof.WarmIdle(measured_utc=measured_utc, duration_s=idle_s, after=group.label,
                              meters=[], reason=str(e))
        run.emit(Event("warning", f"{spec}: the warm idle baseline after {group.model} failed ({e}); "
                                  "net energy uses the cold one"))
    run.profile.idle.setdefault(spec, prof.IdleBaseline()).add_warm(entry)


def _failed(run: _DeviceRun, group: Group, batch_size: int, status: prof.Status, error: str,
            params: int | None = None) -> prof.Record:
    ladder, device = run.cfg.ladder, run.device
    return prof.Record(
        ladder=ladder.name, model=group.model, params=params, batch_size=batch_size,
        precision=group.precision, device=device.spec, device_name=device.name, device_uuid=device.uuid,
        status=status, error=error, energy_reason=f"not measured: {status}", measured_utc=prof.utc_now(),
        model_spec=model_dict(ladder.model(group.model)),
    )


def _build(run: _DeviceRun, group: Group) -> Workload:
    lad, cfg = run.cfg.ladder, run.cfg
    hub: dict[str, Any] = {} if lad.workload == "embedded" else {
        "allow_download": cfg.allow_download, "on_warning": lambda text: run.emit(Event("warning", text))}
    return build_workload(
        lad.workload,
        **lad.builder_kwargs(group.model),
        **hub,
        precision=group.precision,
        device=run.device.spec,
        cache_dir=cfg.cache_dir,
        on_note=lambda text: run.emit(Event("note", text)),
    )


def _measure_group(run: _DeviceRun, group: Group) -> list[prof.Record]:
    """Build the group's model once, measure its batch sizes in interleaved rounds, then the warm
    idle baseline; one record per batch size (failed ones say why)."""
    if group.loads:
        return _measure_served(run, group)
    where = f"{group.model} {group.precision} on {run.device.spec}"
    try:
        workload = _build(run, group)
    except WorkloadSkipped as e:
        run.emit(Event("warning", f"{where}: skipped: {e}"))
        return [_failed(run, group, b, "skipped", str(e)) for b in group.batch_sizes]
    except (WorkloadError, RuntimeError, MemoryError, OSError, ImportError) as e:
        run.emit(Event("warning", f"{where}: failed: {_one_line(e)}"))
        return [_failed(run, group, b, "failed", _one_line(e)) for b in group.batch_sizes]
    proto = run.cfg.protocol
    window_s = required_window_s(proto.min_window_s, proto.min_counter_updates, run.headline.update_period_s())
    windows = _GroupWindows(group.batch_sizes, workload.phases(), window_s)
    try:
        _prepare(run, group, workload, windows)
        _measure_rounds(run, group, workload, windows)
    finally:
        facts = _WorkloadFacts(workload.params, workload.provenance(), workload.request_shape(),
                               _training(_workload_training(workload)))
        windows.steps.clear()  # the step closures hold the model and its staged inputs: drop them first,
        windows.phase_steps.clear()  # so that close() and the cache release below can free the memory
        workload.close()
        _release(run.device)
    if any(windows.trials.values()):
        _warm_idle(run, group)
    return _records(run, group, windows, facts)


def _measure_served(run: _DeviceRun, group: Group) -> list[prof.Record]:
    """A served model's loads (measure/served.py), on this device's meters."""
    lad = run.cfg.ladder
    assert isinstance(lad, ServedLadder)
    clock = run.clock

    def context(model: str, precision: str, load: Setting, facts: dict[str, Any]) -> PointContext:
        cfg = run.cfg
        return PointContext(
            ladder=lad.name, model=model, model_spec=model_dict(lad.model(model)), params=None, batch_size=None,
            precision=precision, device=run.device, protocol=cfg.protocol, intensity=cfg.intensity,
            idle=run.profile.idle.get(run.device.spec) or prof.IdleBaseline(), provenance=run.profile.provenance,
            workload=facts, power_limit_now_w=run.headline.power_limit_w(), concurrency=load.concurrency,
            request_rate_per_s=load.request_rate_per_s)

    def window(text: str) -> None:
        eta_s = clock.tick()
        run.emit(Event("window", text, done=clock.done, total=clock.total, eta_s=eta_s))

    srun = served.ServedRun(
        ladder=lad, protocol=run.cfg.protocol, device=run.device.spec, meters=run.meters,
        gpus=run.device.gpus,
        log_dir=run.cfg.out_path.parent / f"{run.cfg.out_path.stem}-logs", context=context,
        emit_note=lambda t: run.emit(Event("note", t)), emit_warning=lambda t: run.emit(Event("warning", t)),
        emit_window=window, emit_flag=lambda where, code, fix: run.emit(Event("flag", where, code=code, fix=fix)),
        update_period_s=run.headline.update_period_s(), allow_download=run.cfg.allow_download)
    records = served.measure_group(srun, group.model, group.precision, list(group.loads))
    if any(r.status == "ok" for r in records):
        _warm_idle(run, group)
    return records


def _workload_training(workload: Workload) -> TrainingInfo | None:
    # a workload written against the interface before training() existed (duck-typed) has none
    training = getattr(workload, "training", None)
    return training() if callable(training) else None


def _training(info: TrainingInfo | None) -> prof.Training | None:
    if info is None:
        return None
    return prof.Training(source="cache" if info.source == "cache" else "trained", seed=info.seed,
                         torch_threads=info.torch_threads, torch=info.torch)


def _prepare(run: _DeviceRun, group: Group, workload: Workload, windows: _GroupWindows) -> None:
    """Score every batch size once and make its steps; a batch size that fails is recorded."""
    for b in group.batch_sizes:
        try:
            windows.scores[b] = _checked(workload.evaluate(b))
            windows.steps[b] = workload.make_step(b)
            for ph in windows.phases:
                windows.phase_steps[(ph, b)] = workload.make_phase_step(ph, b)
        except (RuntimeError, MemoryError, WorkloadError) as e:  # OOM lands here
            _fail_batch(run, group, windows, b, e)


def _fail_batch(run: _DeviceRun, group: Group, windows: _GroupWindows, batch_size: int,
                e: BaseException) -> None:
    """Record a batch size's failure (out of memory, a lost GPU, a meter fault) and go on."""
    windows.failures[batch_size] = _one_line(e)
    windows.steps.pop(batch_size, None)
    _release(run.device)
    run.emit(Event("warning", f"{group.model} batch {batch_size}: failed: {windows.failures[batch_size]} "
                              "(recorded; going on)"))


def _measure_rounds(run: _DeviceRun, group: Group, workload: Workload, windows: _GroupWindows) -> None:
    """``repeats`` rounds, each over the batch sizes left in a fresh seeded order."""
    proto, clock = run.cfg.protocol, run.clock
    seed = f"{proto.seed}:{group.model}:{group.precision}:{run.device.spec}"
    order_rng, dither_rng = random.Random(seed), random.Random(f"dither:{seed}")
    period_s = run.headline.update_period_s() or 0.0

    def dither_s() -> float:
        return dither_rng.uniform(0, period_s)

    for _ in range(proto.repeats):
        order = [b for b in group.batch_sizes if b not in windows.failures]
        order_rng.shuffle(order)
        for b in order:
            try:
                trial = _repeat(run, group, workload, windows, b, dither_s)
            except (RuntimeError, MemoryError, MeterError) as e:  # OOM, lost GPU, meter fault
                _fail_batch(run, group, windows, b, e)
                continue
            windows.trials[b].append(trial)
            eta_s = clock.tick()
            run.emit(Event("window", _window_text(group.model, b, trial), done=clock.done,
                           total=clock.total, eta_s=eta_s))


def _repeat(run: _DeviceRun, group: Group, workload: Workload, windows: _GroupWindows, batch_size: int,
            dither_s: Callable[[], float]) -> Trial:
    """One repeat of a batch size: its request window, then each phase's right after (drifts hit
    both alike). Returns the request window; the phases' go to ``windows.phase_trials``."""
    step = windows.steps[batch_size]
    trial = _window(run, workload, step, windows.window_s, dither_s())
    _observe(run, group, workload, "request", batch_size, step, trial)
    for ph in windows.phases:
        ph_step = windows.phase_steps[(ph, batch_size)]
        ph_trial = _window(run, workload, ph_step, windows.window_s, dither_s())
        windows.phase_trials[(ph, batch_size)].append(ph_trial)
        _observe(run, group, workload, ph, batch_size, ph_step, ph_trial)
    return trial


def _window(run: _DeviceRun, workload: Workload, step: Callable[[], Any], window_s: float,
            dither_s: float) -> Trial:
    """A warm-up, then one measured window of ``step`` on every meter of the device."""
    proto = run.cfg.protocol
    rate = warm_up(step, workload.sync, proto.warmup_s)
    return run_window(step, workload.sync, run.meters, window_s, min_steps=proto.min_steps,
                      cuda_device=run.cuda_device, steps_per_s_hint=rate, dither_s=dither_s)


def _observe(run: _DeviceRun, group: Group, workload: Workload, phase: str, batch_size: int,
             step: Callable[[], Any], trial: Trial) -> None:
    if run.cfg.after_window is not None:
        run.cfg.after_window(WindowDone(group.model, group.precision, batch_size, run.device.spec, phase,
                                        step, workload.sync, trial))


def _records(run: _DeviceRun, group: Group, windows: _GroupWindows, facts: _WorkloadFacts) -> list[prof.Record]:
    """One record per batch size, in the group's order; a point whose windows cannot be
    summarised (a non-finite figure) is recorded as failed."""
    limit_now_w = run.headline.power_limit_w()  # read again: a change during the sweep is flagged
    records = []
    for b in group.batch_sizes:
        if b in windows.failures:
            records.append(_failed(run, group, b, "failed", windows.failures[b], facts.params))
            continue
        point = _point_context(run, group, b, facts, limit_now_w)
        try:
            r = build_record(point, windows.scores[b], windows.trials[b])
        except (ValueError, ValidationError) as e:  # a non-finite figure: record it, go on
            records.append(_failed(run, group, b, "failed",
                                   f"could not summarise the windows: {_one_line(e)}", facts.params))
            continue
        records.append(r)
        if facts.request_shape is not None:
            add_lm_fields(r, facts.request_shape, windows.phase_trials.get(("prefill", b), []), windows.trials[b])
        for code, fix in flag_fixes(r):
            run.emit(Event("flag", f"{r.model} b{r.batch_size} {r.precision} {r.device}", code=code, fix=fix))
    return records


def _point_context(run: _DeviceRun, group: Group, batch_size: int, facts: _WorkloadFacts,
                   power_limit_now_w: float | None) -> PointContext:
    cfg = run.cfg
    return PointContext(
        ladder=cfg.ladder.name, model=group.model, model_spec=model_dict(cfg.ladder.model(group.model)),
        params=facts.params, batch_size=batch_size, precision=group.precision, device=run.device,
        protocol=cfg.protocol, intensity=cfg.intensity,
        idle=run.profile.idle.get(run.device.spec) or prof.IdleBaseline(),
        provenance=run.profile.provenance, workload=facts.provenance, power_limit_now_w=power_limit_now_w,
        training=facts.training,
    )


def _checked(score: Score) -> Score:
    """A score whose figures are all finite (a NaN perplexity must fail the point, not the file)."""
    bad = {k: v for k, v in score.extra.items() if not math.isfinite(v)}
    if bad:
        raise WorkloadError(f"non-finite quality {bad}: the model overflows at this precision?")
    return score


def _release(device: devmod.Device) -> None:
    """After an out-of-memory error, hand cached blocks back before the next batch size."""
    if device.is_cuda:
        import torch

        torch.cuda.empty_cache()


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".strip()


def _window_text(model: str, batch: int, trial: Trial) -> str:
    r = trial.readings[0]
    items = trial.steps * batch
    energy = "energy n/a"
    if r.valid and r.energy_j is not None and items:
        energy = f"{r.energy_j / items:.3g} J/item ({r.method})"
    return f"{model} b{batch}: {items / trial.window_s:,.0f} items/s, {energy}"
