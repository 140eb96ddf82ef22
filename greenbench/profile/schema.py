"""The profile schema: one flat record per operating point, and the document that holds them.

Missing values are null and say why; a null is never a zero (nor NaN). Reading and writing are in
``greenbench.profile.io``, the CSV export in ``greenbench.profile.export``.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

SCHEMA = "greenbench/profile"
SCHEMA_VERSION = 1

Status = Literal["ok", "failed", "skipped"]


class ProfileError(Exception):
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


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: str = SCHEMA
    schema_version: int = SCHEMA_VERSION
    greenbench_version: str
    created_utc: str
    updated_utc: str
    complete: bool = False
    ladder: dict[str, Any]
    settings: dict[str, Any]
    provenance: dict[str, Any]
    idle: dict[str, Any] = {}  # device -> {power_w, method, duration_s, measured_utc, ...}
    carbon: dict[str, Any] = {}
    records: list[Record] = []

    def finished_keys(self) -> set[tuple]:
        return {r.key() for r in self.records}

    def ok_records(self) -> list[Record]:
        return [r for r in self.records if r.status == "ok"]

    def to_json(self) -> str:
        doc = self.model_dump(mode="json")
        doc["schema"] = doc.pop("schema_")
        return json.dumps(doc, indent=1, allow_nan=False) + "\n"
