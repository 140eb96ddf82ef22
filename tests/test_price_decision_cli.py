"""`greenbench price` as a pricing person reads it: the decision first, the discount curve and its
plot, zones side by side, the reduced tier as a mix, a tradeoff.json as input, and what drove the
numbers (thresholds from the frontier only, p_max against the realised p)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from greenbench import profile as prof
from greenbench.carbon.trace import bundled_zones
from greenbench.cli import app

ROOT = Path(__file__).resolve().parent.parent
PROFILE = ROOT / "profiles" / "mnist1d-cpu-2core.json"
PRICES = ("--electricity-price-per-kwh", "0.3", "--carbon-price-per-tonne", "80")


def invoke(*args, env=None):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "80", **(env or {})})


def price_json(*args) -> dict:
    res = invoke("price", *args, "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_the_first_screen_says_what_to_offer_and_what_it_costs_per_tonne():
    res = invoke("price", PROFILE, "--trace", "DE", *PRICES)
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].startswith("decision (carbon: most carbon saved with net >= 0")
    first_screen = " ".join(x.strip() for x in lines[:12])
    assert first_screen.count("Offer ") == 1 and "per t CO2e avoided" in first_screen
    assert "break-even discount" in first_screen
    assert all(len(x) <= 80 for x in lines)
    doc = json.loads(invoke("price", PROFILE, "--trace", "DE", *PRICES, "--json").stdout)
    rec = doc["decision"]["recommendation"]
    assert " ".join(rec["sentence"].split()) in " ".join(first_screen.split())
    assert doc["decision"]["curve"][0]["discount"] == 0 and doc["decision"]["curve"][-1]["discount"] == 1


def test_the_objective_needs_its_price_and_says_so_in_one_line():
    res = invoke("price", PROFILE, "--objective", "carbon")
    assert res.exit_code == 2 and "needs a price" in res.output and "Traceback" not in res.output
    res = invoke("price", PROFILE, "--objective", "greenest")
    assert res.exit_code == 2 and "choose one of carbon, cost, carbon-under-price" in res.output


def test_the_default_offer_never_exceeds_100_percent():
    doc = price_json(PROFILE, "--standard-price", "1")
    assert doc["population"]["discount"] == 1.0
    assert any(u["no_discount_wins"] for u in doc["user_types"])
    assert any("capped at 100%" in n for n in doc["notes"])


def test_zones_side_by_side_ranked_by_rho():
    doc = price_json(PROFILE, "--trace", "all")
    assert doc["schema"] == "greenbench/price-zones"
    zones = [r["zone"] for r in doc["ranking"]]
    assert sorted(zones) == sorted(bundled_zones())
    rhos = [r["rho"] for r in doc["ranking"]]
    assert rhos == sorted(rhos, reverse=True)
    one = price_json(PROFILE, "--trace", zones[0])  # each zone priced as on its own
    assert one["carbon"]["rho"] == rhos[0]
    res = invoke("price", PROFILE, "--trace", "DE", "--trace", "GB")
    assert res.exit_code == 0 and "zones ranked by ρ (2 traces" in res.stdout
    res = invoke("price", PROFILE, "--trace", "DE", "--trace", "GB", "--plot", "x.png")
    assert res.exit_code == 2 and "for one trace" in res.output


def test_the_discount_curve_is_drawn(tmp_path):
    res = invoke("price", PROFILE, *PRICES, "--plot", tmp_path / "curve.png")
    assert res.exit_code == 0, res.output
    png, svg = tmp_path / "curve.png", tmp_path / "curve.svg"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and b"<svg" in svg.read_bytes()[:400]
    assert f"wrote {png}" in res.stderr
    assert b"ESTIMATE, not metered" in svg.read_bytes()  # the committed profile's energy is estimated


def test_a_dominated_point_moves_no_threshold_and_no_discount(tmp_path):
    p = prof.load(PROFILE)
    worst = min((r for r in p.ok_records()), key=lambda r: r.energy_j_per_item or 0)
    bad = worst.model_copy(update={"model": "dominated", "accuracy": 0.10, "latency_p95_ms": 50.0,
                                   "energy_j_per_item": 1.0})
    p.records.append(bad)
    path = tmp_path / "with-dominated.json"
    prof.save(p, path)
    before, after = price_json(PROFILE), price_json(path)
    assert "dominated b1 fp32 cpu" not in after["frontier"]
    for key in ("thresholds", "carbon"):
        assert before[key] == after[key], key
    assert [u["delta_star"] for u in before["user_types"]] == [u["delta_star"] for u in after["user_types"]]
    sources = {t["source"] for u in after["thresholds"]["user_types"]
               for t in (u["quality_zero"], u["quality_sat"], u["latency_sat"], u["latency_max"])}
    assert all(s.startswith("frontier ") and "(" in s for s in sources)  # each names its point


def test_p_max_against_the_realised_p_and_the_expected_month():
    worst = price_json(PROFILE)
    d = worst["drivers"]
    assert d["p_max_over_p"] == d["p_max"] / d["p"] and d["p_max_over_p"] > 1
    expected = price_json(PROFILE, "--p-max-basis", "expected")
    assert expected["drivers"]["p_max_basis"] == "expected"
    assert expected["drivers"]["p_max"] < d["p_max"]
    assert max(u["delta_star"] for u in expected["user_types"]) < max(u["delta_star"] for u in worst["user_types"])
    res = invoke("price", PROFILE)
    assert "p_max/p = " in res.stdout


def test_a_tradeoff_json_prices_as_its_profile(tmp_path):
    res = invoke("fit", PROFILE, "--out", tmp_path / "fit")
    assert res.exit_code == 0, res.output
    tradeoff = next((tmp_path / "fit").glob("*tradeoff.json"))
    a, b = price_json(PROFILE, "--trace", "GB"), price_json(tradeoff, "--trace", "GB")
    for key in ("premium", "reduced", "carbon", "user_types", "decision"):
        assert a[key] == b[key], key
    res = invoke("price", tradeoff, "--latency", "p50")
    assert res.exit_code == 2 and "refit" in res.output


def test_mix_reports_its_points_and_gain():
    plain = price_json(PROFILE)
    mixed = price_json(PROFILE, "--mix", "--mix-utility-floor", "0.5")
    m = mixed["mix"]
    assert plain["mix"] is None and m is not None
    assert not m["is_single"] and 0 < m["share_a"] < 1 and abs(m["utility"] - 0.5) < 1e-9  # held at the floor
    f, a, b = m["share_a"], m["point_a"], m["point_b"]
    assert m["energy_j_per_item"] == mixed["carbon"]["e_r_j_per_item"]
    assert abs(m["energy_j_per_item"] - (f * a["energy_j_per_item"] + (1 - f) * b["energy_j_per_item"])) < 1e-15
    # a share f of reduced requests goes to H itself: only the rest are degraded
    at_h = a["label"] == mixed["premium"]["label"]
    row = mixed["decision"]["curve"][-1]
    degraded = row["green_requests_per_period"] * mixed["carbon"]["p"] * ((1 - f) if at_h else 1.0)
    assert abs(row["requests_degraded_per_period"] - degraded) <= 1e-9 * degraded
    res = invoke("price", PROFILE, "--mix", "--mix-utility-floor", "0.5")
    assert "reduced tier R (--mix)" in res.stdout and "R as served" in res.stdout
    res = invoke("price", PROFILE, "--mix-utility-floor", "0.5")
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_the_bootstrap_is_on_by_default_and_shown_beside_each_figure():
    res = invoke("price", PROFILE, "--trace", "DE", "--draws", "300")
    assert res.exit_code == 0, res.output
    assert "uncertainty: 300 draws of the profile's measurements" in res.stdout
    assert "H changes in" in res.stdout
    doc = price_json(PROFILE, "--trace", "DE", "--draws", "300", "--seed", "3")
    u = doc["uncertainty"]
    assert u["draws"] == 300 and u["seed"] == 3
    # the intervals are of the recommended offer, the one the decision names
    offer = doc["decision"]["recommendation"]["offer"]["discount"]
    figures = {f["name"]: f for f in u["zones"][0]["figures"]}
    assert figures["discount"]["point"] == offer
    assert figures["rho"]["low"] <= figures["rho"]["point"] <= figures["rho"]["high"]
    assert price_json(PROFILE, "--draws", "0")["uncertainty"] is None
    res = invoke("price", PROFILE, "--mix", "--mix-utility-floor", "0.5")
    assert res.exit_code == 0 and "uncertainty not drawn" in res.stderr


def test_carbon_under_a_budget_per_tonne_of_its_own(tmp_path):
    budget = price_json(PROFILE, *PRICES, "--objective", "carbon-under-price", "--max-cost-per-tonne", "2e9")
    offer = budget["decision"]["recommendation"]["offer"]
    assert offer["cost_per_tonne"] <= 2e9
    market = price_json(PROFILE, *PRICES, "--objective", "carbon-under-price")
    assert market["decision"]["recommendation"]["offer"]["saved_t_per_period"] <= offer["saved_t_per_period"]
    res = invoke("price", PROFILE, "--max-cost-per-tonne", "10")
    assert res.exit_code == 2 and "carbon-under-price" in res.output
    res = invoke("price", PROFILE, "--plot", tmp_path / "curve.v2.png", "--draws", "0")
    assert res.exit_code == 0 and (tmp_path / "curve.v2.png").is_file() and (tmp_path / "curve.v2.svg").is_file()


def test_several_traces_keep_the_energy_caveat_and_each_file_once(tmp_path):
    res = invoke("price", PROFILE, "--trace", "DE", "--trace", "GB")
    assert res.exit_code == 0 and "is an estimate" in res.stderr  # the committed energy is estimated
    assert "intervals are drawn for one trace at a time" in res.stderr
    csv = tmp_path / "a" / "t.csv"
    csv.parent.mkdir()
    hours = [f"2023-03-{d:02d}T{h:02d}:00:00Z,{300 + 10 * h + d}" for d in range(1, 4) for h in range(24)]
    csv.write_text("time,intensity_gco2e_per_kwh\n" + "\n".join(hours) + "\n")
    doc = price_json(PROFILE, "--trace", csv, "--trace", tmp_path / "a" / ".." / "a" / "t.csv", "--draws", "0")
    assert doc["schema"] == "greenbench/price"  # one file, however spelt, is one trace
    other = tmp_path / "b" / "t.csv"
    other.parent.mkdir()
    other.write_text(csv.read_text())
    res = invoke("price", PROFILE, "--trace", csv, "--trace", other)
    assert res.exit_code == 2 and "two traces named 't'" in res.output


def test_an_interval_needs_enough_draws():
    res = invoke("price", PROFILE, "--draws", "5")
    assert res.exit_code == 2 and "at least 40 draws" in res.output and "Traceback" not in res.output
