"""End to end: `greenbench profile --quick` on the embedded default ladder, real meters, CPU.

Its models' first-use training (tests/conftest.py, ``trained_ladder_cache``) runs in the
background from the start of the session, through the same CLI, so this test only measures."""

import os
import subprocess
import sys

import pytest
from helpers import load_json

from greenbench import meters

METHODS = {"nvml_counter", "nvml_power", "rapl", "estimate", "unavailable"}


@pytest.mark.slow
def test_quick_profile_of_the_embedded_ladder(tmp_path, trained_ladder_cache):
    env = {**os.environ, "GREENBENCH_CACHE": str(trained_ladder_cache)}
    # every model of the ladder at its largest batch, which the checks below compare: batches 1
    # and 32 would triple the measuring (about 12 s more) and check nothing more here
    res = subprocess.run(
        [sys.executable, "-m", "greenbench", "profile", "--quick", "--out", str(tmp_path), "--device", "cpu",
         "--batch-size", "256"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert res.returncode == 0, res.stderr
    assert "Most accurate" in res.stdout and "J/item" in res.stdout
    doc = load_json(tmp_path / "mnist1d-quick.json")
    assert doc["complete"] and doc["settings"]["protocol"]["quick"] is True
    recs = doc["records"]
    assert all(r["status"] == "ok" for r in recs)
    # this machine's branch: RAPL where its powercap counters are readable, else the estimate
    expected = meters.RAPL if meters.RaplMeter().info().available else meters.ESTIMATE
    assert {r["energy_method"] for r in recs} == {expected}
    models = {r["model"] for r in recs}
    assert len(models) >= 4
    acc = {r["model"]: r["accuracy"] for r in recs}
    assert max(acc.values()) - min(acc.values()) >= 0.3
    assert min(acc.values()) < 0.6 and max(acc.values()) > 0.9
    for r in recs:
        assert "quick" in r["flags"]
        assert r["energy_method"] in METHODS
        assert r["accuracy_ci95"][0] <= r["accuracy"] <= r["accuracy_ci95"][1]
        if r["energy_method"] == "unavailable":
            assert r["energy_j_per_item"] is None and r["energy_reason"]
        else:  # on a machine without RAPL this is CodeCarbon's estimate, and says so
            lo, hi = r["energy_j_per_item_ci95"]
            assert 0 <= lo <= r["energy_j_per_item"] <= hi  # few spread repeats: lo stops at 0
            assert r["power_w"] > 0
    # larger models cost more per item at the same batch size (estimate or measurement alike)
    per_item = {(r["model"], r["batch_size"]): r["energy_j_per_item"] for r in recs}
    assert per_item[("linear", 256)] < per_item[("cnn-64", 256)]
