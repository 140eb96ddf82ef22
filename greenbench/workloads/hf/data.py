"""Evaluation data of the Hugging Face workloads: local files and folders (read, checked, hashed),
`datasets` hub splits (offline unless downloads are allowed), columns and item limits.

Synthetic items are drawn by each family, in its own shape (token ids, images).
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

from greenbench import evalfiles
from greenbench.measure.zoo import HFDataset
from greenbench.workloads.base import WorkloadError, WorkloadSkipped
from greenbench.workloads.hf.common import one_line, require, version
from greenbench.workloads.hf.hub import FIX_HUB, hub_offline

TABLE_SUFFIXES = evalfiles.TABLE_SUFFIXES


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def read_table(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV/TSV (header row), JSONL (one object a line) or JSON (a list of objects)."""
    return evalfiles.read_table(path, WorkloadError)


def column(rows: list[dict], name: str, where: str) -> list[Any]:
    return evalfiles.column(rows, name, where, WorkloadError, hint="set the ladder's *_column")


def local_dataset(ds: HFDataset) -> tuple[Path, dict[str, Any]]:
    assert ds.path is not None
    path = Path(ds.path).expanduser()
    if not path.exists():
        raise WorkloadSkipped(f"dataset '{ds.path}' does not exist on this machine; "
                              "point the ladder's dataset path at a file or folder that exists here")
    prov = {"path": str(path), "format": ds.format}
    if path.is_file():
        prov["sha256"] = file_sha256(path)
    return path, prov


def hub_dataset(ds: HFDataset, allow_download: bool, columns: tuple[str, ...]) -> tuple[Any, dict[str, Any]]:
    """A `datasets` split (rows stay in the Dataset); offline unless downloads are allowed."""
    what = f"dataset '{ds.id}'" + (f" config '{ds.config}'" if ds.config else "") + \
        (f" revision '{ds.revision}'" if ds.revision else "")
    datasets = require("datasets", what)
    try:
        with hub_offline(not allow_download), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = datasets.load_dataset(ds.id, ds.config, split=ds.split, revision=ds.revision)
    except Exception as e:  # the library's errors vary by version; all mean "not usable here"
        how = "is not in the datasets cache and downloads are off" if not allow_download \
            else "could not be loaded"
        raise WorkloadSkipped(f"{what} split '{ds.split}' {how} ({type(e).__name__}: {one_line(e)}); "
                              f"{FIX_HUB}") from None
    missing = [c for c in columns if c not in data.column_names]
    if missing:
        raise WorkloadError(f"{what} split '{ds.split}' has no column {missing[0]!r} "
                            f"(columns: {', '.join(data.column_names)}; set the ladder's *_column)")
    if ds.limit is not None:
        data = data.select(range(min(ds.limit, len(data))))
    if len(data) == 0:
        raise WorkloadError(f"{what} split '{ds.split}' has no items")
    prov = {"id": ds.id, "config": ds.config, "split": ds.split, "revision": ds.revision,
            "fingerprint": getattr(data, "_fingerprint", None), "datasets": version("datasets")}
    return data, prov


def class_names(data: Any, label_column: str) -> list[str] | None:
    """The ClassLabel names of a `datasets` label column, if it has them."""
    feature = getattr(data, "features", {}).get(label_column)
    names = getattr(feature, "names", None)
    return list(names) if names else None
