"""model_zoo.yaml -> validated ladders.

A ladder is a task, a dataset, models from smallest to largest, batch sizes, precisions and
devices; each combination is an operating point. The shipped ladders are installed with the
package (``greenbench/data/builtin_zoo.yaml``); a user's zoo file adds to them, and replaces a
shipped ladder of the same name. Files are read through ``greenbench.safeload`` (bounded size,
nesting and aliases); every problem becomes a ``ZooError`` naming the file, the ladder and the
key, all of a file's problems at once (one line each), with the key or ladder name meant.
"""

from __future__ import annotations

import difflib
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

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
from greenbench.safeload import InputError, load_yaml, read_text

DEFAULT_LADDER = "mnist1d"
ZOO_ENV = "GREENBENCH_ZOO"
BUILTIN_SOURCE = "built-in"  # the source of the ladders installed with greenbench


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
    # short-answer (exact match of a greedy completion): served ladders only
    format: Literal["classification", "text", "multiple-choice", "short-answer"] = "classification"
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


@dataclass(frozen=True)
class Setting:
    """One value of a ladder's resource axis: a batch size, or a load on a served model."""

    batch_size: int | None = None
    concurrency: int | None = None
    request_rate_per_s: float | None = None

    @property
    def label(self) -> str:
        if self.batch_size is not None:
            return f"b{self.batch_size}"
        rate = [] if self.request_rate_per_s is None else [f"r{self.request_rate_per_s:g}/s"]
        return " ".join(rate + ([] if self.concurrency is None else [f"c{self.concurrency}"]))


class _LadderBase(_Strict):
    """What every ladder has; ``models`` and ``dataset`` follow the workload's own schema."""

    name: str
    description: str = ""
    precisions: tuple[str, ...] = ("fp32",)  # names of PRECISION_TABLE
    devices: tuple[str, ...] = ("auto",)
    trust_remote_code: bool = False
    source: str = ""  # where the ladder was defined (file path or BUILTIN_SOURCE)

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
            words = d.split("+") if "+" in d else [d]
            if len(words) > 1 and any(w in ("auto", "cpu", "cuda") for w in words):
                raise ValueError(f"device {d!r}: a group joins GPUs (cuda:N or GPU UUIDs) with '+'")
            if not all(w in ("auto", "cpu", "cuda") or w.startswith(("cuda:", "GPU-", "MIG-")) for w in words):
                raise ValueError(f"unknown device {d!r} (use auto, cpu, cuda:N, a GPU UUID, or GPUs joined "
                                 "by '+' for a tensor-parallel server)")
        return v

    def model(self, name: str):
        for m in self.models:  # type: ignore[attr-defined]  # each workload's subclass declares models
            if m.name == name:
                return m
        names = [m.name for m in self.models]  # type: ignore[attr-defined]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean {close[0]!r}?; " if close else ""
        raise ZooError(f"ladder {self.name!r} has no model {name!r} ({hint}has: {self.model_names()})")

    def settings(self) -> list[Setting]:
        """The resource axis: every value a point of each model takes."""
        raise NotImplementedError

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
        base = Path(self.source).parent if self.source not in ("", BUILTIN_SOURCE) else None
        if base is not None:
            paths = {key: str(base / ref) for key in ("id", "tokenizer")
                     if isinstance(ref := getattr(model, key, None), str) and ref.startswith(("./", "../"))}
            model = model.model_copy(update=paths) if paths else model
            path = getattr(dataset, "path", None)
            if isinstance(path, str) and not Path(path).is_absolute():
                dataset = dataset.model_copy(update={"path": str(base / path)})
        return {"model": model, "dataset": dataset}


class _Batched(_LadderBase):
    """A ladder run in greenbench's own process: its resource axis is the batch size."""

    batch_sizes: tuple[int, ...] = Field(min_length=1)

    @field_validator("batch_sizes")
    @classmethod
    def _positive(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(b <= 0 for b in v):
            raise ValueError("batch sizes must be positive integers")
        if len(set(v)) != len(v):
            raise ValueError("batch sizes must not repeat")
        return v

    def settings(self) -> list[Setting]:
        return [Setting(batch_size=b) for b in self.batch_sizes]


class EmbeddedLadder(_Batched):
    workload: Literal["embedded"]
    task: Literal["classification"] = "classification"
    dataset: EmbeddedDataset = EmbeddedDataset()
    train: EmbeddedTrain = EmbeddedTrain()
    models: tuple[EmbeddedModel, ...] = Field(min_length=1)

    def builder_kwargs(self, model_name: str) -> dict[str, Any]:
        return super().builder_kwargs(model_name) | {"train": self.train}


class TextLadder(_Batched):
    workload: Literal["hf-text"]
    task: Literal["text-classification"] = "text-classification"
    dataset: HFDataset
    models: tuple[HFModel, ...] = Field(min_length=1)
    max_length: int = Field(default=128, gt=0)  # every batch is padded to this many tokens

    def builder_kwargs(self, model_name: str) -> dict[str, Any]:
        return super().builder_kwargs(model_name) | {
            "max_length": self.max_length, "trust_remote_code": self.trust_remote_code}


class VisionLadder(_Batched):
    workload: Literal["hf-vision"]
    task: Literal["image-classification"] = "image-classification"
    dataset: HFDataset
    models: tuple[HFModel, ...] = Field(min_length=1)
    image_size: int | None = Field(default=None, gt=0)  # default: the processor's / 224

    def builder_kwargs(self, model_name: str) -> dict[str, Any]:
        return super().builder_kwargs(model_name) | {
            "image_size": self.image_size, "trust_remote_code": self.trust_remote_code}


class LMLadder(_Batched):
    workload: Literal["hf-lm"]
    task: Literal["causal-lm"] = "causal-lm"
    dataset: HFDataset
    models: tuple[HFModel, ...] = Field(min_length=1)
    generation: Generation = Generation()

    def builder_kwargs(self, model_name: str) -> dict[str, Any]:
        return super().builder_kwargs(model_name) | {
            "generation": self.generation, "trust_remote_code": self.trust_remote_code}


TemplateValue = str | int | float


class ServerSpec(_Strict):
    """The OpenAI-compatible server of a served ladder: one the user runs (``url``), or a command
    greenbench starts per model and always stops (``launch``; ``{model}``, ``{port}``, ``{host}``,
    ``{dtype}``, ``{revision}`` and the ladder's and model's ``fields`` fill it)."""

    url: str | None = None  # e.g. http://127.0.0.1:8000/v1
    launch: str | None = None  # e.g. "vllm serve {model} --port {port} --max-num-seqs {max_num_seqs}"
    ready_timeout_s: float = Field(default=600.0, gt=0)  # a large model's start takes minutes
    env: dict[str, str] = {}  # added to the launched server's environment

    @model_validator(mode="after")
    def _one_way(self) -> ServerSpec:
        if (self.url is None) == (self.launch is None):
            raise ValueError("give exactly one of 'url' (a running server) or 'launch' (a command template)")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url {self.url!r}: give an http:// or https:// base URL, e.g. http://127.0.0.1:8000/v1")
        return self


class ServedModel(_Strict):
    name: str = Field(min_length=1)
    id: str = Field(min_length=1)  # fills {model}, and what requests ask for: hub id or local folder
    revision: str | None = None  # fills {revision}; recorded with every point
    served_name: str | None = None  # the id the server lists, where not `id` (vLLM --served-model-name)
    fields: dict[str, TemplateValue] = {}  # this model's own template fields (e.g. max_num_seqs: 64)


class ServedGeneration(_Strict):
    """The fixed, recorded request shape of a served ladder."""

    prompt_tokens: int = Field(default=128, gt=0)
    output_tokens: int = Field(default=64, gt=0)
    # min_tokens = max_tokens and ignore_eos (vLLM's and SGLang's extensions): every request streams
    # exactly output_tokens; false for an engine without them: the tokens streamed are counted.
    fixed_length: bool = True
    # A local file of conversations (JSONL or JSON: {"prompt", "output_tokens"}, ShareGPT's
    # "conversations" or OpenAI-style "messages"): each request's prompt and output length are drawn
    # from it, seeded, instead of the fixed shape above.
    conversations: str | None = None


class ServedSlo(_Strict):
    """Service-level objectives for goodput: requests/s that meet every one given."""

    ttft_ms: float | None = Field(default=None, gt=0)
    tpot_ms: float | None = Field(default=None, gt=0)


SERVED_FORMATS = ("multiple-choice", "text", "short-answer")


class ServedLadder(_LadderBase):
    """Models served by an OpenAI-compatible engine, driven by a load: the resource axis is the
    closed-loop concurrency and/or the open-loop request rate (both: each rate at each cap)."""

    workload: Literal["served-lm"]
    task: Literal["causal-lm"] = "causal-lm"
    server: ServerSpec
    models: tuple[ServedModel, ...] = Field(min_length=1)
    concurrency: tuple[int, ...] = ()
    request_rate_per_s: tuple[float, ...] = ()
    generation: ServedGeneration = ServedGeneration()
    dataset: HFDataset | None = None  # quality through the endpoint (multiple-choice, text, short answer)
    slo: ServedSlo = ServedSlo()
    fields: dict[str, TemplateValue] = {}  # template fields for every model (a model's own win)

    @field_validator("concurrency")
    @classmethod
    def _levels(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(c < 1 for c in v):
            raise ValueError("concurrency levels are 1 or more requests in flight")
        if len(set(v)) != len(v):
            raise ValueError("concurrency levels must not repeat")
        return v

    @field_validator("request_rate_per_s")
    @classmethod
    def _rates(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(not r > 0 for r in v):
            raise ValueError("request rates are above 0 per second")
        if len(set(v)) != len(v):
            raise ValueError("request rates must not repeat")
        return v

    @model_validator(mode="after")
    def _a_load(self) -> ServedLadder:
        if not self.concurrency and not self.request_rate_per_s:
            raise ValueError("a served ladder needs 'concurrency' levels, 'request_rate_per_s' rates, or both")
        if self.dataset is not None and self.dataset.format not in SERVED_FORMATS:
            raise ValueError(f"a served ladder's dataset is scored through the server: format "
                             f"{' or '.join(SERVED_FORMATS)}, not {self.dataset.format!r}")
        if self.dataset is not None and self.dataset.synthetic:
            raise ValueError("a served ladder's dataset is for quality: a local 'path' or a hub 'id', not synthetic")
        return self

    def settings(self) -> list[Setting]:
        if not self.request_rate_per_s:
            return [Setting(concurrency=c) for c in self.concurrency]
        caps: tuple[int | None, ...] = self.concurrency or (None,)
        return [Setting(concurrency=c, request_rate_per_s=r) for r in self.request_rate_per_s for c in caps]

    def builder_kwargs(self, model_name: str) -> dict[str, Any]:
        model = self.model(model_name)
        base = Path(self.source).parent if self.source not in ("", BUILTIN_SOURCE) else None
        if base is not None and model.id.startswith(("./", "../")):  # a local folder beside the zoo
            model = model.model_copy(update={"id": str(base / model.id)})
        dataset = self.dataset
        if base is not None and dataset is not None and dataset.path and not Path(dataset.path).is_absolute():
            dataset = dataset.model_copy(update={"path": str(base / dataset.path)})
        generation = self.generation
        conv = generation.conversations
        if base is not None and conv is not None and not Path(conv).is_absolute():
            generation = generation.model_copy(update={"conversations": str(base / conv)})
        return {"model": model, "dataset": dataset, "server": self.server, "generation": generation,
                "slo": self.slo, "fields": {**self.fields, **model.fields}}


Ladder = Annotated[EmbeddedLadder | TextLadder | VisionLadder | LMLadder | ServedLadder,
                   Field(discriminator="workload")]
_LADDER = TypeAdapter(Ladder)
WORKLOADS = ("embedded", "hf-text", "hf-vision", "hf-lm", "served-lm")


MAX_ZOO_BYTES = 4 * 2**20  # a zoo of hundreds of ladders is ~100 KiB; anything near this is the wrong file
_TOP_KEYS = ("version", "ladders")
_LADDER_CLASSES: dict[str, type[_LadderBase]] = {
    "embedded": EmbeddedLadder, "hf-text": TextLadder, "hf-vision": VisionLadder, "hf-lm": LMLadder,
    "served-lm": ServedLadder}
_INTERNAL_KEYS = {"name", "source"}  # set by greenbench from the ladder's key and the file, not written


def _did_you_mean(word: object, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _model_at(cls: type[BaseModel], parts: Sequence[object]) -> type[BaseModel] | None:
    """The pydantic model class found at ``parts`` below ``cls`` (list indices skipped), or None."""
    cur: Any = cls
    for part in parts:
        if isinstance(part, int):
            continue  # an item of a tuple: its type was taken with the field's
        if not (isinstance(cur, type) and issubclass(cur, BaseModel)) or part not in cur.model_fields:
            return None
        cur = _inner_model(cur.model_fields[str(part)].annotation)
    return cur if isinstance(cur, type) and issubclass(cur, BaseModel) else None


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    """The model class in a field's type (``X``, ``X | None``, ``tuple[X, ...]``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _error_lines(source: str, ladder: str, cls: type[_LadderBase], err: ValidationError) -> list[str]:
    """One line per problem pydantic found in a ladder, each naming the file, ladder and key."""
    lines = []
    errors = err.errors()
    for e in errors:
        parts = list(e["loc"])
        n = len(e["loc"])
        if e["type"] == "too_short" and any(len(o["loc"]) > n and o["loc"][:n] == e["loc"] for o in errors):
            continue  # "at least 1 item" only because its items failed, which are said already
        if parts and parts[0] in WORKLOADS:  # the union's tag is not a key the user wrote
            parts = parts[1:]
        if e["type"] == "extra_forbidden":
            key, parent = parts[-1], parts[:-1]
            model = _model_at(cls, parent)
            allowed = [f for f in (model.model_fields if model else ()) if not (model is cls and f in _INTERNAL_KEYS)]
            where = ".".join(map(str, parent))
            problem = f"unknown key {key!r}{_did_you_mean(key, allowed)}"
            lines.append(f"{source}: ladder {ladder!r}: {where + ': ' if where else ''}{problem}")
            continue
        loc = ".".join(str(p) for p in parts) or "(ladder)"
        if e["type"] == "missing":
            problem = "missing (required)"
        else:
            problem = e["msg"].removeprefix("Value error, ")
            given = e.get("input")
            if isinstance(given, (str, int, float)) and not isinstance(given, bool) and len(repr(given)) <= 40:
                problem += f" (got {given!r})"
        lines.append(f"{source}: ladder {ladder!r}: {loc}: {problem}")
    return lines


def check_ladder_name(name: object) -> str | None:
    """Why ``name`` cannot name a ladder, or None. Profiles are named after ladders, so a name is a
    safe file stem: a string, no path separators, no '..', no leading '.', no control characters."""
    if not isinstance(name, str):
        return f"the name {name!r} is not text; quote it"
    if not name.strip():
        return "the name is empty"
    if "/" in name or "\\" in name or ".." in name or name.startswith(".") or any(ord(c) < 32 for c in name):
        return "a ladder name is a file stem: no '/', '\\', '..', leading '.' or control characters"
    if len(name) > 100:
        return "a ladder name is a file stem of at most 100 characters"
    return None


def _duplicate_models(source: str, ladder: str, body: dict[str, Any]) -> list[str]:
    """The model names a ladder gives twice, from what was written: pydantic checks them only once
    every model is valid, so a duplicate would show only after the other errors were fixed."""
    models = body.get("models")
    if not isinstance(models, (list, tuple)):
        return []
    counts = Counter(str(m["name"]) for m in models if isinstance(m, dict) and isinstance(m.get("name"), str))
    return [f"{source}: ladder {ladder!r}: models: the name {n!r} is given {k} times; model names "
            "must be unique within a ladder" for n, k in sorted(counts.items()) if k > 1]


def _common_key_lines(source: str, ladder: str, body: dict[str, Any]) -> list[str]:
    """For a ladder whose workload is missing or unknown (and like none): the keys no workload
    has, and the keys every workload shares (precisions, devices), checked all the same."""
    known = set().union(*(c.model_fields for c in _LADDER_CLASSES.values())) - _INTERNAL_KEYS
    lines = [f"{source}: ladder {ladder!r}: unknown key {k!r}{_did_you_mean(k, sorted(known))}"
             for k in body if isinstance(k, str) and k not in known]
    common = {k: v for k, v in body.items() if k in _LadderBase.model_fields and k not in _INTERNAL_KEYS}
    try:
        _LadderBase.model_validate({**common, "name": ladder, "source": source})
    except ValidationError as e:
        lines += _error_lines(source, ladder, _LadderBase, e)
    return lines


def _parse_ladder(name: object, body: object, source: str) -> tuple[Ladder | None, list[str]]:
    """One ladder of a zoo file, or the lines saying everything wrong with it: every key at once.
    With a workload misspelt, the other keys are checked as the closest workload's (or, like
    none, those every workload shares), so that fixing the workload shows nothing new."""
    bad_name = check_ladder_name(name)
    if bad_name:
        return None, [f"{source}: ladder {name!r}: {bad_name}"]
    assert isinstance(name, str)
    if not isinstance(body, dict):
        return None, [f"{source}: ladder {name!r}: expected a mapping of keys"]
    duplicates = _duplicate_models(source, name, body)
    workload = body.get("workload")
    if workload not in WORKLOADS:
        given = "missing" if workload is None else f"{workload!r} is not one of {', '.join(WORKLOADS)}"
        close = difflib.get_close_matches(workload, WORKLOADS, n=1) if isinstance(workload, str) else []
        if close:
            head = f"{source}: ladder {name!r}: workload: {given} (did you mean {close[0]!r}?); the other keys " \
                   f"are checked as {close[0]}'s"
            _, rest = _validate(name, {**body, "workload": close[0]}, source)
        else:
            head = f"{source}: ladder {name!r}: workload: {given}"
            rest = _common_key_lines(source, name, body)
        return None, [head, *_without_duplicates(rest, duplicates), *duplicates]
    ladder, lines = _validate(name, body, source)
    return ladder, _without_duplicates(lines, duplicates) + duplicates


def _validate(name: str, body: dict[str, Any], source: str) -> tuple[Ladder | None, list[str]]:
    try:
        return _LADDER.validate_python({**body, "name": name, "source": source}), []
    except ValidationError as e:
        return None, _error_lines(source, name, _LADDER_CLASSES[body["workload"]], e)
    except TypeError as e:  # e.g. a key that is not a string
        return None, [f"{source}: ladder {name!r}: {e}"]


def _without_duplicates(lines: list[str], duplicates: list[str]) -> list[str]:
    """pydantic's own duplicate line, where the raw check said it (and said which name)."""
    return [line for line in lines if not (duplicates and "model names must be unique" in line)]


def parse_zoo(text: str, source: str) -> dict[str, Ladder]:
    """Parse a zoo document (YAML text) into ladders; ``source`` names it in errors.

    Every problem of every ladder is found before anything is raised: one ZooError whose message
    has a line per problem (a single line when there is one), each naming file, ladder and key."""
    try:
        doc = load_yaml(text, source)
    except InputError as e:
        raise ZooError(str(e)) from None
    if not isinstance(doc, dict) or "ladders" not in doc:
        raise ZooError(f"{source}: expected a mapping with a 'ladders' key (see `greenbench zoo` and the "
                       "example model_zoo.yaml)")
    problems: list[str] = []
    bad: set[str] = set()  # the ladders with a problem
    for key in doc:
        if key not in _TOP_KEYS:
            problems.append(f"{source}: unknown top-level key {key!r}{_did_you_mean(key, _TOP_KEYS)} "
                            f"(allowed: {', '.join(_TOP_KEYS)})")
    if doc.get("version", 1) != 1:
        problems.append(f"{source}: version {doc.get('version')!r} is not supported (expected 1)")
    body_of = doc["ladders"] if doc["ladders"] is not None else {}  # `ladders:` with every ladder commented out
    if not isinstance(body_of, dict):
        problems.append(f"{source}: 'ladders' must map ladder names to ladders")
        body_of = {}
    ladders: dict[str, Ladder] = {}
    for name, body in body_of.items():
        ladder, found = _parse_ladder(name, body, source)
        if found:
            problems.extend(found)
            bad.add(str(name))
        elif ladder is not None:
            ladders[name] = ladder
    if len(problems) == 1:
        raise ZooError(problems[0])
    if problems:
        head = f"{source}: {len(problems)} problems" + (f" in {len(bad)} ladder(s)" if bad else "") + ":"
        raise ZooError("\n".join([head, *(f"  {line}" for line in problems)]))
    return ladders


def builtin_ladders() -> dict[str, Ladder]:
    """The ladders installed with greenbench (greenbench/data/builtin_zoo.yaml), from any folder."""
    text = resources.files("greenbench.data").joinpath("builtin_zoo.yaml").read_text("utf-8")
    return parse_zoo(text, BUILTIN_SOURCE)


def default_zoo_path() -> Path | None:
    """``$GREENBENCH_ZOO``, else ./model_zoo.yaml when present, else none (built-ins only)."""
    env = os.environ.get(ZOO_ENV)
    if env:
        return Path(env)
    here = Path("model_zoo.yaml")
    return here if here.is_file() else None


def _definition(ladder: _LadderBase) -> dict[str, Any]:
    return ladder.model_dump(mode="json", exclude={"source"})


def load_zoo(path: Path | None = None, on_note: Callable[[str], None] | None = None) -> dict[str, Ladder]:
    """The built-in ladders plus those of ``path`` (or the default zoo file).

    A user's ladder with a built-in ladder's name replaces it: a user who copies a shipped ladder
    into their zoo to change it means theirs (as a user's config overrides a default one); when the
    two differ, ``on_note`` is told, so that the replacement is never silent."""
    ladders: dict[str, Ladder] = dict(builtin_ladders())
    path = path if path is not None else default_zoo_path()
    if path is None:
        return ladders
    try:
        text = read_text(path, what="model zoo", max_bytes=MAX_ZOO_BYTES)
    except InputError as e:
        raise ZooError(str(e)) from None
    for name, ladder in parse_zoo(text, str(path)).items():
        shipped = ladders.get(name)
        if shipped is not None and on_note is not None and _definition(shipped) != _definition(ladder):
            on_note(f"{path}: ladder {name!r} replaces the built-in ladder of that name")
        ladders[name] = ladder
    return ladders


def unknown_ladder(name: str, known: Iterable[str]) -> ZooError:
    """The error for a ladder name that is not in the zoo, with the closest known one."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}"
    return ZooError(f"unknown ladder {name!r} ({hint}; `greenbench zoo` lists them)")


def get_ladder(name: str | None, path: Path | None = None,
               on_note: Callable[[str], None] | None = None) -> Ladder:
    ladders = load_zoo(path, on_note)
    name = name or DEFAULT_LADDER
    if name not in ladders:
        raise unknown_ladder(name, ladders)
    return ladders[name]


def model_dict(model: BaseModel) -> dict[str, Any]:
    """The model spec as a plain dict: a record's ``model_spec`` and what ``greenbench zoo`` lists
    (workloads take the validated model itself, from ``builder_kwargs``)."""
    return model.model_dump(exclude_none=True)
