"""model_zoo.yaml -> validated ladders.

A ladder is a task, a dataset, models from smallest to largest, batch sizes, precisions and
devices; each combination is an operating point. YAML is loaded with ``yaml.safe_load``; every
problem becomes a ``ZooError`` whose message is one line naming the file, the ladder and the key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from greenbench.errors import GreenbenchError, OptionError

DEFAULT_LADDER = "mnist1d"
ZOO_ENV = "GREENBENCH_ZOO"


@dataclass(frozen=True)
class Precision:
    """One precision a ladder may run at: its name (in ladders, ``--precision`` and records), the
    torch dtype its weights and activations compute in, and what it means."""

    name: str
    dtype: str  # torch dtype name (int8: the float dtype around the quantised layers on a CPU)
    quantised: bool  # int8 weights: needs a quantisation backend, so hub models only
    meaning: str


# The one precision table; workloads map these names to torch dtypes (``dtype``).
PRECISION_TABLE: dict[str, Precision] = {p.name: p for p in (
    Precision("fp32", "float32", False, "32-bit float weights and activations (the reference)"),
    Precision("bf16", "bfloat16", False, "bfloat16 weights and activations"),
    Precision("fp16", "float16", False, "float16 weights and activations"),
    Precision("int8", "float32", True, "8-bit integer Linear weights (dynamic quantisation on a CPU, "
                                       "bitsandbytes LLM.int8() on a GPU); Hugging Face ladders only"),
)}
PRECISIONS = tuple(PRECISION_TABLE)


def check_precision(name: str, option: str | None = "--precision") -> str:
    """``name`` if it is a precision of the table; OptionError naming ``option`` otherwise."""
    if name not in PRECISION_TABLE:
        what = option or "precision"
        raise OptionError(f"{what} {name!r}: choose one of {', '.join(PRECISIONS)}", option=option)
    return name


class ZooError(GreenbenchError):
    """A model zoo file or ladder name is wrong; the message is one line for the user."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmbeddedModel(_Strict):
    name: str = Field(min_length=1)
    arch: Literal["linear", "mlp", "cnn"]
    width: int | None = Field(default=None, gt=0)
    depth: int | None = Field(default=None, gt=0)


class EmbeddedDataset(_Strict):
    name: Literal["mnist1d"] = "mnist1d"
    num_samples: int = Field(default=10000, ge=100)
    test_share: float = Field(default=0.2, gt=0, lt=1)
    seed: int = 42


class EmbeddedTrain(_Strict):
    steps: int = Field(default=3000, gt=0)
    batch_size: int = Field(default=128, gt=0)
    lr: float = Field(default=3e-3, gt=0)
    seed: int = 0


class HFModel(_Strict):
    """A Hugging Face (or timm/torchvision) model: a hub id or a local folder, or a config."""

    name: str = Field(min_length=1)
    id: str | None = None  # hub id ("bert-base-uncased") or local path; None with a `config`
    revision: str | None = None  # pin a hub commit or tag; recorded with every point
    tokenizer: str | None = None  # tokenizer / image processor id or path (default: id)
    source: Literal["transformers", "timm", "torchvision"] = "transformers"
    weights: Literal["pretrained", "random"] = "pretrained"  # random: built from the config
    config: dict[str, Any] | None = None  # transformers config keys (with model_type) for random weights

    @model_validator(mode="after")
    def _id_or_config(self) -> HFModel:
        if self.id is None and not (self.weights == "random" and self.config):
            raise ValueError("a model needs an 'id' (hub id or local path), or weights: random with a 'config'")
        if self.config is not None and self.source == "transformers" and self.id is None \
                and "model_type" not in self.config:
            raise ValueError("a 'config' without an 'id' needs its 'model_type' (e.g. gpt2)")
        return self


class HFDataset(_Strict):
    """Evaluation data: a local file or folder, a `datasets` hub id, or synthetic items."""

    path: str | None = None  # CSV/JSONL/JSON/TXT file, or an image folder (one sub-folder per class)
    id: str | None = None  # `datasets` hub id, e.g. glue (with config sst2)
    config: str | None = None
    split: str = "validation"
    revision: str | None = None
    synthetic: bool = False  # seeded random inputs: for speed and energy only, accuracy is chance
    size: int | None = Field(default=None, gt=0)  # synthetic items
    seed: int = 0
    limit: int | None = Field(default=None, gt=0)  # evaluate on the first N items only
    format: Literal["classification", "text", "multiple-choice"] = "classification"
    text_column: str = "text"
    label_column: str = "label"
    image_column: str = "image"
    question_column: str = "question"
    choices_column: str = "choices"
    answer_column: str = "answer"

    @model_validator(mode="after")
    def _one_source(self) -> HFDataset:
        given = [k for k in ("path", "id") if getattr(self, k)] + (["synthetic"] if self.synthetic else [])
        if len(given) != 1:
            raise ValueError("give exactly one of 'path' (local), 'id' (datasets hub) or 'synthetic: true'")
        return self


class Generation(_Strict):
    """Fixed, recorded request shape for causal LMs: prompt length and greedy output length."""

    prompt_tokens: int = Field(default=128, gt=0)
    output_tokens: int = Field(default=64, ge=2)  # >= 2: decode is (full - prefill) / (output - 1)


class _LadderBase(_Strict):
    """What every ladder has; ``models`` and ``dataset`` follow the workload's own schema."""

    name: str
    description: str = ""
    batch_sizes: tuple[int, ...] = Field(min_length=1)
    precisions: tuple[str, ...] = ("fp32",)  # names of PRECISION_TABLE
    devices: tuple[str, ...] = ("auto",)
    trust_remote_code: bool = False
    source: str = ""  # where the ladder was defined (file path or "built-in")

    @field_validator("batch_sizes")
    @classmethod
    def _positive(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(b <= 0 for b in v):
            raise ValueError("batch sizes must be positive integers")
        if len(set(v)) != len(v):
            raise ValueError("batch sizes must not repeat")
        return v

    @field_validator("precisions")
    @classmethod
    def _precisions(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for p in v:
            check_precision(p, option=None)
        return v

    @field_validator("models", check_fields=False)
    @classmethod
    def _unique_names(cls, v: tuple) -> tuple:
        names = [m.name for m in v]
        if len(set(names)) != len(names):
            raise ValueError("model names must be unique within a ladder")
        return v

    @field_validator("devices")
    @classmethod
    def _devices(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for d in v:
            if not (d in ("auto", "cpu", "cuda") or d.startswith(("cuda:", "GPU-", "MIG-"))):
                raise ValueError(f"unknown device {d!r} (use auto, cpu, cuda:N or a GPU UUID)")
        return v

    def model(self, name: str):
        for m in self.models:  # type: ignore[attr-defined]  # each workload's subclass declares models
            if m.name == name:
                return m
        raise ZooError(f"ladder {self.name!r} has no model {name!r} (has: {self.model_names()})")

    def model_names(self) -> str:
        return ", ".join(m.name for m in self.models)  # type: ignore[attr-defined]  # declared by the subclasses

    def builder_kwargs(self, model_name: str) -> dict[str, Any]:
        """Keyword arguments for the workload builder, beside precision, device and cache: this
        ladder's validated entries themselves (``model``, ``dataset`` and the workload's own, e.g.
        ``train`` or ``generation``), so every default and check lives in this schema alone.

        Relative local paths (a dataset ``path``; a model ``id`` or ``tokenizer`` written as
        ``./x`` or ``../x``) are taken relative to the zoo file, not to wherever greenbench runs.
        """
        model = self.model(model_name)
        dataset = self.dataset  # type: ignore[attr-defined]
        base = Path(self.source).parent if self.source not in ("", "built-in") else None
        if base is not None:
            paths = {key: str(base / ref) for key in ("id", "tokenizer")
                     if isinstance(ref := getattr(model, key, None), str) and ref.startswith(("./", "../"))}
            model = model.model_copy(update=paths) if paths else model
            path = getattr(dataset, "path", None)
            if isinstance(path, str) and not Path(path).is_absolute():
                dataset = dataset.model_copy(update={"path": str(base / path)})
        return {"model": model, "dataset": dataset}


class EmbeddedLadder(_LadderBase):
    workload: Literal["embedded"]
    task: Literal["classification"] = "classification"
    dataset: EmbeddedDataset = EmbeddedDataset()
    train: EmbeddedTrain = EmbeddedTrain()
    models: tuple[EmbeddedModel, ...] = Field(min_length=1)

    def builder_kwargs(self, model_name: str) -> dict[str, Any]:
        return super().builder_kwargs(model_name) | {"train": self.train}


class TextLadder(_LadderBase):
    workload: Literal["hf-text"]
    task: Literal["text-classification"] = "text-classification"
    dataset: HFDataset
    models: tuple[HFModel, ...] = Field(min_length=1)
    max_length: int = Field(default=128, gt=0)  # every batch is padded to this many tokens

    def builder_kwargs(self, model_name: str) -> dict[str, Any]:
        return super().builder_kwargs(model_name) | {
            "max_length": self.max_length, "trust_remote_code": self.trust_remote_code}


class VisionLadder(_LadderBase):
    workload: Literal["hf-vision"]
    task: Literal["image-classification"] = "image-classification"
    dataset: HFDataset
    models: tuple[HFModel, ...] = Field(min_length=1)
    image_size: int | None = Field(default=None, gt=0)  # default: the processor's / 224

    def builder_kwargs(self, model_name: str) -> dict[str, Any]:
        return super().builder_kwargs(model_name) | {
            "image_size": self.image_size, "trust_remote_code": self.trust_remote_code}


class LMLadder(_LadderBase):
    workload: Literal["hf-lm"]
    task: Literal["causal-lm"] = "causal-lm"
    dataset: HFDataset
    models: tuple[HFModel, ...] = Field(min_length=1)
    generation: Generation = Generation()

    def builder_kwargs(self, model_name: str) -> dict[str, Any]:
        return super().builder_kwargs(model_name) | {
            "generation": self.generation, "trust_remote_code": self.trust_remote_code}


Ladder = Annotated[EmbeddedLadder | TextLadder | VisionLadder | LMLadder, Field(discriminator="workload")]
_LADDER = TypeAdapter(Ladder)
WORKLOADS = ("embedded", "hf-text", "hf-vision", "hf-lm")


def _format_error(source: str, ladder: str, err: ValidationError) -> str:
    first = err.errors()[0]
    parts = list(first["loc"])
    if parts and parts[0] in WORKLOADS:  # the union's tag is not a key the user wrote
        parts = parts[1:]
    loc = ".".join(str(p) for p in parts) or "(ladder)"
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{source}: ladder {ladder!r}: {loc}: {first['msg']}{more}"


def parse_zoo(text: str, source: str) -> dict[str, Ladder]:
    """Parse a zoo document (YAML text) into ladders; ``source`` names it in errors."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or "not valid YAML"
        raise ZooError(f"{source}: not valid YAML{where}: {problem}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("ladders"), dict):
        raise ZooError(f"{source}: expected a mapping with a 'ladders' key")
    unknown = set(doc) - {"version", "ladders"}
    if unknown:
        raise ZooError(f"{source}: unknown top-level key {sorted(unknown)[0]!r} (allowed: version, ladders)")
    if doc.get("version", 1) != 1:
        raise ZooError(f"{source}: version {doc.get('version')!r} is not supported (expected 1)")
    ladders: dict[str, Ladder] = {}
    for name, body in doc["ladders"].items():
        if not isinstance(body, dict):
            raise ZooError(f"{source}: ladder {name!r}: expected a mapping of keys")
        try:
            if body.get("workload") not in WORKLOADS:
                raise ZooError(f"{source}: ladder {name!r}: workload: {body.get('workload')!r} is not "
                               f"one of {', '.join(WORKLOADS)}")
            ladders[str(name)] = _LADDER.validate_python({**body, "name": str(name), "source": source})
        except ValidationError as e:
            raise ZooError(_format_error(source, str(name), e)) from None
        except TypeError as e:  # e.g. a key that is not a string
            raise ZooError(f"{source}: ladder {name!r}: {e}") from None
    return ladders


def builtin_ladders() -> dict[str, Ladder]:
    text = resources.files("greenbench.data").joinpath("builtin_zoo.yaml").read_text("utf-8")
    return parse_zoo(text, "built-in")


def default_zoo_path() -> Path | None:
    """``$GREENBENCH_ZOO``, else ./model_zoo.yaml when present, else none (built-ins only)."""
    env = os.environ.get(ZOO_ENV)
    if env:
        return Path(env)
    here = Path("model_zoo.yaml")
    return here if here.is_file() else None


def load_zoo(path: Path | None = None) -> dict[str, Ladder]:
    """Built-in ladders plus those of ``path`` (or the default zoo file)."""
    ladders = builtin_ladders()
    path = path if path is not None else default_zoo_path()
    if path is None:
        return ladders
    try:
        text = Path(path).read_text("utf-8")
    except OSError as e:
        raise ZooError(f"{path}: cannot read the model zoo: {e.strerror or e}") from None
    for name, ladder in parse_zoo(text, str(path)).items():
        if name in ladders:
            raise ZooError(f"{path}: ladder {name!r} is built in; give yours another name")
        ladders[name] = ladder
    return ladders


def get_ladder(name: str | None, path: Path | None = None) -> Ladder:
    ladders = load_zoo(path)
    name = name or DEFAULT_LADDER
    if name not in ladders:
        raise ZooError(f"unknown ladder {name!r} (known: {', '.join(sorted(ladders))})")
    return ladders[name]


def model_dict(model: BaseModel) -> dict[str, Any]:
    """The model spec as a plain dict: a record's ``model_spec`` and what ``greenbench zoo`` lists
    (workloads take the validated model itself, from ``builder_kwargs``)."""
    return model.model_dump(exclude_none=True)
