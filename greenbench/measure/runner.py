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
import os
import random
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from pydantic import ValidationError

from greenbench import meters as metermod
from greenbench import profile as prof
from greenbench.carbon.intensity import Intensity
from greenbench.measure import devices as devmod
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
    add_lm_fields,
    build_record,
    flag_fixes,
)
from greenbench.measure.zoo import Ladder, model_dict
from greenbench.meters.base import ESTIMATE, Meter, MeterError
from greenbench.workloads import (
    Workload,
    WorkloadError,
    WorkloadSkipped,
    build_workload,
)


class RunError(Exception):
    """The run cannot start (bad output folder, mismatched resume); one line for the user."""


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


@dataclass(frozen=True)
class Point:
    model: str
    batch_size: int
    precision: str
    device: str  # as planned: the ladder's or user's spec; as run: the resolved "cpu" or "cuda:N"


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
    extra: dict[str, Any] = field(default_factory=dict)
    after_window: Callable[[WindowDone], None] | None = None  # an observer; not part of settings

    def settings(self) -> dict[str, Any]:
        """What must match for a resumed run to continue an earlier one."""
        return {
            "protocol": self.protocol.to_dict(),
            "meter": self.meter,
            "energy_basis": "gross",
            "models": list(self.models) if self.models else None,
            "batch_sizes": list(self.batch_sizes) if self.batch_sizes else None,
            "precisions": list(self.precisions) if self.precisions else None,
            "devices": list(self.devices) if self.devices else None,
            "threads": self.threads,
        }


def plan(cfg: RunConfig) -> list[Point]:
    lad = cfg.ladder
    models = cfg.models or tuple(m.name for m in lad.models)
    for name in models:
        lad.model(name)  # raises ZooError naming the known models
    return [
        Point(m, b, p, d)
        for d in (cfg.devices or lad.devices)
        for m in models
        for p in (cfg.precisions or lad.precisions)
        for b in (cfg.batch_sizes or lad.batch_sizes)
    ]


def _open_profile(cfg: RunConfig) -> prof.Profile:
    path = cfg.out_path
    if not path.parent.is_dir():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunError(f"{path.parent}: cannot create the output folder: {e.strerror or e}") from None
    settings = cfg.settings()
    if path.exists() and not cfg.force:
        if not cfg.resume:
            raise RunError(
                f"{path} exists: pass --resume to finish it, or --force to measure it again"
            )
        old = prof.load(path)
        if old.ladder.get("name") != cfg.ladder.name:
            raise RunError(f"{path} holds ladder {old.ladder.get('name')!r}, not {cfg.ladder.name!r}")
        definition = cfg.ladder.model_dump(mode="json", exclude={"source"})
        if old.ladder.get("definition") != definition:
            raise RunError(
                f"{path}: ladder {cfg.ladder.name!r} was changed since this profile was started; "
                "pass --force to start over"
            )
        if old.settings != settings:
            changed = sorted(k for k in settings if old.settings.get(k) != settings[k])
            raise RunError(
                f"{path} was measured with other settings ({', '.join(changed)}); "
                "resume with the same options, or pass --force to start over"
            )
        return old
    try:  # fail now, not after the first model has been measured (and leave any old file alone)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise RunError(f"{path}: cannot write the profile: {e.strerror or e}") from None
    now = prof.utc_now()
    return prof.Profile(
        greenbench_version=devmod._version("greenbench") or "0+unknown",
        created_utc=now,
        updated_utc=now,
        ladder={"name": cfg.ladder.name, "source": cfg.ladder.source,
                "definition": cfg.ladder.model_dump(mode="json", exclude={"source"})},  # resume checks it
        settings=settings,
        provenance=devmod.provenance(),
        carbon=cfg.intensity.to_dict(),
    )


class _Clock:
    """ETA from the mean seconds per finished window."""

    def __init__(self, total: int):
        self.total, self.done, self.t0 = total, 0, time.monotonic()

    def tick(self) -> float | None:
        self.done += 1
        rate = (time.monotonic() - self.t0) / self.done
        return rate * (self.total - self.done)


def run_profile(cfg: RunConfig, on_event: Callable[[Event], None] | None = None) -> prof.Profile:
    """Measure every unfinished point of the plan, saving after each group. Returns the profile."""
    emit = on_event or (lambda e: None)
    points = plan(cfg)
    if cfg.threads is not None:
        devmod.set_threads(cfg.threads)  # before provenance, training and every window
    # Records name the device that ran ("cpu", "cuda:0"), not the request ("auto").
    resolved = {spec: devmod.resolve(spec) for spec in dict.fromkeys(p.device for p in points)}
    for device in resolved.values():
        if device.note:
            emit(Event("note", device.note))
    points = list(dict.fromkeys(
        Point(p.model, p.batch_size, p.precision, resolved[p.device].spec) for p in points))
    devices_by_spec = {d.spec: d for d in resolved.values()}
    profile = _open_profile(cfg)
    for spec, idle in profile.idle.items():  # resuming: same names must mean the same devices
        now = devices_by_spec.get(spec)
        if now is not None and idle.get("uuid") != now.uuid:
            raise RunError(f"{cfg.out_path}: {spec} was {idle.get('device_name')} ({idle.get('uuid')}) "
                           f"and is now {now.name} ({now.uuid}); resume with the same devices visible")
    # Failed or skipped points are tried again on resume (an OOM may have been transient).
    profile.records = [r for r in profile.records if r.status == "ok"]
    done_keys = profile.finished_keys()
    todo = [p for p in points if prof.point_key(cfg.ladder.name, p.model, p.batch_size, p.precision, p.device) not in done_keys]
    if done_keys and cfg.resume:
        emit(Event("note", f"resuming: {len(done_keys)} point(s) already finished, {len(todo)} to go"))
    clock = _Clock(len(todo) * cfg.protocol.repeats)
    _warn_if_host_busy(profile, emit)
    emit(Event("start", f"{len(todo)} operating point(s)", total=clock.total))
    by_device: dict[str, list[tuple[str, str, list[int]]]] = {}
    for p in todo:
        groups = by_device.setdefault(p.device, [])
        for model, precision, batches in groups:
            if (model, precision) == (p.model, p.precision):
                batches.append(p.batch_size)
                break
        else:
            groups.append((p.model, p.precision, [p.batch_size]))

    def finished(spec: str, idle: dict | None, records: list[prof.Record]) -> None:
        if idle is not None:
            profile.idle[spec] = idle
        profile.records.extend(records)
        prof.save(profile, cfg.out_path)  # every finished group is on disk at once
        for r in records:
            emit(Event("point", record=r, done=clock.done, total=clock.total))

    parallel = cfg.parallel
    if parallel is None:
        parallel = len(by_device) > 1 and all(devices_by_spec[d].is_cuda for d in by_device)
    if parallel:
        _run_parallel(cfg, profile, by_device, devices_by_spec, clock, emit, finished)
    else:
        for spec, groups in by_device.items():
            _sweep_device(cfg, profile, devices_by_spec[spec], spec, groups, clock, emit, finished)
    profile.complete = True
    prof.save(profile, cfg.out_path)
    return profile


def _warn_if_host_busy(profile: prof.Profile, emit) -> None:
    """Say at once when other processes load the CPU: on a small shared machine they slow torch's
    thread pool by 10-30x and make every timing (and a CPU estimate) noisy."""
    others = other_cores_now()
    cores = profile.provenance.get("cpu_affinity_count") or profile.provenance.get("cpu_count")
    if others is None or not cores or others < HOST_BUSY_MIN_CORES:
        return
    threads = profile.provenance.get("torch_threads")
    emit(Event("warning", f"other processes keep about {others:.1f} of this machine's {cores} CPU "
                          f"cores busy: timings will be noisy; close them, or keep --threads "
                          f"(now {threads}) below the free cores"))


def _sweep_device(cfg: RunConfig, profile: prof.Profile, device: devmod.Device, spec: str,
                  groups: list[tuple[str, str, list[int]]], clock: _Clock, emit,
                  finished: Callable[[str, dict | None, list[prof.Record]], None],
                  host_components: bool = True) -> None:
    """Every group of one device, in order, with that device's meters; ``finished`` after each.

    ``host_components`` False: no host-CPU component meter beside a GPU (with one process per GPU
    each would meter the whole host package, counting it once per process).
    """
    if device.is_cuda:  # the device's own current CUDA device: nothing lands on GPU 0 by default
        import torch

        torch.cuda.set_device(device.spec)
    headline, components = _open_device(cfg, profile, device, emit)
    if not host_components and components:
        for m in components:
            m.close()
        components = []
        emit(Event("note", f"{device.spec}: the host CPU is not metered beside it when several GPUs "
                           "measure at once (each process would count the whole host)"))
    try:
        for model, precision, batches in groups:
            records = _measure_group(cfg, profile, model, precision, device, spec,
                                     headline, components, batches, clock, emit)
            finished(spec, profile.idle.get(spec), records)
    finally:
        for m in [headline, *components]:
            m.close()


def _child_main(cfg: RunConfig, profile: prof.Profile, device: devmod.Device, spec: str,
                groups: list, total: int, queue) -> None:
    """One device's sweep in its own process: events and finished records go to the parent."""
    try:
        if cfg.threads is not None:
            devmod.set_threads(cfg.threads)
        clock = _Clock(total)
        _sweep_device(cfg, profile, device, spec, groups, clock, lambda e: queue.put(("event", spec, e)),
                      lambda s, idle, recs: queue.put(("records", s, idle, recs)), host_components=False)
        queue.put(("done", spec))
    except KeyboardInterrupt:
        queue.put(("done", spec))
    except BaseException as e:  # noqa: BLE001 - reported to the parent as one line
        queue.put(("error", spec, _one_line(e)))


def _run_parallel(cfg: RunConfig, profile: prof.Profile, by_device: dict, devices_by_spec: dict,
                  clock: _Clock, emit, finished) -> None:
    """One process per device, all measuring at once; only this process writes the profile."""
    import multiprocessing as mp
    import queue as queuemod

    ctx = mp.get_context("spawn")  # a fresh interpreter: no CUDA state inherited across a fork
    q = ctx.Queue()
    procs = {}
    child_cfg = replace(cfg, after_window=None)  # an observer runs in this process only
    for spec, groups in by_device.items():
        windows = sum(len(b) for _, _, b in groups) * cfg.protocol.repeats
        procs[spec] = ctx.Process(target=_child_main, name=f"greenbench-{spec}", daemon=True,
                                  args=(child_cfg, profile, devices_by_spec[spec], spec, groups, windows, q))
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


def _open_device(cfg: RunConfig, profile: prof.Profile, device: devmod.Device, emit) -> tuple[Meter, list[Meter]]:
    spec = device.spec
    headline, components = metermod.select_meters(
        device.uuid or device.spec, prefer=cfg.meter, country_iso_code=cfg.country_iso_code
    )
    info = headline.info()
    if not info.available:
        emit(Event("warning", f"{device.spec}: no energy meter ({info.reason}); energy will be null"))
    elif info.method == "estimate":
        emit(Event("warning", f"{device.spec}: energy is an estimate ({info.reason})"))
    if spec in profile.idle:  # resumed run: keep the baseline measured with the finished points
        return headline, components
    meters = [headline, *components]
    measured_utc = prof.utc_now()
    idle_reason = None
    try:
        idle = measure_idle(meters, cfg.protocol.idle_s) if cfg.protocol.idle_s > 0 else []
    except MeterError as e:  # no baseline, said so; the windows are tried all the same
        idle, idle_reason = [], str(e)
        emit(Event("warning", f"{spec}: the idle baseline failed ({e}); net energy will be null"))
    read_cost_s = getattr(headline, "read_cost_s", lambda: None)()
    profile.idle[spec] = {
        "device": device.spec,
        "device_name": device.name,
        "uuid": device.uuid,
        "measured_utc": measured_utc,  # the cold baseline, before the sweep; "warm" follows
        "duration_s": cfg.protocol.idle_s,
        "meters": _idle_rows(idle),
        "reason": idle_reason,
        "update_period_s": headline.update_period_s(),
        "read_cost_s": read_cost_s,  # one read of the headline counter, as observed here
        "power_limit_w": headline.power_limit_w(),
        "meter": _info_dict(headline),  # read again after the idle window: detection has run
        "components": [_info_dict(m) for m in components],
        "warm": [],
    }
    return headline, components


def _info_dict(meter: Meter) -> dict[str, Any]:
    """A meter's info for the profile; for an estimate, what it rests on (CodeCarbon's CPU model,
    TDP and RAM power), so that the estimate can be checked."""
    info = meter.info()
    details = dict(info.details)
    estimate = getattr(meter, "estimate_provenance", None)
    if estimate is not None:
        details.update(estimate())
    return info.__dict__ | {"details": details}


def _idle_rows(readings) -> list[dict[str, Any]]:
    return [
        {"domain": r.domain, "method": r.method,
         "power_w": (r.energy_j / r.duration_s) if r.valid and r.duration_s > 0 else None,
         "reason": r.reason, "flags": list(r.flags)}
        for r in readings
    ]


def _warm_idle(cfg: RunConfig, profile: prof.Profile, spec: str, model: str, precision: str,
               meters: list[Meter], emit) -> None:
    """The idle baseline right after a model ran, which net energy uses: a GPU stays far above
    its cold idle for minutes after load. Not for an estimate (CodeCarbon's idle is its model)."""
    if cfg.protocol.idle_s <= 0 or not meters or meters[0].method in (ESTIMATE, "unavailable"):
        return
    measured_utc = prof.utc_now()
    entry: dict[str, Any] = {"measured_utc": measured_utc, "duration_s": cfg.protocol.idle_s,
                             "after": f"{model} {precision}"}
    try:
        entry["meters"] = _idle_rows(measure_idle(meters, cfg.protocol.idle_s))
    except MeterError as e:  # a meter fault here must not cost the windows just measured
        entry.update(meters=[], reason=str(e))
        emit(Event("warning", f"{spec}: the warm idle baseline after {model} failed ({e}); "
                              "net energy uses the cold one"))
    profile.idle.setdefault(spec, {}).setdefault("warm", []).append(entry)


def _failed(cfg: RunConfig, model: str, batch: int, precision: str, device: devmod.Device,
            spec: str, status: str, error: str, params: int | None = None) -> prof.Record:
    return prof.Record(
        ladder=cfg.ladder.name, model=model, params=params, batch_size=batch, precision=precision,
        device=spec, device_name=device.name, device_uuid=device.uuid, status=status, error=error,
        energy_reason=f"not measured: {status}", measured_utc=prof.utc_now(),
        model_spec=model_dict(cfg.ladder.model(model)),
    )


def _build(cfg: RunConfig, model: str, precision: str, device: devmod.Device, emit) -> Workload:
    lad = cfg.ladder
    hub = {} if lad.workload == "embedded" else {"allow_download": cfg.allow_download}
    return build_workload(
        lad.workload,
        **lad.builder_kwargs(model),
        **hub,
        precision=precision,
        device=device.spec,
        cache_dir=cfg.cache_dir,
        on_note=lambda text: emit(Event("note", text)),
    )


def _measure_group(cfg, profile, model, precision, device, spec, headline, components,
                   batches, clock, emit) -> list[prof.Record]:
    proto = cfg.protocol
    try:
        workload = _build(cfg, model, precision, device, emit)
    except WorkloadSkipped as e:
        emit(Event("warning", f"{model} {precision} on {device.spec}: skipped: {e}"))
        return [_failed(cfg, model, b, precision, device, spec, "skipped", str(e)) for b in batches]
    except (WorkloadError, RuntimeError, MemoryError, OSError, ImportError) as e:
        emit(Event("warning", f"{model} {precision} on {device.spec}: failed: {_one_line(e)}"))
        return [_failed(cfg, model, b, precision, device, spec, "failed", _one_line(e)) for b in batches]
    meters = [headline, *components]
    window_s = required_window_s(proto.min_window_s, proto.min_counter_updates, headline.update_period_s())
    steps: dict[int, Callable] = {}
    scores: dict[int, Any] = {}
    failures: dict[int, str] = {}
    trials: dict[int, list[Trial]] = {b: [] for b in batches}
    phases = workload.phases()  # e.g. a causal LM's prefill, measured in windows of its own
    phase_steps: dict[tuple[str, int], Callable] = {}
    phase_trials: dict[tuple[str, int], list[Trial]] = {(ph, b): [] for ph in phases for b in batches}
    cuda = device.spec if device.is_cuda else None

    def observe(phase: str, batch: int, step: Callable, trial: Trial) -> None:
        if cfg.after_window is not None:
            cfg.after_window(WindowDone(model, precision, batch, device.spec, phase, step,
                                        workload.sync, trial))

    try:
        for b in batches:
            try:
                scores[b] = _checked(workload.evaluate(b))
                steps[b] = workload.make_step(b)
                for ph in phases:
                    phase_steps[(ph, b)] = workload.make_phase_step(ph, b)
            except (RuntimeError, MemoryError, WorkloadError) as e:  # OOM lands here
                failures[b] = _one_line(e)
                _release(device)
                emit(Event("warning", f"{model} batch {b}: failed: {failures[b]} (recorded; going on)"))
        rng = random.Random(f"{proto.seed}:{model}:{precision}:{spec}")
        dither = random.Random(f"dither:{proto.seed}:{model}:{precision}:{spec}")
        period_s = headline.update_period_s() or 0.0
        for _ in range(proto.repeats):
            order = [b for b in batches if b not in failures]
            rng.shuffle(order)
            for b in order:
                try:
                    rate = warm_up(steps[b], workload.sync, proto.warmup_s)
                    trial = run_window(steps[b], workload.sync, meters, window_s,
                                       min_steps=proto.min_steps, cuda_device=cuda,
                                       steps_per_s_hint=rate, dither_s=dither.uniform(0, period_s))
                    observe("request", b, steps[b], trial)
                    for ph in phases:  # same repeat, right after: drifts hit both alike
                        step = phase_steps[(ph, b)]
                        ph_rate = warm_up(step, workload.sync, proto.warmup_s)
                        ph_trial = run_window(step, workload.sync, meters, window_s,
                                              min_steps=proto.min_steps, cuda_device=cuda,
                                              steps_per_s_hint=ph_rate,
                                              dither_s=dither.uniform(0, period_s))
                        phase_trials[(ph, b)].append(ph_trial)
                        observe(ph, b, step, ph_trial)
                except (RuntimeError, MemoryError, MeterError) as e:  # OOM, lost GPU, meter fault
                    failures[b] = _one_line(e)
                    steps.pop(b, None)
                    _release(device)
                    emit(Event("warning", f"{model} batch {b}: failed: {failures[b]} (recorded; going on)"))
                    continue
                trials[b].append(trial)
                eta = clock.tick()
                emit(Event("window", _window_text(model, b, trial), done=clock.done,
                           total=clock.total, eta_s=eta))
    finally:
        params = workload.params
        provenance = workload.provenance()
        shape = workload.request_shape()
        steps.clear()  # the step closures hold the model and its staged inputs: drop them first,
        phase_steps.clear()  # so that close() and the cache release below can free the memory
        workload.close()
        _release(device)
    if any(trials.values()):
        _warm_idle(cfg, profile, spec, model, precision, meters, emit)
    limit_now_w = headline.power_limit_w()  # read again: a change during the sweep is flagged
    records = []
    for b in batches:
        if b in failures:
            records.append(_failed(cfg, model, b, precision, device, spec, "failed", failures[b], params))
        else:
            try:
                records.append(build_record(cfg, profile, model, params, b, precision, device, spec,
                                            scores[b], trials[b], provenance, limit_now_w))
            except (ValueError, ValidationError) as e:  # a non-finite figure: record it, go on
                records.append(_failed(cfg, model, b, precision, device, spec, "failed",
                                       f"could not summarise the windows: {_one_line(e)}", params))
                continue
            if shape is not None:
                add_lm_fields(records[-1], shape, phase_trials.get(("prefill", b), []), trials[b])
            for code, fix in flag_fixes(records[-1]):
                r = records[-1]
                emit(Event("flag", f"{r.model} b{r.batch_size} {r.precision} {r.device}", code=code, fix=fix))
    return records


def _checked(score):
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
    energy = f"{r.energy_j / items:.3g} J/item ({r.method})" if r.valid and items else "energy n/a"
    return f"{model} b{batch}: {items / trial.window_s:,.0f} items/s, {energy}"
