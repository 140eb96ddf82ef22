"""greenbench's load beside vLLM's own client (``vllm bench serve``) on one vLLM server.

Both clients send the same number of requests (``--num-prompts``) at the same concurrency, prompt
and output lengths to the same server, in alternating order (round 1: vLLM then greenbench, round
2: greenbench then vLLM, ...), each round with fresh prompts (seeded per round) so the prefix
cache favours neither. The table gives each figure from both clients (mean over rounds), their
ratio, and a verdict against the targets: output throughput and TPOT within 5% of vLLM's client,
TTFT within 10%. A verdict is "inconclusive" where the spread between one client's rounds is wider
than the ratio's gap to the target's edge. On a small busy machine a run can see most responses
arrive whole, in one burst (the server's API process, or the client, was not scheduled while the
tokens were generated): its TTFT is then nearly the request's whole latency and its TPOT the
client's own parsing time, which compares neither client with the other. Each run says the share
of its responses that came in one burst (all tokens within 1 ms of the first) and, for a server the
script started, how many other vLLM engines ran on the machine as the run started and ended (their
``VLLM::Worker`` processes; vLLM's CPU build pins its worker to a core, so a second engine shares
it); the verdict
is taken over each client's runs in which the server streamed to it (under half the responses in
one burst, no other engine), where each client has two or more, else over every run.

How each client defines each figure (vLLM 0.32: vllm/benchmarks/serve.py ``calculate_metrics`` and
``lib/endpoint_request_func.py`` ``async_request_openai_completions``; greenbench:
``serving/load.py`` ``RequestTrace`` and ``measure/records.py`` ``build_served_record``):

* the request's clock starts at ``time.perf_counter()`` just before the POST, after the client's
  concurrency slot is taken, in both;
* TTFT: vLLM, the first SSE message with ``choices`` (its text may be empty); greenbench, the first
  chunk that carries text or a rising ``completion_tokens`` count. The same chunk on vLLM's
  completions stream;
* TPOT: ``(end - first token) / (output tokens - 1)`` in both, output tokens from the final usage
  chunk. vLLM's end is the last message with ``choices``; greenbench's is ``[DONE]`` (it follows the
  usage chunk). The table also gives greenbench's TPOT with vLLM's end (``tpot_last_chunk_p50_ms``);
  the two differ by the final usage chunk's transit spread over the tokens;
* p50 is ``np.median`` in vLLM, ``np.percentile(..., 50)`` in greenbench: the same number;
* output throughput: vLLM, all output tokens over the benchmark's wall time (from before the first
  request to after the last); here greenbench's figure is computed the same way over its run of
  ``--num-prompts`` requests (last ``[DONE]`` minus first send), not from windows: a profile's
  tokens/s is the tokens streamed inside steady-state windows, which no ramp-up or drain dilutes,
  so a profile reads higher than either client's figure here at low request counts.

What differs in the requests: greenbench sends token ids (cut by the server's ``/tokenize``), with
``min_tokens`` = ``max_tokens``, ``ignore_eos``, ``temperature: 0`` and
``stream_options.continuous_usage_stats`` (usage in every chunk, so a chunk that carries several
tokens is counted right); vLLM's client sends text (random token ids decoded, re-encoded to the
length) with ``ignore_eos``, ``repetition_penalty: 1.0`` and usage in the final chunk only.

    python benchmarks/serving_vs_vllm_bench.py                      # builds a tiny Llama, serves it
    python benchmarks/serving_vs_vllm_bench.py --rounds 3 --num-prompts 300 --concurrency 4
    python benchmarks/serving_vs_vllm_bench.py --url http://127.0.0.1:8000/v1 --model MODEL_ID

The environment is vLLM's own (``bash .ci/vllm_env.sh`` builds it; ``--venv`` or
``$GREENBENCH_VLLM_VENV``); a server the script starts (``vllm serve``, CPU settings:
``VLLM_CPU_KVCACHE_SPACE=1``, ``--dtype float32``) is always stopped, on error and Ctrl-C too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from greenbench.serving import server as srv
from greenbench.serving.load import Load, LoadError, LoadSpec, RequestTrace

BUILD = "bash .ci/vllm_env.sh"
# figure -> (label, tolerance as a fraction of vLLM's figure)
TARGETS: dict[str, tuple[str, float]] = {
    "output_tokens_per_s": ("output tokens/s", 0.05),
    "ttft_p50_ms": ("TTFT p50 (ms)", 0.10),
    "tpot_p50_ms": ("TPOT p50 (ms)", 0.05),
}
MET, NOT_MET, INCONCLUSIVE = "met", "NOT met", "inconclusive"
# A response whose tokens all reached the client within this of its first came in one burst: the
# server (or the client) was not scheduled while it was generated, so TTFT is nearly the whole
# request and TPOT the client's own parsing, not the server's streaming.
BURST_S = 0.001
STREAMING_SHARE = 0.5  # a run is "streaming" when fewer than this share of its responses came in one burst
VLLM_BENCH_TIMEOUT_S = 900.0


class BenchError(Exception):
    """Bad input or a run that cannot go on: one line, exit 2."""


# -- figures --------------------------------------------------------------------------------------

@dataclass
class Figures:
    """One client's figures over one run of a fixed number of requests."""

    output_tokens_per_s: float
    ttft_p50_ms: float
    tpot_p50_ms: float
    completed: int
    failed: int
    duration_s: float
    output_tokens: int
    prompt_tokens_mean: float | None = None
    tpot_last_chunk_p50_ms: float | None = None  # greenbench's TPOT ending at the last token chunk (vLLM's end)
    client_cpu_s: float | None = None  # the client's CPU time over its run (greenbench: its load thread)
    other_engines: int | None = None  # most vLLM engines of others seen running on the machine during the run
    burst_share: float | None = None  # requests whose tokens all reached the client within BURST_S of the first


def vllm_figures(doc: Mapping[str, Any]) -> Figures:
    """The figures of a ``vllm bench serve --save-result`` JSON document."""
    need = ("output_throughput", "median_ttft_ms", "median_tpot_ms", "completed", "duration")
    missing = [k for k in need if not isinstance(doc.get(k), (int, float)) or isinstance(doc.get(k), bool)]
    if missing:
        raise BenchError(f"vllm bench result has no {', '.join(missing)}: not a `vllm bench serve` result")
    completed = int(doc["completed"])
    if completed < 1:
        errors = [e for e in doc.get("errors") or [] if e]
        raise BenchError("vllm bench completed no request" + (f": {str(errors[0]).splitlines()[-1]}" if errors else ""))
    total_in = doc.get("total_input_tokens")
    burst = None
    ttfts, latencies, lens = doc.get("ttfts"), doc.get("latencies"), doc.get("output_lens")
    if isinstance(ttfts, list) and isinstance(latencies, list) and isinstance(lens, list):  # --save-detailed
        spans = [lat - ttft for ttft, lat, n in zip(ttfts, latencies, lens, strict=False)
                 if isinstance(n, int) and n > 1 and isinstance(ttft, (int, float)) and isinstance(lat, (int, float))]
        burst = sum(1 for x in spans if x < BURST_S) / len(spans) if spans else None
    return Figures(
        output_tokens_per_s=float(doc["output_throughput"]), ttft_p50_ms=float(doc["median_ttft_ms"]),
        tpot_p50_ms=float(doc["median_tpot_ms"]), completed=completed, failed=int(doc.get("failed") or 0),
        duration_s=float(doc["duration"]), output_tokens=int(doc.get("total_output_tokens") or 0),
        prompt_tokens_mean=float(total_in) / completed if isinstance(total_in, (int, float)) else None,
        burst_share=burst)


def greenbench_figures(traces: Sequence[RequestTrace], client_cpu_s: float | None = None) -> Figures:
    """greenbench's figures over a run of a fixed number of requests, computed as vLLM's client
    computes its own (module docstring): latencies of the requests that completed, throughput as all
    output tokens over the run's wall time (first send to last ``[DONE]``)."""
    ok = [t for t in traces if t.ok and t.done_s is not None]
    if not ok:
        failed = [t for t in traces if t.error]
        raise BenchError("greenbench's load completed no request" + (f": {failed[0].error}" if failed else ""))
    start = min(t.sent_s for t in traces)
    end = max(t.done_s for t in ok if t.done_s is not None)
    tokens = sum(t.output_tokens for t in ok)
    ttft = [t.ttft_s for t in ok if t.ttft_s is not None]
    tpot = [t.tpot_s for t in ok if t.tpot_s is not None]
    last = [(t.chunk_times_s[-1] - t.chunk_times_s[0]) / (t.output_tokens - 1) for t in ok
            if t.output_tokens > 1 and t.chunk_times_s]
    prompts = [t.prompt_tokens for t in ok if t.prompt_tokens is not None]
    spans = [t.chunk_times_s[-1] - t.chunk_times_s[0] for t in ok if t.output_tokens > 1 and t.chunk_times_s]
    return Figures(
        output_tokens_per_s=tokens / (end - start) if end > start else 0.0,
        ttft_p50_ms=float(np.percentile(ttft, 50)) * 1e3 if ttft else math.nan,
        tpot_p50_ms=float(np.percentile(tpot, 50)) * 1e3 if tpot else math.nan,
        completed=len(ok), failed=sum(1 for t in traces if t.error), duration_s=end - start, output_tokens=tokens,
        prompt_tokens_mean=float(np.mean(prompts)) if prompts else None,
        tpot_last_chunk_p50_ms=float(np.percentile(last, 50)) * 1e3 if last else None, client_cpu_s=client_cpu_s,
        burst_share=sum(1 for x in spans if x < BURST_S) / len(spans) if spans else None)


# -- the verdict ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    figure: str
    greenbench: float  # mean over rounds
    vllm: float
    ratio: float | None  # greenbench / vLLM
    tolerance: float
    spread: float | None  # the wider of the two clients' round-to-round range, over its mean
    gap: float | None  # how far the ratio is from the target's edge, | tolerance - |ratio - 1| |
    verdict: str
    why: str = ""


def relative_spread(values: Sequence[float]) -> float | None:
    """(max - min) / mean of one client's rounds; None with fewer than two."""
    if len(values) < 2:
        return None
    mean = float(np.mean(values))
    return math.inf if mean == 0 else (max(values) - min(values)) / abs(mean)


def judge(figure: str, greenbench: Sequence[float], vllm: Sequence[float], tolerance: float) -> Verdict:
    """Met when the ratio of the means is within ``tolerance`` of 1, NOT met when it is outside;
    inconclusive when the spread between rounds of either client is wider than the ratio's gap to the
    target's edge (the noise could move it across), or when there is no spread to judge by."""
    if not greenbench or not vllm or any(not math.isfinite(v) for v in [*greenbench, *vllm]):
        return Verdict(figure, math.nan, math.nan, None, tolerance, None, None, INCONCLUSIVE, "a figure is missing")
    g, v = float(np.mean(greenbench)), float(np.mean(vllm))
    spreads = [s for s in (relative_spread(greenbench), relative_spread(vllm)) if s is not None]
    spread = max(spreads) if len(spreads) == 2 else None
    if v <= 0:
        return Verdict(figure, g, v, None, tolerance, spread, None, INCONCLUSIVE, "vLLM's figure is 0")
    ratio = g / v
    off = abs(ratio - 1)
    gap = abs(tolerance - off)
    inside = off <= tolerance
    if spread is None:
        return Verdict(figure, g, v, ratio, tolerance, None, gap, INCONCLUSIVE,
                       "one round: no spread between rounds to judge the gap by")
    if spread > gap:
        return Verdict(figure, g, v, ratio, tolerance, spread, gap, INCONCLUSIVE,
                       f"rounds spread {spread:.1%}, wider than the ratio's {gap:.1%} to the target's edge")
    return Verdict(figure, g, v, ratio, tolerance, spread, gap, MET if inside else NOT_MET)


def _streaming(f: Figures) -> bool:
    """The server streamed to this client: most responses did not reach it in one burst, and no
    other vLLM engine shared the machine (unknown counts as none: an attached server)."""
    return (f.burst_share is not None and f.burst_share < STREAMING_SHARE) and not f.other_engines


CLIENTS = ("greenbench", "vllm")
TOO_BUSY = "every run, none judged"


def judged_runs(rounds: Sequence[Mapping[str, Figures]]) -> tuple[dict[str, list[int]], str]:
    """The runs (round indices, per client) the verdict is taken over, and why: each client's runs in
    which the server streamed to it (``_streaming``), where each client has two or more; else every
    run (the spread rule then decides). On a small busy machine a run can see whole responses
    arrive in one burst (the server's process, or the client's, not scheduled while the tokens were
    generated): its TTFT is then nearly the whole request and its TPOT the client's own parsing,
    which compares neither client with the other. The rounds alternate the clients' order, so the
    runs kept still straddle the same stretch of time. Where a client has fewer than two such runs,
    every verdict is inconclusive (``run`` says so)."""
    streaming = {c: [i for i, r in enumerate(rounds) if _streaming(r[c])] for c in CLIENTS}
    every = {c: list(range(len(rounds))) for c in CLIENTS}
    if streaming == every:
        return every, "every run (the server streamed to both clients in each)"
    if all(len(v) >= 2 for v in streaming.values()):
        return streaming, ("the runs in which the server streamed to the client (the others saw most "
                           "responses arrive in one burst, or another vLLM engine on the machine)")
    return every, (f"{TOO_BUSY} (a client had fewer than two runs in which the server streamed to it: the "
                   "machine was too busy to compare the clients)")


def verdicts(rounds: Sequence[Mapping[str, Figures]], runs: Mapping[str, Sequence[int]] | None = None) -> list[Verdict]:
    """One verdict per figure over ``runs`` (per client; default every round)."""
    runs = runs or {c: range(len(rounds)) for c in CLIENTS}
    out = []
    for key, (_label, tol) in TARGETS.items():
        gb = [float(getattr(rounds[i]["greenbench"], key)) for i in runs["greenbench"]]
        vl = [float(getattr(rounds[i]["vllm"], key)) for i in runs["vllm"]]
        out.append(judge(key, gb, vl, tol))
    return out


def _num(x: float | None) -> str:
    if isinstance(x, int):
        return f"{x:,}"
    if x is None or not math.isfinite(x):
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}" if abs(x) >= 1 else f"{x:.3f}"


def table(vs: Sequence[Verdict]) -> list[str]:
    lines = [f"{'figure':<17} {'greenbench':>10} {'vllm bench':>10} {'ratio':>6} {'spread':>7} "
             f"{'target':>7}  verdict"]
    for v in vs:
        ratio = "-" if v.ratio is None else f"{v.ratio:.3f}"
        spread = "-" if v.spread is None else f"{v.spread:.1%}"
        lines.append(f"{TARGETS[v.figure][0]:<17} {_num(v.greenbench):>10} {_num(v.vllm):>10} {ratio:>6} "
                     f"{spread:>7} {'±' + format(v.tolerance, '.0%'):>7}  {v.verdict}"
                     + (f" ({v.why})" if v.why else ""))
    return lines


# -- the two clients ------------------------------------------------------------------------------

class CountedLoad(Load):
    """greenbench's closed-loop load (its own request, SSE parsing and timing: ``Load._request``)
    over exactly ``count`` requests, as ``vllm bench serve --max-concurrency C --num-prompts K``
    sends them: ``concurrency`` clients each take the next request when their last one ends, and
    the run ends when all ``count`` have, so it ramps up and drains like vLLM's."""

    def __init__(self, base_url: str, spec: LoadSpec, count: int) -> None:
        super().__init__(base_url, spec)
        self.count = count
        self._issued = 0

    async def _client(self, session: Any, index: int) -> None:
        while self._issued < self.count:  # one event loop: no lock needed
            k = self._issued
            self._issued += 1
            await self._request(session, k)


@dataclass(frozen=True)
class VllmShapedSpec(LoadSpec):
    """greenbench's load sending the body vLLM's client sends (``--request vllm``, a diagnostic): no
    ``min_tokens``, no ``temperature`` (the server's default), usage in the final chunk only (the
    load then counts a token per chunk with text, reconciled with the final usage)."""

    def body(self, k: int) -> dict[str, Any]:
        own = super().body(k)  # the k-th prompt and its output length, as greenbench's load takes them
        return {"model": own["model"], "prompt": own["prompt"], "repetition_penalty": 1.0,
                "max_tokens": own["max_tokens"], "logprobs": None, "stream": True,
                "stream_options": {"include_usage": True}, "ignore_eos": True}


def run_greenbench(base_url: str, model: str, prompts: Sequence[str | Sequence[int]], *, output_len: int,
                   concurrency: int, num_prompts: int, request: str = "greenbench",
                   timeout_s: float = 600.0) -> Figures:
    shape = VllmShapedSpec if request == "vllm" else LoadSpec
    spec = shape(model=model, prompts=prompts, max_tokens=output_len, concurrency=concurrency)
    load = CountedLoad(base_url, spec, num_prompts)
    load.start()
    try:
        load.stop(drain_timeout_s=timeout_s)  # its clients stop by themselves after num_prompts requests
    except LoadError as e:
        raise BenchError(f"greenbench's load: {str(e).splitlines()[0]}") from None
    return greenbench_figures(load.traces, client_cpu_s=load.cpu_s)


ENGINE_PROCESS = "VLLM::Worker"  # the process title of a vLLM engine's model worker


def count_other_engines(own_group: int | None) -> int | None:
    """vLLM model workers running on this machine outside the process group ``own_group`` (the
    server this script launched); None where that cannot be told (an attached server, no psutil)."""
    if own_group is None:
        return None
    try:
        import psutil
    except ImportError:
        return None
    n = 0
    for p in psutil.process_iter(["name"]):
        try:
            if p.info["name"] == ENGINE_PROCESS and os.getpgid(p.pid) != own_group:
                n += 1
        except (OSError, psutil.Error):
            continue
    return n


class EngineWatch:
    """``count_other_engines`` just before and just after a client's run (a sweep of /proc: about
    3 ms of CPU); ``most`` is the larger. Not sampled during the run: a thread sweeping /proc in
    greenbench's process would hold the interpreter's lock while greenbench's load reads."""

    def __init__(self, own_group: int | None) -> None:
        self.own_group = own_group
        self.most: int | None = None

    def _sample(self) -> None:
        n = count_other_engines(self.own_group)
        if n is not None:
            self.most = max(n, self.most or 0)

    def __enter__(self) -> EngineWatch:
        self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sample()


def _proc_cpu_s(pid: int) -> float | None:
    try:
        import psutil

        t = psutil.Process(pid).cpu_times()
        return float(t.user + t.system)
    except Exception:  # noqa: BLE001 -- the client's CPU is a diagnostic; a gone process has none
        return None


def vllm_bench_command(venv: Path, base_url: str, model: str, *, input_len: int, output_len: int,
                       concurrency: int, num_prompts: int, seed: int, result: Path,
                       tokenizer: str | None = None) -> list[str]:
    root = base_url.rstrip("/").removesuffix("/v1")
    cmd = [str(venv / "bin" / "vllm"), "bench", "serve", "--backend", "vllm", "--base-url", root, "--model", model,
           "--dataset-name", "random", "--random-input-len", str(input_len), "--random-output-len", str(output_len),
           "--max-concurrency", str(concurrency), "--num-prompts", str(num_prompts), "--ignore-eos",
           "--seed", str(seed), "--disable-tqdm", "--save-result", "--save-detailed",
           "--result-dir", str(result.parent), "--result-filename", result.name]
    if tokenizer:
        cmd += ["--tokenizer", tokenizer]
    return cmd


def run_vllm_bench(cmd: list[str], result: Path, log: Path, timeout_s: float = VLLM_BENCH_TIMEOUT_S) -> Figures:
    """Run ``vllm bench serve``; its figures from the result JSON it saves. The client's CPU time is
    read between its "Starting main benchmark run" line and its result table (its start-up and the
    tokenizer it loads are not counted)."""
    result.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cpu0 = cpu1 = None
    deadline = time.monotonic() + timeout_s
    with log.open("w") as out, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                                env=env, stdin=subprocess.DEVNULL) as proc:
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                if "Starting main benchmark run" in line:
                    cpu0 = _proc_cpu_s(proc.pid)
                elif "Serving Benchmark Result" in line:
                    cpu1 = _proc_cpu_s(proc.pid)
                if time.monotonic() > deadline:
                    raise BenchError(f"vllm bench serve ran past {timeout_s:g} s; log {log}")
            code = proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
    if code != 0 or not result.is_file():
        tail = srv.log_tail(log, 3).replace("\n", " | ")
        raise BenchError(f"vllm bench serve exited with code {code} ({tail}); log {log}")
    try:
        doc = json.loads(result.read_text())
    except ValueError as e:
        raise BenchError(f"vllm bench result {result}: {e}") from None
    figs = vllm_figures(doc)
    if cpu0 is not None and cpu1 is not None:
        figs.client_cpu_s = cpu1 - cpu0
    return figs


# -- the run --------------------------------------------------------------------------------------

def default_venv() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(os.environ.get("GREENBENCH_VLLM_VENV") or cache / "greenbench" / "vllm-venv")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n}: give 1 or more")
    return n


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = _Parser(prog="serving_vs_vllm_bench.py", description=__doc__.splitlines()[0])
    p.add_argument("--venv", type=Path, default=None,
                   help=f"vLLM's environment (default $GREENBENCH_VLLM_VENV or {default_venv()}; `{BUILD}` builds it)")
    p.add_argument("--model", default=None,
                   help="model folder to serve (default: a tiny random Llama built with tests/tiny_llama.py); "
                        "with --url, the model id the server lists (default: its only one)")
    p.add_argument("--url", default=None, help="attach to this running server (http://HOST:PORT/v1): never stopped")
    p.add_argument("--tokenizer", default=None, help="vllm bench's tokenizer, where the model id is no local folder")
    p.add_argument("--concurrency", type=_positive, default=4)
    p.add_argument("--input-len", type=_positive, default=32, help="prompt tokens")
    p.add_argument("--output-len", type=_positive, default=32, help="output tokens (at least 2: TPOT)")
    p.add_argument("--rounds", type=_positive, default=3, help="rounds; each runs both clients, order alternating")
    p.add_argument("--num-prompts", type=_positive, default=200, help="requests per client per round")
    p.add_argument("--warmup", type=int, default=50, help="requests sent before the first round, not counted")
    p.add_argument("--request", choices=("greenbench", "vllm"), default="greenbench",
                   help="the body greenbench's load sends: its own (default), or vLLM's client's (a diagnostic)")
    p.add_argument("--work", type=Path, default=None, help="folder for logs and results (default: a new temp folder)")
    p.add_argument("--json", type=Path, default=None, help="also write every figure of every round here")
    a = p.parse_args(argv)
    if a.output_len < 2:
        p.error("--output-len: give 2 or more (TPOT is over the tokens after the first)")
    if a.warmup < 0:
        p.error("--warmup: give 0 or more")
    if a.num_prompts < a.concurrency:
        p.error(f"--num-prompts {a.num_prompts} is below --concurrency {a.concurrency}: the load would never "
                "reach its concurrency")
    if a.url is not None and not a.url.startswith(("http://", "https://")):
        p.error(f"--url {a.url!r}: give an http:// base URL such as http://127.0.0.1:8000/v1")
    a.venv = a.venv or default_venv()
    if not (a.venv / "bin" / "vllm").exists():
        p.error(f"vLLM's environment is not at {a.venv} (no bin/vllm): build it with `{BUILD}` or give --venv")
    if a.url is None and a.model is not None and not (Path(a.model) / "config.json").is_file():
        p.error(f"--model {a.model}: not a model folder (no config.json)")
    return a


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextlib.contextmanager
def serving(a: argparse.Namespace, work: Path, say: Callable[[str], None]) -> Any:
    """The server to measure: attached (``--url``) or launched from ``--model`` (or a tiny Llama
    built here), and always stopped."""
    if a.url is not None:
        try:
            server = srv.attach(a.url)
            listed = srv.served_models(server.base_url)
        except (srv.ServerError, OSError, ValueError) as e:
            raise BenchError(str(e).splitlines()[0]) from None
        model = a.model
        if model is None:
            if len(listed) != 1:
                raise BenchError(f"the server lists {len(listed)} models ({', '.join(listed)}): name one with --model")
            model = listed[0]
        elif model not in listed:
            raise BenchError(f"the server serves {', '.join(listed) or 'no model'}, not {model!r}")
        yield server, model
        return
    folder = Path(a.model).resolve() if a.model else work / "tiny-llama"
    if a.model is None:
        say(f"building a tiny random Llama in {folder}")
        res = subprocess.run([str(a.venv / "bin" / "python"), str(ROOT / "tests" / "tiny_llama.py"), str(folder)],
                             capture_output=True, text=True, timeout=600)
        if res.returncode != 0:
            raise BenchError(f"tests/tiny_llama.py failed: {(res.stderr.strip().splitlines() or ['?'])[-1]}")
    max_len = max(256, a.input_len + a.output_len)
    template = (f"{shlex.quote(str(a.venv / 'bin' / 'vllm'))} serve {{model}} --host {{host}} --port {{port}} "
                f"--max-model-len {max_len} --dtype float32")
    log = work / "vllm-server.log"
    say(f"starting vllm serve {folder} (log {log})")
    try:
        server = srv.launch(template, {"model": str(folder)}, log, ready_timeout_s=600,
                            env={"VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")})
    except srv.ServerError as e:
        raise BenchError(str(e).splitlines()[0]) from None
    try:
        yield server, str(folder)
    finally:
        server.stop()


def run(a: argparse.Namespace, say: Callable[[str], None] = _say) -> dict[str, Any]:
    from greenbench.measure.served import make_prompts

    work = a.work or Path(tempfile.mkdtemp(prefix="gb-vs-vllm-"))
    work.mkdir(parents=True, exist_ok=True)
    rounds: list[dict[str, Figures]] = []
    with serving(a, work, say) as (server, model):
        info = srv.engine_version(server.base_url)
        say(f"server {server.base_url}: {info.get('engine', '?')} {info.get('engine_version', '')}, model {model}")
        common = {"output_len": a.output_len, "concurrency": a.concurrency, "request": a.request}
        if a.warmup:
            warm = make_prompts(server.base_url, model, a.input_len, seed=999, count=min(a.warmup, 64))
            run_greenbench(server.base_url, model, warm, num_prompts=max(a.warmup, a.concurrency), **common)
        for r in range(a.rounds):
            figs: dict[str, Figures] = {}
            order = ("vllm", "greenbench") if r % 2 == 0 else ("greenbench", "vllm")
            for client in order:
                if client == "vllm":
                    result = work / f"vllm-bench-round{r + 1}.json"
                    cmd = vllm_bench_command(a.venv, server.base_url, model, input_len=a.input_len,
                                             output_len=a.output_len, concurrency=a.concurrency,
                                             num_prompts=a.num_prompts, seed=r + 1, result=result,
                                             tokenizer=a.tokenizer)
                    with EngineWatch(server.pid) as watch:
                        f = run_vllm_bench(cmd, result, work / f"vllm-bench-round{r + 1}.log")
                else:
                    prompts = make_prompts(server.base_url, model, a.input_len, seed=1000 + r, count=a.num_prompts)
                    with EngineWatch(server.pid) as watch:
                        f = run_greenbench(server.base_url, model, prompts, num_prompts=a.num_prompts, **common)
                f.other_engines = watch.most
                figs[client] = f
                if not server.alive():
                    raise BenchError(server.died_message().splitlines()[0])
                others = "" if f.other_engines is None else f", {f.other_engines} other vLLM engines running"
                others += "" if f.burst_share is None else f", {f.burst_share:.0%} in one burst"
                say(f"round {r + 1} {client:<10}: {f.output_tokens_per_s:,.0f} tokens/s, TTFT p50 "
                    f"{f.ttft_p50_ms:.3g} ms, TPOT p50 {f.tpot_p50_ms:.3g} ms ({f.completed} requests, "
                    f"{f.failed} failed, {f.duration_s:.2f} s{others})")
            rounds.append(figs)
    runs, basis = judged_runs(rounds)
    vs = verdicts(rounds, runs)
    if basis.startswith(TOO_BUSY):  # burst runs compare the machine's scheduling, not the clients
        vs = [replace(v, verdict=INCONCLUSIVE, why="too few runs in which the server streamed")
              if v.verdict != INCONCLUSIVE else v for v in vs]
    return {"judged_runs": {c: [i + 1 for i in v] for c, v in runs.items()}, "judged_basis": basis,
            "settings": {"url": server.base_url, "model": model, "concurrency": a.concurrency,
                         "input_len": a.input_len, "output_len": a.output_len, "rounds": a.rounds,
                         "num_prompts": a.num_prompts, "warmup": a.warmup, "request": a.request, **info},
            "rounds": [{k: asdict(f) for k, f in r.items()} for r in rounds],
            "verdicts": [asdict(v) for v in vs], "work": str(work)}


def report_lines(out: Mapping[str, Any]) -> list[str]:
    s = out["settings"]
    vs = [Verdict(**v) for v in out["verdicts"]]
    lines = [f"{s.get('engine', 'server')} {s.get('engine_version', '')} at concurrency {s['concurrency']}, "
             f"{s['input_len']} prompt + {s['output_len']} output tokens, {s['num_prompts']} requests per client, "
             f"{s['rounds']} rounds alternating"
             + (", greenbench sending vLLM's request body" if s.get("request") == "vllm" else ""),
             f"verdict over {out.get('judged_basis', 'every run')}: "
             + "; ".join(f"{c} rounds " + ", ".join(map(str, v)) for c, v in out.get("judged_runs", {}).items()), ""]
    lines += table(vs)
    rounds = out["rounds"]

    def col(client: str, key: str) -> str:
        return " ".join(_num(r[client].get(key)) for r in rounds)

    lines += ["", "per round (greenbench | vllm bench):"]
    for key, (label, _) in TARGETS.items():
        lines.append(f"  {label:<17} {col('greenbench', key)} | {col('vllm', key)}")
    lines.append(f"  {'TPOT, last chunk':<17} {col('greenbench', 'tpot_last_chunk_p50_ms')} | (vLLM's own end)")
    lines.append(f"  {'burst share':<17} {col('greenbench', 'burst_share')} | {col('vllm', 'burst_share')}")
    lines.append(f"  {'other engines':<17} {col('greenbench', 'other_engines')} | {col('vllm', 'other_engines')}")
    lines.append(f"  {'prompt tokens':<17} {col('greenbench', 'prompt_tokens_mean')} | "
                 f"{col('vllm', 'prompt_tokens_mean')}")
    per_req = []
    for client in ("greenbench", "vllm"):
        cpu = [r[client]["client_cpu_s"] / r[client]["completed"] * 1e3 for r in rounds
               if r[client].get("client_cpu_s") is not None and r[client]["completed"]]
        per_req.append(_num(float(np.mean(cpu))) if cpu else "-")
    lines.append(f"  {'client CPU ms/req':<17} {per_req[0]} | {per_req[1]}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    a = parse_args(argv)

    def on_term(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds through the server's stop

    signal.signal(signal.SIGTERM, on_term)
    try:
        out = run(a)
    except BenchError as e:
        print(f"serving_vs_vllm_bench.py: error: {e}", file=sys.stderr)
        return 2
    print("\n".join(report_lines(out)))
    if a.json is not None:
        a.json.write_text(json.dumps(out, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
