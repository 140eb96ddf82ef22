"""The profile as a table: long-form CSV, one row per operating point (ready for pandas)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from greenbench.profile.io import write_atomic
from greenbench.profile.schema import Profile

CSV_COLUMNS = [
    "ladder", "model", "params", "batch_size", "precision", "device", "device_name", "host", "accelerator_type",
    "status",
    "accuracy", "accuracy_ci95_low", "accuracy_ci95_high", "quality_metric", "perplexity",
    "latency_p50_ms", "latency_p90_ms",
    "latency_p95_ms", "latency_p99_ms", "latency_per_item_ms", "latency_per_item_p50_ms",
    "latency_per_item_p95_ms", "latency_per_item_p99_ms", "items_per_s", "energy_j_per_item",
    "energy_j_per_item_ci95_low", "energy_j_per_item_ci95_high", "energy_j_per_item_cv",
    "energy_net_j_per_item", "energy_method", "energy_domain", "power_w", "idle_power_w",
    "co2e_g_per_item", "intensity_gco2e_per_kwh", "intensity_source", "prompt_tokens",
    "output_tokens", "ttft_p50_ms", "ttft_p95_ms", "tpot_ms", "output_tokens_per_s",
    "energy_prefill_j_per_item", "energy_decode_j_per_token", "energy_j_per_output_token",
    "gpu_mem_peak_mib", "host_rss_peak_mib", "training_source", "training_torch_threads", "training_seed",
    "repeats", "flags", "error",
]


def to_rows(profile: Profile) -> list[dict[str, Any]]:
    rows = []
    for r in profile.records:
        d = r.model_dump()
        for name in ("accuracy_ci95", "energy_j_per_item_ci95"):
            lo, hi = d.pop(name) or (None, None)
            d[f"{name}_low"], d[f"{name}_high"] = lo, hi
        d["flags"] = ";".join(r.flags)
        t = r.training
        d["training_source"] = t.source if t else None
        d["training_torch_threads"] = t.torch_threads if t else None
        d["training_seed"] = t.seed if t else None
        rows.append({c: d.get(c) for c in CSV_COLUMNS})
    return rows


def csv_text(profile: Profile) -> str:
    import pandas as pd

    text: str = pd.DataFrame(to_rows(profile), columns=CSV_COLUMNS).to_csv(index=False)
    return text


def export_csv(profile: Profile, path: Path) -> None:
    """Write the CSV atomically (a reader sees the old table or the new one), keeping the file's
    mode; a failure is WriteError naming ``path``."""
    write_atomic(Path(path), csv_text(profile))
