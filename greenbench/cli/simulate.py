"""greenbench simulate: replay a year of hourly carbon intensity under the two-tier policy.

It takes every option of `greenbench price` (``options``), calls the library once
(``greenbench.price.simulate.simulate``), and renders its typed result (``render``) or prints the
library's JSON document.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from greenbench.cli import options as opt
from greenbench.cli.common import EXIT_CODES_HELP, check_out_paths, stdout_format, user_errors, write_out
from greenbench.cli.tables import Wide, to_markdown

HELP = (
    'Replay an hourly carbon trace (a year of the bundled 2023 data by default) hour by hour under the '
    'two-tier policy, and report month by month: the hours degraded, the share p, the emissions of all '
    'subscribers with and without the green tier, ρ of the green users beside ρ_blind, the discounts paid'
    " and, with prices, the provider's net. --plots DIR writes PNG and SVG plots of the trace with the "
    'high-carbon hours shaded and of the cumulative emissions.'
    "\n\n"
    'It takes every option of `greenbench price` (same defaults, --users '
    'greenbench/data/users_example.yaml and --trace US-MIDA-PJM included; the high hours are chosen by '
    'the same code). Without --discount, the discount is the smallest that every user type takes.'
    "\n\n"
    + EXIT_CODES_HELP
)


def simulate_command(
    profile: opt.ProfilePath,
    users: opt.UsersPath = None,
    trace: opt.TraceName = opt.DEFAULT_TRACE,
    plots: Annotated[Path | None, typer.Option(
        "--plots", help="Folder for the plots: <trace>-trace.png/.svg (high-carbon hours shaded) and "
        "<trace>-cumulative.png/.svg (emissions with and without the green tier).")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the result as JSON (schema greenbench/simulate v1) on stdout instead of the tables.")
    ] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the tables as Markdown on stdout instead.")] = False,
    json_out: Annotated[Path | None, typer.Option(
        "--json-out", metavar="FILE", help="Also write the result as JSON to FILE.")] = None,
    markdown_out: Annotated[Path | None, typer.Option(
        "--markdown-out", metavar="FILE", help="Also write the tables as Markdown to FILE.")] = None,
    wide: Wide = False,
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
    p_max_basis: opt.PMaxBasis = "worst",
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
    from greenbench.price.simulate import simulate, to_json, write_plots

    fmt = stdout_format(json=as_json, markdown=markdown)
    check_out_paths(json_out, markdown_out, inputs=(profile, users, trace, demand))
    args = opt.tier_args(locals())
    with user_errors():
        pricing_options = args.pricing_options()
        p, u, tr = opt.load_inputs(profile, users, args)
        sim = simulate(p, u, tr, pricing_options)
        written = write_plots(sim, plots) if plots is not None else []
    render.users_note(sim.pricing)
    render.plot_notes(written)
    if json_out is not None:
        write_out(json_out, to_json(sim, written))
    if markdown_out is not None:
        write_out(markdown_out, to_markdown(render.simulate_sections(sim), render.simulate_summary(sim)))
    if fmt == "json":
        print(to_json(sim, written), end="")
        return
    render.show_simulation(sim, fmt == "markdown", wide)
