"""Label mapping: a dataset's labels onto a model's class ids, by name (case and separators
ignored, synonyms included) or by index, and the head a model with random weights needs."""

from __future__ import annotations

import re
from typing import Any

from greenbench.evalfiles import is_int_like
from greenbench.workloads.base import WorkloadError
from greenbench.workloads.hf.common import Note


def label_key(name: Any) -> str:
    return re.sub(r"[\s_\-]+", " ", str(name)).strip().lower()


def generic_labels(id2label: dict) -> bool:
    """transformers' placeholder names LABEL_0, LABEL_1, ...: the head has no real names."""
    return all(re.fullmatch(r"LABEL_\d+", str(v)) for v in id2label.values())


def label_index(id2label: dict) -> dict[str, int]:
    """Normalised label name (and each comma-separated synonym, as ImageNet names have) -> id."""
    index: dict[str, int] = {}
    for i, name in id2label.items():
        for alias in [name, *str(name).split(",")]:
            index.setdefault(label_key(alias), int(i))
    return index


def map_labels(values: list[Any], id2label: dict, num_labels: int, where: str) -> tuple[list[int], str]:
    """Map a dataset's labels to the model's ids: names through the model's labels (case and
    separators ignored), integers as indices. Returns (ids, how), ``how`` for provenance."""
    if not all(is_int_like(v) for v in values):
        index = label_index(id2label)
        found = [i for i in (index.get(label_key(v)) for v in values) if i is not None]
        if len(found) == len(values):
            return found, "by name (model label2id)"
        unknown = sorted({str(v) for v in values if label_key(v) not in index})
        shown = ", ".join(repr(str(v)) for v in list(id2label.values())[:6])
        raise WorkloadError(f"dataset {where}: label(s) {unknown[:5]} match none of the model's labels "
                            f"({shown}{', ...' if len(id2label) > 6 else ''}); use the model's label names "
                            "or integer ids")
    ids = [int(v) for v in values]
    bad = sorted({i for i in ids if not 0 <= i < num_labels})
    if bad:
        raise WorkloadError(f"dataset {where}: label(s) {bad[:5]} outside the model's {num_labels} "
                            f"classes (0..{num_labels - 1})")
    return ids, "by index"


def map_class_labels(ids: list[int], names: list[str] | None, id2label: dict, num_labels: int,
                     where: str, on_note: Note = None) -> tuple[list[int], str]:
    """A `datasets` ClassLabel column: by name when all its names are the model's, else by index
    (said in a note, since the two may order the classes differently)."""
    if names and not generic_labels(id2label):
        in_order = [id2label.get(i, id2label.get(str(i))) for i in range(num_labels)]
        if len(names) == num_labels and all(label_key(a) == label_key(b) for a, b in zip(names, in_order, strict=True)):
            # the same classes in the same order (ImageNet-1k has two "crane"s: by name would merge them)
            return map_labels(ids, id2label, num_labels, where)[0], "by index (the same class names, in order)"
        index = label_index(id2label)
        if len({label_key(n) for n in names}) < len(names):
            if on_note:
                on_note(f"dataset {where}: class names repeat, so cannot map by name; using label indices")
            return map_labels(ids, id2label, num_labels, where)
        if all(label_key(n) in index for n in names):
            return [index[label_key(names[i])] for i in ids], "by name (dataset ClassLabel -> model label2id)"
        if on_note:
            on_note(f"dataset {where}: class names {names[:4]} differ from the model's labels; "
                    "using label indices as they are")
    return map_labels(ids, id2label, num_labels, where)


def labels_for_random(values: list[Any]) -> dict[str, Any]:
    """Config keys that size a random classification head for this data (sorted names)."""
    if all(is_int_like(v) for v in values):
        return {"num_labels": max(int(v) for v in values) + 1}
    names = sorted({str(v) for v in values})
    return {"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}
