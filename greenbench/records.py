"""Operating-point records from measured windows: statistics, validity flags, LM prefill/decode.

The runner measures; this module turns one point's trials (and its workload's score) into the
flat profile record, with every figure's uncertainty and the flags that say why to distrust it.
"""

from __future__ import annotations

import numpy as np

from . import profile as prof
from .carbon import Intensity
from .measure import Trial
from .stats import percentiles_ms, summarize, wilson_interval
from .zoo import model_dict


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
    idle_w = idle_power(profile, spec)
    limit_before_w = profile.idle.get(spec, {}).get("power_limit_w")
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
        if limit and power > limit:
            flags.append("power_above_limit")
        if e_cv is not None and e_cv > proto.max_cv:
            flags.append("energy_cv_high")
        if len(valid) < len(head):
            flags.append("invalid_windows_dropped")
        updates = [head[i].counter_updates for i in valid if head[i].counter_updates is not None]
        if updates and min(updates) < proto.min_counter_updates:
            flags.append("too_few_counter_updates")
    elif method != "unavailable":  # each null reading says why; report the first reason
        energy_reason = next((r.reason for r in head if r.reason), "no valid window")
    if throughput.cv is not None and throughput.cv > proto.max_cv:
        flags.append("throughput_cv_high")
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
        power_w=power, idle_power_w=idle_w, components=components,
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


def idle_power(profile: prof.Profile, spec: str) -> float | None:
    meters = profile.idle.get(spec, {}).get("meters") or []
    return meters[0]["power_w"] if meters else None


# Validity flags and the option that fixes each (hyperfine style).
FLAG_FIXES = {
    "energy_cv_high": "energy varies between repeats; raise --repeats or --min-window",
    "throughput_cv_high": "throughput varies between repeats; close other programs or raise --min-window",
    "too_few_counter_updates": "windows spanned few counter updates; raise --min-window",
    "counter_did_not_move": "the energy counter did not move in a window; raise --min-window",
    "invalid_windows_dropped": "some windows had no valid energy reading and were left out; raise --min-window",
    "power_below_idle": "power under load was below the idle baseline; raise --idle or check other load",
    "power_above_limit": "power exceeded the enforced power limit; the reading is suspect",
    "power_limit_changed": "the GPU power limit changed during the sweep; measure again with it fixed",
}


def flag_fixes(r: prof.Record) -> list[tuple[str, str]]:
    return [(f, FLAG_FIXES[f]) for f in r.flags if f in FLAG_FIXES]
