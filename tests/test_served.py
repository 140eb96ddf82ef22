"""The served-lm workload end to end against the stub server (tests/stub_server.py): a ladder of
served models profiled at several loads, launched and attached; a server that fails to start or
dies mid-ladder fails its points with the log's last lines while the ladder goes on; greenbench
killed mid-run leaves no server behind, and --resume finishes the rest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("aiohttp")

from greenbench.measure import zoo as zoomod  # noqa: E402
from greenbench.serving import server as srv  # noqa: E402
from tests.stub_server import StubConfig, ThreadServer  # noqa: E402

STUB = Path(__file__).with_name("stub_server.py")
ROOT = Path(__file__).resolve().parents[1]


def _zoo(tmp_path: Path, server: str, *, models: str | None = None, concurrency: str = "[1, 4, 16]") -> Path:
    models = models or """
      - {name: fast, id: stub-model}
      - {name: slow, id: stub-model, fields: {token_ms: 4}}"""
    path = tmp_path / "zoo.yaml"
    path.write_text(f"""
ladders:
  stub-served:
    workload: served-lm
    server: {server}
    fields: {{token_ms: 1}}
    models:{models}
    concurrency: {concurrency}
    generation: {{prompt_tokens: 8, output_tokens: 12}}
    devices: [cpu]
""")
    return path


def _launch(extra: str = "") -> str:
    return f'{{launch: "{sys.executable} {STUB} --port {{port}} --token-ms {{token_ms}}{extra}", ready_timeout_s: 30}}'


def _profile(tmp_path: Path, zoo: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GREENBENCH_CACHE": str(tmp_path / "cache"), "COLUMNS": "80"}
    return subprocess.run([sys.executable, "-m", "greenbench", "profile", "stub-served", "--zoo", str(zoo), "--quick",
                           "--meter", "fake", "--out", str(tmp_path / "out"), *args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def _records(tmp_path: Path) -> list[dict]:
    return json.loads((tmp_path / "out" / "stub-served-quick.json").read_text())["records"]


def test_the_zoo_validates_a_served_ladder(tmp_path):
    lad = zoomod.get_ladder("stub-served", _zoo(tmp_path, _launch()))
    assert [s.label for s in lad.settings()] == ["c1", "c4", "c16"]
    bad = _zoo(tmp_path, '{url: "http://127.0.0.1:1/v1", launch: "x"}')
    with pytest.raises(zoomod.ZooError, match="server: give exactly one of 'url'"):
        zoomod.get_ladder("stub-served", bad)
    with pytest.raises(zoomod.ZooError, match="needs 'concurrency' levels, 'request_rate_per_s' rates, or both"):
        zoomod.get_ladder("stub-served", _zoo(tmp_path, _launch(), concurrency="[]"))


def test_a_launched_ladder_measures_every_load(tmp_path):
    res = _profile(tmp_path, _zoo(tmp_path, _launch()))
    assert res.returncode == 0, res.stderr
    recs = _records(tmp_path)
    assert [(r["model"], r["concurrency"], r["batch_size"]) for r in recs] == [
        ("fast", 1, None), ("fast", 4, None), ("fast", 16, None),
        ("slow", 1, None), ("slow", 4, None), ("slow", 16, None)]
    for r in recs:
        assert r["status"] == "ok" and r["energy_method"] == "fake"
        assert r["output_tokens"] == 12 and r["prompt_tokens"] == 8
        assert r["engine"] == "stub" and r["engine_version"] == "0.0.0-stub"
        assert r["ttft_p50_ms"] > 0 and r["tpot_p50_ms"] > 0 and r["energy_j_per_output_token"] > 0
        assert r["load_cpu_share"] > 0 and "host_busy" not in r["flags"]
        assert Path(r["server_log"]).is_file()
    fast = {r["concurrency"]: r for r in recs if r["model"] == "fast"}
    slow = {r["concurrency"]: r for r in recs if r["model"] == "slow"}
    # the resource axis: more requests in flight stream more tokens/s and spend less energy per token
    # (the stub alone: about 12x from 1 to 16; asserted with room for a busy 2-core machine)
    assert fast[16]["output_tokens_per_s"] > 2 * fast[1]["output_tokens_per_s"]
    assert fast[16]["energy_j_per_output_token"] < fast[1]["energy_j_per_output_token"]
    assert slow[1]["tpot_p50_ms"] > 1.5 * fast[1]["tpot_p50_ms"]  # 4 ms between tokens against 1
    assert "served requests under load" in res.stdout and "c16" in res.stdout
    assert "bNone" not in res.stdout + res.stderr


def test_an_attached_server_is_left_running(tmp_path):
    port = srv.free_port()
    with ThreadServer(StubConfig(token_ms=1), port) as s:
        zoo = _zoo(tmp_path, f'{{url: "{s.url}"}}', models="\n      - {name: fast, id: stub-model}",
                   concurrency="[2]")
        res = _profile(tmp_path, zoo)
        assert res.returncode == 0, res.stderr
        assert srv.served_models(s.url) == ["stub-model"]  # still serving
    (r,) = _records(tmp_path)
    assert r["status"] == "ok" and r["concurrency"] == 2 and r["server_log"] is None


def test_a_failed_start_and_a_crash_are_recorded_and_the_ladder_goes_on(tmp_path):
    # a field's value stays one argument (never split or run by a shell): "1 --x" is a bad float
    models = """
      - {name: broken, id: stub-model, fields: {token_ms: "1 --no-such-flag"}}
      - {name: crashes, id: stub-model, fields: {fail: crash}}
      - {name: fine, id: stub-model}"""
    zoo = _zoo(tmp_path, f'{{launch: "{sys.executable} {STUB} --port {{port}} --token-ms {{token_ms}} '
                         '--fail={fail} --crash-after 40", ready_timeout_s: 30}', models=models)
    text = zoo.read_text().replace("fields: {token_ms: 1}", 'fields: {token_ms: 1, fail: ""}')
    zoo.write_text(text)
    res = _profile(tmp_path, zoo)
    recs = {(r["model"], r["concurrency"]): r for r in _records(tmp_path)}
    broken = [r for (m, _), r in recs.items() if m == "broken"]
    assert len(broken) == 3 and all(r["status"] == "failed" for r in broken)
    assert "did not start" in broken[0]["error"] and "invalid float value: '1 --no-such-flag'" in broken[0]["error"]
    crashed = [r for (m, _), r in recs.items() if m == "crashes"]
    assert any(r["status"] == "failed" and "exited" in r["error"] for r in crashed), [r["error"] for r in crashed]
    assert all(recs[("fine", c)]["status"] == "ok" for c in (1, 4, 16))
    assert res.returncode == 0  # some points measured
    assert "Traceback" not in res.stderr


def test_killing_greenbench_mid_run_leaves_no_server_and_resume_finishes(tmp_path):
    zoo = _zoo(tmp_path, _launch(), models="\n      - {name: fast, id: stub-model}\n"
               "      - {name: slow, id: stub-model, fields: {token_ms: 4}}")
    env = {**os.environ, "GREENBENCH_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "greenbench", "profile", "stub-served", "--zoo", str(zoo), "--quick",
                             "--meter", "fake", "--out", str(tmp_path / "out")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert proc.stderr is not None
    for line in proc.stderr:  # kill it while the second model's server is up
        if "slow fp32: starting the server" in line:
            break
    time.sleep(1.5)
    stub_pids = [int(p) for p in subprocess.run(["pgrep", "-f", str(STUB)], capture_output=True,
                                                 text=True).stdout.split()]
    assert stub_pids, "the second server should be running"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 40  # the guard's grace (10 s) and a loaded machine
    while any(_alive(p) for p in stub_pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = {p: Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode() for p in stub_pids if _alive(p)}
    assert not left, left
    done = [(r["model"], r["concurrency"]) for r in _records(tmp_path)]
    assert done == [("fast", 1), ("fast", 4), ("fast", 16)]  # the finished model's points were kept
    res = _profile(tmp_path, zoo, "--resume")
    assert res.returncode == 0, res.stderr
    assert [(r["model"], r["concurrency"]) for r in _records(tmp_path)] == [
        *done, ("slow", 1), ("slow", 4), ("slow", 16)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


def test_quality_is_scored_once_through_the_server(tmp_path):
    """Multiple-choice accuracy through the endpoint: the stub's log-probability is -len(word)/2,
    so the shortest choice always wins; 3 of the 4 answers below are the shortest."""
    data = tmp_path / "mc.csv"
    data.write_text("question,choices,answer\n"
                    "is it,yes|maybe,0\nred or,blue|green,0\nthe sea,wet|dry,0\none two,three|xy,0\n")
    zoo = _zoo(tmp_path, f'{{launch: "{sys.executable} {STUB} --port {{port}} --token-ms 1 --scoring echo", '
                         'ready_timeout_s: 30}', models="\n      - {name: fast, id: stub-model}", concurrency="[1, 4]")
    zoo.write_text(zoo.read_text() + "    dataset: {path: mc.csv, format: multiple-choice}\n")
    res = _profile(tmp_path, zoo)
    assert res.returncode == 0, res.stderr
    recs = _records(tmp_path)
    assert [r["concurrency"] for r in recs] == [1, 4]
    for r in recs:  # one score, on every load of the model
        assert r["quality_metric"] == "accuracy" and r["accuracy"] == 0.75 and r["accuracy_n"] == 4
        assert r["accuracy_ci95"][0] < 0.75 < r["accuracy_ci95"][1]
        assert "tokenization" in r["workload"]["quality"]
    assert "0.750" in res.stdout  # the table's accuracy column


def test_lengths_drawn_from_a_file_of_conversations(tmp_path):
    """ShareGPT, OpenAI-style and plain items: each request's prompt and output length from the file
    (the stub streams exactly max_tokens, so the records' output length is the drawn lengths' mix)."""
    lines = [
        {"conversations": [{"from": "human", "value": "a b c"}, {"from": "gpt", "value": "one two three four"}]},
        {"messages": [{"role": "user", "content": "d e"}, {"role": "assistant", "content": "x y z w v u t s"}]},
        {"prompt": "f g h i", "output_tokens": 6},
        {"conversations": [{"from": "human", "value": "no reply"}]},  # left out: no reply
    ]
    (tmp_path / "conv.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    zoo = _zoo(tmp_path, _launch(), models="\n      - {name: fast, id: stub-model}", concurrency="[2]")
    zoo.write_text(zoo.read_text().replace("generation: {prompt_tokens: 8, output_tokens: 12}",
                                           "generation: {conversations: conv.jsonl}"))
    res = _profile(tmp_path, zoo)
    assert res.returncode == 0, res.stderr
    (r,) = _records(tmp_path)
    assert r["status"] == "ok" and 4 <= r["output_tokens"] <= 8 and r["output_tokens"] != 12
    assert r["workload"]["lengths"].startswith("drawn from conv.jsonl: 3 conversations")
    bad = tmp_path / "conv.jsonl"
    bad.write_text('{"conversations": []}\n')
    res = _profile(tmp_path, zoo, "--force")
    (r,) = _records(tmp_path)
    assert r["status"] == "failed" and "no conversation with a prompt and a reply" in r["error"]
