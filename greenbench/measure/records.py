"""Operating-point records from measured windows: statistics, validity flags, LM prefill/decode.

The runner measures; this module turns one point's trials (and its workload's score) into the
flat profile record, with every figure's uncertainty and the flags that say why to distrust it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from greenbench import profile as prof
from greenbench.carbon.intensity import Intensity
from greenbench.measure.devices import Device
from greenbench.measure.protocol import Protocol, Trial
from greenbench.meters.base import EnergyReading
from greenbench.stats import Summary, percentiles_ms, summarize, wilson_interval
from greenbench.workloads.base import Score


@dataclass(frozen=True)
class PointContext:
    """What a point's record needs beside its windows and score: which point, what ran it, and
    under which settings. The runner builds one per point; records never read its config."""

    ladder: str
    model: str
    model_spec: dict[str, Any]  # the zoo's entry for the model
    params: int | None
    batch_size: int | None  # None: a served point, whose load is below
    precision: str
    device: Device  # what ran it; the record's device is its spec ("cpu", "cuda:0")
    protocol: Protocol
    intensity: Intensity
    idle: prof.IdleBaseline  # the device's baseline, with the warm ones measured so far
    provenance: prof.Provenance
    workload: dict[str, Any]  # the workload's own provenance (model, data, generation)
    power_limit_now_w: float | None = None  # read again after the group: a change is flagged
    training: prof.Training | None = None  # how greenbench trained the weights (embedded ladders)
    concurrency: int | None = None  # a served point's load
    request_rate_per_s: float | None = None


@dataclass(frozen=True)
class _Energy:
    """A point's headline energy over its valid windows (the figures None when none was)."""

    method: str
    reason: str | None
    j_per_item: float | None = None
    std_j_per_item: float | None = None
    cv: float | None = None
    ci95_j_per_item: tuple[float, float] | None = None
    net_j_per_item: float | None = None
    power_w: float | None = None
    samples_j_per_item: list[float] | None = None
    flags: tuple[str, ...] = ()


def build_record(point: PointContext, score: Score, trials: list[Trial]) -> prof.Record:
    """The record of one measured point: statistics over its windows, energy, carbon, flags."""
    batch = point.batch_size
    assert batch is not None  # served points: build_served_record
    items = np.array([t.steps * batch for t in trials], dtype=float)
    windows_s = np.array([t.window_s for t in trials])
    throughput = summarize(items / windows_s)
    durations_s = np.concatenate([t.step_durations_s for t in trials])
    pct = percentiles_ms(durations_s)
    lat_mean_ms = float(durations_s.mean() * 1e3)
    accuracy = acc_ci = None
    if score.correct is not None and score.total > 0:
        accuracy = score.correct / score.total
        acc_ci = wilson_interval(score.correct, score.total)
    head = [t.readings[0] for t in trials]
    idle_w, idle_basis = point.idle.power_w(f"{point.model} {point.precision}")
    energy = _energy(point, head, items, windows_s, idle_w)
    periods_s = [r.update_period_s for r in head if r.update_period_s is not None]
    updates_all = [r.counter_updates for r in head if r.counter_updates is not None]
    gpu_mib, host_mib, memory_reason = memory_peaks(trials, point.device.is_cuda)
    return prof.Record(
        ladder=point.ladder, model=point.model, params=point.params, batch_size=batch,
        precision=point.precision, device=point.device.spec, device_name=point.device.name,
        device_uuid=point.device.uuid,
        accuracy=accuracy, accuracy_ci95=acc_ci, accuracy_n=score.total if accuracy is not None else None,
        quality_metric=score.metric, perplexity=score.extra.get("perplexity"),
        quality={k: float(v) for k, v in score.extra.items() if k != "perplexity"},
        latency_mean_ms=lat_mean_ms, latency_p50_ms=pct[50], latency_p90_ms=pct[90],
        latency_p95_ms=pct[95], latency_p99_ms=pct[99], latency_per_item_ms=lat_mean_ms / batch,
        latency_per_item_p50_ms=pct[50] / batch, latency_per_item_p90_ms=pct[90] / batch,
        latency_per_item_p95_ms=pct[95] / batch, latency_per_item_p99_ms=pct[99] / batch,
        items_per_s=throughput.mean, items_per_s_ci95=throughput.ci95,
        energy_j_per_item=energy.j_per_item, energy_j_per_item_std=energy.std_j_per_item,
        energy_j_per_item_cv=energy.cv, energy_j_per_item_ci95=energy.ci95_j_per_item,
        energy_net_j_per_item=energy.net_j_per_item,
        energy_method=energy.method if energy.j_per_item is not None else "unavailable",
        energy_domain=head[0].domain, energy_reason=energy.reason,
        power_w=energy.power_w, idle_power_w=idle_w, idle_basis=idle_basis if idle_w is not None else None,
        counter_update_period_s=float(np.median(periods_s)) if periods_s else None,
        components=_components(trials, items),
        co2e_g_per_item=point.intensity.co2e_g(energy.j_per_item),
        intensity_gco2e_per_kwh=point.intensity.gco2e_per_kwh,
        intensity_source=intensity_label(point.intensity),
        repeats=len(trials), window_s=float(windows_s.mean()),
        counter_updates_min=min(updates_all) if updates_all else None,
        samples=_samples(head, trials, items, windows_s, energy),
        flags=_flags(point, head, trials, energy, throughput),
        model_spec=point.model_spec, workload=point.workload, training=point.training,
        gpu_mem_peak_mib=gpu_mib, host_rss_peak_mib=host_mib, memory_reason=memory_reason,
        measured_utc=prof.utc_now(),
    )


def memory_peaks(trials: list[Trial], is_cuda: bool) -> tuple[float | None, float | None, str | None]:
    """(GPU peak MiB, host peak RSS MiB, why one is None): the largest over the point's windows,
    or None where a window lacks it (a peak over some windows only is not the point's). A CPU
    point has no GPU figure and needs no reason for it."""
    peaks = [t.memory for t in trials]
    reasons: list[str] = []

    def largest(values: list[float | None], why: list[str | None], what: str) -> float | None:
        if peaks and all(v is not None for v in values):
            return max(v for v in values if v is not None)
        reasons.append(next((w for w in why if w), f"no {what} was read"))
        return None

    present = [m for m in peaks if m is not None]
    if len(present) < len(peaks) or not peaks:
        return None, None, "peak memory was not read in every window"
    gpu = None
    if is_cuda:
        gpu = largest([m.gpu_mib for m in present], [m.gpu_reason for m in present], "GPU peak memory")
    host = largest([m.host_rss_mib for m in present], [m.host_reason for m in present], "host peak RSS")
    return gpu, host, "; ".join(reasons) or None


def _energy(point: PointContext, head: list[EnergyReading], items: np.ndarray, windows_s: np.ndarray,
            idle_w: float | None) -> _Energy:
    """Energy per item over the valid windows, net of idle power, with the flags it raises."""
    proto = point.protocol
    # (reading, joules, items) of each valid window (a valid reading always has its joules)
    valid = [(r, r.energy_j, n) for r, n in zip(head, items, strict=True) if r.valid and r.energy_j is not None]
    if not valid:  # each null reading says why; report the first reason
        reason = head[0].reason
        if head[0].method != "unavailable":
            reason = next((r.reason for r in head if r.reason), "no valid window")
        return _Energy(head[0].method, reason)
    per_item = [energy_j / n for _, energy_j, n in valid]
    e = summarize(per_item)
    power_w = float(np.mean([energy_j / r.duration_s for r, energy_j, _ in valid]))
    flags, net_j_per_item = [], None
    if idle_w is not None:
        net = [(energy_j - idle_w * r.duration_s) / n for r, energy_j, n in valid]
        net_j_per_item = float(np.mean(net))
        if power_w < 0.95 * idle_w:  # 5% slack: the idle figure has its own noise
            flags.append("power_below_idle")
    limit_w = point.power_limit_now_w or point.idle.power_limit_w
    if limit_w and power_w > limit_w * (1 + power_limit_slack(float(windows_s.mean()))):
        flags.append("power_above_limit")
    if e.cv is not None and e.cv > proto.max_cv:
        flags.append("energy_cv_high")
    if len(valid) < len(head):
        flags.append("invalid_windows_dropped")
    updates = [r.counter_updates for r, _, _ in valid if r.counter_updates is not None]
    # one update of slack: a window sized to the period measured so far may round one short
    if updates and min(updates) < proto.min_counter_updates - 1:
        flags.append("too_few_counter_updates")
    return _Energy(head[0].method, head[0].reason, e.mean, e.std, e.cv, e.ci95, net_j_per_item, power_w,
                   [float(x) for x in per_item], tuple(flags))


def _flags(point: PointContext, head: list[EnergyReading], trials: list[Trial], energy: _Energy,
           throughput: Summary, own_gpu_pids: frozenset[int] | None = None) -> list[str]:
    """The point's validity flags, in a fixed order: quick, the readings', power limit, energy,
    throughput, then those from the window edges (``own_gpu_pids``: see ``validity_flags``)."""
    flags: list[str] = ["quick"] if point.protocol.quick else []
    for r in head:
        flags.extend(f for f in r.flags if f not in flags)
    limit_before_w, limit_now_w = point.idle.power_limit_w, point.power_limit_now_w
    if limit_now_w is not None and limit_before_w is not None and limit_now_w != limit_before_w:
        flags.append("power_limit_changed")
    flags.extend(energy.flags)
    if throughput.cv is not None and throughput.cv > point.protocol.max_cv:
        flags.append("throughput_cv_high")
    flags.extend(f for f in validity_flags(head, trials, point.device.is_cuda, point.provenance, own_gpu_pids)
                 if f not in flags)
    return flags


def _samples(head: list[EnergyReading], trials: list[Trial], items: np.ndarray, windows_s: np.ndarray,
             energy: _Energy) -> dict[str, list[float]]:
    """Per-repeat values, for significance tests and the checks behind the flags."""
    samples: dict[str, list[float]] = {
        "items_per_s": [float(x) for x in items / windows_s],
        "latency_p50_ms": [float(np.percentile(t.step_durations_s, 50) * 1e3) for t in trials],
        "latency_p95_ms": [float(np.percentile(t.step_durations_s, 95) * 1e3) for t in trials],
        "window_s": [float(x) for x in windows_s],
        "steps": [float(t.steps) for t in trials],
    }
    if energy.samples_j_per_item is not None:
        samples["energy_j_per_item"] = energy.samples_j_per_item
    samples.update(_edge_samples(head, trials))
    return samples


def _components(trials: list[Trial], items: np.ndarray) -> list[dict[str, Any]]:
    """The other meters' energy per item (the host CPU beside a GPU), never summed in."""
    components = []
    for j in range(1, len(trials[0].readings)):
        rs = [t.readings[j] for t in trials]
        ok = [r.energy_j / n for r, n in zip(rs, items, strict=True) if r.valid and r.energy_j is not None]
        components.append({
            "domain": rs[0].domain, "method": rs[0].method,
            "energy_j_per_item": float(np.mean(ok)) if ok else None,
            "reason": rs[0].reason if not ok else None,
        })
    return components


def add_lm_fields(r: prof.Record, shape: dict[str, int], prefill: list[Trial], full: list[Trial]) -> None:
    """Prefill and decode from paired windows: decode = full request - prefill, per output token."""
    p_tokens, t_tokens = int(shape["prompt_tokens"]), int(shape["output_tokens"])
    r.prompt_tokens, r.output_tokens = p_tokens, t_tokens
    r.output_tokens_per_s = r.items_per_s * t_tokens if r.items_per_s is not None else None
    if r.energy_j_per_item is not None:
        r.energy_j_per_output_token = r.energy_j_per_item / t_tokens
    if not prefill:
        r.energy_lm_reason = "no prefill windows were measured"
        return
    durations = np.concatenate([t.step_durations_s for t in prefill])
    pct = percentiles_ms(durations)
    r.ttft_mean_ms, r.ttft_p50_ms, r.ttft_p95_ms = float(durations.mean() * 1e3), pct[50], pct[95]
    r.samples["ttft_p50_ms"] = [float(np.percentile(t.step_durations_s, 50) * 1e3) for t in prefill]
    if r.latency_mean_ms is not None and r.latency_mean_ms > r.ttft_mean_ms:
        r.tpot_ms = (r.latency_mean_ms - r.ttft_mean_ms) / (t_tokens - 1)
    heads = [t.readings[0] for t in prefill]
    assert r.batch_size is not None  # an in-process LM point runs batches
    per_item = [h.energy_j / (t.steps * r.batch_size) for h, t in zip(heads, prefill, strict=True)
                if h.valid and h.energy_j is not None]
    if not per_item:
        r.energy_lm_reason = next((t.readings[0].reason for t in prefill if t.readings[0].reason),
                                  "no valid prefill window")
        return
    r.energy_prefill_j_per_item = float(np.mean(per_item))
    r.samples["energy_prefill_j_per_item"] = [float(x) for x in per_item]
    if r.energy_j_per_item is None:
        r.energy_lm_reason = "the full requests have no energy figure"
    elif r.energy_j_per_item > r.energy_prefill_j_per_item:
        r.energy_decode_j_per_token = (r.energy_j_per_item - r.energy_prefill_j_per_item) / (t_tokens - 1)
    else:  # noise larger than the decode energy: say so rather than store a negative number
        r.energy_lm_reason = "prefill used as much energy as the full request; raise --min-window"


def intensity_label(i: Intensity) -> str:
    return f"{i.source}, zone {i.zone}" if i.zone else i.source


# Validity checks (docs/measurement.md item 8): thresholds, and where each reading comes from.
LIMIT_SLACK = 0.02  # the limit is enforced on a moving average: a 700 W H200 averaged 702-706 W
EDGE_MISPLACED_S = 0.005  # the most a window edge dated on a tick is off by (several reads)
SM_CLOCK_DRIFT = 0.10  # spread of the SM clock read right after the work, over a point's windows
TEMPERATURE_DRIFT_C = 10.0  # spread of the GPU temperature over a point's window edges
HOST_BUSY_MIN_CORES = 0.5  # other processes' load below this is background noise


def power_limit_slack(window_s: float) -> float:
    """How far above the enforced power limit a point's mean power may be before it is flagged:
    the limit's own enforcement margin (it is a moving average, not a ceiling on each window),
    plus what two edges misplaced by a few milliseconds can add: 2.5% at 2 s windows, 5.3% at
    --quick's 0.3 s. Edges are dated on ticks, so the counter's 100 ms quantum does not enter."""
    return LIMIT_SLACK + (2 * EDGE_MISPLACED_S / window_s if window_s > 0 else 0.0)


def _edges(head: list, side: str, key: str) -> list[float]:
    return [float(r.checks[side][key]) for r in head
            if key in (r.checks.get(side) or {}) and r.checks[side][key] is not None]


def validity_flags(head: list, trials: list[Trial], is_cuda: bool, provenance: prof.Provenance,
                   own_gpu_pids: frozenset[int] | None = None) -> list[str]:
    """Flags from the readings at the window edges: clock and temperature drift and other
    processes on the GPU (NVML), other processes' load on the host CPU (psutil).

    ``own_gpu_pids``: the processes on the GPU by design (a served point: greenbench and its launched
    server's group). Others are judged against them only where some listed PID is one of them: an
    attached server (empty: its processes are unknown here) or PIDs of another namespace (a
    container's NVML lists the host's) tell nobody apart, so no flag. None: this process, as the
    meter judged at each edge (``other_gpu_pids``)."""
    flags = []
    clocks = _edges(head, "end", "sm_clock_mhz")
    if len(clocks) >= 2 and (max(clocks) - min(clocks)) > SM_CLOCK_DRIFT * max(clocks):
        flags.append("sm_clock_drift")
    temps = _edges(head, "start", "temperature_c") + _edges(head, "end", "temperature_c")
    if len(temps) >= 2 and max(temps) - min(temps) > TEMPERATURE_DRIFT_C:
        flags.append("temperature_drift")
    if own_gpu_pids is None:
        if any((r.checks.get(side) or {}).get("other_gpu_pids") for r in head for side in ("start", "end")):
            flags.append("other_gpu_processes")
    else:
        listed = {p for r in head for side in ("start", "end") for p in (r.checks.get(side) or {}).get("gpu_pids", [])}
        if listed & own_gpu_pids and listed - own_gpu_pids:
            flags.append("other_gpu_processes")
    cores = provenance.usable_cpu_count
    threads = 1 if is_cuda else int(provenance.torch_threads or 1)
    others = [t.host_other_cores for t in trials if t.host_other_cores is not None]
    # flagged when other processes leave fewer free cores than this run's threads (plus a spare
    # half core for the interpreter and the meters): then they compete with the timed loop
    if cores and others and max(others) >= HOST_BUSY_MIN_CORES and cores - max(others) < threads + 0.5:
        flags.append("host_busy")
    return flags


def _edge_samples(head: list, trials: list[Trial]) -> dict[str, list[float]]:
    """Per-window figures behind the validity checks and the tail correction, for the record."""
    out: dict[str, list[float]] = {}
    per_window = {
        "update_period_s": [r.update_period_s for r in head],
        "tail_s": [r.tail_s for r in head],
        "sm_clock_end_mhz": [(r.checks.get("end") or {}).get("sm_clock_mhz") for r in head],
        "temperature_end_c": [(r.checks.get("end") or {}).get("temperature_c") for r in head],
        "host_other_cores": [t.host_other_cores for t in trials],
    }
    for name, values in per_window.items():
        if values and all(v is not None for v in values):
            out[name] = [float(v) for v in values]
    return out


# Validity flags and the option that fixes each (hyperfine style).
@dataclass(frozen=True)
class ServedWindow:
    """What the load streamed inside one measured window of a served point."""

    tokens: int  # output tokens whose chunks arrived inside the window's edges
    completed: list[Any]  # the requests (serving.load.RequestTrace) that finished inside it
    failed: int = 0  # requests sent inside it that failed


def _ms(values: list[float]) -> dict[int, float | None]:
    if not values:
        return {p: None for p in (50, 90, 95, 99)}
    pct = np.percentile(np.asarray(values) * 1e3, [50, 90, 95, 99])
    return {p: float(x) for p, x in zip((50, 90, 95, 99), pct, strict=True)}


def build_served_record(point: PointContext, trials: list[Trial], windows: list[ServedWindow], steady: list[Any],
                        quality: Any, *,
                        load_cpu_share: float | None, slo_ttft_ms: float | None, slo_tpot_ms: float | None,
                        requested_output_tokens: int, own_gpu_pids: frozenset[int] = frozenset()) -> prof.Record:
    """The record of a served point: the windows' energy over the tokens (and request-equivalents)
    streamed inside them; latencies of the requests that completed over the windows (``steady``)."""
    windows_s = np.array([t.window_s for t in trials])
    tokens = np.array([w.tokens for w in windows], dtype=float)
    out_tokens = [t.output_tokens for t in steady if t.output_tokens]
    per_request = float(np.mean(out_tokens)) if out_tokens else float(requested_output_tokens)
    items = np.maximum(tokens, 1e-12) / per_request  # request-equivalents streamed in each window
    throughput = summarize(items / windows_s)
    head = [t.readings[0] for t in trials]
    if any(n == 0 for n in tokens):  # a window with no tokens (a stalled server) measures nothing
        head = [r if n > 0 else replace(r, energy_j=None, reason="no tokens were streamed in the window")
                for r, n in zip(head, tokens, strict=True)]
    idle_w, idle_basis = point.idle.power_w(f"{point.model} {point.precision}")
    energy = _energy(point, head, items, windows_s, idle_w)
    per_token = [r.energy_j / n for r, n in zip(head, tokens, strict=True)
                 if r.valid and r.energy_j is not None and n > 0]
    e2e = _ms([t.e2e_s for t in steady if t.e2e_s is not None])
    ttft = _ms([t.ttft_s for t in steady if t.ttft_s is not None])
    tpots = [t.tpot_s for t in steady if t.tpot_s is not None]
    tpot = _ms(tpots)
    itl = _ms([g for t in steady for g in t.itl_s()])
    span_s = float(windows_s.sum())
    goodput = None
    if slo_ttft_ms is not None or slo_tpot_ms is not None:
        good = [t for t in steady if (slo_ttft_ms is None or (t.ttft_s is not None and t.ttft_s * 1e3 <= slo_ttft_ms))
                and (slo_tpot_ms is None or (t.tpot_s is not None and t.tpot_s * 1e3 <= slo_tpot_ms))]
        goodput = len(good) / span_s if span_s > 0 else None
    prompts = [t.prompt_tokens for t in steady if t.prompt_tokens is not None]
    periods_s = [r.update_period_s for r in head if r.update_period_s is not None]
    updates_all = [r.counter_updates for r in head if r.counter_updates is not None]
    # host_busy counts other processes' CPU: on a served point the server is one, by design
    flags = [f for f in _flags(point, head, trials, energy, throughput, own_gpu_pids) if f != "host_busy"]
    if load_cpu_share is not None and load_cpu_share > LOAD_SATURATED_SHARE:
        flags.append("load_generator_saturated")
    if any(w.failed for w in windows):
        flags.append("requests_failed")
    if _burst_share(steady) > 0.5:
        flags.append("stream_bursty")
    samples: dict[str, list[float]] = {
        "items_per_s": [float(x) for x in items / windows_s],
        "output_tokens_per_s": [float(x) for x in tokens / windows_s],
        "latency_p50_ms": [v for w in windows if (v := _ms([t.e2e_s for t in w.completed])[50]) is not None],
        "ttft_p50_ms": [v for w in windows if (v := _ms([t.ttft_s for t in w.completed if t.ttft_s])[50]) is not None],
        "window_s": [float(x) for x in windows_s],
        "tokens": [float(x) for x in tokens],
    }
    if energy.samples_j_per_item is not None:
        samples["energy_j_per_item"] = energy.samples_j_per_item
    if per_token:
        samples["energy_j_per_output_token"] = [float(x) for x in per_token]
    q = quality  # serving.scoring.EndpointScore, scored once per model through the server (or None)
    accuracy = None if q is None or q.metric != "accuracy" else q.value
    return prof.Record(
        accuracy=accuracy, accuracy_ci95=q.ci95 if accuracy is not None else None,
        accuracy_n=q.total if accuracy is not None else None, quality_metric=None if q is None else q.metric,
        perplexity=q.value if q is not None and q.metric == "perplexity" else None,
        quality={} if q is None else {**{k: float(v) for k, v in q.extra.items() if k != "perplexity"},
                                      **({"exact_match": q.value} if q.metric == "exact_match" else {})},
        ladder=point.ladder, model=point.model, params=point.params, concurrency=point.concurrency,
        request_rate_per_s=point.request_rate_per_s, precision=point.precision, device=point.device.spec,
        device_name=point.device.name, device_uuid=point.device.uuid,
        latency_mean_ms=float(np.mean([t.e2e_s for t in steady]) * 1e3) if steady else None,
        latency_p50_ms=e2e[50], latency_p90_ms=e2e[90], latency_p95_ms=e2e[95], latency_p99_ms=e2e[99],
        items_per_s=throughput.mean, items_per_s_ci95=throughput.ci95, requests_per_s=throughput.mean,
        prompt_tokens=round(float(np.mean(prompts))) if prompts else None, output_tokens=round(per_request),
        ttft_mean_ms=float(np.mean([t.ttft_s for t in steady if t.ttft_s]) * 1e3) if steady else None,
        ttft_p50_ms=ttft[50], ttft_p90_ms=ttft[90], ttft_p95_ms=ttft[95], ttft_p99_ms=ttft[99],
        tpot_ms=float(np.mean(tpots) * 1e3) if tpots else None,
        tpot_p50_ms=tpot[50], tpot_p90_ms=tpot[90], tpot_p95_ms=tpot[95], tpot_p99_ms=tpot[99],
        itl_p50_ms=itl[50], itl_p95_ms=itl[95], itl_p99_ms=itl[99],
        output_tokens_per_s=float(np.mean(tokens / windows_s)),
        goodput_requests_per_s=goodput, slo_ttft_ms=slo_ttft_ms, slo_tpot_ms=slo_tpot_ms,
        load_cpu_share=load_cpu_share,
        energy_j_per_item=energy.j_per_item, energy_j_per_item_std=energy.std_j_per_item,
        energy_j_per_item_cv=energy.cv, energy_j_per_item_ci95=energy.ci95_j_per_item,
        energy_net_j_per_item=energy.net_j_per_item,
        energy_j_per_output_token=float(np.mean(per_token)) if per_token else None,
        energy_lm_reason=None if per_token else energy.reason,
        energy_method=energy.method if energy.j_per_item is not None else "unavailable",
        energy_domain=head[0].domain, energy_reason=energy.reason,
        power_w=energy.power_w, idle_power_w=idle_w, idle_basis=idle_basis if idle_w is not None else None,
        counter_update_period_s=float(np.median(periods_s)) if periods_s else None,
        components=_components(trials, items), gpus=_gpu_parts(point, head, items, tokens),
        co2e_g_per_item=point.intensity.co2e_g(energy.j_per_item),
        intensity_gco2e_per_kwh=point.intensity.gco2e_per_kwh, intensity_source=intensity_label(point.intensity),
        repeats=len(trials), window_s=float(windows_s.mean()),
        counter_updates_min=min(updates_all) if updates_all else None,
        samples=samples, flags=flags, model_spec=point.model_spec, workload=point.workload,
        engine=point.workload.get("engine"), engine_version=point.workload.get("engine_version"),
        memory_reason="the model's memory is the server's own process, not greenbench's",
        measured_utc=prof.utc_now(),
    )


def _gpu_parts(point: PointContext, head: list[EnergyReading], items: np.ndarray,
               tokens: np.ndarray) -> list[dict[str, Any]]:
    """Each GPU of a tensor-parallel server: its own energy over the same windows (the record's
    figure is their sum, taken only from windows where every GPU read validly)."""
    gpus = point.device.parts
    if not gpus or not all(len(r.parts) == len(gpus) for r in head):
        return []
    rows = []
    for j, gpu in enumerate(gpus):
        ok = [(r.parts[j], n, t) for r, n, t in zip(head, items, tokens, strict=True)
              if r.valid and r.energy_j is not None and r.parts[j].energy_j is not None]
        joules = [float(p.energy_j or 0.0) for p, _, _ in ok]
        per_token = [e / t for e, (_, _, t) in zip(joules, ok, strict=True) if t > 0]
        first = head[0].parts[j]
        rows.append({
            "device": gpu.spec, "uuid": gpu.uuid, "domain": first.domain, "method": first.method,
            "energy_j_per_item": float(np.mean([e / n for e, (_, n, _) in zip(joules, ok, strict=True)]))
            if ok else None,
            "energy_j_per_output_token": float(np.mean(per_token)) if per_token else None,
            "power_w": float(np.mean([e / p.duration_s for e, (p, _, _) in zip(joules, ok, strict=True)]))
            if ok else None,
            "reason": None if ok else next((r.parts[j].reason for r in head if r.parts[j].reason), "no valid window"),
        })
    return rows


def _burst_share(steady: list[Any]) -> float:
    """The share of responses whose tokens all came within 1 ms of the first: streamed in one
    burst, so their TTFT is nearly the whole request and their TPOT and ITL are near 0."""
    multi = [t for t in steady if t.output_tokens > 1 and t.chunk_times_s]
    if not multi:
        return 0.0
    return sum(t.chunk_times_s[-1] - t.chunk_times_s[0] < 1e-3 for t in multi) / len(multi)


LOAD_SATURATED_SHARE = 0.9  # the load thread's CPU time over wall time: near one core, it measures itself

FLAG_FIXES = {
    "load_generator_saturated": "greenbench's load generator kept a CPU core busy: the figures may be its "
                                "limit, not the server's; lower the concurrency or the request rate",
    "requests_failed": "some requests failed during the windows (the server's log says why); check the "
                       "server and measure again",
    "stream_bursty": "most responses arrived in one burst: their TTFT is nearly the whole request and TPOT/ITL "
                     "say nothing of the engine's pace (its output was held back, e.g. its processes starved "
                     "of CPU); give the server cores of its own and measure again",
    "energy_cv_high": "energy varies between repeats; raise --repeats or --min-window",
    "throughput_cv_high": "throughput varies between repeats; close other programs or raise --min-window",
    "too_few_counter_updates": "windows spanned few counter updates; raise --min-window",
    "counter_did_not_move": "the energy counter did not move in a window; raise --min-window",
    "counter_stalled": "the energy counter stopped updating at a window edge and the window was "
                       "left out; check the driver (nvidia-smi) and measure again",
    "invalid_windows_dropped": "some windows had no valid energy reading and were left out; raise --min-window",
    "power_below_idle": "power under load was below the idle baseline; raise --idle or check other load",
    "power_above_limit": "mean power exceeded the enforced power limit by more than the counter's "
                         "resolution allows; the reading is suspect (check the GPU's power limit and meter)",
    "sm_clock_drift": "the GPU's SM clock changed between windows (throttling or another tenant); "
                      "let the GPU cool, check nvidia-smi -q -d PERFORMANCE, and measure again",
    "temperature_drift": "the GPU's temperature drifted over the windows; raise --warmup so the "
                         "GPU reaches a steady temperature first",
    "other_gpu_processes": "other processes ran on the measured GPU (its counter counts them too); "
                           "measure on an idle GPU (nvidia-smi lists them)",
    "host_busy": "other processes kept the host's CPUs busy during windows; close them, or lower "
                 "--threads so that the run keeps a free core",
    "power_limit_changed": "the GPU power limit changed during the sweep; measure again with it fixed",
    "node_shared": "another group ran on the same Ray node during this CPU group: a CPU meter counts the "
                   "whole host; give --threads the nodes' CPU count so that a CPU group holds its node alone",
}


def flag_fixes(r: prof.Record) -> list[tuple[str, str]]:
    return [(f, FLAG_FIXES[f]) for f in r.flags if f in FLAG_FIXES]
