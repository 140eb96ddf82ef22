"""A real serving engine: vLLM's CPU build, in its own virtual environment, serving a tiny
random-weight Llama that the test saves, launched and stopped by greenbench and driven by its load.

The environment is built by ``bash .ci/vllm_env.sh`` (CI does; ``$GREENBENCH_VLLM_VENV`` names
another one). Without it these tests skip and say that command; in CI (``CI`` set) they fail instead.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

pytest.importorskip("aiohttp")

from greenbench.serving import server as srv  # noqa: E402
from greenbench.serving.load import Load, LoadSpec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUILD = "bash .ci/vllm_env.sh"


def _venv() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "greenbench" / "vllm-venv"
    return Path(os.environ.get("GREENBENCH_VLLM_VENV") or default)


def _require_vllm() -> Path:
    venv = _venv()
    if (venv / "bin" / "vllm").exists():
        return venv
    message = f"vLLM's CPU environment is not at {venv}: build it with `{BUILD}`"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    venv = _require_vllm()
    folder = tmp_path_factory.mktemp("vllm")
    model = folder / "tiny-llama"
    subprocess.run([str(venv / "bin" / "python"), str(ROOT / "tests" / "tiny_llama.py"), str(model)],
                   check=True, capture_output=True, timeout=300)
    launch = (f"{venv}/bin/vllm serve {{model}} --host {{host}} --port {{port}} --max-model-len 256 "
              "--dtype float32 --max-num-seqs {max_num_seqs}")
    s = srv.launch(launch, {"model": str(model), "max_num_seqs": 16}, folder / "vllm.log", ready_timeout_s=300,
                   env={"VLLM_CPU_KVCACHE_SPACE": "1"})
    yield s, str(model)
    pgid = s.pid
    s.stop()
    assert pgid is not None
    left = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True).stdout.split()
    assert left == [], f"processes of the vLLM launch outlived stop(): {left}"


def _run(url: str, model: str, concurrency: int, seconds: float = 2.0) -> tuple[Load, float]:
    prompts = [[4 + (7 * i + j) % 250 for j in range(32)] for i in range(8)]  # ids inside the 258-word vocab
    load = Load(url, LoadSpec(model=model, prompts=prompts, max_tokens=32, concurrency=concurrency))
    load.start()
    load.wait_steady(60)
    t0 = time.perf_counter()
    time.sleep(seconds)
    t1 = time.perf_counter()
    tokens_per_s = load.tokens_between(t0, t1) / (t1 - t0)
    load.stop()
    return load, tokens_per_s


def test_vllm_serves_fixed_lengths_and_scales_with_concurrency(vllm_server):
    s, model = vllm_server
    assert srv.served_models(s.base_url) == [model]
    assert srv.engine_version(s.base_url) == {"engine": "vllm", "engine_version": "0.32.0"}
    rates = {}
    for c in (1, 4, 16):
        load, rates[c] = _run(s.base_url, model, c)
        ok = [t for t in load.traces if t.ok]
        assert ok and not load.failed(), load.failed()[:1]
        # min_tokens and ignore_eos: every request exactly the asked length; the prompt as sent
        assert {t.output_tokens for t in ok} == {32} and {t.prompt_tokens for t in ok} == {32}
        assert all(t.ttft_s > 0 and t.tpot_s > 0 for t in ok)
    # the resource axis is real even on a CPU: 16 concurrent requests stream more tokens per second
    # than 1 (measured here: about 6x; asserted as a ratio in one run, with room for a noisy machine)
    assert rates[16] > 1.5 * rates[1], rates
