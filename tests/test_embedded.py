"""The embedded MNIST-1D workload, on a reduced config (2,000 samples, 300 steps) to stay fast."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from greenbench.measure.zoo import EmbeddedDataset, EmbeddedModel, EmbeddedTrain
from greenbench.workloads import Score, WorkloadError, build_workload, embedded
from greenbench.workloads.embedded import build_embedded, load_dataset

SMALL_DATA = {"name": "mnist1d", "num_samples": 2000, "test_share": 0.2, "seed": 42}
FAST_TRAIN = {"steps": 300, "batch_size": 128, "lr": 3e-3, "seed": 0}
LINEAR = {"name": "linear", "arch": "linear"}
CNN = {"name": "cnn-16", "arch": "cnn", "width": 16}
TEST_SIZE = 400  # 20 % of 2,000
# The builder takes the zoo's validated entries, as the ladder hands them over (builder_kwargs).
DATA, TRAIN = EmbeddedDataset(**SMALL_DATA), EmbeddedTrain(**FAST_TRAIN)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """These models are tiny: one thread is as fast, and does not stall when the CPU is shared
    (with two OpenMP threads, a busy neighbour process made training ~100x slower here)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One cache for the tests that only need a trained model: data and weights are made once."""
    return tmp_path_factory.mktemp("gb-cache")


def build(cache_dir, model=LINEAR, precision="fp32", notes=None, **kw):
    return build_embedded(EmbeddedModel(**model), DATA, precision, "cpu", cache_dir, train=TRAIN,
                          on_note=None if notes is None else notes.append, **kw)


def test_dataset_is_cached_and_leaves_global_rngs_alone(tmp_path, monkeypatch):
    np.random.seed(123)
    random.seed(123)
    np_before, py_before = np.random.get_state(), random.getstate()
    notes: list[str] = []
    first = load_dataset(EmbeddedDataset(num_samples=200, seed=7), tmp_path, notes.append)
    np_after = np.random.get_state()
    assert np_after[0] == np_before[0] and np.array_equal(np_after[1], np_before[1])
    assert np_after[2:] == np_before[2:]
    assert random.getstate() == py_before
    assert any("generating" in n for n in notes)
    assert first.x_train.shape == (160, 40) and first.x_test.shape == (40, 40)
    assert first.path.suffix == ".npz" and first.path.exists()

    # The second call must load the file: generating again would fail.
    monkeypatch.setattr(embedded, "_generate", lambda spec: pytest.fail("regenerated a cached dataset"))
    notes.clear()
    second = load_dataset(EmbeddedDataset(num_samples=200, seed=7), tmp_path, notes.append)
    assert notes == []
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(getattr(first, name), getattr(second, name))

    # Other parameters are another file, not a stale hit.
    monkeypatch.undo()
    other = load_dataset(EmbeddedDataset(num_samples=200, seed=8), tmp_path)
    assert other.path != first.path and not np.array_equal(other.x_test, first.x_test)


def test_corrupt_dataset_cache_is_regenerated(tmp_path):
    first = load_dataset(EmbeddedDataset(num_samples=200), tmp_path)
    first.path.write_bytes(b"not an npz")
    notes: list[str] = []
    again = load_dataset(EmbeddedDataset(num_samples=200), tmp_path, notes.append)
    assert any("unreadable" in n for n in notes)
    assert np.array_equal(again.x_test, first.x_test)


def test_training_is_cached(tmp_path, monkeypatch):
    torch.manual_seed(5)
    torch_rng = torch.get_rng_state()
    notes: list[str] = []
    first = build(tmp_path, notes=notes)
    assert torch.equal(torch.get_rng_state(), torch_rng)  # training forks the torch RNG
    assert any(n.startswith("training linear") for n in notes)
    weights = list((tmp_path / "embedded").glob("linear-*.pt"))
    assert len(weights) == 1
    mtime_ns = weights[0].stat().st_mtime_ns
    score = first.evaluate(64)

    monkeypatch.setattr(embedded, "_train", lambda *a: pytest.fail("retrained a cached model"))
    notes.clear()
    second = build(tmp_path, notes=notes)
    assert not any("training" in n for n in notes)
    assert weights[0].stat().st_mtime_ns == mtime_ns
    assert second.evaluate(64) == score
    assert second.provenance()["weights_sha256"] == first.provenance()["weights_sha256"]


def test_corrupt_weights_are_retrained(tmp_path):
    score = build(tmp_path).evaluate(128)
    (weights,) = (tmp_path / "embedded").glob("linear-*.pt")
    weights.write_bytes(weights.read_bytes()[:50])  # truncated, as after a crash mid-write
    notes: list[str] = []
    again = build(tmp_path, notes=notes)
    assert any("unreadable" in n for n in notes) and any("training" in n for n in notes)
    assert again.evaluate(128) == score  # seeded CPU training gives the same model again
    assert not list((tmp_path / "embedded").glob("*.tmp"))


def test_cnn_beats_linear(shared_cache):
    linear, cnn = build(shared_cache, LINEAR), build(shared_cache, CNN)
    acc = {name: w.evaluate(100) for name, w in (("linear", linear), ("cnn", cnn))}
    assert all(s.total == TEST_SIZE for s in acc.values())
    lin, conv = (acc[k].correct / acc[k].total for k in ("linear", "cnn"))
    assert 0.15 < lin < 0.45  # chance is 0.10; a linear model cannot do much better on MNIST-1D
    assert conv > lin + 0.2
    assert cnn.params > linear.params == 410


def test_step_returns_logits_for_small_and_oversized_batches(shared_cache):
    w = build(shared_cache, CNN)
    for batch in (1, TEST_SIZE + 37):
        out = w.make_step(batch)()
        assert out.shape == (batch, 10) and out.dtype == torch.float32
    # The oversized batch repeats the test set, so its logits repeat too.
    big = w.make_step(TEST_SIZE + 37)()
    assert torch.allclose(big[TEST_SIZE:], big[:37])
    w.sync()  # a no-op on the CPU, but must exist


def test_score_does_not_depend_on_eval_batch(shared_cache):
    w = build(shared_cache, CNN)
    scores = {w.evaluate(b) for b in (1, 7, 128, 10_000)}
    assert len(scores) == 1 and next(iter(scores)).total == TEST_SIZE


def test_bf16_works_on_cpu(shared_cache):
    fp32 = build(shared_cache, CNN).evaluate(64)
    w = build(shared_cache, CNN, precision="bf16")
    assert w.make_step(8)().dtype == torch.bfloat16
    bf16 = w.evaluate(64)
    assert abs(bf16.correct - fp32.correct) <= 0.03 * fp32.total


def _torch_runs_fp16_conv_on_cpu() -> bool:
    try:
        torch.nn.Conv1d(1, 1, 3).half()(torch.zeros(1, 1, 8, dtype=torch.half))
    except RuntimeError:
        return False
    return True


def test_fp16_on_cpu_works_or_says_so(shared_cache):
    # torch 2.13 runs these fp16 ops on the CPU; older builds may not, and must say so in one line.
    # Which branch this torch takes is decided first, so the test checks that branch only.
    if _torch_runs_fp16_conv_on_cpu():
        w = build(shared_cache, CNN, precision="fp16")
        assert w.make_step(4)().dtype == torch.float16
    else:
        with pytest.raises(WorkloadError) as e:
            build(shared_cache, CNN, precision="fp16")
        assert "fp16" in str(e.value) and "\n" not in str(e.value)


def test_unsupported_dtype_becomes_workload_error(shared_cache, monkeypatch):
    build(shared_cache, LINEAR)  # train while Linear still works

    def no_half(self, x):
        raise RuntimeError('"addmm_impl_cpu_" not implemented for \'Half\'\nmore detail')

    monkeypatch.setattr(torch.nn.Linear, "forward", no_half)
    with pytest.raises(WorkloadError, match=r"^fp16 is not supported for linear on cpu: .*Half'$"):
        build(shared_cache, LINEAR, precision="fp16")


@pytest.mark.parametrize(
    "model, message",
    [
        ({"name": "x", "arch": "mlp"}, "needs a 'width'"),
        ({"name": "x", "arch": "mlp", "width": None}, "needs a 'width'"),
    ],
)
def test_bad_model_spec_is_a_clear_error(tmp_path, model, message):
    with pytest.raises(WorkloadError, match=message):
        build(tmp_path, model)
    assert not (tmp_path / "embedded").exists()  # rejected before any data or training


@pytest.mark.parametrize(
    "model, field, message",
    [
        ({"name": "x", "arch": "transformer"}, "arch", "'linear', 'mlp' or 'cnn'"),
        ({"name": "x", "arch": "cnn", "width": 8, "depth": 1.5}, "depth", "valid integer"),
        ({"name": "x", "arch": "cnn", "width": 0}, "width", "greater than 0"),
    ],
)
def test_model_specs_the_zoo_refuses_never_reach_the_workload(model, field, message):
    """The zoo's schema is the one check of types and ranges: a workload is only ever given its
    validated entries, so these never get as far as a build."""
    with pytest.raises(ValidationError) as e:
        EmbeddedModel(**model)
    (err,) = e.value.errors()
    assert err["loc"] == (field,) and message in err["msg"]


def test_bad_precision_device_and_kind(tmp_path):
    with pytest.raises(WorkloadError, match="unknown precision 'int8'"):
        build(tmp_path, precision="int8")
    with pytest.raises(WorkloadError, match="not 'mps'"):
        build_embedded(EmbeddedModel(**LINEAR), DATA, "fp32", "mps", tmp_path, TRAIN)
    if not torch.cuda.is_available():
        with pytest.raises(WorkloadError, match="no CUDA GPU"):
            build_embedded(EmbeddedModel(**LINEAR), DATA, "fp32", "cuda:0", tmp_path, TRAIN)
    with pytest.raises(WorkloadError, match="unknown workload kind 'onnx'; known: embedded"):
        build_workload("onnx")
    with pytest.raises(ValidationError, match="step"):  # an unknown train key: the zoo's schema refuses it
        EmbeddedTrain(step=10)


def test_build_workload_provenance_and_close(shared_cache):
    w = build_workload("embedded", model=EmbeddedModel(**CNN), dataset=DATA, precision="fp32", device="cpu",
                       cache_dir=shared_cache, train=TRAIN)
    spec = embedded.model_spec(EmbeddedModel(**CNN))
    assert w.params == sum(p.numel() for p in embedded.build_model(spec).parameters())
    prov = w.provenance()
    assert prov["dataset"]["id"] == "mnist1d" and prov["dataset"]["test_size"] == TEST_SIZE
    assert prov["dataset"]["train_size"] == 1600 and prov["dataset"]["seed"] == 42
    assert prov["model"] == {"name": "cnn-16", "arch": "cnn", "width": 16, "depth": 3}
    assert prov["train"] == FAST_TRAIN and prov["torch"] == torch.__version__
    weights = shared_cache / "embedded" / prov["weights_file"]
    assert prov["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    assert isinstance(w.evaluate(256), Score)
    w.close()
    with pytest.raises(WorkloadError, match="after close"):
        w.make_step(1)


def test_training_records_its_seed_threads_and_whether_it_came_from_the_cache(tmp_path):
    first = build(tmp_path)  # trained with one thread (the module's fixture)
    info = first.training()
    assert info is not None and (info.source, info.seed, info.torch_threads) == ("trained", 0, 1)
    assert info.torch == str(torch.__version__)
    torch.set_num_threads(2)  # a later run with other threads loads what one thread trained
    try:
        cached = build(tmp_path).training()
    finally:
        torch.set_num_threads(1)
    assert cached is not None and (cached.source, cached.seed, cached.torch_threads) == ("cache", 0, 1)
    # a cache written before the training was recorded: loaded, threads unknown (None, not a guess)
    (weights,) = (tmp_path / "embedded").glob("linear-*.pt")
    blob = torch.load(weights, weights_only=True)
    del blob["trained_with"]
    torch.save(blob, weights)
    old = build(tmp_path).training()
    assert old is not None and (old.source, old.torch_threads, old.torch) == ("cache", None, None)
