"""Merging profiles measured on different hosts or runs into one fleet profile (``greenbench
merge``), on which fit, price and report treat the hardware as one more axis: the frontier spans
the accelerators, and the price may choose H on one GPU type and R on another.

The rules (docs/fleet.md says why):

- **One ladder**: the same ladder name and the same definition, its ``devices`` aside (a host's own
  choice): the models and the evaluation data must be the same for accuracies to be comparable.
- **One protocol**: what makes the numbers comparable must match (``PROTOCOL_FIELDS`` and the
  energy basis). The seed (it only orders the batch sizes), max_cv (the threshold of a flag), the
  meter asked for, the threads and the slice (--model, --batch-size, --precision, --device) may differ.
- **A point is a device of a host**: every record's device becomes ``<host>:<device>``
  (``gpu-a:cuda:0``; the host is the short host name of the file's provenance, else the file's
  stem), so the same model on an H100 host and on an L4 host is two points with two labels. One
  name seen with two GPU UUIDs (two Slurm tasks on one node, each seeing its GPU as cuda:0) gets
  the UUID's head as well: ``node1:cuda:0:GPU-1a2b3c4d``.
- **Each point once**: the same point (same host, same GPU, same model, setting and precision)
  from two files is refused, whatever the status of either.
- **Every record is kept**, failed and skipped ones too (they say what a host could not run; fit
  and price read the ok ones only), and each says where it came from: ``Record.source`` indexes
  ``provenance.sources``, one entry per input with its file, host, provenance, settings, idle
  baselines (keyed as in that file: they collide across hosts), carbon section and the names its
  devices got. The merged ``idle`` is keyed by the merged device names.
- A merged profile is an input like any other: its sources are taken apart and merged again.

A merged profile is for reading (fit, price, report, compare), not for ``profile --resume``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from greenbench import __version__
from greenbench.errors import GreenbenchError
from greenbench.profile.schema import (
    CarbonIntensity,
    IdleBaseline,
    LadderInfo,
    Profile,
    ProtocolSettings,
    Provenance,
    Record,
    Settings,
)

__all__ = ["FREE_PROTOCOL_FIELDS", "PROTOCOL_FIELDS", "MergeError", "MergeSummary", "SourceSummary", "merge",
           "short_host", "sources_of", "summarize"]

# The protocol's settings that change a measured number: two files must agree on each. In the
# order the error line names the first difference (quick first: it changes several at once).
PROTOCOL_FIELDS = ("quick", "repeats", "min_window_s", "warmup_s", "min_counter_updates", "min_steps", "idle_s")
# Those that may differ: the seed orders the batch sizes, max_cv is the threshold of the noisy flag.
FREE_PROTOCOL_FIELDS = ("seed", "max_cv")
SUMMARY_SCHEMA = "greenbench/merge"
SUMMARY_SCHEMA_VERSION = 1


class MergeError(GreenbenchError):
    """Profiles that cannot be merged: another ladder, another protocol, a point twice (one line)."""


@dataclass
class _Unit:
    """One measured file: a plain input, or one source of a merged input (taken apart)."""

    file: str  # the file it was measured into
    given: str  # the input it came in, for messages: "b.json", or "fleet.json (b.json)"
    host: str  # the raw host name (provenance), else the file's stem
    settings: Settings
    entry: dict[str, Any]  # its provenance.sources entry, without "devices" (set when merged)
    idle: dict[str, dict[str, Any]]  # as the file keyed it: "cpu", "cuda:0"
    records: list[Record] = field(default_factory=list)  # with the devices as the file named them


def _shown(v: object) -> str:
    if v is None:
        return "not recorded"
    if isinstance(v, bool):
        return "true" if v else "false"
    return f"{v:g}" if isinstance(v, float) else str(v)


def sources_of(profile: Profile) -> list[dict[str, Any]] | None:
    """A merged profile's ``provenance.sources`` (one entry per measured file), or None for a
    profile measured in one run."""
    sources = (profile.provenance.model_extra or {}).get("sources")
    return sources if isinstance(sources, list) else None


def _units(profile: Profile, name: str) -> list[_Unit]:
    sources = sources_of(profile)
    if sources is None:
        if any(r.source is not None for r in profile.records):
            raise MergeError(f"{name}: records name a source but the profile has no provenance.sources; "
                             "it was edited by hand: merge the files it came from")
        idle = {k: v.model_dump(mode="json") for k, v in profile.idle.items()}
        entry: dict[str, Any] = {
            "file": name, "greenbench_version": profile.greenbench_version, "created_utc": profile.created_utc,
            "updated_utc": profile.updated_utc, "complete": profile.complete, "ladder": profile.ladder.name,
            "settings": profile.settings.model_dump(mode="json"),
            "provenance": profile.provenance.model_dump(mode="json"), "idle": idle,
            "carbon": profile.carbon.model_dump(mode="json")}
        return [_Unit(name, name, profile.provenance.host or Path(name).stem, profile.settings, entry,
                      idle, list(profile.records))]
    units: list[_Unit] = []
    for i, s in enumerate(sources):
        if not isinstance(s, dict) or not isinstance(s.get("devices"), dict):
            raise MergeError(f"{name}: provenance.sources[{i}] is not a source greenbench merge wrote")
        file = str(s.get("file") or f"{name}[{i}]")
        prov: dict[str, Any] = s["provenance"] if isinstance(s.get("provenance"), dict) else {}
        entry = {k: v for k, v in s.items() if k not in ("devices", "host")}
        try:
            settings = Settings.model_validate(s.get("settings") or {})
        except ValueError:
            raise MergeError(f"{name}: provenance.sources[{i}].settings is not a profile's settings") from None
        kept: dict[str, dict[str, Any]] = dict(s["idle"]) if isinstance(s.get("idle"), dict) else {}
        # a Ray run's node keeps the name the run gave it (several nodes of one machine are told apart)
        raw = s.get("host") if s.get("ray_node_id") else prov.get("host")
        units.append(_Unit(file, f"{name} ({file})", str(raw or Path(file).stem), settings, entry, kept))
    for r in profile.records:
        if r.source is None or r.source >= len(units):
            raise MergeError(f"{name}: record {r.label} names no source of its provenance.sources")
        original = {v: k for k, v in sources[r.source]["devices"].items()}
        units[r.source].records.append(r.model_copy(update={"device": original.get(r.device, r.device),
                                                            "source": None, "host": None}))
    return units


# --- the checks -----------------------------------------------------------------------------------


def _check_ladders(profiles: Sequence[Profile], names: Sequence[str]) -> None:
    first, a = profiles[0].ladder, names[0]
    for p, b in zip(profiles[1:], names[1:], strict=True):
        if p.ladder.name != first.name:
            raise MergeError(f"{b}: ladder {p.ladder.name!r} differs from {a}'s {first.name!r}; a fleet "
                             "profile holds one ladder (merge each ladder's files apart)")
        d1 = {k: v for k, v in (first.definition or {}).items() if k != "devices"}
        d2 = {k: v for k, v in (p.ladder.definition or {}).items() if k != "devices"}
        if d1 != d2:
            keys = sorted(k for k in set(d1) | set(d2) if d1.get(k) != d2.get(k))
            raise MergeError(f"{b}: ladder {first.name!r} is defined differently from {a} "
                             f"({', '.join(keys[:3])}): its models or data changed between the runs; "
                             "profile every host with the same model_zoo.yaml")


def _check_protocols(units: Sequence[_Unit]) -> None:
    first = units[0]
    for u in units[1:]:
        for name in PROTOCOL_FIELDS:
            x, y = getattr(u.settings.protocol, name), getattr(first.settings.protocol, name)
            if x != y:
                raise MergeError(f"{u.given}: protocol differs from {first.given}: {name} {_shown(x)} vs "
                                 f"{_shown(y)}; profile every host with the same options")
        x, y = u.settings.energy_basis, first.settings.energy_basis
        if x != y:
            raise MergeError(f"{u.given}: protocol differs from {first.given}: energy basis {_shown(x)} vs "
                             f"{_shown(y)}; profile every host with the same options")


# --- names: hosts and devices ---------------------------------------------------------------------


def _clean(host: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", host).strip("-") or "host"


def _short(clean: str) -> str:
    """``gpu-a`` of ``gpu-a.cluster.org``; an IP (no letter before the first dot) stays whole."""
    head = clean.split(".")[0]
    return head if head and re.search(r"[A-Za-z]", head) else clean


def short_host(host: str) -> str:
    """A host as device names carry it: cleaned, and short (``gpu-a``)."""
    return _short(_clean(host))


def _host_names(units: Sequence[_Unit]) -> list[str]:
    """Each unit's host as device names carry it: the short name (``gpu-a`` of
    ``gpu-a.cluster.org``), or the full one where two hosts share a short name (and for an IP)."""
    full = [_clean(u.host) for u in units]
    owners: dict[str, set[str]] = {}
    for h in full:
        owners.setdefault(_short(h), set()).add(h)
    return [_short(h) if len(owners[_short(h)]) == 1 else h for h in full]


def _uuid(u: _Unit, device: str) -> str | None:
    idle = u.idle.get(device)
    if isinstance(idle, dict) and idle.get("uuid"):
        return str(idle["uuid"])
    return next((r.device_uuid for r in u.records if r.device == device and r.device_uuid), None)


def _device_names(units: Sequence[_Unit], hosts: Sequence[str]) -> list[dict[str, str]]:
    """Per unit, its devices' merged names: ``host:device``, with the GPU's UUID head where one
    such name would otherwise stand for two GPUs."""
    seen: list[list[tuple[str, str | None]]] = []
    uuids: dict[str, set[str | None]] = {}
    for u, host in zip(units, hosts, strict=True):
        devices = list(dict.fromkeys([*(r.device for r in u.records), *u.idle]))
        ident = [(d, _uuid(u, d)) for d in devices]
        seen.append(ident)
        for d, uuid in ident:
            uuids.setdefault(f"{host}:{d}", set()).add(uuid)
    names: list[dict[str, str]] = []
    for ident, host in zip(seen, hosts, strict=True):
        mapping = {}
        for d, uuid in ident:
            base = f"{host}:{d}"
            mapping[d] = base if len(uuids[base]) == 1 else f"{base}:{_clean(uuid)[:12] if uuid else 'no-uuid'}"
        names.append(mapping)
    return names


# --- the merged document --------------------------------------------------------------------------


def _common(values: Sequence[Any]) -> Any:
    return values[0] if all(v == values[0] for v in values) else None


def _union(lists: Sequence[list[Any] | None]) -> list[Any] | None:
    """The slices' union; None (the ladder's own: all of them) where any slice took all."""
    if any(x is None for x in lists):
        return None
    return list(dict.fromkeys(v for x in lists for v in (x or [])))


def _settings(units: Sequence[_Unit], devices: list[str]) -> Settings:
    protocols = [u.settings.protocol for u in units]
    proto = protocols[0].model_dump(mode="json")
    for name in FREE_PROTOCOL_FIELDS:
        if name in proto or any(name in p.model_fields_set for p in protocols):
            proto[name] = _common([getattr(p, name) for p in protocols])
    ss = [u.settings for u in units]
    return Settings(protocol=ProtocolSettings.model_validate(proto), meter=_common([s.meter for s in ss]),
                    energy_basis=ss[0].energy_basis, models=_union([s.models for s in ss]),
                    batch_sizes=_union([s.batch_sizes for s in ss]),
                    precisions=_union([s.precisions for s in ss]), devices=devices,
                    threads=_common([s.threads for s in ss]))


def _provenance(units: Sequence[_Unit], hosts: Sequence[str], sources: list[dict[str, Any]]) -> Provenance:
    """What every source agrees on (null where they differ), the hosts, and the sources."""
    provs = [s["provenance"] for s in sources]
    shared = {k: _common([p.get(k) for p in provs]) for k in Provenance.model_fields if k != "host"}
    given = {k: v for k, v in shared.items() if v is not None}
    return Provenance.model_validate({**given, "host": ", ".join(dict.fromkeys(hosts)), "sources": sources})


def _ladder(profiles: Sequence[Profile]) -> LadderInfo:
    info = profiles[0].ladder.model_dump(mode="json")
    definitions = [p.ladder.definition for p in profiles]
    if isinstance(info.get("definition"), dict) and all(isinstance(d, dict) and isinstance(d.get("devices"), list)
                                                        for d in definitions):
        info["definition"]["devices"] = list(dict.fromkeys(v for d in definitions for v in d["devices"]))  # type: ignore[index]
    return LadderInfo.model_validate(info)


def merge(profiles: list[Profile], sources: list[str]) -> Profile:
    """One fleet profile from ``profiles``, each named by ``sources`` (its file, as given): the rules
    are in this module's docstring. Raises MergeError (one line naming the file) on another ladder,
    another protocol, or a point measured twice."""
    if not profiles:
        raise MergeError("nothing to merge: give one or more profiles")
    if len(profiles) != len(sources):
        raise MergeError(f"{len(profiles)} profiles but {len(sources)} names for them")
    _check_ladders(profiles, sources)
    units = [u for p, name in zip(profiles, sources, strict=True) for u in _units(p, name)]
    _check_protocols(units)
    hosts = _host_names(units)
    names = _device_names(units, hosts)

    records: list[Record] = []
    first_of: dict[tuple, str] = {}
    idle: dict[str, IdleBaseline] = {}
    entries: list[dict[str, Any]] = []
    for i, (u, host, mapping) in enumerate(zip(units, hosts, names, strict=True)):
        entries.append({**u.entry, "host": host, "devices": mapping})
        for r in u.records:
            merged = r.model_copy(update={"device": mapping[r.device], "source": i, "host": host},
                                  deep=True)
            key = merged.key()
            if key in first_of:
                raise MergeError(f"{u.given}: {merged.label} is also in {first_of[key]}; a merged profile holds "
                                 "each point once: leave one of the two files out")
            first_of[key] = u.given
            records.append(merged)
        for device, baseline in u.idle.items():
            name = mapping[device]
            if name not in idle and isinstance(baseline, dict):  # the first; each source keeps its own
                idle[name] = IdleBaseline.model_validate({**baseline, "device": name})

    carbons = [u.entry.get("carbon") or {} for u in units]
    devices = list(dict.fromkeys(d for m in names for d in m.values()))
    return Profile(
        greenbench_version=__version__,
        created_utc=min(str(u.entry.get("created_utc") or "") for u in units),
        updated_utc=max(str(u.entry.get("updated_utc") or "") for u in units),
        complete=all(bool(u.entry.get("complete")) for u in units),
        ladder=_ladder(profiles),
        settings=_settings(units, devices),
        provenance=_provenance(units, hosts, entries),
        idle=idle,
        carbon=CarbonIntensity.model_validate(carbons[0] if all(c == carbons[0] for c in carbons) else {}),
        records=records,
    )


# --- what came from where -------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceSummary:
    """One measured file of a merged profile: its host, its accelerators and its points."""

    index: int
    file: str
    host: str
    device_names: tuple[str, ...]  # what the devices are: "NVIDIA H100 80GB HBM3", "Intel Xeon"
    devices: tuple[str, ...]  # the names its points have in the merged profile: "gpu-a:cuda:0"
    points: int
    ok: int

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "file": self.file, "host": self.host, "device_names": list(self.device_names),
                "devices": list(self.devices), "points": self.points, "ok": self.ok}


@dataclass(frozen=True)
class MergeSummary:
    sources: tuple[SourceSummary, ...]
    points: int
    ok: int
    notes: tuple[str, ...]  # what a user should know (carbon sections differ, a source incomplete)

    @property
    def line(self) -> str:
        hosts = len(dict.fromkeys(s.host for s in self.sources))
        return (f"merged {self.points} point{'s' * (self.points != 1)} ({self.ok} ok) from "
                f"{len(self.sources)} file{'s' * (len(self.sources) != 1)} on {hosts} host{'s' * (hosts != 1)}")

    def to_dict(self, out: str | None = None) -> dict[str, Any]:
        return {"schema": SUMMARY_SCHEMA, "schema_version": SUMMARY_SCHEMA_VERSION, "out": out,
                "points": self.points, "ok": self.ok, "line": self.line,
                "sources": [s.to_dict() for s in self.sources], "notes": list(self.notes)}


def summarize(profile: Profile) -> MergeSummary:
    """What came from where in a merged profile (a plain profile reads as one source)."""
    sources = sources_of(profile)
    if sources is None:
        sources = [{"file": "", "host": profile.provenance.host or "", "devices": {}}]
    rows = []
    for i, s in enumerate(sources):
        mine = [r for r in profile.records if (r.source or 0) == i]
        names = dict.fromkeys(r.device_name or r.device for r in mine)
        for device in (s.get("idle") or {}).values():
            if isinstance(device, dict) and device.get("device_name") and not mine:
                names[str(device["device_name"])] = None
        rows.append(SourceSummary(i, str(s.get("file", "")), str(s.get("host", "")), tuple(names),
                                  tuple(dict.fromkeys((s.get("devices") or {}).values())), len(mine),
                                  sum(r.status == "ok" for r in mine)))
    notes = []
    carbons = [s.get("carbon") or {} for s in sources]
    if any(c != carbons[0] for c in carbons):
        notes.append("the files' carbon sections differ (hosts in other grid zones?): the merged profile "
                     "keeps none, each record its own intensity, each source its section")
    for s in sources:
        if s.get("complete") is False:
            notes.append(f"{s.get('file')} is incomplete (an interrupted run): only its finished points are in")
    return MergeSummary(tuple(rows), len(profile.records), len(profile.ok_records()), tuple(notes))
