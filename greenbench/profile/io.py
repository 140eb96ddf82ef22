"""Reading and writing profile files: bounded reading and one line for a file that is not a
plausible profile; atomic writes that keep the file's mode and name the path when they fail; the
lock that keeps a second writer off a profile, and the clean-up of temporary files a killed run
left behind."""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from greenbench.errors import GreenbenchError
from greenbench.profile.schema import SCHEMA, SCHEMA_VERSION, Profile, ProfileError, Record
from greenbench.safeload import InputError, load_json, read_text

# A profile holds about 3.5 KB per operating point at the default 5 repeats: 64 MiB is some
# 18,000 points, far beyond any ladder (tens of points), and small enough to parse in memory.
MAX_PROFILE_BYTES = 64 * 2**20
MAX_PROFILE_DEPTH = 32  # greenbench writes 6 levels (a hub model's config a few more)


class WriteError(GreenbenchError):
    """A file cannot be written (disk full, read-only folder, immutable file): one line naming it."""


class ProfileBusy(GreenbenchError):
    """Another greenbench run holds the profile's write lock."""


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- reading --------------------------------------------------------------------------------------


def load(path: Path) -> Profile:
    """The profile at ``path``, or ProfileError (one line naming the file) when it is unreadable, not
    a greenbench profile, or holds what no measurement gives: a negative or non-finite energy, an
    accuracy outside [0, 1], a batch size below 1, the same operating point twice."""
    return from_doc(read_doc(path), path)


def read_doc(path: Path) -> Any:
    """The JSON document at ``path``, read within a profile's bounds (size, nesting), or ProfileError:
    what ``load`` reads, for a caller that looks at the schema first (price also takes fit's output)."""
    try:
        return load_json(read_text(Path(path), what="profile", max_bytes=MAX_PROFILE_BYTES), str(path),
                         max_depth=MAX_PROFILE_DEPTH)
    except InputError as e:
        raise ProfileError(str(e)) from None


def from_doc(doc: Any, path: Path) -> Profile:
    """A document ``read_doc`` read from ``path`` as a profile (see ``load``)."""
    path = Path(path)
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ProfileError(f"{path}: not a greenbench profile (no \"schema\": \"{SCHEMA}\")")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ProfileError(
            f"{path}: profile schema version {doc.get('schema_version')!r} is not supported "
            f"(this greenbench reads version {SCHEMA_VERSION})"
        )
    doc["schema_"] = doc.pop("schema")
    try:
        profile = Profile.model_validate(doc)
    except ValidationError as e:
        raise ProfileError(f"{path}: {_validation_line(e, doc)}") from None
    _refuse_duplicates(path, profile)
    return profile


def _shown(value: object) -> str:
    """A value of a file as an error line can carry it: escaped where it holds a control
    character (never written raw to a terminal), and at most 40 characters."""
    text = str(value)
    if not text.isprintable():
        text = repr(text)[1:-1]
    return text if len(text) <= 40 else text[:40] + "..."


def _point_name(doc: dict[str, Any], index: int) -> str:
    records = doc.get("records")
    r = records[index] if isinstance(records, list) and index < len(records) else None
    if not isinstance(r, dict):
        return ""
    setting = f"b{_shown(r['batch_size'])}" if r.get("batch_size") is not None else " ".join(
        f"{k[0]}{_shown(r[k])}" for k in ("request_rate_per_s", "concurrency") if r.get(k) is not None)
    return f" ({_shown(r.get('model'))} {setting} {_shown(r.get('precision'))} {_shown(r.get('device'))})"


def _validation_line(e: ValidationError, doc: dict[str, Any]) -> str:
    """The first problem, where it is (a record named by its point) and what it is."""
    errors = e.errors()
    first = errors[0]
    loc = [str(p) for p in first["loc"]]
    where = ".".join(loc)
    if len(loc) >= 2 and loc[0] == "records" and loc[1].isdigit():
        where = f"records[{loc[1]}]{_point_name(doc, int(loc[1]))} " + ".".join(loc[2:])
    msg = first["msg"]
    if first["type"] != "implausible" and "input" in first and not isinstance(first["input"], (dict, list)):
        shown = repr(first["input"])
        msg += f" (got {shown[:40]}{'...' if len(shown) > 40 else ''})"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    what = "implausible value" if first["type"] == "implausible" else "invalid profile"
    return f"{what} at {where.strip()}: {msg}{more}"


def _refuse_duplicates(path: Path, profile: Profile) -> None:
    """One record per operating point: a second one would be collapsed by compare and refused by
    fit, so every command refuses the file alike, here."""
    seen: dict[tuple, int] = {}
    for i, r in enumerate(profile.records):
        first = seen.setdefault(r.key(), i)
        if first != i:
            raise ProfileError(
                f"{path}: records[{i}] ({r.model} b{r.batch_size} {r.precision} {r.device}) is the same "
                f"operating point as records[{first}]; a profile holds each point once"
            )


# --- writing --------------------------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _mode_for(path: Path) -> int:
    """The mode the written file gets: the existing file's (a 0444 or 0640 profile stays so),
    else an ordinary file's under the umask (mkstemp alone would leave 0600)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _why(e: OSError) -> str:
    return e.strerror or str(e) or type(e).__name__


_NOT_REGULAR = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _target(path: Path) -> Path:
    """The file a write to ``path`` lands in: a symlink's target (the link stays a link, its target
    is replaced), or ``path``. WriteError where that exists and is not a regular file: a folder,
    a FIFO or a device would be replaced by a regular file (or, written in place, block or
    discard), so greenbench writes none of them."""
    target = Path(os.path.realpath(path))
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    except OSError as e:
        raise WriteError(f"{path}: cannot write: {_why(e)}") from None
    what = next((name for test, name in _NOT_REGULAR if test(mode)), None)
    if what is not None:
        link = f" (a link to {target})" if target != Path(os.path.abspath(path)) else ""
        hint = "" if what == "a folder" else " (--json, --markdown and --csv print to stdout)"
        raise WriteError(f"{path}: cannot write: it is {what}{link}, not a regular file; give a file path{hint}")
    return target


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader (or a crash) sees the old file or the new one;
    the file keeps its mode; a symlink stays a link and its target is what is replaced. A path
    that is a folder, a FIFO or a device is refused. A failure is WriteError naming ``path`` (no
    temporary file is left)."""
    shown, path = Path(path), _target(Path(path))
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise WriteError(f"{shown}: cannot write: {_why(e)}") from None
    finally:
        if tmp is not None:  # any failure, Ctrl-C included: leave no temporary file behind
            try:
                os.unlink(tmp)
            except OSError:
                pass


def save(profile: Profile, path: Path, records_json: RecordsJson | None = None) -> None:
    """Write the profile atomically; with ``records_json``, each record is serialised once across
    saves (a fleet's driver rewrites a growing profile after every group: benchmarks/
    fleet_driver_bench.py)."""
    profile.updated_utc = utc_now()
    write_atomic(path, profile.to_json() if records_json is None else records_json.document(profile))


class RecordsJson:
    """``Profile.to_json``, byte for byte, with every record's JSON made once and kept: the rest
    of the document is small, the records are nearly all of it. A record must not change after
    it was first written (the driver only appends finished ones); each is kept by identity, the
    record held so that its id stays its own."""

    _PLACEHOLDER = "\0records\0"

    def __init__(self) -> None:
        self._made: dict[int, tuple[Record, str]] = {}

    def _one(self, r: Record) -> str:
        hit = self._made.get(id(r))
        if hit is None or hit[0] is not r:
            text = json.dumps(r.model_dump(mode="json"), indent=1, allow_nan=False).replace("\n", "\n  ")
            hit = self._made[id(r)] = (r, text)
        return hit[1]

    def document(self, profile: Profile) -> str:
        doc = profile.model_dump(mode="json", exclude={"records"})
        doc["records"] = self._PLACEHOLDER  # where Profile.to_json has the list: before "schema"
        doc["schema"] = doc.pop("schema_")
        head = json.dumps(doc, indent=1, allow_nan=False)
        items = [self._one(r) for r in profile.records]
        body = "[\n  " + ",\n  ".join(items) + "\n ]" if items else "[]"
        live = {id(r) for r in profile.records}
        for k in [k for k in self._made if k not in live]:
            del self._made[k]
        return head.replace(json.dumps(self._PLACEHOLDER), body, 1) + "\n"


# Immutable and append-only inode flags (Linux FS_IOC_GETFLAGS; chattr +i / +a): such a file can
# be neither replaced nor removed, even by its owner or root.
_FS_IOC_GETFLAGS = 0x80086601
_FS_IMMUTABLE_FL, _FS_APPEND_FL = 0x10, 0x20


def _immutable(path: Path) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    flags = getattr(st, "st_flags", 0)  # BSD and macOS: chflags
    if flags & (getattr(stat, "UF_IMMUTABLE", 0) | getattr(stat, "SF_IMMUTABLE", 0)
                | getattr(stat, "UF_APPEND", 0) | getattr(stat, "SF_APPEND", 0)):
        return True
    if not stat.S_ISREG(st.st_mode):
        return False
    try:
        import array
        import fcntl

        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (ImportError, OSError):
        return False
    try:
        buf = array.array("l", [0])
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, buf, True)
        return bool(buf[0] & (_FS_IMMUTABLE_FL | _FS_APPEND_FL))
    except OSError:  # a file system without these flags
        return False
    finally:
        os.close(fd)


PROBE_BYTES = 64 * 1024  # about a profile's size: a full disk fails on it, not on the first save


def check_writable(path: Path) -> None:
    """Check now that ``path`` can be created or replaced the way ``write_atomic`` does it, so that a
    run fails before measuring rather than after: the folder exists and takes a new file of a
    profile's size (a full disk, a read-only folder), and an existing file is a regular file (a
    symlink's target, as ``write_atomic`` writes it) and not immutable. Raises WriteError naming
    ``path``; leaves nothing behind."""
    shown = Path(path)
    above = next((f for f in (shown.parent, *shown.parent.parents) if os.path.lexists(f)), None)
    if above is not None and not above.is_dir():  # afile/x.json: afile is a file
        raise WriteError(f"{shown}: cannot write: {above} is not a folder")
    path = _target(shown)  # a folder, a FIFO or a device: refused
    if not path.parent.is_dir():
        raise WriteError(f"{shown}: cannot write: the folder {path.parent} does not exist")
    if _immutable(path):
        raise WriteError(f"{shown}: cannot write: {os.strerror(errno.EPERM)} (the file is immutable or "
                         "append-only; lsattr shows it, chattr -i -a lifts it)")
    probe: str | None = None
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(b"\0" * PROBE_BYTES)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise WriteError(f"{shown}: cannot write: {_why(e)}") from None
    finally:
        if probe is not None:
            try:
                os.unlink(probe)
            except OSError:
                pass


def _temp_pattern(path: Path) -> re.Pattern[str]:
    # tempfile.mkstemp's names: the prefix, 8 characters of [a-z0-9_], the suffix
    return re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.(?:tmp|probe)")


def remove_stale_temps(path: Path, older_than: float) -> list[Path]:
    """Remove the temporary files ``write_atomic`` (or ``check_writable``) left beside ``path`` when
    a run was killed: only greenbench's own names for this file, only those last changed before
    ``older_than`` (seconds since the epoch). Call it holding the profile's lock: then no live
    writer is behind them. Returns what was removed."""
    path = Path(path)
    pattern = _temp_pattern(path)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < older_than:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue  # gone already, or not ours to remove
    return removed


# --- the write lock -------------------------------------------------------------------------------


def lock_path(path: Path) -> Path:
    """The lock beside a profile: profiles/x.json -> profiles/.x.json.lock."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@dataclass
class WriteLock:
    """An exclusive, non-blocking lock on the profile a run writes (``flock`` on a lock file beside
    it, which holds the owner's pid): two runs on one profile, or two --resume runs, never both
    proceed. The lock file is removed on release; a run killed with it leaves a file that the next
    run takes over (a lock dies with its process)."""

    path: Path  # the profile
    acquired_at: float = 0.0  # time.time() when taken
    _fd: int | None = None

    def acquire(self) -> WriteLock:
        try:
            import fcntl
        except ImportError:  # no flock (Windows): no lock, the run proceeds as before
            self.acquired_at = time.time()
            return self
        lock = lock_path(self.path)
        for _ in range(100):  # the file may be removed by its releasing owner between open and flock
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
            except OSError as e:
                raise WriteError(f"{self.path}: cannot write: {_why(e)}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                pid = _read_pid(fd)
                os.close(fd)
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    who = f" (pid {pid})" if pid else ""
                    raise ProfileBusy(f"{self.path} is being written by another greenbench run{who}; "
                                      "wait for it or choose another --name") from None
                raise WriteError(f"{self.path}: cannot lock {lock.name}: {_why(e)}") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(lock).st_ino
            except OSError:
                same = False
            if not same:  # locked a file its owner had just removed: take the new one
                os.close(fd)
                continue
            try:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
            except OSError as e:
                os.close(fd)
                raise WriteError(f"{self.path}: cannot write: {_why(e)}") from None
            self._fd, self.acquired_at = fd, time.time()
            return self
        raise WriteError(f"{self.path}: cannot lock {lock.name}: it keeps changing")

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(lock_path(self.path))  # while still held: no other run has it
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> WriteLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
