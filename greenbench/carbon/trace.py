"""Hourly carbon-intensity traces: the bundled 2023 Electricity Maps data, or a user's CSV.

A ``Trace`` is always hourly, UTC, gap-free, finite and non-negative, in gCO2e/kWh: every check
happens once, here, so the pricing and simulation code can trust it. Local days and billing months
use the trace's IANA time zone (the grid zone's own clock for the bundled data). A user's CSV is
read and checked in ``carbon.user_csv``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from greenbench.errors import GreenbenchError

BASES = ("lca", "direct")
BUNDLE_FILE = "carbon_2023_hourly.npz"
BUNDLE_SOURCE = "Electricity Maps 2023 hourly ({basis}), ODbL"
HOUR_S = 3600
DAY_S = 86400


class TraceError(GreenbenchError):
    """A trace that cannot be used; one line: file, row or column, problem, how to fix."""


@dataclass(frozen=True, eq=False)
class Trace:
    """Hourly grid carbon intensity. Arrays are read-only so a cached trace can be shared."""

    name: str  # zone id or file stem
    time_utc: np.ndarray  # datetime64[s] (UTC), strictly increasing, hourly, no gaps
    intensity_gco2e_per_kwh: np.ndarray  # float64, finite, >= 0, one per hour (actual intensity)
    forecast_gco2e_per_kwh: np.ndarray | None  # optional forecast, same length
    tz: str | None  # IANA zone for "per day" grouping; None -> UTC
    basis: str | None  # "lca" | "direct" | None (unknown, user file)
    source: str  # e.g. "Electricity Maps 2023 hourly (lca), ODbL" or the file path
    _cache: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        t = _readonly(np.asarray(self.time_utc, dtype="datetime64[s]"))
        ci = _readonly(np.asarray(self.intensity_gco2e_per_kwh, dtype=np.float64))
        fc = self.forecast_gco2e_per_kwh
        fc = None if fc is None else _readonly(np.asarray(fc, dtype=np.float64))
        object.__setattr__(self, "time_utc", t)
        object.__setattr__(self, "intensity_gco2e_per_kwh", ci)
        object.__setattr__(self, "forecast_gco2e_per_kwh", fc)
        where = f"trace {self.name}"
        if t.ndim != 1 or len(t) == 0 or ci.shape != t.shape or (fc is not None and fc.shape != t.shape):
            raise TraceError(f"{where}: times, intensities and forecast must be non-empty and of one length")
        if len(t) > 1 and not np.all(np.diff(t.astype(np.int64)) == HOUR_S):
            raise TraceError(f"{where}: times must be strictly increasing by exactly one hour")
        if t.astype(np.int64)[0] % HOUR_S:
            raise TraceError(f"{where}: times must be at the start of a UTC hour")
        for label, arr in (("intensity", ci), ("forecast", fc)):
            if arr is not None and not (np.all(np.isfinite(arr)) and np.all(arr >= 0)):
                raise TraceError(f"{where}: {label} values must be finite and >= 0")
        if self.basis not in (*BASES, None):
            raise TraceError(f"{where}: unknown basis {self.basis!r} (use {' or '.join(BASES)})")
        _zone(self.tz, where)

    def __len__(self) -> int:
        return len(self.time_utc)

    def local_day_index(self) -> np.ndarray:
        """Day number (0 = the first local calendar day) of each hour in the trace's time zone."""
        if "day" not in self._cache:
            days = self._local_s() // DAY_S
            self._cache["day"] = _readonly(days - days[0])
        return self._cache["day"]

    def month_index(self) -> np.ndarray:
        """Billing month of each hour, by local calendar month, 0 = the trace's first UTC month.

        The few edge hours that the time-zone shift moves outside the trace's UTC months (e.g. the
        first 5 hours of a 2023 UTC trace fall on 31 Dec 2022 in New York) join the nearest month,
        so a calendar year of data has exactly 12 billing months, 0..11, not 13 with a stub.
        """
        if "month" not in self._cache:
            local_m = (self._local_s() // DAY_S).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
            utc_m = self.time_utc.astype("datetime64[M]").astype(np.int64)
            self._cache["month"] = _readonly(np.clip(local_m - utc_m[0], 0, utc_m[-1] - utc_m[0]))
        return self._cache["month"]

    def _local_s(self) -> np.ndarray:
        """Local wall-clock seconds since the epoch of each hour (UTC seconds + UTC offset)."""
        if "local_s" not in self._cache:
            utc_s = self.time_utc.astype(np.int64)
            self._cache["local_s"] = utc_s + _utc_offsets_s(utc_s, self.tz)
        return self._cache["local_s"]


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a)  # own copy: never freeze the caller's array
    a.flags.writeable = False
    return a


def _zone(tz: str | None, where: str) -> ZoneInfo | None:
    if tz is None:
        return None
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise TraceError(f"{where}: unknown time zone {tz!r}; give an IANA name such as Europe/Berlin") from None


def _utc_offsets_s(utc_s: np.ndarray, tz: str | None) -> np.ndarray:
    """UTC offset in seconds at each time. Looked up once a day, and hourly only on days with a
    change (DST), so a year costs ~400 look-ups instead of 8,760."""
    zone = _zone(tz, "trace")
    if zone is None:
        return np.zeros_like(utc_s)

    def off(s: int) -> int:
        return int(datetime.fromtimestamp(int(s), zone).utcoffset().total_seconds())

    probes = np.unique(np.append(np.arange(utc_s[0], utc_s[-1], DAY_S), utc_s[-1]))
    probe_off = np.array([off(s) for s in probes], dtype=np.int64)
    out = probe_off[np.searchsorted(probes, utc_s, side="right") - 1]
    for k in np.nonzero(np.diff(probe_off))[0]:  # a change between probes k and k+1: hour by hour
        sel = (utc_s > probes[k]) & (utc_s <= probes[k + 1])
        out[sel] = [off(s) for s in utc_s[sel]]
    return out


# --- the bundled 2023 data -------------------------------------------------------------------

@dataclass(frozen=True)
class BundledZone:
    zone: str  # Electricity Maps Zone Id
    region: str
    tz: str  # IANA zone of the grid's local clock
    file: str  # original file name (three differ from the Zone Id: BR-SP, CL-SIC, DE-LU)
    hours: int
    estimated_share: float  # share of hours Electricity Maps estimated rather than measured


@lru_cache(maxsize=1)
def _bundle() -> dict[str, np.ndarray]:
    with resources.files("greenbench.data").joinpath(BUNDLE_FILE).open("rb") as f:
        with np.load(f, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}


@lru_cache(maxsize=1)
def _zone_rows() -> dict[str, int]:
    """Zone id and file stem (upper case) -> row of the bundle."""
    b = _bundle()
    rows = {str(z).upper(): i for i, z in enumerate(b["zones"])}
    rows.update({str(f).split("_")[0].upper(): i for i, f in enumerate(b["files"])})
    return rows


def bundled_zones() -> list[str]:
    """The 18 bundled Electricity Maps zone ids, sorted."""
    return sorted(str(z) for z in _bundle()["zones"])


def bundled_zone_info() -> list[BundledZone]:
    b = _bundle()
    hours = b["lca_cg_per_kwh"].shape[1]
    return sorted(
        (BundledZone(str(z), str(r), str(tz), str(f), hours, float(e) / hours)
         for z, r, tz, f, e in zip(b["zones"], b["regions"], b["tz"], b["files"], b["estimated_hours"])),
        key=lambda z: z.zone)


def is_bundled(zone: str) -> bool:
    return zone.strip().upper() in _zone_rows()


def load_bundled(zone: str, basis: str = "lca") -> Trace:
    """A bundled zone's 2023 hourly trace (cached; the arrays are read-only)."""
    if basis not in BASES:
        raise TraceError(f"unknown basis {basis!r} (use {' or '.join(BASES)})")
    row = _zone_rows().get(str(zone).strip().upper())
    if row is None:
        raise TraceError(f"unknown zone {zone!r}; bundled zones: {', '.join(bundled_zones())} "
                         "(or give the path of a CSV trace)")
    return _load_row(row, basis)


@lru_cache(maxsize=None)
def _load_row(row: int, basis: str) -> Trace:
    b = _bundle()
    centi = b[f"{basis}_cg_per_kwh"][row]
    start = np.datetime64(int(b["start_utc_s"]), "s")
    return Trace(
        name=str(b["zones"][row]),
        time_utc=start + np.arange(len(centi), dtype=np.int64) * np.timedelta64(HOUR_S, "s"),
        intensity_gco2e_per_kwh=centi / 100.0,  # the source's 2 decimals, exactly
        forecast_gco2e_per_kwh=None,
        tz=str(b["tz"][row]),
        basis=basis,
        source=BUNDLE_SOURCE.format(basis=basis),
    )


def load_trace(zone_or_path: str, *, basis: str = "lca", units: str | None = None,
               forecast_column: str | None = None, tz: str | None = None,
               time_column: str | None = None, value_column: str | None = None) -> Trace:
    """A bundled zone id (e.g. ``DE``, ``US-CAL-CISO``), else the path of a CSV trace."""
    text = str(zone_or_path)
    if is_bundled(text) and not Path(text).is_file():
        from greenbench.carbon.user_csv import parse_units

        if units is not None and parse_units(units)[1] != 1.0:
            raise TraceError(f"bundled zone {text} is already in gCO2e/kWh; --trace-units applies to CSV files only")
        if time_column is not None or value_column is not None:
            raise TraceError(f"bundled zone {text}: --time-column and --value-column apply to CSV files only")
        if forecast_column is not None:
            raise TraceError(f"bundled zone {text} has no forecast column; use a persistence or perfect "
                             "forecast, or a CSV trace with a forecast column")
        trace = load_bundled(text, basis)
        if tz is not None and tz != trace.tz:
            trace = Trace(trace.name, trace.time_utc, trace.intensity_gco2e_per_kwh, None, tz,
                          trace.basis, trace.source)
        return trace
    if not Path(text).exists():
        raise TraceError(f"{text!r} is neither a bundled zone ({', '.join(bundled_zones())}) nor a file")
    return load_csv(text, units=units, forecast_column=forecast_column, tz=tz, basis=basis,
                    time_column=time_column, value_column=value_column)


def load_csv(path, **kwargs) -> Trace:
    """A user's CSV trace, every problem one line (see ``user_csv.load_csv`` for the options)."""
    from greenbench.carbon.user_csv import load_csv as load

    return load(path, **kwargs)


# --- times ---------------------------------------------------------------------------------

ISO_HINT = "use ISO 8601 such as 2023-07-01T14:00:00Z"


def _fromiso(s: str) -> datetime:
    """ISO 8601 with 'Z' on any Python >= 3.10 (whose fromisoformat does not take 'Z')."""
    if s[-1:] in ("Z", "z"):
        s = s[:-1] + "+00:00"
    return datetime.fromisoformat(s)


def _iso(s: int) -> str:
    return str(np.datetime64(int(s), "s")) + "Z"



# --- statistics and the intensity of one hour, month or year ------------------------------------

@dataclass(frozen=True)
class TraceStats:
    """A trace's summary in gCO2e/kWh. ``None`` fields say why in ``reasons``; never a fake 0."""

    name: str
    basis: str | None
    tz: str  # the clock of the daily figures ("UTC" when the trace has none)
    source: str
    hours: int
    start_utc: str
    end_utc: str  # start of the last hour
    mean: float
    min: float
    p10: float
    median: float
    p90: float
    max: float
    cv: float | None  # population std / mean
    full_days: int  # local days with at least 23 hours (edge days may be partial)
    daily_max_min_ratio_median: float | None  # over full local days
    daily_range_median: float | None  # median of (daily max - daily min), g
    estimated_share: float | None  # bundled zones only
    forecast_mae: float | None  # mean |forecast - actual|, when the trace has a forecast
    reasons: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        from dataclasses import asdict
        return asdict(self)


def summarize(trace: Trace) -> TraceStats:
    x = trace.intensity_gco2e_per_kwh
    reasons: dict[str, str] = {}
    mean = float(x.mean())
    cv = float(x.std() / mean) if mean > 0 else None
    if cv is None:
        reasons["cv"] = "the mean is 0"
    day = trace.local_day_index()
    starts = np.r_[0, np.nonzero(np.diff(day))[0] + 1]
    # A day counts with at least 23 hours: a spring-forward day has 23. Only the edge days of a
    # gap-free trace can be short (as in the shared ci_2023_summary_stats.csv).
    full = np.bincount(day) >= 23
    hi, lo = np.maximum.reduceat(x, starts)[full], np.minimum.reduceat(x, starts)[full]
    ratio_ok = lo > 0
    ratio = rng = None
    if not full.any():
        reasons["daily_max_min_ratio_median"] = reasons["daily_range_median"] = "no full local day in the trace"
    else:
        rng = float(np.median(hi - lo))
        if ratio_ok.any():
            ratio = float(np.median(hi[ratio_ok] / lo[ratio_ok]))
        else:
            reasons["daily_max_min_ratio_median"] = "every full day has an hour at 0 g"
    est = None
    if trace.source == BUNDLE_SOURCE.format(basis=trace.basis) and is_bundled(trace.name):
        est = float(_bundle()["estimated_hours"][_zone_rows()[trace.name.upper()]]) / len(trace)
    else:
        reasons["estimated_share"] = "known for the bundled Electricity Maps zones only"
    fc = trace.forecast_gco2e_per_kwh
    mae = float(np.abs(fc - x).mean()) if fc is not None else None
    if fc is None:
        reasons["forecast_mae"] = "the trace has no forecast column"
    p10, med, p90 = (float(v) for v in np.percentile(x, [10, 50, 90]))
    return TraceStats(
        name=trace.name, basis=trace.basis, tz=trace.tz or "UTC", source=trace.source, hours=len(trace),
        start_utc=_iso(trace.time_utc[0].astype(np.int64)), end_utc=_iso(trace.time_utc[-1].astype(np.int64)),
        mean=mean, min=float(x.min()), p10=p10, median=med, p90=p90, max=float(x.max()), cv=cv,
        full_days=int(full.sum()), daily_max_min_ratio_median=ratio, daily_range_median=rng,
        estimated_share=est, forecast_mae=mae, reasons=reasons)


def parse_utc(text: str) -> np.datetime64:
    """'2023-07-01T14:00Z' or '2023-07-01 16:00+02:00' -> datetime64[s] UTC; refuses a naive time."""
    try:
        dt = _fromiso(text.strip())
    except ValueError:
        raise TraceError(f"cannot read time {text!r}; {ISO_HINT}") from None
    if dt.tzinfo is None:
        raise TraceError(f"time {text!r} has no time zone; add 'Z' for UTC or an offset such as +02:00")
    return np.datetime64(int(dt.timestamp()), "s")


def local_calendar_month(trace: Trace) -> np.ndarray:
    """Calendar month 1..12 of each hour on the trace's local clock."""
    months = (trace._local_s() // DAY_S).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    return months % 12 + 1


def select_intensity(trace: Trace, *, at: str | None = None, month: int | None = None) -> tuple[float, str]:
    """The intensity (gCO2e/kWh) of one hour (``at``), the mean of a local calendar month, or the
    mean of the whole trace (a flat load), and a label saying which."""
    if at is not None and month is not None:
        raise TraceError("give a time or a month, not both")
    x = trace.intensity_gco2e_per_kwh
    if at is not None:
        t = parse_utc(at)
        i = int(np.searchsorted(trace.time_utc, t, side="right")) - 1
        if i < 0 or t >= trace.time_utc[-1] + np.timedelta64(HOUR_S, "s"):
            raise TraceError(f"time {at} is outside the trace {trace.name} "
                             f"({_iso(trace.time_utc[0].astype(np.int64))} to {_iso(trace.time_utc[-1].astype(np.int64))}); "
                             "pick an hour inside it, or a month")
        return float(x[i]), f"hour {_iso(trace.time_utc[i].astype(np.int64))}"
    if month is not None:
        if not 1 <= month <= 12:
            raise TraceError(f"month {month} is not 1-12")
        sel = local_calendar_month(trace) == month
        if not sel.any():
            raise TraceError(f"trace {trace.name} has no hour in month {month}")
        return float(x[sel].mean()), f"mean of month {month} ({int(sel.sum())} h, {trace.tz or 'UTC'} calendar)"
    return float(x.mean()), f"mean of {len(trace)} h"


def trace_intensity(trace: Trace, *, at: str | None = None, month: int | None = None, pue: float = 1.0):
    """A ``carbon.Intensity`` from a trace (one hour, a month's mean or the whole mean), so the
    figure keeps its source, zone, basis and PUE like the static one of ``greenbench profile``."""
    from greenbench.carbon.intensity import CarbonError, Intensity

    if not (np.isfinite(pue) and pue >= 1.0):
        raise CarbonError(f"PUE must be a finite number of at least 1.0 (got {pue})")
    value, label = select_intensity(trace, at=at, month=month)
    first, last = (str(trace.time_utc[i].astype("datetime64[Y]")) for i in (0, -1))
    return Intensity(value, f"{trace.source}, {trace.name}, {label}", zone=trace.name,
                     year=int(first) if first == last else None, basis=trace.basis, pue=float(pue))


def profile_carbon(records, intensity) -> list[dict]:
    """gCO2e per item (and per million items) of each ok record at ``intensity``.

    Gross energy is what the meter saw; net is gross minus idle. A null energy stays null with its
    reason, and the energy method travels along, so an estimate (or the fake test meter) is still
    marked as not a measurement.
    """
    from greenbench.meters.base import is_measurement

    rows = []
    for r in records:
        if r.status != "ok":
            continue
        gross = intensity.co2e_g(r.energy_j_per_item)
        rows.append({
            "ladder": r.ladder, "model": r.model, "batch_size": r.batch_size, "precision": r.precision,
            "device": r.device, "accuracy": r.accuracy,
            "energy_j_per_item": r.energy_j_per_item, "energy_net_j_per_item": r.energy_net_j_per_item,
            "energy_method": r.energy_method, "energy_is_measurement": is_measurement(r.energy_method),
            "co2e_g_per_item": gross,
            "co2e_g_per_1m_items": None if gross is None else gross * 1e6,
            "co2e_net_g_per_item": intensity.co2e_g(r.energy_net_j_per_item),
            "reason": None if gross is not None else (r.energy_reason or f"energy is {r.energy_method}"),
        })
    return rows
