"""A real vLLM server for the tests: vLLM's CPU build (its own virtual environment) serving the tiny
random-weight Llama of tests/tiny_llama.py, built by that environment's python, launched and stopped
by greenbench. tests/conftest.py registers ``vllm_server_fixture``; a test takes an
argument ``vllm_server`` (a ``VLLM``; ``s, model = vllm_server`` unpacks it); the server lives for
the test session (one start, about 50 s, for every module that uses it).

The environment is built by ``bash .ci/vllm_env.sh`` (``$GREENBENCH_VLLM_VENV`` names another
one). Without it the tests skip and say that command; in CI (``CI`` set) they fail instead.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from greenbench.serving import server as srv

ROOT = Path(__file__).resolve().parents[1]
BUILD = "bash .ci/vllm_env.sh"
MAX_MODEL_LEN = 256
MAX_NUM_SEQS = 16
LAUNCH = ("{venv}/bin/vllm serve {{model}} --host {{host}} --port {{port}} --max-model-len {max_model_len} "
          "--dtype float32 --max-num-seqs {{max_num_seqs}}")


@dataclass
class VLLM:
    server: srv.Server
    model: str  # the model's folder, also its id on the server
    venv: Path

    @property
    def url(self) -> str:
        return self.server.base_url

    def __iter__(self) -> Iterator[Any]:  # ``s, model = vllm_server``, as tests/test_vllm.py unpacks it
        return iter((self.server, self.model))


def vllm_venv() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "greenbench" / "vllm-venv"
    return Path(os.environ.get("GREENBENCH_VLLM_VENV") or default)


def require_vllm() -> Path:
    venv = vllm_venv()
    if (venv / "bin" / "vllm").exists():
        return venv
    message = f"vLLM's CPU environment is not at {venv}: build it with `{BUILD}`"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def build_tiny_llama(venv: Path, folder: Path) -> Path:
    """tests/tiny_llama.py run by the vLLM environment's python (the transformers that serves it)."""
    subprocess.run([str(venv / "bin" / "python"), str(ROOT / "tests" / "tiny_llama.py"), str(folder)],
                   check=True, capture_output=True, timeout=300)
    return folder


group_pids = srv.group_pids  # the library's /proc reader, for the vLLM tests


def group_left(pgid: int, wait_s: float = 10.0) -> list[int]:
    """The group's processes still alive after up to ``wait_s``: a process killed by stop() takes a
    moment to exit (vLLM's engine core frees its KV cache first)."""
    deadline = time.monotonic() + wait_s
    while (left := group_pids(pgid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.fixture(scope="session", name="vllm_server")
def vllm_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLM]:
    """A launched vLLM server on the tiny Llama; stopped at the session's end, its group checked empty."""
    venv = require_vllm()
    folder = tmp_path_factory.mktemp("vllm")
    model = build_tiny_llama(venv, folder / "tiny-llama")
    template = LAUNCH.format(venv=venv, max_model_len=MAX_MODEL_LEN)
    s = srv.launch(template, {"model": str(model), "max_num_seqs": MAX_NUM_SEQS}, folder / "vllm.log",
                   ready_timeout_s=300, env={"VLLM_CPU_KVCACHE_SPACE": "1"})
    try:
        yield VLLM(s, str(model), venv)
    finally:
        pgid = s.pid
        s.stop()
        assert pgid is not None
        left = group_left(pgid)
        assert left == [], f"processes of the vLLM launch outlived stop(): {left}"
