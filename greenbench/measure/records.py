"""Operating-point records from measured windows: statistics, validity flags, LM prefill/decode.

The runner measures; this module turns one point's trials (and its workload's score) into the
flat profile record, with every figure's uncertainty and the flags that say why to distrust it.
"""

from __future__ import annotations

import numpy as np

from greenbench import profile as prof
from greenbench.carbon.intensity import Intensity
from greenbench.measure.protocol import Trial
from greenbench.measure.zoo import model_dict
from greenbench.stats import percentiles_ms, summarize, wilson_interval


def build_record(cfg, profile, model, params, batch, precision, device, spec, score, trials,
            provenance, limit_now_w: float | None = None) -> prof.Record:
    proto = cfg.protocol
    flags: list[str] = ["quick"] if proto.quick else []
    items = np.array([t.steps * batch for t in trials], dtype=float)
    windows = np.array([t.window_s for t in trials])
    throughput = summarize(items / windows)
    durations = np.concatenate([t.step_durations_s for t in trials])
    pct = percentiles_ms(durations)
    lat_mean_ms = float(durations.mean() * 1e3)
    accuracy = acc_ci = None
    if score.correct is not None and score.total > 0:
        accuracy = score.correct / score.total
        acc_ci = wilson_interval(score.correct, score.total)

    head = [t.readings[0] for t in trials]
    method = head[0].method
    valid = [i for i, r in enumerate(head) if r.valid]
    for r in head:
        flags.extend(f for f in r.flags if f not in flags)
    energy_reason = head[0].reason
    e_item = e_std = e_cv = e_ci = e_net = power = None
    idle_w, idle_basis = idle_power(profile, spec, f"{model} {precision}")
    limit_before_w = profile.idle.get(spec, {}).get("power_limit_w")
    periods = [r.update_period_s for r in head if r.update_period_s is not None]
    period_s = float(np.median(periods)) if periods else None
    if limit_now_w is not None and limit_before_w is not None and limit_now_w != limit_before_w:
        flags.append("power_limit_changed")
    samples: dict[str, list[float]] = {
        "items_per_s": [float(x) for x in items / windows],
        "latency_p50_ms": [float(np.percentile(t.step_durations_s, 50) * 1e3) for t in trials],
        "latency_p95_ms": [float(np.percentile(t.step_durations_s, 95) * 1e3) for t in trials],
        "window_s": [float(x) for x in windows],
        "steps": [float(t.steps) for t in trials],
    }
    if valid:
        per_item = np.array([head[i].energy_j / items[i] for i in valid])
        e = summarize(per_item)
        e_item, e_std, e_cv, e_ci = e.mean, e.std, e.cv, e.ci95
        samples["energy_j_per_item"] = [float(x) for x in per_item]
        power = float(np.mean([head[i].energy_j / head[i].duration_s for i in valid]))
        if idle_w is not None:
            net = [(head[i].energy_j - idle_w * head[i].duration_s) / items[i] for i in valid]
            e_net = float(np.mean(net))
            if power < 0.95 * idle_w:  # 5% slack: the idle figure has its own noise
                flags.append("power_below_idle")
        limit = limit_now_w or limit_before_w
        if limit and power > limit * (1 + power_limit_slack(float(windows.mean()))):
            flags.append("power_above_limit")
        if e_cv is not None and e_cv > proto.max_cv:
            flags.append("energy_cv_high")
        if len(valid) < len(head):
            flags.append("invalid_windows_dropped")
        updates = [head[i].counter_updates for i in valid if head[i].counter_updates is not None]
        # one update of slack: a window sized to the period measured so far may round one short
        if updates and min(updates) < proto.min_counter_updates - 1:
            flags.append("too_few_counter_updates")
    elif method != "unavailable":  # each null reading says why; report the first reason
        energy_reason = next((r.reason for r in head if r.reason), "no valid window")
    if throughput.cv is not None and throughput.cv > proto.max_cv:
        flags.append("throughput_cv_high")
    flags.extend(f for f in validity_flags(head, trials, device.is_cuda, profile.provenance)
                 if f not in flags)
    for name, values in _edge_samples(head, trials).items():
        samples[name] = values
    components = []
    for j in range(1, len(trials[0].readings)):
        rs = [t.readings[j] for t in trials]
        ok = [r.energy_j / n for r, n in zip(rs, items) if r.valid]
        components.append({
            "domain": rs[0].domain, "method": rs[0].method,
            "energy_j_per_item": float(np.mean(ok)) if ok else None,
            "reason": rs[0].reason if not ok else None,
        })
    updates_all = [r.counter_updates for r in head if r.counter_updates is not None]
    return prof.Record(
        ladder=cfg.ladder.name, model=model, params=params, batch_size=batch,
        precision=precision, device=spec, device_name=device.name, device_uuid=device.uuid,
        accuracy=accuracy, accuracy_ci95=acc_ci, accuracy_n=score.total if accuracy is not None else None,
        quality_metric=score.metric, perplexity=score.extra.get("perplexity"),
        quality={k: float(v) for k, v in score.extra.items() if k != "perplexity"},
        latency_mean_ms=lat_mean_ms, latency_p50_ms=pct[50], latency_p90_ms=pct[90],
        latency_p95_ms=pct[95], latency_p99_ms=pct[99], latency_per_item_ms=lat_mean_ms / batch,
        latency_per_item_p50_ms=pct[50] / batch, latency_per_item_p90_ms=pct[90] / batch,
        latency_per_item_p95_ms=pct[95] / batch, latency_per_item_p99_ms=pct[99] / batch,
        items_per_s=throughput.mean, items_per_s_ci95=throughput.ci95,
        energy_j_per_item=e_item, energy_j_per_item_std=e_std, energy_j_per_item_cv=e_cv,
        energy_j_per_item_ci95=e_ci, energy_net_j_per_item=e_net,
        energy_method=method if e_item is not None else "unavailable",
        energy_domain=head[0].domain, energy_reason=energy_reason,
        power_w=power, idle_power_w=idle_w, idle_basis=idle_basis if idle_w is not None else None,
        counter_update_period_s=period_s, components=components,
        co2e_g_per_item=cfg.intensity.co2e_g(e_item),
        intensity_gco2e_per_kwh=cfg.intensity.gco2e_per_kwh,
        intensity_source=intensity_label(cfg.intensity),
        repeats=len(trials), window_s=float(windows.mean()),
        counter_updates_min=min(updates_all) if updates_all else None,
        samples=samples, flags=flags, model_spec=model_dict(cfg.ladder.model(model)),
        workload=provenance, measured_utc=prof.utc_now(),
    )


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
    per_item = [t.readings[0].energy_j / (t.steps * r.batch_size) for t in prefill if t.readings[0].valid]
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


def idle_power(profile: prof.Profile, spec: str, after: str | None = None) -> tuple[float | None, str]:
    """The idle baseline net energy subtracts, and which it is: the warm one measured right
    after ``after`` ("model precision") ran (a GPU idles far higher after load, 118-128 W against
    78 W cold on an H200), where there is one, else the cold one measured before the sweep."""
    idle = profile.idle.get(spec, {})
    for entry in reversed(idle.get("warm") or []):
        meters = entry.get("meters") or []
        if entry.get("after") == after and meters and meters[0].get("power_w") is not None:
            return meters[0]["power_w"], "warm"
    meters = idle.get("meters") or []
    return (meters[0]["power_w"] if meters else None), "cold"


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


def validity_flags(head: list, trials: list[Trial], is_cuda: bool, provenance: dict) -> list[str]:
    """Flags from the readings at the window edges: clock and temperature drift and other
    processes on the GPU (NVML), other processes' load on the host CPU (psutil)."""
    flags = []
    clocks = _edges(head, "end", "sm_clock_mhz")
    if len(clocks) >= 2 and (max(clocks) - min(clocks)) > SM_CLOCK_DRIFT * max(clocks):
        flags.append("sm_clock_drift")
    temps = _edges(head, "start", "temperature_c") + _edges(head, "end", "temperature_c")
    if len(temps) >= 2 and max(temps) - min(temps) > TEMPERATURE_DRIFT_C:
        flags.append("temperature_drift")
    if any((r.checks.get(side) or {}).get("other_gpu_pids") for r in head for side in ("start", "end")):
        flags.append("other_gpu_processes")
    cores = provenance.get("cpu_affinity_count") or provenance.get("cpu_count")
    threads = 1 if is_cuda else int(provenance.get("torch_threads") or 1)
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
FLAG_FIXES = {
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
}


def flag_fixes(r: prof.Record) -> list[tuple[str, str]]:
    return [(f, FLAG_FIXES[f]) for f in r.flags if f in FLAG_FIXES]
