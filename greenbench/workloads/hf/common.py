"""What every part of the Hugging Face workloads shares: the note callback, one-line error text,
optional packages and their versions."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from collections.abc import Callable
from typing import Any

from greenbench.workloads.base import WorkloadSkipped

Note = Callable[[str], None] | None


def one_line(e: BaseException) -> str:
    lines = [s.strip() for s in str(e).strip().splitlines() if s.strip()]
    return lines[0] if lines else type(e).__name__


def require(package: str, what: str, pip_name: str | None = None) -> Any:
    """Import an optional package, or skip the point with the line that installs it."""
    if importlib.util.find_spec(package) is None:
        raise WorkloadSkipped(f"{what} needs the '{package}' package: pip install {pip_name or package}")
    return importlib.import_module(package)


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
