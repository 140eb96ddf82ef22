"""The hf-text, hf-vision and hf-lm workloads, through their real loading code, on tiny models.

The models (BERT, ViT, GPT-2 with a few thousand parameters) are built from configs with random
weights and saved with save_pretrained once per session (tests/hf_fixtures.py); the adapters
load them offline like any hub model. Scores are checked against a direct forward pass computed
here, not against hoped-for accuracies.
"""

from __future__ import annotations

import importlib.machinery
import json
import math
import statistics
import sys
import time
import types

import hf_fixtures
import numpy as np
import pytest
import torch

from greenbench.measure.zoo import Generation, HFDataset, HFModel
from greenbench.workloads import Score, WorkloadError, WorkloadSkipped, build_workload
from greenbench.workloads.hf.lm import build_hf_lm
from greenbench.workloads.hf.text import build_hf_text
from greenbench.workloads.hf.vision import build_hf_vision

GEN = {"prompt_tokens": 12, "output_tokens": 6}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models: one thread is as fast, and does not stall when the CPU is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> hf_fixtures.Tiny:
    return hf_fixtures.build_all(tmp_path_factory.mktemp("hf-tiny"))


def one_line(e: pytest.ExceptionInfo) -> str:
    text = str(e.value)
    assert "\n" not in text and text, text
    return text


# The builders take the zoo's validated entries, as a ladder hands them over (builder_kwargs);
# these helpers write them as the dicts a ladder would hold.


def text(tiny, precision="fp32", dataset=None, model=None, trust_remote_code=False, **kw):
    return build_hf_text(HFModel(**(model or {"name": "bert", "id": str(tiny.bert)})),
                         HFDataset(**(dataset or {"path": str(tiny.text_csv)})), precision, "cpu", tiny.root,
                         max_length=16, trust_remote_code=trust_remote_code, **kw)


def vision(tiny, precision="fp32", dataset=None, model=None, image_size=None, trust_remote_code=False, **kw):
    return build_hf_vision(HFModel(**(model or {"name": "vit", "id": str(tiny.vit)})),
                           HFDataset(**(dataset or {"path": str(tiny.images)})), precision, "cpu", tiny.root,
                           image_size=image_size, trust_remote_code=trust_remote_code, **kw)


def lm(tiny, precision="fp32", dataset=None, model=None, generation=GEN, trust_remote_code=False, **kw):
    return build_hf_lm(HFModel(**(model or {"name": "gpt2", "id": str(tiny.gpt2)})),
                       HFDataset(**(dataset or {"path": str(tiny.lm_text), "format": "text"})), precision, "cpu",
                       tiny.root, generation=Generation(**generation), trust_remote_code=trust_remote_code, **kw)


# ------------------------------------------------------------------------------------ text


def test_text_accuracy_matches_a_direct_forward_pass(tiny):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    rows = [line.rsplit(",", 1) for line in tiny.text_csv.read_text().splitlines()[1:]]
    tok = AutoTokenizer.from_pretrained(tiny.bert, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(tiny.bert, local_files_only=True).eval()
    enc = tok([t for t, _ in rows], padding="max_length", truncation=True, max_length=16, return_tensors="pt")
    with torch.no_grad():
        pred = model(**enc).logits.argmax(-1)
    want = int((pred == torch.tensor([model.config.label2id[y] for _, y in rows])).sum())

    w = text(tiny)
    for b in (1, 5, 64):
        assert w.evaluate(b) == Score(correct=want, total=len(rows))
    assert w.params == sum(p.numel() for p in model.parameters())
    prov = w.provenance()
    assert prov["dataset"]["items"] == len(rows) and prov["dataset"]["label_mapping"].startswith("by name")
    assert prov["model"]["id"] == str(tiny.bert) and prov["tokenizer"]["id"] == str(tiny.bert)
    assert len(prov["dataset"]["sha256"]) == 16 and prov["transformers"] and prov["max_length"] == 16
    json.dumps(prov)  # stored in the profile as is


def test_text_integer_labels_and_other_columns_give_the_same_score(tiny):
    by_name = text(tiny).evaluate(8)
    w = text(tiny, dataset={"path": str(tiny.text_jsonl), "text_column": "sentence", "label_column": "y"})
    assert w.evaluate(8) == by_name
    assert w.provenance()["dataset"]["label_mapping"] == "by index"
    limited = text(tiny, dataset={"path": str(tiny.text_csv), "limit": 5})
    assert limited.evaluate(2).total == 5


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
def test_text_step_runs_each_batch_size(tiny, precision):
    w = build_workload("hf-text", model=HFModel(name="bert", id=str(tiny.bert)),
                       dataset=HFDataset(path=str(tiny.text_csv)), precision=precision, device="cpu",
                       cache_dir=tiny.root, max_length=16, trust_remote_code=False)
    want_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "int8": torch.float32}[precision]
    for b in (1, 3, 40):  # 40 > 23 items: the staged batch repeats the data
        out = w.make_step(b)()
        assert out.logits.shape == (b, 2) and out.logits.dtype == want_dtype
    assert 0 <= w.evaluate(4).correct <= 23
    if precision == "int8":
        assert w.provenance()["model"]["int8"]["layers"] > 0
    w.close()
    with pytest.raises(WorkloadError, match="after close"):
        w.make_step(1)


def test_text_labels_the_model_does_not_know_are_one_clear_error(tiny, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nthe film,positive\na plot,meh\n")
    with pytest.raises(WorkloadError) as e:
        text(tiny, dataset={"path": str(bad)})
    assert "['meh']" in one_line(e) and "'negative'" in str(e.value)
    out_of_range = tmp_path / "range.jsonl"
    out_of_range.write_text('{"text": "the film", "label": 1}\n{"text": "a plot", "label": 7}\n')
    with pytest.raises(WorkloadError, match=r"label\(s\) \[7\] outside the model's 2 classes"):
        text(tiny, dataset={"path": str(out_of_range)})


@pytest.mark.parametrize("name, content, message", [
    ("broken.jsonl", '{"text": "a", "label": 0}\n{"text": "b", "label"\n', "line 2 is not valid JSON"),
    ("nocol.csv", "words,label\nthe film,positive\n", "has no 'text'"),
    ("empty.csv", "text,label\n", "no items"),
    ("list.json", '{"rows": 3}', "expected a JSON list"),
    ("data.parquet", "PAR1", "unknown file type .parquet"),
    ("wide.csv", "text,label\nthe film,positive,extra\n", "line 2 has more fields"),
])
def test_bad_data_file_is_one_clear_error(tiny, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(WorkloadError) as e:
        text(tiny, dataset={"path": str(path)})
    assert not isinstance(e.value, WorkloadSkipped)
    assert message in one_line(e) and name in str(e.value)


def test_text_random_weights_from_a_config_on_synthetic_data(tiny):
    cfg = {"model_type": "bert", "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
           "intermediate_size": 32, "vocab_size": 50, "max_position_embeddings": 32, "num_labels": 3}
    model = {"name": "rand", "weights": "random", "config": cfg}
    w = text(tiny, model=model, dataset={"synthetic": True, "size": 10, "seed": 4})
    s = w.evaluate(3)
    assert s.total == 10 and \
        s == text(tiny, model=model, dataset={"synthetic": True, "size": 10, "seed": 4}).evaluate(7)
    assert w.make_step(4)().logits.shape == (4, 3)
    prov = w.provenance()
    assert prov["dataset"]["synthetic"] is True and prov["model"]["init_seed"] == 0 and prov["tokenizer"] is None
    with pytest.raises(WorkloadError, match=r"no tokenizer.*synthetic"):
        text(tiny, model=model)  # real text needs a tokenizer
    # a tokenizer by path sizes the random model's vocabulary and maps string labels in sorted order
    with_tok = text(tiny, model={"name": "rand", "weights": "random", "tokenizer": str(tiny.tokenizer),
                                 "config": {k: v for k, v in cfg.items() if k not in ("vocab_size", "num_labels")}})
    assert with_tok.evaluate(8).total == 23


# ---------------------------------------------------------------------------------- vision


def test_vision_accuracy_matches_a_direct_forward_pass(tiny):
    from PIL import Image
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(tiny.vit, local_files_only=True).eval()
    proc = AutoImageProcessor.from_pretrained(tiny.vit, local_files_only=True)
    files = sorted(tiny.images.glob("*/*.png"))
    pixels = proc([Image.open(f).convert("RGB") for f in files], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        pred = model(pixels).logits.argmax(-1)
    want = int((pred == torch.tensor([model.config.label2id[f.parent.name] for f in files])).sum())

    w = vision(tiny)
    for b in (1, 4, 32):
        assert w.evaluate(b) == Score(correct=want, total=len(files))
    prov = w.provenance()
    assert prov["dataset"]["label_mapping"] == "by name (model id2label)" and prov["dataset"]["classes"] == 3
    assert prov["image_shape"] == [3, hf_fixtures.IMAGE_SIZE, hf_fixtures.IMAGE_SIZE]
    # a limit keeps the classes balanced (items are interleaved by class)
    assert vision(tiny, dataset={"path": str(tiny.images), "limit": 6}).evaluate(6).total == 6


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_vision_step_runs_each_batch_size(tiny, precision):
    w = vision(tiny, precision)
    for b in (1, 4, 20):
        out = w.make_step(b)()
        assert out.logits.shape == (b, 3)
        assert out.logits.dtype == (torch.bfloat16 if precision == "bf16" else torch.float32)
    w.close()


def test_vision_random_weights_use_sorted_folder_order_and_image_size(tiny):
    cfg = {"model_type": "resnet", "embedding_size": 8, "hidden_sizes": [8, 16], "depths": [1, 1],
           "layer_type": "basic"}
    w = vision(tiny, model={"name": "resnet", "weights": "random", "config": cfg}, image_size=24)
    assert w.evaluate(5).total == 15 and w.make_step(2)().logits.shape == (2, 3)
    prov = w.provenance()
    assert prov["dataset"]["label_mapping"] == "sorted folder order"
    assert prov["image_shape"] == [3, 24, 24] and "no image processor" in prov["processor"]["note"]


def test_vision_synthetic_images_are_seeded(tiny):
    a = vision(tiny, dataset={"synthetic": True, "size": 9, "seed": 3})
    b = vision(tiny, dataset={"synthetic": True, "size": 9, "seed": 3})
    assert a.evaluate(4) == b.evaluate(9) and a.evaluate(4).total == 9
    assert a.provenance()["dataset"]["synthetic"] is True and a.provenance()["dataset"]["label_mapping"] == "random"


def test_vision_folder_classes_must_match_a_named_head(tiny, tmp_path):
    import shutil

    shutil.copytree(tiny.images, tmp_path / "imgs")
    (tmp_path / "imgs" / "cat").rename(tmp_path / "imgs" / "fish")
    with pytest.raises(WorkloadError) as e:
        vision(tiny, dataset={"path": str(tmp_path / "imgs")})
    assert "['fish']" in one_line(e) and "rename the folders" in str(e.value)
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "x.png").write_bytes((tiny.images / "cat" / "0.png").read_bytes())
    with pytest.raises(WorkloadError, match="no class sub-folders"):
        vision(tiny, dataset={"path": str(tmp_path / "flat")})
    (tmp_path / "imgs" / "dog" / "9.png").write_text("not an image")
    with pytest.raises(WorkloadError, match=r"9\.png: not a readable image"):
        vision(tiny, model={"name": "r", "weights": "random", "config": {"model_type": "resnet",
               "embedding_size": 8, "hidden_sizes": [8], "depths": [1]}}, dataset={"path": str(tmp_path / "imgs")})


def _fake_module(monkeypatch, name: str) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None)  # find_spec must see it installed
    monkeypatch.setitem(sys.modules, name, mod)
    return mod


def _tiny_net(num_classes: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                               torch.nn.Linear(4, num_classes))


def test_vision_torchvision_random_weights_and_uncached_pretrained(tiny, monkeypatch, tmp_path):
    """torchvision is not installed here: a stand-in checks what the adapter asks of it."""
    import enum

    tv, calls = _fake_module(monkeypatch, "torchvision"), []

    class Weights(enum.Enum):
        IMAGENET1K_V1 = "https://download.pytorch.org/models/resnet18-f37072fd.pth"
        DEFAULT = IMAGENET1K_V1

        @property
        def url(self):
            return self.value

    def get_model(name, weights=None, num_classes=1000):
        calls.append((name, weights, num_classes))
        return _tiny_net(num_classes)

    tv.models = types.SimpleNamespace(get_model=get_model, get_model_weights=lambda name: Weights)
    w = vision(tiny, model={"name": "tv", "id": "resnet18", "source": "torchvision", "weights": "random"},
               image_size=20)
    assert calls == [("resnet18", None, 3)]  # weights=None, and a head for the 3 folders
    assert w.evaluate(4).total == 15 and w.make_step(3)().shape == (3, 3)
    prov = w.provenance()
    assert prov["model"]["source"] == "torchvision" and prov["dataset"]["label_mapping"] == "sorted folder order"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch-hub"))
    with pytest.raises(WorkloadSkipped) as e:  # pretrained weights not in the torch hub cache
        vision(tiny, model={"name": "tv", "id": "resnet18", "source": "torchvision", "revision": "IMAGENET1K_V1"})
    assert "weights IMAGENET1K_V1 are not in the torch hub cache" in one_line(e) and "--download" in str(e.value)
    with pytest.raises(WorkloadError, match="no torchvision weights 'V9'"):
        vision(tiny, model={"name": "tv", "id": "resnet18", "source": "torchvision", "revision": "V9"})


def test_vision_timm_model_with_its_own_transform(tiny, monkeypatch):
    timm, calls = _fake_module(monkeypatch, "timm"), []

    def create_model(name, pretrained=False, num_classes=1000):
        calls.append((name, pretrained, num_classes))
        return _tiny_net(num_classes)

    def create_transform(input_size, is_training, **_):
        assert not is_training
        return lambda im: torch.from_numpy(np.asarray(im.resize(input_size[1:]), dtype=np.float32)).permute(2, 0, 1)

    timm.create_model = create_model
    timm.data = types.SimpleNamespace(resolve_model_data_config=lambda model: {"input_size": (3, 18, 18)},
                                      create_transform=create_transform)
    w = vision(tiny, model={"name": "t", "id": "resnet18", "source": "timm", "weights": "random"})
    assert calls == [("resnet18", False, 3)]
    assert w.evaluate(8).total == 15 and w.provenance()["image_shape"] == [3, 18, 18]
    assert w.provenance()["dataset"]["label_mapping"] == "sorted folder order"


@pytest.mark.parametrize("source, package", [("timm", "timm"), ("torchvision", "torchvision")])
def test_vision_missing_optional_package_is_skipped_with_the_install_line(tiny, source, package):
    if importlib.util.find_spec(package) is not None:
        pytest.skip(f"{package} is installed here")
    with pytest.raises(WorkloadSkipped) as e:
        vision(tiny, model={"name": "m", "id": "resnet18", "source": source})
    assert one_line(e) == f"source {source} needs the '{package}' package: pip install {package}"


# -------------------------------------------------------------------------------------- lm


def _direct_logprobs(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
    return torch.log_softmax(logits[:-1], -1).gather(-1, torch.tensor(ids[1:])[:, None]).squeeze(-1)


@pytest.fixture(scope="module")
def gpt2(tiny):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return (AutoModelForCausalLM.from_pretrained(tiny.gpt2, local_files_only=True).eval(),
            AutoTokenizer.from_pretrained(tiny.gpt2, local_files_only=True))


def test_lm_perplexity_matches_a_direct_computation(tiny, gpt2):
    model, tok = gpt2
    lines = [s for s in tiny.lm_text.read_text().splitlines() if s.strip()]
    lps = [_direct_logprobs(model, tok(s)["input_ids"]) for s in lines]
    tokens = sum(len(x) for x in lps)
    want = math.exp(-sum(float(x.sum()) for x in lps) / tokens)
    w = lm(tiny)
    for b in (1, 4, 16):
        s = w.evaluate(b)
        assert s.correct is None and s.metric == "perplexity" and s.total == len(lines)
        assert s.extra["tokens_scored"] == tokens
        assert s.extra["perplexity"] == pytest.approx(want, rel=1e-4)


def test_lm_multiple_choice_matches_a_direct_scoring(tiny, gpt2):
    model, tok = gpt2
    items = [json.loads(line) for line in tiny.lm_mc.read_text().splitlines()]
    correct = 0
    for it in items:
        ctx = tok(it["question"])["input_ids"]
        scores = []
        for c in it["choices"]:
            cont = tok(" " + c, add_special_tokens=False)["input_ids"]
            scores.append(float(_direct_logprobs(model, ctx + cont)[-len(cont):].sum()))
        a = it["answer"]
        want = a if isinstance(a, int) else (it["choices"].index(a) if a in it["choices"] else "ABCD".index(a))
        correct += max(range(len(scores)), key=scores.__getitem__) == want
    w = lm(tiny, dataset={"path": str(tiny.lm_mc), "format": "multiple-choice"})
    for b in (1, 5, 64):
        s = w.evaluate(b)
        assert (s.correct, s.total, s.metric) == (correct, len(items), "accuracy")
        assert 0 <= s.extra["accuracy_length_normalized"] <= 1


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_lm_generates_exactly_the_requested_tokens(tiny, precision):
    w = lm(tiny, precision)
    assert w.phases() == ("prefill",) and w.request_shape() == GEN
    p, t = GEN["prompt_tokens"], GEN["output_tokens"]
    for b in (1, 3, 20):  # 20 > the prompts the text gives: they repeat
        assert w.make_step(b)().shape == (b, p + t)
        assert w.make_phase_step("prefill", b)().shape == (b, p + 1)
    with pytest.raises(WorkloadError, match="no phase 'decode'"):
        w.make_phase_step("decode", 1)
    prov = w.provenance()["generation"]
    assert prov["decoding"] == "greedy" and prov["prompts"] >= 1 and prov["min_new_tokens"] == t
    w.close()


def test_lm_prefill_is_cheaper_than_the_full_request(tiny):
    w = lm(tiny, generation={"prompt_tokens": 16, "output_tokens": 24})

    def median_s(step) -> float:
        step()
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    full, prefill = median_s(w.make_step(2)), median_s(w.make_phase_step("prefill", 2))
    assert prefill < full / 2  # 1 forward pass against 24


def test_lm_random_config_without_tokenizer_runs_on_synthetic_ids(tiny):
    cfg = {"model_type": "gpt2", "n_layer": 1, "n_embd": 16, "n_head": 2, "vocab_size": 60, "n_positions": 32,
           "eos_token_id": 5, "bos_token_id": 5}
    model = {"name": "rand-gpt2", "weights": "random", "config": cfg}
    w = lm(tiny, model=model, dataset={"synthetic": True, "size": 4, "seed": 1},
           generation={"prompt_tokens": 8, "output_tokens": 4})
    s = w.evaluate(2)
    assert s.correct is None and s.total == 4 and s.extra["perplexity"] > 1
    assert w.make_step(3)().shape == (3, 12)
    assert w.provenance()["generation"]["source"] == "synthetic"
    with pytest.raises(WorkloadError, match=r"no tokenizer.*synthetic"):
        lm(tiny, model=model)
    with pytest.raises(WorkloadError, match="exceeds model 'rand-gpt2''s context of 32"):
        lm(tiny, model=model, dataset={"synthetic": True}, generation={"prompt_tokens": 30, "output_tokens": 4})


def test_lm_bad_multiple_choice_items_are_one_clear_error(tiny, tmp_path):
    bad = tmp_path / "mc.jsonl"
    bad.write_text('{"question": "the sky", "choices": ["blue", "red"], "answer": "green"}\n')
    with pytest.raises(WorkloadError) as e:
        lm(tiny, dataset={"path": str(bad), "format": "multiple-choice"})
    assert "item 1: answer 'green'" in one_line(e)
    with pytest.raises(WorkloadError, match=r"needs dataset format 'text'.*'multiple-choice'"):
        lm(tiny, dataset={"path": str(tiny.lm_text)})  # format defaults to classification


# ----------------------------------------------------------------------- offline and safety


BUILDERS = {"text": text, "vision": vision, "lm": lm}


@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_unreachable_hub_model_is_skipped_with_one_line(tiny, family):
    with pytest.raises(WorkloadSkipped) as e:
        BUILDERS[family](tiny, model={"name": "ghost", "id": "nobody-here/no-such-model", "revision": "v1"})
    assert one_line(e) == ("model 'nobody-here/no-such-model' revision 'v1' is not in the Hugging Face cache "
                           "and downloads are off; point the ladder at a local path, or run with --download "
                           "where the hub is reachable")


def test_missing_local_paths_are_skipped(tiny, tmp_path):
    with pytest.raises(WorkloadSkipped, match=r"model '.*gone' does not exist on this machine"):
        text(tiny, model={"name": "gone", "id": str(tmp_path / "gone")})
    with pytest.raises(WorkloadSkipped, match=r"dataset '.*nope\.csv' does not exist on this machine"):
        text(tiny, dataset={"path": str(tmp_path / "nope.csv")})


def test_hub_dataset_without_the_datasets_package_names_the_install(tiny):
    if importlib.util.find_spec("datasets") is not None:
        pytest.skip("datasets is installed here")
    with pytest.raises(WorkloadSkipped) as e:
        text(tiny, dataset={"id": "glue", "config": "sst2"})
    assert one_line(e) == "dataset 'glue' config 'sst2' needs the 'datasets' package: pip install datasets"


def test_downloads_only_when_allowed_and_remote_code_flag_always_a_bool(tiny, monkeypatch):
    import transformers

    seen = []
    real = transformers.AutoModelForSequenceClassification.from_pretrained.__func__

    def spy(cls, ref, **kw):
        seen.append({k: kw[k] for k in ("local_files_only", "trust_remote_code", "revision")})
        return real(cls, ref, **kw)

    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_pretrained", classmethod(spy))
    text(tiny)
    text(tiny, allow_download=True)
    assert seen == [{"local_files_only": True, "trust_remote_code": False, "revision": None},
                    {"local_files_only": False, "trust_remote_code": False, "revision": None}]


class _Split:
    """The little of a `datasets` split the adapters use: columns, rows, select, ClassLabel names."""

    def __init__(self, rows: list[dict], names: list[str] | None):
        self.rows, self.names = rows, names
        self.column_names = list(rows[0])
        self.features = {"label": types.SimpleNamespace(names=names)}
        self._fingerprint = "f00d"

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, key):
        return [r[key] for r in self.rows] if isinstance(key, str) else self.rows[key]

    def select(self, idx):
        return _Split([self.rows[i] for i in idx], self.names)


def test_hub_dataset_split_offline_with_class_label_names(tiny, monkeypatch):
    """`datasets` is not installed here: a stand-in checks the calls, the offline switch and the
    mapping of ClassLabel names onto the model's labels."""
    from huggingface_hub import constants

    rows = [line.rsplit(",", 1) for line in tiny.text_csv.read_text().splitlines()[1:]]
    hub_rows = [{"sentence": t, "label": int(y == "positive")} for t, y in rows]
    ds, calls = _fake_module(monkeypatch, "datasets"), []
    ds_config = _fake_module(monkeypatch, "datasets.config")
    ds_config.HF_HUB_OFFLINE = False
    names = ["negative", "positive"]

    def load_dataset(id, config, split, revision):
        calls.append((id, config, split, revision, constants.HF_HUB_OFFLINE, ds_config.HF_HUB_OFFLINE))
        if id == "missing":
            raise FileNotFoundError("Couldn't find a dataset script at missing/missing.py")
        return _Split(hub_rows, names)

    ds.load_dataset = load_dataset
    hub = {"id": "glue", "config": "sst2", "text_column": "sentence", "revision": "r1"}
    w = text(tiny, dataset=hub)
    assert calls[-1] == ("glue", "sst2", "validation", "r1", True, True)  # offline during the call
    assert constants.HF_HUB_OFFLINE is False and ds_config.HF_HUB_OFFLINE is False  # and restored
    assert w.evaluate(8) == text(tiny).evaluate(8)
    prov = w.provenance()["dataset"]
    assert prov["label_mapping"].startswith(("by name", "by index (the same class names")) and \
        prov["fingerprint"] == "f00d" and prov["revision"] == "r1"
    assert text(tiny, dataset={**hub, "limit": 4}).evaluate(2).total == 4
    notes: list[str] = []
    names = ["neg", "pos"]  # names the model does not know: indices as they are, and a note says so
    assert text(tiny, dataset=hub, on_note=notes.append).provenance()["dataset"]["label_mapping"] == "by index"
    assert any("differ from the model's labels" in n for n in notes)
    with pytest.raises(WorkloadSkipped) as e:
        text(tiny, dataset={"id": "missing"})
    assert one_line(e).startswith("dataset 'missing' split 'validation' is not in the datasets cache")
    with pytest.raises(WorkloadError, match="has no column 'text'"):
        text(tiny, dataset={"id": "glue"})


def test_trust_remote_code_is_off_by_default(tiny):
    model = {"name": "custom", "id": str(tiny.custom_code)}
    with pytest.raises(WorkloadError) as e:  # default: the folder's own code is never run
        text(tiny, model=model)
    assert "trust_remote_code: true" in one_line(e) and "remote code ran" not in str(e.value)
    warned: list[str] = []
    with pytest.raises(WorkloadError, match="remote code ran"):  # only the ladder's flag runs it
        text(tiny, model=model, trust_remote_code=True, on_warning=warned.append)
    # said before the code ran, once, naming the model and the folder whose code runs
    assert len(warned) == 1 and "'custom'" in warned[0] and str(tiny.custom_code.resolve()) in warned[0]
    assert "trust_remote_code is on" in warned[0]


def test_trust_remote_code_warns_without_a_runner(tiny):
    from greenbench.workloads.hf.loading import RemoteCodeWarning

    model = {"name": "custom", "id": str(tiny.custom_code)}
    with pytest.warns(RemoteCodeWarning, match="custom_code"), pytest.raises(WorkloadError, match="remote code ran"):
        text(tiny, model=model, trust_remote_code=True)


# ------------------------------------------------------------------------------ end to end

E2E_ZOO = """
version: 1
ladders:
  tiny-text:
    workload: hf-text
    dataset: {{path: "{tiny.text_csv}"}}
    models:
      - {{name: bert-tiny, id: "{tiny.bert}"}}
      - {{name: ghost, id: nobody-here/no-such-model, revision: v1}}
    batch_sizes: [1, 4]
    precisions: [fp32]
    devices: [cpu]
    max_length: 16
  tiny-vision:
    workload: hf-vision
    dataset: {{path: "{tiny.images}"}}
    models: [{{name: vit-tiny, id: "{tiny.vit}"}}]
    batch_sizes: [2]
    precisions: [fp32, bf16]
    devices: [cpu]
  tiny-lm:
    workload: hf-lm
    dataset: {{path: "{tiny.lm_text}", format: text}}
    models: [{{name: gpt2-tiny, id: "{tiny.gpt2}"}}]
    generation: {{prompt_tokens: 8, output_tokens: 4}}
    batch_sizes: [1, 2]
    devices: [cpu]
  tiny-lm-mc:
    workload: hf-lm
    dataset: {{path: "{tiny.lm_mc}", format: multiple-choice}}
    models: [{{name: gpt2-tiny, id: "{tiny.gpt2}"}}]
    generation: {{prompt_tokens: 8, output_tokens: 4}}
    batch_sizes: [2]
    devices: [cpu]
"""
FAST = ["--meter", "fake", "--repeats", "3", "--min-window", "0.03", "--min-updates", "3",
        "--warmup", "0", "--idle", "0.1"]


@pytest.fixture(scope="module")
def e2e_zoo(tiny, tmp_path_factory):
    path = tmp_path_factory.mktemp("hf-zoo") / "zoo.yaml"
    path.write_text(E2E_ZOO.format(tiny=tiny))
    return path


def profile(ladder, zoo, tmp_path):
    from typer.testing import CliRunner

    from greenbench.cli import app

    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["profile", ladder, "--zoo", str(zoo), *FAST, "--out", str(out),
                                   "--cache-dir", str(tmp_path / "cache")])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / f"{ladder}.json").read_text())
    assert doc["complete"]
    return doc["records"]


def test_e2e_text_ladder_measures_the_model_and_skips_the_unreachable_one(e2e_zoo, tmp_path, tiny):
    recs = {(r["model"], r["batch_size"]): r for r in profile("tiny-text", e2e_zoo, tmp_path)}
    want = text(tiny).evaluate(1)
    for b in (1, 4):
        r = recs[("bert-tiny", b)]
        assert r["status"] == "ok" and r["accuracy"] == pytest.approx(want.correct / want.total)
        assert r["accuracy_n"] == 23 and r["params"] > 0 and r["energy_method"] == "fake"
        assert r["workload"]["model"]["id"] == str(tiny.bert)
        ghost = recs[("ghost", b)]
        assert ghost["status"] == "skipped" and "model 'nobody-here/no-such-model' revision 'v1'" in ghost["error"]
        assert "--download" in ghost["error"] and ghost["accuracy"] is None


def test_e2e_vision_ladder(e2e_zoo, tmp_path, tiny):
    recs = profile("tiny-vision", e2e_zoo, tmp_path)
    want = vision(tiny).evaluate(2)
    assert {r["precision"] for r in recs} == {"fp32", "bf16"}
    for r in recs:
        assert r["status"] == "ok" and r["accuracy_n"] == 15 and r["items_per_s"] > 0
        if r["precision"] == "fp32":
            assert r["accuracy"] == pytest.approx(want.correct / want.total)
        assert r["workload"]["dataset"]["label_mapping"] == "by name (model id2label)"


def test_e2e_lm_ladders_record_perplexity_accuracy_and_request_shape(e2e_zoo, tmp_path, tiny):
    want = lm(tiny, generation={"prompt_tokens": 8, "output_tokens": 4}).evaluate(1)
    recs = profile("tiny-lm", e2e_zoo, tmp_path)
    assert len(recs) == 2
    for r in recs:
        assert r["status"] == "ok" and r["accuracy"] is None
        assert r["quality_metric"] == "perplexity"
        assert r["perplexity"] == pytest.approx(want.extra["perplexity"], rel=1e-4)
        assert r["quality"]["tokens_scored"] == want.extra["tokens_scored"]
        assert (r["prompt_tokens"], r["output_tokens"]) == (8, 4)
        assert r["ttft_mean_ms"] is not None and 0 < r["ttft_mean_ms"] < r["latency_mean_ms"]
        assert r["tpot_ms"] is not None and r["tpot_ms"] > 0
        assert r["energy_j_per_output_token"] == pytest.approx(r["energy_j_per_item"] / 4)
    (mc,) = profile("tiny-lm-mc", e2e_zoo, tmp_path / "mc")
    want = lm(tiny, dataset={"path": str(tiny.lm_mc), "format": "multiple-choice"}).evaluate(2)
    assert mc["status"] == "ok" and mc["quality_metric"] == "accuracy" and mc["accuracy_n"] == 7
    assert mc["accuracy"] == pytest.approx(want.correct / want.total)


def test_arc_style_choices_map_the_answer_through_their_labels(tmp_path):
    from greenbench.workloads.hf import lm as hf_lm

    f = tmp_path / "arc.jsonl"
    rows = [  # numeric labels are 1-based in ARC: "2" is the second choice, not index 2
        {"question": "q1", "choices": {"text": ["a", "b", "c", "d"], "label": ["1", "2", "3", "4"]}, "answerKey": "2"},
        {"question": "q2", "choices": {"text": ["a", "b", "c"], "label": ["A", "B", "C"]}, "answerKey": "C"},
    ]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ds = HFDataset(path=str(f), format="multiple-choice", answer_column="answerKey")
    items, _ = hf_lm.multiple_choice_items(ds, allow_download=False)
    assert [(q, answer) for q, _, answer in items] == [("q1", 1), ("q2", 2)]


def test_class_labels_with_repeated_names_map_by_index_when_the_classes_are_the_models():
    from greenbench.workloads.hf import labels as hl

    # ImageNet-1k names class 134 and class 517 both "crane": by name, 517 would become 134
    id2label = {0: "crane", 1: "dog", 2: "crane"}
    ids, how = hl.map_class_labels([2, 0, 1], ["crane", "dog", "crane"], id2label, 3, "imagenet")
    assert ids == [2, 0, 1] and how.startswith("by index")
    notes = []
    ids, how = hl.map_class_labels([1, 0], ["Crane", "crane"], {0: "crane", 1: "heron"}, 2, "x", notes.append)
    assert ids == [1, 0] and "repeat" in notes[0]
    # different order, unique names: mapped by name
    ids, how = hl.map_class_labels([0, 1], ["dog", "crane"], {0: "crane", 1: "dog"}, 2, "x")
    assert ids == [1, 0] and how.startswith("by name")


def test_e2e_trust_remote_code_is_a_warning_at_run_time(tiny, tmp_path):
    from typer.testing import CliRunner

    from greenbench.cli import app

    zoo = tmp_path / "zoo.yaml"
    zoo.write_text(f"""
version: 1
ladders:
  custom:
    workload: hf-text
    dataset: {{path: "{tiny.text_csv}"}}
    models: [{{name: custom, id: "{tiny.custom_code}"}}]
    batch_sizes: [1]
    precisions: [fp32]
    devices: [cpu]
    trust_remote_code: true
""")
    res = CliRunner().invoke(app, ["profile", "custom", "--zoo", str(zoo), *FAST, "--out", str(tmp_path / "out"),
                                   "--cache-dir", str(tmp_path / "cache")])
    assert res.exit_code == 3, res.output  # the fixture's code raises: the point fails, said in one line
    warning = next(line for line in res.output.splitlines() if "trust_remote_code is on" in line)
    assert warning.startswith("warning:") and "'custom'" in warning and str(tiny.custom_code.resolve()) in res.output
