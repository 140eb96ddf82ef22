"""Quality through the endpoint (greenbench.serving.scoring) against the stub server's scoring modes
(tests/stub_server.py): a token's log-probability there is -len(word) / 2 whatever precedes it,
``<s>`` opens a prompt with special tokens, "new york" is one token, and the greedy answer is the
prompt's last word, so every expected figure below is worked out by hand. Then the error paths:
a server without log-probabilities, HTTP 500, no server at all, bad data.
The same rules against a real engine, checked against hf-lm in-process: tests/test_vllm_scoring.py.
"""

from __future__ import annotations

import asyncio
import json
import math

import pytest

pytest.importorskip("aiohttp")

from greenbench import stats  # noqa: E402
from greenbench.errors import GreenbenchError  # noqa: E402
from greenbench.serving import scoring as sc  # noqa: E402
from greenbench.serving.server import free_port  # noqa: E402
from tests.stub_server import StubConfig, ThreadServer  # noqa: E402

MODEL = "stub-model"


def lp(*words: str) -> float:
    """The stub's log-likelihood of these tokens."""
    return sum(-len(w) / 2 for w in words)


def stub(**kw) -> ThreadServer:
    return ThreadServer(StubConfig(**{"scoring": "echo", "first_token_ms": 0.0, **kw}), free_port())


# Sums: blue -2, green -2.5, reddish -3.5 (0 wins); aaaa -2, "b c d" -1.5 (1); zz -1, "y y y y" -2 (0,
# not the answer 1); ab = cd = -1 (a tie: the first, 0, not the answer 1). Per character: all -0.5 in
# the first (tie: 0); -0.5 vs -0.3 (1); -0.5 vs -2/7 (1, the answer); -0.5 twice (0).
ITEMS = [
    sc.MCItem("the sky is", ("blue", "green", "reddish"), 0),
    sc.MCItem("pick one", ("aaaa", "b c d"), 1),
    sc.MCItem("x", ("zz", "y y y y"), 1),
    sc.MCItem("tie", ("ab", "cd"), 1),
]
SUMS = (lp("blue"), lp("green"), lp("reddish"), lp("aaaa"), lp("b", "c", "d"), lp("zz"), lp("y", "y", "y", "y"),
        lp("ab"), lp("cd"))


def test_multiple_choice_is_the_summed_log_likelihood_of_each_choice_after_its_question():
    with stub() as s:
        got = sc.score_multiple_choice(s.url, MODEL, ITEMS)
    assert got.metric == "accuracy" and (got.correct, got.total) == (2, 4) and got.value == 0.5
    assert got.item_scores == SUMS  # the question's own tokens never counted
    assert got.extra["accuracy_length_normalized"] == 0.75 and got.extra["choices_scored"] == 9
    assert got.tokens_scored == 1 + 1 + 1 + 1 + 3 + 1 + 4 + 1 + 1
    assert got.ci95 == stats.wilson_interval(2, 4)
    assert got.method["tokenization"] == "server" and got.method["logprobs_via"] == "echo"
    assert got.extra["context_tokens"] == 63  # the stub's max_model_len 64, less the token generated


@pytest.mark.parametrize("kw, via, tokenization", [
    ({"scoring": "prompt-logprobs"}, "prompt_logprobs", "server"),  # echo not honoured: vLLM's field instead
    ({"tokenize": False}, "echo", "text"),  # no /tokenize: text prompts
    ({"scoring": "prompt-logprobs", "tokenize": False}, "prompt_logprobs", "text"),
])
def test_other_ways_to_the_same_log_likelihoods(kw, via, tokenization):
    with stub(**kw) as s:
        got = sc.score_multiple_choice(s.url, MODEL, ITEMS)
        items = sc.score_multiple_choice(s.url, MODEL, ITEMS, logprobs_via=via)
    assert got.item_scores == items.item_scores == SUMS and got.correct == 2
    assert (got.method["logprobs_via"], got.method["tokenization"]) == (via, tokenization)


def test_token_ids_split_context_and_choice_exactly_where_text_cannot():
    # "new" + " york": hf-lm tokenises the question and the choice apart, so does the server path;
    # a text prompt is tokenised whole, "new york" is one token, and the continuation starts there
    item = [sc.MCItem("i love new", ("york", "jersey"), 0)]
    with stub() as s:
        exact = sc.score_multiple_choice(s.url, MODEL, item)
        text = sc.score_multiple_choice(s.url, MODEL, item, tokenization="text")
    assert exact.item_scores == (lp("york"), lp("jersey")) and exact.correct == 1
    assert text.item_scores == (lp("new york"), lp("jersey")) and text.correct == 0
    assert text.method["tokenization"] == "text"


def test_a_long_item_keeps_its_last_context_tokens_as_hf_lm_does():
    # <s> a b c d e + f g, cut to the last 4: d e f g, both choice tokens scored; with five
    # choice tokens, g h i j is kept and only its last 3 are scored (the first has no context)
    item = [sc.MCItem("a b c d e", ("f g", "f g h i j"), 0)]
    with stub() as s:
        got = sc.score_multiple_choice(s.url, MODEL, item, context_tokens=4)
    assert got.item_scores == (lp("f", "g"), lp("h", "i", "j")) and got.tokens_scored == 5


def test_perplexity_over_documents_with_its_interval():
    docs = ["aa bbb c", "", "   ", "dddd", "e ff ggg hhhh"]  # blank ones skipped
    nll, n = [3.0, 2.0, 5.0], [3, 1, 4]  # <s> opens each document and is never predicted
    with stub() as s:
        got = sc.score_perplexity(s.url, MODEL, docs)
    assert got.metric == "perplexity" and got.correct is None and got.total == 3 and got.tokens_scored == 8
    assert got.value == pytest.approx(math.exp(10 / 8)) and got.extra["perplexity"] == got.value
    assert got.extra["nll_per_token"] == pytest.approx(1.25) and got.item_scores == tuple(nll)
    r = 10 / 8
    var = 3 / 2 * sum((a - r * b) ** 2 for a, b in zip(nll, n, strict=True)) / 8 ** 2
    want = (math.exp(r - 1.959963984540054 * var ** 0.5), math.exp(r + 1.959963984540054 * var ** 0.5))
    assert got.ci95 == pytest.approx(want)
    assert (got.extra["perplexity_ci95_low"], got.extra["perplexity_ci95_high"]) == pytest.approx(want)
    with stub() as s:
        one = sc.score_perplexity(s.url, MODEL, ["aa bbb"])
    assert one.ci95 is None and "perplexity_ci95_low" not in one.extra  # one window: no interval


def test_perplexity_windows_are_hf_lms():
    # context 3: <s> e ff | ggg hhhh (ggg opens its window, unscored); <s> aa bbb | c (a lone token: dropped)
    with stub() as s:
        got = sc.score_perplexity(s.url, MODEL, ["e ff ggg hhhh", "aa bbb c"], context_tokens=3)
        assert sc.windows(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5]]
        assert got.total == 3 and got.tokens_scored == 2 + 1 + 2
        assert got.value == pytest.approx(math.exp((lp("e", "ff") + lp("hhhh") + lp("aa", "bbb")) / -5))
        # by default the windows fit the server: max_model_len 64 less one, so 100 tokens are 63 + 37
        long_doc = " ".join(["w"] * 99)
        default = sc.score_perplexity(s.url, MODEL, [long_doc])
    assert default.total == 2 and default.tokens_scored == 62 + 36


def test_perplexity_without_tokenize_scores_text_prompts_and_says_why_a_long_one_fails():
    with stub(tokenize=False) as s:
        got = sc.score_perplexity(s.url, MODEL, ["aa bbb c", "dddd"])
        assert got.value == pytest.approx(math.exp(5 / 4)) and got.method["tokenization"] == "text"
        with pytest.raises(sc.ScoringError, match=r"HTTP 400.*maximum model length.*no POST /tokenize") as e:
            sc.score_perplexity(s.url, MODEL, [" ".join(["w"] * 99)])
    assert "\n" not in str(e.value)


def test_exact_match_normalises_and_stops_at_a_newline():
    items = [sc.QAItem("the capital is Paris", ("paris",)),  # " Paris" -> "paris"
             sc.QAItem("the city is Rome", ("nowhere", "The  Rome!")),  # any accepted answer; article dropped
             sc.QAItem("say End.", ("end",)),  # punctuation dropped
             sc.QAItem("colour blue", ("red",))]
    with stub() as s:
        got = sc.score_exact_match(s.url, MODEL, items, concurrency=2)
        no_stop = sc.score_exact_match(s.url, MODEL, items, stop=(), max_tokens=3)  # " Paris\nmore": first line
        templated = sc.score_exact_match(s.url, MODEL, [sc.QAItem("what", ("ok",))], template="{question} is OK")
        with pytest.raises(sc.ScoringError, match="template"):
            sc.score_exact_match(s.url, MODEL, items, template="{answer}")
    assert got.metric == "exact_match" and (got.correct, got.total) == (3, 4) and got.item_scores == (1, 1, 1, 0)
    assert got.tokens_scored == 4 and got.ci95 == stats.wilson_interval(3, 4)
    assert no_stop.correct == 3 and no_stop.tokens_scored == 12
    assert templated.correct == 1


def test_normalize_answer():
    assert sc.normalize_answer("  The  Eiffel-Tower!! ") == "eiffel tower"
    assert sc.normalize_answer("An apple, a pear") == "apple pear"
    assert sc.normalize_answer("ｆｕｌｌ width") == "full width"  # NFKC
    assert sc.normalize_answer("theory") == "theory"  # an article only as a word


def test_items_are_scored_concurrently_within_the_bound():
    items = [sc.MCItem(f"q{i}", ("a", "b", "c"), 0) for i in range(20)]
    with stub(first_token_ms=20.0) as s:
        sc.score_multiple_choice(s.url, MODEL, items, concurrency=4)
        assert s.cfg.stats["peak_in_flight"] == 4 and s.cfg.stats["requests"] == 1 + 60  # a probe, then the choices
        s.cfg.stats.clear()
        sc.score_multiple_choice(s.url, MODEL, items, concurrency=32)
        assert 8 < s.cfg.stats["peak_in_flight"] <= 32


@pytest.mark.parametrize("scoring", ["none", ""])  # JSON without log-probabilities; an SSE stream
def test_a_server_without_prompt_logprobs_is_one_clear_error(scoring):
    with stub(scoring=scoring, tokenize=False) as s:
        for call in (lambda: sc.score_multiple_choice(s.url, MODEL, ITEMS),
                     lambda: sc.score_perplexity(s.url, MODEL, ["aa bbb c"])):
            with pytest.raises(sc.LogprobsUnsupported) as e:
                call()
            msg = str(e.value)
            assert isinstance(e.value, GreenbenchError) and "\n" not in msg
            assert "returns no log-probabilities of a prompt" in msg and "echo:" in msg and "prompt_logprobs:" in msg
    if scoring == "none":
        assert "Unrecognized request argument" in msg  # the server's own word on prompt_logprobs


def test_forcing_a_way_the_server_lacks():
    with stub(scoring="prompt-logprobs") as s, \
            pytest.raises(sc.LogprobsUnsupported, match=r"echo: .*echo not honoured"):
        sc.score_multiple_choice(s.url, MODEL, ITEMS, logprobs_via="echo")
    with stub(tokenize=False) as s, pytest.raises(sc.ScoringError, match="no POST /tokenize"):
        sc.score_perplexity(s.url, MODEL, ["aa bbb"], tokenization="server")


def test_server_failures_are_one_line_and_not_blamed_on_logprobs():
    with stub(fail="http500") as s, pytest.raises(sc.ScoringError, match="HTTP 500: internal error") as e:
        sc.score_perplexity(s.url, MODEL, ["aa bbb c"], tokenization="text")
    assert not isinstance(e.value, sc.LogprobsUnsupported)
    with pytest.raises(sc.ScoringError, match=r"POST http://127\.0\.0\.1:\d+/tokenize: ClientConnector") as e:
        sc.score_perplexity(f"http://127.0.0.1:{free_port()}/v1", MODEL, ["aa bbb c"], timeout_s=5)
    assert "\n" not in str(e.value)


def test_a_slow_server_times_out_and_a_caller_inside_an_event_loop_still_scores():
    with stub(first_token_ms=1500.0) as s, pytest.raises(sc.ScoringError, match=r"no reply within 0\.5 s"):
        sc.score_perplexity(s.url, MODEL, ["aa bbb c"], timeout_s=0.5)

    async def inside() -> sc.EndpointScore:  # the scoring's own loop then runs in a thread
        return sc.score_multiple_choice(s.url, MODEL, ITEMS)

    with stub() as s:
        assert asyncio.run(inside()).item_scores == SUMS


def test_bad_items():
    with stub() as s:
        with pytest.raises(sc.ScoringError, match="no multiple-choice items"):
            sc.score_multiple_choice(s.url, MODEL, [])
        with pytest.raises(sc.ScoringError, match="item 1: needs 2 or more choices"):
            sc.score_multiple_choice(s.url, MODEL, [sc.MCItem("q", ("a", "b"), 2)])
        with pytest.raises(sc.ScoringError, match="choice ' ' has no tokens"):
            sc.score_multiple_choice(s.url, MODEL, [sc.MCItem("q", ("a", " "), 0)])
        with pytest.raises(sc.ScoringError, match="no non-empty text"):
            sc.score_perplexity(s.url, MODEL, ["", " "])
        with pytest.raises(sc.ScoringError, match="context_tokens 1: give 2 or more"):
            sc.score_perplexity(s.url, MODEL, ["one"], context_tokens=1)


# ---------------------------------------------------------------------------------------- files


def test_files_are_read_by_hf_lms_rules(tmp_path):
    torch = pytest.importorskip("torch")  # hf-lm's readers live beside torch code
    del torch
    from greenbench.measure.zoo import HFDataset
    from greenbench.workloads.hf.lm import dataset_texts, multiple_choice_items

    csv_path = tmp_path / "mc.csv"
    csv_path.write_text('question,choices,answer\nthe sky is,blue|green|red,A\npick,"[""x"", ""y z""]",y z\n'
                        "count,one|two|three,2\n")
    jsonl = tmp_path / "mc.jsonl"
    jsonl.write_text(json.dumps({"question": "q", "choices": {"text": ["a", "b"], "label": ["1", "2"]}, "answer": "2"})
                     + "\n" + json.dumps({"question": "r", "choices": ["c", "d", "e"], "answer": 0}) + "\n")
    for path in (csv_path, jsonl):
        want, _ = multiple_choice_items(HFDataset(path=str(path), format="multiple-choice"), False)
        got = sc.read_multiple_choice(path)
        assert [(i.question, list(i.choices), i.answer) for i in got] == [(q, c, a) for q, c, a in want]
    assert [i.answer for i in sc.read_multiple_choice(csv_path)] == [0, 1, 2]
    assert len(sc.read_multiple_choice(csv_path, limit=2)) == 2
    text = tmp_path / "t.txt"
    text.write_text(" one two \n\n three\n")
    table = tmp_path / "t.jsonl"
    table.write_text('{"body": "x y"}\n{"body": "z"}\n')
    for path, column in ((text, "text"), (table, "body")):
        want_texts, _ = dataset_texts(HFDataset(path=str(path), format="text", text_column=column), False)
        assert sc.read_texts(path, column) == want_texts
    assert sc.read_texts(text) == ["one two", "three"]


def test_file_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("question,choices,answer\nq,a|b,C\n")
    with pytest.raises(sc.ScoringError, match=r"item 1: answer 'C' is outside its 2 choices"):
        sc.read_multiple_choice(bad)
    with pytest.raises(sc.ScoringError, match=r"item 1 has no 'prompt' \(columns: question, choices, answer\)"):
        sc.read_multiple_choice(bad, question_column="prompt")
    with pytest.raises(sc.ScoringError, match=r"unknown file type \.xml"):
        sc.read_table(tmp_path / "x.xml")
    (tmp_path / "x.jsonl").write_text("{nope\n")
    with pytest.raises(sc.ScoringError, match="line 1 is not valid JSON"):
        sc.read_table(tmp_path / "x.jsonl")
    with pytest.raises(sc.ScoringError, match="cannot read"):
        sc.read_table(tmp_path / "missing.csv")


def test_score_file_dispatches_on_the_format(tmp_path):
    mc = tmp_path / "mc.jsonl"
    mc.write_text("".join(json.dumps({"question": i.question, "choices": list(i.choices), "answer": i.answer}) + "\n"
                          for i in ITEMS))
    qa = tmp_path / "qa.csv"
    qa.write_text('question,answer\nthe capital is Paris,"[""Paris"", ""paree""]"\ncolour blue,red\n')
    text = tmp_path / "t.txt"
    text.write_text("aa bbb c\ndddd\ne ff ggg hhhh\n")
    with stub() as s:
        assert sc.score_file(s.url, MODEL, mc, "multiple-choice").item_scores == SUMS
        em = sc.score_file(s.url, MODEL, qa, "short-answer")
        assert (em.metric, em.correct, em.total) == ("exact_match", 1, 2)
        assert sc.score_file(s.url, MODEL, text, "text").value == pytest.approx(math.exp(10 / 8))
        with pytest.raises(sc.ScoringError, match="format 'classification'"):
            sc.score_file(s.url, MODEL, text, "classification")  # type: ignore[arg-type]
    assert sc.read_short_answers(qa)[0].answers == ("Paris", "paree")
