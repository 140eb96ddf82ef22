"""Synthetic profiles with known values and noise, for the tests of the stages that read profiles
(fit, price, simulate, compare, report): classifiers over batch sizes (``make_profile``), an in-process
language model scored by perplexity (``make_hf_lm_profile``) and served language models over
concurrency, scored by accuracy or perplexity (``make_served_profile``)."""

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


def _is(r: Record, model: str, batch: int | None, concurrency: int | None) -> bool:
    return r.model == model and r.batch_size == batch and (concurrency is None or r.concurrency == concurrency)


def edited(profile: Profile, model: str, batch: int | None, concurrency: int | None = None, **changes) -> Profile:
    """A copy of ``profile`` with fields of one record replaced (a served point: batch None and its
    concurrency)."""
    p = copy.deepcopy(profile)
    for r in p.records:
        if _is(r, model, batch, concurrency):
            for k, v in changes.items():
                setattr(r, k, v)
    return p


def scaled(profile: Profile, model: str, batch: int | None, metric: str, factor: float, samples: bool = True,
           concurrency: int | None = None) -> Profile:
    """A copy with one point's ``metric`` (and, with ``samples``, its samples) times ``factor``."""
    p = copy.deepcopy(profile)
    for r in p.records:
        if _is(r, model, batch, concurrency):
            setattr(r, metric, getattr(r, metric) * factor)
            if samples and metric in r.samples:
                r.samples[metric] = [x * factor for x in r.samples[metric]]
    return p


# --- language models ----------------------------------------------------------------------------
# Three model sizes; energy, latency and TTFT grow with the size, quality improves with it.
LM_MODELS = {"lm-s": 40.0, "lm-m": 25.0, "lm-l": 15.0}  # perplexity of each model
LM_ACCURACY = {"lm-s": 0.40, "lm-m": 0.55, "lm-l": 0.70}  # multiple-choice accuracy of each model
LM_SIZE = {"lm-s": 1.0, "lm-m": 3.0, "lm-l": 10.0}
LM_BATCHES = (1, 4, 16)
CONCURRENCY = (1, 4, 16)
PROMPT_TOKENS, OUTPUT_TOKENS = 32, 32


def _noise(rng, seed, cv, repeats):
    if seed is None:
        return np.ones(repeats)
    return rng.lognormal(-0.5 * np.log1p(cv ** 2), np.sqrt(np.log1p(cv ** 2)), repeats)


def _lm_profile(ladder: str, workload: str, records: list[Record], repeats: int, quick: bool) -> Profile:
    return Profile(
        greenbench_version="0.1.0", created_utc="2026-01-01T00:00:00Z", updated_utc="2026-01-01T00:00:00Z",
        complete=True, ladder={"name": ladder, "source": "test", "definition": {"workload": workload}},
        settings={"protocol": {"repeats": repeats, "min_window_s": 0.25 if quick else 2.0, "quick": quick,
                               "seed": 0}, "meter": "auto", "energy_basis": "gross"},
        provenance={"host": "test", "cpu_model": "Test CPU", "git_commit": "abc123"},
        idle={"cpu": {"device": "cpu", "device_name": "Test CPU", "uuid": None}},
        carbon={"gco2e_per_kwh": 400.0, "source": "test", "pue": 1.0},
        records=records,
    )


def make_hf_lm_profile(seed: int | None = 0, *, cv: float = 0.02, repeats: int = 5, batches=LM_BATCHES,
                       models: dict | None = None, perplexity_shift: dict | None = None,
                       shifts: dict | None = None, quick: bool = False) -> Profile:
    """An in-process causal-LM ladder (workload hf-lm) scored by perplexity, over batch sizes.

    Per request (item): energy E(b) = e_inf + e0 / b, batch latency L(b) = l0 + l1 * b, TTFT the
    prefill's share of it; ``perplexity_shift`` maps model -> factor on its perplexity and
    ``shifts`` (model, batch, metric) -> factor on a measured value (with its samples)."""
    rng = np.random.default_rng(seed)
    shifts, perplexity_shift = shifts or {}, perplexity_shift or {}
    records = []
    for model, ppl in (models or LM_MODELS).items():
        k = LM_SIZE[model]
        for b in batches:
            energy = 0.02 * k * (1 + 4 / b)  # J per request
            latency = 20.0 * k * (1 + 0.15 * b)  # ms per batch
            truth = {"energy_j_per_item": energy, "latency_p50_ms": latency * 0.95, "latency_p95_ms": latency,
                     "items_per_s": b / latency * 1e3, "ttft_p50_ms": latency * 0.1}
            samples = {m: [float(x) for x in v * shifts.get((model, b, m), 1.0) * _noise(rng, seed, cv, repeats)]
                       for m, v in truth.items()}
            mean = {m: float(np.mean(v)) for m, v in samples.items()}
            e, ips = mean["energy_j_per_item"], mean["items_per_s"]
            ttft50 = mean["ttft_p50_ms"]
            records.append(Record(
                ladder="synthetic-lm", model=model, params=int(70e6 * k), batch_size=b, precision="fp32",
                device="cpu", device_name="Test CPU", quality_metric="perplexity",
                perplexity=ppl * perplexity_shift.get(model, 1.0), quality={"tokens_scored": 4096.0},
                latency_mean_ms=mean["latency_p50_ms"], latency_p50_ms=mean["latency_p50_ms"],
                latency_p90_ms=mean["latency_p95_ms"] * 0.98, latency_p95_ms=mean["latency_p95_ms"],
                latency_p99_ms=mean["latency_p95_ms"] * 1.1, items_per_s=ips,
                energy_j_per_item=e, energy_j_per_item_cv=cv, energy_j_per_item_std=cv * e,
                energy_j_per_item_ci95=(e * (1 - 2 * cv), e * (1 + 2 * cv)), energy_net_j_per_item=e * 0.6,
                energy_method="rapl", energy_domain="package", power_w=30.0, idle_power_w=12.0,
                co2e_g_per_item=e / 3.6e6 * 400, intensity_gco2e_per_kwh=400.0,
                prompt_tokens=PROMPT_TOKENS, output_tokens=OUTPUT_TOKENS,
                ttft_mean_ms=ttft50, ttft_p50_ms=ttft50, ttft_p95_ms=ttft50 * 1.2,
                tpot_ms=(mean["latency_p50_ms"] - ttft50) / (OUTPUT_TOKENS - 1),
                output_tokens_per_s=ips * OUTPUT_TOKENS, energy_j_per_output_token=e / OUTPUT_TOKENS,
                repeats=repeats, samples=samples, model_spec={"name": model, "id": f"test/{model}"},
                workload={"name": "hf-lm", "dataset": {"id": "wikitext", "split": "test", "sha256": "abc"}},
            ))
    return _lm_profile("synthetic-lm", "hf-lm", records, repeats, quick)


def make_served_profile(seed: int | None = 0, *, metric: str = "accuracy", cv: float = 0.02, repeats: int = 5,
                        concurrency=CONCURRENCY, models: tuple[str, ...] = tuple(LM_MODELS),
                        quality_shift: dict | None = None, shifts: dict | None = None,
                        quick: bool = False) -> Profile:
    """A served-lm ladder (batch_size null) over concurrency, scored by multiple-choice ``accuracy``
    (200 items) or by ``perplexity``, once per model: the same quality at every load.

    Per request: energy E(c) = e_inf + e0 / c (the server's power shared by the requests in flight),
    end-to-end latency and TTFT growing with c; ``quality_shift`` maps model -> correct items added
    (accuracy) or a factor (perplexity), ``shifts`` (model, concurrency, metric) -> factor."""
    rng = np.random.default_rng(seed)
    shifts, quality_shift = shifts or {}, quality_shift or {}
    n_items = 200
    records = []
    for model in models:
        k = LM_SIZE[model]
        for c in concurrency:
            energy = 0.5 * k * (0.3 + 0.7 / c)  # J per request
            e2e = 60.0 * k * (1 + 0.08 * c)  # ms per request, end to end
            ttft = 5.0 * k * (1 + 0.3 * c)
            tpot = (e2e - ttft) / (OUTPUT_TOKENS - 1)
            truth = {"energy_j_per_item": energy, "latency_p50_ms": e2e, "latency_p95_ms": e2e * 1.3,
                     "items_per_s": c / e2e * 1e3, "ttft_p50_ms": ttft, "ttft_p95_ms": ttft * 1.5,
                     "tpot_ms": tpot}
            samples = {m: [float(x) for x in v * shifts.get((model, c, m), 1.0) * _noise(rng, seed, cv, repeats)]
                       for m, v in truth.items()}
            mean = {m: float(np.mean(v)) for m, v in samples.items()}
            e, rps = mean["energy_j_per_item"], mean["items_per_s"]
            samples["output_tokens_per_s"] = [x * OUTPUT_TOKENS for x in samples["items_per_s"]]
            samples["energy_j_per_output_token"] = [x / OUTPUT_TOKENS for x in samples["energy_j_per_item"]]
            if metric == "accuracy":
                correct = round(LM_ACCURACY[model] * n_items) + quality_shift.get(model, 0)
                quality = dict(accuracy=correct / n_items, accuracy_n=n_items, quality_metric="accuracy",
                               accuracy_ci95=(correct / n_items - 0.06, correct / n_items + 0.06))
            else:
                quality = dict(quality_metric="perplexity", perplexity=LM_MODELS[model] * quality_shift.get(model, 1.0),
                               quality={"tokens_scored": 4096.0})
            tp = mean["tpot_ms"]
            records.append(Record(
                ladder="synthetic-served", model=model, params=int(5e8 * k), concurrency=c, precision="bf16",
                device="cpu", device_name="Test CPU", **quality,
                latency_mean_ms=mean["latency_p50_ms"], latency_p50_ms=mean["latency_p50_ms"],
                latency_p90_ms=mean["latency_p95_ms"] * 0.95, latency_p95_ms=mean["latency_p95_ms"],
                latency_p99_ms=mean["latency_p95_ms"] * 1.2, items_per_s=rps, requests_per_s=rps,
                goodput_requests_per_s=rps * 0.9,
                energy_j_per_item=e, energy_j_per_item_cv=cv, energy_j_per_item_std=cv * e,
                energy_j_per_item_ci95=(e * (1 - 2 * cv), e * (1 + 2 * cv)), energy_net_j_per_item=e * 0.5,
                energy_method="rapl", energy_domain="package", power_w=60.0, idle_power_w=20.0,
                co2e_g_per_item=e / 3.6e6 * 400, intensity_gco2e_per_kwh=400.0,
                prompt_tokens=PROMPT_TOKENS, output_tokens=OUTPUT_TOKENS,
                ttft_mean_ms=mean["ttft_p50_ms"], ttft_p50_ms=mean["ttft_p50_ms"],
                ttft_p90_ms=mean["ttft_p95_ms"] * 0.9, ttft_p95_ms=mean["ttft_p95_ms"],
                ttft_p99_ms=mean["ttft_p95_ms"] * 1.2, tpot_ms=tp, tpot_p50_ms=tp, tpot_p90_ms=tp * 1.1,
                tpot_p95_ms=tp * 1.2, tpot_p99_ms=tp * 1.4, itl_p50_ms=tp, itl_p95_ms=tp * 1.5, itl_p99_ms=tp * 2,
                output_tokens_per_s=rps * OUTPUT_TOKENS, energy_j_per_output_token=e / OUTPUT_TOKENS,
                engine="vllm", engine_version="0.32.0+cpu", load_cpu_share=0.1,
                repeats=repeats, samples=samples, model_spec={"name": model, "id": f"test/{model}"},
                workload={"name": "served-lm", "generation": {"prompt_tokens": PROMPT_TOKENS,
                                                              "output_tokens": OUTPUT_TOKENS},
                          "dataset": {"id": "arc-easy", "sha256": "def"}},
            ))
    return _lm_profile("synthetic-served", "served-lm", records, repeats, quick)


def point_of(profile: Profile, model: str, batch: int | None = None, concurrency: int | None = None) -> Record:
    """The record of one point: by batch size (in-process) or concurrency (served)."""
    return next(r for r in profile.records if r.model == model
                and (r.batch_size == batch if batch is not None else r.concurrency == concurrency))
