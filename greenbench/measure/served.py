"""Measuring a served model: one server per (model, precision), then each load of the ladder.

A load runs continuously (``serving.load``); once it is steady (at its concurrency, requests
completing) the window protocol takes its tick-aligned windows on the device's meters while it
goes on, and stops it only after the last window, so no window sees the ramp-up or the drain.
Energy per output token is a window's energy over the tokens streamed inside its edges; energy
per request is the same energy over the request-equivalents streamed (tokens / tokens per request).
A server that fails to start, or dies mid-point, fails its points with the log's last lines, and
the ladder goes on.
"""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenbench import profile as prof
from greenbench.errors import GreenbenchError
from greenbench.measure.devices import Device
from greenbench.measure.protocol import Protocol, Trial, required_window_s, run_window
from greenbench.measure.records import PointContext, ServedWindow, build_served_record, flag_fixes
from greenbench.measure.zoo import HFDataset, ServedLadder, Setting, model_dict
from greenbench.meters import clock
from greenbench.meters.base import Meter, MeterError
from greenbench.serving.scoring import EndpointScore
from greenbench.workloads.base import WorkloadError

# Precision names of the zoo -> the dtype a launch template's {dtype} gets (vLLM's, SGLang's names).
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
STEADY_TIMEOUT_S = 300.0  # a load that has not reached its level by then is a failed point
_TICK_S = 0.01  # the measuring thread's "step" while the load runs: it only waits

# Seeded random words make the prompts; the server's tokenizer cuts them to the exact length.
_WORDS = (
    "time", "year", "people", "way", "day", "man", "thing", "woman", "life", "child", "world", "school",
    "state", "family", "student", "group", "country", "problem", "hand", "part", "place", "case",
    "week", "company", "system", "program", "question", "work", "government", "number", "night",
    "point", "home", "water", "room", "mother", "area", "money", "story", "fact", "month", "lot",
    "right", "study", "book", "eye", "job", "word", "business", "issue", "side", "kind", "head",
    "house", "service", "friend", "father", "power", "hour", "game", "line", "end", "member", "law",
    "car", "city", "community", "name", "president", "team", "minute", "idea", "kid", "body",
    "information", "back", "parent", "face", "others", "level", "office", "door", "health", "person",
    "art", "war", "history", "party", "result", "change", "morning", "reason", "research", "girl",
    "guy", "moment", "air", "teacher", "force",
)


@dataclass
class ServedRun:
    """What measuring one served group needs from the runner."""

    ladder: ServedLadder
    protocol: Protocol
    device: str  # the device spec the records name ("cpu", "cuda:0")
    meters: list[Meter]  # the headline meter first
    log_dir: Path  # the launched servers' logs, beside the profile
    context: Callable[[str, str, Setting, dict[str, Any]], PointContext]  # (model, precision, load, provenance)
    emit_note: Callable[[str], None]
    emit_warning: Callable[[str], None]
    emit_window: Callable[[str], None]  # one finished window, for the progress
    emit_flag: Callable[[str, str, str], None]  # (point label, flag, fix)
    update_period_s: float | None = None
    allow_download: bool = False  # a hub dataset for quality: offline unless the user asks
    gpus: tuple[Device, ...] = ()  # the GPUs metered (a tensor-parallel server's group, or one)


def gpu_fields(gpus: tuple[Device, ...]) -> tuple[dict[str, Any], dict[str, str]]:
    """The launch template's fields for the metered GPUs (``{tensor_parallel_size}``, ``{gpus}``)
    and the environment that shows the launched server exactly those GPUs (by UUID, which does not
    depend on greenbench's own CUDA_VISIBLE_DEVICES): the energy metered is then the energy it uses."""
    if not gpus:
        return {}, {}
    fields: dict[str, Any] = {"tensor_parallel_size": len(gpus)}
    if all(g.uuid for g in gpus):
        visible = ",".join(str(g.uuid) for g in gpus)
        return {**fields, "gpus": visible}, {"CUDA_VISIBLE_DEVICES": visible}
    return fields, {}


def measure_group(run: ServedRun, model_name: str, precision: str, loads: list[Setting]) -> list[prof.Record]:
    """Every load of one model at one precision: start (or attach to) its server, measure each
    load, stop the server (a launched one; an attached server is the user's). One record per load."""
    from greenbench.serving import server as srv

    lad = run.ladder
    kw = lad.builder_kwargs(model_name)
    model = kw["model"]
    where = f"{model_name} {precision}"
    if precision not in DTYPES:
        return [_failed(run, model_name, precision, s, f"precision {precision} cannot be served "
                        f"(give one of {', '.join(DTYPES)})") for s in loads]
    log = run.log_dir / f"{lad.name}-{model_name}-{precision}.log"
    try:
        if lad.server.launch is not None:
            gpu_f, gpu_env = gpu_fields(run.gpus)
            fields = {"model": model.id, "revision": model.revision or "", "dtype": DTYPES[precision],
                      "precision": precision, **gpu_f, **kw["fields"]}
            if "CUDA_VISIBLE_DEVICES" in lad.server.env and gpu_env:
                run.emit_warning(f"{where}: the ladder's env sets CUDA_VISIBLE_DEVICES; the energy is metered on "
                                 f"{run.device} ({gpu_env['CUDA_VISIBLE_DEVICES']}): make sure they are the same GPUs")
            run.emit_note(f"{where}: starting the server (log {log})")
            server = srv.launch(lad.server.launch, fields, log, ready_timeout_s=lad.server.ready_timeout_s,
                                env={**gpu_env, **lad.server.env} or None)
        else:
            assert lad.server.url is not None  # the zoo requires one of the two
            server = srv.attach(lad.server.url)
    except GreenbenchError as e:
        run.emit_warning(f"{where}: failed: {str(e).splitlines()[0]}")
        return [_failed(run, model_name, precision, s, str(e), log if lad.server.launch else None) for s in loads]
    try:
        served_id = model.served_name or model.id
        listed = srv.served_models(server.base_url)
        if served_id not in listed:
            raise srv.ServerError(f"the server serves {', '.join(listed) or 'no model'}, not {served_id!r} "
                                  "(set served_name in the zoo to the id it lists)")
        facts: dict[str, Any] = {"server": "launched" if server.launched else server.base_url,
                                 **srv.engine_version(server.base_url)}
        gen = kw["generation"]
        lengths: list[int] | None = None
        if gen.conversations is not None:
            prompts, lengths, how = conversation_prompts(server.base_url, served_id, Path(gen.conversations),
                                                         seed=run.protocol.seed)
            facts["lengths"] = how
        else:
            prompts = make_prompts(server.base_url, served_id, gen.prompt_tokens, seed=run.protocol.seed, count=64)
        quality, dataset = None, kw["dataset"]  # its path resolved beside the zoo file
        if dataset is not None:
            run.emit_note(f"{where}: scoring {dataset.format} quality through the server")
            try:
                quality = score_through(server.base_url, served_id, dataset, run.allow_download)
                facts = {**facts, "quality": quality.method, "dataset": dataset.path or dataset.id}
            except GreenbenchError as e:  # the loads still measure energy and latency; quality is null, said why
                run.emit_warning(f"{where}: quality not scored: {str(e).splitlines()[0]}")
                facts = {**facts, "quality_error": str(e).splitlines()[0]}
        records = []
        for load in loads:
            if not server.alive():
                records.append(_failed(run, model_name, precision, load, server.died_message(), log))
                continue
            records.append(_measure_load(run, server, served_id, model_name, precision, load, (prompts, lengths),
                                         facts, log if server.launched else None, quality))
        return records
    except GreenbenchError as e:
        run.emit_warning(f"{where}: failed: {str(e).splitlines()[0]}")
        return [_failed(run, model_name, precision, s, str(e), log if server.launched else None) for s in loads]
    finally:
        server.stop()


def make_prompts(base_url: str, model: str, tokens: int, *, seed: int, count: int) -> list[str | list[int]]:
    """``count`` prompts of exactly ``tokens`` tokens: seeded random words, cut by the server's own
    tokenizer (``POST /tokenize``, which vLLM and SGLang have) and sent as token ids. A server
    without it gets the words as text; the prompt tokens it reports are recorded as they are."""
    from greenbench.serving.server import tokenize

    rng = random.Random(f"prompts:{seed}")
    texts = [" ".join(rng.choice(_WORDS) for _ in range(tokens * 2)) for _ in range(count)]
    out: list[str | list[int]] = []
    for text in texts:
        ids = tokenize(base_url, model, text)
        if ids is None or len(ids) < tokens:
            return [" ".join(t.split()[:tokens]) for t in texts]  # no tokenizer endpoint: words as text
        out.append(ids[:tokens])
    return out


MAX_CONVERSATIONS = 2000  # drawn from a larger file, seeded: a load cycles through them
MAX_CONVERSATIONS_BYTES = 256 * 2**20


def _turns(item: Any) -> tuple[str, str | int] | None:
    """(prompt, the reply or its length) of one conversation in any of the three layouts."""
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("prompt"), str):
        n = item.get("output_tokens")
        return (item["prompt"], n) if isinstance(n, int) and not isinstance(n, bool) and n > 0 else None
    turns = item.get("conversations") or item.get("messages")
    if not isinstance(turns, list):
        return None
    said = [(str(t.get("from") or t.get("role") or ""), t.get("value") or t.get("content")) for t in turns
            if isinstance(t, dict)]
    for (who, text), (who2, reply) in itertools.pairwise(said):
        if who in ("human", "user") and who2 in ("gpt", "assistant") and isinstance(text, str) \
                and isinstance(reply, str) and text.strip() and reply.strip():
            return text, reply
    return None


def conversation_prompts(base_url: str, model: str, path: Path, *, seed: int
                         ) -> tuple[list[str | list[int]], list[int], str]:
    """Prompts and output lengths drawn from a file of conversations (the first user turn and the
    reply's length, as vLLM's ShareGPT benchmark takes them), counted with the server's tokenizer
    where it has ``/tokenize``. Pairs longer than the server's context are left out, and said."""
    from greenbench.safeload import InputError, load_json, read_text
    from greenbench.serving.scoring import server_context
    from greenbench.serving.server import tokenize

    try:
        text = read_text(path, what="conversations file", max_bytes=MAX_CONVERSATIONS_BYTES)
        stripped = text.lstrip()
        items = load_json(text, str(path)) if stripped.startswith("[") else [
            load_json(line, f"{path} line {i}") for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    except InputError as e:
        raise WorkloadError(str(e)) from None
    pairs = [p for p in map(_turns, items if isinstance(items, list) else []) if p is not None]
    if not pairs:
        raise WorkloadError(f"{path}: no conversation with a prompt and a reply (or output_tokens); "
                            "see docs/serving.md")
    random.Random(f"conversations:{seed}").shuffle(pairs)
    context = server_context(base_url, model)
    prompts: list[str | list[int]] = []
    lengths: list[int] = []
    skipped = 0
    for prompt, reply in pairs[:MAX_CONVERSATIONS]:
        ids = tokenize(base_url, model, prompt)
        n_out = reply if isinstance(reply, int) else len(tokenize(base_url, model, reply) or reply.split())
        n_in = len(ids) if ids is not None else len(prompt.split())
        if context is not None and n_in + n_out > context:
            skipped += 1
            continue
        prompts.append(ids if ids is not None else prompt)
        lengths.append(max(1, n_out))
    if not prompts:
        raise WorkloadError(f"{path}: every conversation is longer than the server's context ({context} tokens)")
    how = (f"drawn from {path.name}: {len(prompts)} conversations, mean {sum(lengths) / len(lengths):.0f} output "
           f"tokens" + (f"; {skipped} longer than the context left out" if skipped else ""))
    return prompts, lengths, how


def score_through(base_url: str, model: str, ds: HFDataset, allow_download: bool) -> EndpointScore:
    """The model's quality, scored once through its own server (serving.scoring): multiple-choice
    accuracy by the log-likelihood of each choice, perplexity of a text set, or exact match."""
    from greenbench.serving import scoring
    from greenbench.workloads.hf.lm import dataset_texts, multiple_choice_items

    if ds.format == "multiple-choice":
        items, _ = multiple_choice_items(ds, allow_download)
        return scoring.score_multiple_choice(base_url, model, [scoring.MCItem(q, tuple(c), a) for q, c, a in items])
    if ds.format == "text":
        texts, _ = dataset_texts(ds, allow_download)
        return scoring.score_perplexity(base_url, model, texts)
    if ds.path is None:
        raise WorkloadError("a short-answer dataset is a local file (path), with question and answer columns")
    return scoring.score_file(base_url, model, Path(ds.path), "short-answer", question_column=ds.question_column,
                              answer_column=ds.answer_column, limit=ds.limit)


def _measure_load(run: ServedRun, server: Any, served_id: str, model_name: str, precision: str, load: Setting,
                  requests: tuple[list[str | list[int]], list[int] | None], facts: dict[str, Any], log: Path | None,
                  quality: EndpointScore | None) -> prof.Record:
    from greenbench.serving.load import Load, LoadError, LoadSpec

    lad, proto = run.ladder, run.protocol
    prompts, lengths = requests
    spec = LoadSpec(model=served_id, prompts=prompts, max_tokens=lad.generation.output_tokens,
                    concurrency=load.concurrency, request_rate_per_s=load.request_rate_per_s, seed=proto.seed,
                    fixed_length=lad.generation.fixed_length, output_lengths=lengths)
    gen = Load(server.base_url, spec)
    label = f"{model_name} {load.label} {precision}"
    window_s = required_window_s(proto.min_window_s, proto.min_counter_updates, run.update_period_s)
    dither = random.Random(f"dither:{proto.seed}:{label}")
    trials: list[Trial] = []
    windows: list[ServedWindow] = []
    gen.start()
    try:
        gen.wait_steady(STEADY_TIMEOUT_S)
        clock.sleep(proto.warmup_s)  # the engine's batch settles at the level
        for _ in range(proto.repeats):
            if not server.alive():
                raise LoadError(server.died_message())
            trial = run_window(lambda: clock.sleep(_TICK_S), lambda: None, run.meters, window_s, min_steps=1,
                               dither_s=dither.uniform(0, run.update_period_s or 0.0))
            assert trial.t0_s is not None
            t0, t1 = trial.t0_s, trial.t0_s + trial.window_s
            windows.append(ServedWindow(tokens=gen.tokens_between(t0, t1), completed=gen.completed_between(t0, t1),
                                        failed=sum(1 for t in gen.failed() if t0 <= t.sent_s < t1)))
            trials.append(trial)
            run.emit_window(f"{label}: {windows[-1].tokens / trial.window_s:,.0f} output tokens/s")
    except (LoadError, MeterError) as e:
        return _failed(run, model_name, precision, load, str(e), log)
    finally:
        try:
            gen.stop(drain_timeout_s=30)
        except LoadError as e:  # the load's own failure after the windows: already in its traces
            run.emit_warning(f"{label}: {e}")
    point = run.context(model_name, precision, load, facts)
    start, end = trials[0].t0_s or 0.0, (trials[-1].t0_s or 0.0) + trials[-1].window_s
    steady = [t for t in gen.traces if t.ok and t.done_s is not None and start <= t.done_s < end]
    record = build_served_record(point, trials, windows, steady, quality, load_cpu_share=gen.cpu_share,
                                 slo_ttft_ms=lad.slo.ttft_ms, slo_tpot_ms=lad.slo.tpot_ms,
                                 requested_output_tokens=lad.generation.output_tokens,
                                 own_gpu_pids=frozenset({*server.processes(), os.getpid()} if server.launched
                                                        else ()))  # an attached server's are unknown here
    record.server_log = None if log is None else str(log)
    for code, fix in flag_fixes(record):
        run.emit_flag(record.label, code, fix)
    return record


def _failed(run: ServedRun, model_name: str, precision: str, load: Setting, error: str,
            log: Path | None = None) -> prof.Record:
    return prof.Record(
        ladder=run.ladder.name, model=model_name, concurrency=load.concurrency,
        request_rate_per_s=load.request_rate_per_s, precision=precision, device=run.device, status="failed",
        error=error, energy_reason="not measured: failed", measured_utc=prof.utc_now(),
        model_spec=model_dict(run.ladder.model(model_name)), server_log=None if log is None else str(log))
