"""The serving path's plumbing against a stub OpenAI-compatible server: launch and stop (never a
process left behind, greenbench killed included), readiness, the load's traces and counts, and
the error paths (HTTP 500, a stream cut mid-response, a crash, a server never ready)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("aiohttp")

import itertools

from greenbench.serving import server as srv  # noqa: E402
from greenbench.serving.load import Load, LoadError, LoadSpec  # noqa: E402
from tests.stub_server import StubConfig, ThreadServer  # noqa: E402

STUB = Path(__file__).with_name("stub_server.py")
LAUNCH = f"{sys.executable} {STUB} --port {{port}} --token-ms {{token_ms}}"


@pytest.fixture
def unused_port() -> int:
    return srv.free_port()


_group_pids = srv.group_pids  # the library's own /proc reader (the guard tests check it too)


def test_command_args_fills_words_after_splitting():
    args = srv.command_args("vllm serve {model} --port {port} --max-num-seqs {max_num_seqs}",
                            {"model": "/m dir/x; rm -rf /", "port": 8011, "max_num_seqs": 4})
    assert args == ["vllm", "serve", "/m dir/x; rm -rf /", "--port", "8011", "--max-num-seqs", "4"]
    with pytest.raises(srv.ServerError, match=r"\{batch\}.*known: \{model\}"):
        srv.command_args("serve {batch}", {"model": "m"})


def test_launch_serves_then_stop_leaves_no_process(tmp_path):
    log = tmp_path / "server.log"
    s = srv.launch(LAUNCH, {"token_ms": 1}, log, ready_timeout_s=30)
    pgid = s.pid
    assert pgid is not None and s.base_url.startswith("http://127.0.0.1:")
    assert srv.served_models(s.base_url) == ["stub-model"]
    assert len(_group_pids(pgid)) == 2  # the guard and the server
    s.stop()
    assert _group_pids(pgid) == []
    assert "greenbench launched:" in log.read_text()


def test_failed_start_reports_the_log_tail(tmp_path):
    bad = f"{sys.executable} -c \"import sys; print('no such model: xyz'); sys.exit(7)\""
    with pytest.raises(srv.ServerError, match=r"(?s)did not start.*code 7.*no such model: xyz"):
        srv.launch(bad, {}, tmp_path / "s.log", ready_timeout_s=20)


def test_never_ready_times_out_and_is_stopped(tmp_path):
    t = f"{LAUNCH} --fail never-ready"
    with pytest.raises(srv.ServerError, match="not ready after 2 s"):
        srv.launch(t, {"token_ms": 1}, tmp_path / "s.log", ready_timeout_s=2)
    time.sleep(0.5)
    out = subprocess.run(["pgrep", "-f", f"{STUB}.*never-ready"], capture_output=True, text=True)
    assert out.stdout.strip() == ""


def test_killing_greenbench_takes_its_server_down(tmp_path):
    """SIGKILL of the process that launched a server: the guard's parent-death signal ends it."""
    pidfile = tmp_path / "pids"
    code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parents[1])!r})
        from pathlib import Path
        from greenbench.serving import server as srv
        s = srv.launch({LAUNCH!r}, {{"token_ms": 1}}, Path({str(tmp_path / 's.log')!r}), ready_timeout_s=30)
        Path({str(pidfile)!r}).write_text(str(s.pid))
        time.sleep(600)
    """)
    parent = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 40
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pidfile.exists(), "the launcher never got its server ready"
    pgid = int(pidfile.read_text())
    assert _group_pids(pgid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 20
    while _group_pids(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _group_pids(pgid) == []


def _spec(**kw) -> LoadSpec:
    base = dict(model="stub-model", prompts=[[1, 2, 3, 4]], max_tokens=8, concurrency=4)
    base.update(kw)
    return LoadSpec(**base)


def test_closed_loop_counts_every_token(unused_port):
    with ThreadServer(StubConfig(token_ms=1), unused_port) as s:
        load = Load(s.url, _spec())
        load.start()
        load.wait_steady(10)
        t0 = time.perf_counter()
        time.sleep(0.3)
        t1 = time.perf_counter()
        load.stop()
    ok = [t for t in load.traces if t.ok]
    assert ok and not load.failed()
    assert all(t.output_tokens == 8 and sum(t.chunk_tokens) == 8 for t in ok)
    assert all(t.prompt_tokens == 4 for t in ok)
    assert all(t.ttft_s > 0 and t.tpot_s > 0 and t.e2e_s >= t.ttft_s for t in ok)
    inside = load.tokens_between(t0, t1)
    assert 0 < inside < sum(t.output_tokens for t in ok)
    assert inside == sum(1 for t in ok for c in t.chunk_times_s if t0 <= c < t1)
    assert load.cpu_share is not None and 0 < load.cpu_share <= 1.5


def test_tokens_without_continuous_usage_are_reconciled(unused_port):
    with ThreadServer(StubConfig(token_ms=0.5), unused_port) as s:
        load = Load(s.url, _spec(continuous_usage=False, concurrency=2))
        load.start()
        load.wait_steady(10)
        load.stop()
    ok = [t for t in load.traces if t.ok]
    assert ok and all(t.output_tokens == 8 and len(t.chunk_tokens) == 8 for t in ok)


def test_open_loop_is_seeded_poisson(unused_port):
    with ThreadServer(StubConfig(token_ms=0.2), unused_port) as s:
        load = Load(s.url, _spec(concurrency=None, request_rate_per_s=200.0, seed=1))
        load.start()
        load.wait_steady(10)
        time.sleep(0.5)
        load.stop()
    sent = [t.sent_s for t in load.traces]
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert len(sent) > 20
    mean_gap = sum(gaps) / len(gaps)
    assert 0.5 / 200 < mean_gap < 2.0 / 200  # about 1/rate; the CV of exponential gaps is about 1
    assert max(gaps) > 2 * min(gaps)


@pytest.mark.parametrize("fail,expect", [("http500", "HTTP 500"), ("cut", "")])
def test_failing_requests_are_recorded(unused_port, fail, expect):
    with ThreadServer(StubConfig(token_ms=1, fail=fail), unused_port) as s:
        load = Load(s.url, _spec(concurrency=2))
        load.start()
        with pytest.raises(LoadError, match="every request failed"):
            load.wait_steady(5)
        load.stop()
    assert load.failed() and all(expect in (t.error or "") for t in load.failed())


def test_server_crash_mid_load_fails_requests_with_a_reason(tmp_path):
    s = srv.launch(f"{LAUNCH} --fail crash --crash-after 3", {"token_ms": 1}, tmp_path / "s.log", ready_timeout_s=30)
    try:
        load = Load(s.base_url, _spec(concurrency=1))
        load.start()
        deadline = time.monotonic() + 10
        while s.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not s.alive()
        assert "exited with code" in s.died_message()
        load.stop(drain_timeout_s=5)
        assert load.failed()
    finally:
        s.stop()


def test_attach_refuses_a_server_that_is_not_there(unused_port):
    with pytest.raises(srv.ServerError, match="does not answer GET /models"):
        srv.attach(f"http://127.0.0.1:{unused_port}/v1", timeout_s=1)


def test_engine_version_from_the_server(unused_port):
    with ThreadServer(StubConfig(), unused_port) as s:
        assert srv.engine_version(s.url) == {"engine": "stub", "engine_version": "0.0.0-stub"}


def test_a_request_that_times_out_is_a_failed_request(unused_port):
    with ThreadServer(StubConfig(first_token_ms=3000), unused_port) as s:
        load = Load(s.url, _spec(concurrency=1, timeout_s=0.5))
        load.start()
        with pytest.raises(LoadError, match="every request failed"):
            load.wait_steady(5)
        load.stop()
    assert load.failed() and all("Timeout" in (t.error or "") for t in load.failed())
