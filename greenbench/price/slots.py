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
   maximum: no truncation); ``SlotPolicy.p_max_basis="expected"`` takes the mean monthly p instead
   (a departure from the paper, which contracts on the worst month; the notes say so).

Ties: each day's cap-mode choice uses that day's own sums (``_group_cumsum`` restarts from 0 at
every group), and differences under ``_DAY_REL`` (1e-9) of the day's own scale are ties. In
average mode a tie keeps the slot at full quality (spec §4 stops removing once the remaining mean is
<= I_cap): a day with every hour at I_cap has no high hour; in share mode a tie takes the slot.

Demand (``SlotPolicy.demand``, the string ``--demand`` passes on; ``load_demand(trace, spec) ->
Demand``): ``flat``, or a CSV whose header names its form: ``hour,weight`` (24 local hours),
``day_of_week,hour,weight`` (168 rows, 0 = Monday, local time) or ``time,requests`` (the request
count of every hour of the trace, matched by instant; missing hours, duplicates, negative or
non-finite counts are refused with one line; rows outside the trace are noted). ``demand_for``
returns just the weights; ``read_demand_csv`` reads a 24-hour shape.

What drove the numbers, on ``Slots``: ``p`` (realised), ``p_max``, ``p_max_over_p`` (None with
``p_max_over_p_reason`` when p = 0), ``demand_form``, and ``notes`` (one line each: p_max = 0 and
why, a p_max below one hour, the share share mode really delivers in whole hours, the expected-month
basis, demand rows not used), which the calculator appends to its own notes. ``Slots.drivers()``
is the same as a JSON-ready dict (no NaN or inf).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path

import numpy as np

from greenbench.carbon.hourly import ISO_HINT, fromiso, iso_utc
from greenbench.errors import GreenbenchError
from greenbench.safeload import InputError, read_text
from greenbench.units import S_PER_DAY, S_PER_HOUR

FORECASTS = ("auto", "perfect", "persistence", "column")
CAP_MODES = ("exceedance", "average", "share")
TRUNCATIONS = ("month", "day-ahead")
P_MAX_BASES = ("worst", "expected")
DEFAULT_CAP_QUANTILE = {"exceedance": 0.75, "average": 0.5}
DEFAULT_DAILY_SHARE = 0.25
HOURS_PER_PERIOD = 730.0  # a billing period: a twelfth of a 365-day year (monthly figures prorate)
COMPLETE_MONTH_HOURS = 27 * 24  # months with fewer hourly slots are partial: not used to derive p_max
DAY_S = S_PER_DAY
_REL = 1e-12  # relative tolerance of the month budget (float sums of at most 745 terms, exact ties)
SHARE_NOTE_REL = 0.01  # share mode notes the share it delivers when that is over 1% (of q) off q
_DAY_REL = 1e-9  # a day's cap-mode comparison: differences under this share of the day's own sums are ties


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
    # How a derived p_max is taken: "worst" (the specification and the paper: the p_max_quantile,
    # by default the maximum, of the complete months' p) or "expected" (a departure from the
    # paper: the mean of the complete months' p, so users are paid for the month they can expect;
    # months above it are truncated to it, since p_max stays a contractual ceiling).
    p_max_basis: str = "worst"
    truncation: str = "month"
    demand: str = "flat"  # flat, or the path of a demand CSV (load_demand: daily, weekly or hourly)

    def check(self) -> None:
        for name, value, choices in (("forecast", self.forecast, FORECASTS),
                                     ("cap mode", self.cap_mode, CAP_MODES),
                                     ("truncation", self.truncation, TRUNCATIONS),
                                     ("p_max basis", self.p_max_basis, P_MAX_BASES)):
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
        if self.p_max_basis == "expected" and self.p_max is not None:
            raise SlotError("p_max basis 'expected' derives p_max from the trace: give it or --p-max, not both")
        if self.p_max_basis == "expected" and self.p_max_quantile != 1.0:
            raise SlotError("p_max basis 'expected' is the mean monthly p, not a quantile: give it or "
                            "--p-max-quantile, not both")


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
    demand_form: str = "flat"  # one of DEMAND_FORMS ("library" for a demand array given to select)
    # One line each for outcomes a reader would not see from the figures alone (p_max = 0, share
    # mode's whole hours, a departure from the paper): the calculator appends them to its notes.
    notes: tuple[str, ...] = ()

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

    @property
    def p_max_over_p(self) -> float | None:
        """p_max / p: how many times the degradation users see they are paid for (δ* scales with
        p_max, users see p). None when p = 0 (``p_max_over_p_reason`` says why)."""
        p = self.p
        return self.p_max / p if p > 0 else None

    @property
    def p_max_over_p_reason(self) -> str | None:
        """Why ``p_max_over_p`` is None, else None."""
        if self.p > 0:
            return None
        return "no request is degraded (p = 0)" + (" and p_max is 0" if self.p_max == 0 else "")

    def drivers(self) -> dict:
        """What drove the numbers, for JSON (no NaN or inf: None with a reason)."""
        return {"p": self.p, "p_max": self.p_max, "p_max_source": self.p_max_source,
                "p_max_basis": self.policy.p_max_basis, "p_max_over_p": self.p_max_over_p,
                "p_max_over_p_reason": self.p_max_over_p_reason, "demand_form": self.demand_form,
                "notes": list(self.notes)}


# ------------------------------------------------------------------------------------------------
# group-wise helpers (groups are contiguous after sorting)


def _group_cumsum(values: np.ndarray, groups: np.ndarray, reverse: bool = False) -> np.ndarray:
    """Inclusive cumulative sum within each group (``groups`` sorted, contiguous), from the end of
    the group when ``reverse`` (a suffix sum: what remains from this element on).

    Each group's sum starts from 0 and adds only the group's own values (a padded table with one
    row per group): a running sum over the whole trace minus the earlier groups' total, as before,
    carried the year's roundoff into every late day and decided exact ties by chance (NO 2023-08-20
    in average mode, every hour high where the specification keeps one). The table has
    (groups x longest group) cells: days hold at most 25 hourly slots and months at most 745, so it
    is about the size of the trace."""
    n = len(values)
    if n == 0:
        return np.zeros(0)
    starts = np.r_[0, np.flatnonzero(np.diff(groups)) + 1]
    lengths = np.diff(np.r_[starts, n])
    row = np.repeat(np.arange(len(starts)), lengths)
    col = np.arange(n) - np.repeat(starts, lengths)
    table = np.zeros((len(starts), int(lengths.max())))
    table[row, col] = values
    cs = np.cumsum(table[:, ::-1], axis=1)[:, ::-1] if reverse else np.cumsum(table, axis=1)
    return cs[row, col]


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


DEMAND_FORMS = ("flat", "daily", "weekly", "hourly")
MAX_DEMAND_BYTES = 2**20  # a 24- or 168-row shape is a few kB (read_demand_csv's bound)
# An hourly series of request counts: ~30 bytes a row, so 32 MiB hold over a century of hours.
MAX_DEMAND_SERIES_BYTES = 32 * 2**20
_DEMAND_HINT = ("give 'flat' or a CSV with columns hour,weight (24 local hours), day_of_week,hour,weight "
                "(168 rows, 0 = Monday) or time,requests (one row per hour of the trace)")
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


@dataclass(frozen=True, eq=False)
class Demand:
    """The demand weights d(t) of a trace's slots (mean 1) and what they came from."""

    weight: np.ndarray  # d(t) >= 0 per slot, mean 1 over the trace
    form: str  # one of DEMAND_FORMS
    source: str  # "flat" or the CSV's path
    notes: tuple[str, ...] = ()  # what the reading did that a reader should know (rows not used)


def demand_for(trace, spec: str) -> np.ndarray:
    """d(t) with mean 1 (``load_demand(trace, spec).weight``)."""
    return load_demand(trace, spec).weight


def load_demand(trace, spec: str) -> Demand:
    """The demand of ``spec`` over ``trace``: ``flat``, or a CSV whose header names its form:

    - ``hour,weight``: 24 weights by local hour of day (the trace's time zone);
    - ``day_of_week,hour,weight``: 168 weights by local day of the week (0 = Monday .. 6 = Sunday)
      and hour, e.g. office traffic that falls at weekends;
    - ``time,requests``: the request count of every hour of the trace (ISO 8601 times with ``Z`` or
      an offset; a ``time_utc`` column may be naive UTC), matched to the trace's hours. Every trace
      hour must appear exactly once with a finite count >= 0; rows outside the trace are not used
      (a note says how many).
    Local time is the trace's (``trace.local_s()``), UTC for a trace with no time zone."""
    n = len(trace.time_utc)
    if spec == "flat":
        return Demand(np.ones(n), "flat", "flat")
    p = Path(spec)
    rows = _demand_rows(p, MAX_DEMAND_SERIES_BYTES)
    if not rows:
        raise SlotError(f"{p}: a header and no rows; {_DEMAND_HINT}")
    cols = set(rows[0])
    notes: tuple[str, ...] = ()
    if {"time", "requests"} <= cols or {"time_utc", "requests"} <= cols:
        d, notes = _hourly_series(p, rows, trace)
        form = "hourly"
    else:
        local_s = np.asarray(trace.local_s() if hasattr(trace, "local_s")
                             else np.asarray(trace.time_utc, dtype="datetime64[s]").astype(np.int64))
        hour = ((local_s % DAY_S) // S_PER_HOUR).astype(int)
        if {"day_of_week", "hour", "weight"} <= cols:
            w = _weekly_weights(p, rows)
            dow = ((local_s // DAY_S + _EPOCH_WEEKDAY) % 7).astype(int)
            d, form = w[dow, hour], "weekly"
        else:
            d, form = _daily_weights(p, rows)[hour], "daily"
    if d.sum() <= 0:
        raise SlotError(f"{spec}: the demand gives no requests at all in this trace's hours")
    return Demand(d / d.mean(), form, spec, notes)


def _demand_rows(p: Path, max_bytes: int) -> list[dict]:
    try:
        text = read_text(p, what="demand profile", max_bytes=max_bytes)
    except InputError as e:
        raise SlotError(f"{e}; {_DEMAND_HINT}") from None
    try:
        return list(csv.DictReader(text.splitlines()))
    except csv.Error as e:  # e.g. a field over the csv module's size limit, an unclosed quote
        raise SlotError(f"{p}: not a CSV file that can be read ({e}); {_DEMAND_HINT}") from None


def read_demand_csv(path: str) -> np.ndarray:
    """A 24-hour demand shape: CSV with columns hour (0-23, local) and weight (>= 0), 24 rows."""
    p = Path(path)
    return _daily_weights(p, _demand_rows(p, MAX_DEMAND_BYTES))


def _weight(p: Path, k: int, r: dict, keys: tuple[str, ...]) -> tuple[list[int], float]:
    try:
        return [int(r[key]) for key in keys], float(r["weight"])
    except (TypeError, ValueError):
        shown = " / ".join(f"{key} {r.get(key)!r}" for key in (*keys, "weight"))
        raise SlotError(f"{p}:{k}: cannot read {shown}") from None


def _daily_weights(p: Path, rows: list[dict]) -> np.ndarray:
    if not rows or not {"hour", "weight"} <= set(rows[0]):
        raise SlotError(f"{p}: a demand profile needs the columns hour,weight (24 rows, local hours 0-23), "
                        "day_of_week,hour,weight (168 rows) or time,requests (an hourly series)")
    w = np.full(24, np.nan)
    for k, r in enumerate(rows, start=2):
        (h,), v = _weight(p, k, r, ("hour",))
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


def _weekly_weights(p: Path, rows: list[dict]) -> np.ndarray:
    """168 weights as a (day of week, hour) table; day 0 is Monday."""
    w = np.full((7, 24), np.nan)
    for k, r in enumerate(rows, start=2):
        (dow, h), v = _weight(p, k, r, ("day_of_week", "hour"))
        if not (0 <= dow <= 6 and 0 <= h <= 23) or not math.isfinite(v) or v < 0:
            raise SlotError(f"{p}:{k}: day_of_week must be 0-6 (0 = Monday), hour 0-23 and weight a finite "
                            "number >= 0")
        if not np.isnan(w[dow, h]):
            raise SlotError(f"{p}:{k}: day {dow}, hour {h} appears twice")
        w[dow, h] = v
    missing = np.argwhere(np.isnan(w))
    if len(missing):
        dow, h = missing[0]
        raise SlotError(f"{p}: {len(missing)} of the 168 (day_of_week, hour) rows missing, the first "
                        f"day {dow} hour {h} (give all 7 x 24)")
    if w.sum() <= 0:
        raise SlotError(f"{p}: all weights are 0")
    return w


def _hourly_series(p: Path, rows: list[dict], trace) -> tuple[np.ndarray, tuple[str, ...]]:
    """The request count of each trace hour from a time,requests series (see ``load_demand``)."""
    tcol = "time" if "time" in rows[0] else "time_utc"
    utc = np.zeros(len(rows), dtype=np.int64)
    counts = np.zeros(len(rows))
    for k, r in enumerate(rows):
        text, value = (r.get(tcol) or "").strip(), r.get("requests")
        try:
            dt = fromiso(text)
        except ValueError:
            raise SlotError(f"{p}:{k + 2}: cannot read time {text!r}; {ISO_HINT}") from None
        if dt.tzinfo is None:
            if tcol != "time_utc":
                raise SlotError(f"{p}:{k + 2}: time {text!r} has no time zone; add 'Z' or an offset "
                                "(+01:00), or name the column time_utc if it is UTC")
            dt = dt.replace(tzinfo=timezone.utc)
        ts = dt.timestamp()
        if ts != round(ts) or int(ts) % S_PER_HOUR:
            raise SlotError(f"{p}:{k + 2}: time {text!r} is not at the start of an hour (one row per hour)")
        utc[k] = int(ts)
        try:
            counts[k] = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise SlotError(f"{p}:{k + 2}: cannot read requests {value!r} as a number") from None
        if not math.isfinite(counts[k]) or counts[k] < 0:
            raise SlotError(f"{p}:{k + 2}: requests {value!r}: give a finite count >= 0")
    order = np.argsort(utc, kind="stable")
    su = utc[order]
    dup = np.flatnonzero(np.diff(su) == 0)
    if len(dup):
        a, b = sorted((int(order[dup[0]]), int(order[dup[0] + 1])))
        raise SlotError(f"{p}:{b + 2}: hour {iso_utc(int(su[dup[0]]))} appears twice (also line {a + 2}; "
                        f"{len(dup)} duplicate(s) in all): keep one row per hour")
    t = np.asarray(trace.time_utc, dtype="datetime64[s]").astype(np.int64)
    pos = np.minimum(np.searchsorted(su, t), len(su) - 1)
    found = su[pos] == t
    if not found.all():
        miss = np.flatnonzero(~found)
        raise SlotError(f"{p}: {len(miss)} of the trace's {len(t)} hours have no row, the first "
                        f"{iso_utc(int(t[miss[0]]))}: give the request count of every hour of the trace")
    unused = len(rows) - len(t)
    notes = (f"demand series {p}: {unused} row(s) outside the trace's hours not used",) if unused else ()
    return counts[order[pos]], notes


STUB_MONTH_HOURS = 24  # a first or last month with fewer hours is a stub: it joins its neighbour


def fold_stub_months(month: np.ndarray, labels: tuple[str, ...]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Spec §11: a stub of a few hours at either end of the trace (a trace that starts at 20:00 on
    the last day of a month) joins the neighbouring month, never priced as a month of its own."""
    month = np.array(month, dtype=np.int64)
    keep = list(range(len(labels)))
    hours = np.bincount(month, minlength=len(labels))
    if len(keep) > 1 and hours[keep[0]] < STUB_MONTH_HOURS:
        month[month == keep[0]] = keep[1]
        keep = keep[1:]
    if len(keep) > 1 and hours[keep[-1]] < STUB_MONTH_HOURS:
        month[month == keep[-1]] = keep[-2]
        keep = keep[:-1]
    renumber = {m: i for i, m in enumerate(keep)}
    return np.array([renumber[m] for m in month.tolist()], dtype=np.int64), tuple(labels[m] for m in keep)


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
    # Each day is decided from that day's own sums (``_group_cumsum`` restarts at every day), and a
    # difference smaller than _DAY_REL of the day's own scale counts as a tie: the roundoff of a
    # sum of at most 25 terms is some 1e-15 of it, a real difference in the data (intensities come
    # with 2 decimals) is far above 1e-9 of it.
    if mode == "share":
        if share is None:
            raise ValueError("candidates: share mode needs a share")
        # The dirtiest slots whose demand comes closest to q · (the day's demand): a slot is taken
        # when the middle of its demand falls within the first q · D of the day, dirtiest first
        # (round to the nearest slot, ties take it). Rounding down instead would give a short edge
        # day (trace start or end, a time-zone edge) no high slot even when it is the dirtiest.
        cum_excl = _group_cumsum(dk, g) - dk
        total = _group_total(d, g)
        high_sorted = k & (share > 0) & (cum_excl + dk / 2 <= share * total + _DAY_REL * total)
    else:
        # average. Spec §4: the dirtiest slots are "removed from full-quality service in descending
        # CI_f order until the demand-weighted mean intensity of the remaining full-quality slots is
        # <= I_cap". Our reading: the stopping test is "<=", so removal stops as soon as the mean
        # of what remains is at or under the cap, and a slot is removed only while the mean of it
        # and every cleaner slot of the day (the suffix from it, dirtiest first) is strictly above
        # I_cap. A day whose mean equals I_cap (e.g. every hour exactly at I_cap) keeps every slot;
        # a day whose cleanest slot equals I_cap keeps that one slot (its mean alone is the cap).
        s = dk * np.where(k, f, 0.0)
        rem_d = _group_cumsum(dk, g, reverse=True)  # demand of this slot and every cleaner one
        rem_s = _group_cumsum(s, g, reverse=True)
        scale = _group_total(s, g) + cap * _group_total(dk, g)  # the day's own Σ d·CI_f + I_cap·Σ d
        high_sorted = k & (rem_d > 0) & (rem_s - cap * rem_d > _DAY_REL * scale)
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
    first = time[0].astype("datetime64[M]") + int(np.asarray(trace.month_index()).min())
    month, labels = fold_stub_months(month, tuple(str(first + i) for i in range(int(month.max()) + 1)))
    n_months = len(labels)
    if demand is None:
        loaded = load_demand(trace, policy.demand)
        demand, demand_form, notes = loaded.weight, loaded.form, list(loaded.notes)
    else:
        demand = np.asarray(demand, dtype=float)
        if demand.shape != ci.shape or not np.all(np.isfinite(demand)) or np.any(demand < 0) or demand.sum() <= 0:
            raise SlotError("demand: one finite weight >= 0 per slot, not all 0")
        demand, demand_form, notes = demand / demand.mean(), "library", []
    forecast, used = forecast_for(trace, policy.forecast)
    cap, cap_source = _cap(policy, forecast)
    share = None
    if policy.cap_mode == "share":
        share = DEFAULT_DAILY_SHARE if policy.daily_share is None else policy.daily_share
    cand = candidates(forecast, day, demand, policy.cap_mode, cap, share)

    hours = np.bincount(month, minlength=n_months)
    complete = hours >= COMPLETE_MONTH_HOURS
    p_cand = month_shares(cand, month, demand, n_months)
    basis = p_cand[complete] if complete.any() else p_cand
    months_text = f"{len(basis)} " + ("complete months" if complete.any() else "(partial) months")
    if policy.p_max is not None:
        p_max, p_src = float(policy.p_max), "given"
    elif policy.p_max_basis == "expected":
        p_max = float(np.mean(basis))
        p_src = f"derived: mean of the monthly p over {months_text} (expected month, not the paper's worst)"
        notes.append(f"p_max {p_max:.4g} is the expected (mean) month's p, a departure from the paper, which "
                     f"contracts on the worst month ({float(basis.max()):.4g}); months above it are truncated to it")
    else:
        p_max = float(np.quantile(basis, policy.p_max_quantile))
        what = "maximum" if policy.p_max_quantile == 1.0 else f"quantile {policy.p_max_quantile:g}"
        p_src = f"derived: {what} of the monthly p over {months_text}"
    high = truncate(cand, forecast, day, month, demand, p_max, policy.truncation)
    notes += _outcome_notes(policy, cand, high, forecast, day, demand, cap, cap_source, share, p_max, p_src)
    return Slots(
        time_utc=time, intensity=ci, forecast=forecast, day=day, month=month, month_labels=labels,
        demand=demand, high_candidate=cand, high=high, forecast_used=used, cap_gco2e_per_kwh=cap,
        cap_source=cap_source, daily_share=share, p_max=p_max, p_max_source=p_src,
        complete_months=complete, month_hours=hours,
        month_demand=np.bincount(month, weights=demand, minlength=n_months),
        p_month_candidate=p_cand, p_month=month_shares(high, month, demand, n_months), policy=policy,
        demand_form=demand_form, notes=tuple(notes),
    )


def _outcome_notes(policy: SlotPolicy, cand: np.ndarray, high: np.ndarray, forecast: np.ndarray, day: np.ndarray,
                   demand: np.ndarray, cap: float | None, cap_source: str, share: float | None, p_max: float,
                   p_src: str) -> list[str]:
    """One line for each outcome the figures alone would not explain."""
    notes = []
    if p_max == 0:
        if policy.p_max is not None:
            why = "it was given as 0"
        elif share is not None:
            why = f"share mode with q = {share:g} takes no hour"
        else:
            known = forecast[np.isfinite(forecast)]
            flat = len(known) > 0 and bool(np.all(known == known[0]))
            why = (f"no hour's forecast is high in {policy.cap_mode} mode at I_cap {cap:g} gCO2e/kWh ({cap_source})"
                   + ("; the forecast is flat, and a flat forecast is never above a cap taken from it" if flat else ""))
        notes.append(f"p_max is 0 ({why}): no request is ever degraded, so every user type needs no discount "
                     "(δ* = 0, full uptake at 0%) and nothing is saved")
    elif not high.any():
        notes.append(f"p_max {p_max:.4g} ({p_src}) is less than one hour's demand in every month: the truncation "
                     "keeps no hour, so no request is degraded although the discount pays for p_max")
    if share is not None and share > 0:
        # share mode rounds each day to whole hours: say what share that delivers (before p_max)
        d0 = day - day.min()
        day_fc = np.bincount(d0, weights=np.isfinite(forecast).astype(float)) > 0  # days that can be high
        total = float(demand[day_fc[d0]].sum())
        delivered = float(demand[cand].sum()) / total if total > 0 else 0.0
        if abs(delivered - share) > SHARE_NOTE_REL * share:
            n_day = np.bincount(d0)[day_fc]
            k_day = np.bincount(d0, weights=cand.astype(float))[day_fc].astype(int)
            pairs, counts = np.unique(np.c_[k_day, n_day], axis=0, return_counts=True)
            k, n = pairs[np.argmax(counts)]
            notes.append(f"share mode: daily share q = {share:g} delivers {delivered:.2%} of the demand in high hours "
                         f"before the p_max truncation, not {share:.2%}: each day takes the whole hours nearest "
                         f"q x its demand (most often {k} of {n} hours)")
    return notes
