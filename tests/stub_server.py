"""A small OpenAI-compatible completions server for tests of the serving path's plumbing and its
error paths (the real engine, vLLM's CPU build, is tested in tests/test_vllm.py).

It streams ``max_tokens`` tokens per request, one SSE chunk each, ``--token-ms`` apart, with
vLLM's continuous usage when asked; ``--fail`` picks a fault: ``http500`` (every completion),
``cut`` (the stream stops mid-response without [DONE]), ``crash`` (the process exits after
``--crash-after`` requests), ``never-ready`` (listens, but /v1/models answers 503 forever).
Run as a script (``python tests/stub_server.py --port N``) for the launch path, or in-process with
``serve_in_thread`` for the attach path. It binds 127.0.0.1 only.

For quality scored through the endpoint (tests/test_serving_scoring.py), ``--scoring`` answers
requests without ``stream`` with one JSON completion (streamed requests are served as above):
``echo`` honours ``echo`` with ``logprobs`` and vLLM's ``prompt_logprobs``; ``prompt-logprobs``
only the latter (an echo comes back with the generated token's log-probability alone); ``none``
ignores both and refuses ``prompt_logprobs`` with HTTP 400, as a strict OpenAI server does. Its
model is deterministic, so every score is computable by hand: words split on whitespace, "new york"
one token (a merge across a question/choice boundary), ``<s>`` (id 1) first when special tokens
are added (the default for text prompts); a token's log-probability is ``-len(word) / 2`` whatever
comes before it (``stub_logprob``); the greedy answer to a prompt is its last word, then a newline
and "more", one token each. ``POST /tokenize`` is vLLM's (``--no-tokenize``: 404), and the model
list reports ``max_model_len`` (``--max-model-len``; a prompt with its max_tokens above it: 400).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import threading
import time
from dataclasses import dataclass, field

from aiohttp import web

HOST = "127.0.0.1"


@dataclass
class StubConfig:
    token_ms: float = 1.0
    first_token_ms: float = 2.0
    fail: str = ""
    crash_after: int = 5
    model: str = "stub-model"
    scoring: str = ""  # "", "echo", "prompt-logprobs" or "none": see the module's docstring
    tokenize: bool = True  # POST /tokenize, in a scoring mode
    max_model_len: int = 64
    stats: dict = field(default_factory=dict)  # scoring modes: requests, in_flight, peak_in_flight


BOS = "<s>"
MERGES = (("new", "york"),)  # word pairs the stub's tokenizer makes one token


def stub_logprob(word: str) -> float:
    """The stub model's log-probability of a token: -len(word) / 2, whatever precedes it."""
    return -len(word) / 2


class StubTokenizer:
    """Whitespace words, MERGES joined into one token, ids handed out in order of first sight."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {"<unk>": 0, BOS: 1}
        self.words: list[str] = ["<unk>", BOS]

    def encode(self, text: str, special: bool) -> list[int]:
        words, out = text.split(), []
        i = 0
        while i < len(words):
            if i + 1 < len(words) and (words[i], words[i + 1]) in MERGES:
                out.append(f"{words[i]} {words[i + 1]}")
                i += 2
            else:
                out.append(words[i])
                i += 1
        for w in out:
            if w not in self.ids:
                self.ids[w] = len(self.words)
                self.words.append(w)
        return ([1] if special else []) + [self.ids[w] for w in out]

    def word(self, token_id: int) -> str:
        return self.words[token_id] if 0 <= token_id < len(self.words) else "<unk>"


def _scored_completion(cfg: StubConfig, tok: StubTokenizer, body: dict) -> web.Response:
    """One JSON completion of the scoring modes (module docstring)."""
    if cfg.scoring == "none" and "prompt_logprobs" in body:
        return web.json_response({"error": {"message": "Unrecognized request argument supplied: prompt_logprobs",
                                            "type": "invalid_request_error"}}, status=400)
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        ids = [int(t) for t in prompt]
    else:
        ids = tok.encode(str(prompt), bool(body.get("add_special_tokens", True)))
    words = [tok.word(t) for t in ids]
    max_tokens = int(body.get("max_tokens", 16))
    if len(ids) + max_tokens > cfg.max_model_len:
        return web.json_response({"error": {"message": f"The prompt ({len(ids)} tokens) plus {max_tokens} output "
                                                       f"tokens is longer than the maximum model length of "
                                                       f"{cfg.max_model_len}.", "code": 400}}, status=400)
    answer = [" " + (words[-1] if words else ""), "\n", "more"][:max_tokens]
    stop = body.get("stop") or []
    if "\n" in stop and "\n" in answer:
        answer = answer[:answer.index("\n")]
    text = "".join(answer)
    choice: dict = {"index": 0, "text": text, "logprobs": None, "finish_reason": "length"}
    echo, logprobs = bool(body.get("echo")), body.get("logprobs")
    if logprobs is not None and cfg.scoring in ("echo", "prompt-logprobs"):
        gen = [stub_logprob(a.strip() or "nl") for a in answer]
        if echo and cfg.scoring == "echo":
            prompt_text = prompt if isinstance(prompt, str) else " ".join(words)
            offsets, at = [], 0
            for w in words:
                found = prompt_text.find(w, at)
                at = found if found >= 0 else at
                offsets.append(at)
                at += len(w)
            choice["text"] = prompt_text + text
            choice["logprobs"] = {"tokens": words + answer, "text_offset": offsets + [len(prompt_text)] * len(answer),
                                  "token_logprobs": [None] + [stub_logprob(w) for w in words[1:]] + gen,
                                  "top_logprobs": None}
        else:
            choice["logprobs"] = {"tokens": answer, "token_logprobs": gen, "text_offset": [0] * len(answer),
                                  "top_logprobs": None}
    if body.get("prompt_logprobs") is not None and cfg.scoring in ("echo", "prompt-logprobs"):
        choice["prompt_logprobs"] = [None] + [{str(t): {"logprob": stub_logprob(w), "rank": 1, "decoded_token": w}}
                                              for t, w in zip(ids[1:], words[1:], strict=True)]
    usage = {"prompt_tokens": len(ids), "completion_tokens": len(answer), "total_tokens": len(ids) + len(answer)}
    return web.json_response({"id": "cmpl-stub", "object": "text_completion", "model": cfg.model,
                              "choices": [choice], "usage": usage})


def make_app(cfg: StubConfig) -> web.Application:
    served = {"n": 0}
    tok = StubTokenizer()

    async def models(request: web.Request) -> web.Response:
        if cfg.fail == "never-ready":
            return web.Response(status=503, text="loading")
        entry = {"id": cfg.model, "object": "model", "owned_by": "stub"}
        if cfg.scoring:
            entry["max_model_len"] = cfg.max_model_len
        return web.json_response({"object": "list", "data": [entry]})

    async def tokenize(request: web.Request) -> web.Response:
        body = await request.json()
        ids = tok.encode(str(body.get("prompt", "")), bool(body.get("add_special_tokens", True)))
        return web.json_response({"count": len(ids), "max_model_len": cfg.max_model_len, "tokens": ids})

    async def version(request: web.Request) -> web.Response:
        return web.json_response({"version": "0.0.0-stub"})

    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        served["n"] += 1
        if cfg.fail == "http500":
            return web.Response(status=500, text="internal error")
        if cfg.fail == "crash" and served["n"] > cfg.crash_after:
            os._exit(3)  # a server that dies mid-run
        if cfg.scoring and not body.get("stream"):
            st = cfg.stats
            st["requests"] = st.get("requests", 0) + 1
            st["in_flight"] = st.get("in_flight", 0) + 1
            st["peak_in_flight"] = max(st.get("peak_in_flight", 0), st["in_flight"])
            try:
                await asyncio.sleep(cfg.first_token_ms / 1000)
                return _scored_completion(cfg, tok, body)
            finally:
                st["in_flight"] -= 1
        n = int(body.get("max_tokens", 16))
        prompt = body.get("prompt")
        prompt_tokens = len(prompt) if isinstance(prompt, list) else len(str(prompt).split())
        continuous = bool((body.get("stream_options") or {}).get("continuous_usage_stats"))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await asyncio.sleep(cfg.first_token_ms / 1000)
        for i in range(n):
            if i:
                await asyncio.sleep(cfg.token_ms / 1000)
            if cfg.fail == "cut" and i == n // 2:
                request.transport.close() if request.transport else None
                return resp
            chunk: dict = {"id": "cmpl-stub", "object": "text_completion", "model": cfg.model,
                           "choices": [{"index": 0, "text": f" t{i}", "finish_reason": None}]}
            if continuous:
                chunk["usage"] = {"prompt_tokens": prompt_tokens, "completion_tokens": i + 1}
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        final = {"id": "cmpl-stub", "object": "text_completion", "model": cfg.model, "choices": [],
                 "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": n}}
        await resp.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/v1/models", models)
    app.router.add_get("/version", version)
    app.router.add_post("/v1/completions", completions)
    if cfg.scoring and cfg.tokenize:
        app.router.add_post("/tokenize", tokenize)
    return app


class ThreadServer:
    """The stub in a background thread of this process; ``url`` is its /v1 base."""

    def __init__(self, cfg: StubConfig, port: int) -> None:
        self.cfg, self.port = cfg, port
        self.url = f"http://{HOST}:{port}/v1"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        runner = web.AppRunner(make_app(self.cfg))
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, HOST, self.port).start())
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    def __enter__(self) -> ThreadServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token-ms", type=float, default=1.0)
    ap.add_argument("--first-token-ms", type=float, default=2.0)
    ap.add_argument("--fail", default="")
    ap.add_argument("--crash-after", type=int, default=5)
    ap.add_argument("--model", default="stub-model")
    ap.add_argument("--startup-s", type=float, default=0.0)
    ap.add_argument("--scoring", default="", choices=["", "echo", "prompt-logprobs", "none"])
    ap.add_argument("--no-tokenize", action="store_true")
    ap.add_argument("--max-model-len", type=int, default=64)
    ap.add_argument("--tensor-parallel-size", type=int, default=1)  # only echoed: the GPUs it was given
    a = ap.parse_args()
    print(f"tensor_parallel_size={a.tensor_parallel_size} "
          f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '')}", flush=True)
    time.sleep(a.startup_s)
    cfg = StubConfig(token_ms=a.token_ms, first_token_ms=a.first_token_ms, fail=a.fail,
                     crash_after=a.crash_after, model=a.model, scoring=a.scoring, tokenize=not a.no_tokenize,
                     max_model_len=a.max_model_len)
    print(f"stub server on {HOST}:{a.port}", flush=True)
    web.run_app(make_app(cfg), host=HOST, port=a.port, print=None)


if __name__ == "__main__":
    main()
