"""Instrumentation overhead: throughput under greenbench's window protocol over a bare loop.

Both loops run the same step (one batch of one model of the embedded ladder) for the same time;
the bare loop is what a user would write (``for _ in range(n): step()``, timed from outside).
greenbench's loop adds a per-step timestamp and reads the real meter of the device at the edges.
Rounds alternate the two in ABBA order so drift hits both alike. Target: ratio >= 0.97.

The verdict is "met" only when the whole 95% interval of every point's per-round ratio is at or
above the target, "NOT met" when some point's whole interval is below it, and "inconclusive"
otherwise, with the rounds the observed spread suggests would settle it.

    python benchmarks/overhead.py                  # default points, 12 rounds of 1 s windows
    python benchmarks/overhead.py --window 1 --rounds 5 --point linear:1 --point cnn-16:32
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import textwrap
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats as _st

from greenbench.stats import summarize

TARGET_RATIO = 0.97
MET, NOT_MET, INCONCLUSIVE = "met", "NOT met", "inconclusive"
# Beyond this many rounds more rounds are no remedy: the spread itself has to come down
MAX_ROUNDS_SUGGESTED = 100_000
LINE_COLUMNS = 80


def rounds_for_half_width(sd: float, gap: float, *, max_rounds: int = MAX_ROUNDS_SUGGESTED) -> int | None:
    """Fewest rounds n (exact below 200, within 1% above) whose t-based 95% half-width,
    t(0.975, n-1) x sd / sqrt(n), falls under ``gap``, if the spread stays ``sd``; None when no n
    up to ``max_rounds`` does (or gap <= 0)."""
    if gap <= 0 or not math.isfinite(gap) or not math.isfinite(sd):
        return None
    if sd == 0:
        return 2
    n = max(2, math.ceil((1.959963984540054 * sd / gap) ** 2))  # the normal bound; t is wider
    while n <= max_rounds:
        if float(_st.t.ppf(0.975, n - 1)) * sd / math.sqrt(n) < gap:
            return n
        n += max(1, n // 100)  # steps of 1% keep the loop short for large n
    return None


@dataclass(frozen=True)
class PointVerdict:
    point: str
    n: int
    mean: float
    sd: float | None  # sample standard deviation of the per-round ratio; None for one round
    ci95: tuple[float, float] | None  # None for one round
    verdict: str  # MET, NOT_MET or INCONCLUSIVE
    rounds_needed: int | None = None  # INCONCLUSIVE only: see rounds_for_half_width

    def ci_text(self) -> str:
        return "-" if self.ci95 is None else f"{self.ci95[0]:.3f}-{self.ci95[1]:.3f}"


def point_verdict(point: str, ratios: Sequence[float], target: float = TARGET_RATIO) -> PointVerdict:
    """One point's verdict from its per-round ratios (greenbench items/s over bare items/s)."""
    s = summarize(ratios)
    if s.ci95 is None:
        return PointVerdict(point, s.n, s.mean, s.std, None, INCONCLUSIVE)
    lo, hi = s.ci95
    if lo >= target:
        return PointVerdict(point, s.n, s.mean, s.std, s.ci95, MET)
    if hi < target:
        return PointVerdict(point, s.n, s.mean, s.std, s.ci95, NOT_MET)
    needed = rounds_for_half_width(s.std or 0.0, abs(s.mean - target))
    return PointVerdict(point, s.n, s.mean, s.std, s.ci95, INCONCLUSIVE, needed)


@dataclass(frozen=True)
class Verdict:
    verdict: str  # MET, NOT_MET or INCONCLUSIVE
    target: float
    worst: PointVerdict  # the point that decides the verdict
    points: tuple[PointVerdict, ...]
    rounds_needed: int | None  # INCONCLUSIVE: rounds for every inconclusive point; None if none suffice

    def lines(self, width: int = LINE_COLUMNS) -> list[str]:
        """The verdict and, when inconclusive, what would make it conclusive, wrapped to ``width``."""
        w = self.worst
        rounds = f"{w.n} round{'s' if w.n != 1 else ''}"
        worst = f"Worst point {w.point}: ratio {w.mean:.3f}, 95% CI {w.ci_text()} over {rounds}"
        if self.verdict == MET:
            text = [worst + ": the whole interval is at or above the target."]
        elif self.verdict == NOT_MET:
            text = [worst + ": the whole interval is below the target."]
        else:
            text = [worst + ".", self._remedy()]
        out = [f"verdict (target: ratio >= {self.target:g} at every point, 95% CI): {self.verdict}"]
        for para in text:
            out += textwrap.wrap(para, width, initial_indent="  ", subsequent_indent="  ")
        return out

    def _remedy(self) -> str:
        w = self.worst
        quieter = "run on a quiet machine, or with a longer --window, to shrink the spread per round"
        if w.sd is None:
            return f"One round gives no interval: rerun with --rounds 2 or more (ideally many); or {quieter}."
        gap = abs(w.mean - self.target)
        if gap == 0:
            return (f"The mean ratio sits on the target, so no number of rounds can settle it at this "
                    f"spread; {quieter}.")
        if self.rounds_needed is None:
            return (f"The interval straddles the target; at the observed spread (ratio sd {w.sd:.3f}) "
                    f"more than {MAX_ROUNDS_SUGGESTED:,} rounds would be needed to narrow its half-"
                    f"width under the {gap:.2g} gap between the mean and the target: {quieter}.")
        return (f"The interval straddles the target. If the mean and the spread stay as observed "
                f"(ratio sd {w.sd:.3f}), about {self.rounds_needed:,} rounds (--rounds "
                f"{self.rounds_needed}) would narrow the interval's half-width under the {gap:.2g} "
                f"gap between the mean and the target, settling the verdict; or {quieter}.")


def overhead_verdict(ratios_by_point: Mapping[str, Sequence[float]], target: float = TARGET_RATIO) -> Verdict:
    """Verdict over all points: MET only when every point's whole 95% interval is at or above the
    target; NOT_MET when some point's whole interval is below it; INCONCLUSIVE otherwise.

    The worst point is the one that decides: for NOT_MET the point with the lowest interval top,
    for INCONCLUSIVE the inconclusive point that needs the most rounds (a point with one round or
    none enough first), for MET the point with the lowest interval bottom.
    """
    if not ratios_by_point:
        raise ValueError("no points to judge")
    points = tuple(point_verdict(p, r, target) for p, r in ratios_by_point.items())
    failed = [p for p in points if p.verdict == NOT_MET]
    if failed:
        worst = min(failed, key=lambda p: p.ci95[1])
        return Verdict(NOT_MET, target, worst, points, None)
    open_ = [p for p in points if p.verdict == INCONCLUSIVE]
    if open_:
        # no interval, or no rounds enough, is the hardest case; then the most rounds needed
        worst = max(open_, key=lambda p: (p.ci95 is None, p.rounds_needed is None, p.rounds_needed or 0))
        needed = None if any(p.rounds_needed is None for p in open_) else max(p.rounds_needed for p in open_)
        return Verdict(INCONCLUSIVE, target, worst, points, needed)
    worst = min(points, key=lambda p: p.ci95[0])
    return Verdict(MET, target, worst, points, None)


def _rate_text(samples: Sequence[float]) -> str:
    """'13,417,028 ±12%': the spread as a CV keeps the column narrow."""
    s = summarize(samples)
    return f"{s.mean:,.0f}" + ("" if s.cv is None else f" ±{s.cv:.0%}")


# One row: point 12, bare 16, greenbench 19, ratio 7, 95% CI 13, space, verdict 12 = 80 columns
ROW = "{:<12}{:>16}{:>19}{:>7}{:>13} {}"


def table_row(point: str, bare: Sequence[float], ours: Sequence[float], v: PointVerdict) -> str:
    return ROW.format(point, _rate_text(bare), _rate_text(ours), f"{v.mean:.3f}", v.ci_text(), v.verdict)


def bare_items_per_s(step, sync, batch: int, window_s: float) -> float:
    """Calibrated plain loop: a fixed count of steps, one clock read at each end."""
    t = time.perf_counter()
    n = 0
    while time.perf_counter() - t < 0.2:  # calibrate the count for ~window_s
        step()
        n += 1
    count = max(3, int(n * window_s / 0.2))
    sync()
    t0 = time.perf_counter()
    for _ in range(count):
        step()
    sync()
    return count * batch / (time.perf_counter() - t0)


def main() -> None:
    # the measuring side is imported here: importing this module (tests) needs only numpy/scipy
    from greenbench import meters
    from greenbench.measure import zoo as zoo
    from greenbench.measure.protocol import run_window, warm_up
    from greenbench.workloads import build_workload

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--point", action="append", help="model:batch (default linear:1, cnn-16:32, cnn-32:256)")
    ap.add_argument("--window", type=float, default=1.0, help="seconds per window (default 1)")
    ap.add_argument("--rounds", type=int, default=12, help="alternating rounds per point (default 12)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--meter", default="auto", help="meter used by the protocol loop (default auto)")
    args = ap.parse_args()
    if args.rounds < 2:
        ap.error("--rounds must be at least 2: one round gives no interval")
    points = [(p.split(":")[0], int(p.split(":")[1])) for p in (args.point or ["linear:1", "cnn-16:32", "cnn-32:256"])]
    lad = zoo.get_ladder("mnist1d")
    cache = Path(os.environ.get("GREENBENCH_CACHE") or Path(tempfile.gettempdir()) / "greenbench-bench-cache")
    headline, components = meters.select_meters(args.device, prefer=args.meter)
    meter_list = [headline, *components]
    print(f"device {args.device}; protocol meter: {headline.info().method} ({headline.info().domain}); "
          f"{args.rounds} rounds of {args.window} s per loop")
    print(ROW.format("point", "bare items/s", "greenbench items/s", "ratio", "95% CI", "verdict"))
    ratios_by_point: dict[str, list[float]] = {}
    for model, batch in points:
        wl = build_workload(lad.workload, **lad.builder_kwargs(model),
                            precision="fp32", device=args.device, cache_dir=cache)
        step = wl.make_step(batch)
        rate = warm_up(step, wl.sync, 1.0)
        bare, ours = [], []
        cuda_device = args.device if args.device.startswith("cuda") else None

        def ours_items_per_s(step=step, sync=wl.sync, batch=batch, rate=rate, cuda_device=cuda_device) -> float:
            trial = run_window(step, sync, meter_list, args.window, cuda_device=cuda_device,
                               steps_per_s_hint=rate)
            return trial.steps * batch / trial.window_s

        for i in range(args.rounds):  # ABBA order: a linear drift of the machine cancels out
            if i % 2 == 0:
                bare.append(bare_items_per_s(step, wl.sync, batch, args.window))
                ours.append(ours_items_per_s())
            else:
                ours.append(ours_items_per_s())
                bare.append(bare_items_per_s(step, wl.sync, batch, args.window))
        name = f"{model} b{batch}"
        ratios = list(np.array(ours) / np.array(bare))
        ratios_by_point[name] = ratios
        print(table_row(name, bare, ours, point_verdict(name, ratios)), flush=True)
        wl.close()
    for m in meter_list:
        m.close()
    for line in overhead_verdict(ratios_by_point).lines():
        print(line)


if __name__ == "__main__":
    main()
