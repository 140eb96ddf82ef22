"""GPU validation: greenbench's energy per item held against a bare NVML loop around the same work.

One command, on a machine with an NVIDIA GPU (nothing is downloaded: random weights, synthetic
inputs):

    python benchmarks/gpu_check.py                 # both ladders on cuda:0, greenbench defaults
    python benchmarks/gpu_check.py --ladder vision --device cuda:1 --repeats 3

It profiles two ladders of model_zoo.yaml with greenbench (NVML counter, the full protocol):
`gpu-check-vision` (torchvision ResNet-18/50/152, random weights, bf16, batch 1/32/256; ResNet
configs of transformers stand in when torchvision is missing) and `gpu-check-gpt2` (GPT-2-style
configs from 124M to 1.5B parameters, random weights, 128-token prompts, 64 greedy tokens,
prefill measured beside each request). Then, for every point, it builds the same model again and
runs a bare loop that reads the NVML total-energy counter directly before and after a timed run of
the same step (sync at both edges, no tick alignment, no tail correction: an independent figure).

It prints greenbench's J per item next to the bare loop's, the CV over repeats of each, and the
verdict against the targets (agreement within 5%, greenbench CV at most 2%), and writes the
profiles and the table (Markdown and JSON) under --out. GPU clocks, power limits and other
settings are only read, never changed.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AGREE_TARGET = 0.05
CV_TARGET = 0.02

# transformers ResNet configs with torchvision's shapes: used only when torchvision is missing.
_RESNET_CONFIGS = {
    "resnet18": {"layer_type": "basic", "depths": [2, 2, 2, 2], "hidden_sizes": [64, 128, 256, 512]},
    "resnet50": {"layer_type": "bottleneck", "depths": [3, 4, 6, 3], "hidden_sizes": [256, 512, 1024, 2048]},
    "resnet152": {"layer_type": "bottleneck", "depths": [3, 8, 36, 3], "hidden_sizes": [256, 512, 1024, 2048]},
}


def _ladder(name: str):
    from greenbench import zoo

    lad = zoo.get_ladder(name, ROOT / "model_zoo.yaml")
    if name == "gpu-check-vision":
        try:
            import torchvision  # noqa: F401
        except ImportError:
            print("torchvision is not installed: the ResNets are built from transformers configs of "
                  "the same shapes instead (pip install torchvision for the torchvision models)", file=sys.stderr)
            models = [zoo.HFModel(name=m.name, weights="random",
                                  config={"model_type": "resnet", "num_labels": 1000, **_RESNET_CONFIGS[m.name]})
                      for m in lad.models]
            lad = lad.model_copy(update={"models": tuple(models)})
    return lad


class BareNvml:
    """The NVML total-energy counter of one GPU, read with nothing around it (mJ -> J)."""

    def __init__(self, uuid: str):
        import pynvml

        pynvml.nvmlInit()
        self._nvml = pynvml
        self._handle = pynvml.nvmlDeviceGetHandleByUUID(uuid)

    def joules(self) -> float:
        return self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle) / 1000.0

    def close(self) -> None:
        self._nvml.nvmlShutdown()


def _warm_up(step, sync, seconds: float) -> None:
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        step()
    sync()


def _bare_loop(step, sync, counter: BareNvml, steps: int) -> tuple[float, float]:
    """(joules, seconds) of ``steps`` calls of ``step``, synced at both edges."""
    sync()
    e0, t0 = counter.joules(), time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return counter.joules() - e0, time.perf_counter() - t0


def _cv(values: list[float]) -> float | None:
    if len(values) < 2 or statistics.fmean(values) == 0:
        return None
    return statistics.stdev(values) / statistics.fmean(values)


def bare_figures(lad, record, device: str, counter: BareNvml, workload, repeats: int, window_s: float) -> dict:
    """The bare loop's J per item (full request) and, for causal LMs, J per request of prefill."""
    b = record.batch_size
    out: dict = {}
    phases = [("request", workload.make_step(b))]
    if record.output_tokens is not None:
        phases.append(("prefill", workload.make_phase_step("prefill", b)))
    for phase, step in phases:
        # as many steps as fill the window at the rate greenbench measured (at least 3)
        rate_steps_per_s = None
        if phase == "request" and record.items_per_s:
            rate_steps_per_s = record.items_per_s / b
        elif phase == "prefill" and record.ttft_mean_ms:
            rate_steps_per_s = 1000.0 / record.ttft_mean_ms
        steps = max(3, int(window_s * (rate_steps_per_s or 1.0)))
        per_item = []
        for _ in range(repeats):
            _warm_up(step, workload.sync, 0.5)  # before every window, as greenbench does
            joules, _seconds = _bare_loop(step, workload.sync, counter, steps)
            per_item.append(joules / (steps * b))
        out[phase] = {"j_per_item": statistics.fmean(per_item), "cv": _cv(per_item), "steps": steps,
                      "samples": per_item}
    return out


def check_ladder(name: str, device: str, out_dir: Path, repeats: int, window_s: float) -> list[dict]:
    from greenbench import carbon, devices, runner
    from greenbench.measure import Protocol

    lad = _ladder(name)
    dev = devices.resolve(device)
    if not dev.is_cuda or not dev.uuid:
        raise SystemExit(f"gpu_check: {device} is not a CUDA GPU with a UUID here; run it on a GPU machine")
    slug = dev.name.replace(" ", "-").replace("/", "-").lower()
    cfg = runner.RunConfig(
        ladder=lad, out_path=out_dir / f"{name}-{slug}.json",
        protocol=Protocol(repeats=repeats, min_window_s=window_s),
        intensity=carbon.static_intensity(), cache_dir=out_dir / ".gpu-check-cache", meter="nvml",
        devices=(dev.spec,), force=True,
    )

    def progress(e) -> None:
        if e.kind in ("note", "warning", "point"):
            text = e.text or (f"{e.record.model} b{e.record.batch_size}: {e.record.status}" if e.record else "")
            print(f"  [{name}] {text}", file=sys.stderr, flush=True)

    print(f"profiling {name} on {dev.spec} ({dev.name}) ...", file=sys.stderr, flush=True)
    profile = runner.run_profile(cfg, progress)
    counter = BareNvml(dev.uuid)
    try:
        return _bare_rows(name, lad, profile, dev, cfg, counter, repeats, window_s)
    finally:
        counter.close()


def _bare_rows(name, lad, profile, dev, cfg, counter, repeats: int, window_s: float) -> list[dict]:
    from greenbench.workloads import build_workload

    rows = []
    for model in lad.models:
        records = [r for r in profile.ok_records() if r.model == model.name]
        if not records:
            continue
        workload = build_workload(lad.workload, **lad.builder_kwargs(model.name), precision=records[0].precision,
                                  device=dev.spec, cache_dir=cfg.cache_dir, allow_download=False)
        try:
            for r in records:
                bare = bare_figures(lad, r, dev.spec, counter, workload, repeats, window_s)
                rows.append(_row(name, r, "request", r.energy_j_per_item, r.energy_j_per_item_cv, bare["request"]))
                if "prefill" in bare:
                    pre = r.samples.get("energy_prefill_j_per_item") or []
                    rows.append(_row(name, r, "prefill", r.energy_prefill_j_per_item, _cv(pre), bare["prefill"]))
        finally:
            workload.close()
    return rows


def _row(ladder: str, r, phase: str, gb: float | None, gb_cv: float | None, bare: dict) -> dict:
    diff = None if gb is None or not bare["j_per_item"] else gb / bare["j_per_item"] - 1
    ok = diff is not None and abs(diff) <= AGREE_TARGET and gb_cv is not None and gb_cv <= CV_TARGET
    return {"ladder": ladder, "model": r.model, "batch_size": r.batch_size, "precision": r.precision,
            "device": r.device, "device_name": r.device_name, "phase": phase,
            "greenbench_j_per_item": gb, "greenbench_cv": gb_cv, "greenbench_method": r.energy_method,
            "bare_j_per_item": bare["j_per_item"], "bare_cv": bare["cv"], "bare_steps": bare["steps"],
            "difference": diff, "flags": r.flags, "meets_targets": ok}


def _fmt(x: float | None, spec: str) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def table(rows: list[dict]) -> str:
    lines = ["| ladder | model | batch | phase | greenbench J/item | CV | bare NVML J/item | bare CV | difference | targets |",
             "|---|---|---:|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(
            f"| {r['ladder']} | {r['model']} | {r['batch_size']} | {r['phase']} | {_fmt(r['greenbench_j_per_item'], '.4g')} "
            f"| {_fmt(r['greenbench_cv'], '.2%')} | {_fmt(r['bare_j_per_item'], '.4g')} | {_fmt(r['bare_cv'], '.2%')} "
            f"| {_fmt(r['difference'], '+.2%')} | {'met' if r['meets_targets'] else 'MISSED'} |")
    met = sum(r["meets_targets"] for r in rows)
    lines.append("")
    lines.append(f"{met} of {len(rows)} rows meet both targets (agreement within {AGREE_TARGET:.0%}, "
                 f"greenbench CV at most {CV_TARGET:.0%}).")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ladder", choices=("vision", "lm", "both"), default="both")
    ap.add_argument("--device", default="cuda:0", help="cuda:N or a GPU UUID (default cuda:0)")
    ap.add_argument("--out", type=Path, default=ROOT / "profiles", help="where profiles and the table go")
    ap.add_argument("--repeats", type=int, default=5, help="repeats per point (greenbench default 5)")
    ap.add_argument("--window", type=float, default=2.0, help="window seconds (greenbench default 2)")
    args = ap.parse_args()
    try:
        import torch

        if not torch.cuda.is_available():
            print("gpu_check: no CUDA GPU visible to torch; run this on a GPU machine", file=sys.stderr)
            return 2
    except ImportError:
        print("gpu_check: torch is not installed", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    names = {"vision": ["gpu-check-vision"], "lm": ["gpu-check-gpt2"],
             "both": ["gpu-check-vision", "gpu-check-gpt2"]}[args.ladder]
    rows: list[dict] = []
    for name in names:
        rows.extend(check_ladder(name, args.device, args.out, args.repeats, args.window))
    text = table(rows)
    print(text)
    stem = args.out / f"gpu-check-{args.ladder}"
    stem.with_suffix(".md").write_text(text + "\n")
    stem.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
    print(f"written: {stem}.md, {stem}.json and the profiles in {args.out}", file=sys.stderr)
    return 0 if rows and all(r["meets_targets"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
