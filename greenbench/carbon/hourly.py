"""The hourly trace type and its clock: UTC hours, local days and billing months, ISO times.

A ``Trace`` is always hourly, UTC, gap-free, finite and non-negative, in gCO2e/kWh: every check
happens once, here, so the pricing and simulation code can trust it. Local days and billing months
use the trace's IANA time zone (the grid zone's own clock for the bundled data). The bottom of
``greenbench.carbon``: it imports no other carbon module (``bundle``, ``user_csv`` and ``trace``
build on it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from greenbench.errors import GreenbenchError
from greenbench.units import S_PER_DAY, S_PER_HOUR

BASES = ("lca", "direct")
HOUR_S = S_PER_HOUR
DAY_S = S_PER_DAY


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
        zone_info(self.tz, where)

    def __len__(self) -> int:
        return len(self.time_utc)

    def local_day_index(self) -> np.ndarray:
        """Day number (0 = the first local calendar day) of each hour in the trace's time zone."""
        if "day" not in self._cache:
            days = self.local_s() // DAY_S
            self._cache["day"] = _readonly(days - days[0])
        return self._cache["day"]

    def month_index(self) -> np.ndarray:
        """Billing month of each hour, by local calendar month, 0 = the trace's first UTC month.

        The few edge hours that the time-zone shift moves outside the trace's UTC months (e.g. the
        first 5 hours of a 2023 UTC trace fall on 31 Dec 2022 in New York) join the nearest month,
        so a calendar year of data has exactly 12 billing months, 0..11, not 13 with a stub.
        """
        if "month" not in self._cache:
            local_m = (self.local_s() // DAY_S).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
            utc_m = self.time_utc.astype("datetime64[M]").astype(np.int64)
            self._cache["month"] = _readonly(np.clip(local_m - utc_m[0], 0, utc_m[-1] - utc_m[0]))
        return self._cache["month"]

    def local_s(self) -> np.ndarray:
        """Local wall-clock seconds since the epoch of each hour (UTC seconds + UTC offset)."""
        if "local_s" not in self._cache:
            utc_s = self.time_utc.astype(np.int64)
            self._cache["local_s"] = utc_s + utc_offsets_s(utc_s, self.tz)
        return self._cache["local_s"]



def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a)  # own copy: never freeze the caller's array
    a.flags.writeable = False
    return a


def zone_info(tz: str | None, where: str) -> ZoneInfo | None:
    """The IANA zone ``tz`` (None for None), or a TraceError naming ``where`` and the fix."""
    if tz is None:
        return None
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise TraceError(f"{where}: unknown time zone {tz!r}; give an IANA name such as Europe/Berlin") from None


def utc_offsets_s(utc_s: np.ndarray, tz: str | None) -> np.ndarray:
    """UTC offset in seconds at each time. Looked up once a day, and hourly only on days with a
    change (DST), so a year costs ~400 look-ups instead of 8,760."""
    zone = zone_info(tz, "trace")
    if zone is None:
        return np.zeros_like(utc_s)

    def off(s: int) -> int:
        delta = datetime.fromtimestamp(int(s), zone).utcoffset()
        return 0 if delta is None else int(delta.total_seconds())

    probes = np.unique(np.append(np.arange(utc_s[0], utc_s[-1], DAY_S), utc_s[-1]))
    probe_off = np.array([off(s) for s in probes], dtype=np.int64)
    out = probe_off[np.searchsorted(probes, utc_s, side="right") - 1]
    for k in np.nonzero(np.diff(probe_off))[0]:  # a change between probes k and k+1: hour by hour
        sel = (utc_s > probes[k]) & (utc_s <= probes[k + 1])
        out[sel] = [off(s) for s in utc_s[sel]]
    return out


# --- times -------------------------------------------------------------------------------------

ISO_HINT = "use ISO 8601 such as 2023-07-01T14:00:00Z"


def fromiso(s: str) -> datetime:
    """ISO 8601 with 'Z' on any Python >= 3.10 (whose fromisoformat does not take 'Z')."""
    if s[-1:] in ("Z", "z"):
        s = s[:-1] + "+00:00"
    return datetime.fromisoformat(s)


def iso_utc(s: int) -> str:
    """Seconds since the epoch -> '2023-07-01T14:00:00Z'."""
    return str(np.datetime64(int(s), "s")) + "Z"


def parse_utc(text: str) -> np.datetime64:
    """'2023-07-01T14:00Z' or '2023-07-01 16:00+02:00' -> datetime64[s] UTC; refuses a naive time."""
    try:
        dt = fromiso(text.strip())
    except ValueError:
        raise TraceError(f"cannot read time {text!r}; {ISO_HINT}") from None
    if dt.tzinfo is None:
        raise TraceError(f"time {text!r} has no time zone; add 'Z' for UTC or an offset such as +02:00")
    return np.datetime64(int(dt.timestamp()), "s")
