"""Zones side by side: one profile priced on several carbon traces (H and R chosen once: they do
not depend on the trace), each with its decision, ranked by the carbon the tier saves (ρ).

Library only. ``price_zones`` prices and decides every trace; ``ranking`` orders the zones by ρ
(then ρ/ρ_blind, then name) and ``to_dict`` is the JSON document (schema greenbench/price-zones).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from greenbench.price import calculator as pricing
from greenbench.price import decision as decisionmod
from greenbench.price import document as docmod
from greenbench.price.users import Users
from greenbench.tradeoff.points import operating_points

SCHEMA = "greenbench/price-zones"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Zone:
    result: pricing.PricingResult
    decision: decisionmod.Decision

    @property
    def name(self) -> str:
        return self.result.trace_name


@dataclass(frozen=True)
class ZoneRow:
    """One zone of the ranking: what the tier does there at the recommended offer."""

    rank: int
    zone: str
    rho: float  # ΔC / C_base of a green user
    rho_blind: float
    awareness: float | None  # ρ / ρ_blind (None when ρ_blind is 0)
    p: float
    p_max: float
    delta_star_max: float  # the largest δ* of the types (the discount that wins everyone)
    offer: float | None  # the recommended δ (None: no offer meets the objective)
    uptake: float | None
    saved_t: float | None  # ΔC per period at the offer
    cost_per_tonne: float | None
    sentence: str


def price_zones(source: Any, users: Users | None, traces: list[Any], opts: pricing.PricingOptions,
                objective: str | None = None, max_cost_per_tonne: float | None = None) -> list[Zone]:
    """Every trace priced on the same H and R, each with its decision (``max_cost_per_tonne``: the
    price that ``carbon-under-price`` holds K under; default the carbon price). ``source``: a profile, or the
    points of a tradeoff.json (``mix.TradeoffPoints``, priced with the settings it was fitted with)."""
    from greenbench.price.mix import TradeoffPoints

    if isinstance(source, TradeoffPoints):
        opts = replace(opts, **source.pricing_settings())
        opts.check()
        points, excluded = list(source.points), list(source.excluded)
    else:
        opts.check()
        points, excluded = operating_points(source, latency=opts.latency, energy=opts.energy, quality=opts.quality,
                                            latency_kind=opts.latency_kind)
    results = pricing.price_traces(points, users, traces, opts, tuple(excluded))
    return [Zone(r, decisionmod.decide(r, objective=objective, carbon_price_per_tonne=max_cost_per_tonne))
            for r in results]


def ranking(zones: list[Zone]) -> list[ZoneRow]:
    def key(z: Zone) -> tuple:
        c = z.result.carbon
        return (-c.rho, -(c.awareness_ratio or 0.0), z.name)

    rows = []
    for i, z in enumerate(sorted(zones, key=key), 1):
        c, rec = z.result.carbon, z.decision.recommendation
        row = rec.row
        rows.append(ZoneRow(i, z.name, c.rho, c.rho_blind, pricing.finite_or_none(c.awareness_ratio), c.p,
                            z.result.slots.p_max, float(z.result.delta_star.max()),
                            None if row is None else row.discount, None if row is None else row.uptake,
                            None if row is None else row.saved_t, None if row is None else row.cost_per_tonne,
                            rec.sentence))
    return rows


def to_dict(zones: list[Zone]) -> dict[str, Any]:
    return {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
        "ranking": [{"rank": r.rank, "zone": r.zone, "rho": r.rho, "rho_blind": r.rho_blind,
                     "rho_over_rho_blind": r.awareness, "p": r.p, "p_max": r.p_max,
                     "delta_star_max": pricing.finite_or_none(r.delta_star_max), "offer": r.offer,
                     "uptake": r.uptake, "saved_t_per_period": r.saved_t,
                     "cost_per_tonne": pricing.finite_or_none(r.cost_per_tonne), "sentence": r.sentence}
                    for r in ranking(zones)],
        "zones": [docmod.document(z.result, z.decision) for z in zones],
    }
