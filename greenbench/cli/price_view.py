"""What `greenbench price` shows first: the provider's decision (the recommended offer in one
sentence, the discount curve at the discounts that matter, the break-even, the third option), the
uncertainty of each figure from the bootstrap, and zones side by side. Built from the library's
typed results (``greenbench.price.decision``, ``bootstrap``), like ``render`` builds the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from greenbench.cli.tables import Col, Section, sig

if TYPE_CHECKING:
    from greenbench.price.bootstrap import BootstrapResult
    from greenbench.price.calculator import PricingResult
    from greenbench.price.decision import CurveRow, Decision, DiscountCurve
    from greenbench.price.zones import Zone

MAX_CURVE_ROWS = 12  # the discounts a reader compares; --json has every row of the grid


def big(x: float | None) -> str:
    """Money to 3 figures, in exponent form from a million up (a cost per tonne can be 1e10)."""
    return sig(x) if x is None or abs(x) < 1e6 else f"{x:.3g}"


def pct(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x * 100:.{digits}f}%"


def _key_rows(d: Decision) -> list[CurveRow]:
    """The rows worth reading: no discount, each type's δ* (where uptake steps), the break-even, the
    recommended offer and 100%."""
    c, rec = d.curve, d.recommendation
    wanted = {0.0, 1.0} | {o.offer for o in c.offers}
    if c.break_even.discount is not None:
        wanted.add(c.break_even.discount)
    if rec.row is not None:
        wanted.add(rec.row.discount)
    if rec.closest is not None:
        wanted.add(rec.closest.discount)
    rows = [r for r in c.rows if any(abs(r.discount - w) <= 1e-12 for w in wanted)]
    if len(rows) > MAX_CURVE_ROWS:  # thousands of types: the recommended row and evenly spaced others
        keep = {id(rec.row), id(rec.closest)}
        step = max(1, len(rows) // (MAX_CURVE_ROWS - 2))
        rows = [r for i, r in enumerate(rows) if i % step == 0 or id(r) in keep or i == len(rows) - 1]
    return rows


def decision_sections(res: PricingResult, d: Decision) -> list[Section]:
    c, rec = d.curve, d.recommendation
    cur = c.currency
    net = any(r.net is not None for r in c.rows)
    chosen = rec.row.discount if rec.row is not None else None
    be = c.break_even.discount
    rows, styles = [], []
    for r in _key_rows(d):
        mark = []
        if chosen is not None and abs(r.discount - chosen) <= 1e-12:
            mark.append("offer")
        if be is not None and abs(r.discount - be) <= 1e-12:
            mark.append("break-even" if c.break_even.attained else "break-even: below")
        if r.delta_star_of:
            mark.append("δ*")
        rows.append([pct(r.discount, 2), pct(r.uptake, 0), sig(r.saved_t), sig(r.energy_saved_kwh),
                     big(r.revenue_forgone), *([big(r.net)] if net else []), big(r.cost_per_tonne), "; ".join(mark)])
        styles.append("bold" if "offer" in mark else None)
    cols = [Col("δ"), Col("uptake"), Col("ΔC t"), Col("ΔE kWh", wide=True), Col("forgone"),
            *([Col("net")] if net else []), Col(f"{cur}/t"), Col("", "text")]
    legend = [f"per billing period, {c.subscribers:,} subscribers, money in {cur}",
              "δ: discount offered, share of P", "ΔC t: t CO2e saved",
              "forgone: revenue given up in discounts", f"{cur}/t: cost per t CO2e avoided, (forgone - ΔE·π_e)/ΔC",
              *(["net = ΔE·π_e + ΔC·π_c - forgone"] if net else []), c.prices_note,
              _delta_star_legend(c)]
    sections = [Section(f"discount curve ({len(c.rows)} discounts in --json)", cols, rows, legend, styles=styles,
                        wide_legend=["ΔE kWh: electricity saved", c.grid_note])]
    t = d.third_option
    if t.rows:
        sections.append(Section(
            "R is no loss to these types: serve them at R by default",
            [Col("user type", "name"), Col("share"), Col("U_H"), Col("U_R"), Col("ΔC t"), Col("ΔE kWh"),
             Col("tier ΔC t", wide=True)],
            [[r.name, pct(r.share, 0), f"{r.u_h:.3f}", f"{r.u_r:.3f}", sig(r.saved_t), sig(r.energy_saved_kwh),
              sig(r.green_tier_saved_t)] for r in t.rows],
            ["per billing period, at R in every hour and no discount"],
            wide_legend=["tier ΔC t: what the green tier saves from the type (high hours only)"]))
    return sections


def _delta_star_legend(c: DiscountCurve) -> str | None:
    """Which type's δ* each δ* row is (the types join the green tier there)."""
    offers = sorted(c.offers, key=lambda o: (o.offer, o.name))
    if not offers:
        return None
    shown = ", ".join(f"{o.name} {pct(o.offer, 2)}" + (" (none wins it)" if o.no_discount_wins else "")
                      for o in offers[:8])
    return "δ*: where a type joins: " + shown + (f" and {len(offers) - 8} more" if len(offers) > 8 else "")


def decision_headline(d: Decision) -> list[str]:
    """The lines a pricing person reads first: what to offer, the break-even, the third option."""
    c, rec = d.curve, d.recommendation
    lines = [f"decision ({rec.objective}: {_objective_words(rec.objective)}; {rec.objective_source}):",
             "  " + rec.sentence]
    be = c.break_even
    if be.discount is not None:
        below = "" if be.attained else " (any discount below it)"
        lines.append(f"  break-even discount: {pct(be.discount, 2)}{below}" + (f"; {be.reason}" if be.reason else ""))
    elif c.has_net:
        lines.append(f"  break-even: {be.reason}")
    if d.third_option.rows:
        lines.append("  " + d.third_option.sentence)
    if c.unwinnable:
        lines.append(f"  no discount up to 100% wins {', '.join(c.unwinnable)} (δ* > 1)")
    return lines


def hardware_headline(res: PricingResult) -> list[str]:
    """Where the profile's points span more than one hardware type (a fleet): what H and R run on."""
    from greenbench.tradeoff.points import UNKNOWN_HARDWARE

    ch = res.choice
    if not ch.spans_hardware:
        return []
    h, r = (p.hardware or UNKNOWN_HARDWARE for p in (ch.premium, ch.reduced))
    n = len(ch.hardware)
    if h == r:
        return [f"  H and R both run on {h} (of the profile's {n} hardware types)"]
    return [f"  H runs on {h} and R on {r} (of the profile's {n} hardware types): green requests in "
            f"high-carbon hours are served on {r}"]


def _objective_words(objective: str) -> str:
    return {"carbon": "most carbon saved with net >= 0", "cost": "lowest cost per tonne avoided",
            "carbon-under-price": "most carbon saved at a cost per tonne under the carbon price"}[objective]


def zone_sections(zones: list[Zone]) -> list[Section]:
    """The zones ranked by ρ, each with what the recommended offer does there."""
    from greenbench.price.zones import ranking

    ranked = ranking(zones)
    cur = zones[0].decision.curve.currency
    rows = [[str(r.rank), r.zone, pct(r.rho), "—" if r.awareness is None else f"{r.awareness:.2f}x", pct(r.p),
             pct(r.p_max, 0), pct(r.delta_star_max, 1), "none" if r.offer is None else pct(r.offer, 1),
             sig(r.saved_t), big(r.cost_per_tonne)] for r in ranked]
    rec = zones[0].decision.recommendation
    return [Section(f"zones ranked by ρ ({len(zones)} traces; H and R the same in each)",
                    [Col("#"), Col("zone", "name"), Col("ρ"), Col("ρ/blind"), Col("p", wide=True),
                     Col("p_max", wide=True), Col("δ* max"), Col("offer"), Col("ΔC t"), Col(f"{cur}/t")], rows,
                    ["ρ: carbon a green user saves, ΔC/C_base", "ρ/blind: over the same share at random hours",
                     "δ* max: the discount every type takes", f"offer: recommended ({rec.objective})",
                     "ΔC t: t CO2e saved per period at the offer", f"{cur}/t: its cost per t CO2e avoided"],
                    wide_legend=["p: realised share degraded", "p_max: the monthly ceiling priced"])]


def zone_summary(zones: list[Zone]) -> list[str]:
    from greenbench.price.zones import ranking

    notes = dict.fromkeys(n for z in zones for n in z.result.notes)  # the energy caveats above all
    return [f"{r.zone}: {r.sentence}" for r in ranking(zones)] + [f"note: {n}" for n in notes]


def markdown_headline(lines: list[str]) -> str:
    """The decision as a document opens: its title in bold, each line a paragraph."""
    from greenbench.cli.tables import md_escape

    if not lines:
        return ""
    return f"**{md_escape(lines[0].rstrip(':'))}**\n\n" + "".join(f"{md_escape(x.strip())}\n\n" for x in lines[1:])


def mix_section(res: PricingResult) -> Section | None:
    """With --mix: the points R is served at and their shares, the mix's energy and utility, and
    what it gains over the best single R."""
    m = res.choice.mix
    if m is None:
        return None
    from greenbench.cli.render import point_name

    rows = [[point_name(p, res.choice), pct(share, 1), sig(p.energy_j_per_item), f"{u:.3f}"]
            for p, share, u in zip(m.points, m.shares, (m.utility_a, m.utility_b), strict=False)]
    rows.append(["R as served", "100.0%", sig(m.energy_j_per_item), f"{m.utility:.3f}"])
    gain = []
    if m.best_single is not None and m.best_single_score is not None:
        ratio = m.score_ratio
        gain.append(f"score {sig(m.score)} J/U against {sig(m.best_single_score)} for the best single point "
                    f"{m.best_single.point.label}" + ("" if ratio is None else f" ({ratio:.3g}x)"))
    elif m.best_single_reason:
        gain.append(m.best_single_reason)
    return Section("reduced tier R (--mix)", [Col("point", "name"), Col("share of R"), Col("J/request"), Col("Ū")],
                   rows, [m.how, *gain, "Ū: the ranking utility (" + res.choice.rank_utility + ")"],
                   styles=[None] * (len(rows) - 1) + ["bold"])


FIGURE_WORDS = {"discount": "offered discount δ", "uptake": "uptake", "rho": "ρ (a green user's saving)",
                "rho_blind": "ρ_blind", "saved_g_per_period": "ΔC per period", "net_per_period": "net per period",
                "cost_per_tonne": "cost per t CO2e avoided"}


def _figure_cell(name: str, x: float | None) -> str:
    if x is None:
        return "—"
    if name in ("discount", "uptake", "rho", "rho_blind") or name.startswith("delta_star:"):
        return pct(x, 1)
    if name == "saved_g_per_period":
        from greenbench.cli.render import fmt_g

        return fmt_g(x)
    return big(x)


def uncertainty_section(boot: BootstrapResult | None, recommended: bool = False) -> Section | None:
    """Each figure beside its 95% interval over the bootstrap's draws (at the offered discount)."""
    if boot is None:
        return None
    z = boot.zones[0]
    offered = z.figure("discount").point
    rows, absent = [], []
    for f in z.figures:
        if f.point is None and f.low is None and f.high is None:  # e.g. the net without prices
            absent.append(f"{FIGURE_WORDS.get(f.name, f.name)}: {f.reason or 'no value'}")
            continue
        name = ("δ* " + f.name.split(":", 1)[1]) if f.name.startswith("delta_star:") else FIGURE_WORDS.get(f.name,
                                                                                                          f.name)
        undefined = f"{f.undefined_draws:,}" if f.undefined_draws else ""
        rows.append([name, _figure_cell(f.name, f.point), _figure_cell(f.name, f.low),
                     _figure_cell(f.name, f.high), undefined])
    lo, hi = boot.percentiles
    return Section(f"uncertainty: {boot.draws:,} draws of the profile's measurements (seed {boot.seed})",
                   [Col("figure", "name"), Col("estimate"), Col(f"{lo:g}%"), Col(f"{hi:g}%"),
                    Col("undefined", wide=True)], rows,
                   [f"at the offered discount δ = {pct(offered, 2)}" + (" (the recommended offer)" if recommended else ""),
                    *absent, *boot.notes],
                   wide_legend=["undefined: draws where the figure has no value (no R, or no carbon saved)"])


def uncertainty_headline(boot: BootstrapResult | None) -> list[str]:
    """How often the choice itself changes across the draws: a figure is only as firm as H and R."""
    if boot is None:
        return []

    def share(changed: int) -> str:
        return pct(changed / boot.chosen_draws, 1) if boot.chosen_draws else "—"

    others = sorted(((n, k) for n, k in boot.premium_drawn.items() if n != boot.premium), key=lambda x: -x[1])
    alt = (f" (to {others[0][0]})" if len(others) == 1 else
           f" (most often to {others[0][0]}, in {pct(others[0][1] / boot.chosen_draws, 1)})" if others else "")
    line = (f"  across {boot.draws:,} draws of the measurements: H changes in {share(boot.premium_changed)}{alt}, "
            f"R in {share(boot.reduced_changed)}")
    if boot.no_choice_draws:
        line += f"; {boot.no_choice_draws:,} draws have no H or R"
    return [line]
