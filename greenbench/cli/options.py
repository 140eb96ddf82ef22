"""The options `greenbench price` and `greenbench simulate` share, as ``Annotated`` aliases.

Each command declares every option in its own signature with its default (``basis: Basis = "lca"``),
so the signature is what Typer reads; ``TierArgs`` gathers the values and turns them into what the
library takes: ``PricingOptions`` and the trace. ``load_inputs`` is the step both
commands take before they call the library.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from greenbench.cli.common import fail

if TYPE_CHECKING:
    from greenbench.carbon.trace import Trace
    from greenbench.price.calculator import PricingOptions
    from greenbench.price.users import Users
    from greenbench.profile import Profile

DEFAULT_TRACE = "US-MIDA-PJM"

ProfilePath = Annotated[Path, typer.Argument(help="Profile JSON (from `greenbench profile`).")]
UsersPath = Annotated[Path | None, typer.Option(
    "--users", help="Users file (YAML). Default: the shipped example, users_example.yaml.")]
TraceName = Annotated[str, typer.Option(
    "--trace", help="Bundled grid zone (e.g. DE, GB, US-CAL-CISO; `greenbench env --zones`) or the path of an "
    "hourly CSV trace. Default: US-MIDA-PJM.")]

# the trace
Basis = Annotated[str, typer.Option("--basis", help="Intensity basis of a bundled zone: lca (life-cycle) or direct.")]
TraceUnits = Annotated[str | None, typer.Option(
    "--trace-units", help="Units of a CSV trace's values, converted to gCO2e/kWh (g/kWh, kg/MWh, kg/kWh, t/MWh, "
    "lb/MWh, lb/kWh). Needed when the value column's header names no unit; kg/kWh and lb/MWh are refused unless "
    "named.")]
TimeColumn = Annotated[str | None, typer.Option(
    "--time-column", help="Column of a CSV trace holding the hour's start time (default: the first whose name has "
    "'time' or 'date').")]
ValueColumn = Annotated[str | None, typer.Option(
    "--value-column", help="Column of a CSV trace holding the intensity (default: intensity_gco2e_per_kwh, the "
    "Electricity Maps column, or the one column named for it).")]
ForecastColumn = Annotated[str | None, typer.Option(
    "--forecast-column", help="Column of a CSV trace holding the forecast.")]
Tz = Annotated[str | None, typer.Option(
    "--tz", help="IANA time zone for days and billing months (default: the zone's own; UTC for a CSV without one).")]

# the high-carbon slots
Forecast = Annotated[str, typer.Option(
    "--forecast", help="How high hours are foreseen: perfect (the actual trace), persistence (the same local hour a "
    "day earlier), column (the trace's forecast column), or auto: column if the trace has one, else persistence.")]
CapMode = Annotated[str, typer.Option(
    "--cap-mode", help="exceedance: hours with forecast > I_cap; average: the dirtiest hours of each day until the "
    "day's mean is <= I_cap; share: the dirtiest --daily-share of each day.")]
CapGco2ePerKwh = Annotated[float | None, typer.Option(
    "--cap-gco2e-per-kwh", help="I_cap in gCO2e/kWh. Default: a quantile of the forecast (--cap-quantile).")]
CapQuantile = Annotated[float | None, typer.Option(
    "--cap-quantile", help="I_cap as this quantile of the forecast (default 0.75 for exceedance, 0.5 for average).")]
DailyShare = Annotated[float | None, typer.Option(
    "--daily-share", help="share mode: q, the dirtiest share of each day's demand, to the nearest hour "
    "(default 0.25).")]
PMax = Annotated[float | None, typer.Option(
    "--p-max", help="Contractual ceiling on the share degraded per month. Default: derived from the trace "
    "(--p-max-quantile).")]
PMaxQuantile = Annotated[float, typer.Option(
    "--p-max-quantile", help="Derived p_max: this quantile of the complete months' p (default 1 = the maximum).")]
PMaxBasis = Annotated[str, typer.Option(
    "--p-max-basis", help="Derived p_max: worst (the worst month, the paper's ceiling) or expected (the mean "
    "month: users are paid for the degradation they expect, a departure from the paper).")]
Truncation = Annotated[str, typer.Option(
    "--truncation", help="How p <= p_max is kept: month (drop the month's least dirty high hours; the specification) "
    "or day-ahead (day by day until the month's budget is spent).")]
Demand = Annotated[str, typer.Option(
    "--demand", help="Demand n(t): flat, or a CSV: 24 local-hour weights (hour,weight), a weekly shape "
    "(day_of_week,hour,weight; 0 = Monday) or requests in every hour of the trace (time,requests).")]

# utility, H and R
UtilityShape = Annotated[str, typer.Option(
    "--utility-shape", help="Bend of the normalised accuracy and latency terms: linear, log or sigmoid.")]
UtilityK = Annotated[float | None, typer.Option(
    "--utility-k", help="Curvature of log (default 9) and sigmoid (default 10).")]
Consciousness = Annotated[str, typer.Option(
    "--consciousness", help="discount: δ* = (1-e)·p_max·N·V·(U_H-U_R)/P; "
    "reward: δ* = max(0, p_max·N·V·(U_H-U_R) - e·β·ΔC)/P.")]
RewardPerGco2e = Annotated[float | None, typer.Option(
    "--reward-per-gco2e", help="β for --consciousness reward: currency per gram CO2e saved.")]
Latency = Annotated[str, typer.Option("--latency", help="Latency statistic per request: p95, p50, p90, p99 or mean.")]
LatencyKind = Annotated[str, typer.Option(
    "--latency-kind", help="Latency as the user sees it: e2e (a batch's latency for batched inference, a generated "
    "request's end to end; the default), ttft (time to first token) or tpot (time per output token).")]
Quality = Annotated[str, typer.Option(
    "--quality", help="Quality metric: auto (the profile's own), accuracy, exact_match or perplexity (lower is "
    "better).")]
Energy = Annotated[str, typer.Option("--energy", help="Energy basis: gross (what the meter saw) or net (minus idle).")]
LatencySloMs = Annotated[float | None, typer.Option(
    "--latency-slo-ms", help="H is the most accurate frontier point meeting this latency.")]
AccuracyFloor = Annotated[float | None, typer.Option(
    "--accuracy-floor", "--quality-floor", help="R must keep at least this quality, in the metric's units: accuracy "
    ">= it, or perplexity <= it.")]
LatencyCeilingMs = Annotated[float | None, typer.Option(
    "--latency-ceiling-ms", help="R must keep latency at most this.")]
Premium = Annotated[str | None, typer.Option("--premium", help="Name H by its label (e.g. 'cnn-64 b256 fp32 cpu').")]
Reduced = Annotated[str | None, typer.Option("--reduced", help="Name R by its label.")]
RankBy = Annotated[str | None, typer.Option(
    "--rank-by", help="Rank R by this user type's utility (default: the share-weighted mean).")]

# prices and the population
StandardPrice = Annotated[float | None, typer.Option(
    "--standard-price", help="P, the standard price per billing period. Default: the users file's, else each type's "
    "full valuation N·V·U_H.")]
Subscribers = Annotated[int | None, typer.Option(
    "--subscribers", help="Subscribers for the totals (default: the users file's, else 1000).")]
Discount = Annotated[float | None, typer.Option(
    "--discount", help="Offered discount δ as a share of P (0.1 = 10%). Default: the smallest that every type takes.")]
ElectricityPricePerKwh = Annotated[float | None, typer.Option(
    "--electricity-price-per-kwh", help="π_e, for the provider's net.")]
CarbonPricePerTonne = Annotated[float | None, typer.Option(
    "--carbon-price-per-tonne", help="π_c per tonne CO2e, for the provider's net.")]


@dataclass(frozen=True, kw_only=True)
class TierArgs:
    """The shared options as the command parsed them (the defaults are in the commands' signatures)."""

    trace: str
    basis: str
    trace_units: str | None
    time_column: str | None
    value_column: str | None
    forecast_column: str | None
    tz: str | None
    forecast: str
    cap_mode: str
    cap_gco2e_per_kwh: float | None
    cap_quantile: float | None
    daily_share: float | None
    p_max: float | None
    p_max_quantile: float
    p_max_basis: str
    truncation: str
    demand: str
    utility_shape: str
    utility_k: float | None
    consciousness: str
    reward_per_gco2e: float | None
    latency: str
    latency_kind: str
    quality: str
    energy: str
    latency_slo_ms: float | None
    accuracy_floor: float | None
    latency_ceiling_ms: float | None
    premium: str | None
    reduced: str | None
    rank_by: str | None
    standard_price: float | None
    subscribers: int | None
    discount: float | None
    electricity_price_per_kwh: float | None
    carbon_price_per_tonne: float | None

    def pricing_options(self) -> PricingOptions:
        """The library's options (which validates them; a demand file that is not there and a number
        that is not finite are refused here, naming the option)."""
        from greenbench.price.calculator import PricingOptions
        from greenbench.price.slots import SlotPolicy

        if self.demand != "flat" and not Path(self.demand).is_file():
            raise fail(f"--demand {self.demand!r}: give 'flat' or the path of a CSV (hour,weight; "
                       "day_of_week,hour,weight; or time,requests)")
        for f in fields(self):
            x = getattr(self, f.name)
            if isinstance(x, float) and not math.isfinite(x):
                raise fail(f"--{f.name.replace('_', '-')} takes a finite number")
        slots = SlotPolicy(forecast=self.forecast, cap_mode=self.cap_mode, cap_gco2e_per_kwh=self.cap_gco2e_per_kwh,
                           cap_quantile=self.cap_quantile, daily_share=self.daily_share, p_max=self.p_max,
                           p_max_quantile=self.p_max_quantile, p_max_basis=self.p_max_basis,
                           truncation=self.truncation, demand=self.demand)
        return PricingOptions(
            latency=self.latency, latency_kind=self.latency_kind, quality=self.quality, energy=self.energy, utility_shape=self.utility_shape, utility_k=self.utility_k,
            consciousness=self.consciousness, reward_per_gco2e=self.reward_per_gco2e,
            latency_slo_ms=self.latency_slo_ms, accuracy_floor=self.accuracy_floor,
            latency_ceiling_ms=self.latency_ceiling_ms, premium=self.premium, reduced=self.reduced,
            rank_by=self.rank_by, standard_price=self.standard_price, subscribers=self.subscribers,
            discount=self.discount, electricity_price_per_kwh=self.electricity_price_per_kwh,
            carbon_price_per_tonne=self.carbon_price_per_tonne, slots=slots)


def tier_args(values: Mapping[str, Any], **given: Any) -> TierArgs:
    """``TierArgs`` from a command's parameters (its ``locals()``), each shared option by its name;
    ``given`` overrides one (price's ``--trace`` is repeatable: TierArgs holds the first)."""
    names = {f.name for f in fields(TierArgs)}
    return TierArgs(**{**{n: values[n] for n in names if n in values}, **given})


def load_trace(name: str, args: TierArgs) -> Trace:
    """One trace with the trace options of ``args`` (a bundled zone or a CSV)."""
    from greenbench.carbon import trace as traces

    return traces.load_trace(name, basis=args.basis, units=args.trace_units, forecast_column=args.forecast_column,
                             tz=args.tz, time_column=args.time_column, value_column=args.value_column)


def load_inputs(profile_path: Path, users_path: Path | None,
                args: TierArgs) -> tuple[Profile, Users | None, Trace]:
    """Profile, users (None: the library's default, the shipped example) and trace; each error is one
    line (under ``user_errors``)."""
    from greenbench import profile as prof
    from greenbench.price import users as usersmod

    p = prof.load(profile_path)
    u = None if users_path is None else usersmod.load_users(users_path)
    return p, u, load_trace(args.trace, args)
