r"""GPU check: greenbench's energy per item held against a bare NVML reference, window by window.

One command, on a machine with an NVIDIA GPU, sized to finish in about 7 minutes on an H100/H200
(nothing is downloaded: random weights, synthetic inputs, MNIST-1D generated locally):

    python benchmarks/gpu_check.py --dry-run       # the plan and its estimated time only (any machine)
    python benchmarks/gpu_check.py                 # the plan, then all three ladders on cuda:0
    python benchmarks/gpu_check.py --ladder vision --repeats 5 --budget-s 600

On this project's lent H200 (no registry there; greenbench runs from the repo root, not installed),
after `bash benchmarks/gpu_wheels.sh` here has put the missing wheels in .whl/, the device command
is (carry [".whl"], timeout_s 540):

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit
    set -o pipefail
    PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py --out $OUT/gpu 2>&1 | tee $OUT/gpu-check.log

(docs/gpu-check.md gives the same command on one line.)

What it does, in order:
1. Prints the plan (ladders, models, batch sizes, phases, repeats, windows) and its estimated
   time with the assumptions behind it; exits 2 if that is over --budget-s (default 420 s).
2. Measures the NVML energy counter itself: the cost of one read (200 reads: median, p99) and its
   update period (spin-reading until it changes, several intervals: median).
3. Profiles each ladder with greenbench's own runner (NVML counter, greenbench's protocol: windows
   of at least 2 s and 20 counter updates). Right after each greenbench window closes, the runner
   calls this script's hook, which runs the bare reference window of the same step: a short
   warm-up, sync, read the counter (nvmlDeviceGetTotalEnergyConsumption), run --ref-multiple times
   as many steps as greenbench's window ran, sync, read again. Plain edges, no tick alignment, no
   tail correction: an independent figure, interleaved with greenbench's windows, never inside one.
4. Writes under --out (default profiles/gpu/) as it goes: gpu-check-reference.jsonl (each reference
   window as it finishes), gpu-check.md and gpu-check.json (the table, rewritten after every row)
   and the runner's profiles (one per ladder, saved after each model). A run killed at any moment
   keeps every finished row. That is 6 files (7 with the log above), for a device whose $OUT
   returns at most 8; MNIST-1D's first-use data and weights go to --cache-dir, under /tmp.

Targets (judged at greenbench's default window settings): greenbench within 2% of the reference
and greenbench's CV over repeats at most 0.5%. The reference's own error is mostly counter
quantisation (up to one ~100 ms tick at each plain edge), so it is pooled over the repeats
(sum J / sum items) and each row shows its standard error and the 95% interval of the
difference: a miss whose interval reaches inside +/-2% may be noise. Exit 0 only when every row
meets both targets. GPU clocks, power limits and other settings are only read, never changed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import re
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # greenbench from this checkout when it is not installed (the device machine)
    sys.path.append(str(ROOT))
AGREE_TARGET = 0.02  # |greenbench / reference - 1|
CV_TARGET = 0.005  # greenbench's CV over repeats
BUDGET_S = 420.0  # 7 minutes on an H100/H200
Z95 = 1.96

# ---------------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Stage:
    """One ladder of the check, narrowed to the models and batch sizes that fit the budget."""

    key: str  # what --ladder calls it
    ladder: str  # its name among the ladders shipped with greenbench
    models: tuple[str, ...] | None = None  # None: every model of the ladder
    batch_sizes: tuple[int, ...] | None = None  # None: every batch size
    zoo: Path | None = None  # None: the shipped ladders only (a user zoo cannot change the check)


# Chosen to fit 7 minutes with room to spare: short and long steps of each kind. ResNet-18 at batch
# 32 is where reading the counter inside the loop once cost +70%; ResNet-152 at 256 is the heaviest
# step; GPT-2 124M at batch 1 and 16, with its prefill; MNIST-1D at batch 1, steps of tens of
# microseconds, the hardest case for the protocol. --full: every model and batch of the ladders.
STAGES = (
    Stage("vision", "gpu-check-vision", ("resnet18", "resnet152"), (32, 256)),
    Stage("gpt2", "gpu-check-gpt2", ("gpt2-124m",), (1, 16)),
    Stage("mnist1d", "mnist1d", ("linear", "cnn-16"), (1,)),
)


@dataclass(frozen=True)
class Settings:
    repeats: int = 3  # greenbench's minimum (its default is 5)
    warmup_s: float = 0.25  # greenbench's warm-up before each of its windows (default 0.5)
    idle_s: float = 5.0  # greenbench's idle baselines: cold per ladder, warm after each model (default)
    ref_multiple: int = 2  # reference window = this many times greenbench's steps (about 4 s)
    ref_warmup_s: float = 0.2  # before each reference window: at least one counter tick of load
    period_s: float = 0.1  # NVML counter update period: assumed until measured

    def protocol(self):
        from greenbench.measure.protocol import Protocol

        # min_window_s (2 s) and min_counter_updates (20) stay at greenbench's defaults
        return Protocol(repeats=self.repeats, warmup_s=self.warmup_s, idle_s=self.idle_s)

    def window_s(self) -> float:
        """greenbench's window: at least 2 s and 20 counter updates (its defaults)."""
        return max(2.0, 20 * self.period_s)


@dataclass
class PlannedStage:
    stage: Stage
    workload: str  # embedded | hf-vision | hf-lm
    models: tuple[str, ...]
    batch_sizes: tuple[int, ...]
    phases: tuple[str, ...]
    output_tokens: int | None = None


def plan_stages(stages, full: bool = False) -> list[PlannedStage]:
    """The ladders as they will run (models checked against the zoo; raises ZooError)."""
    from greenbench.measure import zoo as zoo

    planned = []
    for st in stages:
        lad = zoo.get_ladder(st.ladder, st.zoo)
        models = tuple(m.name for m in lad.models) if full or not st.models else st.models
        batches = tuple(lad.batch_sizes) if full or not st.batch_sizes else st.batch_sizes
        for m in models:
            lad.model(m)
        lm = lad.workload == "hf-lm"
        planned.append(PlannedStage(st, lad.workload, models, batches, ("request", "prefill") if lm else ("request",),
                                    lad.generation.output_tokens if lm else None))
    return planned


# ------------------------------------------------------------------------------ time model
# Assumed on an H100/H200 (bf16, torch eager), from docs/measurement.md where measured there.
# The window and idle part of the model matches greenbench's runner on the simulated H200 of
# tests/simgpu.py within 4% (tests/test_gpu_check.py holds it to 10%); start-up and builds are guesses.
ASSUME = {
    "startup_s": 25.0,  # cold start: import torch, transformers, greenbench; CUDA context; cuBLAS/cuDNN
    "probe_s": 3.0,  # 200 counter reads at ~2 ms, 6 update periods, greenbench's own period probe
    # greenbench's edges: a tick and one settling tick at the start; at the end the same and one more
    "align_periods": 4.0,
    "event_s": 4e-6,  # per step: greenbench's CUDA-event timestamps, read back after its window
    "save_s": 0.3,  # profile written after each model
    "mnist1d_data_s": 4.0,  # MNIST-1D generated at first use (cached)
}
VISION_STEP_S = {  # per batch; the b256 figures are the measured reference figures
    "resnet18": {1: 0.0015, 32: 0.002, 256: 0.0096},
    "resnet50": {1: 0.004, 32: 0.005, 256: 0.0248},
    "resnet152": {1: 0.011, 32: 0.012, 256: 0.0558},
}
GPT2_TOKEN_S = {"gpt2-124m": 0.008, "gpt2-355m": 0.014, "gpt2-774m": 0.020, "gpt2-1.5b": 0.026}  # HF generate
MNIST1D_STEP_S = 3e-5  # launch-bound: tens of microseconds
BUILD_S = {  # build + first forward; MNIST-1D: first-use training on the host CPU (2.6/4.7/18 s on 2 cores)
    "resnet18": 3, "resnet50": 4, "resnet152": 6,
    "gpt2-124m": 4, "gpt2-355m": 8, "gpt2-774m": 14, "gpt2-1.5b": 25,
    "linear": 3, "mlp-32": 4, "cnn-16": 6, "cnn-32": 10, "cnn-64": 20,
}
EVAL_S = {"hf-vision": 0.5, "hf-lm": 1.0, "embedded": 0.1}  # quality evaluation, per batch size


def assumed_step_s(ps: PlannedStage, model: str, batch: int, phase: str) -> float:
    if ps.workload == "embedded":
        return MNIST1D_STEP_S
    if ps.workload == "hf-lm":
        per_token = GPT2_TOKEN_S.get(model, 0.03) * (1.1 if batch > 1 else 1.0)
        return per_token * (1.5 if phase == "prefill" else ps.output_tokens or 64)
    by_batch = VISION_STEP_S.get(model, VISION_STEP_S["resnet152"])
    near = min(by_batch, key=lambda b: abs(b - batch))
    return by_batch[near] * max(1.0, batch / near) if batch > near else by_batch[near]


def window_pair_s(step_s: float, st: Settings) -> float:
    """One greenbench window and its reference window, as the runner and the hook run them."""
    gb_warm = max(st.warmup_s, 2 * step_s)  # greenbench's warm-up runs at least 2 steps
    gb_win = max(st.window_s() + step_s / 2, 3 * step_s)  # >= 3 steps; ends on the step after 2 s
    gb = gb_warm + gb_win + ASSUME["align_periods"] * st.period_s + gb_win / step_s * ASSUME["event_s"]
    ref = max(st.ref_warmup_s, step_s) + 0.5 * st.period_s + st.ref_multiple * gb_win  # + phase spread
    return gb + ref


@dataclass
class Estimate:
    total_s: float
    lines: list[tuple[str, float]] = field(default_factory=list)


def estimate(planned: list[PlannedStage], st: Settings) -> Estimate:
    est = Estimate(0.0)

    def add(label: str, seconds: float) -> None:
        est.lines.append((label, seconds))
        est.total_s += seconds

    add("start-up, cold: imports, CUDA context, cuBLAS/cuDNN handles", ASSUME["startup_s"])
    add("NVML probes: read cost (200 reads), update period", ASSUME["probe_s"])
    idle_s = st.idle_s + ASSUME["align_periods"] * st.period_s
    for ps in planned:
        # greenbench's idle baselines: a cold one before the ladder, a warm one after each model
        add(f"{ps.stage.key}: idle baselines, 1 cold + {len(ps.models)} warm", idle_s * (1 + len(ps.models)))
        setup = sum(BUILD_S.get(m, 10) + EVAL_S[ps.workload] * len(ps.batch_sizes) + ASSUME["save_s"]
                    for m in ps.models)
        if ps.workload == "embedded":
            setup += ASSUME["mnist1d_data_s"]
        add(f"{ps.stage.key}: model builds{' and first-use training' if ps.workload == 'embedded' else ''}, "
            "evaluation", setup)
        windows = sum(st.repeats * window_pair_s(assumed_step_s(ps, m, b, ph), st)
                      for m in ps.models for b in ps.batch_sizes for ph in ps.phases)
        add(f"{ps.stage.key}: {len(ps.models) * len(ps.batch_sizes)} points x {len(ps.phases)} phase(s) "
            f"x {st.repeats} repeats (greenbench + reference windows)", windows)
    return est


def reference_se(st: Settings) -> float:
    """Expected relative standard error of the pooled reference from counter quantisation alone:
    each plain edge misses a uniform part of one tick, so a window's error has sd
    period / sqrt(6) of its power, and pooling k windows of T seconds gives period / (T sqrt(6 k))."""
    t_ref = st.ref_multiple * st.window_s()
    return st.period_s / (t_ref * math.sqrt(6 * st.repeats))


def plan_text(planned: list[PlannedStage], st: Settings, est: Estimate, budget_s: float) -> str:
    w = st.window_s()
    lines = ["greenbench GPU check: the plan", ""]
    for ps in planned:
        lines.append(f"  {ps.stage.key:<8} ladder {ps.stage.ladder} ({ps.workload}): models {', '.join(ps.models)}; "
                     f"batch sizes {', '.join(map(str, ps.batch_sizes))}; phases {', '.join(ps.phases)}")
    n_rows = sum(len(ps.models) * len(ps.batch_sizes) * len(ps.phases) for ps in planned)
    lines += [
        "",
        f"  greenbench windows: at least {w:g} s and 20 counter updates (defaults), warm-up {st.warmup_s:g} s, "
        f"{st.repeats} repeats; idle baselines of {st.idle_s:g} s (one cold per ladder, one warm after each model)",
        f"  reference windows: after each greenbench window, warm-up {st.ref_warmup_s:g} s (at least one step), "
        f"then {st.ref_multiple} x greenbench's step count (about {st.ref_multiple * w:g} s), plain edges",
        f"  reference's expected standard error (counter quantisation, pooled over {st.repeats} windows): "
        f"{reference_se(st):.2%}",
        f"  targets: agreement within {AGREE_TARGET:.0%}, greenbench CV at most {CV_TARGET:.1%}; {n_rows} rows",
        "",
        "  estimated time:",
    ]
    lines += [f"    {s:6.1f} s  {label}" for label, s in est.lines]
    verdict = "within" if est.total_s <= budget_s else "OVER"
    lines += [
        f"    {est.total_s:6.1f} s  total ({est.total_s / 60:.1f} min; {verdict} the budget of {budget_s:g} s)",
        "",
        "  assumptions:",
        f"    NVML counter update period {st.period_s * 1000:g} ms (re-estimated once measured); greenbench's "
        f"tick alignment about {ASSUME['align_periods']:g} periods per window",
        "    greenbench's warm-up runs at least 2 steps and its window at least 3; "
        "the reference's warm-up at least 1 step",
        "    step times on an H100/H200 (bf16, eager): ResNet-18 b32/b256 2/9.6 ms, ResNet-152 b32/b256 12/55.8 ms, "
        f"GPT-2 124M {GPT2_TOKEN_S['gpt2-124m'] * 1000:g} ms per generated token, MNIST-1D {MNIST1D_STEP_S * 1e6:g} us",
        f"    start-up {ASSUME['startup_s']:g} s cold; builds "
        + ", ".join(f"{m} {BUILD_S.get(m, 10)} s" for ps in planned for m in ps.models)
        + " (MNIST-1D: first-use training on the host CPU, cached under --cache-dir)",
        "    the window and idle part matches greenbench's runner on the simulated H200 of tests/simgpu.py within 4%",
    ]
    return "\n".join(_wrap(line) for line in lines)


def _wrap(line: str, width: int = 80) -> str:
    """A plan line folded at 80 columns, continuation lines indented under the text."""
    if len(line) <= width:
        return line
    indent = " " * (len(line) - len(line.lstrip()) + 2)
    return textwrap.fill(line, width, subsequent_indent=indent, break_on_hyphens=False)


# ------------------------------------------------------------------ bare NVML and references

def now() -> float:
    """greenbench's clock (``perf_counter`` seconds; a simulated GPU replaces it)."""
    from greenbench.meters import clock

    return clock.now()


class BareNvml:
    """The NVML total-energy counter of one GPU, read with nothing around it (mJ -> J).
    ``nvml``: the pynvml module (tests pass tests/fakes.py's FakeNvml)."""

    def __init__(self, uuid: str, nvml: Any = None):
        if nvml is None:
            import pynvml as nvml
        nvml.nvmlInit()
        self.nvml = nvml
        self.handle = nvml.nvmlDeviceGetHandleByUUID(uuid)

    def joules(self) -> float:
        return self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) / 1000.0

    def close(self) -> None:
        self.nvml.nvmlShutdown()


def probe_counter(counter: BareNvml, reads: int = 200, intervals: int = 6, timeout_s: float = 3.0,
                  clock: Callable[[], float] | None = None) -> dict:
    """The cost of one counter read (median and p99 of ``reads``) and its update period (the
    median of ``intervals`` intervals between changes, each dated by the middle of the two reads
    around it)."""
    clock = clock or now
    costs = []
    for _ in range(reads):
        t0 = clock()
        counter.joules()
        costs.append(clock() - t0)
    costs.sort()
    changes: list[float] = []
    last, before = counter.joules(), clock()
    deadline = before + timeout_s
    while len(changes) <= intervals and before < deadline:
        value, t = counter.joules(), clock()
        if value != last:
            changes.append((before + t) / 2)
            last = value
        before = t
    gaps = [b - a for a, b in itertools.pairwise(changes)]
    return {
        "read_cost_median_ms": statistics.median(costs) * 1000,
        "read_cost_p99_ms": costs[min(len(costs) - 1, math.ceil(0.99 * len(costs)) - 1)] * 1000,
        "reads": reads,
        "update_period_s": statistics.median(gaps) if gaps else None,
        "update_intervals": len(gaps),
    }


def reference_window(step: Callable[[], Any], sync: Callable[[], None], counter: BareNvml, steps: int,
                     warmup_s: float) -> dict:
    """``steps`` calls of ``step`` between two plain counter reads, each right after a sync.

    The warm-up (at least one step, ``warmup_s`` long) loads the GPU before the first read: a
    plain read returns the counter as of its last tick, so the part of a tick before the first
    read is charged to the window and must be at the same power as the work."""
    from greenbench.measure.protocol import warm_up  # chunks that end in a sync (see there)

    warm_up(step, sync, warmup_s, min_steps=1)
    e0 = counter.joules()
    t0 = now()
    for _ in range(steps):
        step()
    sync()
    t1 = now()
    e1 = counter.joules()
    return {"steps": steps, "joules": e1 - e0, "seconds": t1 - t0}


class ReferenceHook:
    """``RunConfig.after_window``: a reference window of the same step after each greenbench window."""

    def __init__(self, counter: BareNvml, results: Results, ladder: str, multiple: int, warmup_s: float,
                 phase_jitter_s: float = 0.1, seed: int = 0):
        self.counter, self.results, self.ladder = counter, results, ladder
        self.multiple, self.warmup_s = multiple, warmup_s
        # A plain read's error is where it falls within a counter tick. greenbench's window ends
        # just after a tick, so a fixed warm-up would start every reference at the same phase and
        # bias it (about -1% at 4 s); a warm-up longer by up to one period spreads the phase.
        self.phase_jitter_s = phase_jitter_s
        self._rng = random.Random(f"reference:{seed}:{ladder}")
        self.windows: dict[tuple, list[dict]] = {}  # (model, precision, batch, device, phase) -> windows

    def __call__(self, done) -> None:
        key = (done.model, done.precision, done.batch_size, done.device, done.phase)
        gb = done.trial.readings[0]
        entry = {"ladder": self.ladder, "model": done.model, "precision": done.precision,
                 "batch_size": done.batch_size, "device": done.device, "phase": done.phase,
                 "repeat": len(self.windows.get(key, [])),
                 "greenbench_steps": done.trial.steps, "greenbench_window_s": done.trial.window_s,
                 "greenbench_joules": gb.energy_j, "greenbench_counter_updates": gb.counter_updates}
        try:
            warmup_s = self.warmup_s + self._rng.uniform(0.0, self.phase_jitter_s)
            entry.update(reference_window(done.step, done.sync, self.counter,
                                          self.multiple * done.trial.steps, warmup_s))
        except Exception as e:  # noqa: BLE001 -- recorded; the row says there is no reference
            entry.update(steps=None, joules=None, seconds=None, error=f"{type(e).__name__}: {e}")
        self.windows.setdefault(key, []).append(entry)
        self.results.add_reference(entry)
        if entry.get("joules") is not None and entry["steps"]:
            items = entry["steps"] * done.batch_size
            print(f"    reference {done.model} b{done.batch_size} {done.phase}: {entry['steps']} steps in "
                  f"{entry['seconds']:.2f} s, {entry['joules'] / items:.4g} J/item", file=sys.stderr, flush=True)


# -------------------------------------------------------------------------- rows and verdicts


def coefficient_of_variation(values: list[float]) -> float | None:
    if len(values) < 2 or statistics.fmean(values) == 0:
        return None
    return statistics.stdev(values) / statistics.fmean(values)


def pooled_reference(windows: list[dict], batch: int, period_s: float) -> dict:
    """Sum J / sum items over a point's reference windows, with its CV and standard error: the
    larger of the empirical one (CV / sqrt(k)) and counter quantisation's (each edge misses a
    uniform part of one tick: sd power x period / sqrt(6) per window)."""
    ok = [w for w in windows if w.get("joules") is not None and w["joules"] > 0 and w["steps"]]
    if not ok:
        return {"j_per_item": None, "cv": None, "se": None, "windows": 0, "steps": None,
                "error": next((w.get("error") for w in windows if w.get("error")), "no reference window")}
    joules = sum(w["joules"] for w in ok)
    per_item = [w["joules"] / (w["steps"] * batch) for w in ok]
    cv = coefficient_of_variation(per_item)
    se_q = math.sqrt(sum((w["joules"] / w["seconds"] * period_s) ** 2 / 6 for w in ok)) / joules
    se = max(se_q, cv / math.sqrt(len(ok)) if cv is not None else 0.0)
    return {"j_per_item": joules / sum(w["steps"] * batch for w in ok), "cv": cv, "se": se,
            "se_quantisation": se_q, "windows": len(ok), "steps": ok[0]["steps"],
            "seconds": statistics.fmean(w["seconds"] for w in ok)}


def make_row(ladder: str, r, phase: str, ref: dict) -> dict:
    """One row: greenbench's figure and CV beside the reference's, the difference and its 95%
    interval, and the verdict against the targets."""
    if phase == "prefill":
        gb, samples = r.energy_prefill_j_per_item, (r.samples.get("energy_prefill_j_per_item") or [])
        gb_cv = coefficient_of_variation(samples)
    else:
        gb, gb_cv, samples = r.energy_j_per_item, r.energy_j_per_item_cv, (r.samples.get("energy_j_per_item") or [])
    diff = ci = None
    if gb is not None and ref.get("j_per_item"):
        diff = gb / ref["j_per_item"] - 1
        gb_se = gb_cv / math.sqrt(len(samples)) if gb_cv is not None and samples else 0.0
        half = Z95 * (1 + diff) * math.hypot(gb_se, ref["se"])
        ci = (diff - half, diff + half)
    agree_ok = diff is not None and abs(diff) <= AGREE_TARGET + 1e-12  # 1.02 / 1 - 1 is 0.02 plus a bit
    cv_ok = gb_cv is not None and gb_cv <= CV_TARGET + 1e-12
    why = []
    if r.status != "ok":
        why.append(f"{r.status}: {r.error}")
    elif diff is None:
        why.append("no greenbench figure" if gb is None else f"no reference: {ref.get('error')}")
    else:
        if not agree_ok:
            noise = ci[0] <= AGREE_TARGET and ci[1] >= -AGREE_TARGET
            why.append(f"agreement {diff:+.2%}" + (" (95% interval reaches the target: may be noise)" if noise else ""))
        if not cv_ok:
            why.append(f"CV {gb_cv:.2%}" if gb_cv is not None else "no CV")
        if ci[1] - ci[0] > 2 * AGREE_TARGET:
            why.append("interval wider than the target: raise --ref-multiple or --repeats")
        if samples and ref["windows"] < len(samples):
            why.append(f"only {ref['windows']} of {len(samples)} reference windows usable (see the log)")
    return {
        "ladder": ladder, "model": r.model, "batch_size": r.batch_size, "precision": r.precision,
        "device": r.device, "device_name": r.device_name, "phase": phase, "status": r.status,
        "greenbench_j_per_item": gb, "greenbench_cv": gb_cv, "greenbench_repeats": len(samples),
        "greenbench_method": r.energy_method, "greenbench_window_s": r.window_s,
        "greenbench_counter_updates_min": r.counter_updates_min,
        "greenbench_update_period_s": getattr(r, "counter_update_period_s", None),
        "reference_j_per_item": ref.get("j_per_item"), "reference_cv": ref.get("cv"),
        "reference_se": ref.get("se"), "reference_windows": ref.get("windows"),
        "reference_steps": ref.get("steps"), "reference_window_s": ref.get("seconds"),
        "difference": diff, "difference_ci95": list(ci) if ci else None,
        "flags": list(r.flags), "meets_targets": bool(agree_ok and cv_ok and r.status == "ok"),
        "why": "; ".join(why),
    }


def _fmt(x: float | None, spec: str) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def summary_line(rows: list[dict]) -> str:
    met = sum(r["meets_targets"] for r in rows)
    return (f"{met} of {len(rows)} rows meet both targets (agreement within {AGREE_TARGET:.0%}, "
            f"greenbench CV at most {CV_TARGET:.1%}).")


def table(rows: list[dict], meta: dict | None = None, complete: bool = True) -> str:
    meta = meta or {}
    lines = ["# greenbench GPU check", ""]
    for key, text in meta.get("header", []):
        lines.append(f"- {key}: {text}")
    if meta.get("header"):
        lines.append("")
    lines += ["| ladder | model | batch | phase | greenbench J/item | CV | reference J/item | ref CV | ref SE "
              "| difference [95% CI] | verdict |",
              "|---|---|---:|---|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        ci = r["difference_ci95"]
        diff = _fmt(r["difference"], "+.2%") + (f" [{ci[0]:+.2%}, {ci[1]:+.2%}]" if ci else "")
        verdict = "met" if r["meets_targets"] else f"MISSED: {r['why']}"
        lines.append(
            f"| {r['ladder']} | {r['model']} | {r['batch_size']} | {r['phase']} "
            f"| {_fmt(r['greenbench_j_per_item'], '.4g')} | {_fmt(r['greenbench_cv'], '.2%')} "
            f"| {_fmt(r['reference_j_per_item'], '.4g')} | {_fmt(r['reference_cv'], '.2%')} "
            f"| {_fmt(r['reference_se'], '.2%')} | {diff} | {verdict} |")
    lines += ["", summary_line(rows) if complete else summary_line(rows) + " (so far: the run is not finished)"]
    return "\n".join(lines)


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make the table private
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Results:
    """The check's files under ``out``: the reference log (appended), the table (rewritten)."""

    def __init__(self, out: Path, meta: dict | None = None):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.log = self.out / "gpu-check-reference.jsonl"
        self.md, self.json = self.out / "gpu-check.md", self.out / "gpu-check.json"
        self.meta = meta or {}
        self.rows: list[dict] = []
        self.complete = False
        self.log.write_text("")  # a fresh log for a fresh run
        self.write()

    def add_reference(self, entry: dict) -> None:
        with self.log.open("a") as f:
            f.write(json.dumps({"utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **entry}) + "\n")

    def add_row(self, row: dict) -> None:
        self.rows.append(row)
        self.write()

    def write(self, complete: bool | None = None) -> None:
        if complete is not None:
            self.complete = complete
        doc = {"meta": {k: v for k, v in self.meta.items() if k != "header"}, "complete": self.complete,
               "targets": {"agreement": AGREE_TARGET, "greenbench_cv": CV_TARGET},
               "rows": self.rows, "rows_met": sum(r["meets_targets"] for r in self.rows),
               "summary": summary_line(self.rows)}
        _atomic_write(self.json, json.dumps(doc, indent=1) + "\n")
        _atomic_write(self.md, table(self.rows, self.meta, self.complete) + "\n")


# ---------------------------------------------------------------------------------- running

# transformers ResNet configs with torchvision's shapes: used only when torchvision is missing.
_RESNET_CONFIGS = {
    "resnet18": {"layer_type": "basic", "depths": [2, 2, 2, 2], "hidden_sizes": [64, 128, 256, 512]},
    "resnet50": {"layer_type": "bottleneck", "depths": [3, 4, 6, 3], "hidden_sizes": [256, 512, 1024, 2048]},
    "resnet152": {"layer_type": "bottleneck", "depths": [3, 8, 36, 3], "hidden_sizes": [256, 512, 1024, 2048]},
}


def ladder_for_check(name: str, zoo_path: Path | None = None):
    from greenbench.measure import zoo as zoo

    lad = zoo.get_ladder(name, zoo_path)
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


def run_stage(ps: PlannedStage, device: str, st: Settings, counter: BareNvml, results: Results, *,
              cache_dir: Path, meter: str = "nvml", period_s: float | None = None, protocol=None):
    """One ladder through greenbench's runner, with the reference hook; rows as points finish.
    ``meter`` and ``protocol`` are greenbench's (tests: "fake" and short windows)."""
    from greenbench.carbon import intensity as carbon
    from greenbench.measure import devices as devices
    from greenbench.measure import runner as runner

    lad = ladder_for_check(ps.stage.ladder, ps.stage.zoo)
    dev = devices.resolve(device)
    slug = re.sub(r"[^a-z0-9._-]+", "-", dev.name.lower()).strip("-")  # names the device's $OUT takes back
    period = period_s or st.period_s
    # the reference's warm-up must cover the counter tick before its first read (see reference_window)
    hook = ReferenceHook(counter, results, lad.name, st.ref_multiple, max(st.ref_warmup_s, 1.5 * period),
                         phase_jitter_s=period)

    def on_event(e) -> None:
        if e.kind == "point" and e.record is not None:
            r = e.record
            for phase in ps.phases:
                ref = pooled_reference(hook.windows.get((r.model, r.precision, r.batch_size, r.device, phase), []),
                                       r.batch_size, period)
                row = make_row(lad.name, r, phase, ref)
                results.add_row(row)
                met = "met" if row["meets_targets"] else "MISSED " + row["why"]
                print(f"  row: {r.model} b{r.batch_size} {phase}: "
                      f"greenbench {_fmt(row['greenbench_j_per_item'], '.4g')} "
                      f"(CV {_fmt(row['greenbench_cv'], '.2%')}), "
                      f"reference {_fmt(row['reference_j_per_item'], '.4g')}, "
                      f"difference {_fmt(row['difference'], '+.2%')}: {met}",
                      file=sys.stderr, flush=True)
        elif e.kind in ("note", "warning", "flag"):
            print(f"  [{ps.stage.key}] {e.kind}: {e.text}" + (f" ({e.code}: {e.fix})" if e.code else ""),
                  file=sys.stderr, flush=True)
        elif e.kind == "window":
            print(f"  [{ps.stage.key}] window {e.done}/{e.total}: {e.text}", file=sys.stderr, flush=True)

    cfg = runner.RunConfig(
        ladder=lad, out_path=results.out / f"{lad.name}-{slug}.json", protocol=protocol or st.protocol(),
        intensity=carbon.static_intensity(), cache_dir=cache_dir, meter=meter,
        models=ps.models, batch_sizes=ps.batch_sizes, devices=(dev.spec,), force=True, parallel=False,
        after_window=hook,
    )
    print(f"profiling {lad.name} on {dev.spec} ({dev.name}) ...", file=sys.stderr, flush=True)
    return runner.run_profile(cfg, on_event)


def gpu_facts(counter: BareNvml) -> dict:
    """Read-only facts of the GPU (nothing is set)."""
    nvml, h = counter.nvml, counter.handle
    facts: dict[str, Any] = {}
    for key, call in [("name", lambda: nvml.nvmlDeviceGetName(h)), ("uuid", lambda: nvml.nvmlDeviceGetUUID(h)),
                      ("driver", lambda: nvml.nvmlSystemGetDriverVersion()),
                      ("power_limit_w", lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(h) / 1000),
                      ("sm_clock_mhz", lambda: nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_SM)),
                      ("sm_clock_max_mhz", lambda: nvml.nvmlDeviceGetMaxClockInfo(h, nvml.NVML_CLOCK_SM))]:
        try:
            value = call()
            facts[key] = value.decode() if isinstance(value, bytes) else value
        except Exception:  # noqa: BLE001 -- a fact we cannot read is left out
            pass
    return facts


def greenbench_meter_facts(device: str, uuid: str) -> dict:
    """greenbench's own NvmlMeter: its update period and, where this greenbench has it, read cost."""
    from greenbench.meters import NvmlMeter

    meter = NvmlMeter(device, uuid=uuid)
    try:
        out: dict[str, Any] = {"update_period_s": meter.update_period_s()}
        read_cost = getattr(meter, "read_cost_s", None)
        out["read_cost_s"] = read_cost() if callable(read_cost) else None
        return out
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}"}
    finally:
        meter.close()


def _ms(x: float | None) -> str:
    return "—" if x is None else f"{x * 1000:.2f} ms"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="print the plan and its estimated time, then exit")
    ap.add_argument("--ladder", action="append", choices=[s.key for s in STAGES],
                    help="only these ladders (repeatable; default all three)")
    ap.add_argument("--full", action="store_true", help="every model and batch size of the ladders (over budget)")
    ap.add_argument("--device", default="cuda:0", help="cuda:N or a GPU UUID (default cuda:0)")
    ap.add_argument("--out", type=Path, default=ROOT / "profiles" / "gpu", help="output folder (default profiles/gpu/)")
    ap.add_argument("--cache-dir", type=Path,
                    default=Path(os.environ.get("GREENBENCH_CACHE")
                                 or Path(tempfile.gettempdir()) / "greenbench-gpu-check"),
                    help="MNIST-1D data and trained weights (default $GREENBENCH_CACHE or /tmp/greenbench-gpu-check)")
    d = Settings()
    ap.add_argument("--repeats", type=int, default=d.repeats,
                    help=f"repeats per point, at least 3 (default {d.repeats})")
    ap.add_argument("--warmup", type=float, default=d.warmup_s, help=f"greenbench's warm-up, s (default {d.warmup_s})")
    ap.add_argument("--idle", type=float, default=d.idle_s, help=f"idle baseline per ladder, s (default {d.idle_s})")
    ap.add_argument("--ref-multiple", type=int, default=d.ref_multiple,
                    help=f"reference steps = this x greenbench's (default {d.ref_multiple})")
    ap.add_argument("--ref-warmup", type=float, default=d.ref_warmup_s,
                    help=f"warm-up before each reference window, s (default {d.ref_warmup_s})")
    ap.add_argument("--budget-s", type=float, default=BUDGET_S,
                    help=f"exit 2 if the estimate is over (default {BUDGET_S:g})")
    args = ap.parse_args(argv)
    t_start = time.monotonic()
    if args.repeats < 3 or args.ref_multiple < 1:
        ap.error("--repeats must be at least 3 and --ref-multiple at least 1")

    st = Settings(args.repeats, args.warmup, args.idle, args.ref_multiple, args.ref_warmup)
    stages = [s for s in STAGES if not args.ladder or s.key in args.ladder]
    planned = plan_stages(stages, full=args.full)
    est = estimate(planned, st)
    print(plan_text(planned, st, est, args.budget_s), flush=True)
    if est.total_s > args.budget_s:
        print(f"gpu_check: the estimate ({est.total_s:.0f} s) is over --budget-s {args.budget_s:g}: "
              "narrow the plan (--ladder, --repeats) or raise the budget", file=sys.stderr)
        return 2
    if args.dry_run:
        return 0

    return check(args, planned, st, est, t_start)


def header_lines(dev, facts: dict, probe: dict, gbm: dict, st: Settings, est: Estimate) -> list[tuple[str, str]]:
    """The table's header: the GPU (read only), the counter as measured, the protocol, the targets."""
    gb_cost = gbm.get("read_cost_s")
    return [
        ("device", f"{facts.get('name', dev.name)} ({facts.get('uuid', dev.uuid)}), {dev.spec}, driver "
                   f"{facts.get('driver', '?')}, power limit {facts.get('power_limit_w', '?')} W, SM clock "
                   f"{facts.get('sm_clock_mhz', '?')} of {facts.get('sm_clock_max_mhz', '?')} MHz "
                   "at start (read only)"),
        ("NVML counter", f"read cost median {probe['read_cost_median_ms']:.2f} ms, "
                         f"p99 {probe['read_cost_p99_ms']:.2f} ms "
                         f"({probe['reads']} reads); update period median {_ms(probe['update_period_s'])} "
                         f"({probe['update_intervals']} intervals)"),
        ("greenbench's meter", f"update period {_ms(gbm.get('update_period_s'))}, read cost "
                               f"{_ms(gb_cost) if gb_cost is not None else 'not exposed by this greenbench'}"
                               + (f" ({gbm['error']})" if gbm.get("error") else "")),
        ("protocol", f"greenbench windows >= {st.window_s():g} s and 20 counter updates, warm-up {st.warmup_s:g} s, "
                     f"{st.repeats} repeats, idle {st.idle_s:g} s; reference {st.ref_multiple} x greenbench's steps, "
                     f"warm-up {st.ref_warmup_s:g} s, plain edges"),
        ("targets", f"agreement within {AGREE_TARGET:.0%}, greenbench CV at most {CV_TARGET:.1%}"),
        ("estimate", f"{est.total_s:.0f} s planned"),
    ]


def check(args, planned: list[PlannedStage], st: Settings, est: Estimate, t_start: float) -> int:
    """The run on the GPU: probe the counter, then every ladder with its reference windows."""
    try:
        import torch
    except ImportError:
        print("gpu_check: torch is not installed", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU visible to torch; run this on a GPU machine (--dry-run works anywhere)",
              file=sys.stderr)
        return 2
    from greenbench.measure import devices as devices

    dev = devices.resolve(args.device)
    if not dev.is_cuda or not dev.uuid:
        print(f"gpu_check: {args.device} is not a CUDA GPU with a UUID here", file=sys.stderr)
        return 2
    counter = BareNvml(dev.uuid)  # greenbench gives it as NVML spells it ("GPU-...")
    errors: list[str] = []
    try:
        probe, facts = probe_counter(counter), gpu_facts(counter)
        gbm = greenbench_meter_facts(dev.spec, dev.uuid)
        period = probe["update_period_s"] or st.period_s
        print(f"NVML: read cost median {probe['read_cost_median_ms']:.2f} ms, p99 {probe['read_cost_p99_ms']:.2f} ms "
              f"({probe['reads']} reads); update period {_ms(probe['update_period_s'])} "
              f"({probe['update_intervals']} intervals)", flush=True)
        if abs(period - st.period_s) > 0.2 * st.period_s:  # windows of 20 updates get longer
            est = estimate(planned, Settings(st.repeats, st.warmup_s, st.idle_s, st.ref_multiple, st.ref_warmup_s,
                                             period))
            print(f"re-estimated with the measured update period: {est.total_s:.0f} s", flush=True)
            if est.total_s > args.budget_s:
                print(f"gpu_check: over --budget-s {args.budget_s:g} at this update period", file=sys.stderr)
                return 2
        meta = {"header": header_lines(dev, facts, probe, gbm, st, est), "device": facts | {"spec": dev.spec},
                "nvml_probe": probe, "greenbench_meter": gbm, "settings": st.__dict__ | {"window_s": st.window_s()},
                "plan": [{"ladder": ps.stage.ladder, "models": ps.models, "batch_sizes": ps.batch_sizes,
                          "phases": ps.phases} for ps in planned], "estimate_s": est.total_s}
        results = Results(args.out, meta)
        try:
            for ps in planned:
                try:
                    run_stage(ps, dev.spec, st, counter, results, cache_dir=args.cache_dir, period_s=period)
                except Exception as e:  # noqa: BLE001 -- one ladder's failure must not cost the others
                    import traceback

                    traceback.print_exc()
                    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
                    errors.append(f"{ps.stage.key}: {type(e).__name__}: {first}")
                    results.meta["header"].append(("error", errors[-1]))
                    results.meta["errors"] = errors
                    results.write()
        except KeyboardInterrupt:
            results.write(complete=False)
            print(f"interrupted: the finished rows are in {results.md}", file=sys.stderr)
            return 130
        elapsed = time.monotonic() - t_start
        results.meta["header"].append(("elapsed", f"{elapsed:.0f} s from the plan to the last row (imports before "
                                                  f"it not counted; estimate {est.total_s:.0f} s)"))
        results.meta["elapsed_s"] = elapsed
        results.write(complete=True)
    finally:
        counter.close()
    print()
    print(table(results.rows, results.meta))
    print(f"written: {results.md}, {results.json}, {results.log} and the profiles in {results.out}", file=sys.stderr)
    for line in errors:
        print(f"gpu_check: ladder failed: {line}", file=sys.stderr)
    return 0 if results.rows and not errors and all(r["meets_targets"] for r in results.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
