"""Hourly carbon-intensity traces: the bundled 2023 Electricity Maps data, or a user's CSV.

A ``Trace`` is always hourly, UTC, gap-free, finite and non-negative, in gCO2e/kWh: every check
happens once, here, so the pricing and simulation code can trust it. Local days and billing months
use the trace's IANA time zone (the grid zone's own clock for the bundled data).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from .errors import GreenbenchError

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
        if units is not None and _parse_units(units)[1] != 1.0:
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


# --- a user's CSV trace ----------------------------------------------------------------------

# Unit -> factor to gCO2e/kWh. Only the g/kWh family is taken as is; the others change the
# numbers by 1000x or ~2x and are converted only when the user names the unit.
UNITS = {"g/kwh": 1.0, "kg/mwh": 1.0, "kg/kwh": 1000.0, "t/mwh": 1000.0,
         "lb/mwh": 453.59237 / 1000.0, "lb/kwh": 453.59237}
UNIT_LABELS = {"g/kwh": "g/kWh", "kg/mwh": "kg/MWh", "kg/kwh": "kg/kWh", "t/mwh": "t/MWh",
               "lb/mwh": "lb/MWh", "lb/kwh": "lb/kWh"}
PLAUSIBLE_MAX_G = 2000.0  # the dirtiest grids are ~1,100 gCO2e/kWh; above 2,000 the unit is wrong
KG_LIKE_MAX = 2.0  # a column that never reaches 2 is kg/kWh, not the cleanest real grid in g/kWh
EM_TIME = "Datetime (UTC)"
EM_VALUE = {"lca": "Carbon Intensity gCO₂eq/kWh (LCA)", "direct": "Carbon Intensity gCO₂eq/kWh (direct)"}
SIMPLE_VALUE = "intensity_gco2e_per_kwh"
SIMPLE_FORECAST = "forecast_gco2e_per_kwh"
ISO_HINT = "use ISO 8601 such as 2023-07-01T14:00:00Z"


def _norm(name: str) -> str:
    """'Carbon Intensity gCO₂eq/kWh (LCA)' -> 'carbonintensityg/kwh(lca)'; 'lbs_co2_per_mwh' -> 'lb/mwh'."""
    s = name.lower().replace("₂", "2")
    s = re.sub(r"co2-?e?q?|co2", "", s)
    tokens = [("/" if t == "per" else t) for t in re.split(r"[\s_\-]+", s) if t]
    return "".join(tokens).replace("lbs", "lb").replace("tonnes", "t").replace("tons", "t")


def _header_unit(name: str) -> str | None:
    m = re.search(r"(kg|lb|g|t)/?(mwh|kwh)", _norm(name))
    return f"{m.group(1)}/{m.group(2)}" if m else None


def _parse_units(units: str) -> tuple[str, float]:
    key = _header_unit(units) if units else None
    if key is None or _norm(units) not in (key, key.replace("/", "")):
        raise TraceError(f"unknown units {units!r}; use one of {', '.join(UNIT_LABELS.values())}")
    return key, UNITS[key]


def _fail(where: str, problem: str, fix: str) -> TraceError:
    return TraceError(f"{where}: {problem}; {fix}")


def _more(n: int, what: str) -> str:
    return f" (and {n - 1} more {what})" if n > 2 else (" (and 1 more)" if n == 2 else "")


def load_csv(path, *, time_column: str | None = None, value_column: str | None = None,
             forecast_column: str | None = None, units: str | None = None, tz: str | None = None,
             basis: str | None = None) -> Trace:
    """Read and validate an hourly CSV trace: the Electricity Maps export format, or
    ``time,intensity_gco2e_per_kwh[,forecast_gco2e_per_kwh]``. Rows may come in any order.

    Every problem raises TraceError with one line: file and line or column, what, and how to fix.
    ``units`` names the unit of the value (and forecast) columns and converts them to gCO2e/kWh;
    ``tz`` is the local time zone for days and months, and the zone of timestamps without one.
    ``basis`` picks the LCA or direct column of an Electricity Maps file (default lca).
    """
    p = Path(path)
    if not p.is_file():
        raise _fail(str(p), "no such file", "give a CSV path or a bundled zone id")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise _fail(str(p), f"cannot read ({e.__class__.__name__})", "save the CSV as UTF-8 text") from None
    zone = _zone(tz, str(p))
    first = text.split("\n", 1)[0]
    delim = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delim)
    header = [h.strip() for h in next(reader, [])]
    if not any(header):
        raise _fail(str(p), "empty file", "the first line must be a header such as time,intensity_gco2e_per_kwh")
    tcol, vcol, fcol, basis = _columns(p, header, time_column, value_column, forecast_column, basis)

    lines, times, values, forecasts = [], [], [], []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue  # blank lines, e.g. at the end of the file
        if len(row) < len(header):
            raise _fail(f"{p}:{reader.line_num}", f"{len(row)} fields, the header has {len(header)}",
                        "every row needs a value for each column")
        lines.append(reader.line_num)
        times.append(row[tcol].strip())
        values.append(row[vcol].strip())
        forecasts.append(row[fcol].strip() if fcol is not None else "")
    if not lines:
        raise _fail(str(p), "no data rows", "add one row per hour below the header")
    line = np.array(lines)
    utc_s = _parse_times(p, header[tcol], times, line, zone)
    ci = _parse_values(p, header[vcol], values, line)
    fc = _parse_values(p, header[fcol], forecasts, line) if fcol is not None else None

    order = np.argsort(utc_s, kind="stable")  # results never depend on the file's row order
    utc_s, line, ci = utc_s[order], line[order], ci[order]
    fc = fc[order] if fc is not None else None
    _check_hourly(p, utc_s, line)
    ci = _to_grams(p, header[vcol], ci, units)
    fc = _to_grams(p, header[fcol], fc, units, forecast=True) if fc is not None else None
    if tz is None and EM_TIME in header and "Zone Id" in header:
        tz = _em_zone_tz(text, delim)
    return Trace(name=p.stem, time_utc=utc_s.astype("datetime64[s]"), intensity_gco2e_per_kwh=ci,
                 forecast_gco2e_per_kwh=fc, tz=tz, basis=basis, source=str(p))


def _columns(p: Path, header: list[str], time_column, value_column, forecast_column, basis):
    def find(name: str, what: str) -> int:
        if name not in header:
            raise _fail(str(p), f"no {what} column {name!r} (columns: {', '.join(header)})",
                        f"name one of the columns with the {what} option")
        return header.index(name)

    if basis not in (*BASES, None):
        raise TraceError(f"unknown basis {basis!r} (use {' or '.join(BASES)})")
    if time_column is not None:
        tcol = find(time_column, "time")
    else:
        cands = [i for i, h in enumerate(header) if re.search(r"time|date", h.lower())]
        if not cands:
            raise _fail(str(p), f"no time column (columns: {', '.join(header)})",
                        "name it 'time' or give --time-column")
        tcol = cands[0]
    fcol = find(forecast_column, "forecast") if forecast_column is not None else None
    if fcol is None:
        cands = [i for i, h in enumerate(header) if "forecast" in h.lower() and i != tcol]
        fcol = cands[0] if len(cands) == 1 else None
    if value_column is not None:
        vcol = find(value_column, "value")
    elif EM_VALUE["lca"] in header and EM_VALUE["direct"] in header:  # the Electricity Maps export
        basis = basis or "lca"
        vcol = header.index(EM_VALUE[basis])
    elif SIMPLE_VALUE in header:
        vcol = header.index(SIMPLE_VALUE)
    else:
        rest = [i for i in range(len(header)) if i not in (tcol, fcol)]
        named = [i for i in rest if re.search(r"intensity|co2|carbon|emission", header[i].lower())]
        cands = named or rest
        if len(cands) != 1:
            raise _fail(str(p), f"cannot tell which column holds the intensity (columns: {', '.join(header)})",
                        f"name it {SIMPLE_VALUE} or give --value-column")
        vcol = cands[0]
    tokens = set(re.split(r"[^a-z]+", header[vcol].lower()))
    basis = "lca" if "lca" in tokens else "direct" if "direct" in tokens else None  # as the header says
    if vcol == tcol or vcol == fcol:
        raise _fail(str(p), f"column {header[vcol]!r} cannot be both the value and the time or forecast",
                    "give distinct --time-column, --value-column and --forecast-column")
    return tcol, vcol, fcol, basis


def _fromiso(s: str) -> datetime:
    """ISO 8601 with 'Z' on any Python >= 3.10 (whose fromisoformat does not take 'Z')."""
    if s[-1:] in ("Z", "z"):
        s = s[:-1] + "+00:00"
    return datetime.fromisoformat(s)


def _parse_times(p: Path, col: str, texts: list[str], line: np.ndarray, zone: ZoneInfo | None) -> np.ndarray:
    utc_label = "utc" in re.split(r"[^a-z]+", col.lower())  # 'Datetime (UTC)', 'datetime_utc'
    out = np.zeros(len(texts), dtype=np.float64)
    bad, naive, aware, skipped = [], [], 0, []
    for k, s in enumerate(texts):
        try:
            dt = _fromiso(s)
        except ValueError:
            bad.append(k)
            continue
        if dt.tzinfo is not None:
            aware += 1
        elif utc_label:
            dt = dt.replace(tzinfo=timezone.utc)
        elif zone is not None:
            a, b = dt.replace(tzinfo=zone, fold=0), dt.replace(tzinfo=zone, fold=1)
            if a.astimezone(timezone.utc).astimezone(zone).replace(tzinfo=None) != dt:
                skipped.append(k)  # in the spring-forward gap: no such local time
            elif a.utcoffset() != b.utcoffset():
                raise _fail(f"{p}:{line[k]}", f"local time {s!r} occurs twice in {zone.key} (clocks go back)",
                            "give times in UTC ('Z') or with an offset (+01:00)")
            dt = a
        else:
            naive.append(k)
            continue
        out[k] = dt.timestamp()
    if bad:
        k = bad[0]
        raise _fail(f"{p}:{line[k]}", f"cannot read time {texts[k]!r} in column {col!r}{_more(len(bad), 'rows')}",
                    ISO_HINT)
    if naive:
        k = naive[0]
        if aware:
            raise _fail(f"{p}:{line[k]}", f"time {texts[k]!r} has no time zone but other rows do",
                        "give every time a 'Z' or an offset")
        raise _fail(f"{p}:{line[k]}", f"time {texts[k]!r} has no time zone",
                    "add 'Z' or an offset (+01:00), name the column time_utc if it is UTC, or pass --tz ZONE")
    if skipped:
        k = skipped[0]
        raise _fail(f"{p}:{line[k]}", f"local time {texts[k]!r} does not exist in {zone.key} (clocks go forward)",
                    "give times in UTC ('Z') or with an offset (+01:00)")
    frac = np.nonzero(out != np.round(out))[0]
    if len(frac):
        k = frac[0]
        raise _fail(f"{p}:{line[k]}", f"time {texts[k]!r} has fractions of a second",
                    "hourly traces need times on the hour")
    return out.astype(np.int64)


def _parse_values(p: Path, col: str, texts: list[str], line: np.ndarray) -> np.ndarray:
    out = np.full(len(texts), np.nan)
    bad = []
    for k, s in enumerate(texts):
        try:
            out[k] = float(s)
        except ValueError:
            bad.append(k)
    if bad:
        k = bad[0]
        what = "empty value" if not texts[k] else f"cannot read {texts[k]!r} as a number"
        raise _fail(f"{p}:{line[k]}", f"{what} in column {col!r}{_more(len(bad), 'rows')}",
                    "every hour needs a number (fill or interpolate missing hours)")
    nan = np.nonzero(~np.isfinite(out))[0]
    if len(nan):
        k = nan[0]
        raise _fail(f"{p}:{line[k]}", f"{texts[k]!r} (not a finite number) in column {col!r}{_more(len(nan), 'rows')}",
                    "every hour needs a finite number (fill or interpolate missing hours)")
    neg = np.nonzero(out < 0)[0]
    if len(neg):
        k = neg[0]
        raise _fail(f"{p}:{line[k]}", f"negative intensity {texts[k]} in column {col!r}{_more(len(neg), 'rows')}",
                    "grid carbon intensity is >= 0 (marginal or net-of-offset signals are not supported)")
    return out


def _iso(s: int) -> str:
    return str(np.datetime64(int(s), "s")) + "Z"


def _check_hourly(p: Path, utc_s: np.ndarray, line: np.ndarray) -> None:
    """On sorted times: duplicates, then spacing, alignment and gaps."""
    d = np.diff(utc_s)
    dup = np.nonzero(d == 0)[0]
    if len(dup):
        k = dup[0]
        raise _fail(f"{p}:{line[k + 1]}", f"duplicate time {_iso(utc_s[k])} (also line {line[k]})"
                    f"{_more(len(dup), 'duplicates')}", "keep one row per hour")
    if len(d) and np.median(d) < HOUR_S:
        raise _fail(str(p), f"rows are {int(np.median(d)) // 60} min apart, not hourly",
                    "average to one value per hour first")
    off = np.nonzero(utc_s % HOUR_S)[0]
    if len(off):
        k = off[0]
        raise _fail(f"{p}:{line[k]}", f"time {_iso(utc_s[k])} is not at the start of an hour (UTC)"
                    f"{_more(len(off), 'rows')}", "give one row per hour, at hh:00 UTC")
    gaps = np.nonzero(d > HOUR_S)[0]
    if len(gaps):
        k = gaps[0]
        missing = int(((d[gaps] // HOUR_S) - 1).sum())
        raise _fail(f"{p}:{line[k + 1]}", f"gap: {int(d[k] // HOUR_S) - 1} hour(s) missing after {_iso(utc_s[k])} "
                    f"(line {line[k]}); {len(gaps)} gap(s), {missing} missing hour(s) in all",
                    "fill every hour (greenbench does not guess missing hours)")


def _to_grams(p: Path, col: str, values: np.ndarray, units: str | None, forecast: bool = False) -> np.ndarray:
    """Values in gCO2e/kWh. The unit comes from --trace-units or the header; a value column whose
    header names no unit is refused without --trace-units (an unlabelled lb/MWh column of 800-2,000
    would otherwise pass for grams). A forecast column that names no unit is in the value column's.
    The magnitudes are then checked as a second line of defence."""
    head = _header_unit(col)
    label = UNIT_LABELS.get(head or "", "")
    if units is not None:
        key, factor = _parse_units(units)
        if head is not None and UNITS[head] != factor:
            raise _fail(f"{p}: column {col!r}", f"the header says {label} but --trace-units says {UNIT_LABELS[key]}",
                        "fix the header or the option")
        grams = values * factor
        if grams.max() > PLAUSIBLE_MAX_G:
            raise _fail(f"{p}: column {col!r}", f"in {UNIT_LABELS[key]} the values reach {grams.max():.0f} gCO2e/kWh, "
                        f"above a plausible {PLAUSIBLE_MAX_G:.0f}", "check --trace-units")
        return grams
    if head is not None and UNITS[head] != 1.0:
        raise _fail(f"{p}: column {col!r}", f"intensity is in {label}, not gCO2e/kWh",
                    f"pass --trace-units {label} to convert (x{UNITS[head]:g})")
    top = float(values.max())
    unnamed = head is None and not forecast
    where, pre = f"{p}: column {col!r}", ("names no unit, and " if unnamed else "")
    if top < KG_LIKE_MAX:
        raise _fail(where, f"{pre}all values are below {KG_LIKE_MAX:g} (max {top:g}), which looks like kg/kWh",
                    "pass --trace-units kg/kWh to convert, or --trace-units g/kWh if they are grams")
    if top > PLAUSIBLE_MAX_G:
        raise _fail(where, f"{pre}values reach {top:g}, above a plausible {PLAUSIBLE_MAX_G:.0f} gCO2e/kWh "
                    "(lb/MWh?)", "pass --trace-units lb/MWh to convert, or --trace-units g/kWh if they are grams")
    if unnamed:
        raise TraceError(f"{p}: column {col!r} names no unit; rename it {SIMPLE_VALUE} if it is in gCO2e/kWh, "
                         "or pass --trace-units g/kWh (or the unit it is in, e.g. lb/MWh or kg/kWh, to convert it)")
    return values


def _em_zone_tz(text: str, delim: str) -> str | None:
    """An Electricity Maps export of a bundled zone: use that zone's local clock for days."""
    rows = csv.DictReader(io.StringIO(text), delimiter=delim)
    ids = {r.get("Zone Id", "").strip().upper() for r in rows}
    if len(ids) == 1 and (zone := ids.pop()) in _zone_rows():
        return str(_bundle()["tz"][_zone_rows()[zone]])
    return None


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
    from .carbon import CarbonError, Intensity

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
    from .pricing import is_measurement

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
