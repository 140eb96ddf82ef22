"""The bundled 2023 hourly data: 18 Electricity Maps zones in ``greenbench/data`` (ODbL).

Read once and cached: ``arrays()`` is the npz as loaded, ``zone_row`` finds a zone by its id or
its source file's name, ``load_bundled`` gives a zone's ``Trace`` (read-only arrays, shared).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

import numpy as np

from greenbench.carbon.hourly import BASES, HOUR_S, Trace, TraceError

BUNDLE_FILE = "carbon_2023_hourly.npz"
BUNDLE_SOURCE = "Electricity Maps 2023 hourly ({basis}), ODbL"


@dataclass(frozen=True)
class BundledZone:
    zone: str  # Electricity Maps Zone Id
    region: str
    tz: str  # IANA zone of the grid's local clock
    file: str  # original file name (three differ from the Zone Id: BR-SP, CL-SIC, DE-LU)
    hours: int
    estimated_share: float  # share of hours Electricity Maps estimated rather than measured


@lru_cache(maxsize=1)
def arrays() -> dict[str, np.ndarray]:
    """The bundle's arrays by name (zones, regions, tz, files, estimated_hours, start_utc_s,
    lca_cg_per_kwh, direct_cg_per_kwh)."""
    path = resources.files("greenbench.data").joinpath(BUNDLE_FILE)
    with path.open("rb") as f, np.load(f, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


@lru_cache(maxsize=1)
def zone_rows() -> dict[str, int]:
    """Zone id and file stem (upper case) -> row of the bundle."""
    b = arrays()
    rows = {str(z).upper(): i for i, z in enumerate(b["zones"])}
    rows.update({str(f).split("_")[0].upper(): i for i, f in enumerate(b["files"])})
    return rows


def zone_row(zone: str) -> int | None:
    """The bundle's row of a zone id or file stem (any case), None when it is not bundled."""
    return zone_rows().get(str(zone).strip().upper())


def zone_tz(zone: str) -> str | None:
    """The IANA zone of a bundled zone's local clock, None when it is not bundled."""
    row = zone_row(zone)
    return None if row is None else str(arrays()["tz"][row])


def estimated_hours(zone: str) -> int | None:
    """Hours of 2023 Electricity Maps estimated for a bundled zone, None when it is not bundled."""
    row = zone_row(zone)
    return None if row is None else int(arrays()["estimated_hours"][row])


def bundled_zones() -> list[str]:
    """The 18 bundled Electricity Maps zone ids, sorted."""
    return sorted(str(z) for z in arrays()["zones"])


def bundled_zone_info() -> list[BundledZone]:
    b = arrays()
    hours = b["lca_cg_per_kwh"].shape[1]
    return sorted(
        (BundledZone(str(z), str(r), str(tz), str(f), hours, float(e) / hours)
         for z, r, tz, f, e in zip(b["zones"], b["regions"], b["tz"], b["files"], b["estimated_hours"], strict=True)),
        key=lambda z: z.zone)


def is_bundled(zone: str) -> bool:
    return zone_row(zone) is not None


def is_bundle_trace(trace: Trace) -> bool:
    """Whether ``trace`` is a bundled zone's, as loaded (not a CSV of the same name)."""
    return trace.source == BUNDLE_SOURCE.format(basis=trace.basis) and is_bundled(trace.name)


def load_bundled(zone: str, basis: str = "lca") -> Trace:
    """A bundled zone's 2023 hourly trace (cached; the arrays are read-only)."""
    if basis not in BASES:
        raise TraceError(f"unknown basis {basis!r} (use {' or '.join(BASES)})")
    row = zone_row(zone)
    if row is None:
        raise TraceError(f"unknown zone {zone!r}; bundled zones: {', '.join(bundled_zones())} "
                         "(or give the path of a CSV trace)")
    return load_row(row, basis)


@cache
def load_row(row: int, basis: str) -> Trace:
    """The trace of the bundle's ``row`` (cached: ``load_bundled`` is the way in)."""
    b = arrays()
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


def clear_cache() -> None:
    """Forget the loaded bundle (tests time a cold load)."""
    load_row.cache_clear()
    zone_rows.cache_clear()
    arrays.cache_clear()
