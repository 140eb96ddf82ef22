"""The workload interface: one model, at one precision, on one device.

An adapter builds the model and its evaluation data; the runner asks it for a ``step`` that runs
one batch of inference on inputs already staged on the device (so the timed loop measures the
model, not data loading), for the accuracy on the held-out split, and for ``sync`` (the device
barrier used at window edges).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from greenbench.errors import GreenbenchError


def torch_device(device: str, workload: str):
    """``cpu`` or ``cuda:N`` as a torch.device, checked against what this torch sees (one line)."""
    import torch  # here, not at import: listing ladders must not load torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise WorkloadError(f"bad device {device!r}: expected 'cpu' or 'cuda:N'") from e
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise WorkloadError(f"{workload} runs on 'cpu' or 'cuda:N', not {device!r}")
    if not torch.cuda.is_available():
        raise WorkloadError(f"device {device!r} requested but this torch sees no CUDA GPU")
    index = 0 if dev.index is None else dev.index
    if index >= torch.cuda.device_count():
        raise WorkloadError(f"device {device!r} requested but only {torch.cuda.device_count()} GPU(s) visible")
    return torch.device("cuda", index)


def out_of_memory_error() -> type[BaseException]:
    """torch's out-of-memory error on every torch pyproject allows: ``torch.OutOfMemoryError``
    exists from torch 2.5 on; ``torch.cuda.OutOfMemoryError`` (the same class there) from 1.13."""
    import torch

    return getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError


class WorkloadError(GreenbenchError):
    """A workload could not be built or run; the message is one clear line for the user."""


class WorkloadSkipped(WorkloadError):
    """The point cannot run here (a model that is neither cached nor reachable, say)."""


@dataclass(frozen=True)
class Score:
    """Quality on the evaluation split: ``correct`` of ``total`` items.

    ``correct`` is None when the task has no accuracy (a causal LM scored on plain text only);
    ``extra`` carries other quality figures with units in their names (``perplexity``,
    ``tokens_scored``).
    """

    correct: int | None
    total: int
    metric: str = "accuracy"
    extra: dict[str, float] = field(default_factory=dict, hash=False)  # hashable Score all the same


@dataclass(frozen=True)
class TrainingInfo:
    """How the weights were trained where greenbench trained them: accuracy depends on the seed
    and, through the order of float sums, on torch's thread count."""

    source: str  # "trained" (in this run) or "cache" (trained earlier, loaded)
    seed: int
    torch_threads: int | None  # None: a cache from before greenbench recorded it
    torch: str | None = None  # the torch version that trained them


class Workload(ABC):
    """Built once per (model, precision, device); reused for every batch size."""

    @property
    @abstractmethod
    def params(self) -> int:
        """Number of parameters of the model."""

    @abstractmethod
    def make_step(self, batch_size: int) -> Callable[[], Any]:
        """A callable that runs one batch of ``batch_size`` items (inputs staged in advance)."""

    @abstractmethod
    def evaluate(self, batch_size: int) -> Score:
        """Score the model on the whole evaluation split, in batches of ``batch_size``."""

    @abstractmethod
    def sync(self) -> None:
        """Wait until all queued device work is done (``torch.cuda.synchronize`` on a GPU)."""

    def phases(self) -> tuple[str, ...]:
        """Extra windows measured beside the full request at every point (a causal LM: "prefill")."""
        return ()

    def make_phase_step(self, phase: str, batch_size: int) -> Callable[[], Any]:
        """Like ``make_step``, but runs only ``phase`` of a request (e.g. the prompt's forward pass)."""
        raise WorkloadError(f"{type(self).__name__} has no phase {phase!r}")

    def request_shape(self) -> dict[str, int] | None:
        """Fixed request shape, recorded with each point (a causal LM: prompt_tokens, output_tokens)."""
        return None

    def provenance(self) -> dict[str, Any]:
        """Model id and revision, dataset id and split, seeds: stored with each record."""
        return {}

    def training(self) -> TrainingInfo | None:
        """How greenbench trained the weights, where it did (None: pretrained or random weights)."""
        return None

    def close(self) -> None:  # noqa: B027 -- a workload holding no device memory need not override it
        """Free device memory before the next model is built."""
