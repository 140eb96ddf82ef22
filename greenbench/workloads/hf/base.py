"""What the three Hugging Face families (text, vision, lm) share as workloads: the model on its
device, sync, close and provenance; batch sizes, staged batches and top-1 counting."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from greenbench.workloads.base import Workload, WorkloadError
from greenbench.workloads.hf.common import version
from greenbench.workloads.hf.loading import compute_dtype, free, sync


class HFWorkload(Workload):
    """What the three families share: the model, its device, sync, close, provenance."""

    def __init__(self, name: str, model: nn.Module, params: int, precision: str, device: torch.device,
                 provenance: dict[str, Any]) -> None:
        self._name, self._params = name, params
        self._model: nn.Module | None = model  # None after close()
        self._precision, self._device = precision, device
        self._dtype = compute_dtype(precision, device)
        self._provenance = provenance
        self._provenance.setdefault("torch", torch.__version__)
        self._provenance.setdefault("transformers", version("transformers"))

    def _live(self) -> nn.Module:
        if self._model is None:
            raise WorkloadError(f"workload {self._name} used after close()")
        return self._model

    @property
    def params(self) -> int:
        return self._params

    def sync(self) -> None:
        sync(self._device)

    def provenance(self) -> dict[str, Any]:
        return json.loads(json.dumps(self._provenance, default=str))  # a copy, JSON-safe

    def _drop(self) -> None:
        """Subclasses drop their staged tensors here."""

    def close(self) -> None:
        self._model = None
        self._drop()
        free(self._device)


def batch_size_arg(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise WorkloadError(f"batch_size must be a positive integer, got {batch_size!r}")
    return batch_size


def logits_of(out: Any) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else out.logits


def repeat_to(x: torch.Tensor, n: int) -> torch.Tensor:
    """``n`` rows of ``x``, repeating it when ``n`` is larger (batches larger than the data)."""
    idx = torch.arange(n, device=x.device) % x.shape[0]
    return x[idx].contiguous()


def count_top1(logits_of_rows: Callable[[int, int], torch.Tensor], labels: torch.Tensor,
               batch_size: int, device: torch.device) -> int:
    """Correct top-1 predictions over all rows, ``batch_size`` rows at a time, counted on the device
    (one host transfer at the end)."""
    labels = labels.to(device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    with torch.inference_mode():
        for start in range(0, len(labels), batch_size):
            logits = logits_of_rows(start, start + batch_size)
            correct += (logits.argmax(dim=-1) == labels[start:start + batch_size]).sum()
    return int(correct.item())
