"""benchmarks/gpu_check.py off the GPU: its plan and estimate, the bare reference window, rows and
verdicts, the files it writes as it goes, and its hook in greenbench's runner (fake counters)."""

import importlib.util
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from fakes import FakeNvml
from helpers import TINY_ZOO, write_zoo

from greenbench.measure import runner as runner
from greenbench.measure.protocol import Protocol

ROOT = Path(__file__).parent.parent
_spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(_spec)
sys.modules["gpu_check"] = gpu_check  # its dataclasses look their module up while it loads
_spec.loader.exec_module(gpu_check)

FAKE_UUID = "GPU-fake0000-0000-0000-0000-000000000000"


class StepClock:
    """A clock that advances ``step_s`` (1 ms) at every read: timings without the wall clock."""

    def __init__(self, step_s=0.001):
        self.t, self.step_s = 0.0, step_s

    def __call__(self):
        self.t += self.step_s
        return self.t


class Spin:
    def __init__(self, seconds):
        self.seconds, self.calls = seconds, 0

    def __call__(self):
        self.calls += 1
        end = time.perf_counter() + self.seconds
        while time.perf_counter() < end:
            pass


# -------------------------------------------------------------------------------- the plan


def test_default_plan_covers_the_three_ladders_and_fits_the_budget():
    planned = gpu_check.plan_stages(gpu_check.STAGES)
    assert [p.stage.ladder for p in planned] == ["gpu-check-vision", "gpu-check-gpt2", "mnist1d"]
    assert planned[1].phases == ("request", "prefill") and planned[0].phases == ("request",)
    st = gpu_check.Settings()
    assert st.repeats >= 3 and st.window_s() == 2.0  # greenbench's default windows
    est = gpu_check.estimate(planned, st)
    assert est.total_s <= gpu_check.BUDGET_S == 420
    assert est.total_s == pytest.approx(sum(s for _, s in est.lines))
    text = gpu_check.plan_text(planned, st, est, gpu_check.BUDGET_S)
    for word in ("resnet18", "gpt2-124m", "linear", "prefill", "3 repeats", "idle baseline", "tick alignment",
                 "start-up", "within the budget"):
        assert word in text
    # the reference is sized so that its own error is well under the 2% agreement target
    assert gpu_check.reference_se(st) < gpu_check.AGREE_TARGET / 3


def test_estimate_follows_the_protocol_minimums():
    st = gpu_check.Settings(repeats=3, warmup_s=0.25, ref_multiple=2, ref_warmup_s=0.2, period_s=0.1)
    # a 1 s step: warm-up of 2 steps, window of 3 steps, 4 periods of alignment, 1 s of reference
    # warm-up plus half a period of phase spread
    # warm-up, then twice greenbench's steps
    assert gpu_check.window_pair_s(1.0, st) == pytest.approx(2 + 3 + 0.4 + 3e-6 * 4 / 1 + 1 + 0.05 + 6, abs=0.01)
    # a 10 ms step: 0.25 s warm-up, 2 s (+ half a step), 0.4 s, then 0.2 + 0.05 + 2 x 2.005
    assert gpu_check.window_pair_s(0.01, st) == pytest.approx(0.25 + 2.005 + 0.4 + 0.2 + 0.05 + 4.01, abs=0.01)
    planned = gpu_check.plan_stages(gpu_check.STAGES)
    base = gpu_check.estimate(planned, st).total_s
    assert gpu_check.estimate(planned, gpu_check.Settings(repeats=5)).total_s > base
    # a slower counter lengthens greenbench's windows (20 updates) and so the estimate
    assert gpu_check.Settings(period_s=0.2).window_s() == 4.0
    assert gpu_check.estimate(planned, gpu_check.Settings(period_s=0.2)).total_s > base


def test_over_budget_exits_non_zero(capsys):
    assert gpu_check.main(["--dry-run"]) == 0
    assert gpu_check.main(["--dry-run", "--budget-s", "60"]) == 2
    assert "over --budget-s" in capsys.readouterr().err
    assert gpu_check.main(["--dry-run", "--full"]) == 2  # the whole ladders do not fit 7 minutes
    assert gpu_check.main(["--dry-run", "--ladder", "vision", "--budget-s", "200"]) == 0


def test_dry_run_prints_a_plan_under_seven_minutes_without_a_gpu():
    out = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--dry-run"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    total = re.search(r"([\d.]+) s  total", out.stdout)
    assert total and float(total.group(1)) < 420
    assert "gpu-check-vision" in out.stdout and "mnist1d" in out.stdout


def test_without_a_gpu_the_real_run_stops_after_the_plan(capsys, tmp_path):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    assert gpu_check.main(["--out", str(tmp_path / "gpu")]) == 2
    captured = capsys.readouterr()
    assert "estimated time" in captured.out and "no CUDA GPU" in captured.err
    assert not (tmp_path / "gpu").exists()  # nothing written


# ------------------------------------------------------------------- the bare reference window


def test_reference_window_reads_the_counter_twice_around_the_work():
    nvml = FakeNvml(power_w=300.0, tick_s=0.01)
    counter = gpu_check.BareNvml(FAKE_UUID, nvml=nvml)
    step, syncs = Spin(0.002), []
    reads_before = nvml.energy_reads
    out = gpu_check.reference_window(step, lambda: syncs.append(step.calls), counter, steps=20, warmup_s=0.0)
    assert nvml.energy_reads - reads_before == 2  # plain edges: no spinning for ticks
    assert out["steps"] == 20 and step.calls == 21  # one warm-up step, then the 20 measured
    assert syncs == [1, 21]  # synced after the warm-up and after the last measured step
    # 300 W over the window, give or take one 10 ms tick at each edge
    assert abs(out["joules"] - 300.0 * out["seconds"]) <= 300.0 * 0.01 * 2 + 1e-9
    counter.close()
    assert nvml.init_count == 0


def test_probe_measures_read_cost_and_update_period():
    clock = StepClock()
    nvml = FakeNvml(power_w=300.0, tick_s=0.05, clock=clock)
    counter = gpu_check.BareNvml(FAKE_UUID, nvml=nvml)
    p = gpu_check.probe_counter(counter, reads=200, intervals=6, clock=clock)
    # each timed read spans two clock reads (its own and the fake counter's): 2 ms
    assert p["read_cost_median_ms"] == pytest.approx(2.0) and p["read_cost_p99_ms"] == pytest.approx(2.0)
    assert p["reads"] == 200 and p["update_intervals"] == 6
    assert p["update_period_s"] == pytest.approx(0.05, abs=0.0021)


def test_probe_of_a_stuck_counter_has_no_period():
    clock = StepClock()
    counter = gpu_check.BareNvml(FAKE_UUID, nvml=FakeNvml(stuck=True, clock=clock))
    p = gpu_check.probe_counter(counter, reads=10, timeout_s=0.5, clock=clock)
    assert p["update_period_s"] is None and p["update_intervals"] == 0


# --------------------------------------------------------------------------- rows, verdicts


def _record(**kw):
    base = dict(model="resnet50", batch_size=32, precision="bf16", device="cuda:0", device_name="NVIDIA H200",
                status="ok", error=None, energy_j_per_item=1.0, energy_j_per_item_cv=0.003,
                samples={"energy_j_per_item": [1.0, 1.0, 1.0]}, energy_method="nvml_counter", window_s=2.1,
                counter_updates_min=21, flags=[], energy_prefill_j_per_item=None)
    base.update(kw)
    return SimpleNamespace(**base)


def _ref(j, se=0.005):
    return {"j_per_item": j, "cv": 0.01, "se": se, "windows": 3, "steps": 100, "seconds": 4.0}


def test_pooled_reference_is_sum_of_joules_over_sum_of_items():
    windows = [{"joules": 100.0, "steps": 10, "seconds": 4.0}, {"joules": 110.0, "steps": 10, "seconds": 4.0},
               {"joules": None, "steps": None, "seconds": None, "error": "NVMLError: lost"}]
    ref = gpu_check.pooled_reference(windows, batch=2, period_s=0.1)
    assert ref["j_per_item"] == pytest.approx(210.0 / 40) and ref["windows"] == 2
    assert ref["cv"] == pytest.approx(gpu_check.coefficient_of_variation([5.0, 5.5]))
    # quantisation: 25-27.5 W x 0.1 s / sqrt(6) per window, over 210 J
    se_q = ((25.0 * 0.1) ** 2 / 6 + (27.5 * 0.1) ** 2 / 6) ** 0.5 / 210.0
    assert ref["se_quantisation"] == pytest.approx(se_q)
    assert ref["se"] == pytest.approx(max(se_q, ref["cv"] / 2 ** 0.5))
    none = gpu_check.pooled_reference(windows[2:], batch=2, period_s=0.1)
    assert none["j_per_item"] is None and "lost" in none["error"]


def test_rows_meet_targets_only_within_2_percent_and_half_a_percent_cv():
    row = gpu_check.make_row
    assert row("v", _record(energy_j_per_item=1.019), "request", _ref(1.0))["meets_targets"]
    far = row("v", _record(energy_j_per_item=1.06), "request", _ref(1.0, se=0.003))
    assert not far["meets_targets"] and "agreement +6.00%" in far["why"] and "noise" not in far["why"]
    near = row("v", _record(energy_j_per_item=1.025), "request", _ref(1.0, se=0.006))
    assert not near["meets_targets"] and "may be noise" in near["why"]  # its interval reaches 2%
    noisy = row("v", _record(energy_j_per_item_cv=0.006), "request", _ref(1.0))
    assert not noisy["meets_targets"] and "CV 0.60%" in noisy["why"]
    assert not row("v", _record(energy_j_per_item=None), "request", _ref(1.0))["meets_targets"]
    assert "no reference" in row("v", _record(), "request", {"j_per_item": None, "error": "x"})["why"]
    failed = row("v", _record(status="failed", error="OutOfMemoryError: x"), "request", _ref(1.0))
    assert not failed["meets_targets"] and "failed" in failed["why"]
    wide = row("v", _record(), "request", _ref(1.0, se=0.02))
    assert "interval wider than the target" in wide["why"]
    ok = row("v", _record(energy_j_per_item=1.02, energy_j_per_item_cv=0.004), "request", _ref(1.0))
    assert ok["difference"] == pytest.approx(0.02)
    lo, hi = ok["difference_ci95"]
    assert lo < 0.02 < hi and hi - lo == pytest.approx(2 * 1.96 * 1.02 * (0.004 ** 2 / 3 + 0.005 ** 2) ** 0.5)
    text = gpu_check.table([ok, noisy])
    assert "| v | resnet50 | 32 | request | 1.02 | 0.40% | 1 | 1.00% | 0.50% | +2.00% [" in text
    assert "| met |" in text and "MISSED: CV 0.60%" in text
    assert text.endswith("1 of 2 rows meet both targets (agreement within 2%, greenbench CV at most 0.5%).")


def test_prefill_rows_use_the_prefill_figure_and_its_cv():
    r = _record(energy_prefill_j_per_item=0.5, samples={"energy_j_per_item": [1.0] * 3,
                                                       "energy_prefill_j_per_item": [0.5, 0.501, 0.499]})
    row = gpu_check.make_row("lm", r, "prefill", _ref(0.5))
    assert row["greenbench_j_per_item"] == 0.5 and row["greenbench_cv"] == pytest.approx(0.002)
    assert row["meets_targets"]
    # greenbench records may carry the counter's update period; the row passes it on
    assert gpu_check.make_row("lm", SimpleNamespace(**vars(r), counter_update_period_s=0.1), "request",
                              _ref(1.0))["greenbench_update_period_s"] == 0.1


def test_files_are_rewritten_after_every_row_and_survive_a_killed_run(tmp_path):
    out = tmp_path / "gpu"
    res = gpu_check.Results(out, {"header": [("NVML counter", "read cost median 2.00 ms")], "probe": 1})
    res.add_reference({"model": "a", "steps": 10, "joules": 1.0})
    lines = (out / "gpu-check-reference.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["joules"] == 1.0
    r1 = gpu_check.make_row("v", _record(model="a"), "request", _ref(1.0))
    res.add_row(r1)
    # what a killed run leaves: read the files, never the object
    doc = json.loads((out / "gpu-check.json").read_text())
    assert [r["model"] for r in doc["rows"]] == ["a"] and doc["complete"] is False
    md = (out / "gpu-check.md").read_text()
    assert "| v | a |" in md and "so far" in md and "read cost median 2.00 ms" in md
    res.add_row(gpu_check.make_row("v", _record(model="b", energy_j_per_item=1.5), "request", _ref(1.0)))
    doc = json.loads((out / "gpu-check.json").read_text())
    assert [r["model"] for r in doc["rows"]] == ["a", "b"] and doc["rows_met"] == 1
    assert "| v | b |" in (out / "gpu-check.md").read_text()
    res.write(complete=True)
    md = (out / "gpu-check.md").read_text()
    assert "so far" not in md and "1 of 2 rows meet both targets" in md
    assert sorted(p.name for p in out.iterdir()) == ["gpu-check-reference.jsonl", "gpu-check.json", "gpu-check.md"]


# ------------------------------------------------------------------- the hook in the runner


def _run_tiny(tmp_path, monkeypatch, zoo_text, ladder, ref_multiple=1):
    """The embedded (or tiny LM) ladder through greenbench's runner on the CPU, fake meter for
    greenbench, a FakeNvml counter for the reference; a spy records the order of the windows."""
    order = []
    real_run_window = runner.run_window

    def spy_window(*a, **kw):
        trial = real_run_window(*a, **kw)
        order.append(("greenbench", trial.steps))
        return trial

    real_ref = gpu_check.reference_window

    def spy_ref(step, sync, counter, steps, warmup_s):
        order.append(("reference", steps))
        return real_ref(step, sync, counter, steps, warmup_s)

    monkeypatch.setattr(runner, "run_window", spy_window)
    monkeypatch.setattr(gpu_check, "reference_window", spy_ref)
    stage = gpu_check.Stage("tiny", ladder, zoo=write_zoo(tmp_path, zoo_text))
    (ps,) = gpu_check.plan_stages([stage])
    st = gpu_check.Settings(repeats=3, warmup_s=0.0, idle_s=0.1, ref_multiple=ref_multiple, ref_warmup_s=0.0)
    proto = Protocol(repeats=3, min_window_s=0.03, min_counter_updates=3, warmup_s=0.0, idle_s=0.1)
    # the reference's counter ticks at every read (a clock of its own that each read moves by one
    # tick of 2**-10 s, at 1.024 W: 1 mJ, all exact in binary): every reference window sees
    # exactly one tick, however short this machine made it
    tick = 2.0 ** -10
    counter = gpu_check.BareNvml(FAKE_UUID, nvml=FakeNvml(power_w=1.024, tick_s=tick, clock=StepClock(tick)))
    res = gpu_check.Results(tmp_path / "gpu", {})
    rows_seen = []
    real_add_row = res.add_row

    def add_row(row):  # at each row, the files already hold every earlier one
        rows_seen.append(len(json.loads(res.json.read_text())["rows"]))
        real_add_row(row)

    res.add_row = add_row
    profile = gpu_check.run_stage(ps, "cpu", st, counter, res, cache_dir=tmp_path / "cache", meter="fake",
                                  period_s=0.01, protocol=proto)
    counter.close()
    return ps, profile, res, order, rows_seen


def test_hook_runs_a_reference_window_after_every_greenbench_window(tmp_path, monkeypatch):
    ps, profile, res, order, rows_seen = _run_tiny(tmp_path, monkeypatch, TINY_ZOO, "tiny")
    points = len(ps.models) * len(ps.batch_sizes)
    assert len(order) == 2 * points * 3
    for (kind_a, gb_steps), (kind_b, ref_steps) in zip(order[::2], order[1::2], strict=True):
        assert (kind_a, kind_b) == ("greenbench", "reference") and ref_steps == gb_steps
    log = [json.loads(x) for x in res.log.read_text().splitlines()]
    assert len(log) == points * 3 and all(e["steps"] == e["greenbench_steps"] for e in log)
    # the windows in the log are the ones greenbench's records counted
    for r in profile.records:
        mine = sorted(e["greenbench_steps"] for e in log if (e["model"], e["batch_size"]) == (r.model, r.batch_size))
        assert mine == sorted(int(s) for s in r.samples["steps"])
    # one row per point, written as each point finished, each with 3 reference windows
    assert rows_seen == list(range(points))
    doc = json.loads(res.json.read_text())
    assert len(doc["rows"]) == points
    for row in doc["rows"]:
        assert row["reference_windows"] == 3 and row["greenbench_method"] == "fake"
        assert row["greenbench_j_per_item"] > 0
        b = row["batch_size"]
        steps = [e["steps"] for e in log if (e["model"], e["batch_size"]) == (row["model"], b)]
        assert row["reference_j_per_item"] == pytest.approx(3 * 0.001 / (sum(steps) * b))  # 1 mJ each
    files = sorted(p.name for p in (tmp_path / "gpu").iterdir())
    assert len(files) == 4 and files[-1].startswith("tiny-")  # the log, the table twice, the profile
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", f) for f in files)  # names the device's $OUT takes back


TINY_LM_ZOO = """
version: 1
ladders:
  tiny-lm:
    workload: hf-lm
    dataset: {synthetic: true, size: 4, seed: 0}
    generation: {prompt_tokens: 8, output_tokens: 3}
    models:
      - {name: g, weights: random,
         config: {model_type: gpt2, n_layer: 1, n_embd: 16, n_head: 2, vocab_size: 64, n_positions: 32}}
    batch_sizes: [2]
    precisions: [fp32]
    devices: [cpu]
"""


def test_hook_covers_the_prefill_windows_of_a_causal_lm(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    _, profile, res, order, _ = _run_tiny(tmp_path, monkeypatch, TINY_LM_ZOO, "tiny-lm", ref_multiple=2)
    assert profile.records[0].status == "ok", profile.records[0].error
    assert len(order) == 2 * 2 * 3  # request and prefill windows, 3 repeats, each with its reference
    for (_, gb_steps), (_, ref_steps) in zip(order[::2], order[1::2], strict=True):
        assert ref_steps == 2 * gb_steps
    log = [json.loads(x) for x in res.log.read_text().splitlines()]
    assert [e["phase"] for e in log] == ["request", "prefill"] * 3
    rows = json.loads(res.json.read_text())["rows"]
    assert [r["phase"] for r in rows] == ["request", "prefill"]
    assert rows[1]["greenbench_j_per_item"] == profile.records[0].energy_prefill_j_per_item
    assert all(r["reference_windows"] == 3 for r in rows)


def test_vision_ladder_falls_back_to_transformers_resnets_of_the_same_shapes():
    lad = gpu_check.ladder_for_check("gpu-check-vision")
    assert [m.name for m in lad.models] == ["resnet18", "resnet50", "resnet152"]
    try:
        import torchvision  # noqa: F401
        assert lad.models[0].source == "torchvision"
    except ImportError:
        assert lad.models[2].config["depths"] == [3, 8, 36, 3] and lad.models[0].weights == "random"


# ------------------------------------------------------------- the check on a simulated H200


def test_the_check_on_a_simulated_h200_meets_the_targets_in_the_estimated_time(tmp_path):
    """The default plan through greenbench's runner and the reference hook on tests/simgpu.py's
    H200 (virtual clock, 100 ms counter ticks with noise, 2 ms NVML reads): a protocol without
    bias passes every row, and the estimate's windows and idle baselines match the simulated
    time (builds and start-up are not simulated)."""
    simgpu = pytest.importorskip("simgpu")
    planned = gpu_check.plan_stages(gpu_check.STAGES)
    models = {}
    for ps in planned:
        ps.phases = ("request",)  # the simulated workload has no prefill phase
        for m in ps.models:
            models[m] = simgpu.SimStepModel(lambda b, ps=ps, m=m: gpu_check.assumed_step_s(ps, m, b, "request"))
    st = gpu_check.Settings()
    est = dict((label, s) for label, s in gpu_check.estimate(planned, st).lines)
    res = gpu_check.Results(tmp_path / "gpu", {})
    with simgpu.simulated(simgpu.SimConfig(), models) as gpu:
        counter = gpu_check.BareNvml(simgpu.SIM_UUID)
        probe = gpu_check.probe_counter(counter)
        assert probe["update_period_s"] == pytest.approx(0.1, rel=0.01)
        assert probe["read_cost_median_ms"] == pytest.approx(2.0, rel=0.01)
        for ps in planned:
            t0 = gpu.t_s
            gpu_check.run_stage(ps, "cuda:0", st, counter, res, cache_dir=tmp_path / "cache", period_s=0.1)
            expected = sum(s for label, s in est.items() if label.startswith(f"{ps.stage.key}:")
                           and ("idle" in label or "repeats" in label))
            assert gpu.t_s - t0 == pytest.approx(expected, rel=0.1), ps.stage.key
        counter.close()
    rows = json.loads(res.json.read_text())["rows"]
    assert len(rows) == 8
    assert all(r["meets_targets"] for r in rows), [(r["model"], r["batch_size"], r["why"]) for r in rows]


def test_main_on_a_simulated_h200_writes_the_table_and_exits_0(tmp_path, monkeypatch, capsys):
    simgpu = pytest.importorskip("simgpu")
    torch = pytest.importorskip("torch")
    models = {m: simgpu.constant_step(gpu_check.MNIST1D_STEP_S) for m in ("linear", "cnn-16")}
    out = tmp_path / "gpu"
    with simgpu.simulated(simgpu.SimConfig(), models):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        rc = gpu_check.main(["--ladder", "mnist1d", "--out", str(out), "--cache-dir", str(tmp_path / "cache")])
    stdout = capsys.readouterr().out
    assert rc == 0, stdout
    assert stdout.index("estimated time") < stdout.index("NVML: read cost")  # the plan comes first
    assert stdout.rstrip().endswith("2 of 2 rows meet both targets (agreement within 2%, greenbench CV at most 0.5%).")
    md = (out / "gpu-check.md").read_text()
    assert "read cost median 2.00 ms" in md and "update period median 100.00 ms (6 intervals)" in md
    assert "greenbench's meter: update period 100.00 ms, read cost 2.00 ms" in md  # its read_cost_s()
    doc = json.loads((out / "gpu-check.json").read_text())
    assert doc["complete"] and doc["rows_met"] == 2 and doc["meta"]["nvml_probe"]["reads"] == 200
    assert doc["meta"]["device"]["power_limit_w"] == 700.0  # read, never set
    names = sorted(p.name for p in out.iterdir())
    assert names == ["gpu-check-reference.jsonl", "gpu-check.json", "gpu-check.md",
                     "mnist1d-nvidia-h200-simulated.json"]
