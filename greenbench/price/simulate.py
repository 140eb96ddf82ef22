"""Replay an hourly carbon trace under the two-tier policy, hour by hour, and report month by month.

Library only (numpy; no typer, no rich; plots in the style of ``greenbench.plotting``, matplotlib
imported only when one is drawn). The slots are chosen once, by ``greenbench.price.slots.select``
(the same selection `price` reports); the population (who takes the green tier at the offered
discount) comes from ``pricing.price``. The replay then walks the hours: every hour, all
subscribers' requests at H (the world without the green tier) against the same hour with the green
users' requests served at R in high hours.
Hour-by-hour sums are cumulative sums over the hours; months are sums over their hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from greenbench import plotting
from greenbench.carbon.intensity import co2e_g
from greenbench.errors import GreenbenchError
from greenbench.price import calculator as pricing
from greenbench.price.slots import HOURS_PER_PERIOD
from greenbench.units import G_PER_TONNE, J_PER_KWH

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SCHEMA = "greenbench/simulate"
SCHEMA_VERSION = 1


class SimulateError(GreenbenchError):
    """A simulation input or output that cannot work (one line)."""


@dataclass(frozen=True)
class Hourly:
    """Per hour of the trace (sorted by time)."""

    time_utc: np.ndarray
    intensity: np.ndarray
    forecast: np.ndarray
    high: np.ndarray  # degraded for green users this hour
    requests: np.ndarray  # all subscribers
    green_requests: np.ndarray
    base_g: np.ndarray  # emissions without the green tier (all at H)
    tier_g: np.ndarray  # emissions with it (green requests at R in high hours)
    savings_value: np.ndarray | None  # (π_e + π_c·CI) value of the energy not used; None without prices

    @property
    def cumulative_base_g(self) -> np.ndarray:
        return np.cumsum(self.base_g)

    @property
    def cumulative_tier_g(self) -> np.ndarray:
        return np.cumsum(self.tier_g)


@dataclass(frozen=True)
class SimMonth:
    label: str
    hours: int
    complete: bool
    high_hours: int
    p: float
    requests: float
    green_requests: float
    base_g: float
    tier_g: float
    saved_g: float
    rho: float  # population reduction this month: saved / base
    rho_green: float  # reduction on the green users' own requests: ρ of §5 for this month
    rho_blind: float
    discount_cost: float  # δ·P of the green users, prorated by hours (a period is 730 h)
    savings_value: float | None
    net: float | None


@dataclass(frozen=True)
class SimulationResult:
    pricing: pricing.PricingResult
    hourly: Hourly
    months: tuple[SimMonth, ...]
    total: SimMonth  # the whole trace


def replay(res: pricing.PricingResult) -> tuple[Hourly, tuple[SimMonth, ...], SimMonth]:
    """The hour-by-hour replay of a priced configuration (vectorised over hours)."""
    s, pop = res.slots, res.population
    h = res.choice.premium
    e_h, e_r = h.energy_j_per_item, res.choice.reduced_energy_j_per_item  # a mix's E_R with --mix
    per_hour = s.demand / (s.demand.sum() / s.periods)  # requests per hour for one request per period
    req = pop.all_requests * per_hour
    green = pop.green_requests * per_hour
    ci = s.intensity
    base = co2e_g(req * e_h, ci)
    saved = np.where(s.high, co2e_g(green * (e_h - e_r), ci), 0.0)
    value = None
    o = res.options
    if o.electricity_price_per_kwh is not None or o.carbon_price_per_tonne is not None:
        pe, pc = o.electricity_price_per_kwh or 0.0, o.carbon_price_per_tonne or 0.0
        value = np.where(s.high, green * (e_h - e_r) / J_PER_KWH * (pe + pc * ci / G_PER_TONNE), 0.0)
    hourly = Hourly(s.time_utc, ci, s.forecast, s.high, req, green, base, base - saved, value)

    n_m = len(s.month_labels)
    tier = base - saved
    arrays = {"base": base, "tier": tier, "green": green, "req": req}
    if value is not None:
        arrays["value"] = value
    by_month = {k: np.bincount(s.month, weights=x, minlength=n_m) for k, x in arrays.items()}
    green_share = pop.green_requests / pop.all_requests if pop.all_requests > 0 else 0.0

    def month(label: str, hours: int, complete: bool, sums: dict, high_hours: int, p: float) -> SimMonth:
        b, t = float(sums["base"]), float(sums["tier"])
        gbase = b * green_share  # the green users' share of the base emissions
        cost = pop.discount_cost * hours / HOURS_PER_PERIOD
        v = None if value is None else float(sums["value"])
        return SimMonth(label, int(hours), bool(complete), int(high_hours), float(p), float(sums["req"]),
                        float(sums["green"]), b, t, b - t, (b - t) / b if b > 0 else 0.0,
                        (b - t) / gbase if gbase > 0 else 0.0, p * (1 - e_r / e_h) if e_h > 0 else 0.0,
                        float(cost), v, None if v is None else v - cost)

    high_per_month = np.bincount(s.month, weights=s.high.astype(float), minlength=n_m)
    months = [month(label, int(s.month_hours[m]), bool(s.complete_months[m]),
                    {k: x[m] for k, x in by_month.items()}, int(high_per_month[m]), float(s.p_month[m]))
              for m, label in enumerate(s.month_labels)]
    total = month("total", len(ci), bool(s.complete_months.all()), {k: x.sum() for k, x in arrays.items()},
                  int(s.high.sum()), s.p)
    return hourly, tuple(months), total


def simulate(profile, users, trace, opts: pricing.PricingOptions | None = None) -> SimulationResult:
    """Price the tier on ``trace`` (the shared slot selection), then replay it hour by hour.
    ``opts`` None: the documented defaults (``PricingOptions()``)."""
    res = pricing.price(profile, users, trace, opts if opts is not None else pricing.PricingOptions())
    return simulate_priced(res)


def simulate_priced(res: pricing.PricingResult) -> SimulationResult:
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused below, in one line
        hourly, months, total = replay(res)
    t = total
    try:
        pricing.check_finite({"emissions without the tier": t.base_g, "emissions with the tier": t.tier_g,
                              "requests": t.requests, "discounts": t.discount_cost,
                              "net": 0.0 if t.net is None else t.net},
                             f"{t.requests:g} requests over the trace")
    except pricing.PricingError as e:
        raise SimulateError(str(e)) from None
    return SimulationResult(res, hourly, months, total)


def _m(m: SimMonth) -> dict:
    return {"month": m.label, "hours": m.hours, "complete": m.complete, "high_hours": m.high_hours, "p": m.p,
            "requests": m.requests, "green_requests": m.green_requests, "base_g": m.base_g, "tier_g": m.tier_g,
            "saved_g": m.saved_g, "rho_population": m.rho, "rho_green": m.rho_green, "rho_blind": m.rho_blind,
            "discount_cost": m.discount_cost, "savings_value": m.savings_value, "net": m.net}


def to_dict(sim: SimulationResult, plots: Sequence[Path] = ()) -> dict:
    """The JSON document (schema greenbench/simulate); ``plots``: the files ``write_plots`` wrote."""
    doc = pricing.to_dict(sim.pricing)
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "trace": doc["trace"],
            "users_file": doc["users_file"], "currency": doc["currency"], "options": doc["options"],
            "premium": doc["premium"], "reduced": doc["reduced"],
            "population": doc["population"], "user_types": doc["user_types"],
            "months": [_m(m) for m in sim.months], "total": _m(sim.total), "notes": doc["notes"],
            "users_default": doc["users_default"], "plots": [str(p) for p in plots]}


def to_json(sim: SimulationResult, plots: Sequence[Path] = ()) -> str:
    """``to_dict`` as JSON (indented), ending in a newline."""
    return pricing.dumps(to_dict(sim, plots))


# ------------------------------------------------------------------------------------------------
# plots (greenbench.plotting)


def _scale(max_g: float) -> tuple[float, str]:
    for div, unit in ((1e6, "t"), (1e3, "kg"), (1.0, "g"), (1e-3, "mg"), (1e-6, "µg")):
        if max_g >= div:
            return div, unit
    return 1e-9, "ng"


def _title(sim: SimulationResult) -> str:
    res = sim.pricing
    s = res.slots
    cap = f", cap {s.cap_gco2e_per_kwh:.0f} gCO2e/kWh ({s.cap_source})" if s.cap_gco2e_per_kwh is not None else \
        f", daily share {s.daily_share:g}"
    return (f"{res.trace_name} ({res.trace_basis or 'basis unknown'}): {s.policy.cap_mode}{cap}; "
            f"forecast {s.forecast_used}; p_max {s.p_max:.2f}")


def plot_trace(sim: SimulationResult, path: Path, zoom_days: int = 14) -> list[Path]:
    """The trace with the high-carbon hours shaded: the whole trace, and a zoom on ``zoom_days``
    days of the month with the largest p. Writes ``path`` (PNG) and its SVG beside it."""
    h, s = sim.hourly, sim.pricing.slots
    t = h.time_utc.astype("datetime64[s]").astype("O")
    fig = plotting.figure(12, 6.5)
    axes = fig.subplots(2, 1, gridspec_kw={"height_ratios": [1.1, 1]})
    top = float(np.nanmax(h.intensity)) * 1.05 if len(h.intensity) else 1.0
    m_star = int(np.argmax(s.p_month)) if len(s.p_month) else 0
    idx = np.flatnonzero(s.month == m_star)
    start = idx[0] if len(idx) else 0
    zoom = slice(start, min(len(t), start + 24 * zoom_days))
    for ax, sl, lw in ((axes[0], slice(None), 0.5), (axes[1], zoom, 1.2)):
        ax.fill_between(t[sl], 0, top, where=h.high[sl], step="post", color="#f4a261", alpha=0.45, linewidth=0,
                        label="high-carbon hours (green tier served at R)")
        ax.plot(t[sl], h.intensity[sl], color="#264653", linewidth=lw, label="actual intensity")
        if s.forecast_used != "perfect":
            ax.plot(t[sl], h.forecast[sl], color="#2a9d8f", linewidth=lw * 0.8, linestyle=":",
                    label=f"forecast ({s.forecast_used})")
        if s.cap_gco2e_per_kwh is not None:
            ax.axhline(s.cap_gco2e_per_kwh, color="#e76f51", linestyle="--", linewidth=1,
                       label=f"I_cap {s.cap_gco2e_per_kwh:.0f} gCO2e/kWh")
        ax.set_ylim(0, top)
        ax.set_ylabel("gCO2e/kWh")
        ax.margins(x=0)
        plotting.grid(ax)
        plotting.date_axis(ax)
    plotting.title(axes[0], _title(sim))
    plotting.legend(axes[0], loc="upper right", ncol=4, frameon=True)
    label = s.month_labels[m_star] if len(s.month_labels) else ""
    plotting.title(axes[1], f"first {zoom_days} days of {label} (the month with the largest share degraded, "
                            f"p = {s.p_month[m_star]:.0%})", small=True)
    axes[1].set_xlabel("time (UTC)")
    return _save(fig, path)


def cumulative_title(sim: SimulationResult) -> str:
    """The cumulative plot's title; it says when H's or R's energy is not a measurement."""
    res, pop = sim.pricing, sim.pricing.population
    unmetered = plotting.not_measured(p.energy_method for p in (res.choice.premium, res.choice.reduced))
    return (f"{res.trace_name}: cumulative emissions of {pop.subscribers:,} subscribers, "
            f"{pop.uptake:.0%} on the green tier at a {pop.discount:.1%} discount"
            + (f"\n(energy per request is not a measurement: energy_method {', '.join(unmetered)})"
               if unmetered else ""))


def plot_cumulative(sim: SimulationResult, path: Path) -> list[Path]:
    """Cumulative emissions of all subscribers with and without the green tier (PNG + SVG)."""
    h, res = sim.hourly, sim.pricing
    t = h.time_utc.astype("datetime64[s]").astype("O")
    cb, ct = h.cumulative_base_g, h.cumulative_tier_g
    div, unit = _scale(float(cb[-1]) if len(cb) else 1.0)
    fig = plotting.figure(10, 4.8)
    ax = fig.add_subplot()
    ax.plot(t, cb / div, color="#264653", linewidth=1.6,
            label=f"standard tier only (all at H: {res.choice.premium.label})")
    ax.plot(t, ct / div, color="#2a9d8f", linewidth=1.6,
            label=f"with the green tier (green users at R in high hours: {res.choice.reduced.label})")
    ax.fill_between(t, ct / div, cb / div, color="#2a9d8f", alpha=0.15, linewidth=0)
    tot = sim.total
    ax.annotate(f"saved {tot.saved_g / div:.3g} {unit} ({tot.rho:.1%} of all subscribers' emissions;\n"
                f"ρ = {res.carbon.rho:.1%} on green users' requests, ρ_blind = {res.carbon.rho_blind:.1%})",
                xy=(0.98, 0.04), xycoords="axes fraction", ha="right", va="bottom",
                fontsize=plotting.SUBTITLE_FONTSIZE,
                bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "0.8"})
    plotting.title(ax, cumulative_title(sim))
    ax.set_ylabel(f"cumulative emissions ({unit} CO2e)")
    ax.set_xlabel("time (UTC)")
    ax.set_ylim(bottom=0)
    ax.margins(x=0)
    plotting.grid(ax)
    plotting.date_axis(ax)
    plotting.legend(ax, loc="upper left", frameon=True)
    return _save(fig, path)


def _save(fig: Figure, path: Path) -> list[Path]:
    path = Path(path)
    try:
        return plotting.save(fig, path)
    except OSError as e:
        raise SimulateError(f"{path.parent}: cannot write plots: {e.strerror or e}") from None


def write_plots(sim: SimulationResult, folder: Path) -> list[Path]:
    """Both plots, PNG and SVG, named after the trace, in ``folder`` (created if missing)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SimulateError(f"{folder}: cannot create the plot folder: {e.strerror or e}") from None
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in sim.pricing.trace_name)
    return plot_trace(sim, folder / f"{stem}-trace") + plot_cumulative(sim, folder / f"{stem}-cumulative")
