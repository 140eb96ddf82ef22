import os
import subprocess
import sys

import pytest
from helpers import FAST, on_virtual_time
from vllm_fixtures import vllm_server_fixture  # noqa: F401 -- one vLLM server for the session's tests

# The tests that need the embedded default ladder trained (its five MNIST-1D models, about 35 s
# of first-use training on one core) ask for this fixture; they run last, and the training runs
# beside the rest of the suite, in a background process started at the beginning of the session.
TRAINED_LADDER = "trained_ladder_cache"


# Tests never touch the user's cache; one cache per test session keeps first-use training to once.
@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    env = os.environ.get("GREENBENCH_CACHE")
    return env if env else tmp_path_factory.mktemp("greenbench-cache")


@pytest.fixture
def virtual_time(monkeypatch):
    """greenbench's clock on virtual time for this test (helpers.on_virtual_time)."""
    return on_virtual_time(monkeypatch)


def pytest_collection_modifyitems(session, config, items):
    """Tests that need the trained default ladder go last, so that its training (started at the
    beginning of the session) has the rest of the suite's time to run beside it."""
    items.sort(key=lambda item: TRAINED_LADDER in getattr(item, "fixturenames", ()))


def _train_command(cache, out):
    """First use of the embedded default ladder through the real CLI: every model is trained and
    cached (then one short fake-metered window per model, which is thrown away)."""
    return [sys.executable, "-m", "greenbench", "profile", "--device", "cpu", "--batch-size", "256",
            "--out", str(out), "--name", "first-use-training", "--cache-dir", str(cache), *FAST]


def _start_training(cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("first-use-training")
    log = open(out / "log.txt", "w+")  # noqa: SIM115 -- closed by the session fixture below
    # niced: the tests that run beside it keep the CPU they would have had without it
    proc = subprocess.Popen(_train_command(cache, out), stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "GREENBENCH_CACHE": str(cache)},
                            preexec_fn=(lambda: os.nice(10)) if hasattr(os, "nice") else None)
    return proc, log


@pytest.fixture(scope="session", autouse=True)
def _first_use_training(request, cache_dir, tmp_path_factory):
    """Starts the default ladder's first-use training in the background when a selected test
    needs it (none under ``-m "not slow"``); ``trained_ladder_cache`` waits for it."""
    started = []
    if any(TRAINED_LADDER in getattr(item, "fixturenames", ()) for item in request.session.items):
        started.append(_start_training(cache_dir, tmp_path_factory))
    try:
        yield started
    finally:
        for proc, log in started:
            if proc.poll() is None:  # the session ended first (-x, Ctrl-C): do not leave it running
                proc.kill()
            proc.wait()
            log.close()


@pytest.fixture(scope="session")
def trained_ladder_cache(_first_use_training, cache_dir, tmp_path_factory):
    """``cache_dir`` with the embedded default ladder's models trained in it."""
    if not _first_use_training:  # not foreseen at the start of the session: train now
        _first_use_training.append(_start_training(cache_dir, tmp_path_factory))
    proc, log = _first_use_training[0]
    rc = proc.wait(timeout=900)
    log.seek(0)
    assert rc == 0, f"first-use training of the default ladder failed (exit {rc}):\n{log.read()}"
    return cache_dir
