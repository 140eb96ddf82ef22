"""greenbench price: the two-tier green subscription calculator (shared/docs/pricing-model.md).

Parses the options (the ones shared with `greenbench simulate` are in ``options``), calls the
library once (``greenbench.price.calculator.price``) and renders its typed result (``render``) or
prints the library's JSON document.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from greenbench.cli import options as opt
from greenbench.cli.common import (
    EXIT_CODES_HELP,
    check_out_paths,
    fail,
    note,
    stdout_format,
    user_errors,
    write_out,
)
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


TraceNames = Annotated[list[str] | None, typer.Option(
    "--trace", help="Bundled grid zone (e.g. DE, GB, US-CAL-CISO; `greenbench env --zones`) or the path of an "
    "hourly CSV trace; repeatable, or 'all' for every bundled zone, to rank zones side by side. "
    "Default: US-MIDA-PJM.")]
Objective = Annotated[str | None, typer.Option(
    "--objective", help="What the recommended offer maximises: carbon (most carbon saved with net >= 0; needs a "
    "price), cost (lowest cost per tonne avoided) or carbon-under-price (most carbon saved at a cost per tonne "
    "under --max-cost-per-tonne, else --carbon-price-per-tonne). Default: carbon with a price, else cost.")]
MaxCostPerTonne = Annotated[float | None, typer.Option(
    "--max-cost-per-tonne", help="For --objective carbon-under-price: the most the tier may cost per t CO2e "
    "avoided (an internal carbon budget), where it differs from the market --carbon-price-per-tonne in the net.")]


MIN_DRAWS = 40  # one draw beyond each 2.5% tail


def trace_names(given: list[str] | None) -> list[str]:
    """--trace as given ('all': every bundled zone), in order, each once (a file once, however spelt);
    two files of one name are refused, since a zone is named after its file."""
    from greenbench.carbon.trace import bundled_zones, is_bundled

    names: list[str] = []
    seen: dict[str, str] = {}
    stems: dict[str, str] = {}
    for t in given or [opt.DEFAULT_TRACE]:
        for name in bundled_zones() if t == "all" else [t]:
            key = str(Path(name).resolve()) if Path(name).is_file() else name
            if key in seen:
                continue
            if Path(name).is_file() and not is_bundled(name):
                stem = Path(name).stem
                if stem in stems:
                    raise fail(f"--trace {name} and {stems[stem]}: two traces named {stem!r}; rename one file")
                stems[stem] = name
            seen[key] = name
            names.append(name)
    return names


PricedPath = Annotated[Path, typer.Argument(
    help="Profile JSON (from `greenbench profile`), or the tradeoff.json that `greenbench fit` writes.")]
Mix = Annotated[bool, typer.Option(
    "--mix", help="Let the reduced tier R mix two frontier points (a share f of reduced requests at one, 1-f at "
    "the other), chosen by the same ranking; reports the mix and what it gains over the best single R.")]
MixUtilityFloor = Annotated[float | None, typer.Option(
    "--mix-utility-floor", help="With --mix: R keeps at least this ranking utility (0 to 1); a mix reaches it "
    "for less energy than a single point where the lower hull of energy against utility lies below the points.")]


def load_priced(path: Path) -> tuple[Any, bool]:
    """The profile at ``path``, or the points of the tradeoff.json that fit writes (True), from one
    read of the file: its schema says which it is."""
    from greenbench.price.mix import tradeoff_points
    from greenbench.profile.io import from_doc, read_doc
    from greenbench.tradeoff.outputs import TRADEOFF_SCHEMA

    doc = read_doc(path)
    if isinstance(doc, dict) and doc.get("schema") == TRADEOFF_SCHEMA:
        return tradeoff_points(doc, str(path)), True
    return from_doc(doc, path), False


def price_command(
    profile: PricedPath,
    users: opt.UsersPath = None,
    trace: TraceNames = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the result as JSON (schema greenbench/price v1) on stdout instead of the tables.")] = False,
    markdown: Annotated[bool, typer.Option(
        "--markdown", help="Print the tables as Markdown (for a PR or a doc) on stdout instead.")] = False,
    json_out: Annotated[Path | None, typer.Option(
        "--json-out", metavar="FILE", help="Also write the result as JSON to FILE.")] = None,
    markdown_out: Annotated[Path | None, typer.Option(
        "--markdown-out", metavar="FILE", help="Also write the tables as Markdown to FILE.")] = None,
    wide: Wide = False,
    plot: Annotated[Path | None, typer.Option(
        "--plot", metavar="FILE", help="Also draw the discount curve (uptake, carbon saved and cost per tonne "
        "against the discount): FILE and beside it the other of .png and .svg (curve.png: curve.png, curve.svg).")
    ] = None,
    export_slots_csv: Annotated[Path | None, typer.Option(
        "--export-slots", metavar="FILE", help="Also write every hour (intensity, forecast, high or not) as CSV.")] = None,
    objective: Objective = None,
    max_cost_per_tonne: MaxCostPerTonne = None,
    mix: Mix = False,
    mix_utility_floor: MixUtilityFloor = None,
    draws: Annotated[int, typer.Option(
        "--draws", min=0, max=100_000, help="Bootstrap draws of the profile's own uncertainty (per-repeat "
        "energy, accuracy as a binomial on its evaluation set, latency): a 95% interval beside each figure and how "
        "often H and R change; 0 turns it off.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the bootstrap draws.")] = 0,
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
    from greenbench.cli import price_view, render
    from greenbench.price import document as docmod
    from greenbench.price import zones as zonesmod
    from greenbench.price.users import load_users

    fmt = stdout_format(json=as_json, markdown=markdown)
    if 0 < draws < MIN_DRAWS:
        raise fail(f"--draws {draws}: a 95% interval needs at least {MIN_DRAWS} draws (0 turns them off)")
    names = trace_names(trace)
    check_out_paths(json_out, markdown_out, export_slots_csv, plot, inputs=(profile, users, *names, demand))
    if len(names) > 1 and (export_slots_csv is not None or plot is not None):
        raise fail("--export-slots and --plot are for one trace; give one --trace")
    args = opt.tier_args(locals(), trace=names[0])
    with user_errors():
        pricing_options = replace(args.pricing_options(), mix=mix, mix_utility_floor=mix_utility_floor)
        source, fitted = load_priced(profile)
        if fitted:
            conflicts = source.settings_conflicts(
                quality=quality, latency=None if latency == "p95" else latency,
                latency_kind=None if latency_kind == "e2e" else latency_kind,
                energy=None if energy == "gross" else energy)
            if conflicts:
                raise fail(conflicts[0])
        u = None if users is None else load_users(users)
        traces = [opt.load_trace(name, args) for name in names]
        if max_cost_per_tonne is not None and objective != "carbon-under-price":
            raise fail("--max-cost-per-tonne applies to --objective carbon-under-price")
        zones = zonesmod.price_zones(source, u, traces, pricing_options, objective, max_cost_per_tonne)
        boot, boot_skipped = None, None
        if draws > 0 and fitted:
            boot_skipped = "a tradeoff.json holds no per-repeat samples; price the profile for intervals"
        elif draws > 0 and len(traces) > 1:
            boot_skipped = "intervals are drawn for one trace at a time (give one --trace)"
        elif draws > 0 and mix:
            boot_skipped = "the bootstrap does not draw a mixed reduced tier yet (--mix)"
        elif draws > 0:
            from greenbench.price.bootstrap import bootstrap

            at = pricing_options
            rec = zones[0].decision.recommendation.row
            if len(zones) == 1 and pricing_options.discount is None and rec is not None:
                at = replace(pricing_options, discount=rec.discount)  # what the recommended offer buys
            boot = bootstrap(source, u if u is not None else load_users(), traces, at, draws=draws, seed=seed)
        if len(zones) == 1 and export_slots_csv is not None:
            export_slots(zones[0].result, export_slots_csv)
        if plot is not None:
            from greenbench.price.decision_plot import plot_curve

            written = plot_curve(zones[0].decision, zones[0].result, plot)
    render.users_note(zones[0].result)
    if export_slots_csv is not None:
        note(f"wrote {export_slots_csv}")
    if plot is not None:
        render.plot_notes(written)
    if boot_skipped is not None:
        note(f"uncertainty not drawn: {boot_skipped}")
    uncertainty = None
    if boot is not None:
        from greenbench.price.bootstrap import to_dict as boot_dict

        uncertainty = boot_dict(boot)
    if len(zones) > 1:
        doc = {**zonesmod.to_dict(zones), "uncertainty": uncertainty}
        sections, summary = price_view.zone_sections(zones), price_view.zone_summary(zones)
        headline: list[str] = []
    else:
        z = zones[0]
        doc = docmod.document(z.result, z.decision, uncertainty)
        headline = (price_view.decision_headline(z.decision) + price_view.hardware_headline(z.result)
                    + price_view.uncertainty_headline(boot))
        recommended = boot is not None and pricing_options.discount is None
        extra = [x for x in (price_view.uncertainty_section(boot, recommended), price_view.mix_section(z.result))
                 if x is not None]
        sections = price_view.decision_sections(z.result, z.decision) + extra + render.price_sections(z.result)
        summary = render.price_summary(z.result)
    if json_out is not None:
        write_out(json_out, docmod.dumps(doc))
    if markdown_out is not None:
        write_out(markdown_out, price_view.markdown_headline(headline) + to_markdown(sections, summary))
    if fmt == "json":
        print(docmod.dumps(doc), end="")
        return
    if fmt == "markdown":
        print(price_view.markdown_headline(headline) + to_markdown(sections, summary), end="")
        return
    render.render_first(headline)
    render.render(sections, summary, False, wide)
