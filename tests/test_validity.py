"""Validity checks beside the energy figure: host load (real psutil), GPU edge readings, threads."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from helpers import FAST, load_json, write_zoo
from typer.testing import CliRunner

from greenbench.cli import app
from greenbench.measure import devices as devices
from greenbench.measure.protocol import run_window
from greenbench.measure.records import power_limit_slack, validity_flags
from greenbench.meters import FakeMeter
from greenbench.profile import Provenance


def _trials(*others):
    return [SimpleNamespace(host_other_cores=o) for o in others]


def _readings(n, **end):
    return [SimpleNamespace(checks={"start": {}, "end": dict(end)}) for _ in range(n)]


@pytest.mark.parametrize("cores,threads,others,flagged", [
    (2, 1, (0.05, 1.0, 0.1), True),   # a neighbour took one of two cores, in one window
    (2, 1, (0.3, 0.2, 0.4), False),   # background noise
    (16, 1, (1.0, 1.0, 1.0), False),  # one busy core of sixteen leaves plenty
    (16, 8, (8.0, 7.9, 8.1), True),   # half the machine busy, and the run wants eight threads
])
def test_host_busy_when_other_processes_leave_too_few_free_cores(cores, threads, others, flagged):
    prov = Provenance(cpu_affinity_count=cores, torch_threads=threads)
    flags = validity_flags(_readings(3), _trials(*others), False, prov)
    assert ("host_busy" in flags) is flagged


def test_host_busy_beside_a_gpu_needs_one_core_not_the_threads():
    prov = Provenance(cpu_affinity_count=4, torch_threads=2)
    busy = _trials(2.0, 2.0, 2.0)  # two of four cores taken
    assert "host_busy" not in validity_flags(_readings(3), busy, True, prov)  # the GPU's host: 1
    assert "host_busy" in validity_flags(_readings(3), busy, False, prov)  # the CPU run wants 2


@pytest.mark.parametrize("listed,own,flagged", [
    ([11, 12], {11, 12, 1}, False),  # a launched server's processes and ours: by design
    ([11, 12, 99], {11, 12, 1}, True),  # and one more: a tenant whose energy is in the counter
    ([11, 99], set(), False),  # an attached server: whose processes are whose is unknown here
    ([5011, 5099], {11, 12, 1}, False),  # another namespace's PIDs (a container): nobody can be told apart
])
def test_a_served_point_judges_gpu_tenants_against_its_own_processes(listed, own, flagged):
    edges = [SimpleNamespace(checks={"start": {"gpu_pids": listed, "other_gpu_pids": listed},
                                     "end": {"gpu_pids": listed}}) for _ in range(3)]
    flags = validity_flags(edges, _trials(0, 0, 0), True, Provenance(), frozenset(own))
    assert ("other_gpu_processes" in flags) is flagged
    # in process (no own set given), the meter's own judgement at the edges stands
    assert "other_gpu_processes" in validity_flags(edges, _trials(0, 0, 0), True, Provenance())


def test_clock_drift_and_temperature_drift_from_edge_readings():
    steady = [SimpleNamespace(checks={"start": {"temperature_c": 50.0},
                                      "end": {"sm_clock_mhz": 1980.0, "temperature_c": 52.0}}) for _ in range(3)]
    assert validity_flags(steady, _trials(None, None, None), True, Provenance()) == []
    drifting = [SimpleNamespace(checks={"start": {"temperature_c": 40.0 + 6 * i},
                                        "end": {"sm_clock_mhz": 1980.0 - 150 * i, "temperature_c": 44.0 + 6 * i}})
                for i in range(3)]
    assert set(validity_flags(drifting, _trials(None, None, None), True, Provenance())) == \
        {"sm_clock_drift", "temperature_drift"}


def test_power_limit_slack_shrinks_with_the_window():
    assert power_limit_slack(2.0) == pytest.approx(0.025)
    assert power_limit_slack(0.3) == pytest.approx(0.02 + 0.01 / 0.3)
    assert power_limit_slack(0.3) < 0.06  # never a whole counter tick's worth (33% at 0.3 s)


def _hogs(n):
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def test_other_processes_load_is_measured_by_psutil_during_a_real_window():
    """Real psutil: with every CPU of this process kept busy by other processes, the window sees
    them (and the run is flagged); this process's own spinning step is not counted as theirs."""
    pytest.importorskip("psutil")
    cpus = len(devices.affinity())
    hogs = _hogs(cpus)
    try:
        def spin():
            x = 0
            for i in range(20_000):
                x += i

        trial = run_window(spin, lambda: None, [FakeMeter(20.0, 0.01)], 0.6)
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    assert trial.host_other_cores is not None and trial.host_other_cores >= 0.4 * cpus
    flags = validity_flags([trial.readings[0]], [trial], False,
                           Provenance(cpu_affinity_count=cpus, torch_threads=max(1, cpus // 2)))
    assert "host_busy" in flags


def test_threads_are_set_recorded_and_must_match_on_resume(tmp_path, cache_dir, virtual_time):
    zoo = write_zoo(tmp_path)
    out = tmp_path / "out"
    base = ["profile", "tiny", "--zoo", str(zoo), "--out", str(out), "--cache-dir", str(cache_dir),
            *FAST, "--model", "lin", "--batch-size", "1"]
    res = CliRunner().invoke(app, [*base, "--threads", "1"])
    assert res.exit_code == 0, res.output
    doc = load_json(out / "tiny.json")
    prov = doc["provenance"]
    assert prov["torch_threads"] == 1 and doc["settings"]["threads"] == 1
    assert prov["cpu_affinity_count"] == len(os.sched_getaffinity(0))
    assert prov["cpu_affinity"] and isinstance(prov["torch_interop_threads"], int)
    res = CliRunner().invoke(app, [*base, "--threads", "2", "--resume"])
    assert res.exit_code == 2 and "threads" in res.output


def test_default_threads_is_half_the_cpus_this_process_may_use():
    assert devices.default_threads() == max(1, len(devices.affinity()) // 2)
