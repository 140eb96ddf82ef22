"""CPU package and DRAM energy from the Linux powercap RAPL counters (``energy_uj``).

Zones used: the top-level ``intel-rapl:N`` zones named ``package-N`` and the ``dram`` zones
(usually the subzone ``intel-rapl:N:M``); ``core``/``uncore`` are skipped because they lie inside
the package and ``psys`` because it contains it (either would count twice). AMD machines usually
show the same ``intel-rapl`` names; an ``amd-rapl`` tree with the same layout is read alike.

Each zone wraps at its own ``max_energy_range_uj``. ``_read_j`` unwraps every zone itself and
returns one cumulative total, so CounterMeter never sees a decrease. A zone can wrap at most once
between two reads without loss: keep windows shorter than its range over its power (minutes on
Intel, as little as tens of seconds on some AMD parts; ``info().details`` lists the ranges).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from greenbench.meters.base import RAPL, CounterMeter, MeterError, MeterInfo

DEFAULT_ROOT = Path("/sys/class/powercap")
_PREFIXES = ("intel-rapl", "amd-rapl")


@dataclass
class _Zone:
    path: Path
    name: str  # "package-0", "dram"
    max_range_uj: int
    last_uj: int | None = None


def _zone_key(path: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in path.name.split(":")[1:])


def _find_zones(root: Path) -> tuple[list[_Zone], str | None]:
    """The package and dram zones under ``root`` (first prefix that has any), or a reason."""
    if not root.is_dir():
        return [], (
            f"{root} does not exist: no powercap RAPL interface here (not Linux, a VM that "
            "hides RAPL, or the intel_rapl driver is not loaded)"
        )
    for prefix in _PREFIXES:
        zones: list[_Zone] = []
        dirs = [d for d in root.glob(f"{prefix}:*") if all(p.isdigit() for p in d.name.split(":")[1:])]
        for d in sorted(dirs, key=_zone_key):
            try:
                name = (d / "name").read_text().strip()
            except OSError:
                continue
            top_level = len(_zone_key(d)) == 1
            if not ((top_level and name.startswith("package")) or name == "dram"):
                continue
            try:
                max_range_uj = int((d / "max_energy_range_uj").read_text())
            except (OSError, ValueError) as exc:
                return [], f"cannot read {d / 'max_energy_range_uj'} (needed for wrap-around): {exc}"
            zones.append(_Zone(d, name, max_range_uj))
        if any(z.name.startswith("package") for z in zones):
            return zones, None
    return [], f"no RAPL package zone under {root} (looked for {', '.join(p + ':N' for p in _PREFIXES)})"


class RaplMeter(CounterMeter):
    """Sum of the package (and dram) zones of every socket, aligned to counter ticks."""

    method = RAPL
    _wrap_j = None  # each zone is unwrapped in _read_j with its own range

    def __init__(self, root: Path | str | None = None, *, clock: Callable[[], float] | None = None):
        super().__init__(clock)
        self.root = Path(root) if root is not None else DEFAULT_ROOT  # looked up now: tests patch it
        self._zones: list[_Zone] | None = None
        self._error: str | None = None
        self._total_uj = 0
        self._wraps = 0
        self.domain = "cpu_package"

    def _read_zone_uj(self, zone: _Zone) -> int:
        path = zone.path / "energy_uj"
        every_zone = zone.path.parent / f"{zone.path.name.split(':')[0]}:*" / "energy_uj"
        try:
            return int(path.read_text())
        except PermissionError:
            raise MeterError(
                f"cannot read {path}: permission denied (energy_uj is readable by root only since "
                f"Linux 5.10); run as root or `sudo chmod a+r {every_zone}`"
            ) from None
        except (OSError, ValueError) as exc:
            raise MeterError(f"cannot read {path}: {exc}") from None

    def _ensure(self) -> bool:
        if self._zones is not None or self._error is not None:
            return self._error is None
        zones, reason = _find_zones(self.root)
        if reason is None:
            try:
                for zone in zones:
                    zone.last_uj = self._read_zone_uj(zone)
            except MeterError as exc:
                reason = str(exc)
        if reason is not None:
            self._error = reason
            return False
        self._zones = zones
        has_dram = any(z.name == "dram" for z in zones)
        self.domain = "cpu_package+dram" if has_dram else "cpu_package"
        return True

    def info(self) -> MeterInfo:
        if not self._ensure():
            return MeterInfo(self.domain, self.method, False, self._error or "")
        details = {
            "root": str(self.root),
            "zones": [
                {"zone": z.path.name, "name": z.name, "max_energy_range_j": z.max_range_uj / 1e6}
                for z in self._zones or []
            ],
        }
        return MeterInfo(self.domain, self.method, True, "RAPL energy counters (measured)", details)

    def _read_j(self) -> float:
        if not self._ensure():
            raise MeterError(f"RAPL: {self._error}")
        for zone in self._zones or []:
            raw_uj = self._read_zone_uj(zone)
            last = zone.last_uj if zone.last_uj is not None else raw_uj
            if raw_uj >= last:
                self._total_uj += raw_uj - last
            else:  # the zone wrapped at its own range
                self._total_uj += raw_uj + zone.max_range_uj - last
                self._wraps += 1
            zone.last_uj = raw_uj
        return self._total_uj / 1e6

    def _prepare(self) -> None:
        if not self._ensure():
            raise MeterError(f"RAPL: {self._error}")
