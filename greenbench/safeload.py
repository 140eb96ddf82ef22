"""Reading the files a user hands greenbench: bounded in size, nesting and YAML aliases.

Every file a user gives (a model zoo, a users file, a demand or trace CSV, a profile) comes in
through ``read_text`` and then ``load_yaml`` or ``load_json``. Each problem becomes one
``InputError`` line naming the file: missing, a folder, unreadable, larger than the bound the
caller sets, not UTF-8 text (with the first bad byte and its offset), YAML or JSON that does not
parse, nests deeper than a bound, or expands YAML aliases beyond a bound (a few hundred bytes of
"billion laughs" anchors would otherwise grow to gigabytes once validated).

The API (``read_text``, ``load_yaml``, ``load_json``, ``InputError``) is stable: other stages import it.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from greenbench.errors import GreenbenchError

__all__ = ["MAX_ALIASES", "MAX_ALIAS_NODES", "MAX_DEPTH", "InputError", "load_json", "load_yaml", "read_text"]

MAX_DEPTH = 64  # nesting levels; greenbench's own files use fewer than 8
MAX_ALIASES = 100  # YAML aliases (*name) in one document
MAX_ALIAS_NODES = 100_000  # nodes the aliases of one document add once expanded

# libyaml's parser where PyYAML has it (about 10x faster); both are safe loaders.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class InputError(GreenbenchError):
    """A file cannot be read as the text, YAML or JSON it should be; one line naming the file."""


def _article(what: str) -> str:
    return "an" if what[:1].lower() in "aeio" else "a"  # "a users file": a 'u' that sounds like "you"


def _size(n: int) -> str:
    """Bytes as a person reads them: '512 bytes', '1.5 MiB'."""
    if n < 1024:
        return f"{n} bytes"
    value, units = n / 1024, ["KiB", "MiB", "GiB", "TiB"]
    while value >= 1024 and len(units) > 1:
        value, units = value / 1024, units[1:]
    return f"{value:.3g} {units[0]}"


def read_text(path: Path | str, *, what: str, max_bytes: int) -> str:
    """The UTF-8 text of ``path`` (a leading byte-order mark dropped), or InputError.

    ``what`` names the kind of file in messages ("model zoo", "users file"). A regular file larger
    than ``max_bytes`` is refused before it is read; anything else (a pipe, a device) is read up
    to ``max_bytes`` and refused if there is more. A NUL byte counts as binary, not text."""
    p = Path(path)
    a = _article(what)
    try:
        st = os.stat(p)
        if stat.S_ISDIR(st.st_mode):
            raise InputError(f"{p}: is a folder, not {a} {what}")
        if stat.S_ISREG(st.st_mode) and st.st_size > max_bytes:
            raise InputError(f"{p}: {_size(st.st_size)} is more than the {_size(max_bytes)} {a} {what} may hold; "
                             "is it the right file?")
        with open(p, "rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise InputError(f"{p}: cannot read {what}: no such file") from None
    except PermissionError:
        raise InputError(f"{p}: cannot read {what}: permission denied") from None
    except IsADirectoryError:
        raise InputError(f"{p}: is a folder, not {a} {what}") from None
    except OSError as e:
        raise InputError(f"{p}: cannot read {what}: {e.strerror or e}") from None
    if len(data) > max_bytes:
        raise InputError(f"{p}: more than the {_size(max_bytes)} {a} {what} may hold; is it the right file?")
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0  # offsets below count it: they are the file's
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{p}: not UTF-8 text (byte 0x{data[bom + e.start]:02x} at offset {bom + e.start}); "
                         f"{a} {what} is a text file") from None
    nul = data.find(b"\0")  # UTF-8 never has a zero byte inside a character
    if nul >= 0:
        raise InputError(f"{p}: not text (a NUL byte at offset {nul}); {a} {what} is a text file")
    return text


def _first(e: Exception) -> str:
    """An exception's message up to its first ';' (Python's advice on raising its limits is not ours)."""
    return str(e).split(";")[0]


def _at(mark: Any) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def _check_events(text: str, source: str, max_depth: int, max_aliases: int, max_alias_nodes: int) -> None:
    """Walk the YAML event stream once (the parser keeps its own stack: no recursion), refusing
    nesting beyond ``max_depth``, aliases beyond their count or expanded size, and a key given twice
    in one mapping (YAML would keep the last silently), before anything is composed. The C composer
    cannot be hooked, so the event stream is where both loaders can be bounded.

    Per open collection, a ``_Open``; per finished anchor, its nodes and height."""
    stack = [_Open(None, False)]
    done: dict[str, tuple[int, int]] = {}
    aliases = added = 0
    for ev in yaml.parse(text, Loader=_Loader):
        top = stack[-1]
        if isinstance(ev, yaml.CollectionStartEvent):
            stack.append(_Open(ev.anchor, isinstance(ev, yaml.MappingStartEvent)))
            if len(stack) - 1 > max_depth:
                raise InputError(f"{source}: nested deeper than {max_depth} levels{_at(ev.start_mark)}")
        elif isinstance(ev, yaml.CollectionEndEvent):
            end = stack.pop()
            if end.anchor is not None:
                done[end.anchor] = (end.nodes + 1, end.height + 1)
            stack[-1].add(end.nodes + 1, end.height + 1)
        elif isinstance(ev, yaml.ScalarEvent):
            if top.mapping and top.items % 2 == 0 and not (ev.value == "<<" and ev.implicit[0]):
                if ev.value in top.keys:
                    raise InputError(f"{source}: key {ev.value!r} appears twice in one mapping{_at(ev.start_mark)}; "
                                     "keep one")
                top.keys.add(ev.value)
            if ev.anchor is not None:
                done[ev.anchor] = (1, 0)
            top.add(1, 0)
        elif isinstance(ev, yaml.AliasEvent):
            aliases += 1
            if aliases > max_aliases:
                raise InputError(f"{source}: more than {max_aliases} YAML aliases (*name){_at(ev.start_mark)}; "
                                 "write the values out")
            if ev.anchor not in done:
                if any(o.anchor == ev.anchor for o in stack):
                    raise InputError(f"{source}: alias *{ev.anchor} refers to itself{_at(ev.start_mark)}")
                continue  # undefined: the composer says so with its line
            nodes, height = done[ev.anchor]
            added += nodes
            if added > max_alias_nodes:
                raise InputError(f"{source}: YAML aliases expand to more than {max_alias_nodes:,} values"
                                 f"{_at(ev.start_mark)}; write the values out")
            if len(stack) - 1 + height > max_depth:
                raise InputError(f"{source}: nested deeper than {max_depth} levels once alias *{ev.anchor} "
                                 f"is expanded{_at(ev.start_mark)}")
            top.add(nodes, height)
        elif isinstance(ev, yaml.DocumentStartEvent):
            done.clear()  # anchors belong to one document


class _Open:
    """A collection being parsed: its anchor, the nodes and height under it so far, and for a
    mapping the number of keys and values seen and the scalar keys."""

    __slots__ = ("anchor", "height", "items", "keys", "mapping", "nodes")

    def __init__(self, anchor: str | None, mapping: bool):
        self.anchor, self.mapping = anchor, mapping
        self.nodes = self.height = self.items = 0
        self.keys: set[str] = set()

    def add(self, nodes: int, height: int) -> None:
        self.nodes += nodes
        self.height = max(self.height, height)
        self.items += 1


def load_yaml(text: str, source: str, *, max_depth: int = MAX_DEPTH, max_aliases: int = MAX_ALIASES,
              max_alias_nodes: int = MAX_ALIAS_NODES) -> Any:
    """One YAML document, loaded safely (plain data only: no Python tags), or InputError naming
    ``source`` and the line. Empty text gives None."""
    try:
        _check_events(text, source, max_depth, max_aliases, max_alias_nodes)
        loader = _Loader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        problem = e.problem or e.context or "not valid YAML"
        if e.problem and e.context and not e.context.startswith("while"):  # "expected a single document..."
            problem = f"{e.context}, {e.problem}"
        elif e.problem and e.context and e.context_mark is not None:  # where the unclosed thing began
            problem = f"{e.problem} ({e.context} started{_at(e.context_mark)})"
        if "maximum nesting depth" in problem:  # libyaml's own bound (1,000 flow levels), met before ours
            raise InputError(f"{source}: nested deeper than {max_depth} levels{_at(e.problem_mark)}") from None
        raise InputError(f"{source}: not valid YAML{_at(e.problem_mark or e.context_mark)}: {problem}") from None
    except yaml.YAMLError as e:
        raise InputError(f"{source}: not valid YAML: {e}") from None
    except RecursionError:  # bounded above; kept so that no stack overflow is ever a traceback
        raise InputError(f"{source}: nested deeper than {max_depth} levels") from None
    except (ValueError, OverflowError) as e:  # a value the constructor cannot build (a 5,000-digit int, 2024-13-01)
        raise InputError(f"{source}: not valid YAML: a value cannot be read ({_first(e)})") from None


def _depth_over(doc: Any, max_depth: int) -> bool:
    """Whether lists and dicts in ``doc`` nest deeper than ``max_depth`` (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(doc, 0)]
    while stack:
        obj, depth = stack.pop()
        children = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list) else None
        if children is None:
            continue
        if depth + 1 > max_depth:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


class _DuplicateKey(Exception):
    def __init__(self, key: str):
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's pairs as a dict, refusing a key given twice (json keeps the last silently; the
    YAML reader refuses it alike)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def load_json(text: str, source: str, max_depth: int = MAX_DEPTH) -> Any:
    """A JSON document, or InputError naming ``source`` (with the line and column of a syntax error)
    when it does not parse, nests deeper than ``max_depth``, gives a key twice in one object, or
    holds a number Python refuses."""
    try:
        doc = json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as e:
        shown = repr(e.key) if len(e.key) <= 40 else repr(e.key[:40]) + "..."
        raise InputError(f"{source}: key {shown} appears twice in one object; keep one") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{source}: not JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except RecursionError:
        raise InputError(f"{source}: nested deeper than {max_depth} levels") from None
    except ValueError as e:  # e.g. an integer of more than 4,300 digits
        raise InputError(f"{source}: not JSON that can be read: {_first(e)}") from None
    if _depth_over(doc, max_depth):
        raise InputError(f"{source}: nested deeper than {max_depth} levels")
    return doc
