"""The hf-text workload: a Hugging Face sequence classifier scored by accuracy on a labelled set.

Every input is padded to ``max_length`` tokens, so all batches of a point have the same shape;
the evaluation set is tokenised once at build time, and the timed batch is staged on the device
in advance, so a timed step is the model's forward pass and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from greenbench.measure.zoo import HFDataset, HFModel
from greenbench.workloads.base import Score, WorkloadError
from greenbench.workloads.hf.base import HFWorkload, batch_size_arg, count_top1, logits_of, repeat_to
from greenbench.workloads.hf.common import Note
from greenbench.workloads.hf.data import class_names, column, hub_dataset, local_dataset, read_table
from greenbench.workloads.hf.hub import check_available, quiet_transformers
from greenbench.workloads.hf.labels import labels_for_random, map_class_labels, map_labels
from greenbench.workloads.hf.loading import (
    Loaded,
    check_precision,
    load_tokenizer,
    load_transformers_model,
    probe,
    resolve_device,
    warn_remote_code,
)

SYNTHETIC_SIZE = 256  # synthetic items when the dataset gives no size


class TextWorkload(HFWorkload):
    def __init__(self, name: str, loaded: Loaded, inputs: dict[str, torch.Tensor], labels: torch.Tensor,
                 precision: str, device: torch.device, provenance: dict[str, Any]) -> None:
        super().__init__(name, loaded.model, loaded.params, precision, device, provenance)
        self._inputs: dict[str, torch.Tensor] | None = inputs  # on the host: only batches go to the device
        self._labels: torch.Tensor | None = labels
        probe(lambda: self._live()(**self._to_device(0, 2)), precision, device, name)

    def _to_device(self, start: int, stop: int) -> dict[str, torch.Tensor]:
        assert self._inputs is not None
        return {k: v[start:stop].to(self._device) for k, v in self._inputs.items()}

    def make_step(self, batch_size: int) -> Callable[[], Any]:
        model = self._live()
        b = batch_size_arg(batch_size)
        assert self._inputs is not None
        staged = {k: repeat_to(v, b).to(self._device) for k, v in self._inputs.items()}

        @torch.inference_mode()
        def step() -> Any:
            return model(**staged)  # forward only: no sync, no host copy

        return step

    def evaluate(self, batch_size: int) -> Score:
        model = self._live()
        b = batch_size_arg(batch_size)
        assert self._labels is not None
        correct = count_top1(lambda i, j: logits_of(model(**self._to_device(i, j))),
                                self._labels, b, self._device)
        return Score(correct=correct, total=len(self._labels))

    def _drop(self) -> None:
        self._inputs = self._labels = None


def _texts_and_labels(ds: HFDataset, allow_download: bool, on_note: Note
                      ) -> tuple[list[str], list[Any], list[str] | None, dict[str, Any], str]:
    """(texts, raw labels, ClassLabel names or None, provenance, where) of a local file or hub split."""
    if ds.path is not None:
        path, prov = local_dataset(ds)
        if path.is_dir():
            raise WorkloadError(f"dataset {path}: hf-text reads a CSV, TSV, JSONL or JSON file, not a folder")
        rows = read_table(path)
        if ds.limit is not None:
            rows = rows[:ds.limit]
        where = str(path)
        texts = column(rows, ds.text_column, where)
        labels = column(rows, ds.label_column, where)
        return [str(t) for t in texts], labels, None, prov, where
    data, prov = hub_dataset(ds, allow_download, (ds.text_column, ds.label_column))
    where = f"{ds.id} {ds.split}"
    return [str(t) for t in data[ds.text_column]], list(data[ds.label_column]), \
        class_names(data, ds.label_column), prov, where


def build_hf_text(
    model: HFModel,
    dataset: HFDataset,
    precision: str,
    device: str,
    cache_dir: Path,
    on_note: Note = None,
    *,
    max_length: int,
    trust_remote_code: bool,
    allow_download: bool = False,
    on_warning: Note = None,
) -> TextWorkload:
    """Build an AutoModelForSequenceClassification with its tokenizer, at ``precision`` on
    ``device``, scored on the ladder's labelled set (or synthetic token ids).

    ``model``, ``dataset``, ``max_length`` and ``trust_remote_code`` are the ladder's, as the zoo
    validated them (``TextLadder.builder_kwargs``): their defaults live there, not here."""
    ref, ds = model, dataset
    dev = resolve_device(device)
    check_precision(precision, dev)
    if ref.source != "transformers":
        raise WorkloadError(f"model {ref.name!r}: hf-text loads transformers models, not source {ref.source!r}")
    if ds.format != "classification":
        raise WorkloadError(f"hf-text needs dataset format 'classification', not {ds.format!r}")
    if max_length < 2:  # the zoo takes any positive length; a classifier needs room for its specials
        raise WorkloadError(f"max_length must be an integer of at least 2, got {max_length!r}")
    check_available("model", ref.id, ref.revision, allow_download)
    warn_remote_code(ref, trust_remote_code, on_warning)

    tokenizer, tok_prov = load_tokenizer(ref, ds, allow_download, trust_remote_code)

    texts: list[str] = []
    raw: list[Any] = []
    names: list[str] | None = None
    where = "synthetic"
    if ds.synthetic:
        data_prov: dict[str, Any] = {"synthetic": True, "seed": ds.seed,
                                     "note": "random token ids and labels: accuracy is chance"}
    else:
        texts, raw, names, data_prov, where = _texts_and_labels(ds, allow_download, on_note)

    defaults: dict[str, Any] = {}
    if ref.weights == "random":
        cfg = ref.config or {}
        if not ds.synthetic and not {"num_labels", "id2label"} & set(cfg):
            defaults.update(labels_for_random([names[i] for i in raw] if names else raw))
        if tokenizer is not None and "vocab_size" not in cfg:
            defaults["vocab_size"] = len(tokenizer)
    loaded = load_transformers_model("AutoModelForSequenceClassification", ref, precision, dev,
                                        allow_download=allow_download, trust_remote_code=trust_remote_code,
                                        on_note=on_note, config_defaults=defaults)
    config = loaded.config
    max_pos = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if max_pos is not None and max_length > max_pos:
        raise WorkloadError(f"max_length {max_length} exceeds model {ref.name!r}'s {max_pos} positions")

    if ds.synthetic:
        n = ds.size or SYNTHETIC_SIZE
        gen = torch.Generator().manual_seed(ds.seed)
        vocab = getattr(config, "vocab_size", None) or (len(tokenizer) if tokenizer is not None else None)
        if not vocab:
            raise WorkloadError(f"model {ref.name!r}: no vocab_size to draw synthetic token ids from")
        inputs = {"input_ids": torch.randint(0, vocab, (n, max_length), generator=gen),
                  "attention_mask": torch.ones(n, max_length, dtype=torch.long)}
        labels = torch.randint(0, config.num_labels, (n,), generator=gen)
        data_prov.update(items=n, label_mapping="random")
    else:
        if names is not None:
            ids, how = map_class_labels([int(v) for v in raw], names, config.id2label, config.num_labels,
                                           where, on_note)
        else:
            ids, how = map_labels(raw, config.id2label, config.num_labels, where)
        if tokenizer.pad_token is None:  # GPT-style tokenizers: pad with EOS, masked out anyway
            if tokenizer.eos_token is None:
                raise WorkloadError(f"tokenizer of {ref.name!r} has neither a pad nor an eos token to pad with")
            tokenizer.pad_token = tokenizer.eos_token
            if on_note:
                on_note(f"{ref.name}: tokenizer has no pad token; padding with its eos token")
        if getattr(config, "pad_token_id", None) is None:  # classifiers find the last real token by it
            config.pad_token_id = tokenizer.pad_token_id
        with quiet_transformers():  # over-long texts are counted and noted below, not logged
            lengths = [len(x) for x in tokenizer(texts, truncation=False)["input_ids"]]
            enc = tokenizer(texts, padding="max_length", truncation=True, max_length=max_length,
                            return_tensors="pt")
        wanted = set(tokenizer.model_input_names) | {"input_ids", "attention_mask"}
        inputs = {k: v for k, v in enc.items() if k in wanted}
        labels = torch.tensor(ids, dtype=torch.long)
        truncated = sum(n > max_length for n in lengths)
        data_prov.update(items=len(texts), label_mapping=how, text_column=ds.text_column,
                         label_column=ds.label_column, limit=ds.limit, truncated_items=truncated)
        if truncated and on_note:
            on_note(f"{ref.name}: {truncated} of {len(texts)} texts are longer than max_length "
                    f"{max_length} and were truncated")
    prov = {"model": loaded.provenance, "tokenizer": tok_prov, "dataset": data_prov,
            "max_length": max_length, "trust_remote_code": bool(trust_remote_code),
            "precision": precision, "device": str(dev)}
    return TextWorkload(ref.name, loaded, inputs, labels, precision, dev, prov)
