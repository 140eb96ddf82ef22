"""Shared loading code of the Hugging Face workloads (hf-text, hf-vision, hf-lm).

Offline by default: every hub load passes ``local_files_only=True`` unless the run allows
downloads, and a model, tokenizer or dataset that is neither cached nor reachable becomes a
``WorkloadSkipped`` whose one line names it and says how to fix it. ``trust_remote_code`` is
passed exactly as the ladder says (always a bool: None would make transformers prompt on stdin).
Imported only when a workload is built, so torch and transformers load only then.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from greenbench.measure.zoo import PRECISION_TABLE
from greenbench.workloads.base import (
    Workload,
    WorkloadError,
    WorkloadSkipped,
    out_of_memory_error,
    torch_device,
)

OUT_OF_MEMORY = out_of_memory_error()  # torch >= 2.1 (see pyproject)

Note = Callable[[str], None] | None
# The zoo's precision table as torch dtypes (int8: the float dtype around the quantised layers on
# a CPU; see compute_dtype for CUDA).
PRECISIONS = {name: getattr(torch, p.dtype) for name, p in PRECISION_TABLE.items()}


def compute_dtype(precision: str, device: torch.device) -> torch.dtype:
    """Dtype of activations and unquantised layers: int8 keeps fp32 on the CPU (dynamic
    quantisation) and fp16 on CUDA (bitsandbytes LLM.int8() computes in fp16)."""
    if precision == "int8":
        return torch.float16 if device.type == "cuda" else torch.float32
    return PRECISIONS[precision]
INIT_SEED = 0  # random weights: the same model on every run and machine
FIX_HUB = "point the ladder at a local path, or run with --download where the hub is reachable"
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json")


# ----------------------------------------------------------------------------------- specs


def one_line(e: BaseException) -> str:
    lines = [s.strip() for s in str(e).strip().splitlines() if s.strip()]
    return lines[0] if lines else type(e).__name__


def model_ref(model: dict) -> Any:
    """The ladder's model entry, validated by the zoo's own schema (one source of truth)."""
    from pydantic import ValidationError

    from greenbench.measure.zoo import HFModel

    try:
        return HFModel.model_validate(model)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "model"
        raise WorkloadError(f"model {model.get('name', model) if isinstance(model, dict) else model!r}: "
                            f"{where}: {err['msg']}") from None


def dataset_ref(dataset: dict | None) -> Any:
    from pydantic import ValidationError

    from greenbench.measure.zoo import HFDataset

    try:
        return HFDataset.model_validate(dataset or {})
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "dataset"
        raise WorkloadError(f"dataset: {where}: {err['msg']}") from None


def resolve_device(device: str) -> torch.device:
    return torch_device(device, "Hugging Face workloads")


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse what cannot run here before anything is loaded."""
    if precision not in PRECISIONS:
        raise WorkloadError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    if precision != "int8":
        return
    if device.type == "cuda":
        require("bitsandbytes", "int8 on CUDA")
    elif not hasattr(getattr(torch, "ao", None), "quantization") or \
            not hasattr(torch.ao.quantization, "quantize_dynamic"):
        raise WorkloadSkipped("int8 on the CPU needs torch.ao.quantization.quantize_dynamic, which this torch lacks")


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


# ------------------------------------------------------------------------------ hub access


def looks_local(ref: str) -> bool:
    """An existing path, or something that can only be a path (hub ids are 'name' or 'org/name')."""
    if Path(ref).expanduser().exists():
        return True
    return ref.startswith(("/", ".", "~")) or "\\" in ref or ref.count("/") > 1


def label(kind: str, ref: str, revision: str | None = None) -> str:
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


@contextlib.contextmanager
def hub_offline(offline: bool) -> Iterator[None]:
    """For loaders without ``local_files_only`` (timm, datasets): the hub client's offline switch."""
    if not offline:
        yield
        return
    from huggingface_hub import constants

    mods = [constants]
    if "datasets.config" in sys.modules:  # datasets copies the switch at import
        mods.append(sys.modules["datasets.config"])
    before = [getattr(m, "HF_HUB_OFFLINE", False) for m in mods]
    for m in mods:
        m.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        for m, b in zip(mods, before):
            m.HF_HUB_OFFLINE = b


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
        if isinstance(seen, hub_types + (ConnectionError, TimeoutError)):
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


def dtype_kwargs(dtype: torch.dtype) -> dict[str, Any]:
    """transformers >= 4.56 names it ``dtype``; older ones ``torch_dtype``."""
    import transformers

    major, minor = (int(x) for x in re.findall(r"\d+", transformers.__version__)[:2])
    return {"dtype": dtype} if (major, minor) >= (4, 56) else {"torch_dtype": dtype}


# ------------------------------------------------------------------------------- models


@dataclass
class Loaded:
    model: nn.Module
    params: int
    provenance: dict[str, Any]
    config: Any = None  # the transformers config (None for timm/torchvision)


def load_transformers_model(auto_name: str, ref: Any, precision: str, device: torch.device, *,
                            allow_download: bool, trust_remote_code: bool, on_note: Note = None,
                            config_defaults: dict[str, Any] | None = None) -> Loaded:
    """Load ``ref`` (an HFModel) with ``transformers.<auto_name>``: pretrained from a hub id or a
    folder, or random weights from a config; at ``precision`` on ``device``.

    ``config_defaults`` fill config keys the ladder did not set (e.g. num_labels from the data).
    """
    import transformers
    from transformers import AutoConfig

    auto = getattr(transformers, auto_name)
    dtype = compute_dtype(precision, device)
    cfg_keys = {**(config_defaults or {}), **(ref.config or {})}
    prov: dict[str, Any] = {"source": "transformers", "weights": ref.weights, "class": auto_name}
    bnb = precision == "int8" and device.type == "cuda"
    if ref.weights == "pretrained":
        kwargs: dict[str, Any] = {**dtype_kwargs(dtype), **(ref.config or {})}
        if bnb:
            kwargs["quantization_config"] = transformers.BitsAndBytesConfig(load_in_8bit=True)
            kwargs["device_map"] = {"": device.index or 0}
        model, where = hub_load("model", ref.id, ref.revision, auto.from_pretrained,
                                allow_download=allow_download, trust_remote_code=trust_remote_code, **kwargs)
    else:
        if bnb:
            raise WorkloadSkipped("int8 on CUDA loads pretrained weights through bitsandbytes; "
                                  "random weights are measured at fp32, bf16 or fp16 there")
        if ref.id is None:
            cfg = dict(cfg_keys)
            try:
                config = AutoConfig.for_model(cfg.pop("model_type"), **cfg)
            except (ValueError, TypeError, KeyError) as e:
                raise WorkloadError(f"model {ref.name!r}: bad config: {one_line(e)}") from None
            where = {"id": None, "revision": None, "local": None}
        else:  # the architecture of a hub model or folder, with fresh weights
            config, where = hub_load("model", ref.id, ref.revision, AutoConfig.from_pretrained,
                                     allow_download=allow_download, trust_remote_code=trust_remote_code,
                                     **cfg_keys)
        try:
            with torch.random.fork_rng(devices=[]), warnings.catch_warnings(), quiet_transformers():
                warnings.simplefilter("ignore")
                torch.manual_seed(INIT_SEED)
                model = auto.from_config(config, trust_remote_code=bool(trust_remote_code))
        except ValueError as e:
            raise WorkloadError(f"model {ref.name!r}: {auto_name} cannot build a {config.model_type!r} "
                                f"model: {one_line(e)}") from None
        model = model.to(dtype=dtype)
        prov["init_seed"] = INIT_SEED
    prov.update(where)
    if ref.config:
        prov["config"] = dict(ref.config)
    params = count_params(model)
    model = place(model, precision, device, prov, on_note, already_placed=bnb)
    return Loaded(model=model, params=params, provenance=prov, config=getattr(model, "config", None))


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _conv1d_to_linear(model: nn.Module) -> int:
    """GPT-2 style Conv1D layers are Linear with transposed weights; swap them so int8 reaches them."""
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:
        return 0
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, Conv1D):
                lin = nn.Linear(child.weight.shape[0], child.weight.shape[1], bias=child.bias is not None)
                with torch.no_grad():
                    lin.weight.copy_(child.weight.t())
                    if child.bias is not None:
                        lin.bias.copy_(child.bias)
                setattr(parent, name, lin)
                swapped += 1
    return swapped


def place(model: nn.Module, precision: str, device: torch.device, prov: dict[str, Any],
          on_note: Note = None, already_placed: bool = False) -> nn.Module:
    """Move to ``device`` at ``precision``; int8 on the CPU quantises Linear layers dynamically."""
    if precision == "int8" and device.type == "cpu":
        model = model.to(dtype=torch.float32)
        swapped = _conv1d_to_linear(model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao's deprecation notices, once per layer
            model = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
        quantized = sum(1 for m in model.modules() if type(m).__module__.startswith("torch.ao.nn.quantized"))
        if quantized == 0:
            raise WorkloadSkipped("int8 on the CPU quantises nn.Linear layers, and this model has none")
        prov["int8"] = {"method": "torch.ao.quantization.quantize_dynamic (qint8 weights, Linear layers)",
                        "layers": quantized, "engine": torch.backends.quantized.engine,
                        **({"conv1d_as_linear": swapped} if swapped else {})}
        if on_note:
            on_note(f"int8: {quantized} Linear layer(s) quantised dynamically; other layers stay fp32")
        return model.eval()
    if precision == "int8":
        prov["int8"] = {"method": "bitsandbytes LLM.int8()", "bitsandbytes": version("bitsandbytes")}
    if not already_placed:
        model = model.to(device=device)
    return model.eval()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def probe(run: Callable[[], Any], precision: str, device: torch.device, name: str) -> Any:
    """Run one tiny batch at build time, so an unsupported dtype/device pair fails in one line."""
    try:
        with torch.inference_mode():
            out = run()
        sync(device)
        return out
    except OUT_OF_MEMORY:
        raise
    except (RuntimeError, NotImplementedError, ValueError, IndexError, TypeError) as e:
        raise WorkloadError(f"model {name!r} does not run at {precision} on {device}: "
                            f"{type(e).__name__}: {one_line(e)}") from None


def logits_of(out: Any) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else out.logits


def repeat_to(x: torch.Tensor, n: int) -> torch.Tensor:
    """``n`` rows of ``x``, repeating it when ``n`` is larger (batches larger than the data)."""
    idx = torch.arange(n, device=x.device) % x.shape[0]
    return x[idx].contiguous()


# --------------------------------------------------------------------------------- data


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def read_table(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV/TSV (header row), JSONL (one object a line) or JSON (a list of objects)."""
    suffix = path.suffix.lower()
    try:
        text = path.read_text("utf-8")
    except OSError as e:
        raise WorkloadError(f"dataset {path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise WorkloadError(f"dataset {path}: not UTF-8 text") from None
    rows: list[Any]
    if suffix in (".csv", ".tsv"):
        try:
            rows = list(csv.DictReader(text.splitlines(), delimiter="\t" if suffix == ".tsv" else ","))
        except csv.Error as e:
            raise WorkloadError(f"dataset {path}: not valid {suffix[1:].upper()}: {e}") from None
        if rows and any(None in r for r in rows):  # more fields than the header names
            line = next(i for i, r in enumerate(rows) if None in r) + 2
            raise WorkloadError(f"dataset {path}: line {line} has more fields than the header")
    elif suffix == ".jsonl":
        rows = []
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise WorkloadError(f"dataset {path}: line {i} is not valid JSON: {e.msg}") from None
    elif suffix == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise WorkloadError(f"dataset {path}: not valid JSON at line {e.lineno}: {e.msg}") from None
        rows = doc.get("data") if isinstance(doc, dict) else doc
        if not isinstance(rows, list):
            raise WorkloadError(f"dataset {path}: expected a JSON list of objects (or {{\"data\": [...]}})")
    else:
        raise WorkloadError(f"dataset {path}: unknown file type {suffix or '(none)'}; "
                            f"use {', '.join(TABLE_SUFFIXES)}")
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise WorkloadError(f"dataset {path}: item {i + 1} is not an object with named fields")
    if not rows:
        raise WorkloadError(f"dataset {path}: no items")
    return rows


def column(rows: list[dict], name: str, where: str) -> list[Any]:
    missing = next((i for i, r in enumerate(rows) if r.get(name) in (None, "")), None)
    if missing is not None:
        known = sorted(rows[missing]) if rows[missing] else []
        raise WorkloadError(f"dataset {where}: item {missing + 1} has no {name!r} "
                            f"(columns: {', '.join(map(str, known)) or 'none'}; set the ladder's *_column)")
    return [r[name] for r in rows]


def local_dataset(ds: Any) -> tuple[Path, dict[str, Any]]:
    path = Path(ds.path).expanduser()
    if not path.exists():
        raise WorkloadSkipped(f"dataset '{ds.path}' does not exist on this machine; "
                              "point the ladder's dataset path at a file or folder that exists here")
    prov = {"path": str(path), "format": ds.format}
    if path.is_file():
        prov["sha256"] = file_sha256(path)
    return path, prov


def hub_dataset(ds: Any, allow_download: bool, columns: tuple[str, ...]) -> tuple[Any, dict[str, Any]]:
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


# ------------------------------------------------------------------------------- labels


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


def is_int_like(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return True
    return isinstance(v, str) and re.fullmatch(r"-?\d+", v.strip()) is not None


def map_labels(values: list[Any], id2label: dict, num_labels: int, where: str) -> tuple[list[int], str]:
    """Map a dataset's labels to the model's ids: names through the model's labels (case and
    separators ignored), integers as indices. Returns (ids, how), ``how`` for provenance."""
    if not all(is_int_like(v) for v in values):
        index = label_index(id2label)
        ids = [index.get(label_key(v)) for v in values]
        if all(i is not None for i in ids):
            return [int(i) for i in ids], "by name (model label2id)"
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
        if len(names) == num_labels and all(label_key(a) == label_key(b) for a, b in zip(names, in_order)):
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


# ----------------------------------------------------------------------------- workload


class HFWorkload(Workload):
    """What the three families share: the model, its device, sync, close, provenance."""

    def __init__(self, name: str, model: nn.Module, params: int, precision: str, device: torch.device,
                 provenance: dict[str, Any]) -> None:
        self._name, self._model, self._params = name, model, params
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


def load_tokenizer(ref, ds, allow_download: bool, trust_remote_code: bool) -> tuple[Any, dict | None]:
    """The model's tokenizer (or the ladder's ``tokenizer``); None only for synthetic data."""
    tok_id = ref.tokenizer or ref.id
    if tok_id is None:
        if not ds.synthetic:
            raise WorkloadError(f"model {ref.name!r} has no tokenizer (give 'tokenizer' or 'id'); "
                                "without one only 'synthetic: true' data works (random token ids)")
        return None, None
    from transformers import AutoTokenizer

    return hub_load(
        "tokenizer", tok_id, ref.revision if tok_id == ref.id else None, AutoTokenizer.from_pretrained,
        allow_download=allow_download, trust_remote_code=trust_remote_code,
        cache_files=("tokenizer_config.json", "tokenizer.json", "config.json"))


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
