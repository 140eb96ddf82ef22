"""Synthetic profiles with known values and noise, for compare and report tests."""

from __future__ import annotations

import copy

import numpy as np

from greenbench.profile import Profile, Record

MODELS = {"small": 0.80, "medium": 0.90, "large": 0.95}  # accuracy of each model
BATCHES = (1, 8, 64)
ACCURACY_N = 2000


def make_profile(seed: int | None = 0, *, cv: float = 0.02, repeats: int = 5, shifts: dict | None = None,
                 accuracy_shift: dict | None = None, method: str = "rapl", cpu_model: str = "Test CPU",
                 models: dict | None = None, batches=BATCHES, quick: bool = False) -> Profile:
    """One record per (model, batch); energy, latency and throughput drawn around fixed true values
    with lognormal noise of coefficient of variation ``cv`` (``seed`` None: no noise at all).

    ``shifts`` maps (model, batch, metric) -> factor applied to the true value (1.10 = +10%);
    ``accuracy_shift`` maps model -> correct items added (negative: fewer)."""
    rng = np.random.default_rng(seed)
    shifts = shifts or {}
    accuracy_shift = accuracy_shift or {}
    records = []
    for i, (model, acc) in enumerate((models or MODELS).items()):
        for b in batches:
            true_energy = 1e-3 * (i + 1) / b ** 0.5
            true_latency = 0.5 * (i + 1) * b ** 0.7
            true_ips = b / true_latency * 1e3
            truth = {"energy_j_per_item": true_energy, "latency_p50_ms": true_latency * 0.8,
                     "latency_p95_ms": true_latency, "items_per_s": true_ips}
            samples = {}
            for metric, value in truth.items():
                value *= shifts.get((model, b, metric), 1.0)
                if seed is None:
                    noise = np.ones(repeats)
                else:
                    noise = rng.lognormal(-0.5 * np.log1p(cv ** 2), np.sqrt(np.log1p(cv ** 2)), repeats)
                samples[metric] = [float(x) for x in value * noise]
            correct = round(acc * ACCURACY_N) + accuracy_shift.get(model, 0)
            mean = {k: float(np.mean(v)) for k, v in samples.items()}
            records.append(Record(
                ladder="synthetic", model=model, params=1000 * (i + 1), batch_size=b, precision="fp32",
                device="cpu", device_name=cpu_model, accuracy=correct / ACCURACY_N, accuracy_n=ACCURACY_N,
                accuracy_ci95=(correct / ACCURACY_N - 0.01, correct / ACCURACY_N + 0.01),
                latency_p50_ms=mean["latency_p50_ms"], latency_p95_ms=mean["latency_p95_ms"],
                latency_p99_ms=mean["latency_p95_ms"] * 1.2,
                items_per_s=mean["items_per_s"], energy_j_per_item=mean["energy_j_per_item"],
                energy_j_per_item_cv=cv, energy_j_per_item_std=cv * mean["energy_j_per_item"],
                energy_j_per_item_ci95=(mean["energy_j_per_item"] * (1 - 2 * cv),
                                        mean["energy_j_per_item"] * (1 + 2 * cv)),
                energy_net_j_per_item=mean["energy_j_per_item"] * 0.5, energy_method=method,
                energy_domain="package", power_w=30.0, idle_power_w=15.0,
                co2e_g_per_item=mean["energy_j_per_item"] / 3.6e6 * 400, intensity_gco2e_per_kwh=400.0,
                repeats=repeats, samples=samples, model_spec={"name": model, "arch": "cnn", "width": 8 * (i + 1)},
                workload={"dataset": {"id": "synthetic", "seed": 1, "split": "test", "test_size": ACCURACY_N}},
            ))
    return Profile(
        greenbench_version="0.1.0", created_utc="2026-01-01T00:00:00Z", updated_utc="2026-01-01T00:00:00Z",
        complete=True, ladder={"name": "synthetic", "source": "test", "definition": {}},
        settings={"protocol": {"repeats": repeats, "min_window_s": 0.25 if quick else 2.0, "quick": quick,
                               "seed": 0}, "meter": "auto", "energy_basis": "gross"},
        provenance={"host": "test", "cpu_model": cpu_model, "git_commit": "abc123"},
        idle={"cpu": {"device": "cpu", "device_name": cpu_model, "uuid": None}},
        carbon={"gco2e_per_kwh": 400.0, "source": "test", "pue": 1.0},
        records=records,
    )


def edited(profile: Profile, model: str, batch: int, **changes) -> Profile:
    """A copy of ``profile`` with fields of one record replaced."""
    p = copy.deepcopy(profile)
    for r in p.records:
        if r.model == model and r.batch_size == batch:
            for k, v in changes.items():
                setattr(r, k, v)
    return p


def scaled(profile: Profile, model: str, batch: int, metric: str, factor: float, samples: bool = True) -> Profile:
    """A copy with one point's ``metric`` (and, with ``samples``, its samples) times ``factor``."""
    p = copy.deepcopy(profile)
    for r in p.records:
        if r.model == model and r.batch_size == batch:
            setattr(r, metric, getattr(r, metric) * factor)
            if samples and metric in r.samples:
                r.samples[metric] = [x * factor for x in r.samples[metric]]
    return p
