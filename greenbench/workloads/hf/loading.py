"""Loading models and tokenizers: precisions as dtypes, the device, transformers models
(pretrained or random from a config), int8 quantisation, placement, the build-time probe and
out-of-memory.

Imported only when a workload is built, so torch and transformers load only then.
"""

from __future__ import annotations

import gc
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from greenbench.measure.zoo import PRECISION_TABLE, HFDataset, HFModel
from greenbench.workloads.base import WorkloadError, WorkloadSkipped, out_of_memory_error, torch_device
from greenbench.workloads.hf.common import Note, one_line, require, version
from greenbench.workloads.hf.hub import hub_load, looks_local, quiet_transformers

OUT_OF_MEMORY = out_of_memory_error()  # torch >= 2.1 (see pyproject)
INIT_SEED = 0  # random weights: the same model on every run and machine
# The zoo's precision table as torch dtypes (int8: the float dtype around the quantised layers on
# a CPU; see compute_dtype for CUDA).
PRECISIONS = {name: getattr(torch, p.dtype) for name, p in PRECISION_TABLE.items()}


# ----------------------------------------------------------------------- precision, device


def compute_dtype(precision: str, device: torch.device) -> torch.dtype:
    """Dtype of activations and unquantised layers: int8 keeps fp32 on the CPU (dynamic
    quantisation) and fp16 on CUDA (bitsandbytes LLM.int8() computes in fp16)."""
    if precision == "int8":
        return torch.float16 if device.type == "cuda" else torch.float32
    return PRECISIONS[precision]


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


def dtype_kwargs(dtype: torch.dtype) -> dict[str, Any]:
    """transformers >= 4.56 names it ``dtype``; older ones ``torch_dtype``."""
    import transformers

    major, minor = (int(x) for x in re.findall(r"\d+", transformers.__version__)[:2])
    return {"dtype": dtype} if (major, minor) >= (4, 56) else {"torch_dtype": dtype}


# ----------------------------------------------------------------------- models, tokenizers


def remote_code_folder(ref_id: str) -> str:
    """Where the code that trust_remote_code runs comes from: the local folder, or the model's
    folder in the Hugging Face cache (its snapshot, once downloaded)."""
    if looks_local(ref_id):
        return str(Path(ref_id).expanduser().resolve())
    try:
        from huggingface_hub import constants

        cache = Path(constants.HF_HUB_CACHE)
    except (ImportError, AttributeError):
        cache = Path("~/.cache/huggingface/hub").expanduser()
    return str(cache / ("models--" + ref_id.replace("/", "--")))


def warn_remote_code(ref: HFModel, trust_remote_code: bool, on_warning: Note = None) -> None:
    """Say, before anything is loaded, that a model's own Python code will run in this process:
    once per model built, through ``on_warning`` (the runner's warning event), else as a Python
    warning (shown on stderr)."""
    if not trust_remote_code:
        return
    names = [n for n in dict.fromkeys([ref.id, ref.tokenizer]) if n]
    where = "; ".join(remote_code_folder(n) if looks_local(n) else f"hub id {n}, files in {remote_code_folder(n)}"
                      for n in names) or "its config"
    text = (f"model {ref.name!r}: trust_remote_code is on, so Python code shipped with the model runs "
            f"in this process ({where}); keep it on only for code you trust")
    if on_warning is not None:
        on_warning(text)
    else:
        warnings.warn(text, RemoteCodeWarning, stacklevel=2)


class RemoteCodeWarning(UserWarning):
    """A model is loaded with trust_remote_code on: its own code runs."""


@dataclass
class Loaded:
    model: nn.Module
    params: int
    provenance: dict[str, Any]
    config: Any = None  # the transformers config (None for timm/torchvision)


def load_transformers_model(auto_name: str, ref: HFModel, precision: str, device: torch.device, *,
                            allow_download: bool, trust_remote_code: bool, on_note: Note = None,
                            config_defaults: dict[str, Any] | None = None) -> Loaded:
    """Load ``ref`` with ``transformers.<auto_name>``: pretrained from a hub id or a folder, or
    random weights from a config; at ``precision`` on ``device``.

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
        assert ref.id is not None  # the zoo's HFModel: pretrained weights come with an id
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


def load_tokenizer(ref: HFModel, ds: HFDataset, allow_download: bool,
                   trust_remote_code: bool) -> tuple[Any, dict | None]:
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


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------- quantisation, placing


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


# --------------------------------------------------------------------- device, probe, memory


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
