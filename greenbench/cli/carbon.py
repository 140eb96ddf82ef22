"""greenbench carbon: the bundled grid zones, a trace's summary, and a profile's energy as carbon."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from greenbench.cli.common import EXIT_CODES_HELP, fail, out, user_errors

ATTRIBUTION = ("Contains carbon-intensity data © Electricity Maps (electricitymaps.com), 2023 hourly, "
               "ODbL v1.0; see greenbench/data/CARBON_DATA_NOTICE.md")
HELP = f"""Grid carbon intensity: list the 18 bundled zones (Electricity Maps 2023, hourly, ODbL),
validate and summarise a CSV trace, and convert a profile's energy per item to gCO2e.

{EXIT_CODES_HELP}"""

carbon_app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False)

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


@carbon_app.command("zones")
def zones_command(
    basis: str = typer.Option("lca", "--basis", help=BASIS_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of the table."),
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
    t = Table(title=f"grid zones, 2023 hourly intensity ({basis}, gCO2e/kWh)", caption=ATTRIBUTION)
    for col in ("zone", "region", "local tz", "mean", "min", "p10", "median", "p90", "max", "CV",
                "daily max/min (median)", "estimated hours"):
        t.add_column(col, justify="left" if col in ("zone", "region", "local tz") else "right")
    for s in stats:
        t.add_row(s.name + (" (default)" if s.name == carbon.DEFAULT_ZONE else ""), info[s.name].region, s.tz,
                  _g(s.mean), _g(s.min), _g(s.p10), _g(s.median), _g(s.p90), _g(s.max), _g(s.cv, ".2f"),
                  _g(s.daily_max_min_ratio_median, ".2f"), f"{s.estimated_share:.0%}")
    out.print(t)


@carbon_app.command("show")
def show_command(
    trace: str = typer.Argument(..., help="A bundled zone id (see `greenbench carbon zones`) or a CSV trace."),
    basis: str = typer.Option("lca", "--basis", help=BASIS_HELP),
    trace_units: str | None = typer.Option(None, "--trace-units", help=UNITS_HELP),
    tz: str | None = typer.Option(None, "--tz", help=TZ_HELP),
    time_column: str | None = typer.Option(None, "--time-column", help="CSV column of the hour's start time."),
    value_column: str | None = typer.Option(None, "--value-column", help="CSV column of the intensity."),
    forecast_column: str | None = typer.Option(None, "--forecast-column", help="CSV column of a forecast intensity."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of the table."),
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
    t = Table(title=f"trace {s.name}: valid, {s.hours} hours, gCO2e/kWh", show_header=False)
    t.add_column("field")
    t.add_column("value")
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
    for k, v in rows:
        t.add_row(k, v)
    out.print(t)
    for k, why in s.reasons.items():
        out.print(f"{k}: null ({why})", highlight=False)
    if tr.source.startswith("Electricity Maps"):
        out.print(ATTRIBUTION, highlight=False)


@carbon_app.command("convert")
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
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of the table."),
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
              f"({intensity.source})", highlight=False)
    t = Table(title=f"carbon per item, {profile.name}")
    for col in ("model", "batch", "precision", "device", "energy J/item", "method", "gCO2e/item",
                "gCO2e per 1M items", "net gCO2e/item"):
        t.add_column(col, justify="right" if col not in ("model", "precision", "device", "method") else "left")
    for r in rows:
        t.add_row(r["model"], str(r["batch_size"]), r["precision"], r["device"], _g(r["energy_j_per_item"], ".3g"),
                  r["energy_method"], _g(r["co2e_g_per_item"], ".3g"), _g(r["co2e_g_per_1m_items"], ".4g"),
                  _g(r["co2e_net_g_per_item"], ".3g"))
    out.print(t)
    unmetered = sorted({r["energy_method"] for r in rows if not r["energy_is_measurement"]})
    if unmetered:
        out.print(f"method {', '.join(repr(m) for m in unmetered)}: the energy is not a measurement (not metered), "
                  "so its carbon is not one either", highlight=False)
    for r in rows:
        if r["reason"]:
            out.print(f"{r['model']} b{r['batch_size']}: carbon null ({r['reason']})", highlight=False)
    if skipped:
        out.print(f"{skipped} record(s) not ok (failed or skipped) have no energy and are left out", highlight=False)
