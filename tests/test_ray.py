"""``greenbench profile --ray`` on real local Ray clusters (every node on 127.0.0.1): groups as
Ray tasks across nodes, fake GPU resources and accelerator types standing in for GPUs (the fake
meter for energy), a worker killed mid-group, --resume on the cluster, loopback only, and no Ray
import without --ray. Needs the extra: pip install -e '.[ray]' (CI installs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import FAST, TINY_ZOO, one_line_error, write_zoo
from typer.testing import CliRunner

from greenbench.cli import app

# Before Ray is imported: Ray's switch for clusters on one host, so that this process reaches the
# test cluster on 127.0.0.1 (greenbench sets it itself for --ray local and loopback addresses).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
try:
    import ray  # noqa: F401
except ImportError:
    if os.environ.get("CI"):  # CI installs the extra: there, a missing Ray is a failure, not a skip
        raise
    pytest.skip("Ray is not installed: pip install -e '.[ray]'", allow_module_level=True)
psutil = pytest.importorskip("psutil")

TESTS = Path(__file__).parent
LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}
# Longer windows than FAST: a group lasts a few seconds, so that a worker can be killed in one.
SLOW = ["--meter", "fake", "--repeats", "3", "--min-window", "0.4", "--min-updates", "3", "--warmup", "0",
        "--idle", "0.1"]


def _ray_processes() -> list:
    """This test process's Ray descendants (GCS, raylets, workers, agents)."""
    return [p for p in psutil.Process().children(recursive=True) if _is_ray(p)]


def _is_ray(p) -> bool:
    try:
        return p.name().startswith(("ray::", "raylet", "gcs_server")) or "/ray/" in " ".join(p.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _listening(procs) -> list[tuple[str, str, int]]:
    out = []
    for p in procs:
        try:
            out += [(p.name(), c.laddr.ip, c.laddr.port) for c in p.net_connections(kind="inet")
                    if c.status == psutil.CONN_LISTEN]
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


@pytest.fixture(scope="module")
def cluster():
    """A head that runs nothing and two worker nodes of one CPU each, one with a fake L4 and one
    with two fake H100s: all on 127.0.0.1."""
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "node_ip_address": "127.0.0.1",
                                                      "include_dashboard": False})
    c.add_node(num_cpus=1, num_gpus=1, resources={"accelerator_type:FAKE-L4": 1}, node_ip_address="127.0.0.1")
    c.add_node(num_cpus=1, num_gpus=2, resources={"accelerator_type:FAKE-H100": 1}, node_ip_address="127.0.0.1")
    c.wait_for_nodes()
    yield c
    c.shutdown()


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_driver_outlives_its_test():
    """A test that fails (or times out) half way leaves no greenbench driver, nor its cluster, behind."""
    yield
    while _STARTED:
        run = _STARTED.pop()
        if run.poll() is None:
            run.send_signal(2)  # Ctrl-C: the driver cancels its tasks and stops a cluster it started
            try:
                run.wait(timeout=30)
            except subprocess.TimeoutExpired:
                run.kill()


def _popen(cmd, **kw) -> subprocess.Popen:
    run = subprocess.Popen(cmd, **kw)
    _STARTED.append(run)
    return run


def _cli(args, cache_dir, **kw):
    env = {**os.environ, "GREENBENCH_CACHE": str(cache_dir), "PYTHONPATH": str(TESTS), "COLUMNS": "120"}
    return _popen([sys.executable, "-m", "greenbench", "profile", *args], env=env, text=True,
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)  # read by communicate()


def test_every_node_and_every_listening_socket_of_the_cluster_is_on_loopback(cluster):
    import ray

    ray.init(address=cluster.address, log_to_driver=False)
    try:
        nodes = [n for n in ray.nodes() if n["Alive"]]
        assert len(nodes) == 3 and {n["NodeManagerAddress"] for n in nodes} == {"127.0.0.1"}
    finally:
        ray.shutdown()
    sockets = _listening(_ray_processes())
    assert len(sockets) >= 3  # the GCS and each raylet at least
    assert {ip for _, ip, _ in sockets} <= LOOPBACK, sockets


def test_groups_run_on_fake_gpus_of_each_accelerator_type_and_records_say_where(tmp_path, cache_dir, cluster):
    from greenbench.carbon.intensity import static_intensity
    from greenbench.measure import runner
    from greenbench.measure.protocol import Protocol
    from greenbench.measure.zoo import get_ladder

    lad = get_ladder("tiny", write_zoo(tmp_path))
    cfg = runner.RunConfig(
        ladder=lad, out_path=tmp_path / "o" / "tiny.json", cache_dir=Path(cache_dir), meter="fake", threads=1,
        protocol=Protocol(repeats=3, min_window_s=0.03, min_counter_updates=3, warmup_s=0, idle_s=0.1),
        intensity=static_intensity(), devices=("cuda",),
        ray=runner.RayOptions(address=cluster.address, accelerators=("FAKE-L4", "FAKE-H100", "FAKE-B200"),
                              cache_dir=Path(cache_dir), worker_setup="ray_fakes.install",
                              worker_env={"PYTHONPATH": str(TESTS)}))
    events = []
    with pytest.raises(runner.RunError, match="measured on the cluster"):
        runner.run_profile(cfg)  # never on this host by mistake
    from greenbench.measure import cluster as clustermod

    profile = clustermod.run_profile(cfg, events.append)
    assert profile.complete
    by = {}
    for r in profile.records:
        by.setdefault(r.placement, []).append(r)
    assert set(by) == {"gpu:FAKE-L4", "gpu:FAKE-H100", "gpu:FAKE-B200"}
    for acc in ("FAKE-L4", "FAKE-H100"):
        recs = by[f"gpu:{acc}"]
        assert len(recs) == 4 and all(r.status == "ok" for r in recs), [(r.label, r.error) for r in recs]
        assert {r.accelerator_type for r in recs} == {acc}
        assert all(r.energy_method == "fake" and r.device_uuid.startswith("GPU-fake-") for r in recs)
        assert all(r.host and r.device.startswith(f"{r.host}:cuda:") for r in recs)
    # one node per accelerator type: the L4 node's GPU is not an H100's
    l4 = {r.device_uuid for r in by["gpu:FAKE-L4"]}
    h100 = {r.device_uuid for r in by["gpu:FAKE-H100"]}
    assert not l4 & h100
    assert {r.device for r in by["gpu:FAKE-L4"]}.isdisjoint({r.device for r in by["gpu:FAKE-H100"]})
    # no node has a B200: failed at once with the reason, not left waiting
    assert all(r.status == "failed" and "no live node of the Ray cluster has 1 GPU(s) of accelerator type FAKE-B200"
               in r.error for r in by["gpu:FAKE-B200"])
    # each node is a source, as merge lays them out; the driver's file names every device
    doc = json.loads((tmp_path / "o" / "tiny.json").read_text())
    sources = doc["provenance"]["sources"]
    nodes = [s for s in sources if s["ray_node_id"] is not None]
    assert len(nodes) == 2 and len({s["ray_node_id"] for s in nodes}) == 2
    unplaced = [s for s in sources if s["ray_node_id"] is None]  # the B200 points ran nowhere
    assert len(unplaced) == 1 and set(unplaced[0]["devices"]) == {"gpu:FAKE-B200"}
    assert {r["device"] for r in doc["records"] if r["placement"] == "gpu:FAKE-B200"} == {"gpu:FAKE-B200"}
    for r in doc["records"]:
        if r["status"] == "ok":
            src = sources[r["source"]]
            assert r["device"] in src["devices"].values() and src["host"] == r["host"]
            assert r["device"] in doc["idle"]
    assert doc["settings"]["executor"] == "ray" and doc["settings"]["accelerators"] == [
        "FAKE-L4", "FAKE-H100", "FAKE-B200"]
    assert any(e.kind == "window" for e in events)

    # a Ray profile merges with a host's own profile of the same ladder and protocol: each node and
    # the host are sources, every point keeps its name, and fit spans them all
    from greenbench.profile.merge import merge, summarize
    from greenbench.tradeoff.points import operating_points

    host = runner.run_profile(runner.RunConfig(
        ladder=lad, out_path=tmp_path / "h" / "tiny.json", cache_dir=Path(cache_dir), meter="fake", threads=1,
        protocol=cfg.protocol, intensity=cfg.intensity, devices=("cpu",)))
    fleet = merge([profile, host], ["ray.json", "host.json"])
    summary = summarize(fleet)
    assert len(summary.sources) == 4 and summary.ok == 8 + 4 and summary.points == 12 + 4
    assert {r.device for r in fleet.ok_records()} >= {r.device for r in profile.ok_records()}
    points, _ = operating_points(fleet)
    assert len(points) == 12


def _wait_for_task_process(deadline_s: float):
    """A worker process running a greenbench group (Ray names it after the task)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        for p in _ray_processes():
            try:  # Ray titles a worker after its task while it runs it: "ray::greenbench lin fp32 on cpu"
                if p.cmdline()[:1] and p.cmdline()[0].startswith("ray::greenbench"):
                    return p
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.05)
    return None


def test_a_worker_killed_mid_group_fails_that_group_and_resume_finishes_it_on_the_cluster(
        tmp_path, cache_dir, cluster):
    zoo = write_zoo(tmp_path)
    out = tmp_path / "o"
    args = ["tiny", "--zoo", str(zoo), "--out", str(out), "--device", "cpu", "--threads", "1", "--ray",
            cluster.address, "--cache-dir", str(cache_dir), *SLOW]
    run = _cli(args, cache_dir)
    victim = _wait_for_task_process(60)
    assert victim is not None, "no greenbench task started on the cluster"
    time.sleep(0.8)  # into the group's windows
    victim.kill()
    _stdout, stderr = run.communicate(timeout=240)
    assert run.returncode == 0, stderr
    doc = json.loads((out / "tiny.json").read_text())
    failed = [r for r in doc["records"] if r["status"] == "failed"]
    ok = [r for r in doc["records"] if r["status"] == "ok"]
    assert failed and ok and len(failed) + len(ok) == 4, stderr
    assert len({r["model"] for r in failed}) == 1  # one group: the one whose worker died
    assert all("the Ray task was lost" in r["error"] for r in failed), failed[0]["error"]
    assert "failed: the Ray task was lost" in stderr and "going on" in stderr
    assert all(r["accelerator_type"] is None and r["placement"] == "cpu" for r in doc["records"])  # CPU groups
    assert doc["complete"] is True

    again = _cli([*args, "--resume"], cache_dir)
    _stdout, stderr = again.communicate(timeout=240)
    assert again.returncode == 0, stderr
    assert "resuming: 2 point(s) already finished, 2 to go" in stderr
    doc2 = json.loads((out / "tiny.json").read_text())
    assert len(doc2["records"]) == 4 and all(r["status"] == "ok" for r in doc2["records"])
    kept = {(r["model"], r["batch_size"]): r["measured_utc"] for r in ok}
    assert all(kept[(r["model"], r["batch_size"])] == r["measured_utc"] for r in doc2["records"]
               if (r["model"], r["batch_size"]) in kept)  # finished points were not measured again


def test_local_starts_a_cluster_on_loopback_and_stops_it(tmp_path, cache_dir):
    """--ray local: a private cluster on 127.0.0.1 for the run; none of its processes outlives it."""
    zoo = write_zoo(tmp_path)
    before = {p.pid for p in psutil.process_iter() if _is_ray(p)}
    err = tmp_path / "stderr.txt"
    with err.open("w") as stream:  # not a pipe: nobody reads it while the run goes on
        run = _popen([sys.executable, "-m", "greenbench", "profile", "tiny", "--zoo", str(zoo), "--out",
                      str(tmp_path / "o"), "--model", "lin", "--device", "cpu", "--ray", "local", *FAST],
                     env={**os.environ, "GREENBENCH_CACHE": str(cache_dir)}, stdout=subprocess.DEVNULL,
                     stderr=stream, text=True)
        seen = []
        end = time.monotonic() + 240
        while run.poll() is None and time.monotonic() < end:
            seen += _listening(run_children(run.pid, with_self=True))  # the driver's own sockets too
            time.sleep(0.2)
        run.wait(timeout=10)
    stderr = err.read_text()
    assert run.returncode == 0, stderr
    assert "a Ray cluster started here (127.0.0.1)" in stderr
    assert seen and {ip for _, ip, _ in seen} <= LOOPBACK, seen
    end = time.monotonic() + 20  # what ray.shutdown stopped may take a moment to exit
    while (left := [p for p in psutil.process_iter() if p.pid not in before and _is_ray(p)]) and \
            time.monotonic() < end:
        time.sleep(0.2)
    assert not left, [p.cmdline()[:2] for p in left]
    doc = json.loads((tmp_path / "o" / "tiny.json").read_text())
    assert [r["status"] for r in doc["records"]] == ["ok", "ok"]


def run_children(pid: int, with_self: bool = False) -> list:
    try:
        proc = psutil.Process(pid)
        return [proc] * with_self + proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_without_ray_nothing_of_ray_is_imported(tmp_path, cache_dir):
    zoo = write_zoo(tmp_path)
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom greenbench.cli import app\n"
            f"r = CliRunner().invoke(app, ['profile', 'tiny', '--zoo', {str(zoo)!r}, '--out', {str(tmp_path)!r}, "
            f"'--model', 'lin', *{FAST!r}])\n"
            "assert r.exit_code == 0, r.output\nprint(sorted(m for m in sys.modules if m.split('.')[0] == 'ray'))\n")
    res = subprocess.run([sys.executable, "-c", code], env={**os.environ, "GREENBENCH_CACHE": str(cache_dir)},
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


@pytest.mark.parametrize("args, needle", [
    (["--accelerator", "H100"], "--accelerator pins GPU groups to a Ray accelerator type: give --ray"),
    (["--ray", "127.0.0.1:1"], "--ray 127.0.0.1:1: no Ray cluster answers there"),
    (["--ray", "nonsense"], "--ray nonsense: give HOST:PORT"),
    (["--ray", "local", "--parallel"], "with --ray the cluster schedules the groups"),
])
def test_bad_ray_options_are_one_line_and_exit_2(tmp_path, cache_dir, args, needle):
    zoo = write_zoo(tmp_path, TINY_ZOO)
    res = CliRunner().invoke(app, ["profile", "tiny", "--zoo", str(zoo), "--out", str(tmp_path / "o"), *FAST,
                                   *args], env={"GREENBENCH_CACHE": str(cache_dir)})
    assert needle in one_line_error(res)


def test_a_node_lost_mid_group_fails_its_points_with_the_reason_and_the_sweep_goes_on(tmp_path, cache_dir, cluster):
    """A node of its own (a fake accelerator type nobody else has) removed while its group runs."""
    from greenbench.carbon.intensity import static_intensity
    from greenbench.measure import cluster as clustermod
    from greenbench.measure import runner
    from greenbench.measure.protocol import Protocol
    from greenbench.measure.zoo import get_ladder

    doomed = cluster.add_node(num_cpus=1, num_gpus=1, resources={"accelerator_type:FAKE-DOOMED": 1},
                              node_ip_address="127.0.0.1")
    cluster.wait_for_nodes()
    cfg = runner.RunConfig(
        ladder=get_ladder("tiny", write_zoo(tmp_path)), out_path=tmp_path / "o" / "tiny.json",
        cache_dir=Path(cache_dir), meter="fake", threads=1,
        protocol=Protocol(repeats=3, min_window_s=0.4, min_counter_updates=3, warmup_s=0, idle_s=0.1),
        intensity=static_intensity(), devices=("cuda",),
        ray=runner.RayOptions(address=cluster.address, accelerators=("FAKE-DOOMED", "FAKE-L4"),
                              cache_dir=Path(cache_dir), worker_setup="ray_fakes.install",
                              worker_env={"PYTHONPATH": str(TESTS)}))
    removed: list[str] = []
    seen: dict[str, str] = {}  # the doomed group's device, once the driver heard where it landed

    def track(e):
        if e.kind == "note" and "(gpu:FAKE-DOOMED) on " in e.text:
            seen["device"] = e.text.split(" on ", 1)[1].split(" ")[0]
        elif e.kind == "window" and not removed and seen and e.text.startswith(f"[{seen['device']}]"):
            cluster.remove_node(doomed, allow_graceful=False)  # mid-group: its first window is done
            removed.append(seen["device"])

    profile = clustermod.run_profile(cfg, track)
    assert removed, "the doomed node's group never started"
    by = {r.placement: [] for r in profile.records}
    for r in profile.records:
        by[r.placement].append(r)
    assert all(r.status == "ok" for r in by["gpu:FAKE-L4"])  # the other node's group went on
    lost = by["gpu:FAKE-DOOMED"]  # two groups: one running on the node, one queued for it
    assert len(lost) == 4 and all(r.status == "failed" and r.accelerator_type == "FAKE-DOOMED" for r in lost)
    running = [r for r in lost if "the Ray task was lost" in r.error]
    queued = [r for r in lost if "any more (a node was lost)" in r.error]
    assert len(running) == 2 and len(queued) == 2, [r.error for r in lost]
    assert all(r.device == seen["device"] for r in running) and all(r.device == "gpu:FAKE-DOOMED" for r in queued)
    assert profile.complete


def test_ctrl_c_on_the_driver_keeps_finished_points_and_stops_the_cluster_s_work(tmp_path, cache_dir, cluster):
    import signal

    # six groups on two one-CPU nodes: three waves, so that one is running when the first is on disk
    models = "\n".join(f"      - {{name: cnn{w}, arch: cnn, width: {w}}}" for w in (2, 3, 4, 5, 6, 7))
    zoo = write_zoo(tmp_path, TINY_ZOO.replace("      - {name: lin, arch: linear}\n      - {name: cnn, arch: cnn, "
                                               "width: 4}", models))
    out = tmp_path / "o"
    run = _cli(["tiny", "--zoo", str(zoo), "--out", str(out), "--device", "cpu", "--threads", "1", "--ray",
                cluster.address, "--cache-dir", str(cache_dir), *SLOW], cache_dir)
    # wait for a first finished group on disk, then interrupt while others run
    end = time.monotonic() + 120
    while time.monotonic() < end and not (out / "tiny.json").exists():
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    _stdout, stderr = run.communicate(timeout=60)
    doc = json.loads((out / "tiny.json").read_text())
    finished = [r for r in doc["records"] if r["status"] == "ok"]
    assert run.returncode == 130, stderr
    assert doc["complete"] is False and 2 <= len(finished) < 12
    assert finished and f"interrupted: {len(finished)} point(s) saved" in stderr
    time.sleep(2.0)  # the cancelled task's worker is gone (force-cancelled), nothing measures on
    assert _wait_for_task_process(0.5) is None


def test_a_cpu_group_asking_more_threads_than_any_node_has_fails_at_once(tmp_path, cache_dir, cluster):
    from greenbench.carbon.intensity import static_intensity
    from greenbench.measure import cluster as clustermod
    from greenbench.measure import runner
    from greenbench.measure.protocol import Protocol
    from greenbench.measure.zoo import get_ladder

    cfg = runner.RunConfig(
        ladder=get_ladder("tiny", write_zoo(tmp_path)), out_path=tmp_path / "o" / "tiny.json",
        cache_dir=Path(cache_dir), meter="fake", threads=8, protocol=Protocol(repeats=3, min_window_s=0.03),
        intensity=static_intensity(), devices=("cpu",), ray=runner.RayOptions(address=cluster.address))
    profile = clustermod.run_profile(cfg)  # the nodes have one CPU each: Ray alone would wait forever
    assert len(profile.records) == 4
    assert all(r.status == "failed" and "no live node of the Ray cluster has 8 CPU(s) for --threads" in r.error
               for r in profile.records)
