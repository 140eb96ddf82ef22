"""Meters: NVML over a fake pynvml, RAPL over a fake sysfs, CodeCarbon real and faked, replay."""

from __future__ import annotations

import math
import pathlib
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fakes import FakeClock, FakeNvml, ReplayMeter, read_counter_log

from greenbench import meters
from greenbench.meters import (
    COUNTER_DID_NOT_MOVE,
    COUNTER_WENT_BACKWARDS,
    COUNTER_WRAPPED,
    ESTIMATE,
    FAKE,
    NVML_COUNTER,
    RAPL,
    UNAVAILABLE,
    CodeCarbonMeter,
    FakeMeter,
    MeterError,
    NullMeter,
    NvmlMeter,
    RaplMeter,
    list_gpus,
    select_meters,
)
from greenbench.meters import rapl as raplmod

DATA = Path(__file__).parent / "data"


def nvml_meter(selector=0, **fake_kw):
    clock = FakeClock()
    fake = FakeNvml(clock=clock, **fake_kw)
    return NvmlMeter(selector, nvml=fake, clock=clock), fake, clock


def window(meter, clock, work_s):
    start = meter.begin()
    clock.advance(work_s)
    return meter.end(start)


# -- NVML -------------------------------------------------------------------------------------


def test_nvml_energy_is_power_times_duration():
    meter, _fake, clock = nvml_meter(power_w=300.0, tick_s=0.1)
    reading = window(meter, clock, 2.0)
    assert (reading.domain, reading.method, reading.flags) == ("gpu:0", NVML_COUNTER, ())
    assert reading.valid
    assert reading.duration_s == pytest.approx(2.0, abs=0.01)
    assert reading.energy_j == pytest.approx(300.0 * reading.duration_s, rel=0.005)
    assert reading.counter_updates in (20, 21)


def test_nvml_tail_correction_when_the_window_ends_mid_tick():
    # 300 W of work ends 50 ms into a 100 ms tick, then the GPU idles at 80 W: without the tail
    # correction the reading would carry 80 W x 50 ms extra (+1.3%).
    meter, fake, clock = nvml_meter(power_w=300.0, tick_s=0.1)
    start = meter.begin()
    clock.advance(1.05)
    fake.set_power(80.0)
    reading = meter.end(start)
    assert reading.valid
    expected_j = 300.0 * reading.duration_s
    assert abs(reading.energy_j - expected_j) / expected_j < 0.003


def test_nvml_counter_wrap_near_2_64():
    # the counter wraps 0.5 s after the start; in float joules near 2**64 mJ the spacing is 4 J
    meter, _fake, clock = nvml_meter(power_w=300.0, tick_s=0.1, offset_mj=2**64 - 150_000)
    reading = window(meter, clock, 2.0)
    assert COUNTER_WRAPPED in reading.flags
    assert reading.valid
    assert reading.energy_j == pytest.approx(300.0 * reading.duration_s, rel=0.005)
    # the same window (same fake clock sequence) far from the wrap gives the same energy, to 1 mJ
    plain_meter, _, plain_clock = nvml_meter(power_w=300.0, tick_s=0.1, offset_mj=12_345_678)
    plain = window(plain_meter, plain_clock, 2.0)
    assert plain.flags == () and plain.duration_s == reading.duration_s
    assert reading.energy_j == pytest.approx(plain.energy_j, abs=1e-3)


def test_nvml_counter_reset_is_not_taken_for_a_wrap():
    # a driver reload restarts the counter: flagged and invalid, never 2**64 mJ of energy
    meter, fake, clock = nvml_meter(power_w=300.0, offset_mj=5_000_000_000)
    start = meter.begin()
    clock.advance(1.0)
    tick_s = math.floor((clock.t_s - fake.t0_s) / fake.tick_s) * fake.tick_s
    fake.offset_mj = 10_000 - round(fake.gpus[0].energy_mj(tick_s))  # the counter restarts at 10 J
    reading = meter.end(start)
    assert COUNTER_WENT_BACKWARDS in reading.flags and COUNTER_WRAPPED not in reading.flags
    assert not reading.valid and reading.energy_j is None and "backwards" in reading.reason


def test_nvml_stuck_counter_is_invalid_not_zero():
    meter, _fake, clock = nvml_meter(stuck=True)
    reading = window(meter, clock, 1.0)
    assert COUNTER_DID_NOT_MOVE in reading.flags
    assert reading.valid is False
    assert reading.counter_updates == 0


def test_nvml_library_missing_gives_reason_and_no_silent_fallback(monkeypatch):
    meter, _fake, _ = nvml_meter(library_missing=True)
    info = meter.info()
    assert info.available is False and "library not found" in info.reason.lower()
    with pytest.raises(MeterError):
        meter.begin()
    meter.close()
    meter.close()
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(library_missing=True))
    headline, components = select_meters("cuda:0")
    assert isinstance(headline, NullMeter) and headline.method == UNAVAILABLE
    assert "library not found" in headline.info().reason.lower()
    assert len(components) == 1  # the host CPU meter, as a component only
    reading = headline.end(headline.begin())
    assert reading.energy_j is None and reading.reason


def test_nvml_without_counter_support():
    meter, fake, _ = nvml_meter(counter_supported=False)
    info = meter.info()
    assert not info.available and "no total-energy counter" in info.reason
    assert fake.init_count == 0  # shut down again after the failure
    rows = list_gpus(nvml=fake)
    assert rows[0]["energy_counter"] == "no" and "Not Supported" in rows[0]["reason"]


def test_nvml_info_power_limit_and_close_twice():
    meter, fake, _ = nvml_meter(power_limit_w=450.0)
    info = meter.info()
    assert info.available and info.details["uuid"].startswith("GPU-fake0000")
    assert info.details["driver_version"] and info.details["nvml_version"]
    assert meter.power_limit_w() == 450.0
    assert fake.init_count == 1
    meter.close()
    meter.close()
    assert fake.init_count == 0


def three_gpus(monkeypatch, visible=None):
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    clock = FakeClock()
    return FakeNvml(count=3, power_w=[100.0, 200.0, 300.0], clock=clock), clock


def selected_power_w(fake, clock, selector, **kw):
    meter = NvmlMeter(selector, nvml=fake, clock=clock, **kw)
    reading = window(meter, clock, 1.0)
    meter.close()
    return round(reading.energy_j / reading.duration_s, -1)


def test_nvml_selection_by_index_and_uuid(monkeypatch):
    fake, clock = three_gpus(monkeypatch)
    uuid2 = fake.gpus[2].uuid
    assert selected_power_w(fake, clock, 1) == 200.0
    assert selected_power_w(fake, clock, "cuda:1") == 200.0
    assert selected_power_w(fake, clock, uuid2) == 300.0
    # the UUID torch reports (no "GPU-" prefix) wins over the index
    assert selected_power_w(fake, clock, 0, uuid=uuid2[len("GPU-"):]) == 300.0
    assert NvmlMeter(uuid2, nvml=fake).domain == f"gpu:{uuid2}"
    assert not NvmlMeter("GPU-nope", nvml=fake).info().available


def test_nvml_honours_cuda_visible_devices(monkeypatch):
    fake, clock = three_gpus(monkeypatch, "2,0")
    assert selected_power_w(fake, clock, 0) == 300.0
    assert selected_power_w(fake, clock, 1) == 100.0
    info = NvmlMeter(2, nvml=fake).info()
    assert not info.available and "not visible" in info.reason
    fake, clock = three_gpus(monkeypatch, f"{FakeNvml(count=3).gpus[1].uuid[:12]},GPU-fake0000")
    assert selected_power_w(fake, clock, 0) == 200.0  # a UUID prefix, as CUDA accepts
    assert selected_power_w(fake, clock, 1) == 100.0
    fake, clock = three_gpus(monkeypatch, "MIG-abc")
    assert "MIG" in NvmlMeter(0, nvml=fake).info().reason


def test_list_gpus():
    fake = FakeNvml(count=2)
    rows = list_gpus(nvml=fake)
    assert [r["index"] for r in rows] == [0, 1] and rows.reason is None
    assert all(r["energy_counter"] == "yes" and r["uuid"].startswith("GPU-") for r in rows)
    assert fake.init_count == 0
    missing = list_gpus(nvml=FakeNvml(library_missing=True))
    assert missing == [] and "library not found" in missing.reason.lower()


def test_update_period_with_fake_clock():
    clock = FakeClock(step_s=0.0005)
    assert FakeMeter(50.0, 0.01, clock=clock).update_period_s() == pytest.approx(0.01, abs=0.0015)
    meter, _, _ = nvml_meter(tick_s=0.1)
    assert meter.update_period_s() == pytest.approx(0.1, abs=0.005)


# -- RAPL -------------------------------------------------------------------------------------

ZONES = {  # dir: (name, max_energy_range_uj)
    "intel-rapl:0": ("package-0", 262_143_328_850),
    "intel-rapl:0:0": ("core", 262_143_328_850),
    "intel-rapl:0:1": ("dram", 65_712_999_613),
    "intel-rapl:1": ("package-1", 262_143_328_850),
    "intel-rapl:1:0": ("dram", 65_712_999_613),
    "intel-rapl:2": ("psys", 262_143_328_850),
    "intel-rapl-mmio:0": ("package-0", 262_143_328_850),
}


def fake_sysfs(root: Path, values_uj: dict[str, int] | None = None) -> Path:
    for zone, (name, max_uj) in ZONES.items():
        d = root / zone
        d.mkdir(parents=True, exist_ok=True)
        (d / "name").write_text(name + "\n")
        (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
        (d / "energy_uj").write_text(f"{(values_uj or {}).get(zone, 1000)}\n")
    return root


def set_uj(root: Path, zone: str, value: int) -> None:
    (root / zone / "energy_uj").write_text(f"{value}\n")


def test_rapl_sums_package_and_dram_deltas(tmp_path):
    root = fake_sysfs(tmp_path)
    meter = RaplMeter(root)
    info = meter.info()
    assert info.available and info.method == RAPL and meter.domain == "cpu_package+dram"
    assert sorted(z["zone"] for z in info.details["zones"]) == [
        "intel-rapl:0", "intel-rapl:0:1", "intel-rapl:1", "intel-rapl:1:0"]
    before = meter.read_j()
    for zone, delta_uj in {"intel-rapl:0": 5_000_000, "intel-rapl:0:1": 1_000_000,
                           "intel-rapl:1": 3_000_000, "intel-rapl:1:0": 500_000,
                           "intel-rapl:0:0": 99_000_000, "intel-rapl:2": 99_000_000}.items():
        set_uj(root, zone, 1000 + delta_uj)  # core and psys must not count
    assert meter.read_j() - before == pytest.approx(9.5)


def test_rapl_wraps_each_zone_with_its_own_range(tmp_path):
    dram_max = ZONES["intel-rapl:0:1"][1]
    root = fake_sysfs(tmp_path, {"intel-rapl:0:1": dram_max - 2_000_000})
    meter = RaplMeter(root)
    before = meter.read_j()
    set_uj(root, "intel-rapl:0:1", 1_000_000)  # wrapped: 2 J to the top, 1 J after
    set_uj(root, "intel-rapl:0", 1000 + 4_000_000)
    assert meter.read_j() - before == pytest.approx(7.0)


def test_rapl_window_over_changing_counters(tmp_path):
    root = fake_sysfs(tmp_path)
    clock = FakeClock(step_s=0.0002)
    power_w = {"intel-rapl:0": 40.0, "intel-rapl:0:1": 5.0, "intel-rapl:1": 30.0, "intel-rapl:1:0": 5.0}

    def hardware_clock():  # RAPL updates about every 1 ms; the package-0 counter wraps mid-window
        t_s = clock()
        for zone, p in power_w.items():
            start_uj = ZONES[zone][1] - 10_000_000 if zone == "intel-rapl:0" else 0
            ticks_s = math.floor((t_s - 1000.0) / 0.001) * 0.001
            set_uj(root, zone, int(start_uj + ticks_s * p * 1e6) % ZONES[zone][1])
        return t_s

    meter = RaplMeter(root, clock=hardware_clock)
    start = meter.begin()
    clock.advance(0.5055)
    reading = meter.end(start)
    assert reading.valid and COUNTER_WRAPPED in reading.flags
    assert reading.energy_j == pytest.approx(80.0 * reading.duration_s, rel=0.01)


def test_rapl_permission_denied_is_unavailable_with_the_fix(tmp_path, monkeypatch):
    root = fake_sysfs(tmp_path)
    real_read_text = pathlib.Path.read_text

    def read_text(self, *a, **kw):
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_text(self, *a, **kw)

    monkeypatch.setattr(pathlib.Path, "read_text", read_text)
    info = RaplMeter(root).info()
    assert not info.available
    assert "permission denied" in info.reason and "chmod a+r" in info.reason and "root" in info.reason


def test_rapl_missing_root_or_zones(tmp_path, monkeypatch):
    info = RaplMeter(tmp_path / "absent").info()
    assert not info.available and "does not exist" in info.reason
    assert not RaplMeter(tmp_path).info().available  # exists, but no package zone
    with pytest.raises(MeterError):
        RaplMeter(tmp_path).begin()
    # --meter rapl without RAPL: a NullMeter with the reason, never a silent CodeCarbon estimate
    monkeypatch.setattr(raplmod, "DEFAULT_ROOT", tmp_path / "absent")
    headline, _ = select_meters("cpu", prefer="rapl")
    assert isinstance(headline, NullMeter) and "does not exist" in headline.reason


def test_amd_rapl_naming_and_select_prefers_rapl(tmp_path, monkeypatch):
    d = tmp_path / "amd-rapl:0"
    d.mkdir()
    (d / "name").write_text("package-0\n")
    (d / "max_energy_range_uj").write_text("4294967295\n")
    (d / "energy_uj").write_text("5\n")
    assert RaplMeter(tmp_path).info().available
    monkeypatch.setattr(raplmod, "DEFAULT_ROOT", tmp_path)
    headline, components = select_meters("cpu")
    assert isinstance(headline, RaplMeter) and headline.domain == "cpu_package" and components == []


# -- CodeCarbon -------------------------------------------------------------------------------


def test_codecarbon_real_short_window_is_a_labelled_estimate(capfd):
    clock = FakeClock()  # greenbench's side of the window; CodeCarbon's own figure stays real
    meter = CodeCarbonMeter("USA", clock=clock)
    assert meter.info().method == ESTIMATE
    start = meter.begin()
    t_end = time.perf_counter() + 0.3
    while time.perf_counter() < t_end:
        pass
    clock.advance(0.3)  # the window's 0.3 s on the meter's clock, however the spin was scheduled
    # no CodeCarbon sampling thread runs inside the window (its 1 s monitor is cancelled)
    assert [t for t in threading.enumerate() if isinstance(t, threading.Timer) and t.is_alive()] == []
    reading = meter.end(start)
    meter.close()
    meter.close()
    assert (reading.method, reading.domain) == (ESTIMATE, "cpu+ram")
    assert reading.energy_j is not None and reading.energy_j > 0
    assert reading.duration_s == pytest.approx(0.3, abs=0.05)
    info = meter.info()
    assert "estimate" in info.reason and info.details["cpu_model"]
    out, err = capfd.readouterr()
    assert out == "" and err == ""


class FakeData:
    def __init__(self, cpu_kwh, ram_kwh, gpu_kwh):
        self.cpu_energy, self.ram_energy, self.gpu_energy = cpu_kwh, ram_kwh, gpu_kwh


class FakeTracker:
    def __init__(self, result):
        self.result = result

    def get_detected_hardware(self):
        return {"cpu_model": "Fake CPU"}

    def start_task(self, task_name=None):
        pass

    def stop_task(self, task_name=None):
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


@pytest.mark.parametrize("result, fragment", [
    (None, "no data"),
    (RuntimeError("boom"), "boom"),
    (FakeData(0.0, 0.0, 0.0), "0.0 J"),
])
def test_codecarbon_failures_become_unavailable(result, fragment):
    meter = CodeCarbonMeter(tracker_factory=lambda: FakeTracker(result))
    reading = meter.end(meter.begin())
    assert reading.method == UNAVAILABLE and reading.energy_j is None
    assert not reading.valid and fragment in reading.reason


def test_codecarbon_never_adds_its_gpu_figure():
    meter = CodeCarbonMeter(tracker_factory=lambda: FakeTracker(FakeData(1e-6, 2e-6, 1.0)))
    reading = meter.end(meter.begin())
    assert reading.method == ESTIMATE and reading.energy_j == pytest.approx(10.8)


# -- replay, fake, selection, import hygiene ---------------------------------------------------


def test_replay_reproduces_the_log_delta():
    pairs, meta = read_counter_log(DATA / "nvml_counter_synthetic.csv")
    assert meta["method"] == FAKE and "SYNTHETIC" in (DATA / "nvml_counter_synthetic.csv").read_text()
    clock = FakeClock()
    meter = ReplayMeter(DATA / "nvml_counter_synthetic.csv", clock=clock)
    t0_s = clock.t_s  # the clock at construction (its one read there) is the log's time zero
    clock.advance(0.25)
    start = meter.begin()
    clock.advance(2.05)
    reading = meter.end(start)
    # the log's own energy between the start tick and the end of the work, by interpolation
    times = [t for t, _ in pairs]
    values = [e for _, e in pairs]
    start_rel_s = start.t_s - t0_s
    end_rel_s = start_rel_s + reading.duration_s

    def at(t_s):
        i = max(k for k, t in enumerate(times) if t <= t_s)
        return values[i] + (values[i + 1] - values[i]) * (t_s - times[i]) / (times[i + 1] - times[i])

    expected_j = at(end_rel_s) - at(start_rel_s)
    assert (reading.method, reading.domain) == (FAKE, "gpu:0")
    assert reading.energy_j == pytest.approx(expected_j, rel=0.005)
    assert reading.counter_updates in (20, 21)
    default = ReplayMeter([(0.0, 0.0), (0.1, 1.0)], clock=FakeClock())
    assert default.method == NVML_COUNTER


def test_select_meters_fake_none_and_bad_choice():
    headline, components = select_meters("cuda:0", prefer="fake")
    assert isinstance(headline, FakeMeter) and headline.domain == "gpu:0"
    start = headline.begin()
    time.sleep(0.1)
    reading = headline.end(start)
    assert reading.method == FAKE and reading.energy_j == pytest.approx(50 * reading.duration_s, rel=0.1)
    assert [c.domain for c in components] == ["cpu_package"]
    off, none_components = select_meters("cpu", prefer="none")
    assert off.info().reason == "energy metering turned off (--meter none)" and none_components == []
    with pytest.raises(ValueError):
        select_meters("cpu", prefer="bogus")


def test_describe_energy_says_why(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(library_missing=True))
    monkeypatch.setattr(raplmod, "DEFAULT_ROOT", tmp_path / "absent")
    rows = meters.describe_energy(["cpu", "cuda:0"])
    by_role = {(r.details["device"], r.details["role"]): r for r in rows}
    assert by_role[("cpu", "headline")].method == ESTIMATE
    assert "does not exist" in by_role[("cpu", "headline")].details["not_used"]["rapl"]
    gpu = by_role[("cuda:0", "headline")]
    assert gpu.method == UNAVAILABLE and not gpu.available and "nvml" in gpu.details["not_used"]
    assert by_role[("cuda:0", "component")].domain == "cpu+ram"


def test_import_touches_no_vendor_module():
    code = (
        "import sys, greenbench.meters; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pynvml', 'codecarbon')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
