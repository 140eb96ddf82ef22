"""`greenbench carbon` through Typer's CliRunner, and the live API with a fake HTTP layer."""

import io
import json
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest
from typer.testing import CliRunner

from greenbench.carbon import live as live_carbon
from greenbench.carbon import trace as traces
from greenbench.carbon.live import LiveCarbonError, fetch_live
from greenbench.cli import app

runner = CliRunner()
PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "mnist1d-cpu-2core.json"


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any real HTTP call fails the test: the network is used only when a test fakes it."""
    def refuse(*a, **k):
        raise AssertionError("network used without --live")
    monkeypatch.setattr(live_carbon, "_urlopen", refuse)


def invoke(*args, env=None):
    return runner.invoke(app, ["carbon", *args], env=env)


def one_error_line(res, *pieces):
    assert res.exit_code == 2, res.output
    lines = [line for line in res.stderr.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("greenbench: error:"), res.stderr
    for piece in pieces:
        assert piece in lines[0]
    assert "Traceback" not in res.output


def test_zones_lists_18_zones_with_statistics():
    res = invoke("zones")
    assert res.exit_code == 0, res.output
    for zone in ("AU-NSW", "DE", "US-MIDA-PJM (default)", "ZA"):
        assert zone in res.stdout
    assert "ODbL" in res.stdout and "Electricity Maps" in res.stdout
    assert "intensities in gCO2e/kWh" in res.stdout  # the unit, once, under the table
    wide = invoke("zones", "--wide")  # every column: the local time zone and the extremes too
    assert wide.exit_code == 0 and "Europe/Berlin" in wide.stdout and "median" in wide.stdout
    assert "Europe/Berlin" not in res.stdout


def test_zones_json_matches_the_library():
    res = invoke("zones", "--basis", "direct", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["basis"] == "direct" and "ODbL" in doc["attribution"] and len(doc["zones"]) == 18
    de = next(z for z in doc["zones"] if z["name"] == "DE")
    expect = traces.summarize(traces.load_bundled("DE", "direct"))
    assert de["mean"] == pytest.approx(expect.mean) and de["file"] == "DE-LU_2023_hourly.csv"
    assert de["forecast_mae"] is None and "forecast" in de["reasons"]["forecast_mae"]


def test_show_a_good_csv(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("time,intensity_gco2e_per_kwh\n"
                    + "".join(f"2023-01-01T{h:02d}:00Z,{100 + h}\n" for h in range(24)))
    res = invoke("show", str(path), "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["hours"] == 24 and doc["min"] == 100 and doc["max"] == 123 and doc["full_days"] == 1
    assert doc["estimated_share"] is None and doc["reasons"]["estimated_share"]
    res = invoke("show", str(path))
    assert res.exit_code == 0 and "valid, 24 hours" in res.stdout


@pytest.mark.parametrize("body,pieces", [
    ("time,intensity_gco2e_per_kwh\n2023-01-01T00:00Z,100\n2023-01-01T02:00Z,1\n", ["gap", "1 hour(s) missing"]),
    ("time,intensity_gco2e_per_kwh\n2023-01-01T00:00,100\n", ["no time zone", "--tz"]),
    ("time,intensity_gco2e_per_kwh\n2023-01-01T00:00Z,100\n2023-01-01T00:00Z,100\n", ["duplicate time"]),
    ("time,intensity_gco2e_per_kwh\n2023-01-01T00:00Z,nan\n", ["not a finite number"]),
    ("time,intensity_gco2e_per_kwh\n2023-01-01T00:00Z,-1\n", ["negative intensity"]),
    ("time,intensity_kg_per_kwh\n2023-01-01T00:00Z,0.3\n", ["kg/kWh", "--trace-units kg/kWh"]),
    ("time,intensity_lb_per_mwh\n2023-01-01T00:00Z,800\n", ["lb/MWh", "--trace-units lb/MWh"]),
    ("time,intensity\n2023-01-01T00:00Z,0.3\n", ["names no unit", "looks like kg/kWh"]),
    ("time,value\n2023-01-01T00:00Z,800\n2023-01-01T01:00Z,1950\n",  # lb/MWh that would pass for g/kWh
     ["column 'value' names no unit", "rename it intensity_gco2e_per_kwh", "--trace-units g/kWh"]),
])
def test_show_refuses_a_bad_csv_in_one_line(tmp_path, body, pieces):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    one_error_line(invoke("show", str(path)), "bad.csv", *pieces)


def test_show_converts_units_when_asked(tmp_path):
    path = tmp_path / "kg.csv"
    path.write_text("time,intensity_kg_per_kwh\n2023-01-01T00:00Z,0.3\n2023-01-01T01:00Z,0.5\n")
    res = invoke("show", str(path), "--trace-units", "kg/kWh", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["mean"] == pytest.approx(400.0)


def test_show_labels_daily_range_and_forecast_error_in_gco2e_per_kwh(tmp_path):
    path = tmp_path / "fc.csv"
    path.write_text("time,intensity_gco2e_per_kwh,forecast_gco2e_per_kwh\n"
                    + "".join(f"2023-01-01T{h:02d}:00Z,{100 + h},{98 + h}\n" for h in range(24)))
    res = invoke("show", str(path))
    assert res.exit_code == 0, res.output
    assert "daily range, median (gCO2e/kWh)" in res.stdout and "forecast MAE (gCO2e/kWh)" in res.stdout
    assert "(g)" not in res.stdout


def test_show_and_convert_take_the_unit_and_columns_of_an_unlabelled_trace(tmp_path):
    path = tmp_path / "lb.csv"
    path.write_text("stamp,grid\n" + "".join(f"2023-01-01T{h:02d}:00Z,{1000 + 10 * h}\n" for h in range(24)))
    one_error_line(invoke("show", str(path), "--time-column", "stamp", "--value-column", "grid"), "names no unit")
    res = invoke("show", str(path), "--time-column", "stamp", "--value-column", "grid", "--trace-units", "lb/MWh",
                 "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["mean"] == pytest.approx(1115 * 0.45359237)
    one_error_line(invoke("convert", str(PROFILE), "--zone", str(path)), "no time column", "--time-column")
    res = invoke("convert", str(PROFILE), "--zone", str(path), "--time-column", "stamp", "--value-column", "grid",
                 "--trace-units", "lb/MWh", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["intensity"]["gco2e_per_kwh"] == pytest.approx(1115 * 0.45359237)


def test_convert_flags_fake_meter_energy_as_not_a_measurement(tmp_path):
    doc = json.loads(PROFILE.read_text())
    for r in doc["records"]:
        r["energy_method"] = "fake"
    fake = tmp_path / "fake.json"
    fake.write_text(json.dumps(doc))
    res = invoke("convert", str(fake), "--zone", "DE")
    assert res.exit_code == 0, res.output
    assert "method 'fake': the energy is not a measurement" in res.stdout
    rows = json.loads(invoke("convert", str(fake), "--zone", "DE", "--json").stdout)["records"]
    assert rows and not any(r["energy_is_measurement"] for r in rows)
    for r in doc["records"]:
        r["energy_method"] = "rapl"
    fake.write_text(json.dumps(doc))
    res = invoke("convert", str(fake), "--zone", "DE")
    assert res.exit_code == 0 and "not a measurement" not in res.stdout
    converted = json.loads(invoke("convert", str(fake), "--zone", "DE", "--json").stdout)
    assert all(r["energy_is_measurement"] for r in converted["records"])


def test_show_naive_times_with_tz(tmp_path):
    path = tmp_path / "local.csv"
    path.write_text("time,intensity_gco2e_per_kwh\n2023-01-01 00:00,100\n2023-01-01 01:00,120\n")
    res = invoke("show", str(path), "--tz", "Europe/Berlin", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["start_utc"] == "2022-12-31T23:00:00Z" and doc["tz"] == "Europe/Berlin"
    one_error_line(invoke("show", str(path), "--tz", "Mars/Base"), "unknown time zone 'Mars/Base'")


def test_show_unknown_zone():
    one_error_line(invoke("show", "XX"), "'XX' is neither a bundled zone", "DE")


def test_convert_a_profile_at_an_hour():
    res = invoke("convert", str(PROFILE), "--zone", "DE", "--at", "2023-07-01T12:00Z", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    ci = traces.load_bundled("DE").intensity_gco2e_per_kwh[24 * 181 + 12]
    assert doc["intensity"]["gco2e_per_kwh"] == ci and doc["intensity"]["zone"] == "DE"
    assert "ODbL" in doc["intensity"]["source"] and "2023-07-01T12:00:00Z" in doc["intensity"]["source"]
    profile = json.loads(PROFILE.read_text())
    ok = [r for r in profile["records"] if r["status"] == "ok"]
    assert len(doc["records"]) == len(ok)
    for got, rec in zip(doc["records"], ok, strict=True):
        assert got["energy_method"] == rec["energy_method"]
        assert got["co2e_g_per_item"] == pytest.approx(rec["energy_j_per_item"] / 3.6e6 * ci)
        assert got["co2e_g_per_1m_items"] == pytest.approx(got["co2e_g_per_item"] * 1e6)


def test_convert_table_month_and_pue():
    res = invoke("convert", str(PROFILE), "--zone", "NO", "--month", "1", "--pue", "1.2")
    assert res.exit_code == 0, res.output
    assert "g per 1M: gCO2e per million items" in res.stdout and "PUE 1.2" in res.stdout
    assert "mean of month 1" in res.stdout
    assert "method 'estimate': the energy is not a measurement" in res.stdout  # the committed CPU profile's


def test_convert_bad_inputs_are_one_line(tmp_path):
    one_error_line(invoke("convert", str(PROFILE), "--zone", "DE", "--at", "2024-01-01T00:00Z"), "outside the trace")
    one_error_line(invoke("convert", str(PROFILE), "--zone", "DE", "--pue", "0.5"), "PUE")
    one_error_line(invoke("convert", str(tmp_path / "none.json"), "--zone", "DE"), "cannot read")


def test_console_script_exit_code_and_stderr(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("time,intensity_gco2e_per_kwh\n2023-01-01T00:00Z,-3\n")
    res = subprocess.run([sys.executable, "-m", "greenbench", "carbon", "show", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.csv:2: negative intensity -3" in lines[0]


# --- live API, with a fake HTTP layer ----------------------------------------------------------

class FakeHTTP:
    def __init__(self, body=None, error=None):
        self.body, self.error, self.calls = body, error, []

    def __call__(self, url, headers, timeout_s):
        self.calls.append((url, headers, timeout_s))
        if self.error:
            raise self.error
        return json.dumps(self.body).encode() if not isinstance(self.body, bytes) else self.body


def test_electricity_maps_with_token_from_env():
    fake = FakeHTTP({"zone": "DE", "carbonIntensity": 321, "datetime": "2026-01-01T10:00:00.000Z",
                     "emissionFactorType": "lifecycle", "isEstimated": False})
    got = fetch_live("DE", fetch=fake, env={"ELECTRICITYMAPS_TOKEN": "secret"})
    assert (got.gco2e_per_kwh, got.zone, got.basis, got.provider) == (321.0, "DE", "lca", "electricitymaps")
    url, headers, timeout = fake.calls[0]
    assert "zone=DE" in url and headers == {"auth-token": "secret"} and 0 < timeout <= 30
    fetch_live("DE", basis="direct", fetch=fake, env={"ELECTRICITYMAPS_TOKEN": "secret"})
    assert "emissionFactorType=direct" in fake.calls[1][0]


def test_uk_api_needs_no_token_and_falls_back_to_forecast():
    fake = FakeHTTP({"data": [{"from": "2026-01-01T10:00Z", "to": "2026-01-01T10:30Z",
                               "intensity": {"forecast": 180, "actual": None, "index": "moderate"}}]})
    got = fetch_live("GB", fetch=fake, env={})
    assert (got.gco2e_per_kwh, got.provider, got.estimated) == (180.0, "uk", True)
    assert "forecast" in got.source and fake.calls[0][1] == {}


@pytest.mark.parametrize("kwargs,error,msg", [
    ({"zone": "DE"}, None, "needs an Electricity Maps token"),
    ({"zone": "DE", "provider": "uk"}, None, "covers GB only"),
    ({"zone": "DE", "provider": "electricitymaps"}, None, "set $ELECTRICITYMAPS_TOKEN"),
    ({"zone": "GB"}, urllib.error.URLError("Name or service not known"), "cannot connect (Name or service not known"),
    ({"zone": "GB"}, TimeoutError(), "cannot connect (TimeoutError"),
    ({"zone": "GB"}, urllib.error.HTTPError("u", 429, "Too Many", {}, io.BytesIO()), "HTTP 429 (rate-limited"),
])
def test_live_failures_are_one_line(kwargs, error, msg):
    fake = FakeHTTP({}, error=error)
    with pytest.raises(LiveCarbonError) as e:
        fetch_live(**kwargs, fetch=fake, env={})
    assert msg in str(e.value) and "\n" not in str(e.value)
    if error is None:
        assert fake.calls == []  # refused before anything was sent


def test_live_bad_answers():
    for body, msg in [(b"<html>", "not JSON"), ({"data": []}, "unexpected answer"),
                      ({"data": [{"intensity": {"actual": -4, "forecast": None}}]}, "no usable intensity")]:
        with pytest.raises(LiveCarbonError, match=msg):
            fetch_live("GB", fetch=FakeHTTP(body), env={})
    with pytest.raises(LiveCarbonError, match="HTTP 401 \\(the token was refused"):
        fetch_live("DE", fetch=FakeHTTP(error=urllib.error.HTTPError("u", 401, "no", {}, io.BytesIO())),
                   env={"ELECTRICITYMAPS_TOKEN": "bad"})


def test_convert_live_only_when_asked(monkeypatch):
    fake = FakeHTTP({"data": [{"from": "2026-01-01T10:00Z", "intensity": {"forecast": 200, "actual": 150}}]})
    monkeypatch.setattr(live_carbon, "_urlopen", fake)
    res = invoke("convert", str(PROFILE), "--zone", "GB", "--json")
    assert res.exit_code == 0 and fake.calls == []  # a trace, no network
    res = invoke("convert", str(PROFILE), "--zone", "GB", "--live", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["intensity"]["gco2e_per_kwh"] == 150.0 and "UK Carbon Intensity API" in doc["intensity"]["source"]
    assert len(fake.calls) == 1
    one_error_line(invoke("convert", str(PROFILE), "--zone", "GB", "--live", "--month", "3"), "drop --at and --month")


@pytest.mark.parametrize("pue", ["0.5", "nan", "inf"])
def test_one_pue_check_for_traces_and_live(monkeypatch, pue):
    fake = FakeHTTP({"data": [{"from": "2026-01-01T10:00Z", "intensity": {"forecast": 200, "actual": 150}}]})
    monkeypatch.setattr(live_carbon, "_urlopen", fake)
    for extra in ([], ["--live"]):
        one_error_line(invoke("convert", str(PROFILE), "--zone", "GB", "--pue", pue, *extra),
                       "PUE must be a finite number of at least 1.0")
    assert fake.calls == []  # refused before anything was sent


def test_one_carbon_computation():
    import numpy as np

    from greenbench.carbon.intensity import Intensity, co2e_g

    assert co2e_g(3.6e6, 400.0) == 400.0 and co2e_g(3.6e6, 400.0, 1.5) == 600.0  # 1 kWh
    assert co2e_g(None, 400.0) is None
    e, ci = np.array([1.0, 7.2e6]), np.array([100.0, 250.0])
    assert co2e_g(e, ci).tolist() == [co2e_g(1.0, 100.0), co2e_g(7.2e6, 250.0)]
    assert Intensity(250.0, "x", pue=1.2).co2e_g(7.2e6) == co2e_g(7.2e6, 250.0, 1.2)
