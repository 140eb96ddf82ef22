"""The profile file: the contract between measuring and everything after it (fit, price, compare).

A versioned JSON document: settings, provenance, idle baseline, carbon intensity, and one flat
record per operating point (finished, failed or skipped). It is rewritten atomically after every
finished point, so a run killed at any moment leaves a valid file holding every finished point.
The schema, reading and writing, and the CSV export are modules of their own; this package
exposes them as one API (``from greenbench import profile as prof``).
"""

from greenbench.profile.export import CSV_COLUMNS, export_csv, to_rows
from greenbench.profile.io import load, save, utc_now, write_atomic
from greenbench.profile.schema import (
    SCHEMA,
    SCHEMA_VERSION,
    CarbonIntensity,
    IdleBaseline,
    IdleMeterPower,
    LadderInfo,
    MeterSummary,
    Profile,
    ProfileError,
    ProtocolSettings,
    Provenance,
    Record,
    Settings,
    Status,
    WarmIdle,
    point_key,
)

__all__ = [
    "CSV_COLUMNS", "SCHEMA", "SCHEMA_VERSION", "CarbonIntensity", "IdleBaseline", "IdleMeterPower",
    "LadderInfo", "MeterSummary", "Profile", "ProfileError", "ProtocolSettings", "Provenance", "Record",
    "Settings", "Status", "WarmIdle", "export_csv", "load", "point_key", "save", "to_rows", "utc_now",
    "write_atomic",
]
