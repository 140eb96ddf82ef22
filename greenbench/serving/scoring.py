"""Quality through the endpoint: a served model scored once, over the same OpenAI-compatible
``/v1/completions`` the load drives, by the rules the in-process ``hf-lm`` workload uses, so the
two give the same numbers for the same model.

Three metrics, each with a 95% interval:

* **accuracy** (multiple choice): each choice's log-likelihood given its question, the choice
  following the question after a space; the context is the question tokenised *with* the
  tokenizer's special tokens, the continuation ``" " + choice`` *without*, concatenated as token
  ids and cut to the last ``context_tokens``. A choice's score is the **sum** of its continuation
  tokens' log-probabilities; the highest wins (the first on a tie). Also reported, as hf-lm does:
  ``accuracy_length_normalized``, the sum over the choice's length in characters. Interval: Wilson.
* **perplexity** (plain text): each document (a non-empty line of a TXT file, or a row's text) is
  tokenised with special tokens and cut into non-overlapping windows of ``context_tokens``; a
  window of one token is dropped. Each window is scored alone: the sum of the log-probabilities
  of its tokens after the first. Perplexity is ``exp(total NLL / tokens scored)``. Interval: a
  ratio-estimator (delta-method) interval of the NLL per token with the window as the unit (the
  tokens of a window are not independent draws), mapped through ``exp``; none for one window.
* **exact match** (short answers): a greedy completion (temperature 0, ``max_tokens``, stopped at a
  newline) of each question, through ``template``; its first line compared with every accepted
  answer after ``normalize_answer`` (Unicode NFKC, lower case, punctuation dropped, the articles
  a/an/the dropped, whitespace collapsed: SQuAD's rule). Interval: Wilson.

How the log-probabilities are obtained: the prompt is sent with ``echo: true, logprobs: 1,
max_tokens: 1`` and the echoed ``token_logprobs`` of the prompt are read (the one generated token
is ignored); a server that does not echo them is asked for vLLM's ``prompt_logprobs: 0`` instead;
one that gives neither raises ``LogprobsUnsupported`` (one line). Prompts are token ids from the
server's own ``POST /tokenize`` (vLLM's), so the context/continuation split is exact and identical
to hf-lm's; a server without it gets text prompts, and the continuation is then the tokens of
``question + " " + choice`` after the longest run it shares with the tokens of the question alone
(``method["tokenization"] == "text"``; it differs from hf-lm only where a token spans the
boundary). A text prompt cannot be windowed, so perplexity of a document longer than the server's
context needs ``/tokenize``.

``context_tokens`` defaults to hf-lm's cap of 1024, or the server's ``max_model_len`` (from
``GET /v1/models``) less the one token that must be generated, whichever is smaller: for numbers
identical to hf-lm's on documents longer than that, serve the model with a ``max_model_len`` above
hf-lm's window (the model's own context, at most 1024).

Requests run concurrently (``concurrency`` in flight), over aiohttp, in a loop of their own.
Nothing here imports torch; the local-file readers follow hf-lm's rules for the same files.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import threading
import unicodedata
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from greenbench import evalfiles
from greenbench.errors import GreenbenchError
from greenbench.serving.server import get_json

EVAL_CONTEXT_CAP = 1024  # hf-lm's cap on a perplexity window and a multiple-choice sequence
DEFAULT_CONCURRENCY = 16
DEFAULT_TIMEOUT_S = 120.0
Z95 = 1.959963984540054
Tokenization = Literal["auto", "server", "text"]
LogprobsVia = Literal["auto", "echo", "prompt_logprobs"]
Prompt = str | list[int]
T = TypeVar("T")


class ScoringError(GreenbenchError):
    """Quality could not be scored through the server (bad data, a failed request); one line."""


class LogprobsUnsupported(ScoringError):
    """The server returns no log-probabilities of a prompt (neither echo nor prompt_logprobs)."""


class _Unsupported(Exception):
    """A reply without the prompt's log-probabilities (internal: tried the other way, then raised)."""


@dataclass(frozen=True)
class MCItem:
    question: str
    choices: tuple[str, ...]
    answer: int  # index into choices


@dataclass(frozen=True)
class QAItem:
    question: str
    answers: tuple[str, ...]  # any of them is a match


@dataclass(frozen=True)
class EndpointScore:
    """One model's quality through its server.

    ``value``: accuracy or exact match as a fraction, or the perplexity. ``total``: questions, or
    perplexity windows (as hf-lm counts them). ``tokens_scored``: tokens whose log-probability was
    summed (continuations; perplexity's predicted tokens), or tokens generated (exact match).
    ``extra``: numbers only, hf-lm's keys (``perplexity``, ``nll_per_token``, ``tokens_scored``,
    ``accuracy_length_normalized``, ``choices_scored``) and others with units in their names.
    ``method``: how, in words (tokenization, logprobs_via). ``item_scores``: per choice the
    log-likelihood (multiple choice), per window the NLL (perplexity), per item 1/0 (exact match).
    """

    metric: Literal["accuracy", "perplexity", "exact_match"]
    value: float
    correct: int | None
    total: int
    ci95: tuple[float, float] | None
    tokens_scored: int
    extra: dict[str, float] = field(default_factory=dict)
    method: dict[str, str] = field(default_factory=dict)
    item_scores: tuple[float, ...] = ()


# ----------------------------------------------------------------------------------- statistics


def wilson_interval(correct: int, total: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (greenbench.stats's, which hf-lm's records use)."""
    if total <= 0 or not 0 <= correct <= total:
        raise ValueError("need 0 <= correct <= total and total > 0")
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def perplexity_interval(nll: Sequence[float], tokens: Sequence[int], z: float = Z95) -> tuple[float, float] | None:
    """95% interval of exp(sum nll / sum tokens), windows as the sampling unit (ratio estimator)."""
    m, n = len(nll), sum(tokens)
    if m < 2 or n <= 0:
        return None
    r = sum(nll) / n
    var = m / (m - 1) * sum((a - r * b) ** 2 for a, b in zip(nll, tokens, strict=True)) / (n * n)
    half = z * math.sqrt(var)
    return math.exp(r - half), math.exp(min(r + half, 700.0))


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: NFKC, lower case, no punctuation, no articles, single spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


# ------------------------------------------------------------------------------------ the client


def _one_line(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _server_message(doc: Any, text: str) -> str:
    if isinstance(doc, dict):
        err = doc.get("error", doc.get("detail", doc.get("message")))
        if isinstance(err, dict):
            err = err.get("message", err)
        if err is not None:
            return " ".join(str(err).split())[:300]
    return " ".join(text.split())[:300] or "(empty reply)"


@dataclass
class _Scored:
    logprobs: list[float | None]  # one per prompt token; the first may be None
    tokens: list[str]  # the prompt's tokens as the server writes them ("" where it does not)


class _Client:
    """One session to the server, ``concurrency`` requests in flight, counted."""

    def __init__(self, base_url: str, model: str, concurrency: int, timeout_s: float) -> None:
        if concurrency < 1:
            raise ScoringError(f"scoring concurrency {concurrency}: give 1 or more")
        self.base = base_url.rstrip("/")
        self.root = self.base.removesuffix("/v1")
        self.model = model
        self.timeout_s = timeout_s
        self.sem = asyncio.Semaphore(concurrency)
        self.requests = 0
        self.via: LogprobsVia = "auto"
        self._session: Any = None
        self._errors: tuple[type[BaseException], ...] = ()

    async def __aenter__(self) -> _Client:
        try:
            import aiohttp
        except ImportError:
            raise ScoringError("scoring through a server needs aiohttp: pip install 'greenbench[serve]'") from None
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        self._session = aiohttp.ClientSession(timeout=timeout, trust_env=False,
                                              connector=aiohttp.TCPConnector(limit=0))
        self._errors = (aiohttp.ClientError, OSError)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._session.close()

    async def post(self, url: str, body: dict[str, Any]) -> tuple[int, Any, str]:
        async with self.sem:
            try:
                async with self._session.post(url, json=body) as resp:
                    status, text = resp.status, await resp.text()
            except asyncio.TimeoutError:
                raise ScoringError(f"POST {url}: no reply within {self.timeout_s:g} s") from None
            except self._errors as e:
                raise ScoringError(f"POST {url}: {_one_line(e)}") from None
        self.requests += 1
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        return status, doc, text

    async def tokenize(self, text: str, special: bool) -> list[int] | None:
        """vLLM's ``POST /tokenize`` (at the server's root); None where the server has none."""
        status, doc, _ = await self.post(self.root + "/tokenize",
                                         {"model": self.model, "prompt": text, "add_special_tokens": special})
        tokens = doc.get("tokens") if isinstance(doc, dict) else None
        if status != 200 or not isinstance(tokens, list) or not all(
                isinstance(t, int) and not isinstance(t, bool) for t in tokens):
            return None
        return tokens

    async def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        url = self.base + "/completions"
        status, doc, text = await self.post(url, {"model": self.model, "temperature": 0.0, **body})
        if status != 200:
            raise ScoringError(f"POST {url}: HTTP {status}: {_server_message(doc, text)}")
        if not isinstance(doc, dict) or not isinstance(doc.get("choices"), list) or not doc["choices"] \
                or not isinstance(doc["choices"][0], dict):
            raise _Unsupported(f"POST {url} did not reply with a JSON completion")
        return doc

    async def prompt_logprobs(self, prompt: Prompt) -> _Scored:
        """The log-probability of each prompt token given those before it, by ``self.via``."""
        if self.via == "auto":
            raise AssertionError("probe first")
        try:
            return await self._logprobs(prompt, self.via)
        except _Unsupported as e:
            raise ScoringError(f"server {self.base}: {e}") from None

    async def probe(self, prompt: Prompt, via: LogprobsVia) -> _Scored:
        """Score one prompt, choosing how (echo, else prompt_logprobs) when ``via`` is auto."""
        ways: list[LogprobsVia] = ["echo", "prompt_logprobs"] if via == "auto" else [via]
        why: list[str] = []
        refusals: list[str] = []
        for way in ways:
            try:
                scored = await self._logprobs(prompt, way)
            except _Unsupported as e:
                why.append(f"{way}: {e}")
                continue
            except ScoringError as e:
                if " HTTP 4" not in str(e):  # the server or the connection failed: not a missing feature
                    raise
                refusals.append(str(e))
                why.append(f"{way}: {str(e).split(': ', 1)[-1]}")  # the server refused the request's fields
                continue
            self.via = way
            return scored
        if len(refusals) > 1 and len(set(refusals)) == 1:  # refused alike whatever was asked: not the fields
            raise ScoringError(refusals[0])
        raise LogprobsUnsupported(
            f"server {self.base} returns no log-probabilities of a prompt ({'; '.join(why)}): multiple-choice "
            "accuracy and perplexity need completions with echo and logprobs, or vLLM's prompt_logprobs")

    async def _logprobs(self, prompt: Prompt, via: LogprobsVia) -> _Scored:
        body: dict[str, Any] = {"prompt": prompt, "max_tokens": 1}
        if via == "echo":
            body.update(echo=True, logprobs=1)
        else:
            body.update(prompt_logprobs=0)
        doc = await self.completion(body)
        choice = doc["choices"][0]
        ids = prompt if isinstance(prompt, list) else None
        if via == "echo":
            return self._from_echo(doc, choice, prompt, ids)
        return self._from_prompt_logprobs(choice, ids)

    @staticmethod
    def _prompt_count(doc: dict[str, Any], lp: dict[str, Any], text: str) -> int | None:
        usage = doc.get("usage")
        n = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        if isinstance(n, int) and not isinstance(n, bool):
            return n
        offsets = lp.get("text_offset")
        if isinstance(offsets, list) and all(isinstance(o, int) for o in offsets):
            return sum(o < len(text) for o in offsets)
        return None

    def _from_echo(self, doc: dict[str, Any], choice: dict[str, Any], prompt: Prompt,
                   ids: list[int] | None) -> _Scored:
        lp = choice.get("logprobs")
        values = lp.get("token_logprobs") if isinstance(lp, dict) else None
        if not isinstance(lp, dict) or not isinstance(values, list):
            raise _Unsupported("the reply has no logprobs.token_logprobs")
        n = len(ids) if ids is not None else self._prompt_count(doc, lp, str(prompt))
        if n is None:
            raise _Unsupported("the reply does not say how many tokens the prompt has (no usage.prompt_tokens)")
        if len(values) < n:
            raise _Unsupported(f"the reply's log-probabilities cover {len(values)} tokens, the prompt has {n} "
                               "(echo not honoured)")
        tokens = lp.get("tokens")
        toks = [str(t) for t in tokens[:n]] if isinstance(tokens, list) and len(tokens) >= n else [""] * n
        return _Scored(_checked(values[:n]), toks)

    def _from_prompt_logprobs(self, choice: dict[str, Any], ids: list[int] | None) -> _Scored:
        entries = choice.get("prompt_logprobs")
        if not isinstance(entries, list):
            raise _Unsupported("the reply has no prompt_logprobs")
        if ids is not None and len(entries) != len(ids):
            raise _Unsupported(f"prompt_logprobs cover {len(entries)} tokens, the prompt has {len(ids)}")
        values: list[Any] = []
        toks: list[str] = []
        for i, entry in enumerate(entries):
            if entry is None:
                values.append(None)
                toks.append("")
                continue
            if not isinstance(entry, dict) or not entry:
                raise _Unsupported(f"prompt_logprobs entry {i} is not a mapping of token ids")
            if ids is not None and str(ids[i]) in entry:
                item = entry[str(ids[i])]
            elif len(entry) == 1:  # prompt_logprobs 0: the prompt's own token only
                item = next(iter(entry.values()))
            else:
                raise _Unsupported(f"prompt_logprobs entry {i} does not name the prompt's token")
            value = item.get("logprob") if isinstance(item, dict) else item
            values.append(value)
            toks.append(str(item.get("decoded_token", "")) if isinstance(item, dict) else "")
        return _Scored(_checked(values), toks)


def _checked(values: list[Any]) -> list[float | None]:
    """The first token has no log-probability (None or a number); every other one must be finite."""
    out: list[float | None] = []
    for i, v in enumerate(values):
        if v is None and i == 0:
            out.append(None)
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _Unsupported(f"token {i} of the prompt has no log-probability ({v!r})")
        if not math.isfinite(v):
            raise ScoringError(f"token {i} of the prompt has a non-finite log-probability ({v}); the model "
                               "overflows at the server's precision")
        out.append(float(v))
    return out


def _sum(values: Sequence[float | None]) -> float:
    """A sum of log-probabilities past the first token (which has none, so never in a slice summed)."""
    return math.fsum(v for v in values if v is not None)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run the scoring's own loop here, or in a thread where this thread already runs one."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as e:
            box["error"] = e

    t = threading.Thread(target=target, name="greenbench-scoring")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def server_context(base_url: str, model: str, timeout_s: float = 5.0) -> int | None:
    """The model's ``max_model_len`` as ``GET /v1/models`` reports it (vLLM does), else None."""
    try:
        doc = get_json(base_url.rstrip("/") + "/models", timeout_s)
    except (OSError, ValueError):
        return None
    data = doc.get("data") if isinstance(doc, dict) else None
    for m in data if isinstance(data, list) else []:
        if isinstance(m, dict) and m.get("id") == model and isinstance(m.get("max_model_len"), int):
            return int(m["max_model_len"])
    return None


def _width(base_url: str, model: str, context_tokens: int | None) -> int:
    if context_tokens is not None:
        if context_tokens < 2:
            raise ScoringError(f"context_tokens {context_tokens}: give 2 or more")
        return context_tokens
    served = server_context(base_url, model)
    return min(EVAL_CONTEXT_CAP, served - 1) if served is not None and served > 2 else EVAL_CONTEXT_CAP


async def _use_server_tokens(client: _Client, tokenization: Tokenization, probe_text: str) -> bool:
    if tokenization == "text":
        return False
    ok = await client.tokenize(probe_text, True) is not None
    if not ok and tokenization == "server":
        raise ScoringError(f"server {client.root} has no POST /tokenize (vLLM's); use tokenization 'auto' or 'text'")
    return ok


async def _tokenize_all(client: _Client, texts: Sequence[tuple[str, bool]]) -> dict[tuple[str, bool], list[int]]:
    keys = list(dict.fromkeys(texts))
    got = await asyncio.gather(*(client.tokenize(t, s) for t, s in keys))
    out = {}
    for key, ids in zip(keys, got, strict=True):
        if ids is None:
            raise ScoringError(f"server {client.root}: POST /tokenize failed for {key[0][:60]!r}")
        out[key] = ids
    return out


async def _score_all(client: _Client, prompts: Sequence[Prompt], via: LogprobsVia) -> list[_Scored]:
    """Every prompt's log-probabilities, after a probe of a short prompt (the first two tokens or
    words of one) has chosen how: a long item that the server refuses is then its own error."""
    if not prompts:
        return []
    if client.via == "auto":
        first = prompts[0]
        await client.probe(first[:2] if isinstance(first, list) else " ".join(first.split()[:2]) or first, via)
    return list(await asyncio.gather(*(client.prompt_logprobs(p) for p in prompts)))


def _method(client: _Client, server_tokens: bool, width: int) -> tuple[dict[str, str], dict[str, float]]:
    method = {"tokenization": "server" if server_tokens else "text", "logprobs_via": client.via,
              "endpoint": client.base + "/completions"}
    return method, {"context_tokens": float(width), "requests": float(client.requests)}


# ------------------------------------------------------------------------------ multiple choice


def _choose(items: Sequence[MCItem], scores: list[float]) -> tuple[int, int]:
    """Correct answers by summed and by length-normalised log-likelihood (first best on a tie)."""
    correct = correct_norm = 0
    k = 0
    for item in items:
        part = scores[k:k + len(item.choices)]
        k += len(item.choices)
        best = max(range(len(part)), key=lambda j: (part[j], -j))
        norm = [s / max(1, len(c)) for s, c in zip(part, item.choices, strict=True)]
        best_norm = max(range(len(part)), key=lambda j: (norm[j], -j))
        correct += best == item.answer
        correct_norm += best_norm == item.answer
    return correct, correct_norm


async def _multiple_choice(base_url: str, model: str, items: Sequence[MCItem], concurrency: int, timeout_s: float,
                           tokenization: Tokenization, via: LogprobsVia, width: int) -> EndpointScore:
    if not items:
        raise ScoringError("no multiple-choice items to score")
    for i, it in enumerate(items, 1):
        if len(it.choices) < 2 or not 0 <= it.answer < len(it.choices):
            raise ScoringError(f"item {i}: needs 2 or more choices and an answer among them")
    async with _Client(base_url, model, concurrency, timeout_s) as client:
        server_tokens = await _use_server_tokens(client, tokenization, items[0].question)
        n_cont: list[int] = []
        if server_tokens:
            keys = [(it.question, True) for it in items] + [(" " + c, False) for it in items for c in it.choices]
            tok = await _tokenize_all(client, keys)
            prompts: list[Prompt] = []
            for qi, it in enumerate(items, 1):
                ctx = tok[(it.question, True)]
                if not ctx:
                    raise ScoringError(f"item {qi}: the question has no tokens")
                for c in it.choices:
                    cont = tok[(" " + c, False)]
                    if not cont:
                        raise ScoringError(f"item {qi}: choice {c!r} has no tokens")
                    ids = (ctx + cont)[-width:]
                    prompts.append(ids)
                    n_cont.append(min(len(cont), len(ids) - 1))
            scored = await _score_all(client, prompts, via)
            sums = [_sum(s.logprobs[len(s.logprobs) - k:]) for s, k in zip(scored, n_cont, strict=True)]
        else:
            texts = [it.question for it in items] + [f"{it.question} {c}" for it in items for c in it.choices]
            scored = await _score_all(client, texts, via)
            ctx_scored, full = scored[:len(items)], scored[len(items):]
            sums = []
            k = 0
            for qi, it in enumerate(items):
                ctx_toks = ctx_scored[qi].tokens
                for c in it.choices:
                    s = full[k]
                    k += 1
                    shared = 0
                    while shared < min(len(ctx_toks), len(s.tokens)) and ctx_toks[shared] == s.tokens[shared]:
                        shared += 1
                    start = max(1, min(shared, len(ctx_toks)))
                    if start >= len(s.logprobs):
                        raise ScoringError(f"item {qi + 1}: choice {c!r} has no tokens after the question")
                    n_cont.append(len(s.logprobs) - start)
                    sums.append(_sum(s.logprobs[start:]))
        correct, correct_norm = _choose(items, sums)
        method, more = _method(client, server_tokens, width)
    total = len(items)
    extra = {"accuracy_length_normalized": correct_norm / total, "choices_scored": float(len(sums)), **more}
    return EndpointScore("accuracy", correct / total, correct, total, wilson_interval(correct, total),
                         sum(n_cont), extra, method, tuple(sums))


def score_multiple_choice(base_url: str, model: str, items: Sequence[MCItem], *,
                          concurrency: int = DEFAULT_CONCURRENCY, timeout_s: float = DEFAULT_TIMEOUT_S,
                          tokenization: Tokenization = "auto", logprobs_via: LogprobsVia = "auto",
                          context_tokens: int | None = None) -> EndpointScore:
    """Multiple-choice accuracy by each choice's log-likelihood, through ``base_url`` (a /v1 URL)."""
    width = _width(base_url, model, context_tokens)
    return _run(_multiple_choice(base_url, model, items, concurrency, timeout_s, tokenization, logprobs_via, width))


# ----------------------------------------------------------------------------------- perplexity


def windows(ids: list[int], width: int) -> list[list[int]]:
    """hf-lm's windows: non-overlapping, at most ``width`` tokens; a lone last token is dropped."""
    return [ids[i:i + width] for i in range(0, len(ids), width) if len(ids[i:i + width]) >= 2]


async def _perplexity(base_url: str, model: str, texts: Sequence[str], concurrency: int, timeout_s: float,
                      tokenization: Tokenization, via: LogprobsVia, width: int) -> EndpointScore:
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise ScoringError("no non-empty text to score")
    async with _Client(base_url, model, concurrency, timeout_s) as client:
        server_tokens = await _use_server_tokens(client, tokenization, texts[0])
        prompts: list[Prompt]
        if server_tokens:
            tok = await _tokenize_all(client, [(t, True) for t in texts])
            prompts = [w for t in texts for w in windows(tok[(t, True)], width)]
            if not prompts:
                raise ScoringError("no text has 2 tokens or more to score")
            scored = await _score_all(client, prompts, via)
        else:
            try:
                scored = await _score_all(client, list(texts), via)
            except LogprobsUnsupported:
                raise
            except ScoringError as e:
                raise ScoringError(f"{e} (the server has no POST /tokenize, so a document longer than its "
                                   "context cannot be cut into windows)") from None
        nll: list[float] = []
        counts: list[int] = []
        for s in scored:
            if len(s.logprobs) < 2:  # a one-token document: nothing to predict
                continue
            nll.append(-_sum(s.logprobs[1:]))
            counts.append(len(s.logprobs) - 1)
        if not nll:
            raise ScoringError("no text has 2 tokens or more to score")
        method, more = _method(client, server_tokens, width)
    tokens = sum(counts)
    per_token = math.fsum(nll) / tokens
    ppl = math.exp(min(per_token, 700.0))
    ci = perplexity_interval(nll, counts)
    extra = {"perplexity": ppl, "tokens_scored": float(tokens), "nll_per_token": per_token, **more}
    if ci is not None:
        extra.update(perplexity_ci95_low=ci[0], perplexity_ci95_high=ci[1])
    return EndpointScore("perplexity", ppl, None, len(nll), ci, tokens, extra, method, tuple(nll))


def score_perplexity(base_url: str, model: str, texts: Sequence[str], *, concurrency: int = DEFAULT_CONCURRENCY,
                     timeout_s: float = DEFAULT_TIMEOUT_S, tokenization: Tokenization = "auto",
                     logprobs_via: LogprobsVia = "auto", context_tokens: int | None = None) -> EndpointScore:
    """Perplexity of ``texts`` (documents) from the server's prompt log-probabilities, windowed as hf-lm."""
    width = _width(base_url, model, context_tokens)
    return _run(_perplexity(base_url, model, texts, concurrency, timeout_s, tokenization, logprobs_via, width))


# ---------------------------------------------------------------------------------- exact match


async def _exact_match(base_url: str, model: str, items: Sequence[QAItem], concurrency: int, timeout_s: float,
                       max_tokens: int, stop: Sequence[str], template: str) -> EndpointScore:
    if not items:
        raise ScoringError("no short-answer items to score")
    if max_tokens < 1:
        raise ScoringError(f"exact match max_tokens {max_tokens}: give 1 or more")
    try:
        prompts = [template.format(question=it.question) for it in items]
    except (KeyError, IndexError, ValueError) as e:
        raise ScoringError(f"exact-match template {template!r}: {_one_line(e)} (it may name only {{question}})") \
            from None
    body: dict[str, Any] = {"max_tokens": max_tokens}
    if stop:
        body["stop"] = list(stop)
    async with _Client(base_url, model, concurrency, timeout_s) as client:
        async def one(prompt: str) -> tuple[str, int]:
            try:
                doc = await client.completion({"prompt": prompt, **body})
            except _Unsupported as e:
                raise ScoringError(f"server {client.base}: {e}") from None
            usage = doc.get("usage")
            n = usage.get("completion_tokens") if isinstance(usage, dict) else None
            return str(doc["choices"][0].get("text") or ""), int(n) if isinstance(n, int) else 0

        replies = await asyncio.gather(*(one(p) for p in prompts))
        requests = client.requests
        endpoint = client.base + "/completions"
    hits = []
    for it, (text, _) in zip(items, replies, strict=True):
        stripped = text.strip()
        said = normalize_answer(stripped.splitlines()[0] if stripped else "")
        hits.append(float(any(said == normalize_answer(a) for a in it.answers)))
    correct, total = int(sum(hits)), len(items)
    generated = sum(n for _, n in replies)
    extra = {"completion_tokens": float(generated), "requests": float(requests)}
    method = {"decoding": "greedy", "normalization": "squad", "endpoint": endpoint}
    return EndpointScore("exact_match", correct / total, correct, total, wilson_interval(correct, total),
                         generated, extra, method, tuple(hits))


def score_exact_match(base_url: str, model: str, items: Sequence[QAItem], *, concurrency: int = DEFAULT_CONCURRENCY,
                      timeout_s: float = DEFAULT_TIMEOUT_S, max_tokens: int = 32, stop: Sequence[str] = ("\n",),
                      template: str = "{question}") -> EndpointScore:
    """Exact match of greedy completions against each item's accepted answers (``normalize_answer``)."""
    return _run(_exact_match(base_url, model, items, concurrency, timeout_s, max_tokens, stop, template))


# --------------------------------------------------------------------------------- local files


def read_table(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV/TSV (header row), JSONL (one object a line) or JSON (a list, or {"data": [...]})."""
    return evalfiles.read_table(path, ScoringError)


def _column(rows: list[dict[str, Any]], name: str, where: Path) -> list[Any]:
    return evalfiles.column(rows, name, where, ScoringError)


def read_texts(path: Path, text_column: str = "text", limit: int | None = None) -> list[str]:
    """hf-lm's text documents: a TXT file's non-empty lines (stripped), or a table's text column."""
    if path.suffix.lower() == ".txt":
        texts = evalfiles.read_lines(path, ScoringError)
    else:
        texts = [str(t) for t in _column(read_table(path), text_column, path)]
    texts = texts[:limit] if limit is not None else texts
    if not texts:
        raise ScoringError(f"dataset {path}: no non-empty text")
    return texts


def read_multiple_choice(path: Path, question_column: str = "question", choices_column: str = "choices",
                         answer_column: str = "answer", limit: int | None = None) -> list[MCItem]:
    """hf-lm's multiple-choice items: choices a list (a JSON list or 'a|b|c' in a CSV cell, or ARC's
    {"text", "label"}), the answer an index, a letter, a label or the choice's text."""
    rows = read_table(path)
    rows = rows[:limit] if limit is not None else rows
    cols = [_column(rows, c, path) for c in (question_column, choices_column, answer_column)]
    items = []
    for i, (q, raw, a) in enumerate(zip(*cols, strict=True), 1):
        choices = evalfiles.choice_list(raw, path, i, ScoringError)
        items.append(MCItem(str(q), tuple(choices), evalfiles.answer_index(a, raw, choices, path, i, ScoringError)))
    return items


def read_short_answers(path: Path, question_column: str = "question", answer_column: str = "answer",
                       limit: int | None = None) -> list[QAItem]:
    """Short-answer items: the answer a string, or a list of accepted answers (a JSON list in a CSV cell)."""
    rows = read_table(path)
    rows = rows[:limit] if limit is not None else rows
    items = []
    for i, (q, a) in enumerate(zip(_column(rows, question_column, path), _column(rows, answer_column, path),
                                   strict=True), 1):
        if isinstance(a, str) and a.strip().startswith("["):
            try:
                a = json.loads(a)
            except json.JSONDecodeError:
                raise ScoringError(f"dataset {path}: item {i}: answer is not a valid JSON list") from None
        answers = [str(x) for x in a] if isinstance(a, list) else [str(a)]
        if not answers:
            raise ScoringError(f"dataset {path}: item {i}: no accepted answer")
        items.append(QAItem(str(q), tuple(answers)))
    return items


def score_file(base_url: str, model: str, path: Path, fmt: Literal["multiple-choice", "text", "short-answer"], *,
               question_column: str = "question", choices_column: str = "choices", answer_column: str = "answer",
               text_column: str = "text", limit: int | None = None, concurrency: int = DEFAULT_CONCURRENCY,
               timeout_s: float = DEFAULT_TIMEOUT_S, context_tokens: int | None = None) -> EndpointScore:
    """A local file scored by its format: accuracy, perplexity or exact match."""
    if fmt == "multiple-choice":
        return score_multiple_choice(base_url, model,
                                     read_multiple_choice(path, question_column, choices_column, answer_column, limit),
                                     concurrency=concurrency, timeout_s=timeout_s, context_tokens=context_tokens)
    if fmt == "text":
        return score_perplexity(base_url, model, read_texts(path, text_column, limit), concurrency=concurrency,
                                timeout_s=timeout_s, context_tokens=context_tokens)
    if fmt == "short-answer":
        return score_exact_match(base_url, model, read_short_answers(path, question_column, answer_column, limit),
                                 concurrency=concurrency, timeout_s=timeout_s)
    raise ScoringError(f"format {fmt!r}: scored through a server are multiple-choice, text and short-answer")
