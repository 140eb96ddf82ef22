"""The bootstrap of shared/docs/pricing-model.md §9: uncertainty carried from the profile's own spread
into δ*, uptake, ρ, ΔC, net and the cost per tonne (greenbench.price.bootstrap)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from greenbench import profile as prof
from greenbench.carbon import trace as traces
from greenbench.carbon.trace import Trace
from greenbench.price import bootstrap as bs
from greenbench.price import calculator as pricing
from greenbench.price import slots as slotsmod
from greenbench.price.calculator import PricingOptions
from greenbench.price.slots import SlotPolicy
from greenbench.price.users import Users, load_users
from greenbench.units import G_PER_TONNE
from tests.synthetic_profiles import edited, make_hf_lm_profile, make_profile, make_served_profile

COMMITTED = Path(__file__).resolve().parents[1] / "profiles" / "mnist1d-cpu-2core.json"
START = np.datetime64("2023-03-01T00:00:00", "s")
PERFECT = SlotPolicy(forecast="perfect")
PRICED = PricingOptions(slots=PERFECT, electricity_price_per_kwh=0.15, carbon_price_per_tonne=80.0)


def trace(days: int = 30, name: str = "t") -> Trace:
    """Hourly CI with a daily peak (hours 17-21 at 500) and a slow drift: slots with variance."""
    h = np.arange(days * 24)
    ci = 200.0 + 300.0 * ((h % 24 >= 17) & (h % 24 <= 21)) + 20.0 * np.sin(h / 97.0)
    t = START + h * np.timedelta64(3600, "s")
    return Trace(name=name, time_utc=t, intensity_gco2e_per_kwh=ci, forecast_gco2e_per_kwh=None, tz=None,
                 basis="lca", source="test")


def users(**cols) -> Users:
    """User types from equal-length lists (or one value for all); unset thresholds are NaN."""
    n = max((len(v) for v in cols.values() if isinstance(v, list)), default=1)

    def col(k, default):
        v = cols.get(k, default)
        return np.array(v if isinstance(v, list) else [v] * n, dtype=float)
    return Users(names=tuple(f"u{i}" for i in range(n)), weight=np.full(n, 1.0 / n),
                 accuracy_weight=col("w_a", 1.0), consciousness=col("e", 0.0), value_per_request=col("v", 0.01),
                 requests_per_period=col("n", 730.0), accuracy_min=col("a_min", np.nan),
                 accuracy_sat=col("a_sat", np.nan), latency_sat_ms=col("l_sat", np.nan),
                 latency_max_ms=col("l_max", np.nan), subscribers=100)


MIXED = users(w_a=[0.9, 0.5, 0.2], e=[0.1, 0.6, 0.0], v=[0.01, 0.003, 0.002], n=[730.0, 3000.0, 20000.0])


def no_spread(profile: prof.Profile) -> prof.Profile:
    """The profile with no evaluation count: quality is then held fixed (the other spreads are the
    profile's own)."""
    p = copy.deepcopy(profile)
    for r in p.records:
        r.accuracy_n = None
    return p


def calculator_figures(res: pricing.PricingResult, opts: PricingOptions) -> dict[str, float | None]:
    """The §8 figures, from the calculator's result alone (K from the population fields)."""
    pop, c = res.population, res.carbon
    kwh = pop.green_requests * c.saved_kwh_per_request
    k = ((pop.discount_cost - kwh * (opts.electricity_price_per_kwh or 0.0)) / (pop.saved_g / G_PER_TONNE)
         if pop.saved_g > 0 else None)
    out: dict[str, float | None] = {"discount": pop.discount, "uptake": pop.uptake, "rho": c.rho,
                                    "rho_blind": c.rho_blind, "saved_g_per_period": pop.saved_g,
                                    "net_per_period": pop.net, "cost_per_tonne": k}
    out.update({f"delta_star:{u.name}": u.delta_star for u in res.users})
    return out


# ---------------------------------------------------------------------------------------------
# spec §11: with zero measured spread every draw equals the point estimate


@pytest.mark.parametrize("energy_model", bs.ENERGY_MODELS)
def test_zero_spread_every_draw_equals_the_point_estimate_exactly(energy_model):
    p = no_spread(make_profile(seed=None, cv=0.0))  # identical repeats, std 0, no evaluation count
    res = bs.bootstrap(p, MIXED, [trace(), trace(45, "u")], PRICED, draws=50, seed=3, energy_model=energy_model)
    assert all(s.energy_se_j == 0.0 and s.latency_se_ms == 0.0 and s.quality_n is None for s in res.spreads)
    assert res.premium_changed == res.reduced_changed == res.no_choice_draws == 0
    assert res.chosen_draws == 50
    for z in res.zones:
        assert z.premium_changed_share == 0.0 and z.reduced_changed_share == 0.0
        assert len(z.values) == 3 + len(bs.FIGURES)  # δ* of the three types and every figure
        for name, v in z.values.items():
            assert np.isfinite(v[0]), name
            assert np.array_equal(v[1:], np.full(50, v[0])), name  # exact, not approximately
        for f in z.figures:
            assert f.point == f.low == f.high and f.defined_draws == 50 and f.reason is None


def test_missing_spread_is_held_fixed_and_said_not_read_as_zero():
    p = no_spread(make_profile(seed=0, cv=0.05))
    for r in p.records:
        r.energy_j_per_item_std = None
        r.samples.pop("energy_j_per_item")
        r.samples.pop("latency_p95_ms")
    m = bs.measured_points(p)
    assert all(s.energy_se_j is None and s.latency_se_ms is None and s.quality_n is None for s in m.spreads)
    assert any("accuracy held fixed" in n and f"({len(m.points)} of {len(m.points)} points)" in n for n in m.notes)
    assert any("latency_p95_ms held fixed" in n for n in m.notes)
    res = bs.bootstrap(m, MIXED, [trace()], PRICED, draws=20)
    assert all(np.array_equal(v[1:], np.full(20, v[0])) for v in res.zones[0].values.values())


def test_spread_is_read_from_the_profile():
    """σ/√n of the energy repeats, s/√k of the priced latency's repeats, the evaluation count."""
    p = make_profile(seed=0, cv=0.05)
    m = bs.measured_points(p)
    r = next(r for r in p.records if r.label == m.points[0].label)
    s = m.spreads[0]
    assert s.energy_se_j == pytest.approx(r.energy_j_per_item_std / np.sqrt(5))
    assert s.latency_se_ms == pytest.approx(np.std(r.samples["latency_p95_ms"], ddof=1) / np.sqrt(5))
    assert s.quality_n == 2000 and s.latency_field == "latency_p95_ms"
    # the p50 is priced from its own samples
    m50 = bs.measured_points(p, PricingOptions(latency="p50"))
    assert m50.spreads[0].latency_se_ms == pytest.approx(np.std(r.samples["latency_p50_ms"], ddof=1) / np.sqrt(5))
    # a statistic with no per-repeat samples is held fixed
    m99 = bs.measured_points(p, PricingOptions(latency="p99"))
    assert m99.spreads[0].latency_se_ms is None and "latency_p99_ms held fixed" in m99.spreads[0].notes[0]


def test_points_of_one_model_share_one_accuracy_draw():
    """A batch size does not change which items a model gets right: one draw per model."""
    p = make_profile(seed=0, cv=0.05)
    drawn = bs.draw(bs.measured_points(p), draws=200, seed=1)
    models = [pt.model for pt in drawn.base]
    for m in set(models):
        cols = drawn.quality[:, [i for i, x in enumerate(models) if x == m]]
        assert np.all(cols == cols[:, :1])
        assert np.unique(cols[:, 0]).size > 10  # and it is drawn
    big, small = models.index("large"), models.index("small")
    assert not np.array_equal(drawn.quality[1:, big] - 0.95, drawn.quality[1:, small] - 0.80)


# ---------------------------------------------------------------------------------------------
# reproducibility, order, options


def test_draws_are_reproducible_with_a_seed_and_change_with_it():
    p = make_profile(seed=0, cv=0.05)
    a = bs.to_dict(bs.bootstrap(p, MIXED, [trace()], PRICED, draws=100, seed=7))
    b = bs.to_dict(bs.bootstrap(p, MIXED, [trace()], PRICED, draws=100, seed=7))
    c = bs.to_dict(bs.bootstrap(p, MIXED, [trace()], PRICED, draws=100, seed=8))
    assert a == b
    assert a["zones"][0]["figures"] != c["zones"][0]["figures"]
    assert a["zones"][0]["figures"][0]["point"] == c["zones"][0]["figures"][0]["point"]  # only the draws move


def test_results_do_not_depend_on_the_order_of_the_profile_rows():
    p = make_profile(seed=0, cv=0.05)
    q = copy.deepcopy(p)
    q.records = list(reversed(q.records))
    a = bs.to_dict(bs.bootstrap(p, MIXED, [trace()], PRICED, draws=80, seed=2))
    b = bs.to_dict(bs.bootstrap(q, MIXED, [trace()], PRICED, draws=80, seed=2))
    assert a == b


def test_bad_options_are_one_clear_error():
    p = make_profile(seed=0)
    for draws in (0, -1, 1.5, True):
        with pytest.raises(bs.BootstrapError, match="draws"):
            bs.bootstrap(p, MIXED, [trace()], PRICED, draws=draws)  # type: ignore[arg-type]
    with pytest.raises(bs.BootstrapError, match="energy model"):
        bs.bootstrap(p, MIXED, [trace()], PRICED, draws=10, energy_model="bayes")
    with pytest.raises(bs.BootstrapError, match="one per trace"):
        bs.bootstrap(p, MIXED, [trace()], PRICED, draws=10, slots=[])
    crowd = pricing.draw_users(MIXED, bs.MAX_DRAW_CELLS // 10, seed=0)
    with pytest.raises(bs.BootstrapError, match="user rows"):
        bs.bootstrap(p, crowd, [trace()], PRICED, draws=10)


def test_a_drawn_population_is_summarised_by_the_offer_not_per_type():
    crowd = pricing.draw_users(MIXED, 500, seed=0, jitter=0.05)
    res = bs.bootstrap(make_profile(seed=0, cv=0.05), crowd, [trace()], PRICED, draws=20)
    names = [f.name for f in res.zones[0].figures]
    assert names == list(bs.FIGURES) and any("drawn population" in n for n in res.notes)
    r = pricing.price_points(list(res.points), crowd, trace(), PRICED)
    assert res.zones[0].figure("uptake").point == pytest.approx(r.population.uptake, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# the vectorised figures are the calculator's


@pytest.mark.parametrize("opts", [
    PricingOptions(slots=PERFECT),
    PRICED,
    PricingOptions(slots=PERFECT, consciousness="reward", reward_per_gco2e=5.0, carbon_price_per_tonne=50.0),
    PricingOptions(slots=SlotPolicy(forecast="perfect", p_max=0.1), standard_price=4.0, discount=0.05,
                   electricity_price_per_kwh=0.3, utility_shape="log", energy="net"),
    # P far below a type's loss: δ* > 1, and the default offer stops at 100% of P
    PricingOptions(slots=PERFECT, standard_price=0.05, carbon_price_per_tonne=80.0),
], ids=["default", "priced", "reward", "fixed-price-offer-net-log", "delta-star-above-1"])
def test_each_draw_equals_the_calculator_on_its_drawn_points(opts):
    p = make_profile(seed=0, cv=0.08)
    trs = [trace(), trace(40, "u")]
    res = bs.bootstrap(p, MIXED, trs, opts, draws=40, seed=5)
    drawn = bs.draw(bs.measured_points(p, opts), draws=40, seed=5)
    assert res.chosen_draws == 40
    for row in (0, 1, 2, 17, 40):
        pts = drawn.points(row)
        for z, tr in zip(res.zones, trs, strict=True):
            r = pricing.price_points(pts, MIXED, tr, opts)
            assert r.choice.premium.label == res.points[res.premium_index[row]].label
            assert r.choice.reduced.label == res.points[res.reduced_index[row]].label
            if opts.standard_price == 0.05:
                assert max(u.delta_star for u in r.users) > 1 and r.population.discount == 1.0
            for name, want in calculator_figures(r, opts).items():
                got = z.values[name][row]
                if want is None:
                    assert np.isnan(got), name
                else:
                    assert got == pytest.approx(want, rel=1e-12, abs=1e-300), (row, name)


def test_the_committed_profile_intervals_contain_the_point_estimate():
    p = prof.load(COMMITTED)
    trs = [traces.load_trace(zone, basis="lca") for zone in ("DE", "US-CAL-CISO")]
    opts = PricingOptions(electricity_price_per_kwh=0.15, carbon_price_per_tonne=80.0)
    res = bs.bootstrap(p, load_users(), trs, opts, draws=300, seed=0)
    for z, tr in zip(res.zones, trs, strict=True):
        point = calculator_figures(pricing.price(p, load_users(), tr, opts), opts)
        for f in z.figures:
            assert f.point == pytest.approx(point[f.name], rel=1e-12)
            assert f.point is not None and f.low is not None and f.high is not None, f
            assert f.low <= f.point <= f.high, f
        saved = z.figure("saved_g_per_period")
        assert saved.low is not None and saved.high is not None and saved.high > saved.low  # the spread carries
    # cnn-64 (0.966) and cnn-32 (0.955) are within noise of each other on 2,000 items: H changes at times
    assert 0 < res.premium_changed < 300 and res.premium in res.premium_drawn
    assert json.dumps(bs.to_dict(res), allow_nan=False)


# ---------------------------------------------------------------------------------------------
# against a Monte Carlo written by hand


def two_points(accuracy: dict[str, float], cv: float = 0.05) -> prof.Profile:
    return make_profile(seed=0, cv=cv, models=accuracy, batches=(1,))


def test_delta_star_interval_matches_a_hand_monte_carlo():
    """Two points, H = large (A = 0.9), R = small (A = 0.7), 2,000 items each; w_A = 1 and given
    thresholds A_min = 0.5, A_sat = 1, so U = (A - 0.5) / 0.5 and, in closed form,
    δ* = (1 - e) · p_max · (1 - U_R / U_H). The hand Monte Carlo draws both accuracies as binomials."""
    e, n_eval, d = 0.2, 2000, 4000
    p = two_points({"small": 0.7, "large": 0.9})
    u = users(w_a=1.0, e=e, a_min=0.5, a_sat=1.0)
    tr = trace()
    res = bs.bootstrap(p, u, [tr], PricingOptions(slots=PERFECT), draws=d, seed=11)
    p_max = slotsmod.select(tr, PERFECT).p_max
    assert res.premium_changed == 0 and res.reduced_changed == 0  # far apart: H and R never change

    rng = np.random.default_rng(2024)  # independent of the bootstrap's generator
    a_h = rng.binomial(n_eval, 0.9, d) / n_eval
    a_r = rng.binomial(n_eval, 0.7, d) / n_eval
    hand = (1 - e) * p_max * (1 - ((a_r - 0.5) / 0.5) / ((a_h - 0.5) / 0.5))
    got = res.zones[0].values["delta_star:u0"]
    assert got[0] == pytest.approx((1 - e) * p_max * (1 - 0.4 / 0.8))
    width = np.percentile(hand, 97.5) - np.percentile(hand, 2.5)
    assert width > 0.01 * got[0]  # the test has something to compare
    for q in (2.5, 50.0, 97.5):  # the quantiles' Monte Carlo error is about 0.02 of the width
        assert np.percentile(got[1:], q) == pytest.approx(np.percentile(hand, q), abs=0.1 * width)
    f = res.zones[0].figure("delta_star:u0")
    assert (f.low, f.high) == (np.percentile(got[1:], 2.5), np.percentile(got[1:], 97.5))
    assert np.std(got[1:]) == pytest.approx(np.std(hand), rel=0.1)


@pytest.mark.parametrize("energy_model", bs.ENERGY_MODELS)
def test_energy_and_latency_draws_have_the_measured_spread(energy_model):
    """normal: the draws' spread is σ/√n; resample: the spread of a mean of n repeats drawn with
    replacement, sqrt(mean squared deviation / n). Both centred on the record's figure."""
    p = make_profile(seed=0, cv=0.1)
    m = bs.measured_points(p)
    drawn = bs.draw(m, draws=4000, seed=9, energy_model=energy_model)
    for i, s in enumerate(m.spreads):
        for vals, se, reps in ((drawn.energy_j_per_item, s.energy_se_j, s.energy_repeats_j),
                               (drawn.latency_ms, s.latency_se_ms, s.latency_repeats_ms)):
            want = se if energy_model == "normal" else float(np.std(reps) / np.sqrt(len(reps)))
            assert want is not None
            assert np.std(vals[1:, i]) == pytest.approx(want, rel=0.1)
            assert np.mean(vals[1:, i]) == pytest.approx(vals[0, i], abs=0.1 * want)


def test_rho_interval_matches_a_hand_monte_carlo_of_the_energies():
    """ρ = ΔC / C_base = (1 - E_R / E_H) · (Σ_High w CI) / (Σ w CI): only the energies move it. The
    hand Monte Carlo draws E ~ Normal(E, σ/√n) for both points."""
    d = 4000
    p = two_points({"small": 0.7, "large": 0.9}, cv=0.1)
    tr = trace()
    res = bs.bootstrap(p, MIXED, [tr], PRICED, draws=d, seed=12)
    s = slotsmod.select(tr, PERFECT)
    w = s.demand / s.demand.sum()
    ratio = float(np.where(s.high, w, 0.0) @ s.intensity) / float(w @ s.intensity)
    energy = {r.model: (r.energy_j_per_item, r.energy_j_per_item_std) for r in p.records}
    mean = {m: float(e) for m, (e, _) in energy.items() if e is not None}
    std = {m: float(sd) for m, (_, sd) in energy.items() if sd is not None}
    rng = np.random.default_rng(77)
    e_h, e_r = (rng.normal(mean[m], std[m] / np.sqrt(5), d) for m in ("large", "small"))
    hand = (1 - e_r / e_h) * ratio
    got = res.zones[0].values["rho"]
    assert got[0] == pytest.approx((1 - mean["small"] / mean["large"]) * ratio)
    width = np.percentile(hand, 97.5) - np.percentile(hand, 2.5)
    assert width > 0.01 * got[0]
    for q in (2.5, 50.0, 97.5):
        assert np.percentile(got[1:], q) == pytest.approx(np.percentile(hand, q), abs=0.1 * width)


def test_h_changes_only_when_two_candidates_are_within_noise():
    far = bs.bootstrap(two_points({"small": 0.7, "large": 0.9}), MIXED, [trace()], PRICED, draws=300, seed=4)
    assert far.premium_changed == 0 and far.premium_changed_share == 0.0
    # large (0.9) and large2 (0.9025) on 2,000 items: the difference is 0.26 standard errors. H is
    # large2; a draw with A_large >= A_large2 makes large H (a tie goes to the lower energy: large).
    d = 2000
    close = bs.bootstrap(two_points({"small": 0.7, "large": 0.9, "large2": 0.9025}), MIXED, [trace()], PRICED,
                         draws=d, seed=4)
    assert close.premium.startswith("large2")
    rng = np.random.default_rng(99)
    expect = np.mean(rng.binomial(2000, 0.9, 200_000) >= rng.binomial(2000, 0.9025, 200_000))
    se = np.sqrt(expect * (1 - expect) / d)
    assert close.premium_changed_share is not None and close.premium_changed_share > 0
    assert close.premium_changed_share == pytest.approx(expect, abs=4 * se)
    assert close.zones[0].premium_changed_share == close.premium_changed_share
    assert sum(close.premium_drawn.values()) == close.chosen_draws


# ---------------------------------------------------------------------------------------------
# draws with no R, other metrics


def test_draws_with_no_reduced_point_are_counted_not_dropped():
    """R uses 0.1% less energy than H, with a 5% spread: in about half the draws it uses more, and no
    point is left to be R. Those draws are counted and left out of the intervals."""
    p = two_points({"small": 0.7, "large": 0.9})
    e_h = next(r.energy_j_per_item for r in p.records if r.model == "large")
    assert e_h is not None
    p = edited(p, "small", 1, energy_j_per_item=0.999 * e_h, energy_j_per_item_std=0.05 * e_h)
    res = bs.bootstrap(p, MIXED, [trace()], PRICED, draws=200, seed=6)
    missing = res.no_choice.get("no reduced point R below H", 0)
    assert 40 < missing < 160 and res.no_choice_draws == missing
    assert res.chosen_draws + missing == 200
    for f in res.zones[0].figures:
        assert f.defined_draws == res.chosen_draws and f.undefined_draws == missing
        assert "no reduced point R below H in" in (f.reason or "")
    assert any(f"{missing} of 200 draw(s) have no H or R" in n for n in res.notes)
    doc = bs.to_dict(res)
    assert doc["no_choice_draws"] == missing and json.dumps(doc, allow_nan=False)


def test_without_prices_net_is_none_with_a_reason():
    res = bs.bootstrap(make_profile(seed=0), MIXED, [trace()], PricingOptions(slots=PERFECT), draws=30)
    f = res.zones[0].figure("net_per_period")
    assert f.point is None and f.low is None and "no electricity or carbon price" in (f.reason or "")
    k = res.zones[0].figure("cost_per_tonne")
    assert k.point is not None and k.point > 0  # K counts no electricity savings: the discount per tonne
    doc = bs.to_dict(res)
    assert json.dumps(doc, allow_nan=False)
    assert next(x for x in doc["zones"][0]["figures"] if x["name"] == "net_per_period")["point"] is None


def test_perplexity_is_held_fixed_and_energy_and_latency_still_move():
    p = make_hf_lm_profile(seed=0, cv=0.05)
    m = bs.measured_points(p)
    assert m.points[0].quality_metric == "perplexity"
    assert all(s.quality_n is None and any("perplexity held fixed" in n for n in s.notes) for s in m.spreads)
    drawn = bs.draw(m, draws=50, seed=0)
    assert np.all(drawn.quality == drawn.quality[0])
    assert np.unique(drawn.energy_j_per_item[:, 0]).size > 40 and np.unique(drawn.latency_ms[:, 0]).size > 40
    assert np.all(drawn.energy_j_per_item > 0) and np.all(drawn.latency_ms > 0)


def test_served_records_without_samples_of_the_priced_latency_hold_it_fixed():
    """A served record keeps per-window p50s, not p95s: the p95 is held fixed and the note says what
    the samples hold; the accuracy of a served model is one evaluation at every concurrency."""
    p = make_served_profile(seed=0, cv=0.05)
    for r in p.records:
        r.samples.pop("latency_p95_ms")
    m = bs.measured_points(p)
    assert all(s.latency_se_ms is None and "latency_p50_ms" in s.notes[-1] for s in m.spreads)
    drawn = bs.draw(m, draws=100, seed=0)
    models = [pt.model for pt in m.points]
    cols = drawn.quality[:, [i for i, x in enumerate(models) if x == "lm-m"]]
    assert np.all(cols == cols[:, :1]) and m.spreads[0].quality_n == 200
