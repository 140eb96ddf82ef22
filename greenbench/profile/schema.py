"""The profile schema: one flat record per operating point, and the document that holds them,
with its typed sections (ladder, settings, provenance, idle baselines, carbon intensity).

Missing values are null and say why; a null is never a zero (nor NaN). Reading and writing are in
``greenbench.profile.io``, the CSV export in ``greenbench.profile.export``.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from greenbench.errors import GreenbenchError

SCHEMA = "greenbench/profile"
SCHEMA_VERSION = 1

Status = Literal["ok", "failed", "skipped"]


class ProfileError(GreenbenchError):
    """A profile file is missing, unreadable or not a greenbench profile (one line)."""


class Record(BaseModel):
    """One operating point. Missing values are null and say why; a null is never a zero (nor NaN)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    ladder: str
    model: str
    params: int | None = None
    batch_size: int
    precision: str
    device: str
    device_name: str | None = None
    device_uuid: str | None = None  # the GPU whose counter measured the point (None on a CPU)
    status: Status = "ok"
    error: str | None = None

    accuracy: float | None = None
    accuracy_ci95: tuple[float, float] | None = None
    accuracy_n: int | None = None
    quality_metric: str | None = None  # what the workload scored: accuracy, perplexity
    perplexity: float | None = None  # causal LMs scored on plain text
    quality: dict[str, float] = {}  # other quality figures the workload gave (tokens_scored, ...)

    latency_mean_ms: float | None = None  # per batch: what every request in the batch waits
    latency_p50_ms: float | None = None
    latency_p90_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    latency_per_item_ms: float | None = None  # mean batch latency / batch size
    # per-item percentiles: the batch percentiles over the batch size (items of a batch finish
    # together, so this is the amortised compute time per item, not what a request waits)
    latency_per_item_p50_ms: float | None = None
    latency_per_item_p90_ms: float | None = None
    latency_per_item_p95_ms: float | None = None
    latency_per_item_p99_ms: float | None = None
    items_per_s: float | None = None
    items_per_s_ci95: tuple[float, float] | None = None

    energy_j_per_item: float | None = None  # gross: what the meter saw
    energy_j_per_item_std: float | None = None
    energy_j_per_item_cv: float | None = None
    energy_j_per_item_ci95: tuple[float, float] | None = None
    energy_net_j_per_item: float | None = None  # gross minus idle power x time
    energy_method: str = "unavailable"
    energy_domain: str | None = None
    energy_reason: str | None = None  # why energy is null, or what an estimate rests on
    power_w: float | None = None  # mean power over the windows
    idle_power_w: float | None = None  # the baseline net energy subtracts (see idle_basis)
    idle_basis: str | None = None  # "warm" (measured right after this point's model ran) or "cold"
    counter_update_period_s: float | None = None  # the energy counter's update period (median)
    components: list[dict[str, Any]] = []  # other meters (host CPU beside a GPU), never summed in

    # Causal LMs: a request is prompt_tokens in, output_tokens out (greedy, fixed). Prefill is
    # measured in windows of its own; decode is the full request minus prefill.
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    ttft_mean_ms: float | None = None  # time to first token: the prefill latency of the batch
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None
    tpot_ms: float | None = None  # time per output token after the first: (full - prefill) / (T - 1)
    output_tokens_per_s: float | None = None
    energy_prefill_j_per_item: float | None = None  # per request
    energy_decode_j_per_token: float | None = None  # (full - prefill) / (T - 1), per request
    energy_j_per_output_token: float | None = None  # full request / T
    energy_lm_reason: str | None = None  # why a prefill/decode figure is null

    co2e_g_per_item: float | None = None
    intensity_gco2e_per_kwh: float | None = None
    intensity_source: str | None = None

    repeats: int = 0
    window_s: float | None = None  # mean window length
    counter_updates_min: int | None = None
    samples: dict[str, list[float]] = {}  # per-repeat values, for significance tests
    flags: list[str] = []
    model_spec: dict[str, Any] = {}
    workload: dict[str, Any] = {}
    measured_utc: str | None = None

    def key(self) -> tuple[str, str, int, str, str]:
        return point_key(self.ladder, self.model, self.batch_size, self.precision, self.device)


def point_key(ladder: str, model: str, batch_size: int, precision: str, device: str) -> tuple:
    return (ladder, model, int(batch_size), precision, device)


# --- the document's sections beside the records ---------------------------------------------------


class _Section(BaseModel):
    """A section of the profile document beside the records. It writes back exactly the keys it
    was given (read from a file, or passed when built), so that the file format is the one the
    dicts wrote: an older file that lacks a key written today (``threads``, ``read_cost_s``,
    ``warm``, ``torch_interop_threads``) loads with the default (null, or an empty list), reads
    as that default, and is saved again (``--resume``) without the key; a warm idle entry says
    ``reason`` only when it failed. Older greenbench versions only ever added keys. Change a
    field by assigning it (as ``IdleBaseline.add_warm`` does): a default list changed in place
    stays unwritten.

    Unknown keys are kept and written back: these sections were free-form before they were
    typed, so a key from a newer greenbench (or a hand edit) must neither fail the file nor be
    dropped on the next save. (The records and the document's own top level refuse unknown keys,
    as they always did.)"""

    model_config = ConfigDict(extra="allow")

    @model_serializer(mode="wrap")
    def _given_keys_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        doc = handler(self)
        given = self.model_fields_set | set(self.model_extra or {})
        return {k: v for k, v in doc.items() if k in given}


class LadderInfo(_Section):
    """Which ladder was measured; ``definition`` is the zoo's validated ladder as it was then
    (the zoo owns its schema; resume checks that it did not change)."""

    name: str
    source: str | None = None  # where the ladder was defined (file path or "built-in")
    definition: dict[str, Any] | None = None


class ProtocolSettings(_Section):
    """The window protocol's settings (``greenbench.measure.protocol.Protocol``, as numbers)."""

    repeats: int | None = None
    min_window_s: float | None = None
    min_counter_updates: int | None = None
    min_steps: int | None = None
    warmup_s: float | None = None
    idle_s: float | None = None
    max_cv: float | None = None
    seed: int | None = None
    quick: bool | None = None


class Settings(_Section):
    """What must match for a resumed run to continue an earlier one; None: the ladder's own."""

    protocol: ProtocolSettings = Field(default_factory=ProtocolSettings)
    meter: str | None = None  # as asked: auto, nvml, rapl, codecarbon, none, fake
    energy_basis: str | None = None  # "gross": what the meter saw
    models: list[str] | None = None
    batch_sizes: list[int] | None = None
    precisions: list[str] | None = None
    devices: list[str] | None = None
    threads: int | None = None  # torch intra-op threads asked for (None: torch's default)

    @property
    def quick(self) -> bool:
        return bool(self.protocol.quick)


class Provenance(_Section):
    """Machine and software facts of the run (``greenbench.measure.devices.provenance``).

    Extra keys are kept (``extra="allow"``): these are facts to show, not inputs to any figure,
    the list grows between versions, and a file from a newer greenbench (or another tool's
    facts) should load and keep them when saved again rather than fail or lose them."""

    model_config = ConfigDict(extra="allow")

    host: str | None = None
    os: str | None = None
    python: str | None = None
    cpu_model: str | None = None
    cpu_count: int | None = None
    torch: str | None = None
    torch_cuda: str | None = None
    torch_threads: int | None = None
    torch_interop_threads: int | None = None
    cpu_affinity: str | None = None  # the CPUs this process could use, as "0-3,6"
    cpu_affinity_count: int | None = None
    transformers: str | None = None
    codecarbon: str | None = None
    nvidia_ml_py: str | None = None
    greenbench: str | None = None
    git_commit: str | None = None  # with "+dirty" when the checkout had changes
    cuda_visible_devices: str | None = None

    @property
    def usable_cpu_count(self) -> int | None:
        """The CPUs this run could use: its affinity where recorded, else the machine's."""
        return self.cpu_affinity_count or self.cpu_count


class CarbonIntensity(_Section):
    """The carbon intensity a profile's co2e figures used (``greenbench.carbon.intensity``)."""

    gco2e_per_kwh: float | None = None
    source: str | None = None
    zone: str | None = None
    year: int | None = None
    basis: str | None = None  # "lca" (life cycle) or "direct"
    pue: float | None = None

    @property
    def where(self) -> str | None:
        """Where the figure holds: "zone Z" for a grid zone's, else its source."""
        return f"zone {self.zone}" if self.zone else self.source


class MeterSummary(_Section):
    """A meter as the profile keeps it (``greenbench.meters.base.MeterInfo``); for an estimate,
    ``details`` holds what it rests on (CodeCarbon's CPU model, TDP, RAM power)."""

    domain: str
    method: str
    available: bool
    reason: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class IdleMeterPower(_Section):
    """One meter's mean power over an idle window (null, with the reason, when it read none)."""

    domain: str
    method: str
    power_w: float | None = None
    reason: str | None = None
    flags: list[str] = Field(default_factory=list)


class WarmIdle(_Section):
    """An idle baseline measured right after a model ran, which net energy subtracts: a GPU
    idles far higher after load (118-128 W against 78 W cold on an H200)."""

    measured_utc: str | None = None
    duration_s: float | None = None
    after: str | None = None  # "model precision"
    meters: list[IdleMeterPower] = Field(default_factory=list)
    reason: str | None = None  # why ``meters`` is empty: the warm baseline failed


class IdleBaseline(_Section):
    """One device's idle baseline (cold, before the sweep) and its meters, keyed by the device."""

    device: str | None = None
    device_name: str | None = None
    uuid: str | None = None  # the GPU's UUID (None on a CPU); resume checks it
    measured_utc: str | None = None
    duration_s: float | None = None
    meters: list[IdleMeterPower] = Field(default_factory=list)  # headline first, then components
    reason: str | None = None  # why ``meters`` is empty: the baseline failed
    update_period_s: float | None = None  # the headline counter's update period
    read_cost_s: float | None = None  # one read of the headline counter, as observed
    power_limit_w: float | None = None  # the GPU's enforced power limit before the sweep
    meter: MeterSummary | None = None  # the headline meter
    components: list[MeterSummary] = Field(default_factory=list)  # other meters beside it
    warm: list[WarmIdle] = Field(default_factory=list)

    def add_warm(self, entry: WarmIdle) -> None:
        # assigned, not appended: a baseline read from a file without "warm" then writes it
        self.warm = [*self.warm, entry]

    def power_w(self, after: str | None = None) -> tuple[float | None, str]:
        """The idle power net energy subtracts, and which baseline it is: the warm one measured
        right after ``after`` ("model precision") ran, where there is one, else the cold one."""
        for entry in reversed(self.warm):
            if entry.after == after and entry.meters and entry.meters[0].power_w is not None:
                return entry.meters[0].power_w, "warm"
        return (self.meters[0].power_w if self.meters else None), "cold"


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: str = SCHEMA
    schema_version: int = SCHEMA_VERSION
    greenbench_version: str
    created_utc: str
    updated_utc: str
    complete: bool = False
    ladder: LadderInfo
    settings: Settings
    provenance: Provenance
    idle: dict[str, IdleBaseline] = {}  # keyed by the device that ran: "cpu", "cuda:0"
    carbon: CarbonIntensity = Field(default_factory=CarbonIntensity)
    records: list[Record] = []

    def finished_keys(self) -> set[tuple]:
        return {r.key() for r in self.records}

    def ok_records(self) -> list[Record]:
        return [r for r in self.records if r.status == "ok"]

    def to_json(self) -> str:
        doc = self.model_dump(mode="json")
        doc["schema"] = doc.pop("schema_")
        return json.dumps(doc, indent=1, allow_nan=False) + "\n"
