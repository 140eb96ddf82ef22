import time

import numpy as np
import pytest
from helpers import install_virtual_clock

from greenbench.measure.protocol import (
    QUICK,
    Protocol,
    measure_idle,
    required_window_s,
    run_window,
    warm_up,
)
from greenbench.meters import clock
from greenbench.meters.base import COUNTER_DID_NOT_MOVE, CounterMeter, MeterInfo


class ClockMeter(CounterMeter):
    """A counter at constant power that ticks every ``tick_s`` of greenbench's clock: real time,
    or virtual time in the tests that take ``vclock`` (then nothing depends on the scheduler)."""

    method = "fake"
    domain = "test"

    def __init__(self, power_w=100.0, tick_s=0.005, stuck=False):
        super().__init__()
        self.power_w, self.tick_s, self.stuck = power_w, tick_s, stuck
        self.t0 = clock.now()

    def _read_j(self):
        if self.stuck:
            return 7.0
        ticks = int((clock.now() - self.t0) / self.tick_s)
        return ticks * self.tick_s * self.power_w

    def info(self):
        return MeterInfo(self.domain, self.method, True, "test")


@pytest.fixture
def vclock(monkeypatch):
    return install_virtual_clock(monkeypatch)


@pytest.mark.parametrize(
    "min_window,updates,period,expected",
    [(2.0, 20, 0.1, 2.0), (2.0, 20, 0.2, 4.0), (0.5, 20, None, 0.5), (1.0, 3, 0.001, 1.0), (0.1, 30, 0.05, 1.5)],
)
def test_minimum_window_covers_time_and_counter_updates(min_window, updates, period, expected):
    assert required_window_s(min_window, updates, period) == pytest.approx(expected)


def test_protocol_validates_and_quick_is_flagged():
    assert QUICK.quick and QUICK.repeats >= 3 and not Protocol().quick
    assert Protocol().repeats == 5 and Protocol().min_window_s == 2.0
    with pytest.raises(ValueError):
        Protocol(repeats=0)
    with pytest.raises(ValueError):
        Protocol(min_window_s=0)
    with pytest.raises(ValueError, match="at least 3"):
        Protocol(repeats=2)
    with pytest.raises(ValueError, match="finite"):
        Protocol(min_window_s=float("nan"))


def test_window_lasts_at_least_the_minimum_and_counts_every_step(vclock):
    calls = []
    syncs = []
    trial = run_window(lambda: calls.append(1), lambda: syncs.append(1), [ClockMeter()], 0.1, min_steps=3)
    assert trial.window_s >= 0.1
    assert trial.steps == len(calls) == trial.step_durations_s.size
    assert len(syncs) == 2  # one sync at each edge, none inside the loop
    assert np.all(trial.step_durations_s >= 0)


def test_window_energy_matches_power_times_duration(vclock):
    meter = ClockMeter(power_w=100.0, tick_s=0.002)
    trial = run_window(lambda: None, lambda: None, [meter], 0.2)
    r = trial.readings[0]
    assert r.valid and r.method == "fake"
    # one tick of quantisation at each edge at most
    assert r.energy_j == pytest.approx(100.0 * r.duration_s, abs=2 * 100.0 * 0.002 + 1e-9)
    assert r.counter_updates >= 90


def test_min_steps_is_honoured_even_for_slow_steps(vclock):
    trial = run_window(lambda: vclock.sleep(0.01), lambda: None, [ClockMeter()], 0.001, min_steps=5)
    assert trial.steps >= 5


def test_stuck_counter_is_invalid_not_zero(vclock):
    meter = ClockMeter(stuck=True)
    meter.max_align_s = 0.01
    trial = run_window(lambda: None, lambda: None, [meter], 0.02)
    r = trial.readings[0]
    assert COUNTER_DID_NOT_MOVE in r.flags and not r.valid


def test_headline_meter_begins_first_and_components_end_first():
    """The headline's spin to a tick stays out of the component (host) meters' windows at both
    ends: they begin after it and end before it."""
    order = []

    class Spy(ClockMeter):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def begin(self):
            order.append(("begin", self.name))
            return super().begin()

        def end(self, s, t_end=None, t_start=None):
            order.append(("end", self.name))
            return super().end(s, t_end, t_start)

    run_window(lambda: None, lambda: None, [Spy("head"), Spy("comp")], 0.01)
    assert order == [("begin", "head"), ("begin", "comp"), ("end", "comp"), ("end", "head")]


def test_a_failed_window_closes_every_meter_and_reraises():
    ended = []

    class Spy(ClockMeter):
        def end(self, s, t_end=None, t_start=None):
            ended.append(self)
            return super().end(s, t_end, t_start)

    meters = [Spy(), Spy()]

    def oom():
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        run_window(oom, lambda: None, meters, 0.05)
    assert sorted(map(id, ended)) == sorted(map(id, meters))


def test_energy_eaten_by_the_tail_is_null_not_zero():
    meter = ClockMeter(power_w=100.0, tick_s=0.002)
    start = meter.begin()
    # an end time long before the start: the tail correction exceeds the delta
    r = meter.end(start, t_end=start.t_s - 10.0)
    assert r.energy_j is None and not r.valid and "idle tail" in r.reason


def test_warm_up_runs_for_its_time_syncs_and_reports_its_rate(vclock):
    calls = []
    t = clock.now()
    rate = warm_up(lambda: (calls.append("step"), vclock.sleep(0.001)), lambda: calls.append("sync"), 0.05)
    elapsed = clock.now() - t
    n = calls.count("step")
    assert elapsed >= 0.05 and n >= 2 and calls[-1] == "sync"
    # in chunks that each end in a sync (a GPU's host cannot queue past the warm-up), a few only
    assert 1 <= calls.count("sync") <= 6
    assert rate == pytest.approx(n / elapsed, rel=0.2) and rate < 1000


def test_warm_up_of_a_device_that_queues_ahead_lasts_its_time_not_the_queue():
    """A step that returns at once but takes 50 ms on the device (the host queues ahead): the
    warm-up must still end near its 0.2 s, and report the device's rate, not the host's."""
    device = {"free": 0.0}
    t = {"now": 0.0}

    def step():
        t["now"] += 1e-5
        device["free"] = max(device["free"], t["now"]) + 0.05

    def sync():
        t["now"] = max(t["now"], device["free"])

    import greenbench.meters.clock as clk

    old = clk.now
    clk.now = lambda: t["now"]
    try:
        rate = warm_up(step, sync, 0.2)
    finally:
        clk.now = old
    assert 0.2 <= t["now"] <= 0.3
    assert rate == pytest.approx(20.0, rel=0.01)


def test_idle_baseline_measures_idle_power(vclock):
    readings = measure_idle([ClockMeter(power_w=40.0, tick_s=0.002)], 0.1)
    r = readings[0]
    assert r.energy_j / r.duration_s == pytest.approx(40.0, rel=0.1)


def test_cuda_path_times_every_step_with_events_on_the_measured_device(monkeypatch):
    """The GPU loop, with torch.cuda's Event and device context replaced by host-clock fakes."""
    import contextlib

    import torch

    entered = []

    class FakeEvent:
        made = 0

        def __init__(self, enable_timing=False):
            assert enable_timing
            FakeEvent.made += 1
            self.t = None

        def record(self, stream=None):
            self.t = time.perf_counter()

        def elapsed_time(self, other):  # milliseconds, as CUDA's
            return (other.t - self.t) * 1e3

    @contextlib.contextmanager
    def fake_device(dev):
        entered.append(str(dev))
        yield

    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "device", fake_device)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    calls = []
    trial = run_window(lambda: (calls.append(1), time.sleep(0.002)), lambda: None, [ClockMeter()], 0.05,
                       cuda_device="cuda:1", steps_per_s_hint=10.0)  # a low hint: the pool must grow
    assert entered == ["cuda:1"]
    assert trial.steps == len(calls) == trial.step_durations_s.size
    assert np.all(trial.step_durations_s >= 0.002)
    assert FakeEvent.made >= len(calls) + 1
