"""Failures at one point, interrupted runs, and resuming after a real kill."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import FAST, TINY_ZOO, load_json, on_virtual_time, write_zoo
from typer.testing import CliRunner

from greenbench.cli import app
from greenbench.measure import runner as runmod
from greenbench.meters import clock
from greenbench.workloads import WorkloadError

cli = CliRunner()


def invoke(args, cache_dir):
    return cli.invoke(app, args, env={"GREENBENCH_CACHE": str(cache_dir)})


def test_out_of_memory_at_one_point_is_recorded_and_the_ladder_goes_on(tmp_path, cache_dir, virtual_time,
                                                                       monkeypatch):
    real_build = runmod.build_workload

    def build(*a, **k):
        wl = real_build(*a, **k)
        real_step = wl.make_step

        def make_step(batch):
            step = real_step(batch)
            if k["model"].name == "cnn" and batch == 8:  # the validated zoo entry
                def oom():
                    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
                return oom
            return step

        wl.make_step = make_step
        return wl

    monkeypatch.setattr(runmod, "build_workload", build)
    zoo = write_zoo(tmp_path)
    res = invoke(["profile", "tiny", "--zoo", str(zoo), "--out", str(tmp_path / "o"), *FAST], cache_dir)
    assert res.exit_code == 0, res.output
    recs = {(r["model"], r["batch_size"]): r for r in load_json(tmp_path / "o" / "tiny.json")["records"]}
    failed = recs[("cnn", 8)]
    assert failed["status"] == "failed" and "OutOfMemoryError: CUDA out of memory" in failed["error"]
    assert failed["energy_j_per_item"] is None and failed["energy_method"] == "unavailable"
    assert all(r["status"] == "ok" for k, r in recs.items() if k != ("cnn", 8))
    assert "going on" in res.output


def test_nothing_measured_exits_3_with_reasons(tmp_path, cache_dir, virtual_time, monkeypatch):
    def build(*a, **k):
        raise WorkloadError("weights not found")

    monkeypatch.setattr(runmod, "build_workload", build)
    zoo = write_zoo(tmp_path)
    res = invoke(["profile", "tiny", "--zoo", str(zoo), "--out", str(tmp_path / "o"), *FAST], cache_dir)
    assert res.exit_code == 3
    recs = load_json(tmp_path / "o" / "tiny.json")["records"]
    assert len(recs) == 4 and {r["status"] for r in recs} == {"failed"}
    assert all("weights not found" in r["error"] for r in recs)


SLOW_ZOO = TINY_ZOO.replace("      - {name: cnn, arch: cnn, width: 4}\n",
                            "      - {name: cnn, arch: cnn, width: 4}\n"
                            "      - {name: cnn2, arch: cnn, width: 6}\n"
                            "      - {name: cnn3, arch: cnn, width: 8}\n")
SLOW = ["--meter", "fake", "--repeats", "3", "--min-window", "0.15", "--min-updates", "3",
        "--warmup", "0", "--idle", "0.1"]


def start(tmp_path, cache_dir, *extra):
    zoo = write_zoo(tmp_path, SLOW_ZOO)
    cmd = [sys.executable, "-m", "greenbench", "profile", "tiny", "--zoo", str(zoo),
           "--out", str(tmp_path / "o"), *SLOW, *extra]
    env = {**os.environ, "GREENBENCH_CACHE": str(cache_dir)}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_records(path: Path, n: int, proc, timeout_s=120.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            doc = json.loads(path.read_text())  # atomic writes: always valid JSON
            if len(doc["records"]) >= n:
                return doc
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("no records in time")


@pytest.mark.slow
def test_killed_run_keeps_finished_points_and_resume_completes_it(tmp_path, cache_dir, monkeypatch):
    path = tmp_path / "o" / "tiny.json"
    proc = start(tmp_path, cache_dir)
    wait_for_records(path, 2, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = load_json(path)
    assert killed["complete"] is False
    finished = killed["records"]
    assert 2 <= len(finished) < 8
    # The resume runs here, on virtual time (helpers.on_virtual_time): what it must show is what
    # it keeps and what it adds to the killed process's file, not how long windows take.
    on_virtual_time(monkeypatch)
    resumed = invoke(["profile", "tiny", "--zoo", str(tmp_path / "zoo.yaml"), "--out", str(tmp_path / "o"),
                      *SLOW, "--resume"], cache_dir)
    assert resumed.exit_code == 0, resumed.output
    assert "resuming" in resumed.stderr
    final = load_json(path)
    assert final["complete"] is True
    keys = {(r["model"], r["batch_size"]) for r in final["records"]}
    assert keys == {(m, b) for m in ("lin", "cnn", "cnn2", "cnn3") for b in (1, 8)}
    assert final["records"][: len(finished)] == finished  # unchanged, not measured again
    # the baseline of the finished points is kept; warm baselines of the resumed groups follow theirs
    assert final["idle"].keys() == killed["idle"].keys()
    for spec, before in killed["idle"].items():
        after = final["idle"][spec]
        assert {k: v for k, v in after.items() if k != "warm"} == {k: v for k, v in before.items() if k != "warm"}
        assert after["warm"][: len(before["warm"])] == before["warm"]


@pytest.mark.slow
def test_ctrl_c_exits_130_and_says_how_to_resume(tmp_path, cache_dir):
    path = tmp_path / "o" / "tiny.json"
    proc = start(tmp_path, cache_dir)
    wait_for_records(path, 2, proc)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "--resume" in err and "Traceback" not in err
    assert load_json(path)["records"]


def test_a_power_limit_change_during_the_sweep_is_flagged(tmp_path, cache_dir, virtual_time, monkeypatch):
    from greenbench.meters import FakeMeter

    limits = iter([300.0] + [250.0] * 10)  # read at the idle baseline, then after each group

    class Limited(FakeMeter):
        def power_limit_w(self):
            return next(limits)

    monkeypatch.setattr(runmod.metermod, "select_meters",
                        lambda *a, **k: (Limited(20.0, 0.01, domain="cpu_package"), []))
    zoo = write_zoo(tmp_path)
    res = invoke(["profile", "tiny", "--zoo", str(zoo), "--out", str(tmp_path / "o"), *FAST,
                  "--model", "lin"], cache_dir)
    assert res.exit_code == 0, res.output
    doc = load_json(tmp_path / "o" / "tiny.json")
    assert doc["idle"]["cpu"]["power_limit_w"] == 300.0
    assert all("power_limit_changed" in r["flags"] for r in doc["records"])
    assert "power_limit_changed" in res.output


class _BusyLM:
    """A stand-in causal LM: a request takes 4 ms of greenbench's clock, its prefill 1 ms (so
    decode is 3 ms). On virtual time (the tests below) those are exact."""

    def __init__(self, output_tokens=4):
        self.output_tokens = output_tokens

    params = 1

    @staticmethod
    def _spin(seconds):
        clock.sleep(seconds)  # looked up at call time: virtual time advances by exactly this

    def make_step(self, batch):
        return lambda: self._spin(0.004)

    def phases(self):
        return ("prefill",)

    def make_phase_step(self, phase, batch):
        assert phase == "prefill"
        return lambda: self._spin(0.001)

    def request_shape(self):
        return {"prompt_tokens": 16, "output_tokens": self.output_tokens}

    def evaluate(self, batch):
        from greenbench.workloads import Score

        return Score(None, 10, "perplexity", {"perplexity": 12.5, "tokens_scored": 160.0})

    def sync(self):
        pass

    def provenance(self):
        return {"kind": "busy-lm"}

    def close(self):
        pass


def test_causal_lm_prefill_and_decode_are_split_from_paired_windows(tmp_path, cache_dir, virtual_time, monkeypatch):
    monkeypatch.setattr(runmod, "build_workload", lambda *a, **k: _BusyLM(output_tokens=4))
    zoo = write_zoo(tmp_path)
    res = invoke(["profile", "tiny", "--zoo", str(zoo), "--out", str(tmp_path / "o"), "--model", "lin",
                  "--batch-size", "8", *FAST, "--min-window", "0.1"], cache_dir)
    assert res.exit_code == 0, res.output
    (r,) = load_json(tmp_path / "o" / "tiny.json")["records"]
    assert r["status"] == "ok" and r["prompt_tokens"] == 16 and r["output_tokens"] == 4
    # no accuracy for a text-only LM: null, with perplexity beside it
    assert r["accuracy"] is None and r["quality_metric"] == "perplexity" and r["perplexity"] == 12.5
    assert r["quality"] == {"tokens_scored": 160.0}
    # time: TTFT is the (1 ms) prefill, each of the 3 later tokens takes (full - prefill) / 3
    assert r["ttft_p50_ms"] < r["latency_p50_ms"]
    assert r["tpot_ms"] == pytest.approx((r["latency_mean_ms"] - r["ttft_mean_ms"]) / 3)
    # energy at the fake meter's 20 W: prefill 20 W x TTFT / 8 requests (about 1 ms: 2.5 mJ);
    # decode 20 W x TPOT / 8 requests per token (about 2.5 mJ); whole request / 4 tokens
    assert r["energy_prefill_j_per_item"] == pytest.approx(20 * r["ttft_mean_ms"] / 1e3 / 8, rel=0.25)
    assert r["energy_decode_j_per_token"] == pytest.approx(20 * r["tpot_ms"] / 1e3 / 8, rel=0.25)
    assert r["energy_j_per_output_token"] == pytest.approx(r["energy_j_per_item"] / 4)
    assert r["output_tokens_per_s"] == pytest.approx(r["items_per_s"] * 4)
    assert len(r["samples"]["energy_prefill_j_per_item"]) == 3


def test_parallel_mode_measures_in_a_child_process_and_the_parent_writes_the_profile(tmp_path, cache_dir):
    # On a GPU box each GPU gets a process; here the CPU stands in, through the same code path:
    # a spawned child measures and sends events and records, the parent alone writes the file.
    zoo = write_zoo(tmp_path)
    res = invoke(["profile", "tiny", "--zoo", str(zoo), "--out", str(tmp_path / "o"), "--parallel",
                  "--model", "lin", *FAST], cache_dir)
    assert res.exit_code == 0, res.output
    assert "measuring 1 devices at once, one process each: cpu" in res.output
    doc = load_json(tmp_path / "o" / "tiny.json")
    assert doc["complete"] is True and set(doc["idle"]) == {"cpu"}
    recs = doc["records"]
    assert sorted(r["batch_size"] for r in recs) == [1, 8]
    assert all(r["status"] == "ok" and r["device"] == "cpu" and r["energy_method"] == "fake" for r in recs)


def test_devices_option_maps_indices_and_uuids(monkeypatch):
    from greenbench.cli.profile import device_specs
    from greenbench.measure import devices as devmod

    assert device_specs(None, "0, 1") == ("cuda:0", "cuda:1")
    assert device_specs(["cpu"], "GPU-8f3e") == ("cpu", "GPU-8f3e")
    assert device_specs(None, None) is None
    monkeypatch.setattr(devmod, "cuda_count", lambda: 3)
    assert device_specs(None, "all") == ("cuda:0", "cuda:1", "cuda:2")
    monkeypatch.setattr(devmod, "cuda_count", lambda: 0)
    with pytest.raises(devmod.DeviceError, match="no CUDA GPU"):
        device_specs(None, "all")


def test_devices_all_without_a_gpu_is_one_line_and_exit_2(tmp_path, cache_dir):
    zoo = write_zoo(tmp_path)
    res = invoke(["profile", "tiny", "--zoo", str(zoo), "--out", str(tmp_path / "o"), "--devices", "all", *FAST],
                 cache_dir)
    assert res.exit_code == 2
    assert "no CUDA GPU is visible" in res.output and "Traceback" not in res.output


class _NanLM(_BusyLM):
    def evaluate(self, batch):
        from greenbench.workloads import Score

        return Score(None, 10, "perplexity", {"perplexity": float("nan")})  # an fp16 overflow


def test_a_non_finite_quality_fails_the_point_and_the_profile_is_still_written(tmp_path, cache_dir, virtual_time,
                                                                               monkeypatch):
    monkeypatch.setattr(runmod, "build_workload", lambda *a, **k: _NanLM())
    zoo = write_zoo(tmp_path)
    res = invoke(["profile", "tiny", "--zoo", str(zoo), "--out", str(tmp_path / "o"), "--model", "lin", *FAST],
                 cache_dir)
    assert res.exit_code == 3, res.output  # nothing measured, said in one line per point, no traceback
    assert "Traceback" not in res.output
    recs = load_json(tmp_path / "o" / "tiny.json")["records"]
    assert {r["status"] for r in recs} == {"failed"}
    assert all("non-finite quality" in r["error"] for r in recs)


def test_a_profile_holding_nan_is_refused_in_one_line(tmp_path):
    from greenbench import profile as prof

    src = Path(__file__).parent.parent / "profiles" / "mnist1d-cpu-2core.json"
    doc = json.loads(src.read_text())
    doc["records"][0]["latency_p99_ms"] = float("nan")
    bad = tmp_path / "nan.json"
    bad.write_text(json.dumps(doc))  # json writes NaN, which is not JSON but Python reads it
    with pytest.raises(prof.ProfileError, match="latency_p99_ms"):
        prof.load(bad)
