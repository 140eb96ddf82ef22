"""Reading and writing profile files: atomic writes, and a one-line error for a file that is not one."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from pydantic import ValidationError

from greenbench.profile.schema import SCHEMA, SCHEMA_VERSION, Profile, ProfileError


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader (or a crash) sees the old file or the new one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a profile is an ordinary file
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def save(profile: Profile, path: Path) -> None:
    profile.updated_utc = utc_now()
    write_atomic(path, profile.to_json())


def load(path: Path) -> Profile:
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as e:
        raise ProfileError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ProfileError(f"{path}: not JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ProfileError(f"{path}: not a greenbench profile (no \"schema\": \"{SCHEMA}\")")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ProfileError(
            f"{path}: profile schema version {doc.get('schema_version')!r} is not supported "
            f"(this greenbench reads version {SCHEMA_VERSION})"
        )
    doc["schema_"] = doc.pop("schema")
    try:
        return Profile.model_validate(doc)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ProfileError(f"{path}: invalid profile at {loc}: {first['msg']}") from None


# Columns of the CSV export, in order (long form: one row per operating point).
