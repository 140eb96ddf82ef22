"""Carbon-intensity traces: the bundled 2023 data against its source, and a user's CSV validated."""

import csv
from pathlib import Path

import numpy as np
import pytest

from greenbench.carbon import bundle
from greenbench.carbon import intensity as carbon
from greenbench.carbon import trace as traces
from greenbench.carbon import user_csv as trace_csv
from greenbench.carbon.trace import (
    Trace,
    TraceError,
    load_bundled,
    load_csv,
    load_trace,
)
from greenbench.errors import GreenbenchError

# An excerpt of the Electricity Maps source files (ODbL; see tests/data/carbon/NOTICE.md).
SOURCE = Path(__file__).resolve().parent / "data" / "carbon"

# A few values copied by hand from the source files.
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
    with pytest.raises(TraceError, match=r"unknown zone 'XX'.*DE.*US-MIDA-PJM"):
        load_bundled("XX")
    with pytest.raises(TraceError, match="basis"):
        load_bundled("DE", "marginal")
    assert issubclass(TraceError, GreenbenchError)


def test_annual_means_agree_with_the_bundle():
    for zone in traces.bundled_zones():
        for basis in ("lca", "direct"):
            mean = load_bundled(zone, basis).intensity_gco2e_per_kwh.mean()
            assert mean == pytest.approx(carbon.annual_means()[(zone, basis)], abs=0.051)


def test_every_zone_loads_with_its_days_and_months_and_is_cached():
    # how fast: benchmarks/traces.py (targets: all zones cold < 1 s, a cached zone < 10 ms)
    bundle.clear_cache()
    loaded = {}
    for zone in traces.bundled_zones():
        t = load_bundled(zone)
        days, months = t.local_day_index(), t.month_index()
        assert len(days) == len(months) == len(t) == 8760, zone
        loaded[zone] = t
    assert load_bundled("GB") is loaded["GB"]  # cached: the same trace, not read again
    bundle.clear_cache()
    assert load_bundled("GB") is not loaded["GB"]  # and clear_cache forgets it


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


@pytest.mark.parametrize("zone", ["DE", "BR-CS", "JP-TK", "US-MIDA-PJM"])
def test_bundle_equals_the_wide_source_file(zone):
    for basis in ("lca", "direct"):
        with (SOURCE / f"ci_2023_hourly_{basis}_4zones.csv").open(encoding="utf-8") as f:
            src = np.array([float(r[zone]) for r in csv.DictReader(f)])
        assert np.array_equal(load_bundled(zone, basis).intensity_gco2e_per_kwh, src)


def test_bundled_trace_equals_the_raw_file_loaded_as_a_user_csv():
    raw = load_trace(str(SOURCE / "CL-SIC_2023_hourly.csv"), basis="direct")
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


# --- a user's CSV ------------------------------------------------------------------------------

def write(tmp_path, text, name="trace.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def hourly(n=6, start="2023-03-01T00:00:00", values=None, fmt="{t}Z"):
    t0 = np.datetime64(start)
    values = values if values is not None else [100.0 + 10 * i for i in range(n)]
    return [(fmt.format(t=str(t0 + np.timedelta64(i, "h"))), v) for i, v in enumerate(values)]


def csv_text(rows, header="time,intensity_gco2e_per_kwh"):
    return header + "\n" + "".join(",".join(str(c) for c in r) + "\n" for r in rows)


def test_good_csv_round_trips(tmp_path):
    rows = hourly(48, values=[float(50 + (i * 37) % 300) + 0.25 for i in range(48)])
    t = load_csv(write(tmp_path, csv_text(rows)))
    assert t.name == "trace" and t.basis is None and t.tz is None and t.source.endswith("trace.csv")
    assert t.time_utc[0] == np.datetime64("2023-03-01T00:00:00") and len(t) == 48
    assert t.intensity_gco2e_per_kwh.tolist() == [v for _, v in rows]
    # and back: written out again, it loads to the same trace
    pairs = [(f"{x}Z", v) for x, v in zip(t.time_utc, t.intensity_gco2e_per_kwh, strict=True)]
    again = write(tmp_path, csv_text(pairs), "b.csv")
    assert np.array_equal(load_csv(again).intensity_gco2e_per_kwh, t.intensity_gco2e_per_kwh)


def test_row_order_does_not_matter(tmp_path):
    rows = hourly(30, values=[float(v) for v in range(100, 130)])
    rng = np.random.default_rng(0)
    shuffled = [rows[i] for i in rng.permutation(len(rows))]
    a = load_csv(write(tmp_path, csv_text(rows), "a.csv"))
    b = load_csv(write(tmp_path, csv_text(shuffled), "b.csv"))
    assert np.array_equal(a.time_utc, b.time_utc)
    assert np.array_equal(a.intensity_gco2e_per_kwh, b.intensity_gco2e_per_kwh)


def test_offsets_and_z_give_the_same_hours(tmp_path):
    z = load_csv(write(tmp_path, csv_text(hourly(4)), "z.csv"))
    off = load_csv(write(tmp_path, csv_text(hourly(4, start="2023-03-01T01:00:00", fmt="{t}+01:00")), "o.csv"))
    assert np.array_equal(z.time_utc, off.time_utc)


def test_forecast_column_and_units_header(tmp_path):
    text = "time,intensity_gco2e_per_kwh,forecast_gco2e_per_kwh\n" + "".join(
        f"2023-01-01T{h:02d}:00:00Z,{100 + h},{90 + 2 * h}\n" for h in range(5))
    t = load_csv(write(tmp_path, text))
    assert t.forecast_gco2e_per_kwh.tolist() == [90.0, 92.0, 94.0, 96.0, 98.0]
    assert traces.summarize(t).forecast_mae == pytest.approx(np.mean([10, 9, 8, 7, 6]))
    named = "ts,actual,predicted\n" + "".join(f"2023-01-01T{h:02d}:00Z,{100 + h},{90 + h}\n" for h in range(3))
    t = load_csv(write(tmp_path, named, "n.csv"), time_column="ts", value_column="actual", forecast_column="predicted",
                 units="g/kWh")  # 'actual' names no unit: --trace-units says it
    assert t.forecast_gco2e_per_kwh.tolist() == [90.0, 91.0, 92.0]
    # a forecast column that names no unit is in the value column's (here g/kWh, from its header)
    text = "time,intensity_gco2e_per_kwh,forecast\n" + "".join(
        f"2023-01-01T{h:02d}:00Z,{100 + h},{95 + h}\n" for h in range(3))
    assert load_csv(write(tmp_path, text, "f.csv")).forecast_gco2e_per_kwh.tolist() == [95.0, 96.0, 97.0]


def test_electricity_maps_export_format(tmp_path):
    header = ("Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),"
              "Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,Data Source,"
              "Data Estimated,Data Estimation Method")
    rows = [f"2023-01-01 0{h}:00:00,Germany,Germany,DE,{140 + h},{185 + h},83,78,entsoe.eu,false," for h in range(3)]
    path = write(tmp_path, header + "\n" + "\n".join(rows) + "\n", "DE_2023_hourly.csv")
    lca, direct = load_csv(path), load_csv(path, basis="direct")
    assert lca.intensity_gco2e_per_kwh.tolist() == [185.0, 186.0, 187.0] and lca.basis == "lca"
    assert direct.intensity_gco2e_per_kwh.tolist() == [140.0, 141.0, 142.0] and direct.basis == "direct"
    assert lca.tz == "Europe/Berlin"  # the file's Zone Id is a bundled zone: its clock for days
    assert lca.time_utc[0] == np.datetime64("2023-01-01T00:00:00")  # "(UTC)" in the header


def test_naive_times_need_a_time_zone(tmp_path):
    path = write(tmp_path, csv_text(hourly(3, fmt="{t}")))
    with pytest.raises(TraceError, match=r"trace.csv:2: time '2023-03-01T00:00:00' has no time zone.*--tz"):
        load_csv(path)
    berlin = load_csv(path, tz="Europe/Berlin")  # local midnight is 23:00Z the day before
    assert berlin.time_utc[0] == np.datetime64("2023-02-28T23:00:00") and berlin.tz == "Europe/Berlin"
    utc_named = write(tmp_path, csv_text(hourly(3, fmt="{t}"), header="time_utc,intensity_gco2e_per_kwh"), "u.csv")
    assert load_csv(utc_named).time_utc[0] == np.datetime64("2023-03-01T00:00:00")


BAD = [  # (csv text, expected message pieces)
    ("time,intensity_gco2e_per_kwh\n2023-01-01T00:00Z,100\nyesterday,110\n",
     ["trace.csv:3", "cannot read time 'yesterday'", "ISO 8601"]),
    ("time,intensity_gco2e_per_kwh\n2023-01-01T00:00Z,100\n2023-01-01T01:00,110\n",
     ["trace.csv:3", "no time zone but other rows do"]),
    ("time,intensity_gco2e_per_kwh\n2023-01-01T00:00Z,100\n2023-01-01T01:00Z,\n2023-01-01T02:00Z,\n",
     ["trace.csv:3", "empty value", "(and 1 more)", "fill or interpolate"]),
    ("time,intensity_gco2e_per_kwh\n2023-01-01T00:00Z,100\n2023-01-01T01:00Z,NaN\n",
     ["trace.csv:3", "'NaN' (not a finite number)"]),
    ("time,intensity_gco2e_per_kwh\n2023-01-01T00:00Z,100\n2023-01-01T01:00Z,n/a\n",
     ["trace.csv:3", "cannot read 'n/a' as a number"]),
    ("time,intensity_gco2e_per_kwh\n2023-01-01T00:00Z,100\n2023-01-01T01:00Z,-5\n",
     ["trace.csv:3", "negative intensity -5"]),
    ("time,intensity_gco2e_per_kwh\n2023-01-01T00:00Z,100\n2023-01-01T01:00Z,110\n2023-01-01T01:00Z,110\n",
     ["trace.csv:4", "duplicate time 2023-01-01T01:00:00Z (also line 3)", "one row per hour"]),
    ("time,intensity_gco2e_per_kwh\n2023-01-01T00:00Z,100\n2023-01-01T03:00Z,110\n2023-01-01T04:00Z,1\n"
     "2023-01-01T06:00Z,1\n",
     ["trace.csv:3", "gap: 2 hour(s) missing after 2023-01-01T00:00:00Z (line 2)", "2 gap(s), 3 missing hour(s)"]),
    ("time,intensity_gco2e_per_kwh\n2023-01-01T00:00Z,100\n2023-01-01T00:30Z,110\n2023-01-01T01:00Z,110\n",
     ["rows are 30 min apart, not hourly", "average to one value per hour"]),
    ("time,intensity_gco2e_per_kwh\n2023-01-01T00:15Z,100\n2023-01-01T01:15Z,110\n",
     ["trace.csv:2", "not at the start of an hour"]),
    ("time,intensity_gco2e_per_kwh\n2023-01-01T00:00Z,100\n2023-01-01T01:00Z\n",
     ["trace.csv:3", "1 fields, the header has 2"]),
    ("time,intensity_gco2e_per_kwh\n", ["no data rows"]),
    ("", ["empty file"]),
    ("time,a,b\n2023-01-01T00:00Z,1,2\n", ["cannot tell which column holds the intensity", "--value-column"]),
    ("value\n100\n", ["no time column", "--time-column"]),
    ("time,ci_kg_per_kwh\n2023-01-01T00:00Z,0.3\n",
     ["column 'ci_kg_per_kwh'", "in kg/kWh, not gCO2e/kWh", "--trace-units kg/kWh", "x1000"]),
    ("time,co2 (lbs/MWh)\n2023-01-01T00:00Z,900\n",
     ["column 'co2 (lbs/MWh)'", "in lb/MWh", "--trace-units lb/MWh"]),
    ("time,intensity\n2023-01-01T00:00Z,0.3\n2023-01-01T01:00Z,0.45\n",
     ["column 'intensity': names no unit, and all values are below 2 (max 0.45), which looks like kg/kWh",
      "--trace-units kg/kWh"]),
    ("time,intensity\n2023-01-01T00:00Z,900\n2023-01-01T01:00Z,2400\n",
     ["names no unit, and values reach 2400", "--trace-units lb/MWh"]),
    ("time,intensity_gco2e_per_kwh\n2023-01-01T00:00Z,900\n2023-01-01T01:00Z,2400\n",
     ["column 'intensity_gco2e_per_kwh': values reach 2400", "--trace-units lb/MWh"]),  # magnitudes: a second check
    ("time,value\n2023-01-01T00:00Z,800\n2023-01-01T01:00Z,1900\n",  # lb/MWh that would pass for g/kWh
     ["column 'value' names no unit; rename it intensity_gco2e_per_kwh", "--trace-units g/kWh", "lb/MWh"]),
]


@pytest.mark.parametrize("text,pieces", BAD, ids=[p[1][-1][:40] for p in BAD])
def test_bad_csv_is_one_clear_line(tmp_path, text, pieces):
    with pytest.raises(TraceError) as e:
        load_csv(write(tmp_path, text))
    msg = str(e.value)
    assert "\n" not in msg and ";" in msg  # what, then how to fix
    for piece in pieces:
        assert piece in msg


def test_dst_local_times_are_refused_not_guessed(tmp_path):
    back = csv_text([("2023-10-29 01:00", 1), ("2023-10-29 02:00", 2), ("2023-10-29 02:00", 3),
                     ("2023-10-29 03:00", 4)])
    with pytest.raises(TraceError, match="occurs twice in Europe/Berlin"):
        load_csv(write(tmp_path, back), tz="Europe/Berlin")
    fwd = csv_text([("2023-03-26 01:00", 100), ("2023-03-26 02:00", 100), ("2023-03-26 03:00", 100)])
    with pytest.raises(TraceError, match="does not exist in Europe/Berlin"):
        load_csv(write(tmp_path, fwd, "f.csv"), tz="Europe/Berlin")


def test_a_value_column_that_names_no_unit_needs_trace_units(tmp_path):
    """Values of 800-2,000 in lb/MWh look like a dirty grid in g/kWh: read as grams, they would
    count 2.2 times too much carbon. A header that names no unit is refused until --trace-units
    says what it is; headers that name g/kWh (the simple format, the Electricity Maps export,
    'gCO2/kWh', kg/MWh) are read as they are."""
    rows = hourly(3, values=[800.0, 1500.0, 1900.0])
    bare = write(tmp_path, csv_text(rows, header="time,value"), "bare.csv")
    with pytest.raises(TraceError, match=r"column 'value' names no unit; .*--trace-units"):
        load_csv(bare)
    with pytest.raises(TraceError, match="names no unit"):
        load_trace(str(bare))
    assert load_csv(bare, units="lb/MWh").intensity_gco2e_per_kwh == pytest.approx([362.873896, 680.388555, 861.825503])
    assert load_csv(bare, units="g/kWh").intensity_gco2e_per_kwh.tolist() == [800.0, 1500.0, 1900.0]
    for header in ("time,intensity_gco2e_per_kwh", "time,ci (gCO2/kWh)", "time,Carbon Intensity gCO₂eq/kWh (LCA)",
                   "time,intensity kg/MWh"):
        named = write(tmp_path, csv_text(rows, header=header), "named.csv")
        assert load_csv(named).intensity_gco2e_per_kwh.tolist() == [800.0, 1500.0, 1900.0], header


def test_time_and_value_columns_can_be_named_through_load_trace(tmp_path):
    """The hints 'give --time-column' / '--value-column' name options that price, simulate and
    carbon show/convert all pass to load_trace."""
    text = "when,stamp_x,grid\n" + "".join(f"2023-01-01T{h:02d}:00Z,a,{100 + h}\n" for h in range(3))
    path = write(tmp_path, text, "cols.csv")
    with pytest.raises(TraceError, match=r"no time column.*give --time-column"):
        load_trace(str(path))
    with pytest.raises(TraceError, match=r"cannot tell which column holds the intensity.*--value-column"):
        load_trace(str(path), time_column="when")
    t = load_trace(str(path), time_column="when", value_column="grid", units="g/kWh")
    assert t.intensity_gco2e_per_kwh.tolist() == [100.0, 101.0, 102.0]
    with pytest.raises(TraceError, match="CSV files only"):
        load_trace("GB", value_column="grid")


def test_units_are_converted_only_when_named(tmp_path):
    kg = write(tmp_path, csv_text(hourly(3, values=[0.25, 0.5, 0.125]), header="time,intensity_kg_per_kwh"))
    assert load_csv(kg, units="kg/kWh").intensity_gco2e_per_kwh.tolist() == [250.0, 500.0, 125.0]
    lb = write(tmp_path, csv_text(hourly(2, values=[1000.0, 500.0]), header="time,lbs_co2_per_mwh"), "lb.csv")
    assert load_csv(lb, units="lbs/MWh").intensity_gco2e_per_kwh == pytest.approx([453.59237, 226.796185])
    bare = write(tmp_path, csv_text(hourly(2, values=[0.5, 1.5]), header="time,intensity"), "bare.csv")
    assert load_csv(bare, units="kg/kWh").intensity_gco2e_per_kwh.tolist() == [500.0, 1500.0]
    assert load_csv(bare, units="g/kWh").intensity_gco2e_per_kwh.tolist() == [0.5, 1.5]  # the user says grams
    mwh = write(tmp_path, csv_text(hourly(2), header="time,intensity kg/MWh"), "mwh.csv")
    assert load_csv(mwh).intensity_gco2e_per_kwh.tolist() == [100.0, 110.0]  # kg/MWh is g/kWh
    with pytest.raises(TraceError, match="header says kg/kWh but --trace-units says g/kWh"):
        load_csv(kg, units="g/kWh")
    with pytest.raises(TraceError, match="unknown units 'furlongs'"):
        load_csv(kg, units="furlongs")
    with pytest.raises(TraceError, match="reach 500000"):  # grams taken for kg
        load_csv(write(tmp_path, csv_text(hourly(2, values=[500.0, 400.0]), header="time,intensity"), "g.csv"),
                 units="kg/kWh")
    fc = write(tmp_path, "time,intensity_kg_per_kwh,forecast_kg_per_kwh\n2023-01-01T00:00Z,0.2,0.3\n", "fc.csv")
    t = load_csv(fc, units="kg/kWh")
    assert (t.intensity_gco2e_per_kwh[0], t.forecast_gco2e_per_kwh[0]) == (200.0, 300.0)


@pytest.mark.parametrize("header,unit", [
    ("Carbon Intensity gCO₂eq/kWh (LCA)", "g/kwh"), ("intensity_gco2e_per_kwh", "g/kwh"),
    ("ci (gCO2/kWh)", "g/kwh"), ("kgCO2e/kWh", "kg/kwh"), ("carbon_intensity_kg_per_kwh", "kg/kwh"),
    ("lbs/MWh", "lb/mwh"), ("CO2 lb per MWh", "lb/mwh"), ("tCO2/MWh", "t/mwh"), ("intensity", None),
])
def test_units_read_from_headers(header, unit):
    assert trace_csv.header_unit(header) == unit


def test_semicolon_csv_and_blank_lines(tmp_path):
    text = "time;intensity_gco2e_per_kwh\n2023-01-01T00:00Z;100\n\n2023-01-01T01:00Z;110\n\n"
    assert load_csv(write(tmp_path, text)).intensity_gco2e_per_kwh.tolist() == [100.0, 110.0]


def test_a_trace_from_a_csv_has_local_days(tmp_path):
    rows = hourly(48, start="2023-06-01T00:00:00")
    t = load_csv(write(tmp_path, csv_text(rows)), tz="America/New_York")  # tz-aware rows: tz is for days
    assert t.time_utc[0] == np.datetime64("2023-06-01T00:00:00")
    assert list(np.bincount(t.local_day_index())) == [4, 24, 20]  # 20:00 EDT on 31 May


def test_summary_matches_the_source_statistics_file():
    with (SOURCE / "ci_2023_summary_stats.csv").open(encoding="utf-8") as f:
        expect = {(r["zone"], r["metric"]): r for r in csv.DictReader(f)}
    assert len(expect) == 36
    for (zone, basis), r in expect.items():
        s = traces.summarize(load_bundled(zone, basis))
        assert s.mean == pytest.approx(float(r["mean"]), abs=0.05)
        assert s.p10 == pytest.approx(float(r["p10"]), abs=1e-3)
        assert s.cv == pytest.approx(float(r["cv"]), abs=5e-4)
        assert s.daily_max_min_ratio_median == pytest.approx(float(r["daily_ratio_median"]), abs=5e-3)
        assert s.estimated_share == pytest.approx(float(r["est_frac"]), abs=5e-4)


def test_intensity_at_an_hour_a_month_or_the_year():
    de = load_bundled("DE")
    value, label = traces.select_intensity(de, at="2023-07-01T14:30+02:00")  # 12:30Z -> hour 12:00Z
    i = 24 * 181 + 12
    assert value == de.intensity_gco2e_per_kwh[i] and "2023-07-01T12:00:00Z" in label
    july, _ = traces.select_intensity(de, month=7)
    local = traces.local_calendar_month(de)
    assert july == pytest.approx(de.intensity_gco2e_per_kwh[local == 7].mean()) and (local == 7).sum() == 744
    year, _ = traces.select_intensity(de)
    assert year == pytest.approx(carbon.annual_means()[("DE", "lca")], abs=0.05)
    for kwargs, msg in [({"at": "2024-07-01T00:00Z"}, "outside the trace"),
                        ({"at": "2023-07-01 12:00"}, "no time zone"),
                        ({"month": 13}, "not 1-12"), ({"at": "noon"}, "cannot read time")]:
        with pytest.raises(TraceError, match=msg):
            traces.select_intensity(de, **kwargs)


def test_profile_carbon_keeps_method_and_nulls():
    from greenbench.profile import Record

    intensity = traces.trace_intensity(load_bundled("DE"), at="2023-07-01T12:00Z", pue=1.5)
    assert intensity.zone == "DE" and intensity.year == 2023 and intensity.pue == 1.5
    recs = [Record(ladder="l", model="a", batch_size=1, precision="fp32", device="cpu",
                   energy_j_per_item=3.6e6, energy_method="estimate"),
            Record(ladder="l", model="b", batch_size=1, precision="fp32", device="cpu",
                   energy_method="unavailable", energy_reason="no meter"),
            Record(ladder="l", model="c", batch_size=1, precision="fp32", device="cpu", status="failed")]
    rows = traces.profile_carbon(recs, intensity)
    assert [r["model"] for r in rows] == ["a", "b"]
    assert rows[0]["co2e_g_per_item"] == pytest.approx(intensity.gco2e_per_kwh * 1.5)  # 1 kWh per item
    assert rows[0]["co2e_g_per_1m_items"] == pytest.approx(rows[0]["co2e_g_per_item"] * 1e6)
    assert rows[0]["energy_method"] == "estimate"
    assert rows[1]["co2e_g_per_item"] is None and rows[1]["reason"] == "no meter"
