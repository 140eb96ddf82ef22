r"""The noise a CI gate must sit above, from repeated profiles of the same code.

Profile the same ladder several times back to back on the CI machine (one trained cache, so the
models are the same), then:

    for i in 1 2 3 4 5; do
        OMP_NUM_THREADS=1 greenbench profile --quick --device cpu --out /tmp/noise$i --force
    done
    python benchmarks/ci_noise.py /tmp/noise*/mnist1d-quick.json \
        --baseline profiles/baseline/mnist1d-quick-cpu.json

For energy per item and p50/p95 latency it prints, over the operating points the runs share, the
largest max/min ratio between the runs (the back-to-back noise) and, with --baseline, the largest
ratio of a run over the committed baseline (what the gate actually sees: the runs' noise plus the
drift since the baseline was profiled). For accuracy it prints the largest spread between the runs
and the largest drop below the baseline. The suggested threshold of each metric is the worst
ratio seen times --margin, rounded up to a round percentage: a plain rerun must pass with room to
spare, and a real slip of that size still fails.

Results on stdout; a bad file or option gets one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

from greenbench import profile as prof
from greenbench.errors import GreenbenchError
from greenbench.profile import Profile, Record

METRICS = ("energy_j_per_item", "latency_p50_ms", "latency_p95_ms")


def _values(p: Profile, metric: str) -> dict[tuple, float]:
    out = {}
    for r in p.ok_records():
        v = getattr(r, metric)
        if v is not None and math.isfinite(v) and v > 0:
            out[r.key()] = float(v)
    return out


def _label(k: tuple) -> str:
    return f"{k[1]} b{k[2]} {k[3]} {k[4]}"


def round_up_percent(ratio: float) -> int:
    """A ratio as the round relative threshold at or above it, in percent: 2.7x is +170%, rounded
    up to +200%. Steps of 25 points below +100%, 50 below +300%, 100 beyond."""
    pct = (ratio - 1.0) * 100.0
    step = 25 if pct < 100 else 50 if pct < 300 else 100
    return int(math.ceil(pct / step - 1e-9) * step)


def spread(profiles: list[Profile], metric: str) -> tuple[float, float, str]:
    """(largest max/min ratio over shared points, median of that ratio, the worst point)."""
    per = [_values(p, metric) for p in profiles]
    shared = set.intersection(*(set(v) for v in per))
    if not shared:
        raise GreenbenchError(f"{metric}: the profiles share no operating point with a value")
    ratios = {k: max(v[k] for v in per) / min(v[k] for v in per) for k in shared}
    worst = max(ratios, key=lambda k: ratios[k])
    return ratios[worst], statistics.median(ratios.values()), _label(worst)


def against(profiles: list[Profile], baseline: Profile, metric: str) -> tuple[float, float, str]:
    """(largest run/baseline ratio, largest max/min ratio with the baseline as one more run, the
    worst point of the latter). The baseline is one more draw of the same noise: profiled at a
    quiet moment, a later run at a busy one is its max/min apart."""
    base = _values(baseline, metric)
    up = max((v / base[k] for p in profiles for k, v in _values(p, metric).items() if k in base), default=None)
    if up is None:
        raise GreenbenchError(f"{metric}: no operating point in common with the baseline")
    worst, _, where = spread([*profiles, baseline], metric)
    return up, worst, where


def _accuracy(r: Record) -> float | None:
    return r.accuracy if r.accuracy is not None and math.isfinite(r.accuracy) else None


def accuracy_lines(profiles: list[Profile], baseline: Profile | None) -> list[str]:
    per = [{r.key(): a for r in p.ok_records() if (a := _accuracy(r)) is not None} for p in profiles]
    shared = set.intersection(*(set(v) for v in per))
    lines = []
    if shared:
        spreads = {k: max(v[k] for v in per) - min(v[k] for v in per) for k in shared}
        k = max(spreads, key=lambda k: spreads[k])
        lines.append(f"accuracy: largest spread between runs {spreads[k]:.4f} ({_label(k)}), "
                     f"{sum(1 for s in spreads.values() if s > 0)} of {len(spreads)} points differ at all")
    if baseline is not None:
        base = {r.key(): a for r in baseline.ok_records() if (a := _accuracy(r)) is not None}
        drops = [(base[k] - v[k], k) for v in per for k in v if k in base]
        if drops:
            d, k = max(drops)
            lines.append(f"accuracy: largest drop below the baseline {d:+.4f} ({_label(k)})"
                         if d > 0 else "accuracy: no run scored below the baseline at any point")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ci_noise.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("profiles", nargs="+", type=Path, help="two or more profiles of the same code")
    ap.add_argument("--baseline", type=Path, help="the committed baseline the gate compares with")
    ap.add_argument("--margin", type=float, default=1.25,
                    help="threshold = worst ratio x this, rounded up (default 1.25)")
    a = ap.parse_args(argv)
    if len(a.profiles) < 2:
        ap.error("give two or more profiles")
    if not (math.isfinite(a.margin) and a.margin >= 1):
        ap.error(f"--margin {a.margin}: give a factor of at least 1")
    try:
        runs = [prof.load(p) for p in a.profiles]
        base = prof.load(a.baseline) if a.baseline is not None else None
        quick = {p.settings.quick for p in runs + ([base] if base else [])}
        if len(quick) > 1:
            print("warning: quick and full profiles mixed: their noise differs", file=sys.stderr)
        print(f"{len(runs)} runs" + (f" against the baseline {a.baseline}" if base else "")
              + f"; suggested thresholds: worst ratio x {a.margin:g}, rounded up")
        for m in METRICS:
            worst, median, where = spread(runs, m)
            line = f"{m}: runs max/min {worst:.2f}x (worst {where}; median point {median:.2f}x)"
            seen = worst
            if base is not None:
                up, seen, where = against(runs, base, m)
                line += f"; run/baseline up to {up:.2f}x; max/min with the baseline {seen:.2f}x ({where})"
            print(f"{line}; suggested {m}:+{round_up_percent(seen * a.margin)}%")
        for line in accuracy_lines(runs, base):
            print(line)
    except GreenbenchError as e:
        print(f"ci_noise.py: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
