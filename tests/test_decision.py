"""The provider's decision (shared/docs/pricing-model.md §8): the discount curve, the cost per tonne,
the break-even discount, the objectives, δ* > 1 and the third option; hand-computed cases and the
§11 invariants of the discount curve."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greenbench.carbon.trace import Trace, load_trace
from greenbench.price import calculator as pricing
from greenbench.price import decision
from greenbench.price.calculator import PricingError, PricingOptions
from greenbench.price.slots import SlotPolicy
from greenbench.price.users import Users, load_users
from greenbench.profile.io import load
from greenbench.tradeoff.points import OperatingPoint

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
START = np.datetime64("2023-03-01T00:00:00", "s")
DAY = [100.0] * 20 + [500.0] * 4  # 4 high hours at I_cap 300: p = 1/6, mean CI 4000/24
PROFILE = "profiles/mnist1d-cpu-2core.json"


def trace(ci, name="t") -> Trace:
    ci = np.asarray(ci, dtype=float)
    t = START + np.arange(len(ci)) * np.timedelta64(3600, "s")
    return Trace(name=name, time_utc=t, intensity_gco2e_per_kwh=ci, forecast_gco2e_per_kwh=None, tz=None,
                 basis="lca", source="test")


def point(label, accuracy, latency_ms, energy) -> OperatingPoint:
    return OperatingPoint(label=label, model=label, batch_size=1, precision="fp32", device="cpu", params=None,
                          quality=accuracy, latency_ms=latency_ms, energy_j_per_item=energy, energy_method="rapl")


def users(shares=None, **cols) -> Users:
    n = max(len(v) if isinstance(v, list) else 1 for v in cols.values()) if cols else 1
    def col(k, default):
        v = cols.get(k, default)
        return np.array(v if isinstance(v, list) else [v] * n, dtype=float)
    w = np.full(n, 1.0 / n) if shares is None else np.asarray(shares, float) / np.sum(shares)
    return Users(names=tuple(f"u{i}" for i in range(n)), weight=w, accuracy_weight=col("w_a", 1.0),
                 consciousness=col("e", 0.0), value_per_request=col("v", 0.01), requests_per_period=col("n", 730.0),
                 accuracy_min=col("a_min", 0.5), accuracy_sat=col("a_sat", 1.0),
                 latency_sat_ms=col("l_sat", np.nan), latency_max_ms=col("l_max", np.nan))


# 1 kWh and 0.25 kWh per request: ΔE per request = p · 0.75 kWh = 0.125 kWh, ΔC = 0.75 x 4 x 500 / 24 = 62.5 g.
# One user, N = 730: ΔE 91.25 kWh and ΔC 45,625 g = 0.045625 t per period.
H = point("big", 0.9, 10.0, 3.6e6)
R = point("small", 0.7, 10.0, 0.9e6)
SLOTS = SlotPolicy(forecast="perfect", cap_gco2e_per_kwh=300.0, p_max=0.2)
DE_USER, DC_USER = 91.25, 0.045625


def priced(u: Users, **opts) -> pricing.PricingResult:
    return pricing.price_points([H, R], u, trace(DAY), PricingOptions(slots=SLOTS, **opts))


# U_H = 0.8, U_R = 0.4 (w_A = 1, A in [0.5, 1]); P = 10: δ* = (1 - e) 0.2 x 730 x 0.01 x 0.4 / 10 = (1 - e) 0.0584
THREE = users(e=[0.0, 0.5, 1.0])


# ---------------------------------------------------------------------------------------------
# the curve


def test_grid_is_whole_percents_merged_with_every_delta_star():
    res = priced(THREE, standard_price=10.0, subscribers=1000)
    curve = decision.discount_curve(res)
    d = [r.discount for r in curve.rows]
    assert d == sorted(d) and d[0] == 0.0 and d[-1] == 1.0
    assert len(d) == 101 + 2  # 0.0584 and 0.0292 are off the grid; δ* = 0 is the grid's 0
    star = [(r.discount, r.delta_star_of) for r in curve.rows if r.delta_star_of]
    assert [s for _, s in star] == [("u2",), ("u1",), ("u0",)]
    assert [d for d, _ in star] == pytest.approx([0.0, 0.0292, 0.0584])
    assert [o.name for o in curve.offers] == ["u2", "u1", "u0"] and not any(o.no_discount_wins for o in curve.offers)
    mine = decision.discount_curve(res, [0.5, 0.0292])  # a grid value on a δ* is that δ*, one row
    assert [r.discount for r in mine.rows] == pytest.approx([0.0, 0.0292, 0.0584, 0.5])
    for bad in ([], [1.5], [-0.1], [math.nan]):
        with pytest.raises(PricingError, match="discount grid: give finite discounts from 0 to 1"):
            decision.discount_curve(res, bad)


def test_one_row_recomputed_from_first_principles():
    """The committed profile on the bundled DE trace, standard price 5, π_e 0.3, π_c 80, δ = 0.2:
    every figure recomputed from the slots (a loop over hours), H and R's energies and the users
    file, not through the curve's prefix sums."""
    res = pricing.price(load(PROFILE), None, load_trace("DE", basis="lca"),
                        PricingOptions(standard_price=5.0, electricity_price_per_kwh=0.3, carbon_price_per_tonne=80.0))
    row = next(r for r in decision.discount_curve(res).rows if r.discount == 0.2)
    ex = load_users()
    S = ex.subscribers
    e_h, e_r = res.choice.premium.energy_j_per_item, res.choice.reduced.energy_j_per_item
    s = res.slots
    hours = len(s.intensity)
    n_of = dict(zip(ex.names, ex.requests_per_period, strict=True))
    share_of = dict(zip(ex.names, ex.weight, strict=True))
    joined = [u.name for u in res.users if u.delta_star <= 0.2]
    assert 0 < len(joined) < 3  # the case says something: some but not all types take 20%
    green_per_period = sum(S * share_of[n] * n_of[n] for n in joined)
    # flat demand: each green request of a period falls in each hour of the trace alike
    per_hour = green_per_period * (hours / 730.0) / hours  # requests per hour (N per 730 h)
    periods = hours / 730.0
    degraded = kwh = grams = 0.0
    for t in range(hours):
        if s.high[t]:
            degraded += per_hour
            kwh += per_hour * (e_h - e_r) / 3.6e6
            grams += per_hour * (e_h - e_r) / 3.6e6 * float(s.intensity[t])
    degraded, kwh, tonnes = degraded / periods, kwh / periods, grams / periods / 1e6
    forgone = 0.2 * sum(S * share_of[n] * 5.0 for n in joined)
    assert row.types == tuple(sorted(joined, key=lambda n: next(u.delta_star for u in res.users if u.name == n)))
    assert row.uptake == pytest.approx(sum(share_of[n] for n in joined))
    assert row.green_subscribers == pytest.approx(S * row.uptake)
    assert row.requests_degraded == pytest.approx(degraded, rel=1e-9)
    assert row.energy_saved_kwh == pytest.approx(kwh, rel=1e-9)
    assert row.saved_t == pytest.approx(tonnes, rel=1e-9)
    assert row.revenue_forgone == pytest.approx(forgone)
    assert row.net == pytest.approx(kwh * 0.3 + tonnes * 80 - forgone)
    assert row.cost_per_tonne == pytest.approx((forgone - kwh * 0.3) / tonnes)


def test_the_row_at_the_offered_discount_is_the_calculators_population():
    for opts in (dict(discount=0.03), dict(discount=0.07), dict()):
        res = priced(THREE, standard_price=10.0, subscribers=300, electricity_price_per_kwh=0.02,
                     carbon_price_per_tonne=50.0, **opts)
        pop = res.population
        row = next(r for r in decision.discount_curve(res, [pop.discount]).rows if r.discount == pop.discount)
        assert row.uptake == pytest.approx(pop.uptake)
        assert row.revenue_forgone == pytest.approx(pop.discount_cost)
        assert row.saved_t == pytest.approx(pop.saved_g / 1e6)
        assert row.net == pytest.approx(pop.net)


@st.composite
def populations(draw):
    k = draw(st.integers(1, 5))
    floats = st.floats(0.0, 1.0)
    return dict(shares=[draw(st.floats(0.05, 1.0)) for _ in range(k)], e=[draw(floats) for _ in range(k)],
                w_a=[draw(floats) for _ in range(k)], n=[draw(st.floats(1.0, 1e4)) for _ in range(k)],
                v=[draw(st.floats(1e-4, 0.1)) for _ in range(k)], p_max=draw(st.floats(0.0, 1.0)),
                price=draw(st.one_of(st.none(), st.floats(0.01, 100.0))),
                pe=draw(st.floats(0.0, 1.0)), pc=draw(st.floats(0.0, 500.0)))


LAT_R = point("small", 0.7, 4.0, 0.9e6)  # faster than H: a latency-minded type may lose nothing at R


@given(populations(), st.integers(1, 10**6))
@FAST
def test_curve_invariants(pop, subscribers):
    """§11: uptake and R(δ) non-decreasing in δ; ΔC non-decreasing in uptake; at δ = 0 exactly the
    types with δ* = 0 join; K does not depend on S."""
    u = users(shares=pop["shares"], e=pop["e"], w_a=pop["w_a"], n=pop["n"], v=pop["v"], l_sat=2.0, l_max=20.0)
    opts = dict(slots=SlotPolicy(forecast="perfect", cap_gco2e_per_kwh=300.0, p_max=pop["p_max"]), reduced="small",
                standard_price=pop["price"], electricity_price_per_kwh=pop["pe"], carbon_price_per_tonne=pop["pc"])
    res = pricing.price_points([H, LAT_R], u, trace(DAY), PricingOptions(subscribers=subscribers, **opts))
    rows = decision.discount_curve(res).rows
    up = np.array([r.uptake for r in rows])
    forgone = np.array([r.revenue_forgone for r in rows])
    assert np.all(np.diff(up) >= -1e-12) and np.all(np.diff(forgone) >= -1e-9 * max(1.0, forgone.max()))
    by_uptake = sorted(rows, key=lambda r: (r.uptake, r.discount))
    saved = np.array([r.saved_t for r in by_uptake])
    assert np.all(np.diff(saved) >= -1e-12 * max(1.0, saved.max()))
    zero = {x.name for x in res.users if x.delta_star <= 1e-12}
    assert set(rows[0].types) == zero and rows[0].discount == 0.0 and rows[0].revenue_forgone == 0.0
    one = pricing.price_points([H, LAT_R], u, trace(DAY), PricingOptions(subscribers=1, **opts))
    for a, b in zip(decision.discount_curve(one).rows, rows, strict=True):
        assert a.discount == b.discount
        if a.cost_per_tonne is None:
            assert b.cost_per_tonne is None and b.cost_per_tonne_reason == a.cost_per_tonne_reason != ""
        else:
            assert b.cost_per_tonne == pytest.approx(a.cost_per_tonne, rel=1e-9, abs=1e-9)


def test_no_carbon_saved_gives_no_cost_per_tonne_with_a_reason_and_json_without_nan():
    """A cap above every hour: no high hour, ΔC = 0 at every δ."""
    sp = SlotPolicy(forecast="perfect", cap_gco2e_per_kwh=1000.0, p_max=0.2)
    res = pricing.price_points([H, R], THREE, trace(DAY), PricingOptions(slots=sp, carbon_price_per_tonne=50.0))
    d = decision.decide(res)
    assert all(r.saved_t == 0 and r.cost_per_tonne is None for r in d.curve.rows)
    assert "degrades no high-carbon hour" in d.curve.rows[-1].cost_per_tonne_reason
    assert d.recommendation.row is None and d.recommendation.sentence.startswith("No discount from 0 to 100% saves")
    doc = json.loads(json.dumps(decision.to_dict(d), allow_nan=False))
    assert doc["curve"][0]["cost_per_tonne"] is None and doc["curve"][0]["cost_per_tonne_reason"]
    assert doc["break_even"]["discount"] is None


# ---------------------------------------------------------------------------------------------
# break-even


def test_break_even_hand_computed():
    """π_e = 0.02, π_c = 50: each green user is worth 91.25 x 0.02 + 0.045625 x 50 = 4.10625 per
    period and costs δ x 10. Every type has the same worth, so N(δ) = S u(δ)(4.10625 - 10 δ) >= 0 up
    to δ = 0.410625 (all three green from δ = 0.0584), attained."""
    res = priced(THREE, standard_price=10.0, subscribers=1000, electricity_price_per_kwh=0.02,
                 carbon_price_per_tonne=50.0)
    curve = decision.discount_curve(res)
    be = curve.break_even
    assert be.discount == pytest.approx(0.410625) and be.attained and be.net == pytest.approx(0.0, abs=1e-9)
    assert set(be.types) == {"u0", "u1", "u2"}
    at = {round(r.discount, 6): r for r in curve.rows}
    assert at[0.41].net > 0 > at[0.42].net
    # K = (R - ΔE π_e) / ΔC per green user: (10 δ - 91.25 x 0.02) / 0.045625, e.g. -27.2 at δ = 0.0584
    assert at[0.0584].cost_per_tonne == pytest.approx((0.584 - 1.825) / DC_USER)
    assert at[0.5].cost_per_tonne == pytest.approx((5.0 - DE_USER * 0.02) / DC_USER)
    assert "the electricity saved is worth more than the discount" in decision._offer_words(at[0.0584], curve)
    assert decision.break_even(curve) is be
    assert decision.discount_curve(priced(THREE, standard_price=10.0)).break_even.discount is None  # no prices


@given(populations())
@FAST
def test_break_even_is_the_largest_paying_discount_of_a_fine_grid(pop):
    """Against brute force: on 2,001 discounts, every row that saves carbon with N >= 0 lies at or
    below the break-even, and where it is attained N there is >= 0 (float tolerance)."""
    u = users(shares=pop["shares"], e=pop["e"], w_a=pop["w_a"], n=pop["n"], v=pop["v"], l_sat=2.0, l_max=20.0)
    opts = PricingOptions(slots=SlotPolicy(forecast="perfect", cap_gco2e_per_kwh=300.0, p_max=pop["p_max"]),
                          reduced="small", standard_price=pop["price"], electricity_price_per_kwh=pop["pe"],
                          carbon_price_per_tonne=pop["pc"], subscribers=100)
    curve = decision.discount_curve(pricing.price_points([H, LAT_R], u, trace(DAY), opts), np.linspace(0, 1, 2001))
    be = curve.break_even
    paying = [r.discount for r in curve.rows if r.saved_t > 0 and r.net is not None and r.net >= 0]
    if be.discount is None:
        assert not paying
        return
    assert max(paying, default=be.discount) <= be.discount + 1e-12
    scale = max(1.0, max(abs(r.revenue_forgone) for r in curve.rows))
    tail = [r for r in curve.rows if r.discount > be.discount + 1e-9]
    assert all(r.net < 1e-9 * scale or r.saved_t == 0 for r in tail)
    if be.attained:
        assert be.net >= -1e-9 * scale


def test_break_even_just_below_the_discount_where_a_costly_type_joins():
    """u0: e = 1 (δ* = 0), worth 4.10625; u1: N = 73, V = 0.5, e = 0: δ* = 0.2 x 73 x 0.5 x 0.4 / 10 =
    0.292, worth 0.410625. Below 0.292 only u0: N = S/2 (4.10625 - 10 δ) > 0. At 0.292 u1 joins:
    N = S/2 (4.516875 - 5.84) < 0, and on [0.292, 1] N >= 0 only for δ <= 0.2258. So the break-even is
    0.292, not attained: any discount below it."""
    u = users(e=[1.0, 0.0], n=[730.0, 73.0], v=[0.01, 0.5])
    res = priced(u, standard_price=10.0, subscribers=1000, electricity_price_per_kwh=0.02, carbon_price_per_tonne=50.0)
    be = decision.discount_curve(res).break_even
    assert be.discount == pytest.approx(0.292) and not be.attained
    assert be.net == pytest.approx(500 * (4.10625 - 2.92)) and be.types == ("u0",)
    assert "another user type joins" in be.reason


# ---------------------------------------------------------------------------------------------
# objectives


def test_each_objective_picks_its_row():
    """π_e = 0: K(δ) = 10 δ / 0.045625 for every type alike: K(0) = 0, K(0.0292) = 6.4, K(0.0584) = 12.8.
    carbon (π_c 50): all three at 0.0584 (K 12.8 <= 50); cost: δ = 0 (u2 alone, K 0);
    carbon-under-price 10: 0.0292 (u1, u2), 20: all at 0.0584, and at the run's own π_c the same
    row as carbon."""
    res = priced(THREE, standard_price=10.0, subscribers=1000, carbon_price_per_tonne=50.0)
    curve = decision.discount_curve(res)
    assert decision.default_objective(curve) == "carbon"
    c = decision.recommend(curve)
    assert c.objective == "carbon" and c.objective_source.startswith("default")
    assert c.row is not None and c.row.discount == pytest.approx(0.0584) and len(c.row.types) == 3
    assert c.row.cost_per_tonne == pytest.approx(12.8)
    assert c.sentence.startswith("Offer a 5.84% discount on the green tier to u2, u1 and u0 (100% of 1,000")
    assert "it saves 45.6 t CO2e and 91,250 kWh per period at 12.8 USD per t CO2e avoided (net +" in c.sentence
    k = decision.recommend(curve, "cost")
    assert k.row is not None and k.row.discount == 0.0 and k.row.types == ("u2",) and k.row.cost_per_tonne == 0.0
    assert "with no discount to u2" in k.sentence and "within the carbon price of 50" in k.sentence
    for price, want in ((10.0, 0.0292), (20.0, 0.0584)):
        got = decision.recommend(curve, "carbon-under-price", price).row
        assert got is not None and got.discount == pytest.approx(want)
    assert decision.recommend(curve, "carbon-under-price").row == c.row
    # a row of larger ΔC with a larger K is never chosen over the cheaper one when ΔC ties
    assert all(r.discount >= c.row.discount for r in curve.rows if r.saved_t == c.row.saved_t)


def test_no_discount_pays_for_itself_names_the_shortfall():
    """Types with δ* 0.0584 and 0.0292 (no free type), π_c 5: K >= 6.4 > 5 on every row. The closest
    is δ = 0.0292 with u1 (share 1/2): N = 500 (0.045625 x 5 - 0.292) = -31.9375 per period."""
    u = users(e=[0.0, 0.5])
    res = priced(u, standard_price=10.0, subscribers=1000, carbon_price_per_tonne=5.0)
    curve = decision.discount_curve(res)
    rec = decision.recommend(curve, "carbon")
    assert rec.row is None and rec.closest is not None and rec.closest.discount == pytest.approx(0.0292)
    assert rec.shortfall == pytest.approx(31.9375) and rec.shortfall_unit == "USD per period"
    assert rec.sentence.startswith("No discount pays for itself at these prices")
    assert "falls short by 31.9 USD per period" in rec.sentence and "6.4 USD per t CO2e" in rec.sentence
    under = decision.recommend(curve, "carbon-under-price")
    assert under.row is None and under.shortfall == pytest.approx(1.4)
    assert "1.4 USD per t too much" in under.sentence
    assert curve.break_even.discount is None


def test_objectives_that_need_a_price_say_so():
    curve = decision.discount_curve(priced(THREE, standard_price=10.0))
    assert decision.default_objective(curve) == "cost" and decision.recommend(curve).objective == "cost"
    with pytest.raises(PricingError, match=r"objective carbon .*needs a price: give --electricity-price-per-kwh"):
        decision.recommend(curve, "carbon")
    with pytest.raises(PricingError, match=r"carbon-under-price .*needs --carbon-price-per-tonne"):
        decision.recommend(curve, "carbon-under-price")
    with pytest.raises(PricingError, match="objective 'cheap': choose one of carbon, cost, carbon-under-price"):
        decision.recommend(curve, "cheap")
    assert decision.recommend(curve, "carbon-under-price", 20.0).row is not None  # the price given here


# ---------------------------------------------------------------------------------------------
# δ* > 1, the third option, drawn populations, the committed profile


def test_a_delta_star_above_one_is_capped_and_the_type_marked():
    """P = 0.05: δ*_0 = 0.2 x 730 x 0.01 x 0.4 / 0.05 = 11.68: no discount wins u0."""
    u = users(e=[0.0, 1.0])
    res = priced(u, standard_price=0.05)
    assert res.users[0].delta_star == pytest.approx(11.68)
    assert res.population.discount == 1.0 and "capped at 1" in res.population.discount_source
    assert [x.no_discount_wins for x in res.users] == [True, False] and not res.users[0].takes_up
    assert any("no discount up to 100% wins 1 user type(s)" in n and "u0" in n for n in res.notes)
    doc = pricing.to_dict(res)
    assert [t["no_discount_wins"] for t in doc["user_types"]] == [True, False]
    curve = decision.discount_curve(res)
    assert curve.unwinnable == ("u0",) and max(r.discount for r in curve.rows) == 1.0
    assert [(o.name, o.offer, o.no_discount_wins) for o in curve.offers] == [("u1", 0.0, False), ("u0", 1.0, True)]
    assert all("u0" not in r.types for r in curve.rows) and curve.rows[-1].delta_star_of == ()
    given = priced(u, standard_price=0.05, discount=0.5)  # an offered discount is never changed
    assert given.population.discount == 0.5 and given.users[0].no_discount_wins


def test_the_issues_case_standard_price_1_is_capped():
    res = pricing.price(load(PROFILE), None, load_trace("DE", basis="lca"), PricingOptions(standard_price=1.0))
    assert max(res.delta_star) > 1 and res.population.discount == 1.0
    assert [u.name for u in res.users if u.no_discount_wins] == ["accuracy-sensitive"]
    old = pricing.price(load(PROFILE), None, load_trace("DE", basis="lca"))  # δ* all below 1: as before
    assert old.population.discount == pytest.approx(max(old.delta_star))
    assert not any(u.no_discount_wins for u in old.users)
    assert "max δ*)" in old.population.discount_source


def test_third_option_exactly_for_types_that_lose_nothing_at_r():
    """R is faster (4 ms against 10, L in [2, 20]): w_A = 0 gains at R (U_R 0.889 > U_H 0.556), w_A = 1
    loses. Served at R in every hour, u1 saves S s N (E_H - E_R) mean CI / 3.6e6 = 1000 x 0.5 x 730 x
    2.7e6 x (4000/24) / 3.6e6 g = 45.625 t per period, against 22.8125 t from high hours on the tier."""
    u = users(w_a=[1.0, 0.0], l_sat=2.0, l_max=20.0)
    res = pricing.price_points([H, LAT_R], u, trace(DAY), PricingOptions(slots=SLOTS, subscribers=1000))
    third = decision.third_option(res)
    assert [r.name for r in third.rows] == [x.name for x in res.users if x.u_r >= x.u_h] == ["u1"]
    row = third.rows[0]
    assert row.saved_t == pytest.approx(1000 * 0.5 * 730 * 2.7e6 * (4000 / 24) / 3.6e6 / 1e6)
    assert row.energy_saved_kwh == pytest.approx(1000 * 0.5 * 730 * 0.75)
    assert row.green_tier_saved_t == pytest.approx(500 * DC_USER)  # 500 users, high hours only
    assert row.value is None and third.saved_t == row.saved_t
    assert third.sentence.startswith("R is no loss to u1 (U_R >= U_H)")
    none = decision.third_option(priced(THREE))
    assert none.rows == () and none.saved_t == 0 and "Every user type loses utility at R" in none.sentence
    # U_R == U_H (both at or above A_sat, same latency): no loss either, so it is listed
    eq = pricing.price_points([H, R], users(a_sat=0.7), trace(DAY), PricingOptions(slots=SLOTS, reduced="small"))
    assert eq.users[0].u_r == eq.users[0].u_h and [r.name for r in decision.third_option(eq).rows] == ["u0"]


def test_drawn_population_curve():
    """1,000 drawn users: no δ* merged (a grid of 101), the curve still steps with uptake, and the row
    at the offered discount is the calculator's population."""
    ex = load_users()
    drawn = pricing.draw_users(ex, 1000, seed=3, jitter=0.05)
    res = pricing.price(load(PROFILE), drawn, load_trace("DE", basis="lca"),
                        PricingOptions(discount=0.2, carbon_price_per_tonne=80.0))
    curve = decision.discount_curve(res)
    assert len(curve.rows) == 101 and curve.offers == () and "drawn population" in curve.grid_note
    row = next(r for r in curve.rows if r.discount == 0.2)
    assert row.uptake == pytest.approx(res.population.uptake) and row.net == pytest.approx(res.population.net)
    assert set(row.types) <= set(ex.names) and len({r.uptake for r in curve.rows}) > 2


def test_decide_to_dict_is_json_with_every_part():
    res = pricing.price(load(PROFILE), None, load_trace("DE", basis="lca"),
                        PricingOptions(electricity_price_per_kwh=0.3, carbon_price_per_tonne=80.0))
    d = decision.decide(res)
    doc = json.loads(json.dumps(decision.to_dict(d), allow_nan=False))
    assert set(doc) >= {"curve", "break_even", "recommendation", "third_option", "offers", "unwinnable_types"}
    assert doc["recommendation"]["sentence"] == d.recommendation.sentence and doc["recommendation"]["offer"]
    assert [t["name"] for t in doc["third_option"]["types"]] == ["latency-sensitive"]  # U_R > U_H in the example
    first = doc["curve"][0]
    assert set(first) >= {"discount", "uptake", "green_subscribers", "revenue_forgone_per_period",
                          "requests_degraded_per_period", "energy_saved_kwh_per_period", "saved_t_per_period",
                          "net_per_period", "cost_per_tonne", "types"}


OLD_USER_KEYS = {"name", "share", "u_h", "u_r", "standard_price", "delta_star", "takes_up", "saved_g_per_period",
                 "discount_cost_per_period", "net_per_user_per_period"}


def test_price_json_keeps_every_key_it_had():
    doc = pricing.to_dict(priced(THREE))
    assert all(set(t) == OLD_USER_KEYS | {"no_discount_wins"} for t in doc["user_types"])
