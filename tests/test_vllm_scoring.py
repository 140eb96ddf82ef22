"""Quality through a real engine agrees with quality in-process: the tiny random-weight Llama served
by vLLM's CPU build (tests/vllm_fixtures.py) and scored by greenbench.serving.scoring, against the
same model folder loaded by greenbench's own hf-lm workload (float32, nothing downloaded).

Multiple-choice accuracy must be identical: the same choice wins every question (the closest two
choices of any question are checked to be far more apart than float32 rounding could move them).
Perplexity agrees within a relative 1e-5, with the same windows and the same count of tokens scored
(asserted exactly): both sides are float32, but vLLM's CPU kernels (its attention, fused RMSNorm and
SiLU, other reduction orders) round differently from torch's eager ones, about 1e-7 to 1e-6 on a
token's log-probability; averaged over ~3,000 tokens that leaves exp(mean NLL) within ~1e-6 (measured
here: 1.2e-7), and 1e-5 keeps a margin for other CPUs' kernels without hiding a rule that differs.
"""

from __future__ import annotations

import json
import random
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("aiohttp")

from greenbench.measure.zoo import Generation, HFDataset, HFModel  # noqa: E402
from greenbench.serving import scoring as sc  # noqa: E402
from greenbench.workloads.hf.lm import build_hf_lm  # noqa: E402
from tests.tiny_llama import WORDS  # noqa: E402

PPL_RTOL = 1e-5


def _words(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    """A multiple-choice CSV ('a|b|c' choices, letter answers), a JSONL (lists and ARC-style
    {"text", "label"} choices, index and label answers) and a text file, all in the model's words."""
    folder = tmp_path_factory.mktemp("scoring-data")
    rng = random.Random(12)
    csv_path = folder / "mc.csv"
    lines = ["question,choices,answer"]
    for _ in range(24):
        choices = "|".join(_words(rng, 1, 3) for _ in range(4))
        lines.append(f"{_words(rng, 4, 12)},{choices},{'ABCD'[rng.randrange(4)]}")
    csv_path.write_text("\n".join(lines) + "\n")
    jsonl = folder / "mc.jsonl"
    rows = []
    for i in range(16):
        choices = [_words(rng, 1, 4) for _ in range(rng.choice((2, 3, 5)))]
        if i % 2:
            rows.append({"question": _words(rng, 3, 9), "choices": choices, "answer": rng.randrange(len(choices))})
        else:
            labels = [str(k + 1) for k in range(len(choices))]
            rows.append({"question": _words(rng, 3, 9), "choices": {"text": choices, "label": labels},
                         "answer": rng.choice(labels)})
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = folder / "text.txt"
    docs = [_words(rng, 1, 200) for _ in range(30)]
    docs[3] = "sun"  # one token: nothing to score, dropped by both
    text.write_text("\n\n".join(docs) + "\n")  # blank lines between documents: skipped by both
    return {"mc.csv": csv_path, "mc.jsonl": jsonl, "text": text}


def _in_process(model: str, dataset: dict, cache: Path):
    w = build_hf_lm(HFModel(name="tiny-llama", id=model), HFDataset(**dataset), "fp32", "cpu", cache,
                    generation=Generation(prompt_tokens=8, output_tokens=2), trust_remote_code=False)
    try:
        return w.evaluate(8)
    finally:
        w.close()


@pytest.mark.parametrize("name", ["mc.csv", "mc.jsonl"])
def test_multiple_choice_through_vllm_matches_hf_lm(vllm_server, data, tmp_path, name):
    url, model = vllm_server.url, vllm_server.model
    got = sc.score_file(url, model, data[name], "multiple-choice", concurrency=8)
    want = _in_process(model, {"path": str(data[name]), "format": "multiple-choice"}, tmp_path)
    assert got.method["tokenization"] == "server" and got.method["logprobs_via"] == "echo"
    assert (got.correct, got.total) == (want.correct, want.total)
    assert got.extra["accuracy_length_normalized"] == pytest.approx(want.extra["accuracy_length_normalized"])
    assert got.extra["choices_scored"] == want.extra["choices_scored"]
    assert got.ci95 == pytest.approx(sc.wilson_interval(want.correct, want.total))
    # the winner is not a float tie: the closest two choices of every question are far apart
    items = sc.read_multiple_choice(data[name])
    k, gaps = 0, []
    for it in items:
        part = sorted(got.item_scores[k:k + len(it.choices)], reverse=True)
        k += len(it.choices)
        gaps.append(part[0] - part[1])
    assert min(gaps) > 1e-4, min(gaps)
    print(f"{name}: vLLM {got.correct}/{got.total}, hf-lm {want.correct}/{want.total}, "
          f"closest two choices {min(gaps):.2e} apart")
    # vLLM's prompt_logprobs and text prompts (no /tokenize) give the same sums here: a word-level
    # tokenizer has no token across the question/choice boundary
    for how in ({"logprobs_via": "prompt_logprobs"}, {"tokenization": "text"}):
        other = sc.score_multiple_choice(url, model, items, concurrency=8, **how)  # type: ignore[arg-type]
        assert other.item_scores == pytest.approx(got.item_scores, abs=1e-5)
        assert other.correct == got.correct


def test_perplexity_through_vllm_matches_hf_lm(vllm_server, data, tmp_path):
    url, model = vllm_server.url, vllm_server.model
    got = sc.score_file(url, model, data["text"], "text", concurrency=8)
    want = _in_process(model, {"path": str(data["text"]), "format": "text"}, tmp_path)
    assert got.total == want.total == 29  # one window per document, the one-token document dropped
    assert got.tokens_scored == want.extra["tokens_scored"]
    assert got.value == pytest.approx(want.extra["perplexity"], rel=PPL_RTOL)
    assert got.extra["nll_per_token"] == pytest.approx(want.extra["nll_per_token"], rel=PPL_RTOL)
    lo, hi = got.ci95 or (0, 0)
    assert lo < got.value < hi
    print(f"perplexity: vLLM {got.value:.6f}, hf-lm {want.extra['perplexity']:.6f}, "
          f"relative difference {abs(got.value / want.extra['perplexity'] - 1):.2e}")


def _greedy(url: str, model: str, prompt: str, max_tokens: int) -> str:
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0}).encode()
    req = urllib.request.Request(url + "/completions", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 -- the test's own server
        return str(json.loads(r.read())["choices"][0]["text"])


def test_exact_match_and_long_documents_through_vllm(vllm_server):
    url, model = vllm_server.url, vllm_server.model
    # the random model's greedy answers, whatever they are, match themselves written otherwise
    questions = ["the sun is", "what is the water", "how many people"]
    said = [_greedy(url, model, q, 3) for q in questions]
    items = [sc.QAItem(q, ("nothing", f" {s.upper()}. ")) for q, s in zip(questions, said, strict=True)]
    items.append(sc.QAItem("the sun is", ("not " + said[0],)))
    em = sc.score_exact_match(url, model, items, max_tokens=3)
    assert (em.correct, em.total) == (3, 4) and em.item_scores == (1.0, 1.0, 1.0, 0.0)
    assert em.tokens_scored == 12 and em.ci95 == pytest.approx(sc.wilson_interval(3, 4))
    # windows cut to the server's context (max_model_len 256, less the token generated): a
    # document of 600 tokens is three windows, 255 + 255 + 90
    long_doc = " ".join(WORDS[4 + i % 200] for i in range(600))
    ppl = sc.score_perplexity(url, model, [long_doc])
    assert ppl.extra["context_tokens"] == 255 and ppl.total == 3 and ppl.tokens_scored == 254 + 254 + 89
