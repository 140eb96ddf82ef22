from pathlib import Path

import pytest

from greenbench.measure import zoo as zoo

SHIPPED = ("mnist1d", "mnist1d-precisions", "sst2-bert", "imagenet-resnet-vit", "pythia-wikitext", "qwen-arc",
           "gpu-check-vision", "gpu-check-gpt2", "qwen-served", "llama-8b-max-num-seqs")
REPO_ZOO = Path(__file__).parent.parent / "model_zoo.yaml"


def test_builtin_default_ladder_is_valid():
    lad = zoo.get_ladder(None, path=None)
    assert lad.name == "mnist1d" and lad.workload == "embedded"
    assert len(lad.models) >= 4
    assert lad.source == "built-in"


def test_repository_zoo_file_is_a_valid_example_that_adds_to_the_shipped_ladders():
    own = zoo.parse_zoo(REPO_ZOO.read_text("utf-8"), str(REPO_ZOO))
    assert list(own) == ["my-ladder"]  # the example, not a second copy of the shipped ladders
    assert not set(own) & set(zoo.builtin_ladders())
    ladders = zoo.load_zoo(REPO_ZOO)
    assert set(SHIPPED) | {"my-ladder"} == set(ladders)
    assert ladders["my-ladder"].source == str(REPO_ZOO) and ladders["sst2-bert"].source == zoo.BUILTIN_SOURCE


def test_shipped_ladders_are_listed_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no model_zoo.yaml here
    monkeypatch.delenv(zoo.ZOO_ENV, raising=False)
    assert zoo.default_zoo_path() is None
    assert tuple(zoo.load_zoo()) == SHIPPED
    assert zoo.get_ladder("sst2-bert").workload == "hf-text"


def test_user_zoo_from_the_folder_or_the_environment_adds_to_the_shipped_ladders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(zoo.ZOO_ENV, raising=False)
    (tmp_path / "model_zoo.yaml").write_text(GOOD)
    assert set(zoo.load_zoo()) == {*SHIPPED, "tiny"}
    other = tmp_path / "elsewhere.yaml"
    other.write_text(GOOD.replace("tiny:", "tiny2:"))
    monkeypatch.setenv(zoo.ZOO_ENV, str(other))
    assert set(zoo.load_zoo()) == {*SHIPPED, "tiny2"}


def test_a_user_ladder_with_a_shipped_name_replaces_it_with_a_note(tmp_path):
    notes: list[str] = []
    path = write(tmp_path, GOOD.replace("tiny:", "mnist1d:"))
    lad = zoo.get_ladder("mnist1d", path, on_note=notes.append)
    assert lad.source == str(path) and lad.model_names() == "a, b"
    assert notes == [f"{path}: ladder 'mnist1d' replaces the built-in ladder of that name"]
    # a copy identical to the shipped one replaces it silently: nothing changes
    notes.clear()
    same = (Path(zoo.__file__).parent.parent / "data" / "builtin_zoo.yaml").read_text("utf-8")
    lad = zoo.get_ladder("sst2-bert", write(tmp_path, same), on_note=notes.append)
    assert notes == [] and lad.source == str(tmp_path / "zoo.yaml")


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
        ("ladders: [unclosed", "not valid YAML at line 2, column 1: did not find expected ',' or ']' "
                                "(while parsing a flow sequence started at line 1, column 10)"),
        ("just a string", "expected a mapping with a 'ladders' key"),
        (GOOD.replace("batch_sizes: [1, 8]", "batch_sizes: [1, 8]\n    batchsize: 3"),
         "ladder 'tiny': unknown key 'batchsize' (did you mean 'batch_sizes'?)"),
        (GOOD.replace("width: 4", "widht: 4"), "ladder 'tiny': models.1: unknown key 'widht' (did you mean 'width'?)"),
        (GOOD.replace("batch_sizes: [1, 8]", "batch_sizes: [1, 8]\n    train: {step: 5}"),
         "ladder 'tiny': train: unknown key 'step' (did you mean 'steps'?)"),
        (GOOD.replace("[1, 8]", "[0, 8]"), "ladder 'tiny': batch_sizes"),
        (GOOD.replace("[1, 8]", "[8, 8]"), "must not repeat"),
        (GOOD.replace("arch: linear", "arch: transformer"), "ladder 'tiny': models.0.arch"),
        (GOOD.replace("width: 4", "width: wide"), "models.1.width"),
        (GOOD.replace("workload: embedded", "workload: tpu-magic"), "ladder 'tiny': workload"),
        (GOOD.replace("workload: embedded", "workload: embeded"), "(did you mean 'embedded'?)"),
        (GOOD.replace("width: 4", "width: 0"), "models.1.width: Input should be greater than 0 (got 0)"),
        (GOOD.replace("name: b,", "name: a,"), "model names must be unique"),
        (GOOD + "    devices: [gpu0]\n", "unknown device 'gpu0'"),
        (GOOD.replace("version: 1", "version: 7"), "version 7 is not supported"),
        (GOOD.replace("version: 1", "version: 1\nextra: 1"), "unknown top-level key 'extra'"),
        (GOOD.replace("version: 1", "version: 1\nladder: 1"),
         "unknown top-level key 'ladder' (did you mean 'ladders'?)"),
        (GOOD + GOOD.split("ladders:\n")[1], "key 'tiny' appears twice"),
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


def test_unknown_names_suggest_the_one_meant(tmp_path):
    with pytest.raises(zoo.ZooError) as e:
        zoo.get_ladder("sst2-bret", write(tmp_path, GOOD))
    assert str(e.value) == "unknown ladder 'sst2-bret' (did you mean 'sst2-bert'?; `greenbench zoo` lists them)"
    with pytest.raises(zoo.ZooError, match=r"has no model 'cnn16' \(did you mean 'cnn-16'\?; has: linear"):
        zoo.get_ladder("mnist1d").model("cnn16")


BAD_TWO = """
version: 1
ladders:
  first:
    workload: embedded
    models: [{name: a, arch: linear, widht: 3}, {name: b, arch: cnn, width: 0}]
    batch_size: [1]
  fine:
    workload: embedded
    models: [{name: a, arch: linear}]
    batch_sizes: [1]
  second:
    workload: hf-text
    dataset: {pathh: x.csv}
    models: [{name: m, id: x}]
    batch_sizes: [1]
"""


def test_every_problem_of_every_ladder_is_reported_at_once(tmp_path):
    path = write(tmp_path, BAD_TWO)
    with pytest.raises(zoo.ZooError) as e:
        zoo.load_zoo(path)
    lines = str(e.value).splitlines()
    assert lines[0] == f"{path}: 5 problems in 2 ladder(s):"
    body = [line.strip() for line in lines[1:]]
    assert body == [
        f"{path}: ladder 'first': batch_sizes: missing (required)",
        f"{path}: ladder 'first': models.0: unknown key 'widht' (did you mean 'width'?)",
        f"{path}: ladder 'first': models.1.width: Input should be greater than 0 (got 0)",
        f"{path}: ladder 'first': unknown key 'batch_size' (did you mean 'batch_sizes'?)",
        f"{path}: ladder 'second': dataset: unknown key 'pathh' (did you mean 'path'?)",
    ]
    assert "more" not in str(e.value)


@pytest.mark.parametrize("name", ["../../x", "/abs/x", "a/b", "a\\\\b", ".hidden", "..", "x..y"])
def test_ladder_names_must_be_safe_file_stems(tmp_path, name):
    path = write(tmp_path, GOOD.replace("tiny:", f"{name!r}:"))
    with pytest.raises(zoo.ZooError, match="a ladder name is a file stem") as e:
        zoo.load_zoo(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_non_string_ladder_names_are_refused(tmp_path):
    with pytest.raises(zoo.ZooError, match="is not text; quote it"):
        zoo.load_zoo(write(tmp_path, GOOD.replace("tiny:", "123:")))


def test_missing_zoo_file(tmp_path):
    with pytest.raises(zoo.ZooError, match=r"absent\.yaml: cannot read model zoo: no such file"):
        zoo.load_zoo(tmp_path / "absent.yaml")


def test_yaml_is_loaded_safely(tmp_path):
    evil = "!!python/object/apply:os.system ['echo pwned']"
    with pytest.raises(zoo.ZooError, match="not valid YAML"):
        zoo.load_zoo(write(tmp_path, evil))


def test_shipped_hub_ladders_are_valid_and_offline_safe():
    ladders = zoo.builtin_ladders()
    assert tuple(ladders) == SHIPPED
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


MISSPELT = """
version: 1
ladders:
  typo:
    workload: embeded
    models: [{name: a, arch: linear}, {name: a, arch: cnn, widht: 3}]
    batch_size: [1]
    precisions: [fp33]
  unknown:
    workload: tpu
    models: [{name: a, arch: linear}]
    batch_sizes: [1]
    precision: [fp32]
    devices: [gpu0]
  twice:
    workload: embedded
    models: [{name: a, arch: linear}, {name: a, arch: cnn, width: 0}]
    batch_sizes: [1]
"""


def test_a_misspelt_workload_does_not_hide_the_other_keys_nor_a_duplicate_the_other_errors(tmp_path):
    path = write(tmp_path, MISSPELT)
    with pytest.raises(zoo.ZooError) as e:
        zoo.load_zoo(path)
    lines = [line.strip() for line in str(e.value).splitlines()]
    assert lines[0] == f"{path}: 11 problems in 3 ladder(s):"
    assert lines[1:] == [
        # checked as the workload meant: fixing the workload reveals nothing new
        f"{path}: ladder 'typo': workload: 'embeded' is not one of embedded, hf-text, hf-vision, hf-lm, served-lm "
        "(did you mean 'embedded'?); the other keys are checked as embedded's",
        f"{path}: ladder 'typo': precisions: precision 'fp33': choose one of fp32, bf16, fp16, int8",
        f"{path}: ladder 'typo': batch_sizes: missing (required)",
        f"{path}: ladder 'typo': models.1: unknown key 'widht' (did you mean 'width'?)",
        f"{path}: ladder 'typo': unknown key 'batch_size' (did you mean 'batch_sizes'?)",
        f"{path}: ladder 'typo': models: the name 'a' is given 2 times; model names must be unique within a ladder",
        # like no workload: the keys every workload shares, and the keys none has
        f"{path}: ladder 'unknown': workload: 'tpu' is not one of embedded, hf-text, hf-vision, hf-lm, served-lm",
        f"{path}: ladder 'unknown': unknown key 'precision' (did you mean 'precisions'?)",
        f"{path}: ladder 'unknown': devices: unknown device 'gpu0' (use auto, cpu, cuda:N, a GPU UUID, or GPUs "
        "joined by '+' for a tensor-parallel server)",
        # a duplicate beside another model's error, not after it is fixed
        f"{path}: ladder 'twice': models.1.width: Input should be greater than 0 (got 0)",
        f"{path}: ladder 'twice': models: the name 'a' is given 2 times; model names must be unique within a ladder",
    ]


def test_a_duplicate_model_alone_is_said_once(tmp_path):
    with pytest.raises(zoo.ZooError) as e:
        zoo.get_ladder("tiny", write(tmp_path, GOOD.replace("name: b,", "name: a,")))
    assert str(e.value).count("unique") == 1 and "the name 'a' is given 2 times" in str(e.value)
