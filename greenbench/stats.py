"""Summary statistics over repeated trials, reported the hyperfine way: mean ± σ, CV, 95% CI."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

PERCENTILES = (50, 90, 95, 99)


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation, coefficient of variation and a t-based 95% interval."""

    n: int
    mean: float
    std: float | None  # sample standard deviation (ddof=1); None for n == 1
    cv: float | None  # std / |mean|; None for n == 1 or a zero mean
    ci95: tuple[float, float] | None  # None with fewer than 2 samples
    min: float
    max: float

    @property
    def half_width(self) -> float | None:
        return None if self.ci95 is None else (self.ci95[1] - self.ci95[0]) / 2


def summarize(samples: Sequence[float]) -> Summary:
    """Summary of ``samples``; raises ValueError on an empty or non-finite input."""
    x = np.asarray(samples, dtype=float)
    if x.size == 0:
        raise ValueError("no samples to summarize")
    if not np.all(np.isfinite(x)):
        raise ValueError("samples must be finite")
    n = int(x.size)
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if n > 1 else None
    cv = std / abs(mean) if std is not None and mean != 0 else None
    ci: tuple[float, float] | None = None
    if std is not None:  # n > 1
        h = float(_st.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
        # A quantity that cannot be negative (energy, throughput) keeps a lower bound of at
        # least 0: with few, spread samples the symmetric t-interval would cross zero.
        lo = max(mean - h, 0.0) if bool(np.all(x >= 0)) else mean - h
        ci = (lo, mean + h)
    return Summary(n, mean, std, cv, ci, float(x.min()), float(x.max()))


def wilson_interval(correct: int, total: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (well behaved near 0 and 1, unlike Wald)."""
    if total <= 0:
        raise ValueError("total must be positive")
    if not 0 <= correct <= total:
        raise ValueError("correct must lie in [0, total]")
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def percentiles_ms(durations_s: Sequence[float] | np.ndarray) -> dict[int, float]:
    """p50/p90/p95/p99 of durations given in seconds, returned in milliseconds."""
    x = np.asarray(durations_s, dtype=float)
    if x.size == 0:
        raise ValueError("no durations")
    values = np.percentile(x, PERCENTILES) * 1e3
    return {p: float(v) for p, v in zip(PERCENTILES, values, strict=True)}


def format_mean_std(s: Summary, digits: int = 3) -> str:
    """'1.23 ± 0.04' with significant digits, for tables."""
    return f"{s.mean:.{digits}g}" if s.std is None else f"{s.mean:.{digits}g} ± {s.std:.2g}"
