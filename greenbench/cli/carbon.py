"""greenbench carbon: the bundled grid zones, a trace's summary, and a profile's energy as carbon."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from greenbench.cli.command import Command, Group
from greenbench.cli.common import CONTEXT_SETTINGS, EXIT_CODES_HELP, fail, out, user_errors
from greenbench.cli.tables import Col, Section, Wide, constant, print_sections, sig

ATTRIBUTION = ("Contains carbon-intensity data © Electricity Maps (electricitymaps.com), 2023 hourly, "
               "ODbL v1.0; see greenbench/data/CARBON_DATA_NOTICE.md")
HELP = f"""Grid carbon intensity: list the 18 bundled zones (Electricity Maps 2023, hourly, ODbL),
validate and summarise a CSV trace, and convert a profile's energy per item to gCO2e.

{EXIT_CODES_HELP}"""

carbon_app = typer.Typer(cls=Group, help=HELP, no_args_is_help=True, add_completion=False,
                         context_settings=CONTEXT_SETTINGS)

BASIS_HELP = "Intensity basis of the bundled data: lca (life-cycle, Electricity Maps' default) or direct."
UNITS_HELP = ("Unit of a CSV trace's values, converted to gCO2e/kWh: g/kWh, kg/kWh (x1000), lb/MWh "
              "(x0.4536), kg/MWh, t/MWh, lb/kWh. Needed when the value column's header names no unit "
              "(or another unit than g/kWh).")
TZ_HELP = ("IANA time zone (e.g. Europe/Berlin) for local days and months; also the zone of CSV "
           "timestamps that carry none. Default: the zone's own clock, or UTC for a CSV.")


def _g(value: float | None, fmt: str = ".0f") -> str:
    return "—" if value is None else format(value, fmt)


def _dump(doc) -> None:
    out.print_json(json.dumps(doc, allow_nan=False))


@carbon_app.command("zones", cls=Command)
def zones_command(
    basis: str = typer.Option("lca", "--basis", help=BASIS_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout instead of the table."),
    wide: Wide = False,
) -> None:
    """List the bundled zones with their 2023 hourly statistics (gCO2e/kWh)."""
    from greenbench.carbon import intensity as carbon
    from greenbench.carbon import trace as traces

    with user_errors():
        info = {z.zone: z for z in traces.bundled_zone_info()}
        stats = [traces.summarize(traces.load_bundled(z, basis)) for z in info]
    if as_json:
        _dump({"basis": basis, "attribution": ATTRIBUTION, "zones": [
            {**s.to_dict(), "region": info[s.name].region, "file": info[s.name].file} for s in stats]})
        return
    columns = [Col("zone", "name"), Col("region", "text"), Col("local tz", "name", wide=True), Col("mean"),
               Col("min", wide=True), Col("p10"), Col("median", wide=True), Col("p90"), Col("max", wide=True),
               Col("CV"), Col("day max/min"), Col("estimated", wide=True)]
    rows = [[s.name + (" (default)" if s.name == carbon.DEFAULT_ZONE else ""), info[s.name].region, s.tz,
             _g(s.mean), _g(s.min), _g(s.p10), _g(s.median), _g(s.p90), _g(s.max), _g(s.cv, ".2f"),
             _g(s.daily_max_min_ratio_median, ".2f"), f"{s.estimated_share:.0%}"] for s in stats]
    legend = ["intensities in gCO2e/kWh", "p10/p90: percentiles of the hours", "CV: coefficient of variation",
              "day max/min: median over the days of the day's highest over its lowest hour"]
    print_sections(out, [Section(f"grid zones, 2023 hourly intensity ({basis})", columns, rows, legend,
                                 wide_legend=["estimated: share of hours Electricity Maps estimated"])], wide=wide)
    out.print(ATTRIBUTION, highlight=False, soft_wrap=False)


@carbon_app.command("show", cls=Command)
def show_command(
    trace: str = typer.Argument(..., help="A bundled zone id (see `greenbench carbon zones`) or a CSV trace."),
    basis: str = typer.Option("lca", "--basis", help=BASIS_HELP),
    trace_units: str | None = typer.Option(None, "--trace-units", help=UNITS_HELP),
    tz: str | None = typer.Option(None, "--tz", help=TZ_HELP),
    time_column: str | None = typer.Option(None, "--time-column", help="CSV column of the hour's start time."),
    value_column: str | None = typer.Option(None, "--value-column", help="CSV column of the intensity."),
    forecast_column: str | None = typer.Option(None, "--forecast-column", help="CSV column of a forecast intensity."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout instead of the table."),
) -> None:
    """Validate a trace (timestamps, time zone, gaps, duplicates, NaN, negatives, units) and summarise it."""
    from greenbench.carbon import trace as traces

    with user_errors():
        tr = traces.load_trace(trace, basis=basis, units=trace_units, forecast_column=forecast_column, tz=tz,
                               time_column=time_column, value_column=value_column)
        s = traces.summarize(tr)
    if as_json:
        _dump(s.to_dict())
        return
    rows = [
        ("source", s.source), ("basis", s.basis or "not stated"), ("hours (UTC)", f"{s.start_utc} to {s.end_utc}"),
        ("local days in", s.tz), ("mean", _g(s.mean, ".1f")),
        ("min / p10 / median / p90 / max", " / ".join(_g(v, ".1f") for v in (s.min, s.p10, s.median, s.p90, s.max))),
        ("CV", _g(s.cv, ".3f")), ("full local days", str(s.full_days)),
        ("daily max/min, median", _g(s.daily_max_min_ratio_median, ".2f")),
        ("daily range, median (gCO2e/kWh)", _g(s.daily_range_median, ".1f")),
        ("estimated hours", "—" if s.estimated_share is None else f"{s.estimated_share:.1%}"),
        ("forecast MAE (gCO2e/kWh)", _g(s.forecast_mae, ".1f")),
    ]
    t = Table.grid(padding=(0, 2))
    t.add_column(no_wrap=True, style="bold")
    t.add_column(overflow="fold")
    for k, v in rows:
        t.add_row(k, Text(v))
    out.print(Text(f"trace {s.name}: valid, {s.hours} hours, gCO2e/kWh", style="bold"), soft_wrap=False)
    out.print(t)
    for k, why in s.reasons.items():
        out.print(f"{k}: null ({why})", highlight=False, soft_wrap=False)
    if tr.source.startswith("Electricity Maps"):
        out.print(ATTRIBUTION, highlight=False, soft_wrap=False)


@carbon_app.command("convert", cls=Command)
def convert_command(
    profile: Path = typer.Argument(..., help="A profile JSON written by `greenbench profile`."),
    zone: str | None = typer.Option(None, "--zone", help="Bundled zone id or CSV trace (default US-MIDA-PJM)."),
    at: str | None = typer.Option(None, "--at", help="One hour, e.g. 2023-07-01T14:00Z (with Z or an offset)."),
    month: int | None = typer.Option(None, "--month", help="Mean of a calendar month 1-12 (local time). Default: the annual (whole-trace) mean."),
    basis: str = typer.Option("lca", "--basis", help=BASIS_HELP),
    pue: float = typer.Option(1.0, "--pue", help="Power usage effectiveness applied to carbon (default 1.0)."),
    trace_units: str | None = typer.Option(None, "--trace-units", help=UNITS_HELP),
    tz: str | None = typer.Option(None, "--tz", help=TZ_HELP),
    time_column: str | None = typer.Option(None, "--time-column", help="CSV column of the hour's start time."),
    value_column: str | None = typer.Option(None, "--value-column", help="CSV column of the intensity."),
    live: bool = typer.Option(False, "--live", help="Use the current intensity from a live API instead of a trace (network)."),
    live_provider: str = typer.Option("auto", "--live-provider", help="auto, electricitymaps ($ELECTRICITYMAPS_TOKEN) or uk (GB, no token)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout instead of the table."),
    wide: Wide = False,
) -> None:
    """Convert each ok record's energy per item to gCO2e per item (and per 1M items) at a zone and time."""
    from greenbench import profile as prof
    from greenbench.carbon import intensity as carbon
    from greenbench.carbon import trace as traces

    with user_errors():
        doc = prof.load(profile)
        name = zone or carbon.DEFAULT_ZONE
        if live:
            if at is not None or month is not None:
                raise fail("--live takes the current intensity; drop --at and --month")
            from greenbench.carbon.live import fetch_live

            carbon.check_pue(pue)  # before any request
            got = fetch_live(name, provider=live_provider, basis=basis)
            intensity = carbon.Intensity(got.gco2e_per_kwh, got.source, zone=got.zone, basis=got.basis, pue=pue)
        else:
            tr = traces.load_trace(name, basis=basis, units=trace_units, tz=tz, time_column=time_column,
                                   value_column=value_column)
            intensity = traces.trace_intensity(tr, at=at, month=month, pue=pue)
        rows = traces.profile_carbon(doc.records, intensity)
    skipped = len(doc.records) - len(rows)
    if as_json:
        _dump({"profile": str(profile), "intensity": intensity.to_dict(), "records": rows,
               "records_not_ok": skipped})
        return
    out.print(f"intensity: {intensity.gco2e_per_kwh:.1f} gCO2e/kWh x PUE {intensity.pue:g} "
              f"({intensity.source})", highlight=False, soft_wrap=False)
    same_prec = constant(r["precision"] for r in rows)
    same_dev = constant(r["device"] for r in rows)
    same_method = constant(r["energy_method"] for r in rows)
    batched = all(r["batch_size"] is not None for r in rows)  # else served points: concurrency, rate
    columns = [Col("model", "name"), Col("batch") if batched else Col("setting", "name"),
               Col("prec", "name", wide=same_prec is not None),
               Col("device", "name", wide=same_dev is not None), Col("J/item"),
               Col("method", "name", wide=same_method is not None), Col("gCO2e/item"), Col("g per 1M"),
               Col("net g/item", wide=True)]
    body = [[r["model"], str(r["batch_size"]) if batched else r["setting"], r["precision"], r["device"], sig(r["energy_j_per_item"]),
             r["energy_method"], sig(r["co2e_g_per_item"]), sig(r["co2e_g_per_1m_items"]),
             sig(r["co2e_net_g_per_item"])] for r in rows]
    same = [x for x in (same_prec, same_dev) if x]
    legend = ["J/item: energy per item", "gCO2e/item: carbon per item", "g per 1M: gCO2e per million items",
              ("all points " + " on ".join(same)) if same else None,
              f"energy method {same_method}" if same_method else None]
    print_sections(out, [Section(f"carbon per item, {profile.name}", columns, body, legend,
                                 wide_legend=["net g/item: carbon of the energy above idle"])], wide=wide)
    unmetered = sorted({r["energy_method"] for r in rows if not r["energy_is_measurement"]})
    if unmetered:
        out.print(f"method {', '.join(repr(m) for m in unmetered)}: the energy is not a measurement (not metered), "
                  "so its carbon is not one either", highlight=False, soft_wrap=False)
    for r in rows:
        if r["reason"]:
            out.print(f"{r['label']}: carbon null ({r['reason']})", highlight=False, soft_wrap=False)
    if skipped:
        out.print(f"{skipped} record(s) not ok (failed or skipped) have no energy and are left out", highlight=False, soft_wrap=False)
