"""The profile schema: one flat record per operating point, and the document that holds them,
with its typed sections (ladder, settings, provenance, idle baselines, carbon intensity).

Missing values are null and say why; a null is never a zero (nor NaN). Reading and writing are in
``greenbench.profile.io``, the CSV export in ``greenbench.profile.export``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from greenbench.errors import GreenbenchError

SCHEMA = "greenbench/profile"
SCHEMA_VERSION = 1

Status = Literal["ok", "failed", "skipped"]


class ProfileError(GreenbenchError):
    """A profile file is missing, unreadable or not a greenbench profile (one line)."""


# --- what a measured figure can be ----------------------------------------------------------------
# Bounds far beyond anything measurable, so that a real profile never meets them while an edited or
# corrupt one (energies of 1e308, negated energies) is refused on reading instead of overflowing
# later (price multiplies energy per item by millions of requests; carbon by an intensity).
MAX_ENERGY_J = 1e9  # per item, request or token: 278 kWh, a day of a 10 kW server for one item
MAX_POWER_W = 1e6  # a device or host: 1 MW (an 8-GPU node draws about 10 kW)
MAX_LATENCY_MS = 1e9  # per batch: 11.6 days
MAX_RATE_PER_S = 1e12  # items or tokens per second
MAX_CO2E_G = 1e9  # per item: MAX_ENERGY_J at 2000 gCO2e/kWh and a PUE of 6 is 3.3e6 g
MAX_INTENSITY_GCO2E_PER_KWH = 2000.0  # what ``greenbench.carbon`` accepts (coal is about 1000)
MAX_MEMORY_MIB = 2.0**30  # 1 PiB
# Items in one batch: 2**31 is an int32's range (the index type of many kernels) and beyond any
# device's memory (2 GiB at one byte an item); below it, fit's and price's numpy int64 products of
# batch sizes with repeats or request counts cannot overflow (10**30 reached them as exit 4).
MAX_BATCH_SIZE = 2**31


def _implausible(text: str) -> PydanticCustomError:
    return PydanticCustomError("implausible", text.replace("{", "(").replace("}", ")"))


def bounded(lo: float | None, hi: float, unit: str = "") -> Callable[[Any], Any]:
    """A validator: None, or a number in [lo, hi] (``lo`` None: any sign, |x| <= hi)."""
    u = f" {unit}" if unit else ""

    def check(v: Any) -> Any:
        if v is None:
            return v
        if isinstance(v, float) and not math.isfinite(v):
            raise _implausible(f"{v}{u} is not a finite number")
        if lo is not None and v < lo:
            raise _implausible(f"{v:g}{u} is negative" if lo == 0 else f"{v:g}{u} is below {lo:g}")
        if abs(v) > hi:
            raise _implausible(f"{v:g}{u} is beyond {hi:g}{u}, more than anything measurable")
        return v

    return check


def bounded_pair(lo: float | None, hi: float, unit: str = "") -> Callable[[Any], Any]:
    """A validator for an interval (low, high): both ends bounded, low <= high."""
    end = bounded(lo, hi, unit)

    def check(v: Any) -> Any:
        if v is None:
            return v
        a, b = end(v[0]), end(v[1])
        if a > b:
            raise _implausible(f"interval ({a:g}, {b:g}) has its low end above its high end")
        return v

    return check


def _fraction(v: float | None) -> float | None:
    if v is not None and not 0.0 <= v <= 1.0:
        raise _implausible(f"{v:g} is outside [0, 1]")
    return v


def _batch_size(v: int | None) -> int | None:
    if v is not None and v < 1:
        raise _implausible(f"{v}: a batch holds at least 1 item")
    if v is not None and v > MAX_BATCH_SIZE:
        shown = str(v) if len(str(v)) <= 16 else f"a {len(str(v))}-digit number of"  # 10**400 has no float
        raise _implausible(f"{shown} items in a batch is beyond {MAX_BATCH_SIZE:,}, more than any device holds")
    return v


# Characters a name must not hold: C0 and C1 controls (escape sequences recolour or rewrite a
# terminal; JUnit XML cannot carry them) and the bidirectional overrides that reorder what is shown.
_CONTROL = frozenset([*map(chr, range(32)), *map(chr, range(0x7F, 0xA0)), *map(chr, range(0x202A, 0x202F)),
                      *map(chr, range(0x2066, 0x206A))])


def _printable_name(v: str) -> str:
    bad = next((c for c in v if c in _CONTROL), None)
    if bad is not None:
        raise _implausible(f"{v[:40]!r} holds the control character U+{ord(bad):04X}; a name is printed "
                           "to terminals and reports")
    return v


def _concurrency(v: int | None) -> int | None:
    if v is not None and not 1 <= v <= 2**20:
        raise _implausible(f"{v}: concurrency is 1 or more requests in flight")
    return v


# What each quality metric's direction is: "higher" is better (accuracy, exact match) or "lower"
# (perplexity). fit, price and compare read a record's quality through ``Record.quality_value``.
QUALITY_DIRECTIONS: dict[str, Literal["higher", "lower"]] = {
    "accuracy": "higher", "exact_match": "higher", "perplexity": "lower"}


Energy = Annotated[float | None, AfterValidator(bounded(0, MAX_ENERGY_J, "J"))]
SignedEnergy = Annotated[float | None, AfterValidator(bounded(None, MAX_ENERGY_J, "J"))]  # net: may dip below 0
EnergyInterval = Annotated[tuple[float, float] | None, AfterValidator(bounded_pair(None, MAX_ENERGY_J, "J"))]
Power = Annotated[float | None, AfterValidator(bounded(0, MAX_POWER_W, "W"))]
LatencyMs = Annotated[float | None, AfterValidator(bounded(0, MAX_LATENCY_MS, "ms"))]
Rate = Annotated[float | None, AfterValidator(bounded(0, MAX_RATE_PER_S, "/s"))]
RateInterval = Annotated[tuple[float, float] | None, AfterValidator(bounded_pair(None, MAX_RATE_PER_S, "/s"))]
Fraction = Annotated[float | None, AfterValidator(_fraction)]
FractionInterval = Annotated[tuple[float, float] | None, AfterValidator(bounded_pair(0, 1.0))]
Count = Annotated[int | None, AfterValidator(bounded(0, 2.0**62))]
Seconds = Annotated[float | None, AfterValidator(bounded(0, 1e9, "s"))]
MemoryMiB = Annotated[float | None, AfterValidator(bounded(0, MAX_MEMORY_MIB, "MiB"))]
Intensity = Annotated[float | None, AfterValidator(bounded(0, MAX_INTENSITY_GCO2E_PER_KWH, "gCO2e/kWh"))]


class Training(BaseModel):
    """How the measured weights were trained, where greenbench trained them (the embedded
    ladders, at first use): accuracy depends on the seed and, through the order of float sums,
    on torch's thread count, so both are kept with the record."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["trained", "cache"]  # trained in this run, or loaded from the cache
    seed: int
    torch_threads: int | None = None  # None: a cache written before greenbench recorded it
    torch: str | None = None  # the torch version that trained it (None: as above)


class Record(BaseModel):
    """One operating point. Missing values are null and say why; a null is never a zero (nor NaN)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    ladder: str
    model: str
    params: Count = None
    # The point's resource setting: a batch size (in-process workloads), or the load on a served
    # model: closed-loop concurrency and/or an open-loop Poisson request rate (batch_size null).
    batch_size: Annotated[int | None, AfterValidator(_batch_size)] = None
    concurrency: Annotated[int | None, AfterValidator(_concurrency)] = None
    request_rate_per_s: Annotated[float | None, AfterValidator(bounded(1e-9, 1e9, "/s"))] = None
    precision: str
    device: str
    device_name: str | None = None
    device_uuid: str | None = None  # the GPU whose counter measured the point (None on a CPU)
    # Fleet profiles (``profile --ray``, ``merge``): the host that ran the point, its accelerator
    # type as the cluster names it (Ray's "H100", "L4"; None where nobody named it), and on a Ray
    # run the placement the point was planned on ("gpu", "gpu:L4", "2xgpu", "cpu"), which
    # ``--resume`` matches (the host and GPU it lands on may change).
    host: str | None = None
    accelerator_type: str | None = None
    placement: str | None = None
    status: Status = "ok"
    error: str | None = None

    accuracy: Fraction = None
    accuracy_ci95: FractionInterval = None
    accuracy_n: Count = None
    quality_metric: str | None = None  # what the workload scored: accuracy, perplexity
    perplexity: Annotated[float | None, AfterValidator(bounded(1.0, 1e300))] = None  # causal LMs scored on plain text
    quality: dict[str, float] = {}  # other quality figures the workload gave (tokens_scored, ...)

    latency_mean_ms: LatencyMs = None  # per batch: what every request in the batch waits
    latency_p50_ms: LatencyMs = None
    latency_p90_ms: LatencyMs = None
    latency_p95_ms: LatencyMs = None
    latency_p99_ms: LatencyMs = None
    latency_per_item_ms: LatencyMs = None  # mean batch latency / batch size
    # per-item percentiles: the batch percentiles over the batch size (items of a batch finish
    # together, so this is the amortised compute time per item, not what a request waits)
    latency_per_item_p50_ms: LatencyMs = None
    latency_per_item_p90_ms: LatencyMs = None
    latency_per_item_p95_ms: LatencyMs = None
    latency_per_item_p99_ms: LatencyMs = None
    items_per_s: Rate = None
    items_per_s_ci95: RateInterval = None

    energy_j_per_item: Energy = None  # gross: what the meter saw
    energy_j_per_item_std: Energy = None
    energy_j_per_item_cv: Annotated[float | None, AfterValidator(bounded(0, 1e6))] = None
    energy_j_per_item_ci95: EnergyInterval = None
    energy_net_j_per_item: SignedEnergy = None  # gross minus idle power x time
    energy_method: str = "unavailable"
    energy_domain: str | None = None
    energy_reason: str | None = None  # why energy is null, or what an estimate rests on
    power_w: Power = None  # mean power over the windows
    idle_power_w: Power = None  # the baseline net energy subtracts (see idle_basis)
    idle_basis: str | None = None  # "warm" (measured right after this point's model ran) or "cold"
    counter_update_period_s: Seconds = None  # the energy counter's update period (median)
    components: list[dict[str, Any]] = []  # other meters (host CPU beside a GPU), never summed in
    # A tensor-parallel server's GPUs (device "cuda:0+cuda:1"): energy_j_per_item is their sum;
    # each GPU's own share is here ({device, uuid, domain, method, energy_j_per_item, power_w, reason}).
    gpus: list[dict[str, Any]] = []

    # Causal LMs: a request is prompt_tokens in, output_tokens out (greedy, fixed). Prefill is
    # measured in windows of its own; decode is the full request minus prefill.
    prompt_tokens: Count = None
    output_tokens: Count = None
    ttft_mean_ms: LatencyMs = None  # time to first token: the prefill latency of the batch
    ttft_p50_ms: LatencyMs = None
    ttft_p95_ms: LatencyMs = None
    tpot_ms: LatencyMs = None  # time per output token after the first: (full - prefill) / (T - 1)
    output_tokens_per_s: Rate = None
    energy_prefill_j_per_item: Energy = None  # per request
    energy_decode_j_per_token: Energy = None  # (full - prefill) / (T - 1), per request
    energy_j_per_output_token: Energy = None  # full request / T
    energy_lm_reason: str | None = None  # why a prefill/decode figure is null

    # Served models (workload served-lm): latency_* is each request's end-to-end latency, items are
    # requests; these are what the stream showed per request, over the measured windows.
    ttft_p90_ms: LatencyMs = None
    ttft_p99_ms: LatencyMs = None
    tpot_p50_ms: LatencyMs = None
    tpot_p90_ms: LatencyMs = None
    tpot_p95_ms: LatencyMs = None
    tpot_p99_ms: LatencyMs = None
    itl_p50_ms: LatencyMs = None  # inter-token latency: gaps between streamed tokens
    itl_p95_ms: LatencyMs = None
    itl_p99_ms: LatencyMs = None
    requests_per_s: Rate = None
    goodput_requests_per_s: Rate = None  # requests/s meeting every SLO below
    slo_ttft_ms: LatencyMs = None
    slo_tpot_ms: LatencyMs = None
    load_cpu_share: Annotated[float | None, AfterValidator(bounded(0, 1e3))] = None  # load generator's CPU / wall
    engine: str | None = None  # as the server names itself (vLLM: "vllm")
    engine_version: str | None = None
    server_log: str | None = None  # the launched server's log, beside the profile

    co2e_g_per_item: Annotated[float | None, AfterValidator(bounded(0, MAX_CO2E_G, "g"))] = None
    intensity_gco2e_per_kwh: Intensity = None
    intensity_source: str | None = None

    repeats: Annotated[int, AfterValidator(bounded(0, 2.0**31))] = 0
    window_s: Seconds = None  # mean window length
    counter_updates_min: Count = None
    samples: dict[str, list[float]] = {}  # per-repeat values, for significance tests
    flags: list[str] = []
    model_spec: dict[str, Any] = {}
    workload: dict[str, Any] = {}
    training: Training | None = None  # weights greenbench trained (embedded ladders); None: not trained here
    measured_utc: str | None = None
    # A merged (fleet) profile's record: the index of its input in provenance.sources, which holds that
    # file's host, provenance and idle baselines (greenbench.profile.merge); None: measured in this file.
    source: Annotated[int | None, AfterValidator(bounded(0, 2.0**31))] = None

    # Peak memory over the point's measured windows (reset before each); None says why in
    # memory_reason, never 0. The GPU's is torch's allocator (max_memory_allocated; None on a
    # CPU point); the host's is the process's peak resident set (Linux VmHWM, reset per window).
    gpu_mem_peak_mib: MemoryMiB = None
    host_rss_peak_mib: MemoryMiB = None
    memory_reason: str | None = None

    @field_validator("samples")
    @classmethod
    def _samples_plausible(cls, v: dict[str, list[float]]) -> dict[str, list[float]]:
        energy = bounded(0, MAX_ENERGY_J, "J")
        for name, values in v.items():
            if name.startswith("energy"):  # gross energies of single windows: never negative
                for x in values:
                    energy(x)
        return v

    @field_validator("components")
    @classmethod
    def _components_plausible(cls, v: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for c in v:
            e = c.get("energy_j_per_item")
            if e is not None:
                if isinstance(e, bool) or not isinstance(e, (int, float)):
                    raise _implausible(f"component energy_j_per_item {e!r} is not a number")
                bounded(0, MAX_ENERGY_J, "J")(float(e))
        return v

    @field_validator("ladder", "model", "precision", "device")
    @classmethod
    def _names_printable(cls, v: str) -> str:
        return _printable_name(v)

    @model_validator(mode="after")
    def _one_setting(self) -> Record:
        if self.batch_size is None and self.concurrency is None and self.request_rate_per_s is None:
            raise _implausible("a point needs a batch_size, or a concurrency or request_rate_per_s (served)")
        if self.batch_size is not None and (self.concurrency is not None or self.request_rate_per_s is not None):
            raise _implausible("a point has a batch_size or a load (concurrency, request_rate_per_s), not both")
        return self

    @property
    def setting(self) -> str:
        """The point's resource setting in a label: ``b8``, ``c16``, ``r2/s`` or ``r2/s c16``."""
        return setting_label(self.batch_size, self.concurrency, self.request_rate_per_s)

    @property
    def label(self) -> str:
        """How every output names the point: ``cnn-64 b256 fp32 cpu``, ``qwen c16 bf16 cuda:0``."""
        return f"{self.model} {self.setting} {self.precision} {self.device}"

    @property
    def quality_direction(self) -> Literal["higher", "lower"] | None:
        return QUALITY_DIRECTIONS.get(self.quality_metric or ("accuracy" if self.accuracy is not None else ""))

    @property
    def quality_value(self) -> float | None:
        """The figure of ``quality_metric`` (accuracy, exact_match, perplexity), None if unscored."""
        metric = self.quality_metric or ("accuracy" if self.accuracy is not None else None)
        if metric == "perplexity":
            return self.perplexity
        if metric == "accuracy":
            return self.accuracy
        return None if metric is None else self.quality.get(metric)

    def key(self) -> tuple:
        return point_key(self.ladder, self.model, self.batch_size, self.precision, self.device,
                         self.concurrency, self.request_rate_per_s)

    def planned_key(self) -> tuple:
        """The key of the point as planned: by its placement on a Ray run (where it ran is the
        cluster's choice), else by its device, as ``key``."""
        return point_key(self.ladder, self.model, self.batch_size, self.precision, self.placement or self.device,
                         self.concurrency, self.request_rate_per_s)

    @property
    def hardware(self) -> str | None:
        """What the point ran on, for a fleet's hardware axis: the accelerator type the cluster
        named, else the device's own name ("NVIDIA L4", the CPU model)."""
        return self.accelerator_type or self.device_name


def setting_label(batch_size: int | None, concurrency: int | None = None, rate_per_s: float | None = None) -> str:
    if batch_size is not None:
        return f"b{batch_size}"
    rate = [] if rate_per_s is None else [f"r{rate_per_s:g}/s"]
    return " ".join(rate + ([] if concurrency is None else [f"c{concurrency}"]))


def point_key(ladder: str, model: str, batch_size: int | None, precision: str, device: str,
              concurrency: int | None = None, request_rate_per_s: float | None = None) -> tuple:
    """What identifies a point: two records with one key are the same point measured twice."""
    return (ladder, model, None if batch_size is None else int(batch_size), precision, device,
            concurrency, request_rate_per_s)


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
    # ``profile --ray``: "ray" (written only then), and the accelerator types GPU groups were
    # pinned to (--accelerator; None: any GPU). The cluster's address is not a setting: a resumed
    # run may use another.
    executor: str | None = None
    accelerators: list[str] | None = None

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

    gco2e_per_kwh: Intensity = None
    source: str | None = None
    zone: str | None = None
    year: int | None = None
    basis: str | None = None  # "lca" (life cycle) or "direct"
    pue: Annotated[float | None, AfterValidator(bounded(1.0, 1e300))] = None  # carbon's: at least 1

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
    power_w: Power = None
    reason: str | None = None
    flags: list[str] = Field(default_factory=list)


class WarmIdle(_Section):
    """An idle baseline measured right after a model ran, which net energy subtracts: a GPU
    idles far higher after load (118-128 W against 78 W cold on an H200)."""

    measured_utc: str | None = None
    duration_s: Seconds = None
    after: str | None = None  # "model precision"
    meters: list[IdleMeterPower] = Field(default_factory=list)
    reason: str | None = None  # why ``meters`` is empty: the warm baseline failed


class IdleBaseline(_Section):
    """One device's idle baseline (cold, before the sweep) and its meters, keyed by the device."""

    device: str | None = None
    device_name: str | None = None
    uuid: str | None = None  # the GPU's UUID (None on a CPU); resume checks it
    measured_utc: str | None = None
    duration_s: Seconds = None
    meters: list[IdleMeterPower] = Field(default_factory=list)  # headline first, then components
    reason: str | None = None  # why ``meters`` is empty: the baseline failed
    update_period_s: Seconds = None  # the headline counter's update period
    read_cost_s: Seconds = None  # one read of the headline counter, as observed
    power_limit_w: Power = None  # the GPU's enforced power limit before the sweep
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
        """The points as planned (``Record.planned_key``: by placement on a Ray run, else by device)."""
        return {r.planned_key() for r in self.records}

    def ok_records(self) -> list[Record]:
        return [r for r in self.records if r.status == "ok"]

    def to_json(self) -> str:
        doc = self.model_dump(mode="json")
        doc["schema"] = doc.pop("schema_")
        return json.dumps(doc, indent=1, allow_nan=False) + "\n"
