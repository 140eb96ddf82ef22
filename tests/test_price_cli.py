"""`greenbench price` and `greenbench simulate` through Typer's CliRunner, bad users files included."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import one_line_error
from typer.testing import CliRunner

from greenbench.cli import app
from greenbench.price.users import example_path, load_users

ROOT = Path(__file__).resolve().parent.parent
PROFILE = str(ROOT / "profiles" / "mnist1d-cpu-2core.json")
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])




@pytest.fixture
def csv_trace(tmp_path):
    """Ten days of hourly intensity: a daily cycle (peak in the evening) in gCO2e/kWh."""
    t = np.datetime64("2023-03-01T00:00:00", "s") + np.arange(240) * np.timedelta64(3600, "s")
    ci = 300 + 150 * np.sin(np.arange(240) / 24 * 2 * np.pi)
    path = tmp_path / "trace.csv"
    path.write_text("time,intensity_gco2e_per_kwh\n"
                    + "\n".join(f"{a}Z,{b:.2f}" for a, b in zip(t, ci, strict=True)) + "\n")
    return path


def test_price_defaults_say_which_options_ran():
    res = invoke("price", PROFILE, "--trace", "DE", "--discount", "0.1")
    assert res.exit_code == 0, res.output
    out = res.stdout
    for text in ("options that ran", "persistence", "exceedance", "R ranking", "user types", "accuracy-sensitive",
                 "latency-sensitive", "environmentally-conscious", "ρ_blind", "2023-12", "not a measurement"):
        assert text in out, text
    assert "users: the example shipped with greenbench" in res.output
    # where each value came from is a --wide column
    assert "default: shipped example" not in out and "--wide: where each value came from" in out
    wide = invoke("price", PROFILE, "--trace", "DE", "--discount", "0.1", "--wide").stdout
    for text in ("default: shipped example", "quantile 0.75", "derived: maximum of the monthly p"):
        assert text in wide, text


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
    ranks = [r["rank"] for r in doc["ranking"]["rows"] if r["rank"]]
    assert ranks and ranks == list(range(1, len(ranks) + 1))  # every candidate R ranked, 1 to n
    md = invoke(*args, "--markdown")
    assert md.exit_code == 0 and "| user type |" in md.stdout and "**months" in md.stdout


def test_price_options_change_the_result(csv_trace):
    base = ["price", PROFILE, "--trace", csv_trace, "--json"]
    a = json.loads(invoke(*base).stdout)
    floor = round(a["reduced"]["accuracy"] + 0.01, 4)  # above the default R: the floor must move R
    b = json.loads(invoke(*base, "--utility-shape", "sigmoid", "--consciousness", "reward",
                          "--reward-per-gco2e", "1000", "--latency", "p50", "--energy", "net",
                          "--accuracy-floor", str(floor), "--latency-slo-ms", "1", "--cap-mode", "average").stdout)
    assert b["options"]["utility_shape"] == "sigmoid" and b["options"]["utility_k"] == 10.0
    assert b["options"]["consciousness"] == "reward" and b["options"]["reward_per_gco2e"] == 1000
    assert b["reduced"]["accuracy"] >= floor > a["reduced"]["accuracy"]
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
    (GOOD.replace("consciousness: 0.1,", "consciousness: 0.1, colour: red,"),
     ["user type 'a'", "key 'colour'", "not allowed"]),
    (GOOD.replace("accuracy_weight: 0.2, ", ""), ["user type 'b'", "key 'accuracy_weight'", "required"]),
    (GOOD.replace("consciousness: 0.5", "consciousness: 1.5"),
     ["user type 'b'", "key 'consciousness'", "less than or equal to 1"]),
    (GOOD.replace("share: 0.4", "share: 0.3"), ["shares", "add up to 0.9", "'share'"]),
    (GOOD.replace("name: b", "name: a"), ["user type 'a' appears more than once"]),
    (GOOD.replace("requests_per_period: 100}", "requests_per_period: .nan}", 1),
     ["user type 'a'", "key 'requests_per_period'"]),
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


def _profile_with(tmp_path, name, **change):
    """The committed profile with every record's fields changed (energies scaled so that the largest
    is ``energy_max``)."""
    doc = json.loads(Path(PROFILE).read_text())
    top = change.pop("energy_max", None)
    largest = max(r["energy_j_per_item"] or 0 for r in doc["records"])
    for r in doc["records"]:
        r.update(change)
        if top is not None and r["energy_j_per_item"] is not None:
            for key in ("energy_j_per_item", "energy_net_j_per_item"):
                r[key] = None if r[key] is None else r[key] / largest * top
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def test_a_short_dirty_edge_day_gets_its_share_in_share_mode(tmp_path):
    """The reviewer's repro: a day of 100..123 then 3 hours at 1000, share mode, perfect forecast. The
    edge day rounds 0.25 x 3 = 0.75 hour to 1 (not 0): ρ >= ρ_blind (was 0.091 < 0.178)."""
    t = np.datetime64("2023-01-01T00:00:00", "s") + np.arange(27) * np.timedelta64(3600, "s")
    ci = list(100 + np.arange(24)) + [1000] * 3
    path = tmp_path / "partial.csv"
    path.write_text("datetime_utc,intensity_gco2e_per_kwh\n"
                    + "".join(f"{a}Z,{b}\n" for a, b in zip(t, ci, strict=True)))
    doc = json.loads(invoke("price", PROFILE, "--trace", path, "--forecast", "perfect", "--cap-mode", "share",
                            "--json").stdout)
    assert doc["high_hours"] == 7 and doc["carbon"]["rho"] >= doc["carbon"]["rho_blind"]


@pytest.mark.parametrize("k", ["2000", "1e-20"])
@pytest.mark.parametrize("fmt", [[], ["--json"]])
def test_utility_k_out_of_range_is_one_line(k, fmt):
    res = invoke("price", PROFILE, "--trace", "DE", "--utility-shape", "sigmoid", "--utility-k", k, *fmt)
    one_line_error(res, f"utility k {float(k):g}: give a number from 1e-06 to 1000")


@pytest.mark.parametrize("command", ["price", "simulate"])
@pytest.mark.parametrize("fmt", [[], ["--json"]])
def test_results_that_overflow_are_one_line_not_nan(tmp_path, csv_trace, command, fmt):
    huge = _profile_with(tmp_path, "huge.json", energy_max=1e308)
    res = invoke(command, huge, "--trace", csv_trace, *fmt)
    # refused when the profile is read (an energy beyond anything measurable) or, where a reader lets
    # it through, when a result overflows: one line naming the file either way, never a NaN
    one_line_error(res, "huge.json")
    assert "implausible value" in res.output or "is not a finite number (inf or NaN)" in res.output
    assert "nan" not in res.output.lower().replace("(inf or nan)", "")


@pytest.mark.parametrize("key, value", [("value_per_request", "1e300"), ("requests_per_period", "1e300")])
def test_users_file_caps_value_and_requests(tmp_path, key, value):
    path = tmp_path / "users.yaml"
    path.write_text(GOOD.replace(f"{key}: " + ("0.01" if key == "value_per_request" else "100"), f"{key}: {value}", 1))
    one_line_error(invoke("price", PROFILE, "--trace", "DE", "--users", path, "--json"),
                   "user type 'a'", f"key '{key}'", "less than or equal to")


@pytest.mark.parametrize("command", ["price", "simulate"])
def test_trace_columns_and_units_can_be_named(tmp_path, command):
    """The trace hints 'give --time-column / --value-column' name options price and simulate have;
    a value column that names no unit needs --trace-units."""
    t = np.datetime64("2023-03-01T00:00:00", "s") + np.arange(72) * np.timedelta64(3600, "s")
    path = tmp_path / "mine.csv"
    path.write_text("stamp,grid,notes\n"
                    + "".join(f"{a}Z,{300 + 100 * np.sin(i / 4):.1f},x\n" for i, a in enumerate(t)))
    one_line_error(invoke(command, PROFILE, "--trace", path), "no time column", "--time-column")
    one_line_error(invoke(command, PROFILE, "--trace", path, "--time-column", "stamp"), "--value-column")
    one_line_error(invoke(command, PROFILE, "--trace", path, "--time-column", "stamp", "--value-column", "grid"),
                   "column 'grid' names no unit", "--trace-units g/kWh")
    res = invoke(command, PROFILE, "--trace", path, "--time-column", "stamp", "--value-column", "grid",
                 "--trace-units", "g/kWh", "--json")
    assert res.exit_code == 0, res.output
    one_line_error(invoke(command, PROFILE, "--trace", "DE", "--value-column", "grid"), "CSV files only")


def test_simulate_says_over_the_trace_unless_it_is_a_year(csv_trace):
    from dataclasses import replace

    from greenbench import profile as prof
    from greenbench.carbon.trace import load_trace
    from greenbench.cli.render import simulate_summary
    from greenbench.price import simulate as sim
    from greenbench.price.calculator import PricingOptions

    res = invoke("simulate", PROFILE, "--trace", csv_trace, "--discount", "0.1")
    assert res.exit_code == 0, res.output
    assert "over the trace (240 h): " in res.stdout and "year:" not in res.stdout
    result = sim.simulate(prof.load(Path(PROFILE)), None, load_trace(str(csv_trace)), PricingOptions(discount=0.1))
    result = replace(result, total=replace(result.total, hours=8760))
    assert simulate_summary(result)[0].startswith("year: ")


def test_price_and_simulate_share_their_options():
    """The options both commands take are declared alike in both signatures: same alias, same default."""
    import inspect

    from greenbench.cli.price import price_command
    from greenbench.cli.simulate import simulate_command

    # price's own: its plot, the decision's objective, the bootstrap, the mix, and --trace repeatable
    own = {"as_json", "markdown", "export_slots_csv", "plots", "plot", "objective", "max_cost_per_tonne",
           "trace", "draws", "seed", "mix",
           "mix_utility_floor", "profile"}
    a, b = (inspect.signature(f).parameters for f in (price_command, simulate_command))
    shared = [n for n in a if n not in own]
    assert shared == [n for n in b if n not in own] and len(shared) == 39  # with --latency-kind, --quality
    for n in shared:
        assert (a[n].annotation, a[n].default) == (b[n].annotation, b[n].default), n


def test_fake_meter_energy_is_flagged_as_not_a_measurement(tmp_path, csv_trace):
    from greenbench import profile as prof
    from greenbench.price import simulate as sim
    from greenbench.price.calculator import PricingOptions

    fake = _profile_with(tmp_path, "fake.json", energy_method="fake")
    res = invoke("price", fake, "--trace", csv_trace)
    assert res.exit_code == 0, res.output
    assert "fake (not a measurement)" in res.stdout  # in the table of results
    assert "is from the fake test meter (energy_method 'fake'), not a measurement" in res.stderr  # the note
    doc = json.loads(invoke("price", fake, "--trace", csv_trace, "--json").stdout)
    assert doc["premium"]["energy_is_measurement"] is False and doc["premium"]["energy_is_estimate"] is False
    res = invoke("simulate", fake, "--trace", csv_trace)
    assert res.exit_code == 0 and "(energy_method 'fake'), not a measurement" in res.stderr
    from greenbench.carbon.trace import load_trace
    result = sim.simulate(prof.load(fake), load_users(), load_trace(str(csv_trace)), PricingOptions())
    assert "not a measurement: energy_method fake" in sim.cumulative_title(result)
    measured = _profile_with(tmp_path, "rapl.json", energy_method="rapl")
    result = sim.simulate(prof.load(measured), load_users(), load_trace(str(csv_trace)), PricingOptions())
    assert "not a measurement" not in sim.cumulative_title(result)
    res = invoke("price", measured, "--trace", csv_trace)
    assert "not a measurement" not in res.stdout


def test_help_gives_the_forecast_default_as_auto():
    flat = " ".join(invoke("price", "--help").stdout.split())
    assert "forecast auto (a CSV trace's forecast column when it has one, else persistence" in flat
    assert "forecast persistence (the same hour" not in flat
    assert "--time-column" in flat and "--value-column" in flat
