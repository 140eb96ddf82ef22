"""CodeCarbonMeter.estimate_provenance(): the TDP and RAM power of the estimate, against the real
CodeCarbon installed here (offline tracker) and against fake trackers that lack its attributes.

The underscore names used here are CodeCarbon's own (``_hardware``, ``_tdp``, ...), which it has
no public API for and greenbench's meter reads: the tests hold the meter to them."""

import io
import math
import time

import codecarbon  # a dependency of greenbench (pyproject): these tests run the real one
import psutil
import pytest
from codecarbon.core import cpu as cc_cpu
from codecarbon.core.util import count_physical_cpus
from codecarbon.external import hardware as cc_hw
from codecarbon.external.ram import RAM as CodeCarbonRAM
from rich.console import Console
from typer.testing import CliRunner

from greenbench.cli import app
from greenbench.meters import ESTIMATE, CodeCarbonMeter
from greenbench.meters.codecarbon import PROVENANCE_KEYS

NO_RAPL = not cc_cpu.is_rapl_available()


def _reasons_are_given(p):
    """Every None value has a one-line reason beside it; every reason belongs to a None."""
    for key in PROVENANCE_KEYS:
        assert key in p
        if p[key] is None:
            reason = p.get(f"{key}_reason")
            assert reason and "\n" not in reason, key
        else:
            assert f"{key}_reason" not in p, key


@pytest.fixture(scope="module")
def real():
    meter = CodeCarbonMeter("USA")
    provenance = meter.estimate_provenance()
    yield meter, provenance
    meter.close()


# -- the real CodeCarbon ----------------------------------------------------------------------


@pytest.mark.skipif(not NO_RAPL, reason="CodeCarbon reads RAPL here: no TDP enters its figure")
def test_tdp_is_what_codecarbons_own_cpu_lookup_gives(real):
    meter, p = real
    _reasons_are_given(p)
    lookup = cc_cpu.TDP()  # CodeCarbon's own detection and table lookup, run again
    assert p["cpu_model"] == lookup.model
    # a TDP (table or per-thread default) times the physical CPU count, else CodeCarbon's constant
    expected_w = lookup.tdp * count_physical_cpus() if lookup.tdp is not None else cc_hw.POWER_CONSTANT
    assert math.isfinite(p["cpu_tdp_w"]) and p["cpu_tdp_w"] > 0
    assert p["cpu_tdp_w"] == pytest.approx(expected_w)
    in_table = lookup._get_cpu_power_from_registry(lookup.model) is not None
    if in_table:
        assert "CPU power table:" in p["cpu_tdp_source"]
    else:
        assert "is not in its CPU power table" in p["cpu_tdp_source"]
    assert p["cpu_power_source"].startswith("load model")
    # the TDP is the one in the tracker's CPU object, the one its power model multiplies
    cpus = [h for h in meter.tracker._hardware if type(h).__name__ == "CPU"]
    assert len(cpus) == 1 and cpus[0]._tdp == p["cpu_tdp_w"]


def test_ram_power_is_what_codecarbons_ram_object_reports(real):
    meter, p = real
    _reasons_are_given(p)
    assert math.isfinite(p["ram_power_w"]) and p["ram_power_w"] > 0
    tracker_ram = [h for h in meter.tracker._hardware if type(h).__name__ == "RAM"]
    assert len(tracker_ram) == 1 and p["ram_power_w"] == tracker_ram[0].total_power().W
    fresh = CodeCarbonRAM(tracking_mode="machine")
    assert p["ram_power_w"] == fresh.total_power().W
    assert fresh._calculate_ram_power(p["ram_total_gb"]) == p["ram_power_w"]
    assert p["ram_total_gb"] == pytest.approx(psutil.virtual_memory().total / 2**30, rel=1e-3)
    assert f"{fresh._estimate_dimm_count(p['ram_total_gb'])} DIMMs" in p["ram_power_source"]
    assert p["codecarbon_version"] == codecarbon.__version__
    assert (p["country_iso_code"], p["tracking_mode"]) == ("USA", "machine")


@pytest.mark.skipif(not NO_RAPL, reason="CodeCarbon reads RAPL here: its CPU figure is no TDP model")
def test_a_real_window_lies_within_the_power_model_the_provenance_names(real):
    meter, p = real
    start = meter.begin()
    t_end = time.perf_counter() + 0.5
    while time.perf_counter() < t_end:
        pass
    reading = meter.end(start)
    assert reading.method == ESTIMATE
    mean_w = reading.energy_j / reading.duration_s
    # machine-wide load model: between 10% and 100% of the TDP, plus the constant RAM power
    low_w, high_w = p["ram_power_w"] + 0.1 * p["cpu_tdp_w"], p["ram_power_w"] + p["cpu_tdp_w"]
    assert low_w * 0.97 <= mean_w <= high_w * 1.03, (mean_w, low_w, high_w)


def test_info_carries_the_provenance_once_detected_and_after_close(capfd):
    meter = CodeCarbonMeter("USA")
    assert "cpu_tdp_w" not in meter.info().details  # info() alone does not detect (1.3 s)
    p = meter.estimate_provenance()
    details = meter.info().details
    assert {k: details[k] for k in p} == p
    assert details["cpu_count"] >= 1 and details["hardware"]  # get_detected_hardware() kept
    meter.close()
    assert meter.tracker is None
    assert meter.estimate_provenance() == p and meter.tracker is None  # no new detection
    assert {k: meter.info().details[k] for k in p} == p
    out, err = capfd.readouterr()
    assert out == "" and err == ""


# -- trackers that lack CodeCarbon's attributes -----------------------------------------------


class CPU:  # named as CodeCarbon's class: the meter finds hardware objects by class name
    def __init__(self, **attrs):
        self.__dict__.update(attrs)


class RAM:
    def __init__(self, **attrs):
        self.__dict__.update(attrs)


class BareTracker:
    """Only CodeCarbon's public hardware call: no _hardware, no _conf."""

    def __init__(self, hardware=(), conf=None, detected=None):
        if hardware:
            self._hardware = list(hardware)
        if conf is not None:
            self._conf = conf
        self.detected = detected or {"cpu_model": "Fake CPU"}

    def get_detected_hardware(self):
        return dict(self.detected)


def _fake(tracker):
    return CodeCarbonMeter(tracker_factory=lambda: tracker).estimate_provenance()


def test_a_tracker_without_hardware_objects_gives_none_with_reasons():
    p = _fake(BareTracker())
    _reasons_are_given(p)
    assert p["cpu_model"] == "Fake CPU"  # from get_detected_hardware()
    for key in ("cpu_tdp_w", "cpu_tdp_source", "cpu_power_source"):
        assert p[key] is None and "no CPU object" in p[f"{key}_reason"]
    for key in ("ram_power_w", "ram_power_source"):
        assert p[key] is None and "no RAM object" in p[f"{key}_reason"]
    assert p["ram_total_gb"] is None and "ram_total_size" in p["ram_total_gb_reason"]


@pytest.mark.parametrize("tdp", [None, float("nan"), 0, "eighty"])
def test_hardware_objects_lacking_attributes_give_none_with_reasons(tdp):
    cpu = CPU(_mode="cpu_load") if tdp is None else CPU(_mode="cpu_load", _tdp=tdp)
    p = _fake(BareTracker([RAM(), cpu], conf={"ram_total_size": 16.0}))
    _reasons_are_given(p)
    assert p["cpu_power_source"].startswith("load model")
    assert p["cpu_tdp_w"] is None and "no usable TDP" in p["cpu_tdp_w_reason"]
    assert p["ram_power_w"] is None and "RAM power failed" in p["ram_power_w_reason"]
    assert p["ram_power_source"] is None and "_estimate_dimm_count" in p["ram_power_source_reason"]
    assert p["ram_total_gb"] == 16.0


def test_a_tracker_that_reads_rapl_names_no_tdp():
    p = _fake(BareTracker([CPU(_mode="intel_rapl", _tdp=85)],
                          conf={"hardware": ["RAM()", "CPU(Intel Rapl)"]}))
    assert p["cpu_power_source"] == "rapl"
    assert p["cpu_tdp_w"] is None and "RAPL" in p["cpu_tdp_w_reason"]


TABLE_CPU = "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz"


def _table_w(model):
    return cc_cpu.TDP.__new__(cc_cpu.TDP)._get_cpu_power_from_registry(model)


@pytest.mark.parametrize("sockets", [1, 2])
def test_tdp_source_names_the_table_row_codecarbon_matched(sockets):
    table_w = _table_w(TABLE_CPU)
    assert table_w and table_w > 0
    tracker = BareTracker([CPU(_mode="cpu_load", _tdp=table_w * sockets, _model=TABLE_CPU)],
                          conf={"cpu_count": 8, "cpu_physical_count": sockets},
                          detected={"cpu_model": TABLE_CPU})
    p = _fake(tracker)
    assert p["cpu_tdp_w"] == table_w * sockets
    assert "CPU power table:" in p["cpu_tdp_source"] and f"{table_w:g} W" in p["cpu_tdp_source"]
    assert ("x 2 physical CPUs" in p["cpu_tdp_source"]) == (sockets == 2)


def test_tdp_that_matches_neither_table_nor_defaults_is_not_explained_away():
    table_w = _table_w(TABLE_CPU)
    p = _fake(BareTracker([CPU(_mode="cpu_load", _tdp=table_w + 7)],
                          conf={"cpu_count": 8, "cpu_physical_count": 1},
                          detected={"cpu_model": TABLE_CPU}))
    assert p["cpu_tdp_w"] == table_w + 7  # the number CodeCarbon uses, whatever its source
    assert p["cpu_tdp_source"] is None and "but its CPU object uses" in p["cpu_tdp_source_reason"]
    unknown = "Nonexistent CPU 9000 by Nobody"
    assert _table_w(unknown) is None
    threads = 6
    per_thread = _fake(BareTracker([CPU(_mode="cpu_load", _tdp=cc_cpu.DEFAULT_POWER_PER_CORE * threads)],
                                   conf={"cpu_count": threads, "cpu_physical_count": 1},
                                   detected={"cpu_model": unknown}))
    assert "W per thread x 6 threads" in per_thread["cpu_tdp_source"]
    odd = _fake(BareTracker([CPU(_mode="cpu_load", _tdp=cc_cpu.DEFAULT_POWER_PER_CORE * threads + 1)],
                            conf={"cpu_count": threads, "cpu_physical_count": 1},
                            detected={"cpu_model": unknown}))
    assert odd["cpu_tdp_source"] is None and "matches none of its defaults" in odd["cpu_tdp_source_reason"]


def test_codecarbon_that_cannot_start_is_every_reason_and_no_exception():
    def broken():
        raise RuntimeError("no cpuinfo")

    p = CodeCarbonMeter("FRA", tracker_factory=broken).estimate_provenance()
    _reasons_are_given(p)
    assert (p["country_iso_code"], p["tracking_mode"]) == ("FRA", "machine")
    for key in ("cpu_model", "cpu_tdp_w", "ram_power_w", "ram_total_gb"):
        assert p[key] is None and "no cpuinfo" in p[f"{key}_reason"]


# -- greenbench env ---------------------------------------------------------------------------


@pytest.mark.skipif(not NO_RAPL, reason="RAPL is readable here: env shows RaplMeter, not the estimate")
def test_env_shows_the_tdp_and_ram_power_of_the_estimate(real, monkeypatch, cache_dir):
    import greenbench.cli.env as env_mod

    _, p = real
    runner = CliRunner()
    res = runner.invoke(app, ["env"], env={"GREENBENCH_CACHE": str(cache_dir)})
    assert res.exit_code == 0, res.output
    assert f"CPU TDP    {p['cpu_tdp_w']:g} W, from CodeCarbon's" in res.stdout
    assert f"RAM power  {p['ram_power_w']:g} W, constant" in res.stdout
    assert p["cpu_model"] in res.stdout
    # an 80-column terminal: one block per meter, and the estimate's lines fit
    buf = io.StringIO()
    monkeypatch.setattr(env_mod, "out", Console(file=buf, width=80, soft_wrap=True))
    res = runner.invoke(app, ["env"], env={"GREENBENCH_CACHE": str(cache_dir)})
    assert res.exit_code == 0, res.output
    text = buf.getvalue()
    block = text[text.index("CodeCarbon estimate for cpu"):text.index("NVML")].splitlines()
    assert any(line.startswith(f"  CPU TDP    {p['cpu_tdp_w']:g} W") for line in block)
    assert all(len(line) <= 80 for line in block[1:])
    assert "┏" not in text.split("CodeCarbon estimate")[0]  # no squeezed eight-column table
