"""Profiling on a Ray cluster (``greenbench profile --ray ADDRESS``): every group (model,
precision, placement) is a Ray task that asks for what it needs (CPUs, or ``num_gpus`` and an
accelerator type) and runs on whichever node has it.

- **On the node**, the task meters the GPUs Ray gave it by UUID (Ray's CUDA_VISIBLE_DEVICES shows
  it only those), with the same protocol, cold and warm idle baselines and record building as a
  run on one host (``runner.sweep_device``). It streams its progress and, at the end, its records
  back (a streaming generator: ``("placed", ...)`` first, then events, then the records).
- **The driver** alone writes the profile, atomically after every group, as a run on one host does:
  Ctrl-C keeps every finished point, ``--resume`` finishes the rest on the cluster (matched by
  placement, not by where a point landed).
- **Where a point ran**: its device is ``<host>:<device>`` (``gpu-a:cuda:3``; ``cuda:N`` as the node
  counts its GPUs), and it carries ``host``, ``accelerator_type`` (the node's Ray accelerator type)
  and ``device_uuid``. ``provenance.sources`` holds one entry per node (its provenance, idle
  baselines and device names), laid out as ``greenbench merge`` lays out its inputs, so a Ray
  profile merges with others and ``merge``'s summary reads it.
- **A lost task** (its worker killed, its node gone, an error in it) fails that group's points with
  the reason; the sweep goes on. A group no node can ever run (an accelerator type the cluster
  lacks) fails at once rather than wait forever.
- **Loopback**: a cluster on this host (``local``, or an address on 127.0.0.1) is reached on
  127.0.0.1 only; ``local`` starts one there and stops it at the end.

Ray is imported here only: nothing else of greenbench imports this module without ``--ray``.
"""

from __future__ import annotations

import os
import queue
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from greenbench import __version__
from greenbench import profile as prof
from greenbench.measure import devices as devmod
from greenbench.measure import runner
from greenbench.measure.records import FLAG_FIXES
from greenbench.measure.runner import (
    Clock,
    Emit,
    Event,
    Group,
    Point,
    RayOptions,
    RunConfig,
    RunError,
    Saved,
    groups_by_device,
    open_profile,
    points_to_measure,
    save_profile,
    sweep_device,
)
from greenbench.measure.zoo import model_dict
from greenbench.profile.merge import short_host, sources_of

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# Ray reaches a node by the address it sees itself at from outside; on one host that is its
# network address, not 127.0.0.1. Ray's own switch for single-host clusters keeps it on loopback.
_RAY_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


class ClusterError(RunError):
    """The cluster cannot be used (Ray missing, no cluster at the address); one line."""


# --- placements: what a group asks the cluster for -------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """What one group's task asks for: the CPU, or ``gpus`` GPUs, of one accelerator type or any."""

    gpus: int = 0  # 0: a CPU group
    accelerator: str | None = None  # Ray's accelerator type ("H100", "L4"); None: any GPU

    @property
    def name(self) -> str:
        """As records and resume know it: "cpu", "gpu", "gpu:L4", "2xgpu", "2xgpu:H100"."""
        if not self.gpus:
            return "cpu"
        base = "gpu" if self.gpus == 1 else f"{self.gpus}xgpu"
        return f"{base}:{self.accelerator}" if self.accelerator else base

    def options(self, threads: int | None) -> dict[str, Any]:
        """Ray's task options. A GPU group takes one CPU beside its GPUs (its host-side work); a
        CPU group the threads it runs."""
        opts: dict[str, Any] = {"num_cpus": 1 if self.gpus else max(1, threads or 1), "num_gpus": self.gpus}
        if self.accelerator:
            opts["accelerator_type"] = self.accelerator
        return opts

    def fits(self, resources: dict[str, float], threads: int | None) -> bool:
        """Whether a node with these (total) resources could ever run the task."""
        if resources.get("GPU", 0) < self.gpus or resources.get("CPU", 0) < self.options(threads)["num_cpus"]:
            return False
        return not self.accelerator or resources.get(f"accelerator_type:{self.accelerator}", 0) > 0

    def unfit_reason(self, threads: int | None) -> str:
        if not self.gpus:
            return (f"no live node of the Ray cluster has {self.options(threads)['num_cpus']} CPU(s) for "
                    "--threads; give --threads at most a node's CPUs")
        what = f"{self.gpus} GPU(s)" + (f" of accelerator type {self.accelerator}" if self.accelerator else "")
        return f"no live node of the Ray cluster has {what} and a CPU"


def placements(spec: str, cluster_has_gpus: bool, accelerators: tuple[str, ...]) -> list[Placement]:
    """The placements a ladder's device stands for on a cluster: ``cpu``; ``auto`` (a GPU where the
    cluster has any, else the CPU); a GPU (``cuda``, ``cuda:N``, a UUID: Ray chooses which); GPUs
    joined by "+" (one tensor-parallel server: that many GPUs of one node). A GPU placement is
    repeated for every accelerator type asked for."""
    if spec == "cpu" or (spec == "auto" and not cluster_has_gpus):
        return [Placement()]
    if not (spec in ("auto", "cuda", "gpu") or spec.startswith(("cuda:", "GPU-", "MIG-"))):
        raise ClusterError(f"unknown device {spec!r} for a Ray run (use cpu, auto, cuda, or GPUs joined by '+')",
                           option="--device")
    gpus = len(spec.split("+"))
    return [Placement(gpus, a) for a in accelerators] if accelerators else [Placement(gpus)]


# --- on the node ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placed:
    """What a task says first: where it landed."""

    node_id: str
    hostname: str
    local: str  # the device as the node names it: "cpu", "cuda:3", "cuda:0+cuda:1"
    spec: str  # as torch in the task sees it ("cuda:0"): what the task's events name
    device_name: str
    uuid: str | None
    pid: int
    provenance: dict[str, Any]


@dataclass(frozen=True)
class GroupDone:
    """What a task sends last: its device's idle baseline (cold and warm) and the group's records,
    both named as the node names the device."""

    idle: prof.IdleBaseline | None
    records: list[prof.Record] = field(default_factory=list)


def node_device(gpus: int) -> devmod.Device:
    """The device a task measures on, as torch in the task sees it (Ray's CUDA_VISIBLE_DEVICES
    shows it exactly its GPUs: they are cuda:0.. here). The tests' fake GPUs replace this."""
    if not gpus:
        return devmod.resolve("cpu")
    return devmod.resolve("+".join(f"cuda:{i}" for i in range(gpus)))


def _measure_on_node(cfg: RunConfig, group: Group, driver_version: str, cache_dir: Path | None,
                     put: Any) -> GroupDone:
    import ray

    host = socket.gethostname()
    if cfg.threads is not None:
        devmod.set_threads(cfg.threads)
    gpu_ids = [str(g) for g in ray.get_gpu_ids()]
    device = node_device(len(gpu_ids))
    local = "+".join(f"cuda:{g}" for g in gpu_ids) if gpu_ids else "cpu"
    provenance = devmod.provenance()
    put(("placed", Placed(ray.get_runtime_context().get_node_id(), host, local, device.spec, device.name,
                          device.uuid, os.getpid(), provenance)))
    if __version__ != driver_version:  # after "placed": the failure names the node
        raise ClusterError(f"{host} runs greenbench {__version__}, the driver {driver_version}: install the same "
                           "version on every node")
    cache = cache_dir or devmod.default_cache_dir()  # the node's own
    cache.mkdir(parents=True, exist_ok=True)
    cfg = replace(cfg, cache_dir=cache, ray=None)
    now = prof.utc_now()
    node_profile = prof.Profile(greenbench_version=__version__, created_utc=now, updated_utc=now,
                                ladder=prof.LadderInfo(name=cfg.ladder.name), settings=cfg.settings(),
                                provenance=prof.Provenance(**provenance))
    done: list[GroupDone] = []

    def finished(spec: str, idle: prof.IdleBaseline | None, records: list[prof.Record]) -> None:
        renamed = [r.model_copy(update={"device": local}) for r in records]
        done.append(GroupDone(None if idle is None else idle.model_copy(update={"device": local}), renamed))

    sweep_device(cfg, node_profile, device, [group], Clock(1), lambda e: put(("event", e)), finished,
                 host_components=False)
    return done[0] if done else GroupDone(None, [])


def _group_task(cfg: RunConfig, group: Group, driver_version: str, cache_dir: Path | None) -> Iterator[Any]:
    """The Ray task of one group: a generator the driver reads as the group goes. The group is
    measured in a thread of the task, whose events this generator passes on as they come."""
    q: queue.Queue[Any] = queue.Queue()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["done"] = _measure_on_node(cfg, group, driver_version, cache_dir, q.put)
        except BaseException as e:  # noqa: BLE001 - raised again below, in the task
            outcome["error"] = e
        finally:
            q.put(None)

    thread = threading.Thread(target=work, name="greenbench-group", daemon=True)
    thread.start()
    while (item := q.get()) is not None:
        yield item
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    yield ("done", outcome["done"])


# --- the driver -------------------------------------------------------------------------------------


def _is_loopback(address: str) -> bool:
    if address == "local":
        return True
    host = address.split("://")[-1].rsplit(":", 1)[0].strip("[]")
    return host in LOOPBACK_HOSTS


def connect(opts: RayOptions) -> Any:
    """Ray, connected to the cluster (``local``: a new one on 127.0.0.1). Raises ClusterError."""
    loopback = _is_loopback(opts.address)
    if loopback and "ray" not in sys.modules:
        os.environ.setdefault(_RAY_LOOPBACK_ENV, "0")
    try:
        import ray
    except ImportError:
        raise ClusterError("--ray: Ray is not installed here: pip install 'greenbench[ray]'", option="--ray") from None
    if loopback:
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False  # imported before (a test's cluster): the same switch
    import logging

    runtime_env: dict[str, Any] = {}
    if opts.worker_setup:
        runtime_env["worker_process_setup_hook"] = opts.worker_setup
    if opts.worker_env:
        runtime_env["env_vars"] = dict(opts.worker_env)
    kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False, "include_dashboard": False,
                              "runtime_env": runtime_env or None}
    if opts.address == "local":
        kwargs["_node_ip_address"] = "127.0.0.1"
    if opts.address != "local":
        _check_listening(_bootstrap_address(opts.address))
    try:  # Ray's own notes (token authentication is on: good) are not the user's business here
        ray.init(address=opts.address, **kwargs)  # "local": a new cluster, never one found running here
    except Exception as e:  # noqa: BLE001 - Ray's own errors (authentication, time-outs) are one line too
        raise ClusterError(f"--ray {opts.address}: cannot connect to a Ray cluster: {_one_line(e)}",
                           option="--ray") from None
    return ray


def _bootstrap_address(address: str) -> str:
    """HOST:PORT of the cluster's GCS: as given, or for ``auto`` the one Ray recorded here."""
    if address != "auto":
        return address
    from ray._private import services

    try:
        return str(services.canonicalize_bootstrap_address_or_die("auto"))
    except (ConnectionError, ValueError) as e:
        raise ClusterError(f"--ray auto: no Ray cluster runs on this host ({_one_line(e)}); start one with "
                           "`ray start --head`, or give --ray local", option="--ray") from None


def _check_listening(address: str, timeout_s: float = 3.0) -> None:
    """Fail at once where nothing listens at the address: Ray itself retries for minutes."""
    host, _, port = address.split("://")[-1].rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except ValueError:
        raise ClusterError(f"--ray {address}: give HOST:PORT (the head's GCS port, 6379 by default), 'auto' or "
                           "'local'", option="--ray") from None
    except OSError as e:
        raise ClusterError(f"--ray {address}: no Ray cluster answers there ({e.strerror or e}); start one with "
                           "`ray start --head`, or check the address", option="--ray") from None


def _one_line(e: BaseException) -> str:
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    return f"{type(e).__name__}: {lines[0] if lines else ''}".strip().rstrip(":")


@dataclass
class Fleet:
    """The nodes the profile's points ran on, as ``provenance.sources`` holds them."""

    sources: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, profile: prof.Profile) -> Fleet:
        return cls([dict(s) for s in sources_of(profile) or []])

    def source(self, placed: Placed) -> int:
        """The index of the node's entry; a new node gets one, named by its short host name (and
        the head of its Ray node id where another node has that host name: several nodes of one
        machine)."""
        for i, s in enumerate(self.sources):
            if s.get("ray_node_id") == placed.node_id:
                return i
        host = short_host(placed.hostname)
        if any(s.get("host") == host for s in self.sources):
            host = f"{host}-{placed.node_id[:6]}"
        self.sources.append({"file": "", "host": host, "ray_node_id": placed.node_id,
                             "provenance": placed.provenance, "idle": {}, "devices": {}})
        return len(self.sources) - 1

    def unplaced(self) -> int:
        """The entry of the points no node took (no node has what they ask for, or their task was
        lost before it said where it ran): their device stays the placement ("gpu:L4")."""
        for i, s in enumerate(self.sources):
            if s.get("ray_node_id") is None:
                return i
        self.sources.append({"file": "", "host": "unplaced", "ray_node_id": None, "provenance": {}, "idle": {},
                             "devices": {}})
        return len(self.sources) - 1

    def device(self, i: int, local: str) -> str:
        s = self.sources[i]
        if s.get("ray_node_id") is None:
            return s["devices"].setdefault(local, local)
        return s["devices"].setdefault(local, f"{s['host']}:{local}")

    def document(self, profile: prof.Profile, file: str) -> list[dict[str, Any]]:
        """The entries as written: each with what ``merge`` reads of a source."""
        common = {"file": file, "greenbench_version": profile.greenbench_version, "created_utc": profile.created_utc,
                  "updated_utc": profile.updated_utc, "complete": profile.complete, "ladder": profile.ladder.name,
                  "settings": profile.settings.model_dump(mode="json"),
                  "carbon": profile.carbon.model_dump(mode="json")}
        out = []
        for s in self.sources:
            idle = {local: profile.idle[name].model_dump(mode="json") | {"device": local}
                    for local, name in s["devices"].items() if name in profile.idle}
            out.append({**common, **{k: v for k, v in s.items() if k not in ("file", "idle")}, "idle": idle})
        return out


@dataclass
class GroupTask:
    group: Group
    placement: Placement
    placed: Placed | None = None
    source: int | None = None
    device: str | None = None  # the fleet name of its device, once placed
    shared: bool = False  # a CPU group that shared its node with another group


def _lost(cfg: RunConfig, task: GroupTask, reason: str, accelerator: str | None) -> list[prof.Record]:
    """The group's points, failed with the reason (a lost worker or node, an error in the task)."""
    g, placed = task.group, task.placed
    settings = [(b, None, None) for b in g.batch_sizes] + [(None, s.concurrency, s.request_rate_per_s) for s in g.loads]
    return [prof.Record(
        ladder=cfg.ladder.name, model=g.model, batch_size=b, concurrency=c, request_rate_per_s=rate,
        precision=g.precision, device=task.device or task.placement.name,
        device_name=placed.device_name if placed else None, device_uuid=placed.uuid if placed else None,
        accelerator_type=accelerator, placement=task.placement.name,
        status="failed", error=reason, energy_reason="not measured: failed", measured_utc=prof.utc_now(),
        model_spec=model_dict(cfg.ladder.model(g.model)), source=task.source,
    ) for b, c, rate in settings]


NODE_SHARED_FIX = FLAG_FIXES["node_shared"]


def run_profile(cfg: RunConfig, on_event: Emit | None = None) -> prof.Profile:
    """``runner.run_profile`` on the cluster ``cfg.ray`` names: the same lock, output checks,
    interruption and result."""
    return runner.run_profile(cfg, on_event, sweep=run_locked)


def run_locked(cfg: RunConfig, points: list[Point], emit: Emit, saved: Saved) -> prof.Profile:
    """``runner._run_locked`` for a cluster: the profile is locked and its outputs checked."""
    assert cfg.ray is not None
    ray = connect(cfg.ray)
    try:
        return _sweep(ray, cfg, points, emit, saved)
    finally:
        ray.shutdown()  # a cluster this run started stops with it; a cluster it joined stays


@dataclass
class FleetWriter:
    """The driver's write path: every finished group's records go into the profile, which is
    written at once, atomically (with its nodes in ``provenance.sources``), as a run on one host
    writes after every group. benchmarks/fleet_driver_bench.py times it."""

    cfg: RunConfig
    profile: prof.Profile
    fleet: Fleet
    saved: Saved
    emit: Emit
    clock: Clock
    records_json: prof.RecordsJson = field(default_factory=prof.RecordsJson)  # each record serialised once

    def write(self) -> None:
        sources = self.fleet.document(self.profile, self.cfg.out_path.name)
        self.profile.provenance = prof.Provenance.model_validate(
            {**self.profile.provenance.model_dump(mode="json"), "sources": sources})
        save_profile(self.cfg, self.profile, self.saved, self.records_json)

    def fail(self, task: GroupTask, reason: str, accelerator: str | None) -> None:
        """A group that will not finish (lost, or that no node can run): its points, failed with
        the reason, on disk at once; the sweep goes on."""
        self.emit(Event("warning", f"{task.group.label} on {task.device or task.placement.name}: failed: {reason} "
                                   "(recorded; going on)"))
        if task.source is None:  # it never said where it ran
            _unplaced(task, self.fleet)
        self.finish(task, _named(_lost(self.cfg, task, reason, accelerator), self.fleet, task, accelerator), None)

    def finish(self, task: GroupTask, records: list[prof.Record], idle: prof.IdleBaseline | None) -> None:
        if idle is not None and task.device is not None:
            _keep_idle(self.profile, task.device, idle)
        self.profile.records.extend(records)
        self.write()
        for r in records:
            self.emit(Event("point", record=r, done=self.clock.done, total=self.clock.total))


def _sweep(ray: Any, cfg: RunConfig, points: list[Point], emit: Emit, saved: Saved) -> prof.Profile:
    opts = cfg.ray
    assert opts is not None
    cfg = replace(cfg, out_path=cfg.out_path.absolute(), after_window=None)
    nodes = {n["NodeID"]: n for n in ray.nodes() if n.get("Alive")}
    has_gpus = any(n["Resources"].get("GPU", 0) > 0 for n in nodes.values())
    by_spec = {spec: placements(spec, has_gpus, opts.accelerators) for spec in dict.fromkeys(p.device for p in points)}
    for spec in by_spec:
        if spec.startswith(("cuda:", "GPU-", "MIG-")):
            emit(Event("note", f"--ray: Ray chooses the GPU of each group; {spec} stands for any GPU"))
    points = list(dict.fromkeys(replace(p, device=pl.name) for p in points for pl in by_spec[p.device]))
    place_of = {pl.name: pl for pls in by_spec.values() for pl in pls}
    where = ("a Ray cluster started here (127.0.0.1)" if opts.address == "local"
             else f"the Ray cluster at {opts.address}")
    emit(Event("note", f"{where}: {len(nodes)} node(s), "
                       f"{sum(n['Resources'].get('CPU', 0) for n in nodes.values()):g} CPU(s), "
                       f"{sum(n['Resources'].get('GPU', 0) for n in nodes.values()):g} GPU(s)"))

    profile = open_profile(cfg)
    todo = points_to_measure(cfg, points, profile, emit, saved)  # by placement: Point.device is one here
    clock = Clock(len(todo) * cfg.protocol.repeats)
    emit(Event("start", f"{len(todo)} operating point(s)", total=clock.total))
    out = FleetWriter(cfg, profile, Fleet.of(profile), saved, emit, clock)

    def accelerator_of(task: GroupTask) -> str | None:
        """The accelerator type of the node a GPU group ran on (None for a CPU group)."""
        if not task.placement.gpus:
            return None
        if task.placed is None:
            return task.placement.accelerator
        node_id = task.placed.node_id
        if node_id not in nodes:  # a node that joined during the run
            nodes.update({n["NodeID"]: n for n in ray.nodes()})
        types = sorted(k.split(":", 1)[1] for k in nodes.get(node_id, {}).get("Resources", {})
                       if k.startswith("accelerator_type:"))
        return types[0] if types else None

    # One worker process per group (max_calls=1): torch keeps the CUDA devices it started with, so a
    # reused worker would go on using its last group's GPU whatever Ray gives the next one.
    remote = ray.remote(num_returns="streaming", max_retries=0, max_calls=1)(_group_task)
    tasks: dict[Any, GroupTask] = {}
    for name, groups in groups_by_device(todo).items():
        pl = place_of[name]
        for g in groups:
            task = GroupTask(g, pl)
            if not any(pl.fits(n["Resources"], cfg.threads) for n in nodes.values()):  # Ray would wait forever
                out.fail(task, pl.unfit_reason(cfg.threads), pl.accelerator)
                continue
            gen = remote.options(**pl.options(cfg.threads), name=f"greenbench {g.label} on {pl.name}").remote(
                cfg, g, __version__, opts.cache_dir)
            tasks[gen] = task
    emit(Event("note", f"{len(tasks)} group(s) submitted to the cluster"))
    running: dict[str, list[GroupTask]] = {}  # host -> its groups now running
    checked = time.monotonic()
    try:
        while tasks:
            ready, rest = ray.wait(list(tasks), num_returns=1, timeout=1.0)
            if ready and rest:  # every generator with something to say, in one pass
                ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
            if time.monotonic() - checked > 5:  # a node lost: groups waiting for what no live node has
                checked = time.monotonic()
                _fail_stranded(ray, cfg, tasks, nodes, out)
            for gen in ready:
                task = tasks[gen]
                try:
                    kind, payload = ray.get(next(gen))
                except StopIteration:
                    del tasks[gen]
                    continue
                except Exception as e:  # noqa: BLE001 - a lost worker or node, or an error in the task
                    del tasks[gen]
                    _release(running, task)
                    out.fail(task, _lost_reason(e), accelerator_of(task))
                    continue
                if kind == "placed":
                    _on_placed(task, payload, out.fleet, running, emit)
                elif kind == "event":
                    _pass_event(task, payload, clock, emit)
                elif kind == "done":
                    _release(running, task)
                    assert task.placed is not None
                    records = _named(payload.records, out.fleet, task, accelerator_of(task))
                    if task.shared:
                        for r in records:
                            if r.status == "ok" and "node_shared" not in r.flags:
                                r.flags = [*r.flags, "node_shared"]
                                emit(Event("flag", r.label, code="node_shared", fix=NODE_SHARED_FIX))
                    out.finish(task, records, payload.idle)
    except KeyboardInterrupt:
        for gen in tasks:  # nothing of this run keeps measuring on the cluster
            try:
                ray.cancel(gen, force=True)
            except Exception:  # noqa: BLE001, S110 - cancelling what may have ended already
                pass
        raise
    profile.complete = True
    out.write()
    return profile


def _fail_stranded(ray: Any, cfg: RunConfig, tasks: dict[Any, GroupTask], nodes: dict[str, Any],
                   out: FleetWriter) -> None:
    """Groups not yet placed whose placement no live node fits (their node was lost) would wait
    forever: cancelled, and their points failed with the reason."""
    live = [n for n in ray.nodes() if n.get("Alive")]
    nodes.update({n["NodeID"]: n for n in live})
    for gen, task in list(tasks.items()):
        if task.placed is None and not any(task.placement.fits(n["Resources"], cfg.threads) for n in live):
            del tasks[gen]
            try:
                ray.cancel(gen, force=True)
            except Exception:  # noqa: BLE001, S110 - it may have ended meanwhile
                pass
            out.fail(task, task.placement.unfit_reason(cfg.threads) + " any more (a node was lost)",
                     task.placement.accelerator)


def _on_placed(task: GroupTask, placed: Placed, fleet: Fleet, running: dict[str, list[GroupTask]], emit: Emit) -> None:
    task.placed = placed
    task.source = fleet.source(placed)
    task.device = fleet.device(task.source, placed.local)
    fleet.sources[task.source]["provenance"] = placed.provenance
    others = running.setdefault(placed.hostname, [])  # a CPU meter counts the machine, not the Ray node
    if others and (not task.placement.gpus or any(not t.placement.gpus for t in others)):
        task.shared = not task.placement.gpus
        for t in others:
            t.shared = t.shared or not t.placement.gpus
    others.append(task)
    emit(Event("note", f"{task.group.label} ({task.placement.name}) on {task.device} ({placed.device_name})"))


def _release(running: dict[str, list[GroupTask]], task: GroupTask) -> None:
    if task.placed is not None:
        mine = running.get(task.placed.hostname, [])
        if task in mine:
            mine.remove(task)


def _pass_event(task: GroupTask, e: Event, clock: Clock, emit: Emit) -> None:
    where = task.device or task.placement.name
    if e.kind == "window":
        eta = clock.tick()
        emit(Event("window", f"[{where}] {e.text}", done=clock.done, total=clock.total, eta_s=eta))
    elif e.kind == "flag":  # "model b8 fp32 cuda:0": the point as the fleet names it
        spec = f" {task.placed.spec}" if task.placed else ""
        emit(replace(e, text=e.text[:-len(spec)] + f" {where}" if spec and e.text.endswith(spec) else e.text))
    elif e.kind not in ("point", "start"):  # "cuda:0: energy is an estimate": the node's name for it goes
        spec = f"{task.placed.spec}: " if task.placed else ""
        emit(replace(e, text=f"{where}: {e.text.removeprefix(spec) if spec else e.text}"))


def _unplaced(task: GroupTask, fleet: Fleet) -> None:
    task.source = fleet.unplaced()
    task.device = fleet.device(task.source, task.placement.name)


def _named(records: list[prof.Record], fleet: Fleet, task: GroupTask,
           accelerator: str | None = None) -> list[prof.Record]:
    """Records as the fleet names them: device ``host:local``, with host, accelerator type,
    placement and source."""
    if task.source is None:
        return records
    source = fleet.sources[task.source]
    host = source["host"] if source.get("ray_node_id") is not None else None
    acc = accelerator if task.placement.gpus else None
    return [r.model_copy(update={"device": task.device or r.device, "host": host, "accelerator_type": acc,
                                 "placement": task.placement.name, "source": task.source}) for r in records]


def _keep_idle(profile: prof.Profile, name: str, idle: prof.IdleBaseline) -> None:
    """A device's baselines: its first cold one, and every warm one (each group measures its own
    cold one on the node; the warm ones are what net energy uses)."""
    idle = idle.model_copy(update={"device": name})
    have = profile.idle.get(name)
    if have is None:
        profile.idle[name] = idle
        return
    seen = {(w.after, w.measured_utc) for w in have.warm}
    for w in idle.warm:
        if (w.after, w.measured_utc) not in seen:
            have.add_warm(w)


def _lost_reason(e: BaseException) -> str:
    """One line for a task that did not finish: Ray's error class, and the task's own error
    where it raised one."""
    cause = getattr(e, "cause", None)
    if isinstance(cause, BaseException) and not type(cause).__module__.startswith("ray"):
        return f"the Ray task raised {_one_line(cause)}"
    return f"the Ray task was lost ({_one_line(e)})"
