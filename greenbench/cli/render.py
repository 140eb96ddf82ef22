"""The library's typed results on screen: Rich tables, or Markdown for a pull request or a doc.

Each result becomes plain sections (a title, columns, rows of text) and summary lines, built from
the result's attributes (``PricingResult``, ``SimulationResult``), never from its JSON document;
``render`` prints them as tables or Markdown. The JSON document is the library's own (``to_json``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from greenbench.cli.common import err, note, out
from greenbench.cli.tables import Col, Section, print_lines, print_sections, sig, to_markdown
from greenbench.methods import is_measurement
from greenbench.price.calculator import finite_or_none, uptake_steps
from greenbench.tradeoff.points import UNKNOWN_HARDWARE, format_quality, latency_header

if TYPE_CHECKING:
    from greenbench.price.calculator import Choice, PricingResult, Threshold
    from greenbench.price.simulate import SimMonth, SimulationResult
    from greenbench.tradeoff.points import OperatingPoint

# ------------------------------------------------------------------------------------------------
# numbers


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


def money(x: float | None) -> str:
    """An amount (its currency in the legend): cents from 0.01 up, 3 significant figures below."""
    if x is None:
        return "-"
    return f"{x:,.2f}" if abs(x) >= 0.01 or x == 0 else f"{x:.3g}"


def fmt_money(x: float | None, cur: str) -> str:
    """An amount and its currency, for a sentence."""
    return "-" if x is None else f"{money(x)} {cur}"


def pct(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x * 100:.{digits}f}%"


def num(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


# ------------------------------------------------------------------------------------------------
# sections


def option_rows(res: PricingResult) -> list[list[str]]:
    """The options that ran, their values and where each came from (price and simulate)."""
    o, tr, pop, cur = res.options_used, res.trace_summary, res.population, res.currency
    cap = "-" if o.cap_gco2e_per_kwh is None else f"{o.cap_gco2e_per_kwh:.1f} gCO2e/kWh"
    shape = o.utility_shape + ("" if o.utility_k is None else f" (k = {o.utility_k:g})")
    share = o.cap_mode == "share"
    no_prices = o.electricity_price_per_kwh is None and o.carbon_price_per_tonne is None
    return [
        ["trace", f"{tr.name} ({tr.basis or 'basis unknown'}, {tr.hours} h from {tr.start_utc}, "
                  f"days in {tr.tz or 'UTC'})", tr.source],
        ["users", "greenbench/data/users_example.yaml" if res.users_default else res.users_source,
         "default: shipped example" if res.users_default else "--users"],
        ["utility shape", shape, "--utility-shape"],
        ["quality", f"{o.quality_metric} ({o.quality_direction} is better)",
         "--quality " + res.options.quality],
        ["latency", f"{o.latency_statistic} {LATENCY_WORDS[o.latency_kind]}", "--latency, --latency-kind"],
        ["energy basis", o.energy_basis, "--energy"],
        ["forecast", o.forecast, "--forecast " + o.forecast_option],
        ["cap mode", o.cap_mode, "--cap-mode"],
        ["daily share q" if share else "I_cap", f"{o.daily_share:g}" if share else cap,
         "--daily-share" if share else o.cap_source],
        ["p_max", f"{o.p_max:.3f}", o.p_max_source],
        ["truncation to p_max", o.truncation, "--truncation"],
        ["demand profile n(t)", o.demand_profile, f"--demand; a billing period is {o.billing_period_hours:g} h"],
        ["consciousness", o.consciousness + (
            "" if o.reward_per_gco2e is None else f" (β = {o.reward_per_gco2e:g} {cur}/gCO2e)"), "--consciousness"],
        ["R ranked by", o.rank_by, "--rank-by"],
        ["subscribers", f"{o.subscribers:,}", "--subscribers, users file, or 1000"],
        ["H must meet", "none" if o.latency_slo_ms is None else f"latency <= {o.latency_slo_ms:g} ms",
         "--latency-slo-ms" if o.premium is None else "ignored: --premium names H"],
        ["R must meet", "; ".join(x for x in (
            None if o.accuracy_floor is None else
            f"{o.quality_metric} {'>=' if o.quality_direction == 'higher' else '<='} {o.accuracy_floor:g}",
            None if o.latency_ceiling_ms is None else f"latency <= {o.latency_ceiling_ms:g} ms") if x) or "none",
         ("--accuracy-floor" if o.quality_metric == "accuracy" else "--quality-floor") + ", --latency-ceiling-ms"
         if o.reduced is None else "ignored: --reduced names R"],
        ["offered discount δ" if res.options.discount is not None else "tables' discount δ", pct(pop.discount, 2),
         pop.discount_source],
        ["prices", "none: no net" if no_prices else
         f"π_e {o.electricity_price_per_kwh or 0:g} {cur}/kWh, π_c {o.carbon_price_per_tonne or 0:g} {cur}/t CO2e",
         "--electricity-price-per-kwh, --carbon-price-per-tonne"],
    ]


def _options_section(res: PricingResult) -> Section:
    return Section("options that ran", [Col("option", "name"), Col("value", "text"), Col("from", "text", wide=True)],
                   option_rows(res), ["--wide: where each value came from"])


LATENCY_WORDS = {"e2e": "latency per request", "ttft": "time to first token", "tpot": "time per output token"}
QUALITY_HEADERS = {"perplexity": "PPL", "exact_match": "EM"}


def quality_header(metric: str) -> str:
    """A table header for the quality metric: accuracy, PPL, EM."""
    return QUALITY_HEADERS.get(metric, metric)


def _metric(res: PricingResult) -> str:
    return res.choice.premium.quality_metric


def _lat_header(res: PricingResult) -> str:
    return latency_header(res.options.latency, res.options.latency_kind)


def _quality_legend(res: PricingResult) -> str | None:
    m = _metric(res)
    if quality_header(m) == m:
        return None
    lower = res.choice.premium.direction == "lower"
    return f"{quality_header(m)}: {m.replace('_', ' ')}" + (" (lower is better)" if lower else "")


def point_name(p: OperatingPoint, ch: Choice) -> str:
    """A point's label, and its hardware in brackets where the profile's points span more than one
    hardware type (a fleet): "cnn-64 b8 fp32 gpu-a:cuda:0 (H100)"."""
    return f"{p.label} ({p.hardware or UNKNOWN_HARDWARE})" if ch.spans_hardware else p.label


def point_rows(res: PricingResult) -> list[list[str]]:
    """H and R: their figures, energy method and how each was chosen."""
    ch = res.choice
    return [[role, point_name(p, ch), format_quality(p.quality, p.quality_metric), sig(p.latency_ms), sig(p.energy_j_per_item),
             p.energy_method + ("" if is_measurement(p.energy_method) else " (not a measurement)"), how]
            for role, p, how in (("H", ch.premium, ch.premium_how), ("R", ch.reduced, ch.reduced_how))]


def _points_section(res: PricingResult) -> Section:
    lat = _lat_header(res)
    return Section("operating points: H premium, R reduced",
                   [Col("", "name"), Col("point", "name"), Col(quality_header(_metric(res))), Col(lat),
                    Col("J/request"), Col("energy method", "text"), Col("chosen as", "text", wide=True)],
                   point_rows(res), [_quality_legend(res), f"{lat}: {LATENCY_WORDS[res.options.latency_kind]}",
                                     "J/request: energy per request"],
                   wide_legend=["chosen as: how the point was picked"])


def _threshold_cell(t: Threshold, metric: str | None) -> str:
    text = format_quality(t.value, metric) if metric is not None else sig(t.value)
    return text + ("*" if t.source == "users file" else "")


def thresholds_section(res: PricingResult) -> Section | None:
    """§3's thresholds per user type, each marked where the users file set it (the others are the
    frontier's range); None for a drawn population."""
    th = res.thresholds
    if th is None or not th.user_types:
        return None
    first = th.user_types[0]
    metric = th.quality_metric
    types = th.user_types if th.any_given else th.user_types[:1]  # no type sets any: one row says it
    rows = [[u.user_type if th.any_given else "every user type", _threshold_cell(u.quality_zero, metric),
             _threshold_cell(u.quality_sat, metric), _threshold_cell(u.latency_sat, None),
             _threshold_cell(u.latency_max, None), "; ".join(f"{t.name} {t.source}" for t in u.all)]
            for u in types]
    worst, best = th.quality_range
    lo, hi = th.latency_range_ms
    lower = th.quality_direction == "lower"
    qn = quality_header(metric) if metric != "accuracy" else "A"
    zero_word = f"{first.quality_zero.name}: worthless at or {'above' if lower else 'below'}"
    sat_word = f"{first.quality_sat.name}: satisfied at or {'below' if lower else 'above'}"
    legend = [f"{zero_word}, {sat_word}",
              f"{first.latency_sat.name}, {first.latency_max.name}: {th.latency_statistic} "
              f"{LATENCY_WORDS[th.latency_kind]} in ms",
              "*: from the users file" if th.any_given else None,
              (f"{'others' if th.any_given else 'all'}: the Pareto frontier's range over its {th.frontier_points} "
               f"points ({qn} from {format_quality(worst, metric)}, the worst, to {format_quality(best, metric)}; "
               f"latency {sig(lo)} to {sig(hi)} ms): "
               + ", ".join(f"{t.name} from {t.source.split('(', 1)[-1].rstrip(')')}" for t in first.all
                           if t.source != "users file"))]
    return Section(f"utility thresholds ({metric.replace('_', ' ')}, {th.latency_statistic} "
                   f"{LATENCY_WORDS[th.latency_kind]})",
                   [Col("user type", "name"), Col(first.quality_zero.name), Col(first.quality_sat.name),
                    Col(first.latency_sat.name), Col(first.latency_max.name), Col("from", "text", wide=True)],
                   rows, legend, wide_legend=["from: where each threshold came from"])


def price_sections(res: PricingResult) -> list[Section]:
    cur, lat, ch, pop = res.currency, _lat_header(res), res.choice, res.population
    metric = _metric(res)
    rk = [[str(r.rank or "-"), point_name(r.point, ch), format_quality(r.point.quality, metric), sig(r.point.latency_ms),
           sig(r.point.energy_j_per_item), f"{r.utility:.3f}", sig(r.energy_saved_j), f"{r.utility_lost:.3f}",
           sig(finite_or_none(r.score)), r.reason] for r in ch.ranking]
    ut = [[u.name, pct(u.share, 0), f"{u.u_h:.3f}", f"{u.u_r:.3f}", money(u.price), pct(u.delta_star, 2),
           "yes" if u.takes_up else "no", fmt_g(u.saved_g_per_period),
           money(u.discount_cost) if u.takes_up else "-",
           money(finite_or_none(u.net_per_user)) if u.takes_up else "-"]
          for u in sorted(res.users, key=lambda u: -u.share)[:MAX_USER_ROWS]]
    more_users = len(res.users) - len(ut)
    ms = [[m.label + ("" if m.complete else " (partial)"), str(m.hours), str(m.high_hours), pct(m.p_candidate),
           pct(m.p), pct(res.slots.p_max), fmt_g(m.carbon.saved_g_per_request * 1000),
           fmt_g(m.carbon.c_base_g_per_request * 1000), pct(m.carbon.rho), pct(m.carbon.rho_blind)] for m in res.months]
    thresholds = thresholds_section(res)
    return [
        _options_section(res),
        _points_section(res),
        *([thresholds] if thresholds is not None else []),
        Section(f"R ranking by {ch.rank_utility}",
                [Col("rank"), Col("frontier point", "name"), Col(quality_header(metric), wide=True),
                 Col(lat, wide=True),
                 Col("J", wide=True), Col("U", wide=True), Col("ΔE J"), Col("ΔU"), Col("J/U"),
                 Col("status", "text")], rk,
                ["score J/U = energy saved per unit of utility lost, ΔE/ΔU = (E_H - E_k)/(U_H - U_k)",
                 "ΔE J per request"],
                wide_legend=[_quality_legend(res), f"{lat}: {LATENCY_WORDS[res.options.latency_kind]}",
                             "J: energy per request", "U: utility"]),
        Section(f"user types at δ = {pct(pop.discount, 2)}" + ("" if res.options.discount is not None else
                                                               " (max δ*, not the decision's offer)"),
                [Col("user type", "name"), Col("share"), Col("U_H", wide=True), Col("U_R", wide=True),
                 Col("P/period"), Col("δ*"), Col("takes"), Col("ΔC/period"), Col("discount", wide=True),
                 Col("net/user")], ut,
                ([f"the {len(ut)} largest of {len(res.users):,} user types (--json lists all)"] if more_users else [])
                + [f"δ: {pop.discount_source}", f"money in {cur}", "P/period: standard price",
                 "δ*: minimum discount, share of P",
                 "takes: takes the green tier", "ΔC/period: carbon saved per user per billing period"],
                wide_legend=["U_H, U_R: utility of H and R", "discount: δ·P per user"]),
        Section("months: per 1,000 green requests",
                [Col("month", "name"), Col("hours", wide=True), Col("high h"), Col("p before", wide=True), Col("p"),
                 Col("p_max", wide=True), Col("ΔC/1k"), Col("C_base/1k"), Col("ρ"), Col("ρ_blind")], ms,
                ["high h: high-carbon hours", "p: share of green requests on R", "ΔC/1k: carbon saved",
                 "C_base/1k: carbon without the tier", "ρ = ΔC/C_base", "ρ_blind: the same share at random hours"],
                wide_legend=["p before: before the p_max ceiling"]),
    ]


def price_summary(res: PricingResult) -> list[str]:
    c, pop, cur = res.carbon, res.population, res.currency
    awareness = finite_or_none(c.awareness_ratio)
    ratio = "-" if awareness is None else f"{awareness:.2f}x"
    lines = [
        (f"high-carbon hours: {res.high_hours} of {res.trace_summary.hours}; realised p = {pct(c.p)} of green "
         f"requests (p_max {res.slots.p_max:.3f})"),
        _paid_for(res),
        (f"carbon per green user: ρ = {pct(c.rho)} saved vs ρ_blind = {pct(c.rho_blind)} for the same share at "
         f"random hours ({ratio}: what carbon-awareness adds)"),
        (f"population per billing period: {pop.subscribers:,} subscribers, uptake {pct(pop.uptake)} at δ = "
         f"{pct(pop.discount, 2)}; ΔC = {fmt_g(pop.saved_g)} of C_base = {fmt_g(pop.c_base_g)} "
         f"({pct(pop.rho)}); discount cost {fmt_money(pop.discount_cost, cur)}"),
    ]
    steps = uptake_steps(res)
    if steps:
        shown = steps if len(steps) <= 10 else (*steps[:9], steps[-1])  # thousands of types: the ends
        lines.append("uptake by discount: " + ", ".join(f"δ >= {pct(st.discount, 2)}: {pct(st.uptake, 0)}"
                                                         for st in shown)
                     + (f" ({len(steps) - 10} steps left out; --json has them all)" if len(steps) > 10 else ""))
    net = finite_or_none(pop.net)
    if net is not None:
        lines.append(f"provider's net per billing period: {fmt_money(finite_or_none(pop.savings_value), cur)} of "
                     f"electricity and carbon saved - {fmt_money(pop.discount_cost, cur)} of discounts = "
                     f"{fmt_money(net, cur)}")
    else:
        lines.append("provider's net: give --electricity-price-per-kwh and/or --carbon-price-per-tonne")
    return lines + [f"note: {n}" for n in res.notes]


def _paid_for(res: PricingResult) -> str:
    """δ* is priced on p_max, users see p: how many times the degradation they see they are paid for."""
    s = res.slots
    ratio = s.p_max_over_p
    basis = "the worst month" if s.policy.p_max_basis == "worst" else "the expected month"
    if ratio is None:
        return f"p_max/p: {s.p_max_over_p_reason}"
    return (f"p_max/p = {ratio:.2f}: the discount pays for p_max ({basis}, {s.p_max_source}), users see p; "
            + ("--p-max-basis expected contracts on the mean month" if s.policy.p_max_basis == "worst" else
               "a departure from the paper's worst-month ceiling"))


def _month_row(m: SimMonth, label: str, net: bool) -> list[str]:
    return ([label, str(m.hours), str(m.high_hours), pct(m.p), f"{m.green_requests:,.0f}", fmt_g(m.base_g),
             fmt_g(m.tier_g), fmt_g(m.saved_g), pct(m.rho), pct(m.rho_green), pct(m.rho_blind),
             money(m.discount_cost)]
            + ([money(m.savings_value), money(m.net)] if net else []))


def simulate_sections(sim: SimulationResult) -> list[Section]:
    res = sim.pricing
    cur, pop = res.currency, res.population
    net = sim.total.net is not None
    rows = [_month_row(m, m.label + ("" if m.complete else " (partial)"), net) for m in sim.months]
    rows.append(_month_row(sim.total, sim.total.label, net))
    columns = [Col("month", "name"), Col("hours", wide=True), Col("high h"), Col("p"), Col("green req.", wide=True),
               Col("C without"), Col("C with", wide=True), Col("ΔC saved"), Col("ρ all"), Col("ρ green", wide=True),
               Col("ρ_blind", wide=True), Col("discounts")]
    if net:
        columns += [Col("value", wide=True), Col("net")]
    thresholds = thresholds_section(res)
    return [
        _options_section(res),
        _points_section(res),
        *([thresholds] if thresholds is not None else []),
        Section("month by month", columns, rows,
                [f"{pop.subscribers:,} subscribers, {pct(pop.uptake)} on the green tier at δ = {pct(pop.discount, 2)} "
                 f"({pop.discount_source})", f"money in {cur}", "high h: high-carbon hours", "p: share of green requests on R",
                 "C without/with: all subscribers' carbon without/with the tier", "ρ all = ΔC/C without"],
                styles=[None] * len(sim.months) + ["bold"],
                wide_legend=["green req.: requests of green users", "ρ green: the green users' own reduction",
                             "ρ_blind: the same share at random hours"]
                + (["value: electricity and carbon saved, at the prices given"] if net else [])),
    ]


def simulate_summary(sim: SimulationResult) -> list[str]:
    t = sim.total
    span = "year" if t.hours in (8760, 8784) else f"over the trace ({t.hours:,} h)"
    lines = [(f"{span}: {fmt_g(t.saved_g)} saved of {fmt_g(t.base_g)} ({pct(t.rho)} of all subscribers' "
              f"emissions); on green users' requests ρ = {pct(t.rho_green)} vs ρ_blind = {pct(t.rho_blind)}")]
    if t.net is None:
        lines.append("provider's net: give --electricity-price-per-kwh and/or --carbon-price-per-tonne")
    else:
        lines.append(f"provider's net over the trace: {fmt_money(t.net, sim.pricing.currency)}")
    return lines + [f"note: {n}" for n in sim.pricing.notes]


# ------------------------------------------------------------------------------------------------
# output

MAX_USER_ROWS = 50  # a users file of thousands of types: the largest in the table, all in --json


def users_note(res: PricingResult) -> None:
    """On stderr, when no users file was given: which users were priced."""
    if res.users_default:
        err.print(f"users: the example shipped with greenbench ({res.users_source}); give --users for your own",
                  highlight=False)


def show_price(res: PricingResult, markdown: bool, wide: bool = False) -> None:
    render(price_sections(res), price_summary(res), markdown, wide)


def show_simulation(sim: SimulationResult, markdown: bool, wide: bool = False) -> None:
    render(simulate_sections(sim), simulate_summary(sim), markdown, wide)


def plot_notes(plots: Sequence[Path]) -> None:
    """On stderr: the plots written, or how to get them."""
    for p in plots:
        note(f"wrote {p}")
    if not plots:
        note("plots: add --plots DIR for the trace and cumulative emissions (PNG and SVG)")


def render_first(lines: list[str]) -> None:
    """The lines a reader takes in first (price's decision), above the tables, on stdout."""
    import textwrap

    for line in lines:  # wrapped at the terminal's width, continuation lines indented like the first
        lead = " " * (len(line) - len(line.lstrip(" ")))
        print_lines(out, textwrap.wrap(line, width=max(40, out.width), initial_indent="",
                                       subsequent_indent=lead + "  ") or [""])


def render(sections: list[Section], summary: list[str], markdown: bool, wide: bool = False) -> None:
    if markdown:  # a document: its notes are part of it
        print(to_markdown(sections, summary), end="")
        return
    print_sections(out, sections, wide=wide)
    print_lines(out, [line for line in summary if not _is_note(line)])
    for line in summary:  # notes and hints go to stderr, beside the other notes
        if _is_note(line):
            note(line)


def _is_note(line: str) -> bool:
    return line.startswith(("note: ", "provider's net: give"))
