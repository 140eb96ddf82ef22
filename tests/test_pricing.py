"""The pricing model of shared/docs/pricing-model.md: hand-computed cases and the section 8 invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from greenbench import pricing, slots as slotsmod
from greenbench.pricing import PricingError, PricingOptions, min_discount
from greenbench.slots import SlotPolicy
from greenbench.traces import Trace
from greenbench.tradeoff import OperatingPoint
from greenbench.users import Users, parse_users

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
START = np.datetime64("2023-03-01T00:00:00", "s")


def trace(ci, forecast=None, start=START, name="t") -> Trace:
    ci = np.asarray(ci, dtype=float)
    t = start + np.arange(len(ci)) * np.timedelta64(3600, "s")
    return Trace(name=name, time_utc=t, intensity_gco2e_per_kwh=ci, forecast_gco2e_per_kwh=forecast,
                 tz=None, basis="lca", source="test")


def point(label, accuracy, latency_ms, energy, method="rapl") -> OperatingPoint:
    return OperatingPoint(label=label, model=label, batch_size=1, precision="fp32", device="cpu", params=None,
                          accuracy=accuracy, latency_ms=latency_ms, energy_j_per_item=energy, energy_method=method)


def users(**cols) -> Users:
    """One user type (or several, from equal-length lists); unset thresholds are NaN (from the profile)."""
    n = max(len(v) if isinstance(v, list) else 1 for v in cols.values()) if cols else 1
    def col(k, default):
        v = cols.get(k, default)
        return np.array(v if isinstance(v, list) else [v] * n, dtype=float)
    return Users(names=tuple(cols.get("names", [f"u{i}" for i in range(n)])), weight=np.full(n, 1.0 / n),
                 accuracy_weight=col("w_a", 1.0), consciousness=col("e", 0.0), value_per_request=col("v", 0.01),
                 requests_per_period=col("n", 730.0), accuracy_min=col("a_min", np.nan), accuracy_sat=col("a_sat", np.nan),
                 latency_sat_ms=col("l_sat", np.nan), latency_max_ms=col("l_max", np.nan), subscribers=1)


H = point("big", 0.9, 10.0, 3.6)
R = point("small", 0.7, 10.0, 0.9)

# One day: 20 hours at 100 gCO2e/kWh, then 4 hours at 500 (hours 20-23).
DAY = [100.0] * 20 + [500.0] * 4


# ---------------------------------------------------------------------------------------------
# hand-computed cases


def test_carbon_hand_computed():
    """E_H = 3.6 J = 1e-6 kWh, E_R = 0.9 J; exceedance at I_cap = 300 with a perfect forecast.

    High hours: the 4 at 500.           p       = 4/24 = 1/6
    C_base per request = 1e-6 kWh x (20x100 + 4x500)/24 g/kWh = 1e-6 x 4000/24   = 166.67e-6 g
    ΔC per request     = (3.6-0.9)/3.6e6 kWh x 4x500/24      = 0.75e-6 x 2000/24 =  62.5e-6 g
    ρ = 62.5/166.67 = 0.375;  ρ_blind = p (1 - E_R/E_H) = 1/6 x 0.75 = 0.125;  ρ/ρ_blind = 3
    One user sends N = 730 requests per 730-hour period: ΔC per period = 730 x 62.5e-6 = 0.045625 g."""
    opts = PricingOptions(slots=SlotPolicy(forecast="perfect", cap_gco2e_per_kwh=300.0))
    res = pricing.price_points([H, R], users(a_min=0.5, a_sat=1.0), trace(DAY), opts)
    c = res.carbon
    assert res.slots.high.sum() == 4 and res.slots.high[20:].all()
    assert c.p == pytest.approx(1 / 6)
    assert c.c_base_g_per_request == pytest.approx(1e-6 * 4000 / 24)
    assert c.saved_g_per_request == pytest.approx(0.75e-6 * 2000 / 24)
    assert c.rho == pytest.approx(0.375)
    assert c.rho_blind == pytest.approx(0.125)
    assert c.awareness_ratio == pytest.approx(3.0)
    assert res.users[0].saved_g_per_period == pytest.approx(0.045625)


def test_discount_hand_computed():
    """w_A = 1, A_min = 0.5, A_sat = 1: â_H = (0.9-0.5)/0.5 = 0.8, â_R = (0.7-0.5)/0.5 = 0.4, so U_H = 0.8, U_R = 0.4.
    p_max = 0.2 (given), e = 0.25, P = N·V·U_H (default):
        δ* = (1 - e) · p_max · (1 - U_R/U_H) = 0.75 x 0.2 x 0.5 = 0.075
    With P = 10 given, N = 1000, V = 0.01:
        δ* = (1 - e) · p_max · N · V · (U_H - U_R) / P = 0.75 x 0.2 x 1000 x 0.01 x 0.4 / 10 = 0.06"""
    u = users(a_min=0.5, a_sat=1.0, e=0.25, n=1000.0, v=0.01)
    sp = SlotPolicy(forecast="perfect", cap_gco2e_per_kwh=300.0, p_max=0.2)
    res = pricing.price_points([H, R], u, trace(DAY), PricingOptions(slots=sp))
    row = res.users[0]
    assert (row.u_h, row.u_r) == (pytest.approx(0.8), pytest.approx(0.4))
    assert row.price == pytest.approx(1000 * 0.01 * 0.8)
    assert row.delta_star == pytest.approx(0.075)
    res = pricing.price_points([H, R], u, trace(DAY), PricingOptions(slots=sp, standard_price=10.0))
    assert res.users[0].delta_star == pytest.approx(0.06)


def test_reward_mode_hand_computed():
    """Value lost at the ceiling: p_max·N·V·(U_H-U_R) = 0.2 x 1000 x 0.01 x 0.4 = 0.8.
    Reward: e·β·ΔC = 0.25 x 0.6 x 2.0 = 0.3.  P = N·V·U_H = 8.  δ* = (0.8 - 0.3)/8 = 0.0625.
    A larger reward (β = 10: 0.25 x 10 x 2 = 5 > 0.8) needs no discount at all: δ* = 0."""
    kw = dict(e=0.25, p_max=0.2, n=1000.0, v=0.01, u_h=0.8, u_r=0.4, mode="reward", saved_g_per_period=2.0)
    assert min_discount(beta=0.6, **kw) == pytest.approx(0.0625)
    assert min_discount(beta=10.0, **kw) == 0.0


def test_reward_mode_end_to_end():
    """ΔC per period = 0.045625 g (test_carbon_hand_computed); β = 1 per g, e = 0.5:
    loss = p_max·N·V·(U_H-U_R) = 0.2 x 730 x 0.01 x 0.4 = 0.584; reward = 0.5 x 1 x 0.045625 = 0.0228125;
    P = 730 x 0.01 x 0.8 = 5.84;  δ* = (0.584 - 0.0228125) / 5.84 = 0.0960937..."""
    sp = SlotPolicy(forecast="perfect", cap_gco2e_per_kwh=300.0, p_max=0.2)
    opts = PricingOptions(slots=sp, consciousness="reward", reward_per_gco2e=1.0)
    res = pricing.price_points([H, R], users(a_min=0.5, a_sat=1.0, e=0.5), trace(DAY), opts)
    assert res.users[0].delta_star == pytest.approx((0.584 - 0.0228125) / 5.84)


def test_net_hand_computed():
    """π_e = 0.1 per kWh, π_c = 50 per tonne.  Value per request:
        Σ_High w (E_H - E_R)/3.6e6 (π_e + π_c CI/1e6) = 4/24 x 0.75e-6 x (0.1 + 50 x 500/1e6)
                                                       = 1/6 x 0.75e-6 x 0.125 = 15.625e-9
    One green user, N = 730 per period: 730 x 15.625e-9 = 1.140625e-5; δ = 0.05 of P = 5.84 costs 0.292."""
    sp = SlotPolicy(forecast="perfect", cap_gco2e_per_kwh=300.0, p_max=0.2)
    opts = PricingOptions(slots=sp, discount=0.05, electricity_price_per_kwh=0.1, carbon_price_per_tonne=50.0,
                          subscribers=1)
    res = pricing.price_points([H, R], users(a_min=0.5, a_sat=1.0, e=0.9), trace(DAY), opts)
    assert res.value_per_request == pytest.approx(15.625e-9)
    row = res.users[0]
    assert row.takes_up  # δ* = 0.1 x 0.2 x 0.5 = 0.01 <= 0.05
    assert row.net_per_user == pytest.approx(730 * 15.625e-9 - 0.05 * 5.84)
    assert res.population.net == pytest.approx(row.net_per_user)


def test_utility_linear_shape_and_profile_thresholds():
    """No thresholds: A in [0.7, 0.9] and L in [10, 30] ms from the points.
    Mid point (0.8, 20 ms) with w_A = 0.25: â = 0.5, l̂ = (30-20)/(30-10) = 0.5, U = 0.5.
    (0.9, 30 ms): â = 1, l̂ = 0: U = 0.25."""
    pts = [point("a", 0.7, 10.0, 1.0), point("b", 0.8, 20.0, 2.0), point("c", 0.9, 30.0, 3.0)]
    u = users(w_a=0.25)
    b = pricing.bounds(u, np.array([p.accuracy for p in pts]), np.array([p.latency_ms for p in pts]))
    got = pricing.utility(u, b, [0.8, 0.9, 0.7], [20.0, 30.0, 10.0])[0]
    assert got == pytest.approx([0.5, 0.25, 0.75])


@given(st.sampled_from(pricing.UTILITY_SHAPES), st.floats(0.5, 30))
@FAST
def test_utility_shapes_are_increasing_from_0_to_1(kind, k):
    x = np.linspace(0, 1, 101)
    y = pricing.shape(x, kind, None if kind == "linear" else k)
    assert y[0] == pytest.approx(0, abs=1e-12) and y[-1] == pytest.approx(1)
    assert np.all(np.diff(y) > 0)


def test_uptake_at_an_offered_discount():
    """Three types, δ* = (1-e)·p_max·(1 - U_R/U_H) with p_max = 0.2 and U_R/U_H = 0.5: e = 0, 0.5, 1
    give δ* = 0.1, 0.05, 0. At δ = 0.06 the last two (shares 1/3 each) take the green tier."""
    u = users(e=[0.0, 0.5, 1.0], a_min=0.5, a_sat=1.0)
    sp = SlotPolicy(forecast="perfect", cap_gco2e_per_kwh=300.0, p_max=0.2)
    res = pricing.price_points([H, R], u, trace(DAY), PricingOptions(slots=sp, discount=0.06))
    assert [r.delta_star for r in res.users] == pytest.approx([0.1, 0.05, 0.0])
    assert [r.takes_up for r in res.users] == [False, True, True]
    assert res.population.uptake == pytest.approx(2 / 3)
    assert pricing.uptake_curve(res) == [{"discount": 0.0, "uptake": pytest.approx(1 / 3), "types": ["u2"]},
                                         {"discount": pytest.approx(0.05), "uptake": pytest.approx(2 / 3), "types": ["u1"]},
                                         {"discount": pytest.approx(0.1), "uptake": pytest.approx(1.0), "types": ["u0"]}]
    # no discount offered: the smallest one every type takes
    res = pricing.price_points([H, R], u, trace(DAY), PricingOptions(slots=sp))
    assert res.population.discount == pytest.approx(0.1) and res.population.uptake == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------
# slot selection (greenbench.slots): one place for price and simulate


def test_average_mode_removes_the_dirtiest_until_the_mean_is_under_the_cap():
    """One day: 1000, 600 and 22 hours at 100.  Mean 3800/24 = 158.3.
    I_cap 120: drop 1000 -> 2800/23 = 121.7 > 120 -> drop 600 -> 2200/22 = 100 <= 120: two high hours.
    I_cap 130: drop 1000 -> 121.7 <= 130: one high hour."""
    ci = [1000.0, 600.0] + [100.0] * 22
    s = slotsmod.select(trace(ci), SlotPolicy(forecast="perfect", cap_mode="average", cap_gco2e_per_kwh=120.0))
    assert list(np.flatnonzero(s.high)) == [0, 1]
    s = slotsmod.select(trace(ci), SlotPolicy(forecast="perfect", cap_mode="average", cap_gco2e_per_kwh=130.0))
    assert list(np.flatnonzero(s.high)) == [0]


def test_share_mode_takes_the_dirtiest_share_of_each_day():
    rng = np.random.default_rng(1)
    ci = rng.uniform(50, 500, 72)
    s = slotsmod.select(trace(ci), SlotPolicy(forecast="perfect", cap_mode="share", daily_share=0.25))
    for d in range(3):
        day = ci[24 * d:24 * d + 24]
        assert set(np.flatnonzero(s.high[24 * d:24 * d + 24])) == set(np.argsort(-day)[:6])


def test_persistence_forecast_is_yesterday_and_the_first_day_is_never_degraded():
    ci = np.r_[np.full(24, 900.0), np.arange(24.0) * 10, np.arange(24.0) * 10]
    s = slotsmod.select(trace(ci), SlotPolicy(forecast="persistence", cap_gco2e_per_kwh=150.0))
    assert np.isnan(s.forecast[:24]).all()
    assert s.forecast[24:] == pytest.approx(ci[:48])
    assert not s.high[:24].any()  # no forecast for day one
    assert s.high[24:48].all()  # forecast 900 (yesterday) though the actual is low
    assert list(np.flatnonzero(s.high[48:])) == list(range(16, 24))  # yesterday's 160..230 > 150


def test_forecast_column_is_used_and_its_absence_is_one_clear_error():
    ci = np.full(24, 100.0)
    fc = np.r_[np.full(12, 50.0), np.full(12, 500.0)]
    s = slotsmod.select(trace(ci, forecast=fc), SlotPolicy(forecast="auto", cap_gco2e_per_kwh=200.0))
    assert s.forecast_used == "column" and list(np.flatnonzero(s.high)) == list(range(12, 24))
    with pytest.raises(slotsmod.SlotError, match="no forecast column"):
        slotsmod.select(trace(ci), SlotPolicy(forecast="column"))


def test_truncation_month_drops_the_least_dirty_and_day_ahead_spends_the_budget_in_time_order():
    """Two days of one month: day 1 has 6 hours at 400, day 2 has 6 hours at 800 (the rest 100).
    p before the cap = 12/48 = 0.25; p_max = 0.125 allows 6 hours.
    month: keeps the dirtiest 6 (day 2).  day-ahead: day 1 comes first and spends the budget."""
    ci = np.r_[np.full(18, 100.0), np.full(6, 400.0), np.full(18, 100.0), np.full(6, 800.0)]
    base = dict(forecast="perfect", cap_gco2e_per_kwh=200.0, p_max=0.125)
    s = slotsmod.select(trace(ci), SlotPolicy(**base))
    assert s.p_month_candidate[0] == pytest.approx(0.25) and s.p_month[0] == pytest.approx(0.125)
    assert list(np.flatnonzero(s.high)) == list(range(42, 48))
    s = slotsmod.select(trace(ci), SlotPolicy(**base, truncation="day-ahead"))
    assert list(np.flatnonzero(s.high)) == list(range(18, 24))


def test_derived_p_max_ignores_partial_months():
    """January (744 h) has its 100 dirtiest hours high (p = 100/744); the 3 days of February are all
    high (p = 1) but a 72-hour month is partial: p_max is January's p, and February is truncated to it."""
    rng = np.random.default_rng(2)
    jan = rng.uniform(100, 200, 744)
    jan[rng.choice(744, 100, replace=False)] = 600.0
    ci = np.r_[jan, np.full(72, 700.0)]
    s = slotsmod.select(trace(ci, start=np.datetime64("2023-01-01T00:00:00", "s")),
                        SlotPolicy(forecast="perfect", cap_gco2e_per_kwh=500.0))
    assert s.month_labels == ("2023-01", "2023-02") and list(s.complete_months) == [True, False]
    assert s.p_max == pytest.approx(100 / 744)
    assert s.p_month[1] <= s.p_max + 1e-12 and s.p_month_candidate[1] == 1.0


def test_default_cap_is_a_quantile_of_the_forecast():
    ci = np.arange(1.0, 97.0)  # 4 days, values 1..96
    s = slotsmod.select(trace(ci), SlotPolicy(forecast="perfect"))
    assert s.cap_gco2e_per_kwh == pytest.approx(np.quantile(ci, 0.75)) and "default" in s.cap_source
    s = slotsmod.select(trace(ci), SlotPolicy(forecast="perfect", cap_mode="average"))
    assert s.cap_gco2e_per_kwh == pytest.approx(np.quantile(ci, 0.5))


@pytest.mark.parametrize("policy, match", [
    (SlotPolicy(cap_mode="nope"), "cap mode"),
    (SlotPolicy(forecast="oracle"), "forecast"),
    (SlotPolicy(p_max=1.5), "p_max"),
    (SlotPolicy(cap_mode="share", cap_gco2e_per_kwh=100.0), "share mode has no intensity cap"),
    (SlotPolicy(daily_share=0.3), "--daily-share applies"),
    (SlotPolicy(cap_gco2e_per_kwh=100.0, cap_quantile=0.5), "not both"),
])
def test_bad_slot_options_are_one_clear_error(policy, match):
    with pytest.raises(slotsmod.SlotError, match=match):
        slotsmod.select(trace(DAY), policy)


# ---------------------------------------------------------------------------------------------
# H and R (section 7)


def ladder():
    return [point("xl", 0.95, 40.0, 8.0), point("l", 0.93, 20.0, 4.0), point("m", 0.90, 10.0, 2.0),
            point("s", 0.80, 5.0, 1.0), point("dominated", 0.80, 50.0, 9.0)]


def test_h_is_the_most_accurate_frontier_point_within_the_slo_and_r_is_ranked():
    """w_A = 1, A_min = 0.5, A_sat = 1: U = 2(A - 0.5): xl 0.9, l 0.86, m 0.8, s 0.6.
    Scores (E_H - E_k)/(U_H - U_k) from H = xl: l 4/0.04 = 100, m 6/0.1 = 60, s 7/0.3 = 23.3."""
    u = users(a_min=0.5, a_sat=1.0)
    ch = pricing.choose_points(ladder(), u, PricingOptions())
    assert ch.premium.label == "xl" and ch.reduced.label == "l"
    ranked = [(r.point.label, r.rank) for r in ch.ranking]
    assert ranked == [("l", 1), ("m", 2), ("s", 3)]
    assert [r.score for r in ch.ranking] == pytest.approx([100.0, 60.0, 7 / 0.3])
    assert "dominated" not in [p.label for p in ch.frontier]
    ch = pricing.choose_points(ladder(), u, PricingOptions(latency_slo_ms=25.0))
    assert ch.premium.label == "l" and ch.reduced.label == "m"  # from l: m 2/0.06 = 33.3, s 3/0.26 = 11.5
    ch = pricing.choose_points(ladder(), u, PricingOptions(accuracy_floor=0.85, latency_ceiling_ms=15.0))
    assert ch.reduced.label == "m"
    assert {r.point.label: r.reason for r in ch.ranking}["l"].startswith("latency above the ceiling")


def test_h_and_r_can_be_named_and_bad_names_are_one_clear_error():
    u = users(a_min=0.5, a_sat=1.0)
    ch = pricing.choose_points(ladder(), u, PricingOptions(premium="l", reduced="s"))
    assert (ch.premium.label, ch.reduced.label) == ("l", "s") and "named" in ch.reduced_how
    with pytest.raises(PricingError, match="not an operating point"):
        pricing.choose_points(ladder(), u, PricingOptions(reduced="tiny"))
    with pytest.raises(PricingError, match="uses no less energy"):
        pricing.choose_points(ladder(), u, PricingOptions(premium="m", reduced="l"))
    with pytest.raises(PricingError, match="latency SLO"):
        pricing.choose_points(ladder(), u, PricingOptions(latency_slo_ms=1.0))
    with pytest.raises(PricingError, match="no reduced point"):
        pricing.choose_points(ladder(), u, PricingOptions(accuracy_floor=0.99))


# ---------------------------------------------------------------------------------------------
# section 8 invariants


probs = st.floats(0, 1, allow_nan=False)


@given(e=probs, p_max=probs, u_h=st.floats(0.01, 1), frac=probs, n=st.floats(1, 1e6), v=st.floats(1e-6, 10),
       c=st.floats(0, 1))
@FAST
def test_invariant_discount_zero_cases_and_linearity(e, p_max, u_h, frac, n, v, c):
    u_r = frac * u_h
    kw = dict(n=n, v=v, u_h=u_h, u_r=u_r)
    assert min_discount(e=1.0, p_max=p_max, **kw) == 0.0
    assert min_discount(e=e, p_max=0.0, **kw) == 0.0
    assert min_discount(e=e, p_max=p_max, n=n, v=v, u_h=u_h, u_r=u_h) == 0.0
    d = min_discount(e=e, p_max=p_max, **kw)
    assert d == pytest.approx((1 - e) * p_max * (1 - u_r / u_h), abs=1e-12)  # P = N·V·U_H
    # linear in p_max and in (1 - e)
    assert min_discount(e=e, p_max=c * p_max, **kw) == pytest.approx(c * d, abs=1e-12)
    assert min_discount(e=1 - c * (1 - e), p_max=p_max, **kw) == pytest.approx(c * d, abs=1e-12)


# Intensities as grids report them: 0, or from 0.01 to 1000 gCO2e/kWh (no subnormal floats).
intensity = st.just(0.0) | st.floats(0.01, 1000)


def _days(n_days):
    return st.lists(intensity, min_size=24 * n_days, max_size=24 * n_days)


policies = st.one_of(
    st.builds(lambda q: SlotPolicy(forecast="perfect", cap_mode="exceedance", cap_quantile=q), st.floats(0, 1)),
    st.builds(lambda q: SlotPolicy(forecast="perfect", cap_mode="average", cap_quantile=q), st.floats(0, 1)),
    st.builds(lambda q: SlotPolicy(forecast="perfect", cap_mode="share", daily_share=q), st.floats(0, 1)),
)


@given(level=st.floats(1, 1000), fc=_days(3), demand=st.lists(st.floats(0, 5), min_size=72, max_size=72),
       e_r=st.floats(0.01, 0.99), mode=st.sampled_from(slotsmod.CAP_MODES), p_max=st.none() | probs)
@FAST
def test_invariant_flat_intensity_gives_rho_equal_to_rho_blind(level, fc, demand, e_r, mode, p_max):
    """Whatever the forecast picks and whatever the demand, a flat actual CI gives ρ = ρ_blind."""
    assume(sum(demand) > 0)
    policy = SlotPolicy(forecast="column", cap_mode=mode, p_max=p_max,
                        daily_share=0.3 if mode == "share" else None)
    s = slotsmod.select(trace(np.full(72, level), forecast=np.array(fc)), policy, demand=np.array(demand))
    c = pricing.carbon(s, 1.0, e_r)
    assert c.rho == pytest.approx(c.rho_blind, rel=1e-9, abs=1e-12)


@given(days=st.integers(2, 40), data=st.data(), policy=policies, p_max=st.none() | probs, e_r=st.floats(0.01, 0.99))
@FAST
def test_invariant_perfect_forecast_gives_rho_at_least_rho_blind(days, data, policy, p_max, e_r):
    """Flat demand over whole days, across a month boundary, with or without a p_max truncation
    (the specification's: least dirty dropped first): the slots a perfect forecast picks are at
    least as dirty as the average slot, so carbon-awareness never does worse than random times.
    (The day-ahead truncation has no hindsight and can: docs/pricing.md says so.)"""
    ci = np.array(data.draw(_days(days)))
    assume(ci.std() > 0)
    scale = np.repeat(np.array(data.draw(st.lists(st.floats(0.1, 3), min_size=days, max_size=days))), 24)
    policy = SlotPolicy(**{**policy.__dict__, "p_max": p_max})
    s = slotsmod.select(trace(ci * scale, start=np.datetime64("2023-01-20T00:00:00", "s")), policy)
    c = pricing.carbon(s, 1.0, e_r)
    assert c.rho >= c.rho_blind * (1 - 1e-9) - 1e-15


@given(ci=_days(2), c=st.floats(1e-3, 1e3), q=st.floats(0.05, 0.95), mode=st.sampled_from(pricing.CONSCIOUSNESS_MODES[:1]),
       p_max=st.none() | st.floats(0.05, 1))
@FAST
def test_invariant_scaling_energies_leaves_rho_p_and_delta_unchanged(ci, c, q, mode, p_max):
    """Scaling every energy by c: ρ, ρ_blind, p, δ* and the choice of H and R unchanged; ΔC scaled by c."""
    ci = np.array(ci)
    assume(ci.max() > 0)
    pts = ladder()
    scaled = [point(p.label, p.accuracy, p.latency_ms, p.energy_j_per_item * c) for p in pts]
    u = users(e=[0.1, 0.5, 0.9], w_a=[0.9, 0.5, 0.2])
    opts = PricingOptions(slots=SlotPolicy(forecast="perfect", cap_quantile=q, p_max=p_max), consciousness=mode)
    a = pricing.price_points(pts, u, trace(ci), opts)
    b = pricing.price_points(scaled, u, trace(ci), opts)
    assert (a.choice.premium.label, a.choice.reduced.label) == (b.choice.premium.label, b.choice.reduced.label)
    assert b.carbon.p == a.carbon.p and b.slots.p_max == a.slots.p_max
    assert b.carbon.rho == pytest.approx(a.carbon.rho, rel=1e-9, abs=1e-15)
    assert b.carbon.rho_blind == pytest.approx(a.carbon.rho_blind, rel=1e-9)
    assert b.delta_star == pytest.approx(a.delta_star, rel=1e-9, abs=1e-15)
    assert b.carbon.saved_g_per_request == pytest.approx(c * a.carbon.saved_g_per_request, rel=1e-9, abs=1e-300)
    assert b.population.saved_g == pytest.approx(c * a.population.saved_g, rel=1e-9, abs=1e-300)


@given(perm=st.permutations(range(5)), seed=st.integers(0, 2**16))
@FAST
def test_invariant_results_do_not_depend_on_the_order_of_points_or_user_types(perm, seed):
    pts = ladder()
    ci = np.random.default_rng(seed).uniform(50, 600, 72)
    types = [{"name": f"t{i}", "share": s, "accuracy_weight": w, "consciousness": e, "value_per_request": 0.01,
              "requests_per_period": 100 * (i + 1)} for i, (s, w, e) in enumerate([(0.5, 0.9, 0.1), (0.3, 0.3, 0.5), (0.2, 0.6, 0.9)])]
    u1 = parse_users({"version": 1, "user_types": types}, "a.yaml")
    u2 = parse_users({"version": 1, "user_types": [types[i] for i in (perm[0] % 3, *[j for j in range(3) if j != perm[0] % 3])]}, "a.yaml")
    opts = PricingOptions(discount=0.05)
    a = pricing.to_dict(pricing.price_points(pts, u1, trace(ci), opts))
    b = pricing.to_dict(pricing.price_points([pts[i] for i in perm], u2, trace(ci), opts))
    assert a == b


def test_invariant_results_do_not_depend_on_the_order_of_trace_rows(tmp_path):
    from greenbench.traces import load_trace

    rng = np.random.default_rng(3)
    ci = rng.uniform(50, 600, 24 * 40)
    times = START + np.arange(len(ci)) * np.timedelta64(3600, "s")
    rows = [f"{t}Z,{v:.2f}" for t, v in zip(times, ci)]
    paths = []
    for name, order in (("sorted", np.arange(len(rows))), ("shuffled", rng.permutation(len(rows)))):
        p = tmp_path / f"{name}.csv"
        p.write_text("time,intensity_gco2e_per_kwh\n" + "\n".join(rows[i] for i in order) + "\n")
        paths.append(p)
    a, b = (pricing.to_dict(pricing.price_points(ladder(), users(), load_trace(str(p)), PricingOptions()))
            for p in paths)
    a["trace"].pop("source"), b["trace"].pop("source")
    a.pop("trace"), b.pop("trace")
    assert a == b


def test_invariant_results_do_not_depend_on_the_order_of_profile_records():
    import copy
    from pathlib import Path

    from greenbench import profile as prof
    from greenbench.users import load_users

    p = prof.load(Path(__file__).resolve().parent.parent / "profiles" / "mnist1d-cpu-2core.json")
    q = copy.deepcopy(p)
    q.records = list(reversed(q.records[::2])) + q.records[1::2]
    ci = np.random.default_rng(5).uniform(50, 600, 24 * 35)
    a, b = (pricing.to_dict(pricing.price(x, load_users(), trace(ci), PricingOptions())) for x in (p, q))
    assert a == b


def test_invariant_units_kg_and_lb_are_refused_unless_converted(tmp_path):
    from greenbench.traces import TraceError, load_trace

    times = START + np.arange(48) * np.timedelta64(3600, "s")
    kg = tmp_path / "kg.csv"
    kg.write_text("time,intensity\n" + "\n".join(f"{t}Z,{0.1 + 0.3 * (i % 24 > 18):.3f}" for i, t in enumerate(times)) + "\n")
    lb = tmp_path / "lb.csv"
    lb.write_text("time,co2_lb_per_mwh\n" + "\n".join(f"{t}Z,{900 + i}" for i, t in enumerate(times)) + "\n")
    with pytest.raises(TraceError, match="kg/kWh"):
        load_trace(str(kg))
    with pytest.raises(TraceError, match="lb/MWh"):
        load_trace(str(lb))
    assert load_trace(str(kg), units="kg/kWh").intensity_gco2e_per_kwh.max() == pytest.approx(400.0)
    assert load_trace(str(lb), units="lb/MWh").intensity_gco2e_per_kwh[0] == pytest.approx(900 * 0.45359237)


# ---------------------------------------------------------------------------------------------


def test_drawn_population_prices_like_its_types():
    """100 users drawn from two types, no jitter: uptake equals the drawn share of the types that take it."""
    u = users(e=[0.0, 1.0], names=["strict", "green"], a_min=0.5, a_sat=1.0)
    drawn = pricing.draw_users(u, 100, seed=1)
    sp = SlotPolicy(forecast="perfect", cap_gco2e_per_kwh=300.0, p_max=0.2)
    res = pricing.price_points([H, R], drawn, trace(DAY), PricingOptions(slots=sp, discount=0.01))
    green = sum(1 for n in drawn.names if n == "green") / 100
    assert res.population.uptake == pytest.approx(green)
    assert res.users == ()  # per-type rows only for distinct types


@pytest.mark.parametrize("kw, match", [
    (dict(consciousness="reward"), "needs --reward-per-gco2e"),
    (dict(reward_per_gco2e=1.0), "applies to --consciousness reward"),
    (dict(utility_shape="cubic"), "utility shape"),
    (dict(utility_k=3.0), "linear has none"),
    (dict(discount=1.5), "discount"),
    (dict(latency_slo_ms=-1.0), "latency SLO"),
    (dict(carbon_price_per_tonne=math.inf), "carbon price"),
])
def test_bad_pricing_options_are_one_clear_error(kw, match):
    with pytest.raises(PricingError, match=match):
        pricing.price_points([H, R], users(), trace(DAY), PricingOptions(**kw))
