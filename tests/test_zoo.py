from pathlib import Path

import pytest

from greenbench import zoo


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
        (GOOD.replace("batch_sizes: [1, 8]", "batch_sizes: [1, 8]\n    batchsize: 3"), "ladder 'tiny': batchsize: Extra inputs"),
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
    with pytest.raises(zoo.ZooError, match="unknown ladder 'nope' .*tiny"):
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
