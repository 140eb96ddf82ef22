"""The embedded workload: small MNIST-1D classifiers trained here at first use, then cached.

MNIST-1D (Apache-2.0, Greydanus & Steinbach) is generated locally by the ``mnist1d`` package, so
the default ladder needs no download. Each model is trained once on the CPU with fixed seeds
(deterministic, whatever device is measured later), its weights are cached under
``<cache_dir>/embedded/``, and later runs load them.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import random
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from greenbench.measure.zoo import PRECISION_TABLE, EmbeddedDataset, EmbeddedModel, EmbeddedTrain
from greenbench.workloads.base import (
    Score,
    TrainingInfo,
    Workload,
    WorkloadError,
    out_of_memory_error,
    torch_device,
)

OUT_OF_MEMORY = out_of_memory_error()  # torch >= 2.1 (see pyproject)

FORMAT_VERSION = 1  # bump when the architectures or the training loop change: old caches retrain
SIGNAL_LEN = 40  # MNIST-1D's final_seq_length
NUM_CLASSES = 10

DEFAULT_DEPTH = {"mlp": 2, "cnn": 3}  # the zoo's depth None: the arch's own default
# The zoo's precision table, as torch dtypes: every unquantised precision (int8 needs a
# quantisation backend, which the embedded models do not use).
PRECISIONS = {name: getattr(torch, p.dtype) for name, p in PRECISION_TABLE.items() if not p.quantised}

Note = Callable[[str], None] | None


# ----------------------------------------------------------------------------------- specs


# The ladder's model, dataset and train entries arrive as the zoo validated them (EmbeddedModel,
# EmbeddedDataset, EmbeddedTrain: types, ranges and defaults are the zoo's); what is checked here is
# only what the zoo's schema leaves open and this workload needs.


def _int(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise WorkloadError(f"{what} must be an integer, got {value!r}")
    if value < minimum:
        raise WorkloadError(f"{what} must be at least {minimum}, got {value!r}")
    return int(value)


def _seed(value: int, what: str) -> int:
    if value < 0:  # numpy and the cached files take seeds from 0 up; the zoo takes any integer
        raise WorkloadError(f"{what} must be at least 0, got {value!r}")
    return value


def dataset_spec(dataset: EmbeddedDataset) -> dict[str, Any]:
    """The dataset as the plain dict that keys its cache file and its provenance."""
    _seed(dataset.seed, "dataset seed")
    return dataset.model_dump()


def train_spec(train: EmbeddedTrain) -> dict[str, Any]:
    """The training settings as the plain dict that keys the weights' cache and the provenance."""
    _seed(train.seed, "train seed")
    return train.model_dump()


def model_spec(model: EmbeddedModel) -> dict[str, Any]:
    """Only the keys that shape the network (width/depth are dropped for linear)."""
    name, arch = model.name, model.arch
    if arch == "linear":
        return {"name": name, "arch": arch}
    if model.width is None:
        raise WorkloadError(f"model {name!r}: arch {arch!r} needs a 'width'")
    depth = DEFAULT_DEPTH[arch] if model.depth is None else model.depth
    return {"name": name, "arch": arch, "width": model.width, "depth": depth}


def _short_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


def _generator_version() -> str:
    try:
        return importlib.metadata.version("mnist1d")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# ------------------------------------------------------------------------------------ data


@dataclass(frozen=True)
class Mnist1d:
    x_train: np.ndarray  # (n_train, 40) float
    y_train: np.ndarray  # (n_train,) int
    x_test: np.ndarray
    y_test: np.ndarray
    spec: dict[str, Any]  # dataset spec plus generator version
    path: Path


def _atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Write through a temp file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _generate(spec: dict[str, Any]) -> dict[str, np.ndarray]:
    # mnist1d imports matplotlib.pyplot; never let that look for a display.
    os.environ.setdefault("MPLBACKEND", "Agg")
    from mnist1d.data import (  # lazy: slow import, only on first use
        get_dataset_args,
        make_dataset,
    )

    args = get_dataset_args()
    args.num_samples = spec["num_samples"]
    args.train_split = 1 - spec["test_share"]
    args.seed = spec["seed"]
    # make_dataset seeds the global numpy and random RNGs; keep the caller's streams intact.
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {k: np.asarray(d[k]) for k in ("x", "y", "x_test", "y_test")}


def load_dataset(dataset: EmbeddedDataset, cache_dir: Path, on_note: Note = None) -> Mnist1d:
    """Generate MNIST-1D once per parameter set, cached as ``<cache_dir>/embedded/mnist1d-<hash>.npz``."""
    spec = {**dataset_spec(dataset), "generator": f"mnist1d {_generator_version()}"}
    path = Path(cache_dir) / "embedded" / f"mnist1d-{_short_hash(spec)}.npz"
    arrays = None
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in ("x", "y", "x_test", "y_test")}
        except Exception as e:  # a corrupt or truncated cache is regenerated, not fatal
            if on_note:
                on_note(f"dataset cache {path.name} unreadable ({type(e).__name__}); regenerating")
    if arrays is None:
        if on_note:
            on_note(f"generating MNIST-1D ({spec['num_samples']} samples, first use, cached afterwards)")
        fresh = arrays = _generate(spec)
        # By name, not **fresh: numpy's stubs would let a splatted dict fill savez's allow_pickle flag.
        _atomic_write(
            path, lambda f: np.savez(f, x=fresh["x"], y=fresh["y"], x_test=fresh["x_test"], y_test=fresh["y_test"])
        )
    if len(arrays["x_test"]) == 0 or len(arrays["x"]) == 0:
        raise WorkloadError(f"dataset {spec} leaves an empty train or test split")
    return Mnist1d(arrays["x"], arrays["y"], arrays["x_test"], arrays["y_test"], spec, path)


# ---------------------------------------------------------------------------------- models


def build_model(spec: dict[str, Any]) -> nn.Module:
    """Inputs are (batch, 40) for every arch, so the staged batches look the same."""
    arch = spec["arch"]
    if arch == "linear":
        return nn.Linear(SIGNAL_LEN, NUM_CLASSES)
    width, depth = spec["width"], spec["depth"]
    if arch == "mlp":
        layers: list[nn.Module] = [nn.Linear(SIGNAL_LEN, width), nn.ReLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(width, width), nn.ReLU()]
        return nn.Sequential(*layers, nn.Linear(width, NUM_CLASSES))
    # cnn: a stride-2 first layer halves the signal (40 -> 20), the rest keep its length.
    layers = [nn.Unflatten(1, (1, SIGNAL_LEN)), nn.Conv1d(1, width, 5, stride=2, padding=2), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Conv1d(width, width, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(width * (SIGNAL_LEN // 2), NUM_CLASSES))


def _train(spec: dict, data: Mnist1d, train: dict) -> nn.Module:
    # fork_rng: seeding here must not shift the caller's torch RNG stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(train["seed"])
        model = build_model(spec)
        gen = torch.Generator().manual_seed(train["seed"])
        x = torch.as_tensor(data.x_train, dtype=torch.float32)
        y = torch.as_tensor(data.y_train, dtype=torch.long)
        opt = torch.optim.Adam(model.parameters(), lr=train["lr"])
        model.train()
        for _ in range(train["steps"]):
            idx = torch.randint(0, len(x), (train["batch_size"],), generator=gen)
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


def _sha256_short(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _trained_with(blob: dict[str, Any], seed: int) -> TrainingInfo:
    """A cache file's record of its training; a file from before it was kept says nothing."""
    info = blob.get("trained_with")
    info = info if isinstance(info, dict) else {}
    threads = info.get("torch_threads")
    return TrainingInfo(
        source="cache", seed=seed,
        torch_threads=threads if isinstance(threads, int) and not isinstance(threads, bool) else None,
        torch=info.get("torch") if isinstance(info.get("torch"), str) else None,
    )


def trained_model(
    spec: dict, data: Mnist1d, train: dict, cache_dir: Path, on_note: Note = None
) -> tuple[nn.Module, Path, TrainingInfo]:
    """Load the cached weights for (model, dataset, train), or train on the CPU and cache them;
    with how they were trained (seed, torch threads: kept in the cache file beside the weights)."""
    key = {"model": {k: v for k, v in spec.items() if k != "name"}, "dataset": data.spec,
           "train": train, "format": FORMAT_VERSION}
    safe_name = re.sub(r"[^A-Za-z0-9._-]", "_", spec["name"])
    path = Path(cache_dir) / "embedded" / f"{safe_name}-{_short_hash(key)}.pt"
    if path.exists():
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            if blob.get("key") != json.loads(json.dumps(key)):
                raise ValueError("cache key mismatch")
            model = build_model(spec)
            model.load_state_dict(blob["state_dict"])
            return model.eval(), path, _trained_with(blob, train["seed"])
        except Exception as e:  # corrupt, truncated or foreign file: retrain over it
            if on_note:
                on_note(f"cached weights {path.name} unreadable ({type(e).__name__}); retraining")
    if on_note:
        on_note(f"training {spec['name']} (first use, cached afterwards)")
    t0 = time.perf_counter()
    threads = torch.get_num_threads()  # sums' order, and so the weights, can depend on it
    model = _train(spec, data, train)
    # Not part of the key: a cache trained with other threads is still this model's training. No
    # time stamp either: the same training gives the same file (weights_sha256 hashes the file).
    trained_with = {"torch_threads": threads, "torch": str(torch.__version__)}  # a plain str: weights_only loads it
    blob = {"key": key, "state_dict": model.state_dict(), "trained_with": trained_with}
    _atomic_write(path, lambda f: torch.save(blob, f))
    if on_note:
        on_note(f"trained {spec['name']} in {time.perf_counter() - t0:.1f} s ({threads} torch thread(s))")
    return model, path, TrainingInfo("trained", train["seed"], threads, str(torch.__version__))


# -------------------------------------------------------------------------------- workload


class EmbeddedWorkload(Workload):
    def __init__(self, model: nn.Module, spec: dict, data: Mnist1d, train: dict, weights: Path,
                 precision: str, device: torch.device, training: TrainingInfo | None = None) -> None:
        self._spec, self._data, self._train, self._weights = spec, data, train, weights
        self._training = training
        self._precision, self._device = precision, device
        self._dtype = PRECISIONS[precision]
        self._params = sum(p.numel() for p in model.parameters())
        self._model: nn.Module | None = model.to(device=device, dtype=self._dtype).eval()
        self._x_test: torch.Tensor | None = torch.as_tensor(data.x_test).to(device=device, dtype=self._dtype)
        self._y_test: torch.Tensor | None = torch.as_tensor(data.y_test, dtype=torch.long).to(device)
        self._weights_sha = _sha256_short(weights)
        self._probe()

    def _probe(self) -> None:
        """Run one tiny batch now so an unsupported dtype/device pair fails at build, in one line."""
        try:
            model, x_test, _ = self._live()
            with torch.inference_mode():
                out = model(x_test[:2])
            self.sync()
        except OUT_OF_MEMORY:
            raise  # not a dtype problem: the runner records it as out of memory
        except (RuntimeError, NotImplementedError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise WorkloadError(
                f"{self._precision} is not supported for {self._spec['arch']} on {self._device}: {first}"
            ) from e
        if out.shape != (2, NUM_CLASSES):
            raise WorkloadError(f"model {self._spec['name']} gave output shape {tuple(out.shape)}")

    def _live(self) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
        if self._model is None or self._x_test is None or self._y_test is None:
            raise WorkloadError(f"workload {self._spec['name']} used after close()")
        return self._model, self._x_test, self._y_test

    @property
    def params(self) -> int:
        return self._params

    def make_step(self, batch_size: int) -> Callable[[], Any]:
        model, x_test, _ = self._live()
        batch_size = _int(batch_size, "batch_size", 1)
        # Repeat the test set when the batch is larger than it; staged once, on the device.
        idx = torch.arange(batch_size, device=self._device) % len(x_test)
        batch = x_test[idx].contiguous()

        @torch.inference_mode()
        def step() -> torch.Tensor:
            return model(batch)  # forward only: no sync, no .item(), no host copy

        return step

    def evaluate(self, batch_size: int) -> Score:
        model, x_test, y_test = self._live()
        batch_size = _int(batch_size, "batch_size", 1)
        correct = torch.zeros((), dtype=torch.long, device=self._device)
        with torch.inference_mode():
            for start in range(0, len(x_test), batch_size):
                logits = model(x_test[start:start + batch_size])
                correct += (logits.argmax(dim=1) == y_test[start:start + batch_size]).sum()
        return Score(correct=int(correct.item()), total=len(x_test))

    def sync(self) -> None:
        if self._device.type == "cuda":
            torch.cuda.synchronize(self._device)

    def provenance(self) -> dict[str, Any]:
        ds = self._data.spec
        return {
            "dataset": {"id": "mnist1d", "generator": ds["generator"], "num_samples": ds["num_samples"],
                        "test_share": ds["test_share"], "seed": ds["seed"], "split": "test",
                        "train_size": len(self._data.y_train), "test_size": len(self._data.y_test)},
            "model": dict(self._spec),
            "train": dict(self._train),
            "weights_file": self._weights.name,
            "weights_sha256": self._weights_sha,
            "precision": self._precision,
            "device": str(self._device),
            "torch": torch.__version__,
        }

    def training(self) -> TrainingInfo | None:
        return self._training

    def close(self) -> None:
        self._model = self._x_test = self._y_test = None
        if self._device.type == "cuda":
            torch.cuda.empty_cache()


def build_embedded(
    model: EmbeddedModel,
    dataset: EmbeddedDataset,
    precision: str,
    device: str,
    cache_dir: Path,
    train: EmbeddedTrain,
    on_note: Note = None,
) -> EmbeddedWorkload:
    """Build one embedded model at ``precision`` on ``device``, training it on first use.

    ``model``, ``dataset`` and ``train`` are the ladder's, as the zoo validated them
    (``EmbeddedLadder.builder_kwargs``): their defaults live there, not here."""
    spec, tspec = model_spec(model), train_spec(train)
    if precision not in PRECISIONS:
        raise WorkloadError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    dev = torch_device(device, "the embedded workload")  # checked before training: fails fast
    data = load_dataset(dataset, cache_dir, on_note)
    net, weights, training = trained_model(spec, data, tspec, cache_dir, on_note)
    return EmbeddedWorkload(net, spec, data, tspec, weights, precision, dev, training)
