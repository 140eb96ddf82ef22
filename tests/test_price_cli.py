"""`greenbench price` and `greenbench simulate` through Typer's CliRunner, bad users files included."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from greenbench.cli import app
from greenbench.users import example_path, load_users

ROOT = Path(__file__).resolve().parent.parent
PROFILE = str(ROOT / "profiles" / "mnist1d-cpu-2core.json")
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(res, *needles):
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1, res.output
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def csv_trace(tmp_path):
    """Ten days of hourly intensity: a daily cycle (peak in the evening) in gCO2e/kWh."""
    t = np.datetime64("2023-03-01T00:00:00", "s") + np.arange(240) * np.timedelta64(3600, "s")
    ci = 300 + 150 * np.sin(np.arange(240) / 24 * 2 * np.pi)
    path = tmp_path / "trace.csv"
    path.write_text("time,intensity_gco2e_per_kwh\n" + "\n".join(f"{a}Z,{b:.2f}" for a, b in zip(t, ci)) + "\n")
    return path


def test_price_defaults_say_which_options_ran():
    res = invoke("price", PROFILE, "--trace", "DE", "--discount", "0.1")
    assert res.exit_code == 0, res.output
    out = res.stdout
    for text in ("options that ran", "default: shipped example", "persistence", "exceedance", "quantile 0.75",
                 "derived: maximum of the monthly p", "R ranking", "user types", "accuracy-sensitive",
                 "latency-sensitive", "environmentally-conscious", "ρ_blind", "2023-12", "not a measurement"):
        assert text in out, text
    assert "users: the example shipped with greenbench" in res.output


def test_price_json_is_complete_and_markdown_renders(csv_trace):
    args = ["price", PROFILE, "--trace", csv_trace, "--forecast", "perfect", "--cap-mode", "share",
            "--daily-share", "0.25", "--p-max", "0.3", "--discount", "0.05",
            "--electricity-price-per-kwh", "0.2", "--carbon-price-per-tonne", "80", "--subscribers", "500"]
    res = invoke(*args, "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["schema"] == "greenbench/price" and doc["schema_version"] == 1
    o = doc["options"]
    assert (o["forecast"], o["cap_mode"], o["daily_share"], o["p_max"], o["p_max_source"]) == \
        ("perfect", "share", 0.25, 0.3, "given")
    assert o["utility_shape"] == "linear" and o["latency_statistic"] == "p95" and o["energy_basis"] == "gross"
    assert o["consciousness"] == "discount" and o["demand_profile"] == "flat"
    assert doc["high_hours"] == 60  # 6 of each day's 24 hours, 10 days
    assert doc["carbon"]["rho"] >= doc["carbon"]["rho_blind"] > 0
    assert doc["premium"]["energy_is_estimate"] is True
    assert len(doc["user_types"]) == 3 and doc["population"]["subscribers"] == 500
    assert doc["population"]["net_per_period"] is not None
    assert [r["rank"] for r in doc["ranking"]["rows"] if r["rank"]] == [1, 2, 3]
    md = invoke(*args, "--markdown")
    assert md.exit_code == 0 and "| user type |" in md.stdout and "**months" in md.stdout


def test_price_options_change_the_result(csv_trace):
    base = ["price", PROFILE, "--trace", csv_trace, "--json"]
    a = json.loads(invoke(*base).stdout)
    b = json.loads(invoke(*base, "--utility-shape", "sigmoid", "--consciousness", "reward", "--reward-per-gco2e", "1000",
                          "--latency", "p50", "--energy", "net", "--accuracy-floor", "0.6", "--latency-slo-ms", "1",
                          "--cap-mode", "average").stdout)
    assert b["options"]["utility_shape"] == "sigmoid" and b["options"]["utility_k"] == 10.0
    assert b["options"]["consciousness"] == "reward" and b["options"]["reward_per_gco2e"] == 1000
    assert b["reduced"]["accuracy"] >= 0.6 and a["reduced"]["accuracy"] < 0.6
    assert b["premium"]["latency_ms"] <= 1 < a["premium"]["latency_ms"]
    assert b["options"]["cap_gco2e_per_kwh"] == pytest.approx(np.quantile(
        300 + 150 * np.sin(np.arange(216) / 24 * 2 * np.pi), 0.5), abs=0.1)  # 9 days of persistence forecast
    named = json.loads(invoke(*base, "--premium", "cnn-32 b256 fp32 cpu", "--reduced", "mlp-32 b256 fp32 cpu").stdout)
    assert (named["premium"]["label"], named["reduced"]["label"]) == ("cnn-32 b256 fp32 cpu", "mlp-32 b256 fp32 cpu")


def test_price_export_slots(csv_trace, tmp_path):
    path = tmp_path / "slots.csv"
    res = invoke("price", PROFILE, "--trace", csv_trace, "--export-slots", path)
    assert res.exit_code == 0, res.output
    lines = path.read_text().splitlines()
    assert lines[0].startswith("datetime_utc,month,intensity_gco2e_per_kwh") and len(lines) == 241


def test_example_users_file_is_installed_and_valid():
    assert example_path().is_file() and example_path().parent.name == "data"
    u = load_users()
    assert set(u.names) == {"accuracy-sensitive", "latency-sensitive", "environmentally-conscious"}
    assert u.weight.sum() == pytest.approx(1.0)


GOOD = """version: 1
user_types:
  - {name: a, share: 0.6, accuracy_weight: 0.8, consciousness: 0.1, value_per_request: 0.01, requests_per_period: 100}
  - {name: b, share: 0.4, accuracy_weight: 0.2, consciousness: 0.5, value_per_request: 0.01, requests_per_period: 100}
"""


@pytest.mark.parametrize("text, needles", [
    (GOOD.replace("consciousness: 0.1,", "consciousness: 0.1, colour: red,"), ["user type 'a'", "key 'colour'", "not allowed"]),
    (GOOD.replace("accuracy_weight: 0.2, ", ""), ["user type 'b'", "key 'accuracy_weight'", "required"]),
    (GOOD.replace("consciousness: 0.5", "consciousness: 1.5"), ["user type 'b'", "key 'consciousness'", "less than or equal to 1"]),
    (GOOD.replace("share: 0.4", "share: 0.3"), ["shares", "add up to 0.9", "'share'"]),
    (GOOD.replace("name: b", "name: a"), ["user type 'a' appears more than once"]),
    (GOOD.replace("requests_per_period: 100}", "requests_per_period: .nan}", 1), ["user type 'a'", "key 'requests_per_period'"]),
    (GOOD + "  - [oops\n", ["not valid YAML", "line"]),
    ("- just\n- a list\n", ["not a users file"]),
    (GOOD.replace("version: 1", "version: 2"), ["version 2 is not supported"]),
    (GOOD.replace("version: 1", "version: 1\nprice: 3"), ["key 'price'", "not allowed"]),
    (GOOD.replace("requests_per_period: 100}", "requests_per_period: 100, accuracy_min: 0.9, accuracy_sat: 0.8}", 1),
     ["user type 'a'", "key 'accuracy_sat'", "must be above accuracy_min"]),
    ("version: 1\nuser_types: []\n", ["key 'user_types'"]),
])
def test_bad_users_file_is_one_line_naming_file_type_and_key(tmp_path, text, needles):
    path = tmp_path / "users.yaml"
    path.write_text(text)
    res = invoke("price", PROFILE, "--trace", "DE", "--users", path)
    one_line_error(res, str(path), *needles)


def test_missing_users_file_is_one_line(tmp_path):
    res = invoke("price", PROFILE, "--trace", "DE", "--users", tmp_path / "nope.yaml")
    one_line_error(res, "nope.yaml", "cannot read users file")


@pytest.mark.parametrize("args, needle", [
    (["--cap-mode", "median"], "cap mode 'median'"),
    (["--forecast", "oracle"], "forecast 'oracle'"),
    (["--json", "--markdown"], "choose one"),
    (["--consciousness", "reward"], "--reward-per-gco2e"),
    (["--trace", "Atlantis"], "neither a bundled zone"),
    (["--reduced", "gpt-9"], "not an operating point"),
    (["--discount", "1.5"], "discount 1.5"),
    (["--p-max", "nan"], "--p-max takes a finite number"),
    (["--demand", "hourly.csv"], "--demand 'hourly.csv'"),
    (["--forecast", "column"], "no forecast column"),
    (["--latency", "p42"], "latency statistic 'p42'"),
    (["--rank-by", "nobody"], "no such user type"),
])
def test_bad_options_are_one_line(args, needle):
    res = invoke("price", PROFILE, "--trace", "DE", *args)
    one_line_error(res, needle)


def test_bad_profile_and_trace_units_are_one_line(tmp_path):
    one_line_error(invoke("price", tmp_path / "none.json"), "none.json")
    t = np.datetime64("2023-03-01T00:00:00", "s") + np.arange(48) * np.timedelta64(3600, "s")
    kg = tmp_path / "kg.csv"
    kg.write_text("time,intensity\n" + "\n".join(f"{a}Z,0.{300 + i}" for i, a in enumerate(t)) + "\n")
    one_line_error(invoke("price", PROFILE, "--trace", kg), "kg/kWh", "--trace-units")
    res = invoke("price", PROFILE, "--trace", kg, "--trace-units", "kg/kWh", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["carbon"]["c_base_g_per_request"] > 0


def test_simulate_month_by_month_and_plots(tmp_path, csv_trace):
    res = invoke("simulate", PROFILE, "--trace", csv_trace, "--discount", "0.1", "--plots", tmp_path / "plots",
                 "--electricity-price-per-kwh", "0.2")
    assert res.exit_code == 0, res.output
    assert "month by month" in res.stdout and "2023-03" in res.stdout and "total" in res.stdout
    for name in ("trace-trace.png", "trace-trace.svg", "trace-cumulative.png", "trace-cumulative.svg"):
        assert (tmp_path / "plots" / name).stat().st_size > 1000, name
    doc = json.loads(invoke("simulate", PROFILE, "--trace", csv_trace, "--discount", "0.1", "--json").stdout)
    assert doc["schema"] == "greenbench/simulate"
    assert sum(m["saved_g"] for m in doc["months"]) == pytest.approx(doc["total"]["saved_g"])
    assert doc["total"]["net"] is None


def test_help_names_the_defaults():
    res = invoke("price", "--help")
    assert res.exit_code == 0
    flat = " ".join(res.stdout.split())
    for text in ("users_example.yaml", "US-MIDA-PJM", "persistence", "exceedance", "--cap-gco2e-per-kwh",
                 "--p-max", "--consciousness", "--utility-shape"):
        assert text in flat, text
    assert invoke("simulate", "--help").exit_code == 0
