"""The discount curve drawn (`greenbench price --plot FILE`): uptake and carbon saved against the
discount offered, and below it the cost per tonne avoided with the carbon price, the recommended
offer and the break-even marked. PNG and SVG, in greenbench's one plotting style."""

from __future__ import annotations

from pathlib import Path

from greenbench import plotting
from greenbench.price.calculator import PricingError, PricingResult
from greenbench.price.decision import Decision


def plot_curve(d: Decision, res: PricingResult, path: Path) -> list[Path]:
    """``path`` and its twin (.png and .svg); a PricingError (one line) when they cannot be written."""
    c, rec = d.curve, d.recommendation
    x = [100 * r.discount for r in c.rows]
    fig = plotting.figure(7.0, 5.6)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(1.3, 1))
    blue, orange, grey = plotting.colours(3)[0], plotting.colours(3)[1], "0.35"
    top.step(x, [100 * r.uptake for r in c.rows], where="post", color=blue, lw=1.6, label="uptake (% of subscribers)")
    top.set_ylabel("uptake, % of subscribers", color=blue)
    top.set_ylim(-3, 103)
    twin = top.twinx()
    twin.step(x, [r.saved_t for r in c.rows], where="post", color=orange, lw=1.6, ls="--",
              label="carbon saved (t CO2e per period)")
    twin.set_ylabel("carbon saved, t CO2e per period", color=orange)
    twin.set_ylim(bottom=0)
    ks = [(100 * r.discount, r.cost_per_tonne) for r in c.rows if r.cost_per_tonne is not None]
    pos = [(x, k) for x, k in ks if k > 0]
    neg = [x for x, k in ks if k <= 0]
    log = bool(pos) and max(k for _, k in pos) > 100 * min(k for _, k in pos)
    line = pos if log else ks  # from a few to billions per tonne: a log axis of the positive costs
    if line:
        bottom.plot([k[0] for k in line], [k[1] for k in line], color=blue, lw=1.4, label="cost per t CO2e avoided")
    if c.carbon_price_per_tonne is not None and (not log or c.carbon_price_per_tonne > 0):
        bottom.axhline(c.carbon_price_per_tonne, color=grey, lw=1, ls=":", label="carbon price")
    if log:
        bottom.set_yscale("log")
        if neg:  # K <= 0 has no place on a log axis: marked along its bottom edge
            bottom.plot(neg, [0.04] * len(neg), "v", color="seagreen", ms=7, transform=bottom.get_xaxis_transform(),
                        label="cost <= 0: the tier pays for itself")
    bottom.set_ylabel(f"{c.currency} per t CO2e avoided")
    bottom.set_xlabel("discount offered, % of the standard price")
    for ax in (top, bottom):
        plotting.grid(ax)
        if rec.row is not None:
            ax.axvline(100 * rec.row.discount, color="crimson", lw=1.2, alpha=0.8)
        if c.break_even.discount is not None:
            ax.axvline(100 * c.break_even.discount, color=grey, lw=1, ls="-.")
    handles = top.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    from matplotlib.lines import Line2D

    if rec.row is not None:
        handles.append(Line2D([], [], color="crimson", lw=1.2, label=f"offer {100 * rec.row.discount:.3g}% "
                                                                      f"({rec.objective})"))
    if c.break_even.discount is not None:
        handles.append(Line2D([], [], color=grey, lw=1, ls="-.", label="break-even"))
    plotting.legend(top, handles=handles, loc="center right", frameon=True)
    if ks or c.carbon_price_per_tonne is not None:
        plotting.legend(bottom, loc="lower right", frameon=True)
    caveat = plotting.energy_caveat({res.choice.premium.energy_method, res.choice.reduced.energy_method})
    plotting.title(top, f"green tier on {res.trace_name}: the discount curve"
                   + (f"\n({caveat})" if caveat else ""))
    path = Path(path)
    base = path.with_suffix("") if path.suffix.lower() in (".png", ".svg") else path  # curve.png: its twin .svg
    try:
        return plotting.save(fig, base)
    except OSError as e:
        raise PricingError(f"{path}: cannot write the plot: {e.strerror or e}") from None
