"""Which hourly slots are "high carbon" (docs/pricing.md, spec §4): the one place that
decides it, for `greenbench price` and `greenbench simulate` alike.

Library only (numpy; no typer, no rich). Everything is vectorised over the trace: per-day and
per-month choices are group-wise sorts and cumulative sums, not Python loops.

The steps:
1. a forecast CI_f per slot (``perfect`` = the actual trace, ``persistence`` = the same local
   wall-clock hour a day earlier (the first day has none and is never degraded), ``column`` = the
   trace's forecast);
2. a cap mode picks the high slots of each local day from CI_f (``exceedance``, ``average``,
   ``share``: the dirtiest slots whose demand comes closest to q · (the day's demand));
3. per billing month, the realised share p = Σ_High n / Σ n is truncated to p <= p_max, the least
   dirty high slots (by CI_f) dropped first (``truncation="month"``, the specification), or, as an
   operator without hindsight would, day by day in time order until the month's budget
   p_max · (month demand) is spent (``truncation="day-ahead"``). p <= p_max is a contractual
   ceiling, so the budget is never rounded up: a month keeps the whole high slots that fit in it;
4. p_max is given, or a quantile of the untruncated monthly p over the complete months (default the
   maximum: no truncation).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from greenbench.errors import GreenbenchError
from greenbench.safeload import InputError, read_text
from greenbench.units import S_PER_DAY, S_PER_HOUR

FORECASTS = ("auto", "perfect", "persistence", "column")
CAP_MODES = ("exceedance", "average", "share")
TRUNCATIONS = ("month", "day-ahead")
DEFAULT_CAP_QUANTILE = {"exceedance": 0.75, "average": 0.5}
DEFAULT_DAILY_SHARE = 0.25
HOURS_PER_PERIOD = 730.0  # a billing period: a twelfth of a 365-day year (monthly figures prorate)
COMPLETE_MONTH_HOURS = 27 * 24  # months with fewer hourly slots are partial: not used to derive p_max
DAY_S = S_PER_DAY
_REL = 1e-12  # relative tolerance of the cumulative comparisons (float sums, exact ties)


class SlotError(GreenbenchError):
    """A slot-selection option that cannot work with this trace (one line)."""


@dataclass(frozen=True)
class SlotPolicy:
    """How high-carbon slots are chosen. None means "the documented default"."""

    forecast: str = "auto"  # auto: the trace's forecast column if it has one, else persistence
    cap_mode: str = "exceedance"
    cap_gco2e_per_kwh: float | None = None  # I_cap; default: cap_quantile of the forecast
    cap_quantile: float | None = None  # default 0.75 (exceedance) or 0.5 (average)
    daily_share: float | None = None  # q of share mode; default 0.25
    p_max: float | None = None  # contractual ceiling; default: derived from the trace
    p_max_quantile: float = 1.0  # quantile of the complete months' p when p_max is derived
    truncation: str = "month"
    demand: str = "flat"  # flat, or the path of a CSV of 24 local-hour weights

    def check(self) -> None:
        for name, value, choices in (("forecast", self.forecast, FORECASTS),
                                     ("cap mode", self.cap_mode, CAP_MODES),
                                     ("truncation", self.truncation, TRUNCATIONS)):
            if value not in choices:
                raise SlotError(f"{name} {value!r}: choose one of {', '.join(choices)}")
        for name, v, lo, hi in (("cap quantile", self.cap_quantile, 0, 1), ("daily share", self.daily_share, 0, 1),
                                ("p_max", self.p_max, 0, 1), ("p_max quantile", self.p_max_quantile, 0, 1)):
            if v is not None and not (math.isfinite(v) and lo <= v <= hi):
                raise SlotError(f"{name} {v}: give a number from {lo} to {hi}")
        cap = self.cap_gco2e_per_kwh
        if cap is not None and not (math.isfinite(cap) and cap >= 0):
            raise SlotError(f"cap {cap} gCO2e/kWh: give a finite number >= 0")
        if self.cap_mode == "share" and (self.cap_gco2e_per_kwh is not None or self.cap_quantile is not None):
            raise SlotError("share mode has no intensity cap: give --daily-share, not --cap-gco2e-per-kwh "
                            "or --cap-quantile")
        if self.cap_mode != "share" and self.daily_share is not None:
            raise SlotError(f"--daily-share applies to --cap-mode share, not {self.cap_mode}")
        if self.cap_gco2e_per_kwh is not None and self.cap_quantile is not None:
            raise SlotError("give the cap either in gCO2e/kWh or as a quantile, not both")


@dataclass(frozen=True, eq=False)
class Slots:
    """A trace's slots, sorted by time, with the demand and the chosen high slots."""

    time_utc: np.ndarray  # datetime64[s]
    intensity: np.ndarray  # CI(t), actual, gCO2e/kWh (all accounting uses it)
    forecast: np.ndarray  # CI_f(t); NaN where no forecast exists (never degraded)
    day: np.ndarray  # local day index
    month: np.ndarray  # billing month index 0..M-1
    month_labels: tuple[str, ...]  # "2023-01", ...
    demand: np.ndarray  # d(t), mean 1 over the trace: per user n(t) = N · d(t) / (mean d per period)
    high_candidate: np.ndarray  # bool: high by the cap mode, before the p_max truncation
    high: np.ndarray  # bool: degraded for green users
    forecast_used: str
    cap_gco2e_per_kwh: float | None
    cap_source: str
    daily_share: float | None
    p_max: float
    p_max_source: str
    complete_months: np.ndarray  # bool per month
    month_hours: np.ndarray
    month_demand: np.ndarray  # Σ d over each month
    p_month_candidate: np.ndarray  # p per month before truncation
    p_month: np.ndarray  # p per month after truncation (<= p_max)
    policy: SlotPolicy = field(default_factory=SlotPolicy)

    @property
    def periods(self) -> float:
        """Billing periods the trace covers (hours / 730)."""
        return len(self.time_utc) / HOURS_PER_PERIOD

    @property
    def weight(self) -> np.ndarray:
        """Each slot's share of all requests over the trace: d(t) / Σ d."""
        return self.demand / self.demand.sum()

    @property
    def p(self) -> float:
        """Realised share of requests degraded over the whole trace."""
        return float(self.weight[self.high].sum())


# ------------------------------------------------------------------------------------------------
# group-wise helpers (groups are contiguous after sorting)


def _group_cumsum(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Inclusive cumulative sum restarting at each group (``groups`` sorted, contiguous)."""
    cs = np.cumsum(values)
    starts = np.r_[0, np.flatnonzero(np.diff(groups)) + 1]
    offset = np.r_[0.0, cs[starts[1:] - 1]] if len(starts) > 1 else np.zeros(1)
    lengths = np.diff(np.r_[starts, len(values)])
    return cs - np.repeat(offset, lengths)


def _group_total(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each element's group total (groups as small non-negative ints, any order)."""
    totals = np.bincount(groups, weights=values)
    return totals[groups]


def _dirtiest_first(groups: np.ndarray, forecast: np.ndarray, outer: np.ndarray | None = None) -> np.ndarray:
    """Order: by (outer,) group, then CI_f descending, ties by time (earlier first); NaN last."""
    n = len(forecast)
    key = np.where(np.isnan(forecast), np.inf, -forecast)
    keys = (np.arange(n), key, groups) if outer is None else (np.arange(n), key, groups, outer)
    return np.lexsort(keys)


# ------------------------------------------------------------------------------------------------


def forecast_for(trace, mode: str) -> tuple[np.ndarray, str]:
    """CI_f per slot, and the mode that ran (``auto`` resolved)."""
    ci = np.asarray(trace.intensity_gco2e_per_kwh, dtype=float)
    column = getattr(trace, "forecast_gco2e_per_kwh", None)
    if mode == "auto":
        mode = "column" if column is not None else "persistence"
    if mode == "perfect":
        return ci.copy(), mode
    if mode == "column":
        if column is None:
            raise SlotError(f"trace {trace.name} has no forecast column: use --forecast persistence or perfect, "
                            "or a CSV trace with a forecast_gco2e_per_kwh column")
        return np.asarray(column, dtype=float).copy(), mode
    # persistence: the same local wall-clock hour one day earlier (the trace is hourly and gap-free)
    src = persistence_source(trace)
    return np.where(src >= 0, ci[np.maximum(src, 0)], np.nan), mode


def persistence_source(trace) -> np.ndarray:
    """For each slot, the index of the slot a persistence forecast copies, or -1 (none: NaN).

    The source is the same local wall-clock hour one day earlier, on the trace's clock (the trace
    knows its time zone), so a daily pattern on local time persists across a DST change. Where that
    local hour occurred twice (clocks went back), the first is used; where it did not exist (clocks
    went forward), the hour 24 h earlier is. With no time zone, local time is UTC."""
    t = np.asarray(trace.time_utc, dtype="datetime64[s]").astype(np.int64)
    local = np.asarray(trace.local_s(), dtype=np.int64) if hasattr(trace, "local_s") else t
    n = len(t)
    order = np.argsort(local, kind="stable")  # repeated local hours keep time order: the first wins
    ls = local[order]
    target = local - DAY_S
    pos = np.minimum(np.searchsorted(ls, target, side="left"), max(n - 1, 0))
    src = np.where(ls[pos] == target, order[pos], -1)
    # no such local hour yesterday (spring forward): 24 h earlier on the UTC clock, if in the trace
    pos_u = np.minimum(np.searchsorted(t, t - DAY_S), max(n - 1, 0))
    utc = np.where(t[pos_u] == t - DAY_S, pos_u, -1)
    return np.where(src >= 0, src, utc)


def demand_for(trace, spec: str) -> np.ndarray:
    """d(t) with mean 1: flat, or 24 weights by local hour of day from a CSV (hour,weight)."""
    n = len(trace.time_utc)
    if spec == "flat":
        return np.ones(n)
    weights = read_demand_csv(spec)
    local_s = trace.local_s() if hasattr(trace, "local_s") else np.asarray(trace.time_utc).astype(np.int64)
    hour = (np.asarray(local_s) % DAY_S) // S_PER_HOUR
    d = weights[hour.astype(int)]
    if d.sum() <= 0:
        raise SlotError(f"{spec}: the demand weights give no requests at all in this trace")
    return d / d.mean()


MAX_DEMAND_BYTES = 2**20  # 24 rows of hour,weight are a few hundred bytes


def read_demand_csv(path: str) -> np.ndarray:
    """A demand profile: CSV with columns hour (0-23, local) and weight (>= 0), 24 rows."""
    p = Path(path)
    try:
        text = read_text(p, what="demand profile", max_bytes=MAX_DEMAND_BYTES)
    except InputError as e:
        raise SlotError(f"{e}; give 'flat' or a CSV with columns hour,weight") from None
    try:
        rows = list(csv.DictReader(text.splitlines()))
    except csv.Error as e:  # e.g. a field over the csv module's size limit, an unclosed quote
        raise SlotError(f"{p}: not a CSV file that can be read ({e}); give 'flat' or a CSV with columns "
                        "hour,weight") from None
    if not rows or not {"hour", "weight"} <= set(rows[0]):
        raise SlotError(f"{p}: a demand profile needs the columns hour,weight (24 rows, local hours 0-23)")
    w = np.full(24, np.nan)
    for k, r in enumerate(rows, start=2):
        try:
            h, v = int(r["hour"]), float(r["weight"])
        except (TypeError, ValueError):
            raise SlotError(f"{p}:{k}: cannot read hour {r.get('hour')!r} / weight {r.get('weight')!r}") from None
        if not (0 <= h <= 23) or not math.isfinite(v) or v < 0:
            raise SlotError(f"{p}:{k}: hour must be 0-23 and weight a finite number >= 0")
        if not np.isnan(w[h]):
            raise SlotError(f"{p}:{k}: hour {h} appears twice")
        w[h] = v
    if np.isnan(w).any():
        raise SlotError(f"{p}: hours {', '.join(str(h) for h in np.flatnonzero(np.isnan(w)))} missing (give all 24)")
    if w.sum() <= 0:
        raise SlotError(f"{p}: all weights are 0")
    return w


def _cap(policy: SlotPolicy, forecast: np.ndarray) -> tuple[float | None, str]:
    if policy.cap_mode == "share":
        return None, "none (share mode)"
    if policy.cap_gco2e_per_kwh is not None:
        return float(policy.cap_gco2e_per_kwh), "given"
    q = policy.cap_quantile if policy.cap_quantile is not None else DEFAULT_CAP_QUANTILE[policy.cap_mode]
    known = forecast[np.isfinite(forecast)]
    if not len(known):
        raise SlotError("no forecast value in the trace to derive the cap from (a one-day trace with "
                        "a persistence forecast?): give --cap-gco2e-per-kwh or another --forecast")
    given = policy.cap_quantile is not None
    return float(np.quantile(known, q)), f"quantile {q:g} of the forecast" + ("" if given else " (default)")


def candidates(forecast: np.ndarray, day: np.ndarray, demand: np.ndarray, mode: str,
               cap: float | None, share: float | None) -> np.ndarray:
    """High slots of each local day by the cap mode (before the p_max truncation).

    ``share`` is needed in share mode, ``cap`` in the others."""
    if mode != "share" and cap is None:
        raise ValueError(f"candidates: {mode} mode needs a cap")
    known = np.isfinite(forecast)
    if mode == "exceedance":
        return known & (np.where(known, forecast, -np.inf) > cap)
    order = _dirtiest_first(day, forecast)
    f, d, g, k = forecast[order], demand[order], day[order], known[order]
    dk = np.where(k, d, 0.0)
    high = np.zeros(len(f), dtype=bool)
    if mode == "share":
        if share is None:
            raise ValueError("candidates: share mode needs a share")
        # The dirtiest slots whose demand comes closest to q · (the day's demand): a slot is taken
        # when the middle of its demand falls within the first q · D of the day, dirtiest first
        # (round to the nearest slot, ties take it). Rounding down instead would give a short edge
        # day (trace start or end, a time-zone edge) no high slot even when it is the dirtiest.
        cum_excl = _group_cumsum(dk, g) - dk
        total = _group_total(d, g)
        high_sorted = k & (share > 0) & (cum_excl + dk / 2 <= share * total * (1 + _REL))
    else:  # average: drop the dirtiest while the remaining demand-weighted mean CI_f exceeds cap
        s = dk * np.where(k, f, 0.0)
        cum_d_excl = _group_cumsum(dk, g) - dk
        cum_s_excl = _group_cumsum(s, g) - s
        rem_d = _group_total(dk, g) - cum_d_excl
        rem_s = _group_total(s, g) - cum_s_excl
        high_sorted = k & (rem_d > 0) & (rem_s - cap * rem_d > _REL * np.maximum(np.abs(rem_s), 1.0))
    high[order] = high_sorted
    return high


def truncate(high: np.ndarray, forecast: np.ndarray, day: np.ndarray, month: np.ndarray,
             demand: np.ndarray, p_max: float, how: str) -> np.ndarray:
    """Keep p <= p_max in each month: the least dirty high slots go first (``month``), or day by day
    in time order until the month's budget is spent (``day-ahead``).

    The budget p_max · (month demand) is a ceiling, never rounded up: a month keeps the whole slots
    that fit, so its p falls short of p_max by less than one slot's demand. Months are shorted
    unequally, which can put ρ a hair below ρ_blind even with a perfect forecast (docs/pricing.md)."""
    if p_max >= 1.0 or not high.any():
        return high.copy()
    order = _dirtiest_first(month, forecast) if how == "month" else _dirtiest_first(day, forecast, outer=month)
    m = month[order]
    cum = _group_cumsum(np.where(high[order], demand[order], 0.0), m)
    budget = p_max * _group_total(demand[order], m)
    keep = np.zeros(len(high), dtype=bool)
    keep[order] = high[order] & (cum <= budget * (1 + _REL) + 1e-300)
    return keep


def month_shares(flags: np.ndarray, month: np.ndarray, demand: np.ndarray, n_months: int) -> np.ndarray:
    tot = np.bincount(month, weights=demand, minlength=n_months)
    hi = np.bincount(month, weights=np.where(flags, demand, 0.0), minlength=n_months)
    return np.divide(hi, tot, out=np.zeros(n_months), where=tot > 0)


def select(trace, policy: SlotPolicy = SlotPolicy(), demand: np.ndarray | None = None) -> Slots:
    """The high-carbon slots of ``trace`` under ``policy`` (the one selection price and simulate use).

    ``demand`` (one weight >= 0 per slot) overrides ``policy.demand`` for library callers."""
    policy.check()
    time = np.asarray(trace.time_utc, dtype="datetime64[s]")
    if len(time) > 1 and not np.all(np.diff(time.astype(np.int64)) > 0):
        raise SlotError(f"trace {trace.name}: times must be sorted and distinct")
    ci = np.asarray(trace.intensity_gco2e_per_kwh, dtype=float)
    day = np.asarray(trace.local_day_index(), dtype=np.int64)
    month = np.asarray(trace.month_index(), dtype=np.int64)
    month = month - month.min()
    n_months = int(month.max()) + 1
    first = time[0].astype("datetime64[M]") + int(np.asarray(trace.month_index()).min())
    labels = tuple(str(first + i) for i in range(n_months))
    if demand is None:
        demand = demand_for(trace, policy.demand)
    else:
        demand = np.asarray(demand, dtype=float)
        if demand.shape != ci.shape or not np.all(np.isfinite(demand)) or np.any(demand < 0) or demand.sum() <= 0:
            raise SlotError("demand: one finite weight >= 0 per slot, not all 0")
        demand = demand / demand.mean()
    forecast, used = forecast_for(trace, policy.forecast)
    cap, cap_source = _cap(policy, forecast)
    share = None
    if policy.cap_mode == "share":
        share = DEFAULT_DAILY_SHARE if policy.daily_share is None else policy.daily_share
    cand = candidates(forecast, day, demand, policy.cap_mode, cap, share)

    hours = np.bincount(month, minlength=n_months)
    complete = hours >= COMPLETE_MONTH_HOURS
    p_cand = month_shares(cand, month, demand, n_months)
    if policy.p_max is not None:
        p_max, p_src = float(policy.p_max), "given"
    else:
        basis = p_cand[complete] if complete.any() else p_cand
        p_max = float(np.quantile(basis, policy.p_max_quantile))
        what = "maximum" if policy.p_max_quantile == 1.0 else f"quantile {policy.p_max_quantile:g}"
        p_src = (f"derived: {what} of the monthly p over {len(basis)} "
                 + ("complete months" if complete.any() else "(partial) months"))
    high = truncate(cand, forecast, day, month, demand, p_max, policy.truncation)
    return Slots(
        time_utc=time, intensity=ci, forecast=forecast, day=day, month=month, month_labels=labels,
        demand=demand, high_candidate=cand, high=high, forecast_used=used, cap_gco2e_per_kwh=cap,
        cap_source=cap_source, daily_share=share, p_max=p_max, p_max_source=p_src,
        complete_months=complete, month_hours=hours,
        month_demand=np.bincount(month, weights=demand, minlength=n_months),
        p_month_candidate=p_cand, p_month=month_shares(high, month, demand, n_months), policy=policy,
    )
