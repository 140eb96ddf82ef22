"""Hourly carbon-intensity traces: a bundled zone or a user's CSV, their summary, one hour's intensity.

The way in for the rest of greenbench: ``load_trace`` (a bundled zone id, else a CSV path),
``summarize``, ``select_intensity`` and ``trace_intensity``, and a profile's carbon
(``profile_carbon``). The trace type and its clock are in ``carbon.hourly``, the bundled data in
``carbon.bundle``, a user's CSV in ``carbon.user_csv``; their public names are re-exported here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from greenbench.carbon import user_csv
from greenbench.carbon.bundle import (
    BUNDLE_FILE,
    BUNDLE_SOURCE,
    BundledZone,
    bundled_zone_info,
    bundled_zones,
    estimated_hours,
    is_bundle_trace,
    is_bundled,
    load_bundled,
)
from greenbench.carbon.hourly import (
    BASES,
    DAY_S,
    HOUR_S,
    ISO_HINT,
    Trace,
    TraceError,
    iso_utc,
    parse_utc,
)
from greenbench.carbon.intensity import Intensity, check_pue
from greenbench.methods import is_measurement

__all__ = [
    "BASES", "BUNDLE_FILE", "BUNDLE_SOURCE", "DAY_S", "HOUR_S", "ISO_HINT", "BundledZone", "Trace",
    "TraceError", "TraceStats", "bundled_zone_info", "bundled_zones", "is_bundled", "load_bundled",
    "load_csv", "load_trace", "local_calendar_month", "parse_utc", "profile_carbon", "select_intensity",
    "summarize", "trace_intensity",
]


def load_trace(zone_or_path: str, *, basis: str = "lca", units: str | None = None,
               forecast_column: str | None = None, tz: str | None = None,
               time_column: str | None = None, value_column: str | None = None) -> Trace:
    """A bundled zone id (e.g. ``DE``, ``US-CAL-CISO``), else the path of a CSV trace."""
    text = str(zone_or_path)
    if is_bundled(text) and not Path(text).is_file():
        if units is not None and user_csv.parse_units(units)[1] != 1.0:
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
    return user_csv.load_csv(path, **kwargs)


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
    # gap-free trace can be short (as in Electricity Maps' ci_2023_summary_stats.csv, tests/data/carbon/).
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
    est_hours = estimated_hours(trace.name) if is_bundle_trace(trace) else None
    if est_hours is not None:
        est = float(est_hours) / len(trace)
    else:
        reasons["estimated_share"] = "known for the bundled Electricity Maps zones only"
    fc = trace.forecast_gco2e_per_kwh
    mae = float(np.abs(fc - x).mean()) if fc is not None else None
    if fc is None:
        reasons["forecast_mae"] = "the trace has no forecast column"
    p10, med, p90 = (float(v) for v in np.percentile(x, [10, 50, 90]))
    return TraceStats(
        name=trace.name, basis=trace.basis, tz=trace.tz or "UTC", source=trace.source, hours=len(trace),
        start_utc=iso_utc(trace.time_utc[0].astype(np.int64)), end_utc=iso_utc(trace.time_utc[-1].astype(np.int64)),
        mean=mean, min=float(x.min()), p10=p10, median=med, p90=p90, max=float(x.max()), cv=cv,
        full_days=int(full.sum()), daily_max_min_ratio_median=ratio, daily_range_median=rng,
        estimated_share=est, forecast_mae=mae, reasons=reasons)


def local_calendar_month(trace: Trace) -> np.ndarray:
    """Calendar month 1..12 of each hour on the trace's local clock."""
    months = (trace.local_s() // DAY_S).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
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
            first, last = (iso_utc(trace.time_utc[k].astype(np.int64)) for k in (0, -1))
            raise TraceError(f"time {at} is outside the trace {trace.name} ({first} to {last}); "
                             "pick an hour inside it, or a month")
        return float(x[i]), f"hour {iso_utc(trace.time_utc[i].astype(np.int64))}"
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
    check_pue(pue)
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
    rows = []
    for r in records:
        if r.status != "ok":
            continue
        gross = intensity.co2e_g(r.energy_j_per_item)
        rows.append({
            "ladder": r.ladder, "model": r.model, "label": r.label, "setting": r.setting, "batch_size": r.batch_size,
            "concurrency": r.concurrency, "request_rate_per_s": r.request_rate_per_s, "precision": r.precision,
            "device": r.device, "accuracy": r.accuracy, "quality_metric": r.quality_metric,
            "perplexity": r.perplexity,
            "energy_j_per_item": r.energy_j_per_item, "energy_net_j_per_item": r.energy_net_j_per_item,
            "energy_method": r.energy_method, "energy_is_measurement": is_measurement(r.energy_method),
            "co2e_g_per_item": gross,
            "co2e_g_per_1m_items": None if gross is None else gross * 1e6,
            "co2e_net_g_per_item": intensity.co2e_g(r.energy_net_j_per_item),
            "reason": None if gross is not None else (r.energy_reason or f"energy is {r.energy_method}"),
        })
    return rows
