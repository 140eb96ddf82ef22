"""Draw the README's picture (accuracy against energy per item, 95% intervals on both axes) from a
profile, as a PNG at the path given: nothing is written anywhere else, so the tracked image
changes only when it is named.

    python docs/make_readme_plot.py profiles/mnist1d-cpu-2core.json docs/img/accuracy_vs_energy.png

Prints the path written on stdout; a bad profile or path gets one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKERS = "os^Dvp*hX"  # one per batch size, cycled beyond nine


def draw(profile_path: Path, out: Path) -> Path:
    """Draw the plot of ``profile_path`` into ``out`` (a .png); raises GreenbenchError."""
    from greenbench import plotting
    from greenbench import profile as prof
    from greenbench.errors import GreenbenchError

    if out.suffix.lower() != ".png":
        raise GreenbenchError(f"{out}: give a .png path for the picture")
    p = prof.load(profile_path)
    recs = [r for r in p.ok_records() if r.energy_j_per_item is not None and r.energy_j_per_item > 0
            and r.accuracy is not None]
    if not recs:
        raise GreenbenchError(f"{profile_path}: no finished point has both energy and accuracy: nothing to draw")
    methods = sorted({r.energy_method for r in recs})
    fig = plotting.figure(7.5, 4.2)
    ax = fig.add_subplot()
    batches = sorted({r.batch_size for r in recs})
    markers = {b: MARKERS[i % len(MARKERS)] for i, b in enumerate(batches)}
    models = list(dict.fromkeys(r.model for r in recs))
    for model, colour in zip(models, plotting.colours(len(models)), strict=True):
        pts = sorted((r for r in recs if r.model == model), key=lambda r: r.batch_size)
        x = [float(r.energy_j_per_item or 0.0) for r in pts]  # all set: filtered above
        y = [float(r.accuracy or 0.0) for r in pts]
        ax.plot(x, y, "-", color=colour, alpha=0.5)
        for r, e, a in zip(pts, x, y, strict=True):
            lo, hi = r.energy_j_per_item_ci95 or (e, e)
            alo, ahi = r.accuracy_ci95 or (a, a)
            ax.errorbar(e, a, xerr=[[max(0.0, e - lo)], [max(0.0, hi - e)]],
                        yerr=[[max(0.0, a - alo)], [max(0.0, ahi - a)]],
                        fmt=markers[r.batch_size], color=colour, ms=6, capsize=2)
        # the name left of the model's lowest-energy point, clear of its line and bars
        i = min(range(len(x)), key=lambda j: x[j])
        ax.annotate(model, (x[i], y[i]), textcoords="offset points", xytext=(-10, 5), ha="right", fontsize=8)
    for b, m in markers.items():
        ax.plot([], [], m, color="grey", label=f"batch {b}")
    ax.set_xscale("log")
    ax.set_xlabel(f"energy per item, J (gross; method: {', '.join(plotting.method_words(methods))})")
    ax.set_ylabel("accuracy on the held-out split")
    plotting.title(ax, f"{p.ladder.name} on {recs[0].device_name} ({recs[0].device}): 95% intervals on both axes",
                   small=True)
    plotting.legend(ax, loc="lower right", frameon=True)
    plotting.grid(ax, which="both")
    data = plotting.png_bytes(fig)
    try:
        out.write_bytes(data)
    except OSError as e:
        raise GreenbenchError(f"{out}: cannot write: {e.strerror or e}") from None
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="make_readme_plot.py", description=__doc__.split("\n\n")[0],
                                 epilog="example: python docs/make_readme_plot.py "
                                        "profiles/mnist1d-cpu-2core.json docs/img/accuracy_vs_energy.png")
    ap.add_argument("profile", type=Path, help="a profile JSON written by `greenbench profile`")
    ap.add_argument("out", type=Path, help="the PNG to write (overwritten if it exists)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))  # the checkout's greenbench, installed or not
    from greenbench.errors import GreenbenchError

    try:
        print(draw(args.profile, args.out))
    except GreenbenchError as e:
        print(f"make_readme_plot.py: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
