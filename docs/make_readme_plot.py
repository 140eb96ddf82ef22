"""Draws docs/img/accuracy_vs_energy.png (the README's picture) from a committed profile.

    python docs/make_readme_plot.py profiles/mnist1d-cpu-2core.json
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from greenbench import profile as prof  # noqa: E402


def main(path: str, out: str = "docs/img/accuracy_vs_energy.png") -> None:
    p = prof.load(Path(path))
    recs = [r for r in p.ok_records() if r.energy_j_per_item is not None]
    methods = sorted({r.energy_method for r in recs})
    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=110)
    batches = sorted({r.batch_size for r in recs})
    markers = dict(zip(batches, "os^Dvp", strict=False))  # one each for up to six batch sizes
    for model in dict.fromkeys(r.model for r in recs):
        pts = sorted((r for r in recs if r.model == model), key=lambda r: r.batch_size)
        x = [r.energy_j_per_item for r in pts]
        y = [r.accuracy for r in pts]
        line, = ax.plot(x, y, "-", alpha=0.5)
        for r in pts:
            lo, hi = r.energy_j_per_item_ci95 or (r.energy_j_per_item, r.energy_j_per_item)
            ax.errorbar(r.energy_j_per_item, r.accuracy, xerr=[[r.energy_j_per_item - lo], [hi - r.energy_j_per_item]],
                        yerr=[[r.accuracy - r.accuracy_ci95[0]], [r.accuracy_ci95[1] - r.accuracy]],
                        fmt=markers[r.batch_size], color=line.get_color(), ms=6, capsize=2)
        ax.annotate(model, (x[-1], y[-1]), textcoords="offset points", xytext=(6, -3), fontsize=8)
    for b, m in markers.items():
        ax.plot([], [], m, color="grey", label=f"batch {b}")
    ax.set_xscale("log")
    ax.set_xlabel(f"energy per item, J (gross; method: {', '.join(methods)})")
    ax.set_ylabel("accuracy on the held-out split")
    ax.set_title(f"{p.ladder.name} on {recs[0].device_name} ({recs[0].device}): 95% intervals on both axes",
                 fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(out)
    print(out)


if __name__ == "__main__":
    main(*sys.argv[1:])
