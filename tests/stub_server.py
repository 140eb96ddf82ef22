"""A small OpenAI-compatible completions server for tests of the serving path's plumbing and its
error paths (the real engine, vLLM's CPU build, is tested in tests/test_vllm.py).

It streams ``max_tokens`` tokens per request, one SSE chunk each, ``--token-ms`` apart, with
vLLM's continuous usage when asked; ``--fail`` picks a fault: ``http500`` (every completion),
``cut`` (the stream stops mid-response without [DONE]), ``crash`` (the process exits after
``--crash-after`` requests), ``never-ready`` (listens, but /v1/models answers 503 forever).
Run as a script (``python tests/stub_server.py --port N``) for the launch path, or in-process with
``serve_in_thread`` for the attach path. It binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import threading
import time
from dataclasses import dataclass

from aiohttp import web

HOST = "127.0.0.1"


@dataclass
class StubConfig:
    token_ms: float = 1.0
    first_token_ms: float = 2.0
    fail: str = ""
    crash_after: int = 5
    model: str = "stub-model"


def make_app(cfg: StubConfig) -> web.Application:
    served = {"n": 0}

    async def models(request: web.Request) -> web.Response:
        if cfg.fail == "never-ready":
            return web.Response(status=503, text="loading")
        return web.json_response({"object": "list", "data": [{"id": cfg.model, "object": "model", "owned_by": "stub"}]})

    async def version(request: web.Request) -> web.Response:
        return web.json_response({"version": "0.0.0-stub"})

    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        served["n"] += 1
        if cfg.fail == "http500":
            return web.Response(status=500, text="internal error")
        if cfg.fail == "crash" and served["n"] > cfg.crash_after:
            os._exit(3)  # a server that dies mid-run
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
    a = ap.parse_args()
    time.sleep(a.startup_s)
    cfg = StubConfig(token_ms=a.token_ms, first_token_ms=a.first_token_ms, fail=a.fail,
                     crash_after=a.crash_after, model=a.model)
    print(f"stub server on {HOST}:{a.port}", flush=True)
    web.run_app(make_app(cfg), host=HOST, port=a.port, print=None)


if __name__ == "__main__":
    main()
