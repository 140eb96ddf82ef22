"""The provider's decision (shared/docs/pricing-model.md §8): the discount curve, the cost per tonne
of CO2e avoided, the break-even discount, a recommended offer under an objective, and the third
option of serving at R by default the types for whom R is no loss.

Library only (numpy; no typer, no rich). It reads a ``PricingResult`` (``calculator.price_points``)
and recomputes nothing the calculator already decided: H, R, the slots, p, ΔC per request and
every row's δ* come from the result; only the offered discount δ varies.

Per billing period, for an offered δ, with S subscribers, s_i the shares, N_i requests and P_i the
standard price of row i, G(δ) = {i : δ >= δ*_i} (``calculator.takes_up``'s tolerance):

    uptake u(δ)          = Σ_G s_i                          green subscribers = u · S
    green requests       = S Σ_G s_i N_i                    requests degraded = green requests · p
    revenue forgone R(δ) = δ · S Σ_G s_i P_i
    energy saved ΔE      = green requests · p (E_H - E_R) / 3.6e6           (kWh)
    carbon saved ΔC      = green requests · Σ_High w (E_H - E_R) CI / 3.6e6 / 1e6    (t CO2e)
    net N(δ)             = ΔE · π_e + ΔC · π_c - R(δ)       (None when neither price is given)
    cost per tonne K(δ)  = (R(δ) - ΔE · π_e) / ΔC           (None, with a reason, when ΔC = 0)

As in the calculator's net, a price that is not given counts as 0 where the other one is: K without
π_e credits no electricity saved (it is the discount paid per tonne). K is the carbon price at which
the tier breaks even; it does not depend on S (R, ΔE and ΔC all scale with it).

**The grid.** By default δ = 0, 0.01, ..., 1 (101 rows: whole percents, how a discount is quoted),
merged with every user type's δ* (capped at 1; a type whose δ* exceeds 1 is won by no discount and
is listed in ``DiscountCurve.unwinnable``). Between two δ* the same types are green, so ΔE and ΔC
are constant while R grows with δ: every objective's best offer is the smallest δ of a step, a δ*,
which the curve holds exactly. The grid rows only draw the curve, so their step never limits the
recommendation. A drawn population (user rows sharing names) merges no δ* (there is one per drawn
user); its recommendation is then on the grid.

**The break-even discount** is the largest δ in [0, 1] with N(δ) >= 0 and someone on the green tier,
found exactly per step (N is linear in δ between two δ*), not read off the grid. When N stays >= 0
up to the δ* where another type joins and turns it negative, the break-even is that δ*, not
attained (``BreakEven.attained`` False: any discount below it).

**Objectives** (``recommend``; ``OBJECTIVES``):
- ``carbon``: the largest ΔC with N >= 0 (needs a price);
- ``cost``: the smallest K with ΔC > 0 (needs no price);
- ``carbon-under-price``: the largest ΔC with K <= π_c (needs a carbon price: the argument, else the
  run's ``--carbon-price-per-tonne``). With the run's own π_c this picks the same row as ``carbon``
  (for ΔC > 0, N >= 0 is K <= π_c); a different π_c (an internal shadow price) is the point of it.
Ties go to the smaller δ. The default (``default_objective``) is ``carbon`` when the curve has a
net (a price was given), else ``cost``.

**Third option** (``third_option``): a type with U_R >= U_H loses nothing at R, so it can be served
at R in every hour with no discount at all: its ΔC and ΔE per period over all its requests, beside
what the green tier saves from it in high hours only.

Entry points: ``discount_curve(res, grid)``, ``break_even(curve)`` (also ``curve.break_even``),
``recommend(curve, objective, carbon_price_per_tonne)``, ``third_option(res)``,
``decide(res, ...)`` (all four), and ``to_dict(decision)`` (JSON: finite numbers or None, meant to be
embedded as the key ``decision`` of the ``greenbench/price`` document).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from greenbench.carbon.intensity import co2e_g
from greenbench.price.calculator import PricingError, PricingResult, UserArrays, finite_or_none, takes_up
from greenbench.units import G_PER_TONNE, J_PER_KWH

OBJECTIVES = ("carbon", "cost", "carbon-under-price")
GRID_STEP = 0.01  # whole percents
TIE = 1e-12  # the tolerance of calculator.takes_up: a δ within it of a δ* counts as that δ*


def default_grid() -> np.ndarray:
    """δ = 0, 0.01, ..., 1 (101 values)."""
    return np.round(np.linspace(0.0, 1.0, round(1 / GRID_STEP) + 1), 12)


@dataclass(frozen=True)
class CurveRow:
    """The tier at one offered discount δ, per billing period, for the whole population."""

    discount: float  # δ, share of P
    uptake: float  # share of subscribers on the green tier
    green_subscribers: float
    green_requests: float
    requests_degraded: float  # green requests in high slots
    revenue_forgone: float  # R(δ), currency
    energy_saved_kwh: float  # ΔE
    saved_t: float  # ΔC, t CO2e
    net: float | None  # N(δ); None without prices
    cost_per_tonne: float | None  # K(δ), currency per t CO2e; None when ΔC = 0
    cost_per_tonne_reason: str  # "" where K is a number, else why not
    types: tuple[str, ...]  # user types on the green tier, by δ* then name
    delta_star_of: tuple[str, ...]  # the types whose δ* (at most 1) this row's δ is


@dataclass(frozen=True)
class TypeOffer:
    """One user type's threshold as offered: δ* and the offer that wins it (δ* capped at 1)."""

    name: str
    share: float
    delta_star: float
    offer: float  # min(δ*, 1)
    no_discount_wins: bool  # δ* > 1


@dataclass(frozen=True)
class BreakEven:
    discount: float | None  # largest δ with N >= 0 and uptake > 0; None: none, or no prices
    attained: bool  # False: N >= 0 for every δ just below ``discount``, but not at it (a type joins there)
    net: float | None  # N at ``discount`` (attained) or just below it
    types: tuple[str, ...]  # the green types there
    reason: str  # how it was found, or why there is none


@dataclass(frozen=True)
class DiscountCurve:
    rows: tuple[CurveRow, ...]
    currency: str
    subscribers: int
    electricity_price_per_kwh: float | None
    carbon_price_per_tonne: float | None
    prices_note: str  # which prices the net and K count, or why there is no net
    grid_note: str
    offers: tuple[TypeOffer, ...]  # per user type; empty for a drawn population
    unwinnable: tuple[str, ...]  # types no discount up to 100% wins
    break_even: BreakEven

    @property
    def has_net(self) -> bool:
        return self.electricity_price_per_kwh is not None or self.carbon_price_per_tonne is not None


@dataclass(frozen=True)
class Recommendation:
    objective: str
    objective_source: str  # "given" or why the default
    row: CurveRow | None  # the offer; None when no row meets the objective
    carbon_price_per_tonne: float | None  # the π_c the objective compared K with, if any
    closest: CurveRow | None  # with no offer: the row that came closest (None: no row saves carbon)
    shortfall: float | None  # with no offer: by how much ``closest`` misses (see ``shortfall_unit``)
    shortfall_unit: str  # "currency per period" (net) or "currency per t CO2e" (K over π_c), or ""
    sentence: str


@dataclass(frozen=True)
class ThirdOptionRow:
    """A type with U_R >= U_H served at R in every hour, no discount: per billing period."""

    name: str
    share: float
    u_h: float
    u_r: float
    requests: float  # S s_i N_i
    energy_saved_kwh: float
    saved_t: float  # all hours
    green_tier_saved_t: float  # what the green tier saves from the same type (high hours only)
    value: float | None  # ΔE π_e + ΔC π_c; None without prices


@dataclass(frozen=True)
class ThirdOption:
    rows: tuple[ThirdOptionRow, ...]  # empty: every type loses utility at R
    share: float
    energy_saved_kwh: float
    saved_t: float
    value: float | None
    sentence: str


@dataclass(frozen=True)
class Decision:
    curve: DiscountCurve
    recommendation: Recommendation
    third_option: ThirdOption


# ------------------------------------------------------------------------------------------------
# the curve


def _arrays(res: PricingResult) -> UserArrays:
    if res.user_arrays is None:
        raise PricingError("this pricing result carries no per-user arrays (user_arrays); "
                           "price it with greenbench.price.calculator.price_points")
    return res.user_arrays


def _check_grid(grid: Sequence[float] | None) -> np.ndarray:
    if grid is None:
        return default_grid()
    g = np.asarray(list(grid), dtype=float)
    if g.size == 0 or not np.all(np.isfinite(g)) or g.min() < 0 or g.max() > 1:
        raise PricingError("discount grid: give finite discounts from 0 to 1 (shares of the standard price)")
    return g


def _prices(res: PricingResult) -> tuple[float | None, float | None, str]:
    pe, pc, cur = res.options.electricity_price_per_kwh, res.options.carbon_price_per_tonne, res.currency
    if pe is None and pc is None:
        return None, None, ("no net: give an electricity price per kWh and/or a carbon price per tonne; "
                            "K credits no electricity saved")
    parts = [f"π_e = {pe:g} {cur}/kWh" if pe is not None else "no electricity price (electricity saved counts 0)",
             f"π_c = {pc:g} {cur}/t CO2e" if pc is not None else "no carbon price (carbon saved counts 0)"]
    return pe, pc, "net with " + " and ".join(parts)


def _first_positions(names: Sequence[str], order: np.ndarray) -> list[tuple[int, str]]:
    """(position in δ* order of a name's first row, name), sorted: the order types join in."""
    uniq, pos = np.unique(np.asarray(names, dtype=object)[order], return_index=True)
    return sorted(zip((int(p) for p in pos), (str(n) for n in uniq), strict=True))


def _degraded_share(res: PricingResult) -> float:
    """The share of a green user's high-hour requests served below H: all of them, except under a
    mix that routes a share to H itself (those are served in full)."""
    m = res.choice.mix
    if m is None:
        return 1.0
    return sum(share for p, share in zip(m.points, m.shares, strict=True) if p.label != res.choice.premium.label)


def discount_curve(res: PricingResult, grid: Sequence[float] | None = None) -> DiscountCurve:
    """The tier at each δ of ``grid`` (default ``default_grid()``; values in [0, 1]) and at each user
    type's δ* (capped at 1), sorted by δ. Vectorised: one sort of the rows by δ*, prefix sums."""
    ua = _arrays(res)
    g = _check_grid(grid)
    ds = np.asarray(res.delta_star, dtype=float)
    unique_names = len(set(ua.names)) == len(ua.names)
    unwin = ~takes_up(1.0, ds)
    stars = np.minimum(ds[~unwin], 1.0) if unique_names else np.empty(0)
    # a δ* within TIE of a grid value is that grid value (takes_up counts it there), not a second row
    gs = np.sort(g)
    j = np.searchsorted(gs, stars)
    below, above = gs[np.maximum(j - 1, 0)], gs[np.minimum(j, gs.size - 1)]
    nearest = np.where(np.abs(stars - below) <= np.abs(stars - above), below, above)
    snap = np.where(np.abs(stars - nearest) <= TIE, nearest, stars)
    deltas = np.unique(np.concatenate([g, snap]))

    order = np.argsort(ds, kind="stable")
    ds_sorted = ds[order]
    s_i, n_i, p_i = ua.share[order], ua.requests_per_period[order], ua.price[order]
    cum = [np.concatenate([[0.0], np.cumsum(x)]) for x in (s_i, s_i * n_i, s_i * p_i)]
    k = np.searchsorted(ds_sorted, deltas + TIE, side="right")  # rows with δ >= δ* - TIE, as takes_up
    subs = res.population.subscribers
    uptake, green_req, price_sum = cum[0][k], subs * cum[1][k], subs * cum[2][k]
    c = res.carbon
    revenue = deltas * price_sum
    kwh = green_req * c.saved_kwh_per_request
    tonnes = green_req * c.saved_g_per_request / G_PER_TONNE
    pe, pc, prices_note = _prices(res)
    pe0, pc0 = pe or 0.0, pc or 0.0
    net = kwh * pe0 + tonnes * pc0 - revenue

    joins = _first_positions(ua.names, order)
    join_pos = np.array([p for p, _ in joins])
    star_of: dict[float, list[str]] = {}
    if unique_names:
        won = [n for n, u in zip(ua.names, unwin, strict=True) if not u]
        for name, d in zip(won, snap, strict=True):
            star_of.setdefault(float(d), []).append(name)
    degraded_share = _degraded_share(res)
    rows = []
    for i, d in enumerate(deltas):
        n_types = int(np.searchsorted(join_pos, k[i], side="left"))  # names whose first row is green
        if tonnes[i] > 0:
            kpt: float | None = float((revenue[i] - kwh[i] * pe0) / tonnes[i])
            why = ""
        else:
            kpt = None
            why = ("no carbon saved: nobody takes the green tier at this discount" if k[i] == 0 else
                   "no carbon saved: the green tier degrades no high-carbon hour, or R saves no energy")
        rows.append(CurveRow(float(d), float(uptake[i]), float(subs * uptake[i]), float(green_req[i]),
                             float(green_req[i] * c.p * degraded_share), float(revenue[i]), float(kwh[i]),
                             float(tonnes[i]),
                             float(net[i]) if pe is not None or pc is not None else None, kpt, why,
                             tuple(n for _, n in joins[:n_types]), tuple(sorted(star_of.get(float(d), ())))))

    offers: tuple[TypeOffer, ...] = ()
    if unique_names:
        offers = tuple(sorted((TypeOffer(n, float(s), float(d), float(min(d, 1.0)), bool(u))
                               for n, s, d, u in zip(ua.names, ua.share, ds, unwin, strict=True)),
                              key=lambda o: (o.delta_star, o.name)))
    unwinnable = tuple(sorted({n for n, u in zip(ua.names, unwin, strict=True) if u}))
    grid_note = ("δ from 0 to 1 in steps of 0.01" if grid is None else f"{g.size} given discounts") + (
        ", with every user type's δ* (capped at 1)" if unique_names else
        " (a drawn population: no δ* merged, offers are on the grid)")
    return DiscountCurve(tuple(rows), res.currency, subs, pe, pc, prices_note, grid_note, offers, unwinnable,
                         _break_even(res, ds, order, cum, joins, join_pos, pe, pc))


def _break_even(res: PricingResult, ds: np.ndarray, order: np.ndarray, cum: list[np.ndarray],
                joins: list[tuple[int, str]], join_pos: np.ndarray, pe: float | None,
                pc: float | None) -> BreakEven:
    """The largest δ in [0, 1] with N(δ) >= 0 and uptake > 0, exactly: N is V_k - δ·C_k on each step
    [d_k, d_{k+1}) of the green set (V_k the set's savings value, C_k its S Σ s P)."""
    if pe is None and pc is None:
        return BreakEven(None, True, None, (), "no prices: the net needs an electricity and/or a carbon price")
    c, subs = res.carbon, res.population.subscribers
    ds_sorted = ds[order]
    lo = np.unique(np.minimum(ds_sorted[takes_up(1.0, ds_sorted)], 1.0))  # each step's first δ
    hi = np.append(lo[1:], 1.0)  # ... and where it ends (the next δ*, or 1)
    k = np.searchsorted(ds_sorted, lo + TIE, side="right")  # rows green on the step
    green_req, cost = subs * cum[1][k], subs * cum[2][k]  # R = δ · cost
    value = green_req * (c.saved_kwh_per_request * (pe or 0.0) + c.saved_g_per_request / G_PER_TONNE * (pc or 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(cost > 0, value / np.where(cost > 0, cost, 1.0), np.inf)  # where N = 0 on the step
    ok = (k > 0) & (green_req * c.saved_g_per_request > 0) & (x >= lo)  # someone green, something saved
    if not ok.any():
        return BreakEven(None, True, None, (), "no discount from 0 to 100% has a net >= 0 while the green tier "
                                               "saves carbon")
    top = np.where(ok, np.minimum(x, hi), -np.inf)
    j = lo.size - 1 - int(np.argmax(top[::-1]))  # of equal tops the later step, which reaches it, not just below
    attained = bool(j == lo.size - 1 or top[j] < hi[j])
    n_types = int(np.searchsorted(join_pos, k[j], side="left"))
    best = BreakEven(float(top[j]), attained, float(value[j] - top[j] * cost[j]),
                     tuple(n for _, n in joins[:n_types]), "")
    how = ("the largest discount with net >= 0" if best.attained else
           "net >= 0 for every discount below it; at it another user type joins and the net turns negative")
    return BreakEven(best.discount, best.attained, best.net, best.types, how)


def break_even(curve: DiscountCurve) -> BreakEven:
    """The break-even discount of the curve (computed exactly with it)."""
    return curve.break_even


# ------------------------------------------------------------------------------------------------
# the recommendation


def default_objective(curve: DiscountCurve) -> str:
    """``carbon`` where the curve has a net (a price was given), else ``cost``."""
    return "carbon" if curve.has_net else "cost"


def _num(x: float) -> str:
    """A figure as a pricing person reads it: 3 significant digits, thousands grouped."""
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def _pct(x: float) -> str:
    return f"{x * 100:.4g}%"


def _who(types: tuple[str, ...]) -> str:
    if len(types) > 4:
        return ", ".join(types[:3]) + f" and {len(types) - 3} more types"
    return types[0] if len(types) == 1 else ", ".join(types[:-1]) + " and " + types[-1]


def _offer_words(row: CurveRow, curve: DiscountCurve) -> str:
    cur = curve.currency
    what = ("the green tier with no discount" if row.discount == 0 else
            f"a {_pct(row.discount)} discount on the green tier")
    k = "" if row.cost_per_tonne is None else f" at {_num(row.cost_per_tonne)} {cur} per t CO2e avoided"
    extra = [f"net {row.net:+,.4g} {cur} per period"] if row.net is not None else []
    if row.cost_per_tonne is not None and row.cost_per_tonne < 0:
        extra.append("the electricity saved is worth more than the discount")
    more = f" ({'; '.join(extra)})" if extra else ""
    return (f"Offer {what} to {_who(row.types)} ({_pct(row.uptake)} of {curve.subscribers:,} subscribers): it saves "
            f"{_num(row.saved_t)} t CO2e and {_num(row.energy_saved_kwh)} kWh per period{k}{more}.")


def recommend(curve: DiscountCurve, objective: str | None = None,
              carbon_price_per_tonne: float | None = None) -> Recommendation:
    """The offer under ``objective`` (``OBJECTIVES``; None: ``default_objective``). ``carbon_price_per_tonne``
    is the π_c that ``carbon-under-price`` compares K with (default: the run's carbon price); the
    ``cost`` objective also compares its K with it when there is one. Raises PricingError (one line)
    when the objective needs a price that was not given."""
    source = "given"
    if objective is None:
        objective = default_objective(curve)
        source = "default: " + ("carbon, since a price was given" if objective == "carbon" else
                                "cost, since no price was given")
    if objective not in OBJECTIVES:
        raise PricingError(f"objective {objective!r}: choose one of {', '.join(OBJECTIVES)}")
    if carbon_price_per_tonne is not None and not (math.isfinite(carbon_price_per_tonne)
                                                   and carbon_price_per_tonne >= 0):
        raise PricingError(f"carbon price per tonne {carbon_price_per_tonne}: give a finite number of at least 0")
    pc = carbon_price_per_tonne if carbon_price_per_tonne is not None else curve.carbon_price_per_tonne
    cur = curve.currency
    if objective == "carbon" and not curve.has_net:
        raise PricingError("objective carbon (most carbon saved with net >= 0) needs a price: give "
                           "--electricity-price-per-kwh and/or --carbon-price-per-tonne, or choose --objective cost")
    if objective == "carbon-under-price" and pc is None:
        raise PricingError("objective carbon-under-price (most carbon saved at a cost per tonne under the carbon "
                           "price) needs --carbon-price-per-tonne")
    saving = [r for r in curve.rows if r.saved_t > 0]
    if not saving:
        why = next((r.cost_per_tonne_reason for r in reversed(curve.rows) if r.cost_per_tonne_reason), "")
        return Recommendation(objective, source, None, pc, None, None, "",
                              f"No discount from 0 to 100% saves any carbon ({why.removeprefix('no carbon saved: ')}).")

    def by_carbon(r: CurveRow) -> tuple:
        return (-r.saved_t, r.discount)

    if objective == "carbon":
        ok = [r for r in saving if r.net is not None and r.net >= 0]
        if ok:
            row = min(ok, key=by_carbon)
            return Recommendation(objective, source, row, pc, None, None, "", _offer_words(row, curve))
        near = max(saving, key=lambda r: (r.net or 0.0, -r.discount))  # every row has a net here
        assert near.net is not None
        against = f" against a carbon price of {_num(pc)}" if pc is not None else ""
        k = (f"; it costs {_num(near.cost_per_tonne)} {cur} per t CO2e avoided{against}"
             if near.cost_per_tonne is not None else "")
        sentence = (f"No discount pays for itself at these prices ({curve.prices_note.removeprefix('net with ')}): "
                    f"the best, {_pct(near.discount)} to {_who(near.types)}, saves {_num(near.saved_t)} t CO2e per "
                    f"period and falls short by {_num(-near.net)} {cur} per period{k}.")
        return Recommendation(objective, source, None, pc, near, -near.net, f"{cur} per period", sentence)

    with_k = [r for r in saving if r.cost_per_tonne is not None]
    cheapest = min(with_k, key=lambda r: (r.cost_per_tonne or 0.0, -r.saved_t, r.discount))  # all have a K
    assert cheapest.cost_per_tonne is not None
    if objective == "cost":
        s = _offer_words(cheapest, curve)
        if pc is not None:
            gap = cheapest.cost_per_tonne - pc
            s = s[:-1] + (f", {_num(gap)} {cur} per t above the carbon price of {_num(pc)}." if gap > 0 else
                          f", within the carbon price of {_num(pc)} {cur} per t.")
        return Recommendation(objective, source, cheapest, pc, None, None, "", s)

    assert pc is not None
    ok = [r for r in with_k if r.cost_per_tonne is not None and r.cost_per_tonne <= pc]
    if ok:
        row = min(ok, key=lambda r: (-r.saved_t, r.cost_per_tonne or 0.0, r.discount))
        return Recommendation(objective, source, row, pc, None, None, "", _offer_words(row, curve))
    gap = cheapest.cost_per_tonne - pc
    sentence = (f"No discount costs under the carbon price of {_num(pc)} {cur} per t CO2e: the cheapest, "
                f"{_pct(cheapest.discount)} to {_who(cheapest.types)}, costs {_num(cheapest.cost_per_tonne)} {cur} "
                f"per t avoided, {_num(gap)} {cur} per t too much, for {_num(cheapest.saved_t)} t CO2e per period.")
    return Recommendation(objective, source, None, pc, cheapest, gap, f"{cur} per t CO2e", sentence)


# ------------------------------------------------------------------------------------------------
# the third option


def third_option(res: PricingResult) -> ThirdOption:
    """Types with U_R >= U_H served at R in every hour with no discount (R is no loss to them):
    per type (rows of a drawn population summed by name) and in total, per billing period."""
    ua = _arrays(res)
    ch, s = res.choice, res.slots
    de_j = ch.premium.energy_j_per_item - ch.reduced_energy_j_per_item  # E_R as served (a mix with --mix)
    kwh_req = de_j / J_PER_KWH
    t_req = co2e_g(de_j, float(s.weight @ s.intensity)) / G_PER_TONNE  # every hour, actual CI
    t_green_req = res.carbon.saved_g_per_request / G_PER_TONNE  # high hours only
    pe, pc = res.options.electricity_price_per_kwh, res.options.carbon_price_per_tonne
    priced = pe is not None or pc is not None
    subs = res.population.subscribers
    free = ua.u_r >= ua.u_h - TIE
    agg: dict[str, list[float]] = {}
    for i in np.flatnonzero(free):
        a = agg.setdefault(ua.names[i], [0.0, 0.0, 0.0, 0.0])  # share, requests, Σ s U_H, Σ s U_R
        w = float(ua.share[i])
        a[0] += w
        a[1] += subs * w * float(ua.requests_per_period[i])
        a[2] += w * float(ua.u_h[i])
        a[3] += w * float(ua.u_r[i])
    rows = []
    for name in sorted(agg):
        share, req, uh, ur = agg[name]
        kwh, t = req * kwh_req, req * t_req
        value = kwh * (pe or 0.0) + t * (pc or 0.0) if priced else None
        rows.append(ThirdOptionRow(name, share, uh / share, ur / share, req, kwh, t, req * t_green_req, value))
    tot_kwh, tot_t = sum(r.energy_saved_kwh for r in rows), sum(r.saved_t for r in rows)
    tot_value = sum(r.value for r in rows if r.value is not None) if priced else None
    if not rows:
        sentence = "Every user type loses utility at R: there is no type to serve at R by default."
    else:
        names = tuple(r.name for r in rows)
        extra = sum(r.saved_t - r.green_tier_saved_t for r in rows)
        sentence = (f"R is no loss to {_who(names)} (U_R >= U_H): serving {'it' if len(rows) == 1 else 'them'} at R "
                    f"in every hour, with no discount, saves {_num(tot_t)} t CO2e and {_num(tot_kwh)} kWh per period, "
                    f"{_num(extra)} t more than the green tier saves from {'it' if len(rows) == 1 else 'them'} "
                    "in high-carbon hours.")
    return ThirdOption(tuple(rows), sum(r.share for r in rows), tot_kwh, tot_t, tot_value, sentence)


def decide(res: PricingResult, grid: Sequence[float] | None = None, objective: str | None = None,
           carbon_price_per_tonne: float | None = None) -> Decision:
    """The curve, the recommended offer and the third option of one pricing result."""
    curve = discount_curve(res, grid)
    return Decision(curve, recommend(curve, objective, carbon_price_per_tonne), third_option(res))


# ------------------------------------------------------------------------------------------------
# JSON


def _row(r: CurveRow | None) -> dict | None:
    if r is None:
        return None
    return {"discount": r.discount, "uptake": r.uptake, "green_subscribers": r.green_subscribers,
            "green_requests_per_period": r.green_requests, "requests_degraded_per_period": r.requests_degraded,
            "revenue_forgone_per_period": r.revenue_forgone, "energy_saved_kwh_per_period": r.energy_saved_kwh,
            "saved_t_per_period": r.saved_t, "net_per_period": finite_or_none(r.net),
            "cost_per_tonne": finite_or_none(r.cost_per_tonne),
            "cost_per_tonne_reason": r.cost_per_tonne_reason or None,
            "types": list(r.types), "delta_star_of": list(r.delta_star_of)}


def to_dict(d: Decision) -> dict:
    """The decision as JSON (no NaN or inf: None, with a reason where one applies)."""
    c, rec, t, be = d.curve, d.recommendation, d.third_option, d.curve.break_even
    return {
        "currency": c.currency, "subscribers": c.subscribers,
        "electricity_price_per_kwh": c.electricity_price_per_kwh, "carbon_price_per_tonne": c.carbon_price_per_tonne,
        "prices": c.prices_note, "grid": c.grid_note,
        "offers": [{"name": o.name, "share": o.share, "delta_star": finite_or_none(o.delta_star), "offer": o.offer,
                    "no_discount_wins": o.no_discount_wins} for o in c.offers],
        "unwinnable_types": list(c.unwinnable),
        "curve": [_row(r) for r in c.rows],
        "break_even": {"discount": be.discount, "attained": be.attained, "net_per_period": finite_or_none(be.net),
                       "types": list(be.types), "reason": be.reason},
        "recommendation": {"objective": rec.objective, "objective_source": rec.objective_source,
                           "offer": _row(rec.row), "carbon_price_per_tonne": rec.carbon_price_per_tonne,
                           "closest": _row(rec.closest), "shortfall": finite_or_none(rec.shortfall),
                           "shortfall_unit": rec.shortfall_unit or None, "sentence": rec.sentence},
        "third_option": {"types": [{"name": r.name, "share": r.share, "u_h": r.u_h, "u_r": r.u_r,
                                    "requests_per_period": r.requests,
                                    "energy_saved_kwh_per_period": r.energy_saved_kwh,
                                    "saved_t_per_period": r.saved_t,
                                    "green_tier_saved_t_per_period": r.green_tier_saved_t,
                                    "value_per_period": finite_or_none(r.value)} for r in t.rows],
                         "share": t.share, "energy_saved_kwh_per_period": t.energy_saved_kwh,
                         "saved_t_per_period": t.saved_t, "value_per_period": finite_or_none(t.value),
                         "sentence": t.sentence},
    }
