"""The hourly replay of the two-tier policy: consistent with the calculator, month sums, plots."""

from __future__ import annotations

import numpy as np
import pytest
from test_pricing import H, R, ladder, trace, users

from greenbench.price import calculator as pricing
from greenbench.price import simulate as simulate
from greenbench.price.calculator import PricingOptions
from greenbench.price.slots import SlotPolicy


def _priced(ci, **kw):
    opts = PricingOptions(**{"discount": 0.05, "subscribers": 100, "electricity_price_per_kwh": 0.15,
                             "carbon_price_per_tonne": 80.0, **kw})
    u = users(e=[0.0, 0.6, 1.0], w_a=[0.9, 0.5, 0.3], n=[1000.0, 5000.0, 200.0])
    return pricing.price_points(ladder(), u, trace(ci), opts)


def _loop_replay(res):
    """The replay written as a plain loop over hours, as a reference for the vectorised one."""
    s, pop = res.slots, res.population
    e_h, e_r = res.choice.premium.energy_j_per_item, res.choice.reduced.energy_j_per_item
    mean_d_per_period = s.demand.sum() / s.periods
    base = tier = 0.0
    cum_base, cum_tier = [], []
    for t in range(len(s.time_utc)):
        all_req = pop.all_requests * s.demand[t] / mean_d_per_period
        green = pop.green_requests * s.demand[t] / mean_d_per_period
        g_h = all_req * e_h * s.intensity[t] / 3.6e6
        base += g_h
        tier += g_h - (green * (e_h - e_r) * s.intensity[t] / 3.6e6 if s.high[t] else 0.0)
        cum_base.append(base)
        cum_tier.append(tier)
    return np.array(cum_base), np.array(cum_tier)


@pytest.fixture(scope="module")
def ci():
    rng = np.random.default_rng(7)
    days = 45  # March and half of April
    daily = 300 + 200 * np.sin(np.arange(24 * days) / 24 * 2 * np.pi)
    return np.clip(daily * np.repeat(rng.uniform(0.5, 1.5, days), 24) + rng.normal(0, 20, 24 * days), 5, None)


def test_vectorised_replay_matches_an_hour_by_hour_loop(ci):
    res = _priced(ci)
    sim = simulate.simulate_priced(res)
    cb, ct = _loop_replay(res)
    assert sim.hourly.cumulative_base_g == pytest.approx(cb, rel=1e-9)
    assert sim.hourly.cumulative_tier_g == pytest.approx(ct, rel=1e-9)


@pytest.mark.parametrize("kw", [{}, {"slots": SlotPolicy(forecast="perfect", cap_mode="share", p_max=0.2)},
                                {"slots": SlotPolicy(cap_mode="average", truncation="day-ahead", p_max=0.1)}])
def test_replay_agrees_with_the_calculator(ci, kw):
    """Over the trace: saved = ΔC per period x periods; base = C_base per period x periods; the
    green users' own reduction is the calculator's ρ; months add up to the total."""
    res = _priced(ci, **kw)
    sim = simulate.simulate_priced(res)
    periods = res.slots.periods
    assert sim.total.saved_g == pytest.approx(res.population.saved_g * periods, rel=1e-9)
    assert sim.total.base_g == pytest.approx(res.population.c_base_g * periods, rel=1e-9)
    assert sim.total.rho_green == pytest.approx(res.carbon.rho, rel=1e-9)
    assert sim.total.rho_blind == pytest.approx(res.carbon.rho_blind, rel=1e-9)
    assert sim.total.rho == pytest.approx(res.population.rho, rel=1e-9)
    assert sim.total.discount_cost == pytest.approx(res.population.discount_cost * periods, rel=1e-9)
    assert sim.total.savings_value == pytest.approx(res.population.savings_value * periods, rel=1e-9)
    for key in ("saved_g", "base_g", "tier_g", "green_requests", "requests", "discount_cost", "savings_value", "net"):
        assert sum(getattr(m, key) for m in sim.months) == pytest.approx(getattr(sim.total, key), rel=1e-9), key
    assert [m.label for m in sim.months] == ["2023-03", "2023-04"]
    assert sum(m.high_hours for m in sim.months) == int(res.slots.high.sum())
    for m, pm in zip(sim.months, res.months, strict=True):
        assert m.p == pytest.approx(pm.p) and m.p <= res.slots.p_max + 1e-12
        assert m.rho_green == pytest.approx(pm.carbon.rho, rel=1e-9)


def test_no_green_users_means_no_saving(ci):
    res = pricing.price_points(ladder(), users(e=0.0), trace(ci), PricingOptions(discount=0.0))
    sim = simulate.simulate_priced(res)
    assert res.population.uptake == 0.0 and sim.total.saved_g == 0.0
    assert sim.hourly.cumulative_tier_g[-1] == pytest.approx(sim.hourly.cumulative_base_g[-1])


def test_simulate_is_shared_slot_selection(ci):
    """simulate reports the hours price chose: no second selection."""
    res = _priced(ci)
    sim = simulate.simulate_priced(res)
    assert sim.hourly.high is res.slots.high


def test_plots_are_png_and_svg(tmp_path):
    days = 20
    ci = 300 + 150 * np.sin(np.arange(24 * days) / 24 * 2 * np.pi)
    res = pricing.price_points([H, R], users(e=0.5), trace(ci), PricingOptions(discount=0.5))
    sim = simulate.simulate_priced(res)
    written = simulate.write_plots(sim, tmp_path / "out")
    assert sorted(p.name for p in written) == ["t-cumulative.png", "t-cumulative.svg", "t-trace.png", "t-trace.svg"]
    for p in written:
        head = p.read_bytes()[:8]
        assert head.startswith(b"\x89PNG") if p.suffix == ".png" else b"<?xml" in head or b"<svg" in head


def test_plot_folder_that_cannot_be_made_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = pricing.price_points([H, R], users(), trace(np.arange(48.0) + 1), PricingOptions())
    with pytest.raises(simulate.SimulateError, match="cannot create the plot folder"):
        simulate.write_plots(simulate.simulate_priced(res), blocker / "sub")


def test_simulate_json_round_trips(ci):
    import json

    doc = simulate.to_dict(simulate.simulate_priced(_priced(ci)))
    again = json.loads(json.dumps(doc, allow_nan=False))
    assert again["total"]["month"] == "total" and len(again["months"]) == 2
    assert again["options"]["cap_mode"] == "exceedance"
