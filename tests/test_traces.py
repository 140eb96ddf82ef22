"""Carbon-intensity traces: the bundled 2023 data against its source, and a user's CSV validated."""

import csv
import time
from pathlib import Path

import numpy as np
import pytest

from greenbench import carbon, traces
from greenbench.errors import GreenbenchError
from greenbench.traces import Trace, TraceError, load_bundled, load_csv, load_trace

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "carbon"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared carbon data not present")

# A few values copied by hand from the source files (so these checks run without ../shared).
KNOWN = [  # zone, basis, hour of 2023 (UTC), gCO2e/kWh
    ("DE", "lca", 0, 185.8), ("DE", "direct", 0, 140.51), ("DE", "lca", 1, 185.7),
    ("AU-NSW", "lca", 0, 345.14), ("US-CAL-CISO", "lca", 0, 309.75), ("US-CAL-CISO", "direct", 0, 238.69),
    ("ZA", "lca", 1, 711.17), ("NO", "lca", 8759, 51.23), ("US-TEX-ERCO", "lca", 1, 266.39),
]


def test_bundled_zones_are_the_18_source_zones():
    zones = traces.bundled_zones()
    assert len(zones) == 18 and zones == sorted(zones)
    assert {"DE", "BR-CS", "CL-SEN", "US-MIDA-PJM", "GB", "NO"} <= set(zones)
    assert zones == carbon.zones()  # the same zones as the annual means of `greenbench profile`


@pytest.mark.parametrize("zone,basis,hour,value", KNOWN)
def test_bundled_values_match_source(zone, basis, hour, value):
    t = load_bundled(zone, basis)
    assert t.intensity_gco2e_per_kwh[hour] == value
    assert t.time_utc[hour] == np.datetime64("2023-01-01T00:00:00") + np.timedelta64(hour, "h")


def test_bundled_trace_shape_and_metadata():
    t = load_bundled("DE")
    assert (t.name, t.tz, t.basis, t.forecast_gco2e_per_kwh) == ("DE", "Europe/Berlin", "lca", None)
    assert "Electricity Maps" in t.source and "ODbL" in t.source
    assert len(t) == 8760 and t.time_utc.dtype == np.dtype("datetime64[s]")
    assert t.intensity_gco2e_per_kwh.dtype == np.float64
    assert np.all(np.diff(t.time_utc.astype(np.int64)) == 3600)
    with pytest.raises(ValueError):  # shared from the cache: read-only
        t.intensity_gco2e_per_kwh[0] = 0.0


def test_file_names_are_aliases_of_zone_ids():
    assert load_bundled("DE-LU").name == "DE" and load_bundled("de").name == "DE"
    assert load_bundled("BR-SP").name == "BR-CS" and load_bundled("CL-SIC").name == "CL-SEN"


def test_unknown_zone_and_basis():
    with pytest.raises(TraceError, match="unknown zone 'XX'.*DE.*US-MIDA-PJM"):
        load_bundled("XX")
    with pytest.raises(TraceError, match="basis"):
        load_bundled("DE", "marginal")
    assert issubclass(TraceError, GreenbenchError)


def test_annual_means_agree_with_the_bundle():
    for zone in traces.bundled_zones():
        for basis in ("lca", "direct"):
            mean = load_bundled(zone, basis).intensity_gco2e_per_kwh.mean()
            assert mean == pytest.approx(carbon.annual_means()[(zone, basis)], abs=0.051)


def test_loading_all_zones_is_fast():
    traces._load_row.cache_clear()
    traces._bundle.cache_clear()
    traces._zone_rows.cache_clear()
    t0 = time.perf_counter()
    for zone in traces.bundled_zones():
        t = load_bundled(zone)
        t.local_day_index(), t.month_index()
    assert time.perf_counter() - t0 < 1.0
    t0 = time.perf_counter()
    load_bundled("GB")
    assert time.perf_counter() - t0 < 0.01  # cached


def test_local_days_and_months_follow_the_zone_clock():
    ny = load_bundled("US-NY-NYIS")  # UTC-5 in January: 00:00Z is 19:00 on 31 Dec 2022
    day = ny.local_day_index()
    assert list(day[:6]) == [0, 0, 0, 0, 0, 1]
    assert np.all(np.diff(day) >= 0) and day[-1] == 365
    months = ny.month_index()
    assert months.min() == 0 and months.max() == 11 and months[0] == 0  # the 5 edge hours join January
    # 1 March 2023 00:00 in New York is 05:00Z
    march = int(np.nonzero(ny.time_utc == np.datetime64("2023-03-01T05:00:00"))[0][0])
    assert (months[march - 1], months[march]) == (1, 2)
    # a DST day has 23 hours (12 March in New York), a normal day 24
    counts = np.bincount(day)
    assert counts[71] == 23 and counts[70] == 24 and counts[309] == 25  # 5 Nov: clocks go back (day 0 = 31 Dec)
    utc = Trace("u", ny.time_utc, ny.intensity_gco2e_per_kwh, None, None, None, "x")
    assert list(np.bincount(utc.local_day_index())[:2]) == [24, 24]
    assert np.bincount(utc.month_index()).tolist()[:2] == [744, 672]


def test_half_hour_offset_zone():
    india = load_bundled("IN-WE")  # UTC+5:30: 18:30Z starts the next local day
    day = india.local_day_index()
    i = int(np.nonzero(india.time_utc == np.datetime64("2023-01-01T18:00:00"))[0][0])
    assert (day[0], day[i], day[i + 1]) == (0, 0, 1)  # 18:00Z = 23:30 local, 19:00Z = 00:30 next day


def test_trace_refuses_bad_arrays():
    t = np.datetime64("2023-01-01T00:00:00") + np.arange(3) * np.timedelta64(1, "h")
    Trace("ok", t, [1.0, 2.0, 3.0], None, None, None, "x")
    with pytest.raises(TraceError, match="one hour"):
        Trace("x", t[::-1], [1.0, 2.0, 3.0], None, None, None, "x")
    with pytest.raises(TraceError, match="finite"):
        Trace("x", t, [1.0, np.nan, 3.0], None, None, None, "x")
    with pytest.raises(TraceError, match="time zone"):
        Trace("x", t, [1.0, 2.0, 3.0], None, "Mars/Olympus", None, "x")


@needs_shared
@pytest.mark.parametrize("zone", ["DE", "BR-CS", "JP-TK", "US-MIDA-PJM"])
def test_bundle_equals_the_wide_source_file(zone):
    for basis in ("lca", "direct"):
        with (SHARED / "derived" / f"ci_2023_hourly_{basis}_wide.csv").open(encoding="utf-8") as f:
            src = np.array([float(r[zone]) for r in csv.DictReader(f)])
        assert np.array_equal(load_bundled(zone, basis).intensity_gco2e_per_kwh, src)


@needs_shared
def test_bundled_trace_equals_the_raw_file_loaded_as_a_user_csv():
    raw = load_trace(str(SHARED / "electricitymaps_2023" / "CL-SIC_2023_hourly.csv"), basis="direct")
    bundled = load_bundled("CL-SEN", "direct")
    assert np.array_equal(raw.time_utc, bundled.time_utc)
    assert np.array_equal(raw.intensity_gco2e_per_kwh, bundled.intensity_gco2e_per_kwh)
    assert (raw.tz, raw.basis) == ("America/Santiago", "direct")  # from the file's Zone Id


def test_load_trace_picks_zone_or_file(tmp_path):
    assert load_trace("GB").name == "GB"
    assert load_trace("GB", tz="UTC").tz == "UTC"
    with pytest.raises(TraceError, match="neither a bundled zone"):
        load_trace(str(tmp_path / "nope.csv"))
    with pytest.raises(TraceError, match="no forecast column"):
        load_trace("GB", forecast_column="f")
    with pytest.raises(TraceError, match="CSV files only"):
        load_trace("GB", units="kg/kWh")
