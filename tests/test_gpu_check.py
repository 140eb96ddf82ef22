"""benchmarks/gpu_check.py off the GPU: its bare loop, rows and verdicts, with a fake counter."""

import importlib.util
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

_spec = importlib.util.spec_from_file_location(
    "gpu_check", Path(__file__).parent.parent / "benchmarks" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_check)


class WallCounter:
    """A counter at a constant 100 W: joules = 100 x wall time."""

    def joules(self):
        return 100.0 * time.perf_counter()


class Spin:
    def __init__(self, seconds):
        self.seconds = seconds

    def __call__(self):
        end = time.perf_counter() + self.seconds
        while time.perf_counter() < end:
            pass


class FakeLM:
    def make_step(self, b):
        return Spin(0.004)

    def make_phase_step(self, phase, b):
        return Spin(0.001)

    def sync(self):
        pass


def test_bare_loop_reads_the_counter_around_the_same_work():
    record = SimpleNamespace(batch_size=4, items_per_s=1000.0, output_tokens=8, ttft_mean_ms=1.0)
    out = gpu_check.bare_figures(None, record, "cuda:0", WallCounter(), FakeLM(), repeats=3, window_s=0.05)
    # 100 W x 4 ms / 4 items = 0.1 J per item; prefill 100 W x 1 ms / 4 = 0.025 J per request
    # (at least that: a loaded machine can only stretch a spinning step, and a per-batch mix-up
    # would be 4x off)
    assert 0.095 <= out["request"]["j_per_item"] < 0.25
    assert 0.0237 <= out["prefill"]["j_per_item"] < 0.0625
    assert out["request"]["steps"] == 12  # 0.05 s at the 250 steps/s greenbench measured
    assert len(out["request"]["samples"]) == 3


def test_rows_meet_targets_only_within_5_percent_and_2_percent_cv():
    r = SimpleNamespace(model="resnet50", batch_size=32, precision="bf16", device="cuda:0",
                        device_name="NVIDIA H100", energy_method="nvml_counter", flags=[])
    bare = {"j_per_item": 1.0, "cv": 0.01, "steps": 100}
    assert gpu_check._row("v", r, "request", 1.04, 0.015, bare)["meets_targets"]
    assert not gpu_check._row("v", r, "request", 1.06, 0.015, bare)["meets_targets"]  # 6% apart
    assert not gpu_check._row("v", r, "request", 1.00, 0.03, bare)["meets_targets"]  # CV 3%
    assert not gpu_check._row("v", r, "request", None, None, bare)["meets_targets"]  # no figure
    row = gpu_check._row("v", r, "request", 1.02, 0.01, bare)
    assert row["difference"] == pytest.approx(0.02)
    text = gpu_check.table([row])
    assert "| v | resnet50 | 32 | request | 1.02 | 1.00% | 1 | 1.00% | +2.00% | met |" in text
    assert "1 of 1 rows meet both targets" in text


def test_vision_ladder_falls_back_to_transformers_resnets_of_the_same_shapes():
    lad = gpu_check._ladder("gpu-check-vision")
    assert [m.name for m in lad.models] == ["resnet18", "resnet50", "resnet152"]
    try:
        import torchvision  # noqa: F401
        assert lad.models[0].source == "torchvision"
    except ImportError:
        assert lad.models[2].config["depths"] == [3, 8, 36, 3] and lad.models[0].weights == "random"
