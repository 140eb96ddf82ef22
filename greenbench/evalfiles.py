"""Local evaluation files, read one way wherever they are scored: in-process by the Hugging Face
workloads (``workloads/hf``) and through a server's endpoint (``serving/scoring``).

A table is a CSV or TSV with a header row, JSONL (one object a line) or JSON (a list of objects, or
{"data": [...]}). Multiple-choice choices are a list (a JSON list or "a|b|c" in a CSV cell, or
ARC's {"text": [...], "label": [...]}), and the answer an index, a letter, a label or the choice's
text. Every error is one line naming the file and the item, raised as the caller's own error class
(``error``), so each stage keeps the exception its callers handle. Torch-free, top level: every
stage may import it.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from greenbench.errors import GreenbenchError

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json")

Raise = Callable[[str], Exception]


class EvalFileError(GreenbenchError):
    """An evaluation file that cannot be read (one line)."""


def read_table(path: Path, error: Raise = EvalFileError) -> list[dict[str, Any]]:
    """Rows of a CSV/TSV (header row), JSONL (one object a line) or JSON (a list of objects)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise error(f"dataset {path}: unknown file type {suffix or '(none)'}; use {', '.join(TABLE_SUFFIXES)}")
    try:
        text = path.read_text("utf-8")
    except OSError as e:
        raise error(f"dataset {path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise error(f"dataset {path}: not UTF-8 text") from None
    rows: list[Any]
    if suffix in (".csv", ".tsv"):
        try:
            rows = list(csv.DictReader(text.splitlines(), delimiter="\t" if suffix == ".tsv" else ","))
        except csv.Error as e:
            raise error(f"dataset {path}: not valid {suffix[1:].upper()}: {e}") from None
        if rows and any(None in r for r in rows):  # more fields than the header names
            lineno = next(i for i, r in enumerate(rows) if None in r) + 2
            raise error(f"dataset {path}: line {lineno} has more fields than the header")
    elif suffix == ".jsonl":
        rows = []
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise error(f"dataset {path}: line {i} is not valid JSON: {e.msg}") from None
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise error(f"dataset {path}: not valid JSON at line {e.lineno}: {e.msg}") from None
        items = doc.get("data") if isinstance(doc, dict) else doc
        if not isinstance(items, list):
            raise error(f"dataset {path}: expected a JSON list of objects (or {{\"data\": [...]}})")
        rows = items
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise error(f"dataset {path}: item {i + 1} is not an object with named fields")
    if not rows:
        raise error(f"dataset {path}: no items")
    return rows


def column(rows: list[dict], name: str, where: str | Path, error: Raise = EvalFileError, hint: str = "") -> list[Any]:
    """Every row's ``name``; the first row without it is one line with the columns it has."""
    missing = next((i for i, r in enumerate(rows) if r.get(name) in (None, "")), None)
    if missing is not None:
        known = [str(k) for k in rows[missing]]  # in the file's order
        raise error(f"dataset {where}: item {missing + 1} has no {name!r} "
                    f"(columns: {', '.join(known) or 'none'}{'; ' + hint if hint else ''})")
    return [r[name] for r in rows]


def read_lines(path: Path, error: Raise = EvalFileError) -> list[str]:
    """A TXT file's non-empty lines, stripped (one text item a line)."""
    try:
        lines = Path(path).read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        text = str(e).strip().splitlines()
        raise error(f"dataset {path}: cannot read as UTF-8 text: {type(e).__name__}: "
                    f"{text[0] if text else ''}") from None
    return [line.strip() for line in lines if line.strip()]


def is_int_like(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return True
    return isinstance(v, str) and re.fullmatch(r"-?\d+", v.strip()) is not None


def choice_list(value: Any, where: str | Path, item: int, error: Raise = EvalFileError) -> list[str]:
    """A multiple-choice item's choices: a list, a JSON list or 'a|b|c' in a cell, or ARC's {"text": [...]}."""
    if isinstance(value, str):  # CSV cells: a JSON list, or choices separated by '|'
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise error(f"dataset {where}: item {item}: choices is not a valid JSON list") from None
        else:
            value = [c.strip() for c in text.split("|")]
    if isinstance(value, dict) and "text" in value:  # e.g. ARC's {"text": [...], "label": [...]}
        value = value["text"]
    if not isinstance(value, (list, tuple)) or len(value) < 2:
        raise error(f"dataset {where}: item {item}: choices must be a list of at least 2")
    return [str(c) for c in value]


def answer_index(answer: Any, raw_choices: Any, choices: list[str], where: str | Path, item: int,
                 error: Raise = EvalFileError) -> int:
    """The index of the right choice: ARC's label ("A".."D" or "1".."4" in {"label": [...]}), an
    index, the choice's text, or a letter."""
    labels = [str(x).strip() for x in raw_choices.get("label", [])] if isinstance(raw_choices, dict) else []
    if len(labels) == len(choices) and str(answer).strip() in labels:
        return labels.index(str(answer).strip())
    if is_int_like(answer):
        idx = int(answer)
    elif isinstance(answer, str) and answer.strip() in choices:
        idx = choices.index(answer.strip())
    elif isinstance(answer, str) and len(answer.strip()) == 1 and answer.strip().isalpha():
        idx = ord(answer.strip().upper()) - ord("A")
    else:
        raise error(f"dataset {where}: item {item}: answer {answer!r} is neither an index, a letter "
                    "nor one of the choices")
    if not 0 <= idx < len(choices):
        raise error(f"dataset {where}: item {item}: answer {answer!r} is outside its {len(choices)} choices")
    return idx
