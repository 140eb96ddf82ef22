"""Broken input files, each answered with one line naming the file (library and CLI): the zoo, the
users file, the demand and trace CSVs, through ``greenbench.safeload``'s bounds on size, bytes,
nesting and YAML aliases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from synthetic_profiles import make_profile
from typer.testing import CliRunner

from greenbench import profile as prof
from greenbench import safeload
from greenbench.carbon.trace import TraceError, load_trace
from greenbench.cli import app
from greenbench.errors import GreenbenchError
from greenbench.measure import zoo
from greenbench.price import slots as slotsmod
from greenbench.price.users import UsersError, load_users, parse_users

runner = CliRunner()

# "Billion laughs": 9 levels of 9 aliases each, a few hundred bytes that expand to 9^9 strings.
BOMB = "\n".join(
    ["version: 1", 'l0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"l{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    + ["ladders:", "  boom:", "    workload: embedded", "    models: *a9", "    batch_sizes: [1]", ""])
USERS = """version: 1
user_types:
  - {name: a, share: 1.0, accuracy_weight: 0.5, consciousness: 0.1, value_per_request: 0.001, requests_per_period: 100}
"""


def bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, what its one line must say)."""
    files = {
        "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8 text (byte 0x89 at offset 0)"),
        "latin-1": ("version: 1\n# caf\xe9\n".encode("latin-1"), "not UTF-8 text (byte 0xe9 at offset 16)"),
        "nul": (b"version: 1\n\x00\n", "not text (a NUL byte at offset 11)"),
        "deep": (("a: " + "[" * 20000 + "]" * 20000 + "\n").encode(), "nested deeper than 64 levels"),
        "deep-block": ("".join(" " * i + "k:\n" for i in range(200)).encode(), "nested deeper than 64 levels"),
        "bomb": (BOMB.encode(), "YAML aliases expand to more than 100,000 values"),
        "recursive": (b"a: &x [*x]\n", "alias *x refers to itself"),
        "huge-int": (("a: " + "9" * 5000 + "\n").encode(), "a value cannot be read"),
        "bad-date": (b"a: 2024-13-01\n", "a value cannot be read (month must be in 1..12)"),
    }
    out = {}
    for name, (data, needle) in files.items():
        p = tmp_path / f"{name}.yaml"
        p.write_bytes(data)
        out[name] = (p, needle)
    return out


def one_line(e: BaseException, path: Path, needle: str) -> None:
    msg = str(e)
    assert isinstance(e, GreenbenchError)
    assert "\n" not in msg and str(path) in msg and needle in msg, msg


# ------------------------------------------------------------------------------- safeload itself


def test_read_text_refuses_a_large_file_before_reading_it(tmp_path, monkeypatch):
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.truncate(50 * 2**20)  # 50 MiB, sparse
    reads: list[int] = []
    real_open = open

    def spy(path, mode="r", *args, **kwargs):
        fh = real_open(path, mode, *args, **kwargs)
        reads.append(1)
        return fh

    monkeypatch.setattr("builtins.open", spy)
    with pytest.raises(safeload.InputError) as e:
        safeload.read_text(big, what="model zoo", max_bytes=2**20)
    assert reads == []  # refused on its size alone
    assert str(e.value) == f"{big}: 50 MiB is more than the 1 MiB a model zoo may hold; is it the right file?"


def test_read_text_bounds_what_it_reads_from_a_stream(tmp_path):
    # /dev/zero has no size: it is read up to the bound, and refused there
    with pytest.raises(safeload.InputError, match=r"/dev/zero: more than the 1 KiB a trace may hold"):
        safeload.read_text("/dev/zero", what="trace", max_bytes=1024)


@pytest.mark.parametrize("make, needle", [
    (lambda p: p, "cannot read users file: no such file"),
    (lambda p: (p.mkdir(), p)[1], "is a folder, not a users file"),
])
def test_read_text_missing_file_and_folder(tmp_path, make, needle):
    path = make(tmp_path / "x.yaml")
    with pytest.raises(safeload.InputError) as e:
        safeload.read_text(path, what="users file", max_bytes=1000)
    one_line(e.value, path, needle)


def test_read_text_drops_a_byte_order_mark_and_keeps_text(tmp_path):
    p = tmp_path / "bom.csv"
    p.write_bytes(b"\xef\xbb\xbfhour,weight\n")
    assert safeload.read_text(p, what="demand profile", max_bytes=100) == "hour,weight\n"
    p.write_bytes(b"\xef\xbb\xbfhour,\xff")  # offsets are the file's, the mark counted
    with pytest.raises(safeload.InputError, match=r"byte 0xff at offset 8\)"):
        safeload.read_text(p, what="demand profile", max_bytes=100)


def test_load_yaml_bounds_and_plain_yaml():
    assert safeload.load_yaml("a: &x {k: 1}\nb: *x\nc: {<<: *x, j: 2}\n", "ok.yaml") == {
        "a": {"k": 1}, "b": {"k": 1}, "c": {"k": 1, "j": 2}}
    assert safeload.load_yaml("", "empty.yaml") is None
    nested_64 = "[" * 64 + "]" * 64
    assert safeload.load_yaml(nested_64, "d.yaml") is not None
    with pytest.raises(safeload.InputError, match=r"d\.yaml: nested deeper than 64 levels"):
        safeload.load_yaml("[" + nested_64 + "]", "d.yaml")
    with pytest.raises(safeload.InputError, match="more than 100 YAML aliases"):
        safeload.load_yaml("a: &x 1\nb: [" + ", ".join(["*x"] * 101) + "]\n", "many.yaml")
    nested_63 = "[" * 63 + "]" * 63  # under the top mapping: 64 levels, the most allowed
    assert safeload.load_yaml("a: &x " + nested_63 + "\n", "alias-depth.yaml") is not None
    with pytest.raises(safeload.InputError, match="nested deeper than 64 levels once alias"):
        safeload.load_yaml("a: &x " + nested_63 + "\nb: [*x]\n", "alias-depth.yaml")
    with pytest.raises(safeload.InputError, match="key 'a' appears twice in one mapping at line 3"):
        safeload.load_yaml("a: 1\nb: 2\na: 3\n", "dup.yaml")
    with pytest.raises(safeload.InputError, match="expected a single document"):
        safeload.load_yaml("a: 1\n---\nb: 2\n", "two.yaml")
    with pytest.raises(safeload.InputError, match="could not determine a constructor"):
        safeload.load_yaml("!!python/object/apply:os.system ['true']", "evil.yaml")


def test_load_yaml_bounds_the_alias_bomb_at_once():
    with pytest.raises(safeload.InputError, match=r"bomb\.yaml: YAML aliases expand to more than 100,000 values"):
        safeload.load_yaml(BOMB, "bomb.yaml")
    assert len(BOMB.encode()) < 700


def test_load_json_bounds_nesting_and_says_where_it_breaks():
    with pytest.raises(safeload.InputError) as e:
        safeload.load_json("[" * 100_000 + "]" * 100_000, "deep.json")
    assert str(e.value) == "deep.json: nested deeper than 64 levels"
    with pytest.raises(safeload.InputError, match="nested deeper than 10 levels"):
        safeload.load_json(json.dumps({"a": [[[[[[[[[[1]]]]]]]]]]}), "d.json", max_depth=10)
    assert safeload.load_json('{"a": [1, {"b": null}]}', "ok.json") == {"a": [1, {"b": None}]}
    with pytest.raises(safeload.InputError, match=r"bad.json: not JSON \(line 2, column 1"):
        safeload.load_json('{"a":\n', "bad.json")
    with pytest.raises(safeload.InputError, match=r"big\.json: not JSON that can be read: Exceeds the limit"):
        safeload.load_json("9" * 5000, "big.json")


def test_load_json_refuses_a_key_given_twice_as_yaml_does():
    with pytest.raises(safeload.InputError) as e:
        safeload.load_json('{"a": 1, "b": {"c": 1, "c": 2}}', "dup.json")
    assert str(e.value) == "dup.json: key 'c' appears twice in one object; keep one"
    with pytest.raises(safeload.InputError, match="key 'a' appears twice"):
        safeload.load_yaml("a: 1\na: 2\n", "dup.yaml")
    assert safeload.load_json('[{"a": 1}, {"a": 2}]', "ok.json") == [{"a": 1}, {"a": 2}]  # one key per object


def test_a_profile_with_a_key_twice_is_refused_by_every_command(tmp_path):
    text = Path(__file__).resolve().parents[1].joinpath("profiles", "mnist1d-cpu-2core.json").read_text()
    dup = tmp_path / "dup.json"
    dup.write_text(text.replace('"model": "linear",', '"model": "linear", "model": "cnn-64",', 1))
    with pytest.raises(prof.ProfileError, match=rf"^{dup}: key 'model' appears twice in one object; keep one$"):
        prof.load(dup)
    for args in (["fit", str(dup), "--out", str(tmp_path / "o")], ["compare", str(dup), str(dup)],
                 ["price", str(dup)]):
        assert "key 'model' appears twice" in cli_line(args)


# ---------------------------------------------------------------------------- each kind of file


@pytest.mark.parametrize("case", ["binary", "latin-1", "nul", "deep", "deep-block", "bomb", "recursive",
                                  "huge-int", "bad-date"])
def test_bad_zoo_and_users_files_are_one_line(tmp_path, case):
    path, needle = bad_files(tmp_path)[case]
    with pytest.raises(zoo.ZooError) as e:
        zoo.load_zoo(path)
    one_line(e.value, path, needle)
    with pytest.raises(UsersError) as e2:
        load_users(path)
    one_line(e2.value, path, needle)


def test_huge_zoo_and_users_files_are_refused_by_size(tmp_path):
    path = tmp_path / "huge.yaml"
    with path.open("wb") as f:
        f.truncate(50 * 2**20)
    with pytest.raises(zoo.ZooError) as e:
        zoo.load_zoo(path)
    one_line(e.value, path, "50 MiB is more than the 4 MiB a model zoo may hold")
    with pytest.raises(UsersError) as e2:
        load_users(path)
    one_line(e2.value, path, "50 MiB is more than the 32 MiB a users file may hold")


def user_type(i: int, n: int) -> dict[str, Any]:
    return {"name": f"t{i}", "share": 1 / n, "accuracy_weight": 0.5, "consciousness": 0.1,
            "value_per_request": 0.001, "requests_per_period": 1000}


def test_users_checks_are_linear_in_the_number_of_types(tmp_path):
    """100,000 user types validated and checked (the duplicate check was quadratic: this never
    finished), a name repeated at the very end still found; and 2,000 types through the whole path,
    file and YAML included (100,000 types of YAML take PyYAML itself some 15 s here)."""
    n = 100_000
    doc: dict[str, Any] = {"version": 1, "user_types": [user_type(i, n) for i in range(n)]}
    users = parse_users(doc, "many.yaml")
    assert len(users) == n and set(users.names) == {f"t{i}" for i in range(n)}
    assert abs(users.weight.sum() - 1) < 1e-9
    doc["user_types"][-1]["name"] = "t7"
    with pytest.raises(UsersError, match=r"many\.yaml: user type 't7' appears more than once"):
        parse_users(doc, "many.yaml")
    path = tmp_path / "users.yaml"
    path.write_text("version: 1\nuser_types:\n" + "".join(
        "  - {" + ", ".join(f"{k}: {v!r}" if k != "name" else f"{k}: {v}" for k, v in user_type(i, 2000).items())
        + "}\n" for i in range(2000)))
    assert len(load_users(path)) == 2000


def test_bad_demand_csvs_are_one_line(tmp_path):
    cases = {
        "bin.csv": (b"hour,weight\n\xff\xfe\n", "not UTF-8 text (byte 0xff at offset 12)"),
        "nul.csv": (b"hour,weight\n0,\x001\n", "not text (a NUL byte at offset 14)"),
        "field.csv": (b'hour,weight\n0,"' + b"1" * 200_000 + b'"\n', "not a CSV file that can be read"),
    }
    for name, (data, needle) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(slotsmod.SlotError) as e:
            slotsmod.read_demand_csv(str(path))
        one_line(e.value, path, needle)
    big = tmp_path / "big.csv"
    with big.open("wb") as f:
        f.truncate(5 * 2**20)
    with pytest.raises(slotsmod.SlotError) as e:
        slotsmod.read_demand_csv(str(big))
    one_line(e.value, big, "5 MiB is more than the 1 MiB a demand profile may hold")


def test_bad_trace_csvs_are_one_line(tmp_path):
    head = b"time,intensity_gco2e_per_kwh\n"
    cases = {
        "bin.csv": (head + b"2023-03-01T00:00:00Z,\xff\n", "not UTF-8 text (byte 0xff at offset 50)"),
        "nul.csv": (head + b"\x00\n", "not text (a NUL byte at offset 29)"),
        "field.csv": (head + b'"' + b"1" * 200_000 + b'",1\n', "not CSV that can be read"),
    }
    for name, (data, needle) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(TraceError) as e:
            load_trace(str(path))
        one_line(e.value, path, needle)
    wide = tmp_path / "wide.csv"  # 100,000 columns and none a time: a short line, not 789 KB
    wide.write_text(",".join(f"c{i}" for i in range(100_000)) + "\n" + ",".join(["1"] * 100_000) + "\n")
    with pytest.raises(TraceError) as e:
        load_trace(str(wide))
    one_line(e.value, wide, "no time column (columns: c0, c1, c2, c3, c4, c5, c6, c7, c8, c9 and 99,990 more)")
    assert len(str(e.value)) < 300
    escaped = tmp_path / "escaped.csv"
    escaped.write_text("a\x1b[31m,b\n1,2\n")
    with pytest.raises(TraceError) as e:
        load_trace(str(escaped))
    assert "\x1b" not in str(e.value) and "a\\x1b[31m, b" in str(e.value)
    big = tmp_path / "big.csv"
    with big.open("wb") as f:
        f.truncate(100 * 2**20)
    with pytest.raises(TraceError) as e:
        load_trace(str(big))
    one_line(e.value, big, "100 MiB is more than the 64 MiB a carbon trace may hold")


# ------------------------------------------------------------------------------- through the CLI


def cli_line(args: list[str]) -> str:
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1, res.output
    return lines[0]


@pytest.mark.parametrize("case", ["binary", "deep", "bomb"])
def test_cli_answers_bad_zoo_and_users_files_in_one_line(tmp_path, case):
    path, needle = bad_files(tmp_path)[case]
    assert needle in cli_line(["zoo", "--zoo", str(path)])
    profile = tmp_path / "p.json"
    prof.save(make_profile(None), profile)
    assert needle in cli_line(["price", str(profile), "--trace", "DE", "--users", str(path)])


def test_cli_zoo_lists_the_shipped_ladders_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(zoo.ZOO_ENV, raising=False)
    res = runner.invoke(app, ["zoo", "sst2-bert"])
    assert res.exit_code == 0, res.output
    assert "distilbert-66m" in res.stdout
    line = cli_line(["zoo", "sst2-bret"])
    assert "unknown ladder 'sst2-bret' (did you mean 'sst2-bert'?" in line


def test_cli_price_explains_a_missing_reduced_point(tmp_path):
    """One model at two batch sizes: H (b8, as accurate and cheaper) leaves nothing to reduce to."""
    profile = tmp_path / "p.json"
    prof.save(make_profile(None, models={"small": 0.8}, batches=(1, 8)), profile)
    (tmp_path / "users.yaml").write_text(USERS)
    line = cli_line(["price", str(profile), "--trace", "DE", "--users", str(tmp_path / "users.yaml")])
    assert "no reduced point R below H = small b8 fp32 cpu" in line
    assert "small b1 fp32 cpu uses no less energy than H" in line
    assert "--premium 'small b1 fp32 cpu'" in line
    assert "--accuracy-floor" not in line and "--latency-ceiling-ms" not in line
