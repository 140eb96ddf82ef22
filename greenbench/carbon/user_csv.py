"""A user's CSV trace: read, every problem one line (timestamps, time zone, gaps, duplicates,
NaN, negative values, units), and turned into a ``Trace`` in gCO2e/kWh.

Accepts the Electricity Maps export (``Datetime (UTC)``, ``Carbon Intensity gCO₂eq/kWh (LCA)``)
and ``time,intensity_gco2e_per_kwh[,forecast_gco2e_per_kwh]``. Rows are sorted before any check,
so the result never depends on their order.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from greenbench.carbon.bundle import zone_tz
from greenbench.carbon.hourly import (
    BASES,
    HOUR_S,
    ISO_HINT,
    Trace,
    TraceError,
    fromiso,
    iso_utc,
    zone_info,
)
from greenbench.safeload import InputError, read_text
from greenbench.units import G_PER_KG, G_PER_LB

# --- units and columns ----------------------------------------------------------------------

# Unit -> factor to gCO2e/kWh. Only the g/kWh family is taken as is; the others change the
# numbers by 1000x or ~2x and are converted only when the user names the unit.
UNITS = {"g/kwh": 1.0, "kg/mwh": 1.0, "kg/kwh": G_PER_KG, "t/mwh": G_PER_KG,
         "lb/mwh": G_PER_LB / 1000.0, "lb/kwh": G_PER_LB}
UNIT_LABELS = {"g/kwh": "g/kWh", "kg/mwh": "kg/MWh", "kg/kwh": "kg/kWh", "t/mwh": "t/MWh",
               "lb/mwh": "lb/MWh", "lb/kwh": "lb/kWh"}
MAX_TRACE_BYTES = 64 * 2**20  # a year of an Electricity Maps export is ~1 MiB; this is decades of them
PLAUSIBLE_MAX_G = 2000.0  # the dirtiest grids are ~1,100 gCO2e/kWh; above 2,000 the unit is wrong
KG_LIKE_MAX = 2.0  # a column that never reaches 2 is kg/kWh, not the cleanest real grid in g/kWh
EM_TIME = "Datetime (UTC)"
EM_VALUE = {"lca": "Carbon Intensity gCO₂eq/kWh (LCA)", "direct": "Carbon Intensity gCO₂eq/kWh (direct)"}
SIMPLE_VALUE = "intensity_gco2e_per_kwh"
SIMPLE_FORECAST = "forecast_gco2e_per_kwh"


def _norm(name: str) -> str:
    """'Carbon Intensity gCO₂eq/kWh (LCA)' -> 'carbonintensityg/kwh(lca)'; 'lbs_co2_per_mwh' -> 'lb/mwh'."""
    s = name.lower().replace("₂", "2")
    s = re.sub(r"co2-?e?q?|co2", "", s)
    tokens = [("/" if t == "per" else t) for t in re.split(r"[\s_\-]+", s) if t]
    return "".join(tokens).replace("lbs", "lb").replace("tonnes", "t").replace("tons", "t")


def header_unit(name: str) -> str | None:
    """The unit a column header names ('g/kwh', 'lb/mwh', ...), None when it names none."""
    m = re.search(r"(kg|lb|g|t)/?(mwh|kwh)", _norm(name))
    return f"{m.group(1)}/{m.group(2)}" if m else None


def parse_units(units: str) -> tuple[str, float]:
    key = header_unit(units) if units else None
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
    if not p.exists():
        raise _fail(str(p), "no such file", "give a CSV path or a bundled zone id")
    try:
        text = read_text(p, what="carbon trace", max_bytes=MAX_TRACE_BYTES)
    except InputError as e:
        raise TraceError(f"{e}; save the trace as a UTF-8 CSV file") from None
    zone = zone_info(tz, str(p))
    first = text.split("\n", 1)[0]
    delim = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delim)
    try:
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
    except csv.Error as e:  # a field over the csv module's size limit, a stray quote
        raise _fail(f"{p}:{reader.line_num}", f"not CSV that can be read ({e})",
                    "save the trace as plain CSV, one row per hour") from None
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


SHOWN_COLUMNS = 10  # a header of 100,000 columns is one short line, not 789 KB of them


def _column_list(header: list[str]) -> str:
    """The header's first columns for an error line, each at most 40 characters and escaped where
    it holds a control character, then how many more."""
    def shown(h: str) -> str:
        text = h if h.isprintable() else repr(h)[1:-1]
        return text if len(text) <= 40 else text[:40] + "..."

    names = ", ".join(shown(h) for h in header[:SHOWN_COLUMNS])
    more = len(header) - SHOWN_COLUMNS
    return names + (f" and {more:,} more" if more > 0 else "")


def _columns(p: Path, header: list[str], time_column, value_column, forecast_column, basis):
    def find(name: str, what: str) -> int:
        if name not in header:
            raise _fail(str(p), f"no {what} column {name!r} (columns: {_column_list(header)})",
                        f"name one of the columns with the {what} option")
        return header.index(name)

    if basis not in (*BASES, None):
        raise TraceError(f"unknown basis {basis!r} (use {' or '.join(BASES)})")
    if time_column is not None:
        tcol = find(time_column, "time")
    else:
        cands = [i for i, h in enumerate(header) if re.search(r"time|date", h.lower())]
        if not cands:
            raise _fail(str(p), f"no time column (columns: {_column_list(header)})",
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
            raise _fail(str(p), f"cannot tell which column holds the intensity (columns: {_column_list(header)})",
                        f"name it {SIMPLE_VALUE} or give --value-column")
        vcol = cands[0]
    tokens = set(re.split(r"[^a-z]+", header[vcol].lower()))
    basis = "lca" if "lca" in tokens else "direct" if "direct" in tokens else None  # as the header says
    if vcol in (tcol, fcol):
        raise _fail(str(p), f"column {header[vcol]!r} cannot be both the value and the time or forecast",
                    "give distinct --time-column, --value-column and --forecast-column")
    return tcol, vcol, fcol, basis


def _parse_times(p: Path, col: str, texts: list[str], line: np.ndarray, zone: ZoneInfo | None) -> np.ndarray:
    utc_label = "utc" in re.split(r"[^a-z]+", col.lower())  # 'Datetime (UTC)', 'datetime_utc'
    out = np.zeros(len(texts), dtype=np.float64)
    bad, naive, aware, skipped = [], [], 0, []
    for k, s in enumerate(texts):
        try:
            dt = fromiso(s)
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
        key = zone.key if zone is not None else "UTC"
        raise _fail(f"{p}:{line[k]}", f"local time {texts[k]!r} does not exist in {key} (clocks go forward)",
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


def _check_hourly(p: Path, utc_s: np.ndarray, line: np.ndarray) -> None:
    """On sorted times: duplicates, then spacing, alignment and gaps."""
    d = np.diff(utc_s)
    dup = np.nonzero(d == 0)[0]
    if len(dup):
        k = dup[0]
        raise _fail(f"{p}:{line[k + 1]}", f"duplicate time {iso_utc(utc_s[k])} (also line {line[k]})"
                    f"{_more(len(dup), 'duplicates')}", "keep one row per hour")
    if len(d) and np.median(d) < HOUR_S:
        raise _fail(str(p), f"rows are {int(np.median(d)) // 60} min apart, not hourly",
                    "average to one value per hour first")
    off = np.nonzero(utc_s % HOUR_S)[0]
    if len(off):
        k = off[0]
        raise _fail(f"{p}:{line[k]}", f"time {iso_utc(utc_s[k])} is not at the start of an hour (UTC)"
                    f"{_more(len(off), 'rows')}", "give one row per hour, at hh:00 UTC")
    gaps = np.nonzero(d > HOUR_S)[0]
    if len(gaps):
        k = gaps[0]
        missing = int(((d[gaps] // HOUR_S) - 1).sum())
        raise _fail(f"{p}:{line[k + 1]}", f"gap: {int(d[k] // HOUR_S) - 1} hour(s) missing after {iso_utc(utc_s[k])} "
                    f"(line {line[k]}); {len(gaps)} gap(s), {missing} missing hour(s) in all",
                    "fill every hour (greenbench does not guess missing hours)")


def _to_grams(p: Path, col: str, values: np.ndarray, units: str | None, forecast: bool = False) -> np.ndarray:
    """Values in gCO2e/kWh. The unit comes from --trace-units or the header; a value column whose
    header names no unit is refused without --trace-units (an unlabelled lb/MWh column of 800-2,000
    would otherwise pass for grams). A forecast column that names no unit is in the value column's.
    The magnitudes are then checked as a second line of defence."""
    head = header_unit(col)
    label = UNIT_LABELS.get(head or "", "")
    if units is not None:
        key, factor = parse_units(units)
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
    return zone_tz(ids.pop()) if len(ids) == 1 else None
