"""greenbench price: the two-tier green subscription calculator (shared/docs/pricing-model.md).

Parses the options (the ones shared with `greenbench simulate` are in ``options``), calls the
library once (``greenbench.price.calculator.price``) and renders its typed result (``render``) or
prints the library's JSON document.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from greenbench.cli import options as opt
from greenbench.cli.common import EXIT_CODES_HELP, check_out_paths, fail, note, stdout_format, user_errors, write_out
from greenbench.cli.tables import Wide, to_markdown

if TYPE_CHECKING:
    from greenbench.price.calculator import PricingResult

HELP = (
    'Price a two-tier green subscription from a profile: utility per user type, the premium point H and '
    'the reduced point R (with the ranking), the high-carbon hours from the forecast, the realised share '
    'p and the ceiling p_max per month, the minimum discount δ* per user type, uptake at an offered '
    "discount, the carbon saved (ρ beside ρ_blind) and, with prices, the provider's net."
    "\n\n"
    'Defaults: --users is greenbench/data/users_example.yaml (shipped with greenbench: accuracy-'
    'sensitive, latency-sensitive and environmentally-conscious users), --trace US-MIDA-PJM (bundled 2023'
    " hourly data), forecast auto (a CSV trace's forecast column when it has one, else persistence: the "
    'same local hour a day earlier), cap mode exceedance with I_cap '
    'the 75th percentile of the forecast, p_max the largest monthly p, linear utility, consciousness as a'
    ' discount, the profile\'s own quality metric (accuracy, or perplexity: lower is better), p95 latency'
    ' (a batch\'s for batched inference, end to end for a generated request: --latency-kind ttft or tpot for'
    ' the time to first token or per output token), gross energy, utility thresholds from the users file'
    ' or else the Pareto frontier\'s range. The output says which options ran and where each threshold'
    ' came from. See docs/pricing.md for the model and every option.'
    "\n\n"
    + EXIT_CODES_HELP
)



def export_slots(res: PricingResult, path: Path) -> None:
    """Every hour of the trace (intensity, forecast, high or not, demand) as CSV."""
    import csv

    s = res.slots
    try:
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["datetime_utc", "month", "intensity_gco2e_per_kwh", "forecast_gco2e_per_kwh",
                        "high_by_cap", "high", "demand_weight"])
            for i in range(len(s.time_utc)):
                fc = s.forecast[i]
                w.writerow([str(s.time_utc[i]) + "Z", s.month_labels[s.month[i]], f"{s.intensity[i]:g}",
                            "" if not math.isfinite(fc) else f"{fc:g}", int(s.high_candidate[i]), int(s.high[i]),
                            f"{s.demand[i]:g}"])
    except OSError as e:
        raise fail(f"{path}: cannot write the slots CSV: {e.strerror or e}") from None


def price_command(
    profile: opt.ProfilePath,
    users: opt.UsersPath = None,
    trace: opt.TraceName = opt.DEFAULT_TRACE,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the result as JSON (schema greenbench/price v1) on stdout instead of the tables.")] = False,
    markdown: Annotated[bool, typer.Option(
        "--markdown", help="Print the tables as Markdown (for a PR or a doc) on stdout instead.")] = False,
    json_out: Annotated[Path | None, typer.Option(
        "--json-out", metavar="FILE", help="Also write the result as JSON to FILE.")] = None,
    markdown_out: Annotated[Path | None, typer.Option(
        "--markdown-out", metavar="FILE", help="Also write the tables as Markdown to FILE.")] = None,
    wide: Wide = False,
    export_slots_csv: Annotated[Path | None, typer.Option(
        "--export-slots", metavar="FILE", help="Also write every hour (intensity, forecast, high or not) as CSV.")] = None,
    basis: opt.Basis = "lca",
    trace_units: opt.TraceUnits = None,
    time_column: opt.TimeColumn = None,
    value_column: opt.ValueColumn = None,
    forecast_column: opt.ForecastColumn = None,
    tz: opt.Tz = None,
    forecast: opt.Forecast = "auto",
    cap_mode: opt.CapMode = "exceedance",
    cap_gco2e_per_kwh: opt.CapGco2ePerKwh = None,
    cap_quantile: opt.CapQuantile = None,
    daily_share: opt.DailyShare = None,
    p_max: opt.PMax = None,
    p_max_quantile: opt.PMaxQuantile = 1.0,
    truncation: opt.Truncation = "month",
    demand: opt.Demand = "flat",
    utility_shape: opt.UtilityShape = "linear",
    utility_k: opt.UtilityK = None,
    consciousness: opt.Consciousness = "discount",
    reward_per_gco2e: opt.RewardPerGco2e = None,
    latency: opt.Latency = "p95",
    latency_kind: opt.LatencyKind = "e2e",
    quality: opt.Quality = "auto",
    energy: opt.Energy = "gross",
    latency_slo_ms: opt.LatencySloMs = None,
    accuracy_floor: opt.AccuracyFloor = None,
    latency_ceiling_ms: opt.LatencyCeilingMs = None,
    premium: opt.Premium = None,
    reduced: opt.Reduced = None,
    rank_by: opt.RankBy = None,
    standard_price: opt.StandardPrice = None,
    subscribers: opt.Subscribers = None,
    discount: opt.Discount = None,
    electricity_price_per_kwh: opt.ElectricityPricePerKwh = None,
    carbon_price_per_tonne: opt.CarbonPricePerTonne = None,
) -> None:
    from greenbench.cli import render
    from greenbench.price.calculator import price, to_json

    fmt = stdout_format(json=as_json, markdown=markdown)
    check_out_paths(json_out, markdown_out, export_slots_csv, inputs=(profile, users, trace, demand))
    args = opt.TierArgs(
        trace=trace, basis=basis, trace_units=trace_units, time_column=time_column, value_column=value_column,
        forecast_column=forecast_column, tz=tz, forecast=forecast, cap_mode=cap_mode,
        cap_gco2e_per_kwh=cap_gco2e_per_kwh, cap_quantile=cap_quantile, daily_share=daily_share, p_max=p_max,
        p_max_quantile=p_max_quantile, truncation=truncation, demand=demand, utility_shape=utility_shape,
        utility_k=utility_k, consciousness=consciousness, reward_per_gco2e=reward_per_gco2e, latency=latency,
        latency_kind=latency_kind, quality=quality, energy=energy, latency_slo_ms=latency_slo_ms,
        accuracy_floor=accuracy_floor,
        latency_ceiling_ms=latency_ceiling_ms, premium=premium, reduced=reduced, rank_by=rank_by,
        standard_price=standard_price, subscribers=subscribers, discount=discount,
        electricity_price_per_kwh=electricity_price_per_kwh, carbon_price_per_tonne=carbon_price_per_tonne)
    with user_errors():
        pricing_options = args.pricing_options()
        p, u, tr = opt.load_inputs(profile, users, args)
        res = price(p, u, tr, pricing_options)
        if export_slots_csv is not None:
            export_slots(res, export_slots_csv)
    render.users_note(res)
    if export_slots_csv is not None:
        note(f"wrote {export_slots_csv}")
    if json_out is not None:
        write_out(json_out, to_json(res))
    if markdown_out is not None:
        write_out(markdown_out, to_markdown(render.price_sections(res), render.price_summary(res)))
    if fmt == "json":
        print(to_json(res), end="")
        return
    render.show_price(res, fmt == "markdown", wide)
