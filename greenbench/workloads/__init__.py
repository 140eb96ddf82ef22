"""Workloads: one model at one precision on one device, built by kind from a ladder entry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from greenbench.workloads.base import Score, Workload, WorkloadError, WorkloadSkipped

__all__ = ["KINDS", "Score", "Workload", "WorkloadError", "WorkloadSkipped", "build_workload"]


def _build_embedded(**kwargs: Any) -> Workload:
    # Imported on use: torch and the model code load only when a workload is actually built.
    from greenbench.workloads.embedded import build_embedded

    return build_embedded(**kwargs)


def _build_hf_text(**kwargs: Any) -> Workload:
    from greenbench.workloads.hf.text import build_hf_text

    return build_hf_text(**kwargs)


def _build_hf_vision(**kwargs: Any) -> Workload:
    from greenbench.workloads.hf.vision import build_hf_vision

    return build_hf_vision(**kwargs)


def _build_hf_lm(**kwargs: Any) -> Workload:
    from greenbench.workloads.hf.lm import build_hf_lm

    return build_hf_lm(**kwargs)


KINDS: dict[str, Callable[..., Workload]] = {
    "embedded": _build_embedded,
    "hf-text": _build_hf_text,
    "hf-vision": _build_hf_vision,
    "hf-lm": _build_hf_lm,
}


def build_workload(kind: str, **kwargs: Any) -> Workload:
    """Build a workload of ``kind``; the keyword arguments are that kind's builder's: the ladder's
    validated entries (``Ladder.builder_kwargs``: the zoo's models, not dicts) with precision,
    device, cache_dir and on_note."""
    builder = KINDS.get(kind)
    if builder is None:
        raise WorkloadError(f"unknown workload kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    return builder(**kwargs)
