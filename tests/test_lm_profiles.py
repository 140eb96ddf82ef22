"""Language-model profiles all the way through: fit, price, simulate, compare and report on an
in-process causal LM scored by perplexity over batch sizes, a served model over concurrency scored
by multiple-choice accuracy, and a served model scored by perplexity (tests/synthetic_profiles.py).

Perplexity is better lower: the frontier, the curve, the utility, H and the gate read it that way;
served points are named and matched by their load (c1, c4, c16)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic_profiles import (
    CONCURRENCY,
    LM_ACCURACY,
    LM_MODELS,
    OUTPUT_TOKENS,
    make_hf_lm_profile,
    make_profile,
    make_served_profile,
    point_of,
    scaled,
)
from test_widths import check_default_view
from typer.testing import CliRunner

from greenbench import profile as prof
from greenbench.cli import app
from greenbench.compare import gate as cmp
from greenbench.price import calculator as pricing
from greenbench.price.calculator import PricingOptions
from greenbench.price.users import UsersError, parse_users
from greenbench.report import html as report
from greenbench.tradeoff.curves import fit
from greenbench.tradeoff.points import TradeoffError, operating_points, pareto_front

runner = CliRunner()
BUILDERS = {
    "hf-lm-perplexity": lambda: make_hf_lm_profile(0),
    "served-accuracy": lambda: make_served_profile(0, metric="accuracy"),
    "served-perplexity": lambda: make_served_profile(0, metric="perplexity"),
}


def invoke(*args, width: int = 80):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": str(width)})


@pytest.fixture(params=list(BUILDERS))
def lm(request, tmp_path):
    """(kind, profile, its path) for each of the three language-model profiles."""
    p = BUILDERS[request.param]()
    path = tmp_path / f"{request.param}.json"
    prof.save(p, path)
    return request.param, p, path


def _labels(p: prof.Profile) -> list[str]:
    return [r.label for r in p.records]


# ---- points and the frontier --------------------------------------------------------------------

def test_records_are_named_by_their_setting():
    assert point_of(make_hf_lm_profile(), "lm-s", batch=4).label == "lm-s b4 fp32 cpu"
    served = make_served_profile()
    assert _labels(served)[:3] == ["lm-s c1 bf16 cpu", "lm-s c4 bf16 cpu", "lm-s c16 bf16 cpu"]
    assert all(r.batch_size is None and r.concurrency in CONCURRENCY for r in served.records)


def test_perplexity_points_and_a_frontier_that_prefers_lower_perplexity():
    p = make_hf_lm_profile(None)
    points, excluded = operating_points(p)
    assert not excluded and {q.quality_metric for q in points} == {"perplexity"}
    assert {q.model: q.quality for q in points} == LM_MODELS
    # a point with a higher perplexity at the same latency and energy is dominated: lower is better
    worse = make_hf_lm_profile(None, models={"lm-s": 40.0, "lm-m": 25.0, "lm-l": 15.0})
    rec = point_of(worse, "lm-l", batch=16).model_copy(update={"model": "lm-l-bad", "perplexity": 30.0})
    worse.records.append(rec)
    front = pareto_front(operating_points(worse)[0])
    assert "lm-l-bad b16 fp32 cpu" not in {q.label for q in front}
    assert "lm-l b16 fp32 cpu" in {q.label for q in front}


def test_quality_option_and_why_a_record_is_left_out():
    p = make_served_profile(metric="accuracy")
    with pytest.raises(TradeoffError, match="none ok with perplexity"):
        operating_points(p, quality="perplexity")
    _, excluded = operating_points(make_served_profile(metric="perplexity"), latency_kind="ttft", latency="p90")
    assert not excluded
    # in-process: a mean TPOT only, and the error says which statistic there is
    with pytest.raises(TradeoffError, match=r"none ok with perplexity, tpot_p95_ms .*it has --latency mean"):
        operating_points(make_hf_lm_profile(), latency_kind="tpot")
    points, _ = operating_points(make_hf_lm_profile(), latency_kind="tpot", latency="mean")
    assert all(q.latency_ms == pytest.approx(point_of(make_hf_lm_profile(), q.model, batch=q.batch_size).tpot_ms)
               for q in points)


# ---- fit ---------------------------------------------------------------------------------------

def test_fit_of_a_perplexity_profile_falls_with_energy_and_has_batch_curves():
    t = fit(make_hf_lm_profile(None))
    c = t.quality_curve
    assert c.name == "perplexity_vs_energy" and c.status == "fitted" and c.y_name == "perplexity"
    # each model's lowest-energy point (batch 16) carries the curve; perplexity falls with energy
    assert c.point_labels == ("lm-s b16 fp32 cpu", "lm-m b16 fp32 cpu", "lm-l b16 fp32 cpu")
    pred = c.predict(np.array(c.x))
    assert pred[0] > pred[1] > pred[2] and np.allclose(pred, c.y, rtol=0.15)
    names = {x.name for x in t.curves}
    assert {"latency_vs_batch", "energy_vs_batch"} <= names


def test_fit_of_a_served_profile_has_concurrency_curves():
    t = fit(make_served_profile(None))
    energy = [c for c in t.curves if c.name == "energy_vs_concurrency"]
    assert len(energy) == 3 and all(c.x_name == "concurrency" and c.x == (1.0, 4.0, 16.0) for c in energy)
    big = next(c for c in energy if c.group == "lm-l bf16 cpu")
    assert big.status == "fitted" and big.form == "amortised"  # E(c) = e_inf + e0 / c, as built
    assert big.params is not None and big.params["e_inf_j"] == pytest.approx(0.5 * 10 * 0.3, rel=0.01)


def test_fit_cli_on_every_lm_profile(lm, tmp_path):
    kind, p, path = lm
    out = tmp_path / "fit"
    res = invoke("fit", path, "--out", out)
    assert res.exit_code == 0, res.output
    metric = "accuracy" if kind == "served-accuracy" else "perplexity"
    axis = "batch" if kind.startswith("hf-lm") else "concurrency"
    names = {f.name for f in out.iterdir()}
    assert {f"{metric}_vs_energy.png", f"{axis}_curves.png", "tradeoff.json"} <= names
    doc = json.loads((out / "tradeoff.json").read_text())
    assert doc["settings"]["quality_metric"] == metric
    assert doc["settings"]["quality_direction"] == ("higher" if metric == "accuracy" else "lower")
    assert all(metric in row for row in doc["points"])
    best = min(doc["points"], key=lambda r: r[metric] if metric == "perplexity" else -r[metric])
    assert best["model"] == "lm-l"
    check_default_view(res.stdout, 80, _labels(p))


# ---- price and simulate --------------------------------------------------------------------------

def test_perplexity_utility_is_normalised_in_its_own_units():
    """â = clip((Q_max - Q) / (Q_max - Q_sat), 0, 1): PPL 15 (the best) is 1, 40 (the worst) 0."""
    u = parse_users({"user_types": [{"name": "q", "share": 1, "accuracy_weight": 1, "consciousness": 0,
                                     "value_per_request": 1, "requests_per_period": 1}]}, "test")
    b = pricing.bounds(u, np.array([15.0, 25.0, 40.0]), np.array([1.0, 2.0]), "perplexity")
    assert (b.q_sat[0], b.q_zero[0], b.direction) == (15.0, 40.0, "lower")
    got = pricing.utility(u, b, [15.0, 25.0, 40.0, 60.0, 10.0], [1.0] * 5)[0]
    assert got == pytest.approx([1.0, 15 / 25, 0.0, 0.0, 1.0])
    given = parse_users({"user_types": [{"name": "q", "share": 1, "accuracy_weight": 1, "consciousness": 0,
                                         "value_per_request": 1, "requests_per_period": 1,
                                         "perplexity_sat": 20, "perplexity_max": 30}]}, "test")
    b = pricing.bounds(given, np.array([15.0, 40.0]), np.array([1.0, 2.0]), "perplexity")
    assert pricing.utility(given, b, [15.0, 25.0, 35.0], [1.0] * 3)[0] == pytest.approx([1.0, 0.5, 0.0])


def test_users_file_thresholds_in_other_units_are_validated():
    base = {"name": "q", "share": 1, "accuracy_weight": 0.5, "consciousness": 0, "value_per_request": 1,
            "requests_per_period": 1}
    for extra, msg in (({"perplexity_sat": 30, "perplexity_max": 20}, "'perplexity_max' (20.0) must be above "
                        "perplexity_sat (30.0) (lower is better"),
                       ({"perplexity_sat": 0.5}, "'perplexity_sat': input should be greater than or equal to 1"),
                       ({"ttft_sat_ms": 50, "ttft_max_ms": 10}, "'ttft_max_ms' (10.0) must be above"),
                       ({"exact_match_min": 0.8, "exact_match_sat": 0.5}, "'exact_match_sat' (0.5) must be above"),
                       ({"ppl_sat": 20}, "'ppl_sat': is not allowed")):
        with pytest.raises(UsersError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            parse_users({"user_types": [{**base, **extra}]}, "u.yaml")
    u = parse_users({"user_types": [{**base, "perplexity_sat": 18, "tpot_max_ms": 40}]}, "u.yaml")
    assert u.threshold("perplexity_sat")[0] == 18 and np.isnan(u.threshold("perplexity_max")[0])


def test_price_a_perplexity_profile_picks_the_lowest_perplexity_frontier_point_as_h(tmp_path):
    p = make_hf_lm_profile(None)
    from greenbench.price.users import load_users

    res = pricing.price(p, load_users(), _trace(), PricingOptions())
    h, r = res.choice.premium, res.choice.reduced
    assert h.label == "lm-l b16 fp32 cpu"  # lowest perplexity, then least energy
    assert res.choice.premium_how == "lowest-perplexity frontier point"
    assert r.quality > h.quality and r.energy_j_per_item < h.energy_j_per_item
    th = res.thresholds
    assert th is not None and th.quality_metric == "perplexity" and not th.any_given
    assert th.quality_range == (40.0, 15.0) and th.user_types[0].quality_zero.name == "PPL_max"
    assert th.user_types[0].quality_zero.source.startswith("frontier max (")  # names the point it came from
    doc = pricing.to_dict(res)
    assert doc["options"]["quality_metric"] == "perplexity" and doc["options"]["quality_direction"] == "lower"
    assert doc["premium"]["perplexity"] == 15.0 and doc["premium"]["accuracy"] is None
    # a floor in perplexity: R must keep a perplexity of at most 30, so the smallest model cannot be R
    u = parse_users({"user_types": [{"name": "q", "share": 1, "accuracy_weight": 0.6, "consciousness": 0,
                                     "value_per_request": 1, "requests_per_period": 10}]}, "u.yaml")
    assert pricing.price(p, u, _trace(), PricingOptions()).choice.reduced.label == "lm-s b4 fp32 cpu"
    with pytest.raises(pricing.PricingError, match=r"lm-s b4 fp32 cpu has perplexity 40, above --quality-floor 30.*"
                                                   r"raise --quality-floor"):
        pricing.price(p, u, _trace(), PricingOptions(accuracy_floor=30.0))
    named = PricingOptions(accuracy_floor=30.0, reduced="lm-m b16 fp32 cpu")
    ch = pricing.choose_points(operating_points(p)[0], u, named)
    assert any(x.reason == "perplexity above the floor 30 (lower is better)" for x in ch.ranking)


def test_thresholds_outside_the_frontier_come_from_it_not_from_a_dominated_point():
    """A dominated point (worse perplexity, more energy) must not move anyone's utility."""
    from greenbench.price.users import load_users

    p = make_hf_lm_profile(None)
    rec = point_of(p, "lm-s", batch=1).model_copy(update={"model": "lm-xs", "perplexity": 90.0})
    p.records.append(rec)
    res = pricing.price(p, load_users(), _trace(), PricingOptions())
    assert "lm-xs b1 fp32 cpu" not in {q.label for q in res.choice.frontier}
    assert res.thresholds is not None and res.thresholds.quality_range == (40.0, 15.0)


def test_latency_kinds_read_their_fields_and_their_thresholds():
    from greenbench.price.users import load_users

    p = make_served_profile(None, metric="perplexity")
    for kind, field in (("e2e", "latency_p95_ms"), ("ttft", "ttft_p95_ms"), ("tpot", "tpot_p95_ms")):
        res = pricing.price(p, load_users(), _trace(), PricingOptions(latency_kind=kind))
        h = res.choice.premium
        assert h.latency_ms == pytest.approx(getattr(point_of(p, h.model, concurrency=h.concurrency), field))
        assert res.options_used.latency_kind == kind
    users = parse_users({"user_types": [{"name": "chat", "share": 1, "accuracy_weight": 0.5, "consciousness": 0,
                                         "value_per_request": 1, "requests_per_period": 10,
                                         "ttft_sat_ms": 2, "ttft_max_ms": 500, "latency_max_ms": 9,
                                         "accuracy_min": 0.3}]}, "u.yaml")
    res = pricing.price(p, users, _trace(), PricingOptions(latency_kind="ttft"))
    assert res.thresholds is not None
    (t,) = res.thresholds.user_types
    assert (t.latency_sat.name, t.latency_sat.value, t.latency_sat.source) == ("TTFT_sat", 2.0, "users file")
    assert (t.latency_max.value, t.quality_sat.source.split(" (")[0]) == (500.0, "frontier min")
    assert any("does not read" in n and "accuracy_min, latency_max_ms" in n for n in res.notes)


def test_price_and_simulate_cli_on_every_lm_profile(lm, tmp_path):
    kind, _, path = lm
    res = invoke("price", path, "--trace", "DE")
    assert res.exit_code == 0, res.output
    check_default_view(res.stdout, 80, ["lm-l", "accuracy-sensitive", "environmentally-conscious", "2023-12"])
    text = " ".join(res.stdout.split())
    assert "utility thresholds" in text and "Pareto frontier's range" in text
    assert ("PPL_max" in text and "lower is better" in text) if "perplexity" in kind else "A_min" in text
    doc = json.loads(invoke("price", path, "--trace", "DE", "--json").stdout)
    assert doc["premium"]["model"] == "lm-l" and doc["reduced"]["model"] != "lm-l"
    if kind.startswith("served"):
        assert doc["premium"]["batch_size"] is None and doc["premium"]["concurrency"] in CONCURRENCY
    ttft = invoke("price", path, "--trace", "DE", "--latency-kind", "ttft")
    assert ttft.exit_code == 0, ttft.output
    assert "TTFT p95 ms" in ttft.stdout and "time to first token" in " ".join(ttft.stdout.split())
    sim = invoke("simulate", path, "--trace", "DE", "--plots", tmp_path / "plots")
    assert sim.exit_code == 0, sim.output
    check_default_view(sim.stdout, 80, ["2023-01", "total"])
    assert (tmp_path / "plots" / "DE-cumulative.png").exists()
    wide = invoke("price", path, "--wide")
    assert wide.exit_code == 0 and "frontier" in wide.stdout and "…" not in wide.stdout


def test_classifier_price_is_unchanged_by_the_new_options():
    """An accuracy-scored classifier: the defaults are e2e latency (per batch) and accuracy, and
    naming them changes nothing."""
    from greenbench.price.users import load_users

    p = make_profile(1)
    a = pricing.to_dict(pricing.price(p, load_users(), _trace(), PricingOptions()))
    b = pricing.to_dict(pricing.price(p, load_users(), _trace(), PricingOptions(latency_kind="e2e",
                                                                               quality="accuracy")))
    assert a == b and a["premium"]["accuracy"] == a["premium"]["quality"]
    assert a["options"]["quality_metric"] == "accuracy" and a["options"]["latency_kind"] == "e2e"


# ---- compare -------------------------------------------------------------------------------------

def test_compare_cli_with_itself_and_a_worsened_copy(lm, tmp_path):
    kind, p, path = lm
    same = invoke("compare", path, path)
    assert same.exit_code == 0, same.output
    check_default_view(same.stdout, 80, _labels(p))
    worse = tmp_path / "worse.json"
    if "perplexity" in kind:  # a perplexity increase of 5% at every load of one model
        w = make_served_profile(0, metric="perplexity", quality_shift={"lm-m": 1.05}) if kind.startswith("served") \
            else make_hf_lm_profile(0, perplexity_shift={"lm-m": 1.05})
        want = {r.label for r in w.records if r.model == "lm-m"}
        metric = "perplexity"
    else:  # 40 fewer correct answers of 200: accuracy 0.55 -> 0.35
        w = make_served_profile(0, metric="accuracy", quality_shift={"lm-m": -40})
        want = {r.label for r in w.records if r.model == "lm-m"}
        metric = "accuracy"
    prof.save(w, worse)
    res = invoke("compare", path, worse, "--json")
    assert res.exit_code == 1, res.output
    doc = json.loads(res.stdout)
    regressed = {r["label"] for r in doc["rows"] if r["status"] == "regression"}
    assert regressed == want and all(r["metric"] == metric for r in doc["rows"] if r["status"] == "regression")
    if kind.startswith("served"):
        row = next(r for r in doc["rows"] if r["status"] == "regression")
        assert row["point"]["batch_size"] is None and row["point"]["concurrency"] in CONCURRENCY


def test_lm_metrics_are_gated_in_their_direction():
    base = make_served_profile(1, metric="perplexity")
    assert cmp.METRICS["perplexity"].higher_is_better is False
    assert cmp.METRICS["output_tokens_per_s"].higher_is_better is True
    for metric, factor, threshold in (("ttft_p50_ms", 1.5, "ttft_p50_ms:+10%"), ("tpot_ms", 1.5, "tpot_ms:+10%"),
                                      ("energy_j_per_output_token", 1.5, "energy_j_per_output_token:+5%"),
                                      ("output_tokens_per_s", 0.5, "output_tokens_per_s:-10%")):
        cand = scaled(base, "lm-l", None, metric, factor, concurrency=4)
        res = cmp.compare(base, cand, cmp.Options(thresholds=cmp.parse_thresholds([threshold])))
        assert {r.point for r in res.regressions} == {"lm-l c4 bf16 cpu"}, metric
        better = scaled(base, "lm-l", None, metric, 1 / factor, concurrency=4)
        res = cmp.compare(base, better, cmp.Options(thresholds=cmp.parse_thresholds([threshold])))
        assert not res.regressions and res.count("improvement") == 1, metric


def test_served_points_are_matched_by_their_load():
    base = make_served_profile(1)
    cand = make_served_profile(2, concurrency=(4, 16, 64))
    res = cmp.compare(base, cand)
    points = {r.point for r in res.rows if r.status not in ("missing", "new")}
    assert points == {f"{m} c{c} bf16 cpu" for m in LM_ACCURACY for c in (4, 16)}
    assert {r.point for r in res.rows if r.status == "missing"} == {f"{m} c1 bf16 cpu" for m in LM_ACCURACY}
    assert {r.point for r in res.rows if r.status == "new"} == {f"{m} c64 bf16 cpu" for m in LM_ACCURACY}


# ---- report -------------------------------------------------------------------------------------

def test_report_of_every_lm_profile(lm, tmp_path):
    kind, p, path = lm
    out = tmp_path / "rep"
    res = invoke("report", path, "--out", out)
    assert res.exit_code == 0, res.output
    html = (out / "report.html").read_text("utf-8")
    axis = "batch" if kind.startswith("hf-lm") else "concurrency"
    metric = "accuracy" if kind == "served-accuracy" else "perplexity"
    for name in (f"{metric}_vs_energy.png", f"latency_vs_{axis}.png", "energy_by_model.png",
                 f"energy_per_token_vs_{axis}.png", f"ttft_vs_{axis}.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG", name
    for header in ("TTFT p50 ms", "TPOT ms", "tokens/s", "J/token"):
        assert f">{header}</th>" in html, header
    if metric == "perplexity":
        assert ">perplexity</th>" in html and "Lowest perplexity: lm-l (perplexity 15)" in html
    else:
        assert "Most accurate: lm-l (accuracy 0.700)" in html
    if axis == "concurrency":
        assert "<td>c16</td>" in html and "vllm 0.32.0+cpu" in html and "J/request" in html
    r = point_of(p, "lm-s", **({"batch": 16} if axis == "batch" else {"concurrency": 16}))
    assert f"{r.energy_j_per_output_token:.3g}" in html and f"{r.output_tokens_per_s:,.0f}" in html
    assert r.energy_j_per_output_token == pytest.approx(r.energy_j_per_item / OUTPUT_TOKENS)


def test_report_with_a_baseline_shows_the_perplexity_regression(tmp_path):
    base = make_served_profile(0, metric="perplexity")
    worse = make_served_profile(0, metric="perplexity", quality_shift={"lm-l": 1.1})
    rep = report.write_report(worse, tmp_path, profile_name="w.json", baseline=base, baseline_name="b.json")
    assert rep.comparison is not None and rep.comparison.regressions
    assert {r.point for r in rep.comparison.regressions} == {f"lm-l c{c} bf16 cpu" for c in CONCURRENCY}
    assert "changes.png" in rep.images


def test_classifier_report_draws_no_lm_plots(tmp_path):
    rep = report.write_report(make_profile(1), tmp_path, profile_name="p.json")
    assert set(rep.images) == {"accuracy_vs_energy.png", "latency_vs_batch.png", "energy_by_model.png"}
    assert not rep.missing_plots


# ---- helpers -------------------------------------------------------------------------------------

def _trace():
    from greenbench.carbon.trace import Trace

    start = np.datetime64("2023-01-01T00:00:00", "s")
    ci = np.tile([100.0] * 18 + [500.0] * 6, 30)
    return Trace(name="test", time_utc=start + np.arange(len(ci)) * np.timedelta64(3600, "s"),
                 intensity_gco2e_per_kwh=ci, forecast_gco2e_per_kwh=None, tz=None, basis="lca", source="test")
