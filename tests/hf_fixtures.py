"""Tiny Hugging Face models, tokenizers, processors and data files for the hf-* workload tests.

Everything is built here from configs with random weights and saved with ``save_pretrained``, so
the workloads load them through the same code as a real hub model, offline, in well under a
second each. Labels in the data are random; tests compare the adapters with a direct forward
pass, not with a hoped-for accuracy.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path

WORDS = [
    "the", "a", "film", "movie", "was", "is", "good", "bad", "great", "awful", "fine", "dull",
    "plot", "actor", "scene", "story", "music", "very", "not", "quite", "and", "but", "love",
    "hate", "fun", "boring", "what", "which", "color", "sky", "grass", "red", "blue", "green",
    "cat", "dog", "bird", "sun", "moon", "sea", "tree",
]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[EOS]"]
IMAGE_CLASSES = ("bird", "cat", "dog")  # folder names; the tiny ViT's id2label names them too
IMAGE_SIZE = 16


@dataclass(frozen=True)
class Tiny:
    """Paths of everything one test session builds (see ``build_all``)."""

    root: Path
    bert: Path  # BERT sequence classifier, labels negative/positive, with its tokenizer
    vit: Path  # ViT image classifier, id2label = IMAGE_CLASSES, with its image processor
    gpt2: Path  # GPT-2 causal LM, with its tokenizer (eos = [EOS])
    tokenizer: Path  # the word-level tokenizer alone
    text_csv: Path  # text,label (string labels)
    text_jsonl: Path  # text,label (int labels)
    images: Path  # image folder: one sub-folder per class, 16x16 PNGs
    lm_text: Path  # one sentence per line
    lm_mc: Path  # question/choices/answer JSONL
    custom_code: Path  # a model folder whose config asks for its own code (auto_map)


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def make_tokenizer(path: Path):
    """A word-level tokenizer over WORDS: [PAD] pads, [EOS] ends (what GPT-2 gets)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS + list(WORDS))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                   eos_token="[EOS]", cls_token="[CLS]", sep_token="[SEP]")
    fast.save_pretrained(path)
    return fast


def make_framed_tokenizer(path: Path):
    """The same vocabulary with a [CLS] $A [SEP] post-processor (what BERT expects)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS + list(WORDS))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                   eos_token="[EOS]", cls_token="[CLS]", sep_token="[SEP]")
    fast.save_pretrained(path)
    return fast


def make_bert(path: Path) -> None:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    tok = make_framed_tokenizer(path)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64, pad_token_id=tok.pad_token_id,
                     id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    torch.manual_seed(1)
    BertForSequenceClassification(cfg).eval().save_pretrained(path)


def make_vit(path: Path) -> None:
    import torch
    from transformers import ViTConfig, ViTForImageClassification
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    cfg = ViTConfig(image_size=IMAGE_SIZE, patch_size=8, num_channels=3, hidden_size=32,
                    num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                    id2label=dict(enumerate(IMAGE_CLASSES)),
                    label2id={c: i for i, c in enumerate(IMAGE_CLASSES)})
    torch.manual_seed(2)
    ViTForImageClassification(cfg).eval().save_pretrained(path)
    ViTImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}).save_pretrained(path)


def make_gpt2(path: Path) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = make_tokenizer(path)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=32, n_layer=2, n_head=2,
                     bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id,
                     pad_token_id=tok.pad_token_id)
    torch.manual_seed(3)
    GPT2LMHeadModel(cfg).eval().save_pretrained(path)


def make_custom_code(path: Path) -> None:
    """A folder whose config names remote code: loading it must need trust_remote_code."""
    make_bert(path)
    cfg_path = path / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["model_type"] = "evil-bert"  # unknown to transformers: only its own code could build it
    cfg["auto_map"] = {"AutoConfig": "configuration_evil.EvilConfig",
                       "AutoModelForSequenceClassification": "modeling_evil.EvilModel"}
    cfg_path.write_text(json.dumps(cfg))
    (path / "configuration_evil.py").write_text("raise RuntimeError('remote code ran')\n")
    (path / "modeling_evil.py").write_text("raise RuntimeError('remote code ran')\n")


def make_text_data(root: Path, rng: random.Random) -> tuple[Path, Path]:
    csv_path, jsonl_path = root / "text.csv", root / "text.jsonl"
    rows = [(_sentence(rng, rng.randint(3, 12)), rng.choice(["negative", "positive"])) for _ in range(23)]
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(rows)
    with jsonl_path.open("w") as f:
        for text, label in rows:
            f.write(json.dumps({"sentence": text, "y": int(label == "positive")}) + "\n")
    return csv_path, jsonl_path


def make_images(root: Path, rng: random.Random) -> Path:
    import numpy as np
    from PIL import Image

    folder = root / "images"
    gen = np.random.default_rng(rng.randint(0, 2**31))
    for k, name in enumerate(IMAGE_CLASSES):
        (folder / name).mkdir(parents=True)
        for i in range(4 + k):  # 4, 5, 6 images: unequal classes catch index mix-ups
            # sizes differ from the model's on purpose: the processor must resize
            arr = gen.integers(0, 256, size=(20 + i, 24, 3), dtype=np.uint8)
            Image.fromarray(arr).save(folder / name / f"{i}.png")
    return folder


def make_lm_data(root: Path, rng: random.Random) -> tuple[Path, Path]:
    text = root / "lm.txt"
    text.write_text("\n".join(_sentence(rng, rng.randint(4, 30)) for _ in range(9)) + "\n\n")
    mc = root / "mc.jsonl"
    with mc.open("w") as f:
        for i in range(7):
            choices = [_sentence(rng, rng.randint(1, 3)) for _ in range(3 + i % 2)]
            # answers as an index, a letter and the choice's text: all three forms are accepted
            answer = [i % len(choices), "ABCD"[i % len(choices)], choices[i % len(choices)]][i % 3]
            f.write(json.dumps({"question": _sentence(rng, 5), "choices": choices, "answer": answer}) + "\n")
    return text, mc


def build_all(root: Path) -> Tiny:
    rng = random.Random(0)
    root.mkdir(parents=True, exist_ok=True)
    paths = {name: root / name for name in ("bert", "vit", "gpt2", "tokenizer", "custom_code")}
    make_bert(paths["bert"])
    make_vit(paths["vit"])
    make_gpt2(paths["gpt2"])
    make_tokenizer(paths["tokenizer"])
    make_custom_code(paths["custom_code"])
    text_csv, text_jsonl = make_text_data(root, rng)
    lm_text, lm_mc = make_lm_data(root, rng)
    return Tiny(root=root, text_csv=text_csv, text_jsonl=text_jsonl, images=make_images(root, rng),
                lm_text=lm_text, lm_mc=lm_mc, **paths)
