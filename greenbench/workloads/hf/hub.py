"""Hub access, offline by default: cache lookups, revisions and commits, hub misses, and the one
line that says a model or file is neither here nor downloadable.

Every hub load passes ``local_files_only=True`` unless the run allows downloads, and a model,
tokenizer or processor that is neither cached nor reachable becomes a ``WorkloadSkipped`` whose one
line names it and says how to fix it. ``trust_remote_code`` is passed exactly as the ladder says
(always a bool: None would make transformers prompt on stdin).
"""

from __future__ import annotations

import contextlib
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from greenbench.workloads.base import WorkloadError, WorkloadSkipped, out_of_memory_error
from greenbench.workloads.hf.common import one_line

OUT_OF_MEMORY = out_of_memory_error()  # torch >= 2.1 (see pyproject)
FIX_HUB = "point the ladder at a local path, or run with --download where the hub is reachable"


def looks_local(ref: str) -> bool:
    """An existing path, or something that can only be a path (hub ids are 'name' or 'org/name')."""
    if Path(ref).expanduser().exists():
        return True
    return ref.startswith(("/", ".", "~")) or "\\" in ref or ref.count("/") > 1


def label(kind: str, ref: str | None, revision: str | None = None) -> str:
    return f"{kind} '{ref}'" + (f" revision '{revision}'" if revision else "")


def cached_commit(repo_id: str, revision: str | None, files: tuple[str, ...]) -> tuple[bool, str | None]:
    """(is any of ``files`` in the hub cache for this revision, the snapshot's commit hash)."""
    from huggingface_hub import try_to_load_from_cache

    for name in files:
        try:
            found = try_to_load_from_cache(repo_id, name, revision=revision)
        except ValueError:  # not a valid repo id: the load below says so in its own words
            return False, None
        if isinstance(found, str):
            m = re.search(r"snapshots[/\\]([0-9a-f]{40})[/\\]", found)
            return True, m.group(1) if m else None
    return False, None


@contextlib.contextmanager
def quiet_transformers(allow_download: bool = False) -> Iterator[None]:
    """No transformers progress bars for local loads (the CLI draws its own; downloads keep them)
    and no logger chatter: what matters comes back as one line or a note."""
    from transformers.utils import logging as tlog

    was, level = tlog.is_progress_bar_enabled(), tlog.get_verbosity()
    if not allow_download:
        tlog.disable_progress_bar()
    tlog.set_verbosity_error()
    try:
        yield
    finally:
        tlog.set_verbosity(level)
        if was and not allow_download:
            tlog.enable_progress_bar()


_OFFLINE_SWITCH = "HF_HUB_OFFLINE"


@contextlib.contextmanager
def hub_offline(offline: bool) -> Iterator[None]:
    """For loaders without ``local_files_only`` (timm, datasets): the hub client's offline switch."""
    if not offline:
        yield
        return
    from huggingface_hub import constants

    # The switch is a plain module global, read at call time: huggingface_hub.constants.HF_HUB_OFFLINE
    # and datasets.config's copy of it. Set by name: sys.modules gives datasets.config as a bare
    # ModuleType (and datasets may not be installed), so its attribute is invisible to the type checker.
    mods: list[ModuleType] = [constants]
    if "datasets.config" in sys.modules:  # datasets copies the switch at import
        mods.append(sys.modules["datasets.config"])
    before = [getattr(m, _OFFLINE_SWITCH, False) for m in mods]
    for m in mods:
        setattr(m, _OFFLINE_SWITCH, True)
    try:
        yield
    finally:
        for m, b in zip(mods, before, strict=True):
            setattr(m, _OFFLINE_SWITCH, b)


_HUB_MISSING = ("couldn't connect", "not a valid model identifier", "does not appear to have",
                "not found", "is not a local folder", "revision", "gated", "offline", "connection",
                "cached files")


def is_hub_miss(e: BaseException) -> bool:
    """Was this load error a missing/unreachable hub file (rather than a broken model)?"""
    hub_types: tuple = ()
    try:
        from huggingface_hub import errors as hub_errors
        from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError

        hub_types = (hub_errors.HfHubHTTPError, hub_errors.OfflineModeIsEnabled, EntryNotFoundError,
                     LocalEntryNotFoundError)
    except ImportError:  # another hub client version: the message decides below
        pass
    seen: BaseException | None = e
    while seen is not None:
        if isinstance(seen, (*hub_types, ConnectionError, TimeoutError)):
            return True
        seen = seen.__cause__ or seen.__context__
    return isinstance(e, OSError) and any(s in str(e).lower() for s in _HUB_MISSING)


def hub_load(kind: str, ref: str, revision: str | None, load: Callable[..., Any], *,
             allow_download: bool, trust_remote_code: bool, cache_files: tuple[str, ...] = ("config.json",),
             **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    """``load(ref, revision=..., local_files_only=..., trust_remote_code=..., **kwargs)`` with
    offline checks first and every failure as one line. Returns (object, provenance)."""
    what = label(kind, ref, revision)
    check_available(kind, ref, revision, allow_download, cache_files)
    local = looks_local(ref)
    prov: dict[str, Any] = {"id": ref, "revision": revision, "local": local}
    if local:
        ref = str(Path(ref).expanduser())
    else:
        prov["commit"] = cached_commit(ref, revision, cache_files)[1]
    try:
        with quiet_transformers(allow_download), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # loaders warn at length about unused weights and defaults
            obj = load(ref, revision=revision, local_files_only=not allow_download,
                       trust_remote_code=bool(trust_remote_code), **kwargs)
    except WorkloadError:
        raise
    except OUT_OF_MEMORY:
        raise  # the runner records it as out of memory
    except Exception as e:
        text = one_line(e)
        if "trust_remote_code" in str(e) and not trust_remote_code:
            raise WorkloadError(f"{what} runs its own code; set trust_remote_code: true in the ladder "
                                "only if you trust it") from None
        if not local and is_hub_miss(e):
            how = "is not in the Hugging Face cache and downloads are off" if not allow_download \
                else f"could not be downloaded ({text})"
            raise WorkloadSkipped(f"{what} {how}; {FIX_HUB}") from None
        raise WorkloadError(f"{what}: cannot load: {type(e).__name__}: {text}") from None
    if not local and prov.get("commit") is None:  # just downloaded: the cache now knows the commit
        prov["commit"] = cached_commit(ref, revision, cache_files)[1]
    return obj, prov


def check_available(kind: str, ref: str | None, revision: str | None, allow_download: bool,
                    cache_files: tuple[str, ...] = ("config.json",)) -> None:
    """Skip early, naming the model, when it is neither here nor downloadable (before its
    tokenizer or data are looked at, so the message names the first thing missing)."""
    if ref is None:
        return
    if looks_local(ref):  # a path is never downloaded, whatever the run allows
        if not Path(ref).expanduser().exists():
            raise WorkloadSkipped(f"{label(kind, ref, revision)} does not exist on this machine; "
                                  "point the ladder at a local path that exists here")
    elif not allow_download and not cached_commit(ref, revision, cache_files)[0]:
        raise WorkloadSkipped(f"{label(kind, ref, revision)} is not in the Hugging Face cache and downloads "
                              f"are off; {FIX_HUB}")
