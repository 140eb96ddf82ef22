"""A tensor-parallel server's GPUs metered as one device (``--devices 0+1``): the group's energy is
the sum of its GPUs' counters over the same windows, each GPU is recorded, the launched server is
shown exactly those GPUs, and its own processes on them are not "other processes".

The NVML library is the fake of tests/fakes.py (two GPUs at different powers); greenbench's
NvmlMeter, window protocol, runner and record builder run unchanged on it, and the server is the
stub of tests/stub_server.py, launched and stopped by greenbench."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from fakes import FakeClock, FakeNvml
from typer.testing import CliRunner

from greenbench.measure import devices as devmod
from greenbench.meters import NullMeter, NvmlMeter
from greenbench.meters import select as meter_select
from greenbench.meters.group import GroupMeter
from greenbench.serving import server as srv

pytest.importorskip("aiohttp")

STUB = Path(__file__).with_name("stub_server.py")
UUIDS = ("GPU-aaaaaaaa-0000-0000-0000-000000000000", "GPU-bbbbbbbb-0000-0000-0000-000000000000")
POWERS_W = (100.0, 250.0)


def test_a_group_meter_sums_its_gpus_over_the_same_window_and_keeps_each():
    clock = FakeClock(step_s=0.0005)
    fake = FakeNvml(count=2, power_w=list(POWERS_W), tick_s=0.01, uuids=UUIDS, clock=clock)
    meter = GroupMeter([NvmlMeter(u, nvml=fake, clock=clock) for u in UUIDS])
    assert meter.info().available and meter.method == "nvml_counter"
    assert meter.domain == f"gpu:{UUIDS[0]}+gpu:{UUIDS[1]}"
    start = meter.begin()
    t0 = clock.t_s
    clock.advance(2.0)
    reading = meter.end(start, t_start=t0)
    assert [p.domain for p in reading.parts] == [f"gpu:{u}" for u in UUIDS]
    powers = [p.energy_j / p.duration_s for p in reading.parts]
    # each GPU's own counter, trimmed to the same work interval: its own power, to a tick's worth
    assert powers == pytest.approx(list(POWERS_W), rel=0.02)
    assert reading.energy_j / reading.duration_s == pytest.approx(sum(POWERS_W), rel=0.02)
    meter.close()
    assert fake.init_count == 0


def test_a_gpu_that_cannot_be_metered_makes_the_group_unavailable_never_a_partial_sum(monkeypatch):
    fake = FakeNvml(count=1, uuids=UUIDS[:1])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    head, _ = meter_select.select_meters(f"{UUIDS[0]}+{UUIDS[1]}", prefer="nvml")
    assert isinstance(head, NullMeter)
    info = head.info()
    assert not info.available and f"gpu:{UUIDS[1]}" in info.reason and f"gpu:{UUIDS[0]}:" not in info.reason
    head, _ = meter_select.select_meters("cuda:0+cuda:1", prefer="none")
    assert "turned off" in head.info().reason


def test_the_fake_meter_makes_a_group_of_fake_gpus():
    head, comps = meter_select.select_meters("cuda:0+cuda:1", prefer="fake")
    assert isinstance(head, GroupMeter) and head.method == "fake" and len(comps) == 1  # the host once
    assert head.power_limit_w() is None


@pytest.fixture
def two_gpus(monkeypatch):
    """Two GPUs visible to torch and NVML (the fake library; greenbench's own code above it)."""
    fake = FakeNvml(count=2, power_w=list(POWERS_W), tick_s=0.01, uuids=UUIDS)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(devmod, "cuda_count", lambda: 2)
    monkeypatch.setattr(devmod, "_cuda_device", lambda i: devmod.Device(f"cuda:{i}", "Fake H200", UUIDS[i]))
    # the host CPU is not the subject here (and CodeCarbon's estimate would be slow to start)
    monkeypatch.setattr(meter_select, "host_plan", lambda prefer, country: meter_select.Plan(
        NullMeter("cpu", "the host CPU is not metered in this test")))
    return fake


def test_device_groups_resolve_and_bad_ones_are_refused(two_gpus):
    group = devmod.resolve("cuda:0+cuda:1")
    assert group.spec == "cuda:0+cuda:1" and group.is_group and group.is_cuda
    assert group.uuid == "+".join(UUIDS) and group.name == "2 x Fake H200"
    assert [g.spec for g in group.gpus] == ["cuda:0", "cuda:1"]
    assert devmod.resolve(f"{UUIDS[1][:12]}+cuda:0").spec == "cuda:1+cuda:0"
    for bad, words in (("cuda:0+cuda:0", "the same GPU"), ("cpu+cuda:1", "joins GPUs"),
                       ("cuda:0+cuda:7", "only 2 GPU")):
        with pytest.raises(devmod.DeviceError, match=words):
            devmod.resolve(bad)
    with pytest.raises(devmod.DeviceError, match="share cuda:1"):
        devmod.check_disjoint([group, devmod.resolve("cuda:1")])


def _zoo(tmp_path: Path) -> Path:
    launch = f"{sys.executable} {STUB} --port {{port}} --token-ms 1 --tensor-parallel-size {{tensor_parallel_size}}"
    path = tmp_path / "zoo.yaml"
    path.write_text(f"""
ladders:
  stub-tp:
    workload: served-lm
    server: {{launch: "{launch}", ready_timeout_s: 30}}
    models:
      - {{name: fast, id: stub-model}}
    concurrency: [1, 4]
    generation: {{prompt_tokens: 8, output_tokens: 12}}
    devices: [cpu]
""")
    return path


class ServerPids(list):
    """What NVML lists on the GPUs: the launched servers' processes (read live) and ``tenants``."""

    def __init__(self, tenants: list[int]):
        super().__init__()
        self.tenants = tenants

    def __iter__(self):
        live = [p for s in list(srv._PROCS.values()) for p in s.processes()]
        return iter(live + self.tenants)


def _profile(tmp_path: Path, *args: str):
    env = {"GREENBENCH_CACHE": str(tmp_path / "cache"), "COLUMNS": "80"}
    return CliRunner().invoke(__import__("greenbench.cli", fromlist=["app"]).app,
                              ["profile", "stub-tp", "--zoo", str(_zoo(tmp_path)), "--quick", "--idle", "1",
                               "--out", str(tmp_path / "out"), *args], env=env)


def test_a_tensor_parallel_server_is_metered_on_the_sum_of_its_gpus(tmp_path, two_gpus):
    two_gpus.process_pids = ServerPids([])
    res = _profile(tmp_path, "--devices", "0+1")
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "out" / "stub-tp-quick.json").read_text())
    recs = doc["records"]
    assert [r["concurrency"] for r in recs] == [1, 4]
    for r in recs:
        assert r["status"] == "ok" and r["device"] == "cuda:0+cuda:1" and r["device_uuid"] == "+".join(UUIDS)
        assert r["energy_method"] == "nvml_counter"
        gpus = r["gpus"]
        assert [g["device"] for g in gpus] == ["cuda:0", "cuda:1"] and [g["uuid"] for g in gpus] == list(UUIDS)
        # the record's figure is the sum of its GPUs' figures, and each GPU draws its own power
        assert r["energy_j_per_item"] == pytest.approx(sum(g["energy_j_per_item"] for g in gpus), rel=1e-9)
        assert r["energy_j_per_output_token"] == pytest.approx(sum(g["energy_j_per_output_token"] for g in gpus),
                                                               rel=1e-9)
        assert gpus[1]["power_w"] / gpus[0]["power_w"] == pytest.approx(POWERS_W[1] / POWERS_W[0], rel=0.05)
        assert r["power_w"] == pytest.approx(sum(POWERS_W), rel=0.05)
        assert "other_gpu_processes" not in r["flags"]  # the server's own processes are on its GPUs
    idle = doc["idle"]["cuda:0+cuda:1"]  # one baseline for the group: both GPUs idle together
    # on the real clock: a busy machine can stall a read by tens of ms of a 1 s window, hence 15%
    assert idle["meters"][0]["power_w"] == pytest.approx(sum(POWERS_W), rel=0.15)
    log = Path(recs[0]["server_log"]).read_text()
    # the launched server was shown exactly the metered GPUs, by UUID, and told how many
    assert f"tensor_parallel_size=2 CUDA_VISIBLE_DEVICES={','.join(UUIDS)}" in log
    assert not srv._PROCS  # stopped


def test_another_process_on_a_served_gpu_is_flagged(tmp_path, two_gpus):
    two_gpus.process_pids = ServerPids([os.getpid() + 10_000_000])  # not the server's, not ours
    res = _profile(tmp_path, "--devices", "cuda:0+cuda:1", "--model", "fast")
    assert res.exit_code == 0, res.output
    recs = json.loads((tmp_path / "out" / "stub-tp-quick.json").read_text())["records"]
    assert all("other_gpu_processes" in r["flags"] for r in recs)


def test_a_group_is_for_a_served_ladder_and_a_gpu_belongs_to_one_device(tmp_path, two_gpus):
    from helpers import write_zoo

    res = CliRunner().invoke(__import__("greenbench.cli", fromlist=["app"]).app,
                             ["profile", "tiny", "--zoo", str(write_zoo(tmp_path)), "--devices", "0+1",
                              "--out", str(tmp_path / "o")], env={"GREENBENCH_CACHE": str(tmp_path / "c")})
    assert res.exit_code == 2 and "tensor-parallel server" in res.output and "Traceback" not in res.output
    res = _profile(tmp_path, "--devices", "0+1,1")
    assert res.exit_code == 2 and "share cuda:1" in res.output
