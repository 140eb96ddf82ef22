"""Benchmark: load the bundled 2023 hourly traces of all 18 zones, with each zone's local days and
months, cold (the bundle read from disk) and cached. Targets on a 2-core machine: a cold load of
all 18 zones under 1 s, a cached load of one zone under 10 ms.

    .venv/bin/python benchmarks/traces.py [--repeats 5]

Prints the time of each repeat's stages (median and min) and a verdict on the slowest repeat.
(The tests check what is loaded and that the cache is used; the speed is measured here, where a
busy machine can be seen for what it is instead of failing a test.)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from greenbench.carbon import bundle  # noqa: E402
from greenbench.carbon import trace as traces  # noqa: E402

COLD_TARGET_S = 1.0
CACHED_TARGET_S = 0.01


def run_once() -> dict[str, float]:
    bundle.arrays.cache_clear()  # the npz itself too: a cold load reads it from disk
    bundle.clear_cache()
    t0 = time.perf_counter()
    for zone in traces.bundled_zones():
        t = traces.load_bundled(zone)
        t.local_day_index(), t.month_index()
    cold_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    traces.load_bundled("GB")
    cached_s = time.perf_counter() - t0
    return {"cold: 18 zones, local days and months": cold_s, "cached: one zone": cached_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    runs = [run_once() for _ in range(args.repeats)]
    print(f"greenbench traces benchmark: {len(traces.bundled_zones())} bundled zones, {args.repeats} repeats")
    print(f"{'stage':40s} {'median s':>9s} {'min s':>8s} {'max s':>8s}")
    for stage in runs[0]:
        vals = [r[stage] for r in runs]
        print(f"{stage:40s} {statistics.median(vals):9.4f} {min(vals):8.4f} {max(vals):8.4f}")
    cold = max(r["cold: 18 zones, local days and months"] for r in runs)
    cached = max(r["cached: one zone"] for r in runs)
    met = cold < COLD_TARGET_S and cached < CACHED_TARGET_S
    print(f"verdict (targets: cold < {COLD_TARGET_S:g} s, cached < {CACHED_TARGET_S * 1000:g} ms, slowest repeat): "
          f"{'met' if met else 'MISSED'} (cold {cold:.3f} s, cached {cached * 1000:.3f} ms; "
          "not counted: Python start-up and imports)")
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
