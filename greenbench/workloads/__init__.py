"""Workloads: one model at one precision on one device, built by kind from a ladder entry."""

from __future__ import annotations

from typing import Any, Callable

from greenbench.workloads.base import Score, Workload, WorkloadError, WorkloadSkipped

__all__ = ["Score", "Workload", "WorkloadError", "WorkloadSkipped", "build_workload", "KINDS"]


def _build_embedded(**kwargs: Any) -> Workload:
    # Imported on use: torch and the model code load only when a workload is actually built.
    from greenbench.workloads.embedded import build_embedded

    return build_embedded(**kwargs)


KINDS: dict[str, Callable[..., Workload]] = {"embedded": _build_embedded}


def build_workload(kind: str, **kwargs: Any) -> Workload:
    """Build a workload of ``kind``; the keyword arguments are that kind's builder's."""
    builder = KINDS.get(kind)
    if builder is None:
        raise WorkloadError(f"unknown workload kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    return builder(**kwargs)
