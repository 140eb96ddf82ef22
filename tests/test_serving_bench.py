"""benchmarks/serving_vs_vllm_bench.py: figures from a `vllm bench serve` result and from greenbench's
traces, the verdict (met, NOT met, inconclusive when rounds spread wider than the gap to the target),
its argument errors (one line, exit 2), greenbench's counted load against the stub server, the
served ladders shipped for GPU boxes, and, where vLLM's CPU environment is built, a short real run
of both clients against one vLLM server. No timing is asserted."""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("aiohttp")

from greenbench.measure import zoo as zoomod  # noqa: E402
from greenbench.serving import server as srv  # noqa: E402
from greenbench.serving.load import LoadSpec, RequestTrace  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "serving_vs_vllm_bench.py"
_spec = importlib.util.spec_from_file_location("serving_vs_vllm_bench", SCRIPT)
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
sys.modules["serving_vs_vllm_bench"] = bench  # its dataclasses look their module up
_spec.loader.exec_module(bench)

BUILD = "bash .ci/vllm_env.sh"

# What `vllm bench serve --save-result` wrote here (vLLM 0.32.0, concurrency 4, 32 + 32 tokens), cut
VLLM_RESULT = {
    "backend": "vllm", "model_id": "/tmp/tiny-llama", "num_prompts": 200, "request_rate": "inf",
    "max_concurrency": 4, "duration": 5.490843591000157, "completed": 200, "failed": 0,
    "total_input_tokens": 6400, "total_output_tokens": 6400, "request_throughput": 36.42,
    "output_throughput": 1165.576817829961, "total_token_throughput": 2331.15,
    "mean_ttft_ms": 85.3, "median_ttft_ms": 65.80809949991817, "p99_ttft_ms": 242.9,
    "mean_tpot_ms": 0.58, "median_tpot_ms": 1.0258917741795754, "p99_tpot_ms": 3.15,
}


def test_vllm_figures_are_read_from_its_result():
    f = bench.vllm_figures(VLLM_RESULT)
    assert f.output_tokens_per_s == pytest.approx(1165.576817829961)
    assert f.ttft_p50_ms == pytest.approx(65.80809949991817)
    assert f.tpot_p50_ms == pytest.approx(1.0258917741795754)
    assert (f.completed, f.failed, f.output_tokens) == (200, 0, 6400)
    assert f.prompt_tokens_mean == 32 and f.duration_s == pytest.approx(5.4908, rel=1e-4)


def test_the_burst_share_of_a_detailed_result():
    detailed = {**VLLM_RESULT, "ttfts": [0.010, 0.020, 0.030, 0.040], "latencies": [0.0101, 0.060, 0.0305, 0.09],
                "output_lens": [32, 32, 32, 1]}
    assert bench.vllm_figures(detailed).burst_share == pytest.approx(2 / 3)  # one token: no span to judge
    assert bench.vllm_figures(VLLM_RESULT).burst_share is None


def test_a_result_without_its_figures_or_requests_is_one_line():
    with pytest.raises(bench.BenchError, match="no median_ttft_ms, median_tpot_ms"):
        bench.vllm_figures({k: v for k, v in VLLM_RESULT.items() if k not in ("median_ttft_ms", "median_tpot_ms")})
    with pytest.raises(bench.BenchError, match="completed no request: ConnectionRefused"):
        bench.vllm_figures({**VLLM_RESULT, "completed": 0, "errors": ["Traceback\n  ...\nConnectionRefused"]})


def _trace(sent, first, gap, n, done_after=0.0005):
    times = [first + i * gap for i in range(n)]
    return RequestTrace(sent_s=sent, prompt_tokens=32, chunk_times_s=times, chunk_tokens=[1] * n,
                        done_s=times[-1] + done_after, output_tokens=n)


def test_greenbench_figures_are_computed_as_vllm_computes_its_own():
    traces = [_trace(0.0, 0.010, 0.001, 32), _trace(0.0, 0.020, 0.002, 32), _trace(0.1, 0.130, 0.003, 32),
              RequestTrace(sent_s=0.2, error="HTTP 500: boom")]
    f = bench.greenbench_figures(traces, client_cpu_s=0.01)
    end = 0.130 + 31 * 0.003 + 0.0005  # the last [DONE]
    assert f.output_tokens_per_s == pytest.approx(96 / end)  # all tokens over first send -> last [DONE]
    assert f.ttft_p50_ms == pytest.approx(20.0)  # the median of 10, 20, 30 ms
    # TPOT: ([DONE] - first token) / (tokens - 1); the last-chunk variant is vLLM's own end
    assert f.tpot_p50_ms == pytest.approx((31 * 0.002 + 0.0005) / 31 * 1e3)
    assert f.tpot_last_chunk_p50_ms == pytest.approx(2.0)
    assert (f.completed, f.failed, f.output_tokens, f.prompt_tokens_mean) == (3, 1, 96, 32)
    assert f.burst_share == 0.0
    burst = bench.greenbench_figures([_trace(0.0, 0.05, 0.00001, 32), _trace(0.0, 0.05, 0.001, 32)])
    assert burst.burst_share == 0.5
    with pytest.raises(bench.BenchError, match="completed no request: HTTP 500"):
        bench.greenbench_figures([RequestTrace(sent_s=0.0, error="HTTP 500: boom")])


def test_met_not_met_and_inconclusive():
    tol = 0.05
    v = bench.judge("tpot_p50_ms", [1.01, 1.02, 1.015], [1.0, 1.005, 1.0], tol)
    assert v.verdict == bench.MET and v.ratio == pytest.approx(1.015 / 1.00167, rel=1e-3)
    v = bench.judge("tpot_p50_ms", [1.30, 1.31, 1.30], [1.0, 1.01, 1.0], tol)
    assert v.verdict == bench.NOT_MET and v.gap == pytest.approx(abs(tol - (v.ratio - 1)))
    # the ratio sits 1% from the target's edge, and the rounds of one client spread 20%
    v = bench.judge("tpot_p50_ms", [1.04, 0.94, 1.14], [1.0, 1.0, 1.0], tol)
    assert v.verdict == bench.INCONCLUSIVE and v.spread == pytest.approx(0.2 / 1.04) and "spread" in v.why
    # below vLLM counts as far as above: "within" is both ways
    assert bench.judge("x", [0.80, 0.80], [1.0, 1.0], tol).verdict == bench.NOT_MET
    one = bench.judge("x", [1.0], [1.0], tol)
    assert one.verdict == bench.INCONCLUSIVE and "one round" in one.why
    assert bench.judge("x", [1.0, 1.0], [0.0, 0.0], tol).verdict == bench.INCONCLUSIVE
    assert bench.judge("x", [math.nan, 1.0], [1.0, 1.0], tol).verdict == bench.INCONCLUSIVE


def test_verdicts_and_the_table_cover_the_three_figures():
    def figs(tps, ttft, tpot):
        return bench.Figures(output_tokens_per_s=tps, ttft_p50_ms=ttft, tpot_p50_ms=tpot, completed=10,
                             failed=0, duration_s=1.0, output_tokens=320)
    rounds = [{"greenbench": figs(2900, 7.5, 1.11), "vllm": figs(2950, 7.2, 1.10)},
              {"greenbench": figs(2880, 7.4, 1.12), "vllm": figs(2920, 7.3, 1.10)}]
    vs = bench.verdicts(rounds)
    assert [v.figure for v in vs] == ["output_tokens_per_s", "ttft_p50_ms", "tpot_p50_ms"]
    assert [v.tolerance for v in vs] == [0.05, 0.10, 0.05]
    lines = bench.table(vs)
    assert lines[0].split()[:3] == ["figure", "greenbench", "vllm"]
    assert len(lines) == 4 and "2,890" in lines[1] and "±10%" in lines[2]


def test_the_verdict_is_taken_over_the_runs_the_server_streamed_to_where_each_client_has_two():
    def figs(others, burst=0.0, tps=1.0):
        return bench.Figures(output_tokens_per_s=tps, ttft_p50_ms=1.0, tpot_p50_ms=1.0, completed=1, failed=0,
                             duration_s=1.0, output_tokens=2, other_engines=others, burst_share=burst)
    rounds = [{"greenbench": figs(0), "vllm": figs(1)}, {"greenbench": figs(0), "vllm": figs(0)},
              {"greenbench": figs(0, tps=2.0), "vllm": figs(0)}, {"greenbench": figs(0, 0.9, tps=9.0), "vllm": figs(0)}]
    runs, why = bench.judged_runs(rounds)
    assert runs == {"greenbench": [0, 1, 2], "vllm": [1, 2, 3]} and "streamed to the client" in why
    v = bench.verdicts(rounds, runs)[0]
    assert v.greenbench == pytest.approx(4 / 3) and v.vllm == 1.0  # the burst run (9 tokens/s) left out
    runs, why = bench.judged_runs(rounds[:2])
    assert runs == {"greenbench": [0, 1], "vllm": [0, 1]} and why.startswith(bench.TOO_BUSY)
    assert bench.judged_runs(rounds[1:3]) == ({"greenbench": [0, 1], "vllm": [0, 1]},
                                              "every run (the server streamed to both clients in each)")
    attached = [{"greenbench": figs(None), "vllm": figs(None)}] * 3  # another engine not known: not counted
    assert bench.judged_runs(attached)[0]["vllm"] == [0, 1, 2]
    unknown = [{"greenbench": figs(0, None), "vllm": figs(0)}] * 2  # bursts not known: not streaming
    assert bench.judged_runs(unknown)[1].startswith(bench.TOO_BUSY)
    assert bench.count_other_engines(None) is None
    assert bench.count_other_engines(os.getpgid(0)) >= 0


def test_the_vllm_bench_command_matches_the_load():
    cmd = bench.vllm_bench_command(Path("/v"), "http://127.0.0.1:8011/v1", "/m", input_len=32, output_len=16,
                                   concurrency=4, num_prompts=100, seed=3, result=Path("/w/r.json"))
    text = " ".join(cmd)
    assert cmd[:3] == ["/v/bin/vllm", "bench", "serve"]
    for part in ("--backend vllm", "--base-url http://127.0.0.1:8011 ", "--random-input-len 32",
                 "--random-output-len 16", "--max-concurrency 4", "--num-prompts 100", "--ignore-eos",
                 "--seed 3", "--result-dir /w", "--result-filename r.json", "--dataset-name random",
                 "--save-detailed"):
        assert part in text + " ", part


def _run_script(*args, **env):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env}, cwd=ROOT)


@pytest.fixture
def fake_venv(tmp_path):
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "vllm").write_text("")
    return tmp_path / "venv"


@pytest.mark.parametrize(("args", "message"), [
    (["--concurrency", "0"], "--concurrency: 0: give 1 or more"),
    (["--rounds", "x"], "--rounds: 'x' is not a whole number"),
    (["--output-len", "1"], "--output-len: give 2 or more"),
    (["--num-prompts", "2", "--concurrency", "4"], "--num-prompts 2 is below --concurrency 4"),
    (["--url", "ftp://x"], "give an http:// base URL"),
    (["--model", "/nonexistent/model"], "not a model folder (no config.json)"),
    (["--warmup", "-1"], "--warmup: give 0 or more"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
])
def test_bad_input_is_one_line_and_exit_2(fake_venv, args, message):
    res = _run_script("--venv", str(fake_venv), *args)
    assert res.returncode == 2 and res.stdout == ""
    assert len(res.stderr.strip().splitlines()) == 1 and message in res.stderr, res.stderr


def test_a_missing_vllm_environment_says_how_to_build_it(tmp_path):
    res = _run_script("--venv", str(tmp_path / "none"))
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert f"build it with `{BUILD}`" in res.stderr


def test_an_attached_server_that_does_not_answer_is_one_line(fake_venv):
    res = _run_script("--venv", str(fake_venv), "--url", f"http://127.0.0.1:{srv.free_port()}/v1")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "does not answer GET /models" in res.stderr


def test_the_counted_load_sends_exactly_num_prompts_requests():
    from tests.stub_server import StubConfig, ThreadServer

    with ThreadServer(StubConfig(token_ms=0.2), srv.free_port()) as s:
        spec = LoadSpec(model="stub-model", prompts=[[1, 2, 3]], max_tokens=8, concurrency=3)
        load = bench.CountedLoad(s.url, spec, 10)
        load.start()
        load.stop(drain_timeout_s=30)
        assert len(load.traces) == 10 and all(t.ok and t.output_tokens == 8 for t in load.traces)
        assert load._peak_in_flight == 3
        f = bench.greenbench_figures(load.traces, load.cpu_s)
        assert f.completed == 10 and f.output_tokens == 80 and f.output_tokens_per_s > 0
        assert f.ttft_p50_ms > 0 and f.tpot_p50_ms > 0 and f.client_cpu_s is not None


# -- the served ladders shipped for GPU boxes ---------------------------------------------------------

def test_the_served_ladders_validate_from_any_folder_and_pin_commits(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(zoomod.ZOO_ENV, raising=False)
    res = subprocess.run([sys.executable, "-m", "greenbench", "zoo", "qwen-served"], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert res.returncode == 0, res.stderr
    qwen, llama = zoomod.get_ladder("qwen-served"), zoomod.get_ladder("llama-8b-max-num-seqs")
    assert isinstance(qwen, zoomod.ServedLadder) and isinstance(llama, zoomod.ServedLadder)
    assert [m.id for m in qwen.models] == [f"Qwen/Qwen2.5-{s}-Instruct" for s in ("0.5B", "1.5B", "3B", "7B")]
    assert min(qwen.concurrency) == 1 and max(qwen.concurrency) == 256 and qwen.precisions == ("bf16",)
    assert qwen.dataset is not None and qwen.dataset.format == "multiple-choice"
    assert [m.fields["max_num_seqs"] for m in llama.models] == [16, 64, 256] and llama.concurrency == (256,)
    for lad in (qwen, llama):
        assert lad.server.launch is not None
        for m in lad.models:
            assert m.revision is not None and re.fullmatch(r"[0-9a-f]{40}", m.revision), (m.name, m.revision)
            kw = lad.builder_kwargs(m.name)
            args = srv.command_args(lad.server.launch, {"model": m.id, "revision": m.revision, "dtype": "bfloat16",
                                                        "host": "127.0.0.1", "port": 8000, **kw["fields"]})
            assert args[:3] == ["vllm", "serve", m.id] and m.revision in args
            assert args[args.index("--max-num-seqs") + 1] == str(kw["fields"]["max_num_seqs"])


# -- both clients against a real vLLM server --------------------------------------------------------

def _vllm_venv() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "greenbench" / "vllm-venv"
    venv = Path(os.environ.get("GREENBENCH_VLLM_VENV") or default)
    if (venv / "bin" / "vllm").exists():
        return venv
    message = f"vLLM's CPU environment is not at {venv}: build it with `{BUILD}`"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def test_both_clients_measure_one_real_vllm_server(tmp_path):
    venv = _vllm_venv()
    a = bench.parse_args(["--venv", str(venv), "--rounds", "1", "--num-prompts", "8", "--concurrency", "2",
                          "--input-len", "16", "--output-len", "8", "--warmup", "4", "--work", str(tmp_path)])
    out = bench.run(a, say=lambda msg: None)
    (r,) = out["rounds"]
    for client in ("greenbench", "vllm"):
        f = r[client]
        assert f["completed"] == 8 and f["failed"] == 0, (client, f)
        assert f["output_tokens"] == 64 and f["output_tokens_per_s"] > 0 and f["ttft_p50_ms"] > 0
        assert f["prompt_tokens_mean"] == 16, (client, f)
    assert out["settings"]["engine"] == "vllm"
    assert [v["verdict"] for v in out["verdicts"]] == [bench.INCONCLUSIVE] * 3  # one round: no spread
    assert "TTFT p50 (ms)" in "\n".join(bench.report_lines(out))
    assert all(isinstance(r[c]["other_engines"], int) and r[c]["burst_share"] is not None
               for c in ("greenbench", "vllm"))
    assert (tmp_path / "vllm-server.log").is_file()
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "tiny-llama")], capture_output=True, text=True).stdout.split()
    assert left == [], f"the server the benchmark started outlived it: {left}"
