from pathlib import Path

import pytest

from greenbench.measure import zoo as zoo


def test_builtin_default_ladder_is_valid():
    lad = zoo.get_ladder(None, path=None)
    assert lad.name == "mnist1d" and lad.workload == "embedded"
    assert len(lad.models) >= 4
    assert lad.source == "built-in"


def test_repository_zoo_file_is_valid():
    path = Path(__file__).parent.parent / "model_zoo.yaml"
    ladders = zoo.load_zoo(path)
    assert "mnist1d" in ladders and len(ladders) > 1


GOOD = """
version: 1
ladders:
  tiny:
    workload: embedded
    models: [{name: a, arch: linear}, {name: b, arch: cnn, width: 4}]
    batch_sizes: [1, 8]
"""


def write(tmp_path, text):
    p = tmp_path / "zoo.yaml"
    p.write_text(text)
    return p


def test_user_ladder_loads_with_defaults(tmp_path):
    lad = zoo.get_ladder("tiny", write(tmp_path, GOOD))
    assert lad.precisions == ("fp32",) and lad.devices == ("auto",)
    assert lad.model("b").width == 4
    assert lad.trust_remote_code is False


@pytest.mark.parametrize(
    "text,expected",
    [
        ("ladders: [unclosed", "not valid YAML at line 1"),
        ("just a string", "expected a mapping with a 'ladders' key"),
        (GOOD.replace("batch_sizes: [1, 8]", "batch_sizes: [1, 8]\n    batchsize: 3"),
         "ladder 'tiny': batchsize: Extra inputs"),
        (GOOD.replace("[1, 8]", "[0, 8]"), "ladder 'tiny': batch_sizes"),
        (GOOD.replace("[1, 8]", "[8, 8]"), "must not repeat"),
        (GOOD.replace("arch: linear", "arch: transformer"), "ladder 'tiny': models.0.arch"),
        (GOOD.replace("width: 4", "width: wide"), "models.1.width"),
        (GOOD.replace("workload: embedded", "workload: tpu-magic"), "ladder 'tiny': workload"),
        (GOOD.replace("name: b,", "name: a,"), "model names must be unique"),
        (GOOD + "    devices: [gpu0]\n", "unknown device 'gpu0'"),
        (GOOD.replace("version: 1", "version: 7"), "version 7 is not supported"),
        (GOOD.replace("version: 1", "version: 1\nextra: 1"), "unknown top-level key 'extra'"),
        (GOOD.replace("tiny:", "mnist1d:"), "is built in"),
    ],
)
def test_bad_zoo_gives_one_line_naming_file_ladder_and_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(zoo.ZooError) as e:
        zoo.get_ladder("tiny", path)
    msg = str(e.value)
    assert expected in msg
    assert "\n" not in msg
    assert str(path) in msg


def test_unknown_ladder_and_model(tmp_path):
    path = write(tmp_path, GOOD)
    with pytest.raises(zoo.ZooError, match=r"unknown ladder 'nope' .*tiny"):
        zoo.get_ladder("nope", path)
    with pytest.raises(zoo.ZooError, match="has no model 'c'"):
        zoo.get_ladder("tiny", path).model("c")


def test_missing_zoo_file(tmp_path):
    with pytest.raises(zoo.ZooError, match="cannot read the model zoo"):
        zoo.load_zoo(tmp_path / "absent.yaml")


def test_yaml_is_loaded_safely(tmp_path):
    evil = "!!python/object/apply:os.system ['echo pwned']"
    with pytest.raises(zoo.ZooError, match="not valid YAML"):
        zoo.load_zoo(write(tmp_path, evil))


def test_hub_ladders_in_the_repository_zoo_are_valid_and_offline_safe():
    path = Path(__file__).parent.parent / "model_zoo.yaml"
    ladders = zoo.load_zoo(path)
    for name in ("sst2-bert", "imagenet-resnet-vit", "pythia-wikitext", "qwen-arc", "gpu-check-vision",
                 "gpu-check-gpt2"):
        lad = ladders[name]
        assert lad.workload.startswith("hf-") and lad.trust_remote_code is False
        for m in lad.models:
            assert m.revision or m.weights == "random"  # hub models say which revision they mean
    assert ladders["pythia-wikitext"].model("pythia-1b").revision == "step143000"
    assert ladders["gpu-check-gpt2"].generation.output_tokens == 64


HF_LADDER = """
version: 1
ladders:
  local-text:
    workload: hf-text
    dataset: {path: data/sst2.csv, text_column: sentence}
    models:
      - {name: mine, id: ./models/tiny-bert}
      - {name: hub, id: bert-base-uncased, revision: main}
    batch_sizes: [1]
"""


def test_relative_paths_are_taken_from_the_zoo_file_and_hub_ids_are_left_alone(tmp_path):
    lad = zoo.get_ladder("local-text", write(tmp_path, HF_LADDER))
    mine = lad.builder_kwargs("mine")  # the zoo's validated entries, paths resolved
    assert mine["model"].id == str(tmp_path / "models/tiny-bert")
    assert mine["dataset"].path == str(tmp_path / "data/sst2.csv")
    assert lad.builder_kwargs("hub")["model"].id == "bert-base-uncased"
    assert mine["max_length"] == 128 and mine["trust_remote_code"] is False
    assert lad.model("mine").id == "./models/tiny-bert"  # the ladder itself (and so model_spec) keeps what was written


@pytest.mark.parametrize("body,expected", [
    ("dataset: {path: a.csv, id: glue}", "exactly one of 'path'"),
    ("dataset: {synthetic: true}\n    generation: {output_tokens: 1}", "generation.output_tokens"),
    ("dataset: {synthetic: true}\n    models: [{name: m}]", "needs an 'id'"),
])
def test_bad_hub_ladders_give_one_line(tmp_path, body, expected):
    text = f"""
version: 1
ladders:
  bad:
    workload: hf-lm
    {body}
    batch_sizes: [1]
"""
    if "models:" not in body:
        text += "    models: [{name: m, id: gpt2}]\n"
    with pytest.raises(zoo.ZooError) as e:
        zoo.get_ladder("bad", write(tmp_path, text))
    assert expected in str(e.value) and "\n" not in str(e.value)
