"""A reduced tier on the fitted frontier (shared/docs/pricing-model.md §10; greenbench/price/mix.py):
mixes of two points, the §11 invariant "a mixed R never saves less energy per unit of utility lost
than the best single R", and tradeoff.json (what `greenbench fit` writes) as the calculator's input."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from synthetic_profiles import make_hf_lm_profile, make_profile, make_served_profile

from greenbench import profile as prof
from greenbench.carbon.trace import Trace
from greenbench.price import calculator as pricing
from greenbench.price import mix as mixmod
from greenbench.price.calculator import PricingError, PricingOptions
from greenbench.price.slots import SlotPolicy
from greenbench.price.users import Users
from greenbench.safeload import InputError
from greenbench.tradeoff.curves import fit
from greenbench.tradeoff.outputs import to_doc, write_outputs
from greenbench.tradeoff.points import OperatingPoint, operating_points

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "profiles" / "mnist1d-cpu-2core.json"
START = np.datetime64("2023-03-01T00:00:00", "s")
# Two days: 20 hours at 100 gCO2e/kWh, then 4 at 500 (a perfect forecast picks those 4 above 300)
DAYS = ([100.0] * 20 + [500.0] * 4) * 2
SLOTS = SlotPolicy(forecast="perfect", cap_gco2e_per_kwh=300.0)


def trace(ci=DAYS) -> Trace:
    ci = np.asarray(ci, dtype=float)
    t = START + np.arange(len(ci)) * np.timedelta64(3600, "s")
    return Trace(name="t", time_utc=t, intensity_gco2e_per_kwh=ci, forecast_gco2e_per_kwh=None, tz=None,
                 basis="lca", source="test")


def point(label, accuracy, latency_ms, energy, method="rapl") -> OperatingPoint:
    return OperatingPoint(label=label, model=label, batch_size=1, precision="fp32", device="cpu", params=None,
                          quality=accuracy, latency_ms=latency_ms, energy_j_per_item=energy, energy_method=method)


def users(w_a=(1.0,), e=(0.0,), a_min=0.5, a_sat=0.9, names=None) -> Users:
    n = len(w_a)
    col = lambda v: np.full(n, float(v))  # noqa: E731
    return Users(names=tuple(names or [f"u{i}" for i in range(n)]), weight=np.full(n, 1.0 / n),
                 accuracy_weight=np.array(w_a, dtype=float), consciousness=np.array(e, dtype=float),
                 value_per_request=col(0.01), requests_per_period=col(730.0), accuracy_min=col(a_min),
                 accuracy_sat=col(a_sat), latency_sat_ms=col(np.nan), latency_max_ms=col(np.nan), subscribers=1)


# H, a middle point M and a low point L, all at one latency: with w_A = 1 and A from 0.5 to 0.9 the
# utilities are 1, 0.5 and 0. The hull of (U, E) is the segment H-L; at U = 0.5 it is at
# (10 + 1) / 2 = 5.5 J, 2.5 J below M (8 J): M lies strictly above the hull.
H = point("H", 0.9, 10.0, 10.0)
M = point("M", 0.7, 10.0, 8.0)
L = point("L", 0.5, 10.0, 1.0)
LADDER = [H, M, L]


def opts(**kw) -> PricingOptions:
    return PricingOptions(slots=SLOTS, **kw)


# ---------------------------------------------------------------------------------------------
# the hull below a middle point


def test_mix_on_hull_below_middle_point_beats_every_single_point():
    """Floor Ū_R >= 0.5 (M's utility). Singles that keep it: M only, score (10 - 8) / (1 - 0.5) = 4.
    The mix: f at H, 1 - f at L with f·1 + (1 - f)·0 = 0.5, so f = 0.5, E_R = 0.5·10 + 0.5·1 = 5.5 J,
    score (10 - 5.5) / 0.5 = 9 (L's own, 9 / 1): 9/4 = 2.25 times M's, and 4.5 - 2 = 2.5 J more
    saved per request at the same utility (M's distance above the hull)."""
    res = pricing.price_points(LADDER, users(), trace(), opts(mix=True, mix_utility_floor=0.5))
    m = res.choice.mix
    assert m is not None and not m.is_single
    assert m.point_a.label == "H" and m.point_b is not None and m.point_b.label == "L"
    assert m.share_a == pytest.approx(0.5)
    assert m.energy_j_per_item == pytest.approx(5.5)
    assert m.utility == pytest.approx(0.5)
    assert m.score == pytest.approx(9.0)
    assert m.best_single is not None and m.best_single.point.label == "M"
    assert m.best_single_score == pytest.approx(4.0)
    assert m.score_ratio == pytest.approx(9.0 / 4.0)
    assert m.energy_saved_gain_j_per_item == pytest.approx(2.5)
    # it beats every single point that keeps the floor, strictly
    for r in res.choice.ranking:
        if r.score is not None and r.utility >= 0.5 - 1e-12:
            assert m.score > r.score
    assert m.hull == ("L", "H")
    gap = {g.label: g.energy_above_hull_j_per_item for g in m.above_hull}
    assert gap["M"] == pytest.approx(2.5) and gap["L"] == 0.0
    # the calculator priced the mix: E_R and U_R of the mix, not of the single R
    assert res.choice.reduced_energy_j_per_item == pytest.approx(5.5)
    assert res.users[0].u_r == pytest.approx(0.5)
    assert res.carbon.rho_blind == pytest.approx(res.carbon.p * (1 - 5.5 / 10.0))


def test_floor_between_two_reduced_points_still_mixes_h_with_the_best_point():
    """A 4-point ladder where the floor cuts between two eligible points: A (U 0.75, 9.5 J, score 2),
    M (U 0.5, 8 J, score 4), L (U 0, 1 J, score 9). Floor 0.6: singles A only; the best is still the
    mix of H and L (score 9, the hull edge H-L), never a mix of A and L (score between 2 and 9)."""
    a = point("A", 0.8, 10.0, 9.5)
    res = pricing.price_points([H, a, M, L], users(), trace(), opts(mix=True, mix_utility_floor=0.6))
    m = res.choice.mix
    assert m is not None and (m.point_a.label, m.point_b.label) == ("H", "L")  # type: ignore[union-attr]
    assert m.share_a == pytest.approx(0.6) and m.score == pytest.approx(9.0)
    assert m.best_single is not None and m.best_single.point.label == "A"
    assert m.best_single_score == pytest.approx(0.5 / 0.25)


def _brute_best(premium: mixmod.Candidate, cands: list[mixmod.Candidate], floor: float | None) -> float:
    """The best §7 score over a fine grid of every two-point mix (H included) keeping the floor."""
    pts = [premium, *cands]
    best = -np.inf
    f = np.linspace(0.0, 1.0, 401)
    for a, b in itertools.combinations(pts, 2):
        u = f * a.utility + (1 - f) * b.utility
        e = f * a.point.energy_j_per_item + (1 - f) * b.point.energy_j_per_item
        lost, saved = premium.utility - u, premium.point.energy_j_per_item - e
        ok = (lost > 1e-9) & (saved > 0) & ((u >= floor - 1e-12) if floor is not None else True)
        if ok.any():
            best = max(best, float(np.max(saved[ok] / lost[ok])))
    return best


def _random_ladder(rng, n: int) -> list[OperatingPoint]:
    return [point(f"p{i}", float(rng.uniform(0.3, 0.99)), float(rng.uniform(1, 100)),
                  float(rng.lognormal(0, 1.0))) for i in range(n)]


def test_invariant_mix_never_below_best_single_random_ladders():
    """Seeded random ladders and user populations, with and without a utility floor: f in [0, 1],
    Ū_R keeps the floor, the mix's score >= the best single point's (with the floor, and the §7
    R's without it), and no two-point mix on a grid of shares scores higher (the search is complete)."""
    rng = np.random.default_rng(20260101)
    checked = floored = mixed = 0
    for _ in range(150):
        pts = _random_ladder(rng, int(rng.integers(3, 9)))
        k = int(rng.integers(1, 4))
        u = users(w_a=tuple(rng.uniform(0, 1, k)), e=tuple(rng.uniform(0, 1, k)), a_min=0.3, a_sat=0.99)
        floor = None if rng.random() < 0.3 else float(rng.uniform(0, 1))
        try:
            ch = pricing.choose_points(pts, u, opts(mix=True, mix_utility_floor=floor))
        except PricingError:
            continue  # no eligible R on this ladder, or the floor is at or above Ū_H
        m = ch.mix
        assert m is not None
        checked += 1
        mixed += not m.is_single
        assert 0.0 <= m.share_a <= 1.0
        if floor is not None:
            floored += 1
            assert m.utility >= floor - 1e-9
        eligible = [r for r in ch.ranking if r.score is not None]
        assert m.score >= max(r.score or 0.0 for r in eligible)
        if m.best_single_score is not None:
            assert m.score >= m.best_single_score
        cands = [mixmod.Candidate(r.point, r.utility) for r in eligible]
        assert m.score >= _brute_best(mixmod.Candidate(m.premium, m.premium_utility), cands, floor) * (1 - 1e-9)
        # the mix's own figures agree with its points and shares
        e = sum(s * p.energy_j_per_item for s, p in zip(m.shares, m.points, strict=True))
        assert m.energy_j_per_item == pytest.approx(e)
        assert m.score == pytest.approx(m.energy_saved_j_per_item / m.utility_lost)
    assert checked >= 50 and floored >= 30 and mixed >= 10  # the loop really exercised the property


def test_invariant_on_committed_profile():
    profile = prof.load(COMMITTED)
    base = pricing.price(profile, None, trace(), opts())
    top = base.choice.ranking[0]
    assert top.score is not None
    u_h = top.utility + top.utility_lost
    above = top.utility + 0.5 * (u_h - top.utility)  # between the best single R and H
    floors = (None, 0.0, top.utility, above, *(x * u_h for x in (0.25, 0.5, 0.75, 0.99)))
    for floor in floors:
        res = pricing.price(profile, None, trace(), opts(mix=True, mix_utility_floor=floor))
        m = res.choice.mix
        assert m is not None and 0.0 <= m.share_a <= 1.0
        assert m.score >= top.score
        if m.best_single_score is not None:
            assert m.score >= m.best_single_score
        json.loads(pricing.to_json(res))  # no NaN or infinity in the document
    # a floor above the best single R's utility forces a real mix, at the best single R's score
    res = pricing.price(profile, None, trace(), opts(mix=True, mix_utility_floor=above))
    m = res.choice.mix
    assert m is not None and not m.is_single and m.point_b is not None
    assert m.point_b.label == top.point.label and m.score == top.score
    assert m.utility == pytest.approx(above)
    with pytest.raises(PricingError, match="at or above the ranking utility of H"):
        pricing.price(profile, None, trace(), opts(mix=True, mix_utility_floor=u_h))


def test_no_interior_gain_collapses_to_the_single_best_point():
    """Without a floor (and with one the best single point keeps) the mix is the §7 R itself
    (f = 1, no second point), gain ratio 1 and 0 J, and the priced result is the plain one."""
    for floor in (None, 0.0):
        res = pricing.price_points(LADDER, users(), trace(), opts(mix=True, mix_utility_floor=floor))
        plain = pricing.price_points(LADDER, users(), trace(), opts())
        m = res.choice.mix
        assert m is not None and m.is_single and m.share_a == 1.0 and m.points == (plain.choice.reduced,)
        assert m.score_ratio == 1.0 and m.energy_saved_gain_j_per_item == 0.0
        assert res.carbon == plain.carbon and res.users == plain.users
        d = pricing.to_dict(res)["mix"]
        assert d["is_single"] and d["point_b"] is None and d["share_a"] == 1.0


def test_mix_carbon_utility_and_discount_are_the_mixes_of_its_points():
    """ΔC, U_R per type and δ* of a mix of M and L at f = 0.3, against M and L priced on their own
    (--reduced), and ΔC summed by hand over the high hours. The sigmoid utility and two user types
    make U_R of the mix differ from that of a point interpolated between M and L."""
    u = users(w_a=(1.0, 0.4), e=(0.2, 0.5))
    o = opts(utility_shape="sigmoid")
    single = {p.label: pricing.price_points(LADDER, u, trace(), replace(o, reduced=p.label)) for p in (M, L)}
    base = pricing.price_points(LADDER, u, trace(), replace(o, mix=True, mix_utility_floor=0.5))
    assert base.choice.mix is not None
    f = 0.3
    mix = replace(base.choice.mix, point_a=M, point_b=L, share_a=f,
                  energy_j_per_item=f * M.energy_j_per_item + (1 - f) * L.energy_j_per_item)
    res = pricing.price_points(LADDER, u, trace(), replace(o, mix=True), choice=replace(base.choice, mix=mix))
    dc = {k: r.carbon.saved_g_per_request for k, r in single.items()}
    assert res.carbon.saved_g_per_request == pytest.approx(f * dc["M"] + (1 - f) * dc["L"])
    s = res.slots
    w = s.demand / s.demand.sum()
    high_ci = float(np.sum(np.where(s.high, w, 0.0) * s.intensity))  # Σ_High w·CI, g/kWh
    by_hand = high_ci * (H.energy_j_per_item - mix.energy_j_per_item) / 3.6e6
    assert res.carbon.saved_g_per_request == pytest.approx(by_hand)
    for i in range(2):
        u_m, u_l = single["M"].users[i].u_r, single["L"].users[i].u_r
        assert res.users[i].u_r == pytest.approx(f * u_m + (1 - f) * u_l)
        assert res.users[i].delta_star == pytest.approx(
            f * single["M"].users[i].delta_star + (1 - f) * single["L"].users[i].delta_star)
    # not an interpolated point: the utility of quality f·A_M + (1-f)·A_L is another number
    interp = point("I", f * M.quality + (1 - f) * L.quality, 10.0, mix.energy_j_per_item)
    via_point = pricing.price_points([*LADDER, interp], u, trace(), replace(o, reduced="I"))
    assert abs(via_point.users[0].u_r - res.users[0].u_r) > 0.01
    for mo, m1, m2 in zip(res.months, single["M"].months, single["L"].months, strict=True):
        assert mo.carbon.saved_g_per_request == pytest.approx(
            f * m1.carbon.saved_g_per_request + (1 - f) * m2.carbon.saved_g_per_request)


def test_order_of_points_does_not_change_the_mix():
    a = point("A", 0.8, 12.0, 9.5)
    ladder = [H, a, M, L]
    seen = set()
    for perm in itertools.permutations(ladder):
        ch = pricing.choose_points(list(perm), users(w_a=(1.0, 0.5)), opts(mix=True, mix_utility_floor=0.55))
        assert ch.mix is not None
        seen.add((ch.mix.point_a.label, ch.mix.point_b and ch.mix.point_b.label, ch.mix.share_a,
                  ch.mix.energy_j_per_item, ch.mix.hull))
    assert len(seen) == 1


def test_mix_options_are_checked():
    with pytest.raises(PricingError, match="applies with --mix only"):
        pricing.price_points(LADDER, users(), trace(), opts(mix_utility_floor=0.5))
    with pytest.raises(PricingError, match="give one"):
        pricing.price_points(LADDER, users(), trace(), opts(mix=True, reduced="M"))
    with pytest.raises(PricingError, match="from 0 to 1"):
        pricing.price_points(LADDER, users(), trace(), opts(mix=True, mix_utility_floor=1.5))
    with pytest.raises(PricingError, match="at or above the ranking utility of H"):
        pricing.price_points(LADDER, users(), trace(), opts(mix=True, mix_utility_floor=1.0))


def test_to_dict_keeps_its_keys_and_adds_mix():
    plain = pricing.to_dict(pricing.price_points(LADDER, users(), trace(), opts()))
    mixed = pricing.to_dict(pricing.price_points(LADDER, users(), trace(), opts(mix=True, mix_utility_floor=0.5)))
    assert plain["mix"] is None
    assert set(plain) == set(mixed)
    assert mixed["reduced"]["label"] == "L"  # the best single R (§7), as before
    assert mixed["carbon"]["e_r_j_per_item"] == pytest.approx(5.5)  # what is served: the mix
    mx = mixed["mix"]
    assert mx["point_a"]["is_premium"] and mx["point_b"]["label"] == "L" and mx["share_b"] == pytest.approx(0.5)
    assert mx["gain"]["score_ratio"] == pytest.approx(2.25) and mx["best_single"]["label"] == "M"
    assert mx["utility_by_type"] == [{"name": "u0", "u_r": pytest.approx(0.5)}]
    # no single point keeps a floor above M's: the gain is None with the reason, never a number
    high = pricing.to_dict(pricing.price_points(LADDER, users(), trace(), opts(mix=True, mix_utility_floor=0.7)))
    assert high["mix"]["best_single"] is None and high["mix"]["gain"]["score_ratio"] is None
    assert "no single eligible point keeps" in high["mix"]["gain"]["reason"]
    json.dumps(high, allow_nan=False)


def test_point_on_the_hull_edge_is_served_alone():
    """M2 lies on the segment H-L (U 0.5, E 5.5 J): it and the mix of H and L at 0.5 both score 9,
    and a tie goes to the single point (one point to run instead of two)."""
    m2 = point("M2", 0.7, 10.0, 5.5)
    ch = pricing.choose_points([H, m2, L], users(), opts(mix=True, mix_utility_floor=0.5))
    assert ch.mix is not None and ch.mix.is_single and ch.mix.point_a.label == "M2"
    assert ch.mix.score == pytest.approx(9.0) and ch.mix.score_ratio == 1.0


def test_lower_hull_and_value():
    # (0.5, 3.7) lies a hair above the segment (0.25, 0.5)-(1, 10), (0.625, 5.25) exactly on it
    xs, ys = [0.0, 0.5, 1.0, 0.25, 0.5, 0.625], [1.0, 8.0, 10.0, 0.5, 3.7, 5.25]
    idx = mixmod.lower_hull(xs, ys)
    assert idx == [0, 3, 2]
    hx, hy = [xs[i] for i in idx], [ys[i] for i in idx]
    assert mixmod.hull_value(hx, hy, 0.5) == pytest.approx(0.5 + (0.25 / 0.75) * 9.5)
    assert mixmod.hull_value(hx, hy, 0.1) == pytest.approx(1.0 - 0.4 * 0.5)


# ---------------------------------------------------------------------------------------------
# tradeoff.json


@pytest.mark.parametrize("make", [make_profile, make_served_profile, make_hf_lm_profile])
def test_tradeoff_json_round_trip_prices_as_the_profile(tmp_path, make):
    """fit -> tradeoff.json on disk -> load_tradeoff -> the calculator: the same points and the same
    priced document as pricing the profile itself (plain and with --mix)."""
    profile = make()
    t = fit(profile)
    write_outputs(t, tmp_path / "fit", profile=profile, profile_path="p.json", plots=False)
    tp = mixmod.load_tradeoff(tmp_path / "fit" / "tradeoff.json")
    points, excluded = operating_points(profile)
    assert list(tp.points) == points
    assert tp.excluded == tuple(excluded) and tp.frontier == tuple(p.label for p in t.frontier)
    assert tp.profile_path == "p.json"
    o = replace(opts(), **tp.pricing_settings())
    for oo in (o, replace(o, mix=True, mix_utility_floor=0.5)):
        try:
            direct = pricing.to_dict(pricing.price(profile, None, trace(), oo))
        except PricingError as e:
            assert "floor" in str(e)  # a floor above this ladder's Ū_H: refused alike below
            with pytest.raises(PricingError, match="floor"):
                pricing.price_points(list(tp.points), pricing.load_users(), trace(), oo)
            continue
        via = pricing.to_dict(pricing.price_points(list(tp.points), pricing.load_users(), trace(), oo,
                                                   tp.excluded))
        via["users_default"] = True  # price() marks the shipped users file; the rest must be equal
        assert via == direct


def test_tradeoff_settings_conflicts():
    tp = mixmod.tradeoff_points(to_doc(fit(make_profile(), latency="p50")))
    assert tp.latency == "p50" and tp.pricing_settings()["latency"] == "p50"
    assert tp.settings_conflicts() == ()
    assert tp.settings_conflicts(latency="p50", quality="accuracy") == ()
    (line,) = tp.settings_conflicts(latency="p95")
    assert "--latency p95" in line and "fitted with --latency p50" in line


def _doc() -> dict:
    return json.loads(json.dumps(to_doc(fit(make_profile()))))


@pytest.mark.parametrize("edit, words", [
    (lambda d: d.update(schema="greenbench/profile"), "a profile: price takes it as is"),
    (lambda d: d.update(schema_version=2), "newer greenbench"),
    (lambda d: d["settings"].update(latency="p42"), "settings.latency 'p42'"),
    (lambda d: d["points"][0].pop("energy_method"), "has no 'energy_method'; pricing needs"),
    (lambda d: d["points"][1].pop("accuracy"), "has no 'accuracy'"),
    (lambda d: d["points"][0].update(latency_ms=-1), "'latency_ms' -1 is not a positive finite number"),
    (lambda d: d["points"][0].update(energy_j_per_item=True), "'energy_j_per_item' True is not a positive"),
    (lambda d: d["points"][0].update(energy_method="unavailable"), "energy_method 'unavailable'"),
    (lambda d: d["points"][0].update(accuracy=1.5), "outside [0, 1]"),
    (lambda d: d["points"][0].update(batch_size=0), "'batch_size' 0 is not a positive whole number"),
    (lambda d: d["points"].append(dict(d["points"][0])), "listed twice"),
    (lambda d: d.update(points=[]), "nothing to price"),
    (lambda d: d.update(frontier=["nope"]), "'frontier' names 'nope'"),
])
def test_tradeoff_json_with_wrong_schema_is_one_line(tmp_path, edit, words):
    doc = _doc()
    edit(doc)
    path = tmp_path / "tradeoff.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError) as e:
        mixmod.load_tradeoff(path)
    msg = str(e.value)
    assert words in msg and msg.startswith(str(path)) and "\n" not in msg


def test_tradeoff_json_unreadable(tmp_path):
    path = tmp_path / "tradeoff.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match="not JSON"):
        mixmod.load_tradeoff(path)
    with pytest.raises(InputError, match="no such file"):
        mixmod.load_tradeoff(tmp_path / "missing.json")
    path.write_text("[1, 2]")
    with pytest.raises(InputError, match="not a tradeoff document"):
        mixmod.load_tradeoff(path)
