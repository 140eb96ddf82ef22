"""greenbench simulate: replay a year of hourly carbon intensity under the two-tier policy."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from greenbench.cli.common import EXIT_CODES_HELP, err, user_errors
from greenbench.cli.price import (
    Section,
    _check_exclusive,
    emit_json,
    fmt_g,
    fmt_money,
    load_inputs,
    option_rows,
    pct,
    point_rows,
    pricing_options,
    render,
    trace_option,
    users_option,
    with_shared_options,
)

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


def simulate_sections(doc: dict) -> list[Section]:
    cur, lat = doc["currency"], doc["options"]["latency_statistic"]
    net = doc["total"]["net"] is not None
    rows = []
    for m in doc["months"] + [doc["total"]]:
        rows.append([m["month"] + ("" if m["complete"] or m["month"] == "total" else " (partial)"), str(m["hours"]),
                     str(m["high_hours"]), pct(m["p"]), f"{m['green_requests']:,.0f}", fmt_g(m["base_g"]),
                     fmt_g(m["tier_g"]), fmt_g(m["saved_g"]), pct(m["rho_population"]), pct(m["rho_green"]),
                     pct(m["rho_blind"]), fmt_money(m["discount_cost"], cur)]
                    + ([fmt_money(m["savings_value"], cur), fmt_money(m["net"], cur)] if net else []))
    pop = doc["population"]
    return [
        Section("options that ran", ["option", "value", "from"], option_rows(doc)),
        Section("operating points", ["", "point", "accuracy", f"latency {lat} ms", "energy J/request", "energy method",
                                     "chosen as"], point_rows(doc)),
        Section(f"month by month: {pop['subscribers']:,} subscribers, {pct(pop['uptake'])} on the green tier at "
                f"δ = {pct(pop['discount'], 2)} ({pop['discount_source']})",
                ["month", "hours", "high hours", "p", "green requests", "C without tier", "C with tier", "ΔC saved",
                 "ρ all", "ρ green", "ρ_blind", "discounts"] + (["energy+carbon value", "net"] if net else []), rows),
    ]


def simulate_summary(doc: dict, plots: list[Path]) -> list[str]:
    t = doc["total"]
    hours = doc["trace"]["hours"]
    span = "year" if hours in (8760, 8784) else f"over the trace ({hours:,} h)"
    lines = [f"{span}: {fmt_g(t['saved_g'])} saved of {fmt_g(t['base_g'])} ({pct(t['rho_population'])} of all subscribers' "
             f"emissions); on green users' requests ρ = {pct(t['rho_green'])} vs ρ_blind = {pct(t['rho_blind'])}"]
    if t["net"] is None:
        lines.append("provider's net: give --electricity-price-per-kwh and/or --carbon-price-per-tonne")
    else:
        lines.append(f"provider's net over the trace: {fmt_money(t['net'], doc['currency'])}")
    lines += [f"plot: {p}" for p in plots]
    if not plots:
        lines.append("plots: add --plots DIR for the trace and cumulative emissions (PNG and SVG)")
    return lines + [f"note: {n}" for n in doc["notes"]]


@with_shared_options
def simulate_command(
    profile: Path = typer.Argument(..., help="Profile JSON (from `greenbench profile`)."),
    users: Optional[Path] = users_option(),
    trace: str = trace_option(),
    plots: Optional[Path] = typer.Option(None, "--plots", help="Folder for the plots: <trace>-trace.png/.svg (high-carbon hours "
                                         "shaded) and <trace>-cumulative.png/.svg (emissions with and without the green tier)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON (schema greenbench/simulate v1)."),
    markdown: bool = typer.Option(False, "--markdown", help="Print Markdown tables."),
    shared: dict = None,
) -> None:
    from greenbench.price.simulate import simulate, to_dict, write_plots

    _check_exclusive(as_json, markdown)
    v = dict(shared, trace=trace)
    with user_errors():
        opts = pricing_options(v)
        p, u, tr = load_inputs(profile, users, v)
        sim = simulate(p, u, tr, opts)
        written = write_plots(sim, plots) if plots is not None else []
    doc = to_dict(sim)
    doc["users_default"] = users is None
    if users is None:
        err.print(f"users: the example shipped with greenbench ({u.source}); give --users for your own", highlight=False)
    if as_json:
        doc["plots"] = [str(x) for x in written]
        emit_json(doc)
        return
    render(simulate_sections(doc), simulate_summary(doc, written), markdown)
