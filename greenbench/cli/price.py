"""greenbench price: the two-tier green subscription calculator (shared/docs/pricing-model.md).

The options shared with `greenbench simulate` are defined here once (``*_option`` factories and
``pricing_options``); the output is built once as plain sections and rendered as Rich tables or
Markdown.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from greenbench.cli.common import EXIT_CODES_HELP, err, fail, out, user_errors

DEFAULT_TRACE = "US-MIDA-PJM"

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
    ' discount, p95 latency, gross energy. The output says which options ran. See docs/pricing.md for the'
    ' model and every option.'
    "\n\n"
    + EXIT_CODES_HELP
)


# ------------------------------------------------------------------------------------------------
# options shared with simulate


def users_option():
    return typer.Option(None, "--users", help="Users file (YAML). Default: the shipped example, users_example.yaml.")


def trace_option():
    return typer.Option(DEFAULT_TRACE, "--trace", help="Bundled grid zone (e.g. DE, GB, US-CAL-CISO; "
                        "`greenbench env --zones`) or the path of an hourly CSV trace. Default: US-MIDA-PJM.")


def common_params():
    """The shared options as (name, typer.Option) pairs, for both commands' signatures."""
    return dict(
        basis=typer.Option("lca", "--basis", help="Intensity basis of a bundled zone: lca (life-cycle) or direct."),
        trace_units=typer.Option(None, "--trace-units", help="Units of a CSV trace's values, converted to gCO2e/kWh "
                                 "(g/kWh, kg/MWh, kg/kWh, t/MWh, lb/MWh, lb/kWh). Needed when the value column's header "
                                 "names no unit; kg/kWh and lb/MWh are refused unless named."),
        time_column=typer.Option(None, "--time-column", help="Column of a CSV trace holding the hour's start time "
                                 "(default: the first whose name has 'time' or 'date')."),
        value_column=typer.Option(None, "--value-column", help="Column of a CSV trace holding the intensity "
                                  "(default: intensity_gco2e_per_kwh, the Electricity Maps column, or the one column named for it)."),
        forecast_column=typer.Option(None, "--forecast-column", help="Column of a CSV trace holding the forecast."),
        tz=typer.Option(None, "--tz", help="IANA time zone for days and billing months (default: the zone's own; UTC for a CSV without one)."),
        forecast=typer.Option("auto", "--forecast", help="How high hours are foreseen: perfect (the actual trace), persistence "
                              "(the same local hour a day earlier), column (the trace's forecast column), or auto: column if the "
                              "trace has one, else persistence."),
        cap_mode=typer.Option("exceedance", "--cap-mode", help="exceedance: hours with forecast > I_cap; average: the dirtiest "
                              "hours of each day until the day's mean is <= I_cap; share: the dirtiest --daily-share of each day."),
        cap_gco2e_per_kwh=typer.Option(None, "--cap-gco2e-per-kwh", help="I_cap in gCO2e/kWh. Default: a quantile of the forecast (--cap-quantile)."),
        cap_quantile=typer.Option(None, "--cap-quantile", help="I_cap as this quantile of the forecast (default 0.75 for exceedance, 0.5 for average)."),
        daily_share=typer.Option(None, "--daily-share", help="share mode: q, the dirtiest share of each day's demand, to the nearest hour (default 0.25)."),
        p_max=typer.Option(None, "--p-max", help="Contractual ceiling on the share degraded per month. Default: derived from the trace (--p-max-quantile)."),
        p_max_quantile=typer.Option(1.0, "--p-max-quantile", help="Derived p_max: this quantile of the complete months' p (default 1 = the maximum)."),
        truncation=typer.Option("month", "--truncation", help="How p <= p_max is kept: month (drop the month's least dirty high hours; "
                                "the specification) or day-ahead (day by day until the month's budget is spent)."),
        demand=typer.Option("flat", "--demand", help="Demand profile n(t): flat, or a CSV of 24 local-hour weights (hour,weight)."),
        utility_shape=typer.Option("linear", "--utility-shape", help="Bend of the normalised accuracy and latency terms: linear, log or sigmoid."),
        utility_k=typer.Option(None, "--utility-k", help="Curvature of log (default 9) and sigmoid (default 10)."),
        consciousness=typer.Option("discount", "--consciousness", help="discount: δ* = (1-e)·p_max·N·V·(U_H-U_R)/P; "
                                   "reward: δ* = max(0, p_max·N·V·(U_H-U_R) - e·β·ΔC)/P."),
        reward_per_gco2e=typer.Option(None, "--reward-per-gco2e", help="β for --consciousness reward: currency per gram CO2e saved."),
        latency=typer.Option("p95", "--latency", help="Latency statistic per request: p95, p50, p90, p99 or mean."),
        energy=typer.Option("gross", "--energy", help="Energy basis: gross (what the meter saw) or net (minus idle)."),
        latency_slo_ms=typer.Option(None, "--latency-slo-ms", help="H is the most accurate frontier point meeting this latency."),
        accuracy_floor=typer.Option(None, "--accuracy-floor", help="R must keep at least this accuracy."),
        latency_ceiling_ms=typer.Option(None, "--latency-ceiling-ms", help="R must keep latency at most this."),
        premium=typer.Option(None, "--premium", help="Name H by its label (e.g. 'cnn-64 b256 fp32 cpu')."),
        reduced=typer.Option(None, "--reduced", help="Name R by its label."),
        rank_by=typer.Option(None, "--rank-by", help="Rank R by this user type's utility (default: the share-weighted mean)."),
        standard_price=typer.Option(None, "--standard-price", help="P, the standard price per billing period. Default: the users "
                                    "file's, else each type's full valuation N·V·U_H."),
        subscribers=typer.Option(None, "--subscribers", help="Subscribers for the totals (default: the users file's, else 1000)."),
        discount=typer.Option(None, "--discount", help="Offered discount δ as a share of P (0.1 = 10%). Default: the smallest that every type takes."),
        electricity_price_per_kwh=typer.Option(None, "--electricity-price-per-kwh", help="π_e, for the provider's net."),
        carbon_price_per_tonne=typer.Option(None, "--carbon-price-per-tonne", help="π_c per tonne CO2e, for the provider's net."),
    )


def pricing_options(v: dict):
    """Command values -> PricingOptions (validated by the library)."""
    from greenbench.price.calculator import PricingOptions
    from greenbench.price.slots import SlotPolicy

    demand = v["demand"]
    if demand != "flat" and not Path(demand).is_file():
        raise fail(f"--demand {demand!r}: give 'flat' or the path of a CSV with columns hour,weight")
    for name in ("cap_gco2e_per_kwh", "cap_quantile", "daily_share", "p_max", "p_max_quantile", "utility_k",
                 "reward_per_gco2e", "latency_slo_ms", "accuracy_floor", "latency_ceiling_ms", "standard_price",
                 "discount", "electricity_price_per_kwh", "carbon_price_per_tonne"):
        x = v.get(name)
        if x is not None and not math.isfinite(x):
            raise fail(f"--{name.replace('_', '-')} takes a finite number")
    slots = SlotPolicy(forecast=v["forecast"], cap_mode=v["cap_mode"], cap_gco2e_per_kwh=v["cap_gco2e_per_kwh"],
                       cap_quantile=v["cap_quantile"], daily_share=v["daily_share"], p_max=v["p_max"],
                       p_max_quantile=v["p_max_quantile"], truncation=v["truncation"], demand=demand)
    return PricingOptions(
        latency=v["latency"], energy=v["energy"], utility_shape=v["utility_shape"], utility_k=v["utility_k"],
        consciousness=v["consciousness"], reward_per_gco2e=v["reward_per_gco2e"], latency_slo_ms=v["latency_slo_ms"],
        accuracy_floor=v["accuracy_floor"], latency_ceiling_ms=v["latency_ceiling_ms"], premium=v["premium"],
        reduced=v["reduced"], rank_by=v["rank_by"], standard_price=v["standard_price"], subscribers=v["subscribers"],
        discount=v["discount"], electricity_price_per_kwh=v["electricity_price_per_kwh"],
        carbon_price_per_tonne=v["carbon_price_per_tonne"], slots=slots)


def load_inputs(profile_path: Path, users_path: Optional[Path], v: dict):
    """Profile, users and trace (each error one line, exit 2)."""
    from greenbench import profile as prof
    from greenbench.carbon import trace as traces
    from greenbench.price import users as usersmod

    p = prof.load(profile_path)
    u = usersmod.load_users(users_path)
    tr = traces.load_trace(v["trace"], basis=v["basis"], units=v["trace_units"], forecast_column=v["forecast_column"],
                           tz=v["tz"], time_column=v["time_column"], value_column=v["value_column"])
    return p, u, tr


# ------------------------------------------------------------------------------------------------
# formatting


def fmt_g(x: float | None) -> str:
    """Grams CO2e with a readable unit (t, kg, g, mg, µg, ng)."""
    if x is None:
        return "-"
    if x == 0:
        return "0 g"
    for div, unit in ((1e6, "t"), (1e3, "kg"), (1.0, "g"), (1e-3, "mg"), (1e-6, "µg"), (1e-9, "ng")):
        if abs(x) >= div:
            return f"{x / div:.3g} {unit}"
    return f"{x:.3g} g"


def fmt_money(x: float | None, cur: str) -> str:
    if x is None:
        return "-"
    return f"{x:,.2f} {cur}" if abs(x) >= 0.01 or x == 0 else f"{x:.3g} {cur}"


def pct(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x * 100:.{digits}f}%"


def num(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


@dataclass
class Section:
    title: str
    columns: list[str]
    rows: list[list[str]]


def option_rows(doc: dict) -> list[list[str]]:
    o = doc["options"]
    cap = "-" if o["cap_gco2e_per_kwh"] is None else f"{o['cap_gco2e_per_kwh']:.1f} gCO2e/kWh"
    shape = o["utility_shape"] + ("" if o["utility_k"] is None else f" (k = {o['utility_k']:g})")
    rows = [
        ["trace", f"{doc['trace']['name']} ({doc['trace']['basis'] or 'basis unknown'}, {doc['trace']['hours']} h "
                  f"from {doc['trace']['start_utc']}, days in {doc['trace']['tz'] or 'UTC'})", doc["trace"]["source"]],
        ["users", "greenbench/data/users_example.yaml" if doc.get("users_default") else doc["users_file"],
         "default: shipped example" if doc.get("users_default") else "--users"],
        ["utility shape", shape, "--utility-shape"],
        ["latency statistic", o["latency_statistic"], "--latency"],
        ["energy basis", o["energy_basis"], "--energy"],
        ["forecast", o["forecast"], "--forecast " + o["forecast_option"]],
        ["cap mode", o["cap_mode"], "--cap-mode"],
        ["I_cap" if o["cap_mode"] != "share" else "daily share q",
         cap if o["cap_mode"] != "share" else f"{o['daily_share']:g}", o["cap_source"] if o["cap_mode"] != "share" else "--daily-share"],
        ["p_max", f"{o['p_max']:.3f}", o["p_max_source"]],
        ["truncation to p_max", o["truncation"], "--truncation"],
        ["demand profile n(t)", o["demand_profile"], f"--demand; a billing period is {o['billing_period_hours']:g} h"],
        ["consciousness", o["consciousness"] + ("" if o["reward_per_gco2e"] is None else f" (β = {o['reward_per_gco2e']:g} {doc['currency']}/gCO2e)"), "--consciousness"],
        ["R ranked by", o["rank_by"], "--rank-by"],
        ["subscribers", f"{o['subscribers']:,}", "--subscribers, users file, or 1000"],
        ["H must meet", "none" if o["latency_slo_ms"] is None else f"latency <= {o['latency_slo_ms']:g} ms",
         "--latency-slo-ms" if o["premium"] is None else "ignored: --premium names H"],
        ["R must meet", "; ".join(x for x in (
            None if o["accuracy_floor"] is None else f"accuracy >= {o['accuracy_floor']:g}",
            None if o["latency_ceiling_ms"] is None else f"latency <= {o['latency_ceiling_ms']:g} ms")
            if x) or "none", "--accuracy-floor, --latency-ceiling-ms" if o["reduced"] is None else "ignored: --reduced names R"],
        ["offered discount δ", pct(doc["population"]["discount"], 2), doc["population"]["discount_source"]],
        ["prices", "none: no net" if o["electricity_price_per_kwh"] is None and o["carbon_price_per_tonne"] is None else
         f"π_e {o['electricity_price_per_kwh'] or 0:g} {doc['currency']}/kWh, π_c {o['carbon_price_per_tonne'] or 0:g} "
         f"{doc['currency']}/t CO2e", "--electricity-price-per-kwh, --carbon-price-per-tonne"],
    ]
    return rows


def point_rows(doc: dict) -> list[list[str]]:
    rows = []
    for role in ("premium", "reduced"):
        p = doc[role]
        rows.append([("H" if role == "premium" else "R"), p["label"], f"{p['accuracy']:.4g}", f"{p['latency_ms']:.3g}",
                     f"{p['energy_j_per_item']:.3g}", p["energy_method"] + ("" if p["energy_is_measurement"] else " (not a measurement)"),
                     p["how"]])
    return rows


def price_sections(doc: dict) -> list[Section]:
    cur, lat = doc["currency"], doc["options"]["latency_statistic"]
    secs = [Section("options that ran", ["option", "value", "from"], option_rows(doc)),
            Section("operating points", ["", "point", "accuracy", f"latency {lat} ms", "energy J/request", "energy method", "chosen as"],
                    point_rows(doc))]
    rk = [[str(r["rank"] or "-"), r["label"], f"{r['accuracy']:.4g}", f"{r['latency_ms']:.3g}", f"{r['energy_j_per_item']:.3g}",
           f"{r['utility']:.3f}", f"{r['energy_saved_j_per_item']:.3g}", f"{r['utility_lost']:.3f}", num(r["score"]),
           r["status"]] for r in doc["ranking"]["rows"]]
    secs.append(Section(f"R ranking: energy saved per unit of utility lost, (E_H - E_k)/(U_H - U_k), by {doc['ranking']['by']}",
                        ["rank", "frontier point", "accuracy", f"latency {lat} ms", "energy J", "U", "E_H - E_k J", "U_H - U_k",
                         "score J/U", "status"], rk))
    pop = doc["population"]
    ut = []
    for u in doc["user_types"]:
        ut.append([u["name"], pct(u["share"], 0), f"{u['u_h']:.3f}", f"{u['u_r']:.3f}", fmt_money(u["standard_price"], cur),
                   pct(u["delta_star"], 2), "yes" if u["takes_up"] else "no", fmt_g(u["saved_g_per_period"]),
                   fmt_money(u["discount_cost_per_period"], cur) if u["takes_up"] else "-",
                   fmt_money(u["net_per_user_per_period"], cur) if u["takes_up"] else "-"])
    secs.append(Section(f"user types (δ* = minimum discount, share of P; uptake at δ = {pct(pop['discount'], 2)}, {pop['discount_source']})",
                        ["user type", "share", "U_H", "U_R", "P per period", "δ*", "takes green tier", "ΔC per user per period",
                         "discount δ·P", "net per user"], ut))
    ms = [[m["month"] + ("" if m["complete"] else " (partial)"), str(m["hours"]), str(m["high_hours"]), pct(m["p_candidate"]),
           pct(m["p"]), pct(m["p_max"]), fmt_g(m["saved_g_per_request"] * 1000), fmt_g(m["c_base_g_per_request"] * 1000),
           pct(m["rho"]), pct(m["rho_blind"])] for m in doc["months"]]
    secs.append(Section("months (per 1,000 green requests: ΔC saved and C_base)",
                        ["month", "hours", "high hours", "p before p_max", "p", "p_max", "ΔC /1k req", "C_base /1k req", "ρ", "ρ_blind"], ms))
    return secs


def price_summary(doc: dict) -> list[str]:
    c, pop, cur = doc["carbon"], doc["population"], doc["currency"]
    ratio = "-" if c["rho_over_rho_blind"] is None else f"{c['rho_over_rho_blind']:.2f}x"
    lines = [
        f"high-carbon hours: {doc['high_hours']} of {doc['trace']['hours']}; realised p = {pct(c['p'])} of green requests "
        f"(p_max {doc['options']['p_max']:.3f})",
        f"carbon per green user: ρ = {pct(c['rho'])} saved vs ρ_blind = {pct(c['rho_blind'])} for the same share at random "
        f"hours ({ratio}: what carbon-awareness adds)",
        f"population per billing period: {pop['subscribers']:,} subscribers, uptake {pct(pop['uptake'])} at δ = "
        f"{pct(pop['discount'], 2)}; ΔC = {fmt_g(pop['saved_g_per_period'])} of C_base = {fmt_g(pop['c_base_g_per_period'])} "
        f"({pct(pop['rho'])}); discount cost {fmt_money(pop['discount_cost_per_period'], cur)}",
    ]
    if doc["uptake_curve"]:
        lines.append("uptake by discount: " + ", ".join(f"δ >= {pct(c['discount'], 2)}: {pct(c['uptake'], 0)}"
                                                         for c in doc["uptake_curve"]))
    if pop["net_per_period"] is not None:
        lines.append(f"provider's net per billing period: {fmt_money(pop['savings_value_per_period'], cur)} of electricity and carbon "
                     f"saved - {fmt_money(pop['discount_cost_per_period'], cur)} of discounts = {fmt_money(pop['net_per_period'], cur)}")
    else:
        lines.append("provider's net: give --electricity-price-per-kwh and/or --carbon-price-per-tonne")
    return lines + [f"note: {n}" for n in doc["notes"]]


def render(sections: list[Section], summary: list[str], markdown: bool) -> None:
    if markdown:
        print(to_markdown(sections, summary), end="")
        return
    for s in sections:
        t = Table(title=s.title, title_justify="left")
        for c in s.columns:
            t.add_column(c)
        for r in s.rows:
            t.add_row(*r)
        out.print(t)
    for line in summary:
        out.print(line, highlight=False, markup=False)


def _md_cell(x: str) -> str:
    return x.replace("|", "\\|").replace("\n", " ")


def to_markdown(sections: list[Section], summary: list[str]) -> str:
    parts = []
    for s in sections:
        parts.append(f"**{_md_cell(s.title)}**\n")
        parts.append("| " + " | ".join(_md_cell(c) for c in s.columns) + " |")
        parts.append("|" + "|".join("---" for _ in s.columns) + "|")
        parts.extend("| " + " | ".join(_md_cell(c) for c in r) + " |" for r in s.rows)
        parts.append("")
    parts.extend(f"- {_md_cell(line)}" for line in summary)
    return "\n".join(parts) + "\n"


def emit_json(doc: dict) -> None:
    text = json.dumps(doc, indent=1, allow_nan=False, ensure_ascii=False)
    print(text)


def export_slots(res, path: Path) -> None:
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


# ------------------------------------------------------------------------------------------------


def _check_exclusive(as_json: bool, markdown: bool) -> None:
    if as_json and markdown:
        raise fail("--json and --markdown: choose one")


_TYPES = {"basis": str, "forecast": str, "cap_mode": str, "p_max_quantile": float, "truncation": str, "demand": str,
          "utility_shape": str, "consciousness": str, "latency": str, "energy": str, "subscribers": Optional[int],
          "trace_units": Optional[str], "forecast_column": Optional[str], "time_column": Optional[str],
          "value_column": Optional[str], "tz": Optional[str], "premium": Optional[str],
          "reduced": Optional[str], "rank_by": Optional[str]}


def with_shared_options(func):
    """Give ``func(..., shared: dict)`` the shared options as explicit Typer parameters."""
    import functools
    import inspect

    own = inspect.signature(func)
    own_params = [prm for prm in own.parameters.values() if prm.name != "shared"]
    shared = common_params()
    params = list(own_params)
    annotations = {prm.name: func.__annotations__.get(prm.name) for prm in own_params}
    hints = {"profile": Path, "users": Optional[Path], "trace": str, "as_json": bool, "markdown": bool,
             "export_slots_csv": Optional[Path], "plots": Optional[Path]}
    for prm in own_params:
        annotations[prm.name] = hints[prm.name]
    for name, info in shared.items():
        typ = _TYPES.get(name, Optional[float])
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=typ))
        annotations[name] = typ

    @functools.wraps(func)
    def wrapper(**kwargs):
        mine = {k: kwargs.pop(k) for k in list(kwargs) if k in own.parameters}
        return func(**mine, shared=kwargs)

    wrapper.__signature__ = inspect.Signature([prm.replace(annotation=annotations[prm.name]) for prm in params])
    wrapper.__annotations__ = {k: v for k, v in annotations.items()} | {"return": None}
    del wrapper.__wrapped__
    return wrapper


@with_shared_options
def price_command(
    profile: Path = typer.Argument(..., help="Profile JSON (from `greenbench profile`)."),
    users: Optional[Path] = users_option(),
    trace: str = trace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON (schema greenbench/price v1)."),
    markdown: bool = typer.Option(False, "--markdown", help="Print Markdown tables (for a PR or a doc)."),
    export_slots_csv: Optional[Path] = typer.Option(None, "--export-slots", help="Also write every hour (intensity, forecast, high or not) as CSV."),
    shared: dict = None,
) -> None:
    from greenbench.price.calculator import price, to_dict

    _check_exclusive(as_json, markdown)
    v = dict(shared, trace=trace)
    with user_errors():
        opts = pricing_options(v)
        p, u, tr = load_inputs(profile, users, v)
        res = price(p, u, tr, opts)
        if export_slots_csv is not None:
            export_slots(res, export_slots_csv)
    doc = to_dict(res)
    doc["users_default"] = users is None
    if users is None:
        err.print(f"users: the example shipped with greenbench ({u.source}); give --users for your own", highlight=False)
    if as_json:
        emit_json(doc)
        return
    render(price_sections(doc), price_summary(doc), markdown)
    if export_slots_csv is not None:
        err.print(f"slots: {export_slots_csv}", highlight=False)
