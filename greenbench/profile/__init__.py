"""The profile file: the contract between measuring and everything after it (fit, price, compare).

A versioned JSON document: settings, provenance, idle baseline, carbon intensity, and one flat
record per operating point (finished, failed or skipped). It is rewritten atomically after every
finished point, so a run killed at any moment leaves a valid file holding every finished point.
The schema, reading and writing, and the CSV export are modules of their own; this package
exposes them as one API (``from greenbench import profile as prof``).
"""

from greenbench.profile.export import CSV_COLUMNS, csv_text, export_csv, to_rows
from greenbench.profile.io import (
    MAX_PROFILE_BYTES,
    ProfileBusy,
    RecordsJson,
    WriteError,
    WriteLock,
    check_writable,
    load,
    lock_path,
    remove_stale_temps,
    save,
    utc_now,
    write_atomic,
)
from greenbench.profile.schema import (
    MAX_ENERGY_J,
    MAX_POWER_W,
    QUALITY_DIRECTIONS,
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
    Training,
    WarmIdle,
    point_key,
    setting_label,
)

__all__ = [
    "CSV_COLUMNS", "MAX_ENERGY_J", "MAX_POWER_W", "MAX_PROFILE_BYTES", "QUALITY_DIRECTIONS", "SCHEMA", "SCHEMA_VERSION",
    "CarbonIntensity", "IdleBaseline", "IdleMeterPower", "LadderInfo", "MeterSummary", "Profile",
    "ProfileBusy", "ProfileError", "ProtocolSettings", "Provenance", "Record", "RecordsJson", "Settings", "Status",
    "Training", "WarmIdle", "WriteError", "WriteLock", "check_writable", "csv_text", "export_csv", "load",
    "lock_path", "point_key", "remove_stale_temps", "save", "setting_label", "to_rows", "utc_now", "write_atomic",
]
