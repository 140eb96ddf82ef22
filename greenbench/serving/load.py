"""The load that drives a server, and what each request saw.

``Load`` runs in a thread of its own with its own asyncio loop, so the measuring thread can take
energy windows while the load goes on: ``start``, ``wait_steady`` (the load has reached its
concurrency and requests have begun to complete), windows, then ``stop`` (no new requests; the
ones in flight finish). Two shapes: a closed loop (``concurrency`` clients, each sending its next
request when its last one ends) and an open loop (Poisson arrivals at ``request_rate_per_s``,
seeded; ``concurrency`` then caps the requests in flight, as vLLM's benchmark does).

Each request streams (SSE, ``/v1/completions``); every chunk that carries tokens is timed with
``time.perf_counter``, the clock the meters read, so the tokens streamed inside a window's edges
can be counted (``tokens_between``). The chunk's token count is the server's own continuous usage
where it reports one (vLLM), else one token per chunk with text, reconciled with the final usage.
The load thread's CPU time is kept: a generator that saturates a core would measure itself.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from greenbench.errors import GreenbenchError

now = time.perf_counter


class LoadError(GreenbenchError):
    """The load could not run (no server, every request failing, never steady)."""


@dataclass
class RequestTrace:
    """One request: when it was sent, when each chunk of tokens came, and how it ended."""

    sent_s: float
    prompt_tokens: int | None = None
    chunk_times_s: list[float] = field(default_factory=list)
    chunk_tokens: list[int] = field(default_factory=list)
    done_s: float | None = None
    output_tokens: int = 0
    error: str | None = None

    @property
    def first_token_s(self) -> float | None:
        return self.chunk_times_s[0] if self.chunk_times_s else None

    @property
    def ok(self) -> bool:
        return self.error is None and self.done_s is not None

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_token_s is None else self.first_token_s - self.sent_s

    @property
    def e2e_s(self) -> float | None:
        return None if self.done_s is None else self.done_s - self.sent_s

    @property
    def tpot_s(self) -> float | None:
        """Time per output token after the first (vLLM's definition); None for one token."""
        if not self.ok or self.first_token_s is None or self.output_tokens < 2 or self.done_s is None:
            return None
        return (self.done_s - self.first_token_s) / (self.output_tokens - 1)

    def itl_s(self) -> list[float]:
        """Inter-token latencies: the gaps between chunks, spread over a chunk's tokens."""
        gaps = []
        for i in range(1, len(self.chunk_times_s)):
            n = max(1, self.chunk_tokens[i])
            gaps.extend([(self.chunk_times_s[i] - self.chunk_times_s[i - 1]) / n] * n)
        return gaps


@dataclass(frozen=True)
class LoadSpec:
    """What to send: the model's id on the server, prompts (text or token ids), output length."""

    model: str
    prompts: Sequence[str | Sequence[int]]
    max_tokens: int
    concurrency: int | None = None
    request_rate_per_s: float | None = None
    seed: int = 0
    # vLLM's extensions: exactly max_tokens tokens (min_tokens, ignore_eos) and usage in every chunk.
    fixed_length: bool = True
    continuous_usage: bool = True
    timeout_s: float = 300.0
    # Per prompt (same order): its own output length, as drawn from a file of conversations;
    # None: max_tokens for every request.
    output_lengths: Sequence[int] | None = None

    def __post_init__(self) -> None:
        if self.concurrency is None and self.request_rate_per_s is None:
            raise LoadError("a load needs a concurrency, a request rate, or both")
        if self.concurrency is not None and self.concurrency < 1:
            raise LoadError(f"concurrency {self.concurrency}: give 1 or more")
        if self.request_rate_per_s is not None and not self.request_rate_per_s > 0:
            raise LoadError(f"request rate {self.request_rate_per_s}: give a rate above 0 per second")
        if self.max_tokens < 1:
            raise LoadError(f"output tokens {self.max_tokens}: give 1 or more")
        if not self.prompts:
            raise LoadError("a load needs at least one prompt")
        if self.output_lengths is not None and (len(self.output_lengths) != len(self.prompts)
                                                or any(n < 1 for n in self.output_lengths)):
            raise LoadError("output lengths: one of 1 or more per prompt")

    def body(self, k: int) -> dict[str, Any]:
        """The request body of the load's ``k``-th request (prompts are taken in turn)."""
        prompt = self.prompts[k % len(self.prompts)]
        n = self.max_tokens if self.output_lengths is None else self.output_lengths[k % len(self.prompts)]
        b: dict[str, Any] = {"model": self.model, "prompt": prompt if isinstance(prompt, str) else list(prompt),
                             "max_tokens": n, "temperature": 0.0, "stream": True,
                             "stream_options": {"include_usage": True}}
        if self.continuous_usage:
            b["stream_options"]["continuous_usage_stats"] = True
        if self.fixed_length:
            b["min_tokens"] = n
            b["ignore_eos"] = True
        return b


class Load:
    """A load on one server, run in a background thread (see the module's docstring)."""

    def __init__(self, base_url: str, spec: LoadSpec) -> None:
        self.url = base_url.rstrip("/") + "/completions"
        self.spec = spec
        self.traces: list[RequestTrace] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()
        self._first_done = threading.Event()
        self._error: BaseException | None = None
        self._in_flight = 0
        self._peak_in_flight = 0
        self.cpu_s = 0.0
        self.wall_s = 0.0

    # -- control (measuring thread) -------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="greenbench-load", daemon=True)
        self._thread.start()
        self._started.wait(10)

    def wait_steady(self, timeout_s: float) -> None:
        """Wait until the load is at its level: requests in flight at the concurrency (closed loop)
        and the first request complete, so the ramp-up is behind the first window."""
        deadline = now() + timeout_s
        target = self.spec.concurrency if self.spec.request_rate_per_s is None else 1
        while now() < deadline:
            if self._error is not None:
                raise LoadError(f"the load stopped: {self._error}")
            failed = [t for t in self.traces if t.error]
            if failed and len(failed) == len(self.traces) and len(failed) >= (target or 1):
                raise LoadError(f"every request failed: {failed[-1].error}")
            if self._first_done.is_set() and self._peak_in_flight >= (target or 1):
                return
            time.sleep(0.01)
        raise LoadError(f"the load was not steady after {timeout_s:g} s "
                        f"({sum(t.ok for t in self.traces)} requests complete)")

    def failed(self) -> list[RequestTrace]:
        return [t for t in self.traces if t.error is not None]

    def stop(self, drain_timeout_s: float = 60.0) -> None:
        """No new requests; wait for those in flight (cancelled after ``drain_timeout_s``)."""
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(drain_timeout_s + 10)
        if self._error is not None and not isinstance(self._error, asyncio.CancelledError):
            raise LoadError(f"the load stopped: {self._error}")

    @property
    def cpu_share(self) -> float | None:
        """The load thread's CPU time over its wall time: 1.0 is one core saturated."""
        return None if self.wall_s <= 0 else self.cpu_s / self.wall_s

    # -- what the load saw ----------------------------------------------------------------------

    def tokens_between(self, t0: float, t1: float) -> int:
        """Output tokens streamed with chunk times in [t0, t1)."""
        n = 0
        for t in list(self.traces):
            times = t.chunk_times_s
            i, j = bisect.bisect_left(times, t0), bisect.bisect_left(times, t1)
            n += sum(t.chunk_tokens[i:j])
        return n

    def completed_between(self, t0: float, t1: float) -> list[RequestTrace]:
        return [t for t in list(self.traces) if t.ok and t.done_s is not None and t0 <= t.done_s < t1]

    # -- the loop (load thread) -----------------------------------------------------------------

    def _run(self) -> None:
        cpu0, wall0 = time.thread_time(), now()
        try:
            asyncio.run(self._main())
        except BaseException as e:  # recorded; the measuring thread raises it as one line
            self._error = e
        finally:
            self.cpu_s, self.wall_s = time.thread_time() - cpu0, now() - wall0
            self._started.set()

    async def _main(self) -> None:
        import aiohttp  # here: only a served ladder needs it

        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        limit = self.spec.concurrency or 0
        # total only: a sock_read timeout re-arms a timer on every chunk received (a quarter of the
        # load's CPU per token, measured against vLLM's own client)
        timeout = aiohttp.ClientTimeout(total=self.spec.timeout_s)
        connector = aiohttp.TCPConnector(limit=limit, force_close=False)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False) as session:
            self._started.set()
            if self.spec.request_rate_per_s is None:
                await asyncio.gather(*(self._client(session, i) for i in range(self.spec.concurrency or 1)))
            else:
                await self._open_loop(session)

    async def _client(self, session: Any, index: int) -> None:
        """One closed-loop client: its next request when its last one ends."""
        assert self._stopping is not None
        k = index
        while not self._stopping.is_set():
            await self._request(session, k)
            k += self.spec.concurrency or 1

    async def _open_loop(self, session: Any) -> None:
        assert self._stopping is not None
        rng = random.Random(self.spec.seed)
        cap = asyncio.Semaphore(self.spec.concurrency) if self.spec.concurrency else None
        tasks: set[asyncio.Task[None]] = set()
        k = 0
        next_s = now()
        while not self._stopping.is_set():
            next_s += rng.expovariate(self.spec.request_rate_per_s or 1.0)
            delay = next_s - now()
            if delay > 0:
                try:
                    await asyncio.wait_for(self._stopping.wait(), delay)
                    break
                except asyncio.TimeoutError:
                    pass

            async def one(k: int) -> None:
                if cap is None:
                    await self._request(session, k)
                    return
                async with cap:
                    await self._request(session, k)

            task = asyncio.create_task(one(k))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            k += 1
        if tasks:
            await asyncio.gather(*tasks)

    async def _request(self, session: Any, k: int) -> None:
        trace = RequestTrace(sent_s=now())
        self.traces.append(trace)
        self._in_flight += 1
        self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
        try:
            await self._stream(session, k, trace)
        except asyncio.CancelledError:
            trace.error = "cancelled"
            raise
        except Exception as e:  # a failed request is data (its error), not the end of the load
            trace.error = _one_line(e)
        finally:
            self._in_flight -= 1
        if trace.ok:
            self._first_done.set()
        else:
            await asyncio.sleep(0.05)  # a failing server is not hammered in a tight loop

    async def _stream(self, session: Any, k: int, trace: RequestTrace) -> None:
        async with session.post(self.url, json=self.spec.body(k)) as resp:
            if resp.status != 200:
                text = (await resp.text())[:200].replace("\n", " ")
                trace.error = f"HTTP {resp.status}: {text}"
                return
            counted = 0  # tokens attributed to chunks so far
            usage_total: int | None = None
            # Read what the network delivers, as vLLM's client does: one clock reading per read,
            # the SSE events split from a buffer (a line-by-line read awaits twice per event).
            buffer = b""
            done = False
            async for piece in resp.content.iter_any():
                t = now()
                buffer += piece
                *lines, buffer = buffer.split(b"\n")
                for raw in lines:
                    line = raw.strip()
                    if not line.startswith(b"data:"):
                        continue
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        trace.done_s = t
                        done = True
                        break
                    doc = json.loads(data)
                    if isinstance(doc, dict) and doc.get("error"):  # an engine failing mid-stream says so in-band
                        e = doc["error"]
                        trace.error = "server: " + str(e.get("message") if isinstance(e, dict) else e)[:200]
                        return
                    counted, total_now = _count(doc, trace, t, counted)
                    usage_total = total_now if total_now is not None else usage_total
                if done:
                    break
            if trace.done_s is None:
                trace.error = "the stream ended without [DONE]"
                return
            total = usage_total if usage_total is not None else counted
            if total > counted and trace.chunk_tokens:  # tokens the chunks did not say: on the last one
                trace.chunk_tokens[-1] += total - counted
            trace.output_tokens = total


def _count(doc: Any, trace: RequestTrace, t: float, counted: int) -> tuple[int, int | None]:
    """One SSE event's tokens onto the trace at time ``t``: (tokens counted so far, the final
    usage's total where this is the usage-only event)."""
    usage = doc.get("usage") or None
    choices = doc.get("choices") or []
    text = "".join(str(c.get("text") or "") for c in choices if isinstance(c, dict))
    if usage and usage.get("prompt_tokens") is not None:
        trace.prompt_tokens = int(usage["prompt_tokens"])
    cumulative = None if not usage else usage.get("completion_tokens")
    if choices and (text or cumulative):
        n = (int(cumulative) - counted) if cumulative is not None else 1
        if n > 0:
            trace.chunk_times_s.append(t)
            trace.chunk_tokens.append(n)
            counted += n
        return counted, None
    return counted, None if cumulative is None else int(cumulative)


def _one_line(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
