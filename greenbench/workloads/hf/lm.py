"""The hf-lm workload: a causal LM, measured per request of fixed shape and scored on quality.

A request is a prompt of exactly ``prompt_tokens`` tokens and a greedy generation of exactly
``output_tokens`` new tokens (no sampling, KV cache on, end-of-sequence suppressed until the
last token), so every request does the same work. The prompts are cut from the dataset's own
text (or drawn at random when synthetic) and staged on the device in advance. A second phase,
"prefill", runs the same call for one new token: the prompt's forward pass that yields the
first token, with the same overheads; the runner derives time to first token from it and time
per output token as (full - prefill) / (output_tokens - 1).

Quality: perplexity on a text set (format "text"), or accuracy on a multiple-choice set scored
by the log-likelihood of each choice given the question (format "multiple-choice").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import torch

from greenbench import evalfiles
from greenbench.measure.zoo import Generation, HFDataset, HFModel
from greenbench.workloads.base import Score, WorkloadError
from greenbench.workloads.hf.base import HFWorkload, batch_size_arg, logits_of, repeat_to
from greenbench.workloads.hf.common import Note
from greenbench.workloads.hf.data import column, hub_dataset, local_dataset, read_table
from greenbench.workloads.hf.hub import check_available, quiet_transformers
from greenbench.workloads.hf.loading import (
    Loaded,
    check_precision,
    load_tokenizer,
    load_transformers_model,
    probe,
    resolve_device,
    warn_remote_code,
)

SYNTHETIC_SIZE = 32  # synthetic prompts (and sequences scored) when the dataset gives no size
MAX_PROMPTS = 256  # distinct prompts staged; larger batches repeat them
EVAL_CONTEXT_CAP = 1024  # perplexity windows: the model's context, at most this many tokens
LOGITS_BUDGET_BYTES = 1 << 30  # evaluation batches are cut so their float32 logits stay under this
PHASES = ("prefill",)


class CausalLM(Protocol):
    """What hf-lm uses of a transformers causal LM beyond ``nn.Module`` (its GenerationMixin part)."""

    generation_config: Any

    def generate(self, *, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 generation_config: Any) -> torch.Tensor: ...


@dataclass(frozen=True)
class Choice:
    question: int  # index of its question
    ids: list[int]  # context + continuation token ids
    n_cont: int  # the last n_cont tokens are the choice, scored
    chars: int  # length of the choice text (for the length-normalised accuracy)


class LMWorkload(HFWorkload):
    def __init__(self, name: str, loaded: Loaded, prompts: torch.Tensor, prompt_tokens: int,
                 output_tokens: int, pad_id: int, eos_id: Any, quality: dict[str, Any], precision: str,
                 device: torch.device, provenance: dict[str, Any]) -> None:
        super().__init__(name, loaded.model, loaded.params, precision, device, provenance)
        from transformers import GenerationConfig

        self._prompts: torch.Tensor | None = prompts  # host (n, P) token ids
        self._p, self._t, self._pad = prompt_tokens, output_tokens, pad_id
        self._quality = quality
        self._score: Score | None = None
        vocab = getattr(loaded.config, "vocab_size", None)
        self._vocab = int(vocab) if vocab else None

        def config(new_tokens: int) -> Any:
            # min = max new tokens: EOS cannot end a request early, so every request does T tokens.
            return GenerationConfig(do_sample=False, num_beams=1, max_new_tokens=new_tokens,
                                    min_new_tokens=new_tokens, use_cache=True, pad_token_id=pad_id,
                                    eos_token_id=eos_id)

        # generate() fills every field we leave unset from the model's own generation_config
        # (repetition_penalty, no_repeat_ngram_size, bad_words_ids, a cache implementation...):
        # a blank one makes the measured request exactly the greedy one recorded here.
        self._lm().generation_config = GenerationConfig(pad_token_id=pad_id, eos_token_id=eos_id)
        self._full, self._prefill = config(output_tokens), config(1)
        self._provenance["generation_config"] = {k: v for k, v in self._full.to_dict().items()
                                                 if k in ("do_sample", "num_beams", "max_new_tokens",
                                                          "min_new_tokens", "use_cache", "pad_token_id",
                                                          "eos_token_id", "repetition_penalty")}
        out = probe(lambda: self._generate(self._stage(1), config(2)), precision, device, name)
        if tuple(out.shape) != (1, prompt_tokens + 2):
            raise WorkloadError(f"model {name!r} generated {out.shape[-1] - prompt_tokens} tokens where 2 "
                                "were asked for (min_new_tokens ignored?)")

    # ------------------------------------------------------------------------- requests

    def _stage(self, b: int) -> torch.Tensor:
        assert self._prompts is not None
        return repeat_to(self._prompts, b).to(self._device)

    def _lm(self) -> CausalLM:
        # Loaded through AutoModelForCausalLM, so a GenerationMixin; nn.Module's __getattr__ would
        # type generate and generation_config as Tensor | Module. Not kept in a second attribute:
        # close() must drop the only reference.
        return cast(CausalLM, self._live())

    def _generate(self, ids: torch.Tensor, config: Any) -> torch.Tensor:
        model = self._lm()
        return model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config)

    def _step(self, batch_size: int, config: Any) -> Callable[[], Any]:
        model = self._lm()
        ids = self._stage(batch_size_arg(batch_size))
        mask = torch.ones_like(ids)  # prompts are exactly P tokens: nothing is padded

        @torch.inference_mode()
        def step() -> torch.Tensor:
            return model.generate(input_ids=ids, attention_mask=mask, generation_config=config)

        return step

    def make_step(self, batch_size: int) -> Callable[[], Any]:
        return self._step(batch_size, self._full)

    def phases(self) -> tuple[str, ...]:
        return PHASES

    def make_phase_step(self, phase: str, batch_size: int) -> Callable[[], Any]:
        if phase != "prefill":
            raise WorkloadError(f"hf-lm has no phase {phase!r} (has: {', '.join(PHASES)})")
        return self._step(batch_size, self._prefill)

    def request_shape(self) -> dict[str, int]:
        return {"prompt_tokens": self._p, "output_tokens": self._t}

    # -------------------------------------------------------------------------- quality

    def _logprobs(self, seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability of each token given those before it: (B, L-1), and its mask."""
        model = self._live()
        width = max(map(len, seqs))
        ids = torch.full((len(seqs), width), self._pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):  # right padding: positions stay 0..n-1 for every row
            ids[i, :len(s)] = torch.tensor(s)
            mask[i, :len(s)] = 1
        ids, mask = ids.to(self._device), mask.to(self._device)
        logits = logits_of(model(input_ids=ids, attention_mask=mask)).float()
        lp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        valid = mask[:, 1:] * mask[:, :-1]
        if not bool(torch.isfinite(lp[valid.bool()]).all()):  # fp16 overflow, typically
            raise WorkloadError(f"non-finite log-probabilities at {self._precision}: the model overflows at "
                                "this precision; measure it at bf16 or fp32")
        return torch.where(valid.bool(), lp, torch.zeros_like(lp)), valid  # padding: 0, never NaN

    def _rows(self, batch_size: int, width: int) -> int:
        per_row = max(1, width * (self._vocab or 1) * 4)
        return max(1, min(batch_size, LOGITS_BUDGET_BYTES // per_row))

    def _perplexity(self, b: int) -> Score:
        seqs: list[list[int]] = self._quality["sequences"]
        nll, tokens = 0.0, 0
        rows = self._rows(b, max(map(len, seqs)))
        with torch.inference_mode():
            for start in range(0, len(seqs), rows):
                lp, valid = self._logprobs(seqs[start:start + rows])
                nll -= float(lp.sum().item())
                tokens += int(valid.sum().item())
        extra = {"perplexity": math.exp(nll / tokens), "tokens_scored": tokens,
                 "nll_per_token": nll / tokens}
        return Score(correct=None, total=len(seqs), metric="perplexity", extra=extra)

    def _multiple_choice(self, b: int) -> Score:
        choices: list[Choice] = self._quality["choices"]
        answers: list[int] = self._quality["answers"]
        scores = []
        rows = self._rows(b, max(len(c.ids) for c in choices))
        with torch.inference_mode():
            for start in range(0, len(choices), rows):
                part = choices[start:start + rows]
                lp, _ = self._logprobs([c.ids for c in part])
                for i, c in enumerate(part):  # the choice's tokens are the last n_cont of its row
                    end = len(c.ids) - 1
                    scores.append(float(lp[i, end - c.n_cont:end].sum().item()))
        best: dict[int, tuple[float, int]] = {}
        best_norm: dict[int, tuple[float, int]] = {}
        first: dict[int, int] = {}
        for k, (c, s) in enumerate(zip(choices, scores, strict=True)):
            j = k - first.setdefault(c.question, k)  # index of the choice within its question
            if c.question not in best or s > best[c.question][0]:
                best[c.question] = (s, j)
            norm = s / max(1, c.chars)
            if c.question not in best_norm or norm > best_norm[c.question][0]:
                best_norm[c.question] = (norm, j)
        correct = sum(best[q][1] == a for q, a in enumerate(answers))
        correct_norm = sum(best_norm[q][1] == a for q, a in enumerate(answers))
        extra = {"accuracy_length_normalized": correct_norm / len(answers), "choices_scored": len(choices)}
        return Score(correct=correct, total=len(answers), metric="accuracy", extra=extra)

    def evaluate(self, batch_size: int) -> Score:
        """Scored once per model and precision, at the first batch size asked for: a causal LM's
        perplexity or log-likelihood choice does not depend on the batch (beyond float rounding),
        and scoring a large model again at every batch size would cost more than measuring it."""
        b = batch_size_arg(batch_size)
        if self._score is None:
            score = self._multiple_choice(b) if self._quality["format"] == "multiple-choice" else self._perplexity(b)
            self._score = Score(score.correct, score.total, score.metric,
                                {**score.extra, "scored_at_batch_size": b})
        return self._score

    def _drop(self) -> None:
        self._prompts = None


# ------------------------------------------------------------------------------------ data


def dataset_texts(ds: HFDataset, allow_download: bool) -> tuple[list[str], dict[str, Any]]:
    if ds.path is not None:
        path, prov = local_dataset(ds)
        if path.is_dir():
            raise WorkloadError(f"dataset {path}: hf-lm reads a TXT, CSV, TSV, JSONL or JSON file, not a folder")
        if path.suffix.lower() == ".txt":
            texts = evalfiles.read_lines(path, WorkloadError)  # one item per non-empty line
        else:
            texts = [str(t) for t in column(read_table(path), ds.text_column, str(path))]
    else:
        # the limit counts texts, not rows: wikitext's blank rows are dropped first
        data, prov = hub_dataset(ds.model_copy(update={"limit": None}), allow_download, (ds.text_column,))
        texts = [str(t).strip() for t in data[ds.text_column] if str(t).strip()]
    if ds.limit is not None:
        texts = texts[:ds.limit]
    if not texts:
        raise WorkloadError(f"dataset {ds.path or ds.id}: no non-empty text")
    prov.update(items=len(texts), text_column=ds.text_column, limit=ds.limit)
    return texts, prov


def multiple_choice_items(ds: HFDataset, allow_download: bool
                          ) -> tuple[list[tuple[str, list[str], int]], dict[str, Any]]:
    cols = (ds.question_column, ds.choices_column, ds.answer_column)
    if ds.path is not None:
        path, prov = local_dataset(ds)
        if path.is_dir():
            raise WorkloadError(f"dataset {path}: a multiple-choice set is a CSV, TSV, JSONL or JSON file")
        where = str(path)
        rows = read_table(path)
        if ds.limit is not None:
            rows = rows[:ds.limit]
        columns = [column(rows, c, where) for c in cols]
    else:
        data, prov = hub_dataset(ds, allow_download, cols)
        where = f"{ds.id} {ds.split}"
        columns = [list(data[c]) for c in cols]
    items = []
    for i, (q, ch, a) in enumerate(zip(*columns, strict=True), 1):
        choices = evalfiles.choice_list(ch, where, i, WorkloadError)
        items.append((str(q), choices, evalfiles.answer_index(a, ch, choices, where, i, WorkloadError)))
    prov.update(items=len(items), question_column=ds.question_column, choices_column=ds.choices_column,
                answer_column=ds.answer_column, limit=ds.limit)
    return items, prov


# ---------------------------------------------------------------------------- tokenising


def _windows(ids: list[int], width: int) -> list[list[int]]:
    """Non-overlapping windows of at most ``width`` tokens; a lone last token has nothing to score."""
    return [ids[i:i + width] for i in range(0, len(ids), width) if len(ids[i:i + width]) >= 2]


def _prompts(stream: list[int], p: int) -> tuple[torch.Tensor, bool]:
    """(n, p) prompts cut from a token stream, repeating it when it is shorter than one prompt."""
    repeated = len(stream) < p
    if repeated:
        stream = (stream * (p // len(stream) + 1))[:p]
    n = min(len(stream) // p, MAX_PROMPTS)
    return torch.tensor(stream[:n * p], dtype=torch.long).view(n, p), repeated


def _context(config: Any) -> int | None:
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def build_hf_lm(
    model: HFModel,
    dataset: HFDataset,
    precision: str,
    device: str,
    cache_dir: Path,
    on_note: Note = None,
    *,
    generation: Generation,
    trust_remote_code: bool,
    allow_download: bool = False,
    on_warning: Note = None,
) -> LMWorkload:
    """Build an AutoModelForCausalLM at ``precision`` on ``device``: requests of ``generation``'s
    prompt_tokens in, output_tokens out, scored by perplexity or by multiple-choice accuracy.

    ``model``, ``dataset``, ``generation`` and ``trust_remote_code`` are the ladder's, as the zoo
    validated them (``LMLadder.builder_kwargs``): their defaults live there, not here."""
    ref, ds = model, dataset
    p, t = generation.prompt_tokens, generation.output_tokens
    dev = resolve_device(device)
    check_precision(precision, dev)
    if ref.source != "transformers":
        raise WorkloadError(f"model {ref.name!r}: hf-lm loads transformers models, not source {ref.source!r}")
    if not ds.synthetic and ds.format not in ("text", "multiple-choice"):
        raise WorkloadError(f"hf-lm needs dataset format 'text' (perplexity) or 'multiple-choice' (accuracy), "
                            f"not {ds.format!r}")
    check_available("model", ref.id, ref.revision, allow_download)
    warn_remote_code(ref, trust_remote_code, on_warning)

    tokenizer, tok_prov = load_tokenizer(ref, ds, allow_download, trust_remote_code)

    texts: list[str] = []
    mc: list[tuple[str, list[str], int]] = []
    if ds.synthetic:
        data_prov: dict[str, Any] = {"synthetic": True, "seed": ds.seed,
                                     "note": "random token ids: perplexity is that of noise"}
    elif ds.format == "text":
        texts, data_prov = dataset_texts(ds, allow_download)
    else:
        mc, data_prov = multiple_choice_items(ds, allow_download)

    defaults = {"vocab_size": len(tokenizer)} if tokenizer is not None and ref.weights == "random" \
        and "vocab_size" not in (ref.config or {}) else {}
    loaded = load_transformers_model("AutoModelForCausalLM", ref, precision, dev,
                                        allow_download=allow_download, trust_remote_code=trust_remote_code,
                                        on_note=on_note, config_defaults=defaults)
    config = loaded.config
    context = _context(config)
    if context is not None and p + t > context:
        raise WorkloadError(f"prompt_tokens + output_tokens = {p + t} exceeds model {ref.name!r}'s "
                            f"context of {context} tokens")
    eos = tokenizer.eos_token_id if tokenizer is not None and tokenizer.eos_token_id is not None \
        else getattr(config, "eos_token_id", None)
    pad = next((x for x in (tokenizer.pad_token_id if tokenizer is not None else None,
                            getattr(config, "pad_token_id", None),
                            eos[0] if isinstance(eos, list) and eos else eos) if isinstance(x, int)), 0)
    vocab = getattr(config, "vocab_size", None)
    if isinstance(eos, int) and vocab and not 0 <= eos < vocab:  # e.g. GPT2Config's 50256 on a tiny vocab
        if on_note:
            on_note(f"{ref.name}: eos token id {eos} is outside the vocabulary of {vocab}; generating without one")
        eos = None
        pad = pad if 0 <= pad < vocab else 0
    width = min(context or EVAL_CONTEXT_CAP, EVAL_CONTEXT_CAP)

    quality: dict[str, Any]
    if ds.synthetic:
        if not vocab:
            raise WorkloadError(f"model {ref.name!r}: no vocab_size to draw synthetic token ids from")
        n = ds.size or SYNTHETIC_SIZE
        g = torch.Generator().manual_seed(ds.seed)
        prompts = torch.randint(0, vocab, (n, p), generator=g)
        quality = {"format": "text", "sequences": [row[:width] for row in prompts.tolist()]}
        prompt_prov = {"source": "synthetic", "seed": ds.seed, "prompts": n, "repeated": False}
        data_prov.update(items=n)
    else:
        def encode(xs: list[str], special: bool) -> list[list[int]]:
            with quiet_transformers():  # long documents are cut into windows here, not logged
                return tokenizer(xs, add_special_tokens=special)["input_ids"]

        if ds.format == "text":
            docs = encode(texts, True)
            seqs = [w for d in docs for w in _windows(d, width)]
            if not seqs:
                raise WorkloadError(f"dataset {ds.path or ds.id}: no item has 2 tokens or more to score")
            quality = {"format": "text", "sequences": seqs}
            stream_src = encode(texts, False)
            data_prov.update(sequences=len(seqs), context_tokens=width)
        else:
            choices, answers = [], []
            for qi, (question, options, answer) in enumerate(mc):
                ctx = encode([question], True)[0] or ([eos] if isinstance(eos, int) else [pad])
                for option in options:  # lm-eval style: the choice follows the question after a space
                    cont = encode([" " + option], False)[0]
                    if not cont:
                        raise WorkloadError(f"dataset {ds.path or ds.id}: item {qi + 1}: choice {option!r} "
                                            "has no tokens")
                    ids = (ctx + cont)[-width:]
                    choices.append(Choice(qi, ids, min(len(cont), len(ids) - 1), len(option)))
                answers.append(answer)
            quality = {"format": "multiple-choice", "choices": choices, "answers": answers}
            stream_src = encode([q for q, _, _ in mc], False)
        sep = [eos] if isinstance(eos, int) else []
        stream = [tok for d in stream_src for tok in d + sep]
        if not stream:
            raise WorkloadError(f"dataset {ds.path or ds.id}: no tokens to build prompts from")
        prompts, repeated = _prompts(stream, p)
        if repeated and on_note:
            on_note(f"{ref.name}: the dataset has {len(stream)} tokens, fewer than one prompt of {p}; "
                    "prompts repeat it")
        prompt_prov = {"source": f"dataset {'text' if ds.format == 'text' else 'questions'}, "
                                 "concatenated and cut", "prompts": int(prompts.shape[0]), "repeated": repeated}
    prov = {"model": loaded.provenance, "tokenizer": tok_prov, "dataset": data_prov,
            "generation": {"prompt_tokens": p, "output_tokens": t, "decoding": "greedy", "kv_cache": True,
                           "min_new_tokens": t, **prompt_prov},
            "trust_remote_code": bool(trust_remote_code), "precision": precision, "device": str(dev)}
    return LMWorkload(ref.name, loaded, prompts, p, t, pad, eos, quality, precision, dev, prov)
