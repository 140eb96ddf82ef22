"""greenbench compare on the command line: exit codes, streams, exports before a non-zero exit."""

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from synthetic_profiles import make_profile, scaled
from typer.testing import CliRunner

from greenbench import profile as prof
from greenbench.cli import app

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "profiles" / "mnist1d-cpu-2core.json"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, ["compare", *map(str, args)])


@pytest.fixture
def pair(tmp_path):
    base = make_profile(5, cv=0.05, method="estimate")
    base_path, cand_path = tmp_path / "base.json", tmp_path / "cand.json"
    prof.save(base, base_path)
    prof.save(scaled(base, "large", 64, "energy_j_per_item", 1.10), cand_path)
    return base_path, cand_path


def test_a_profile_compared_with_itself_exits_0():
    res = invoke(REAL, REAL)
    assert res.exit_code == 0, res.output
    for col in ("point / metric", "before", "after", "change", "test", "verdict"):
        assert col in res.stdout
    assert "ratio" not in res.stdout  # a --wide column
    assert "No regression: 45 rows within thresholds" in res.stdout
    # the committed profile's CPU energy is CodeCarbon's estimate: marked on the row and said below
    assert "energy_j_per_item *" in res.stdout and "(estimate) *: energy modelled by CodeCarbon" in res.stdout
    wide = invoke(REAL, REAL, "--wide")
    assert wide.exit_code == 0 and "ratio" in wide.stdout and "1.000" in wide.stdout


def test_real_profile_with_ten_percent_more_energy_on_one_point_exits_1(tmp_path):
    doc = json.loads(REAL.read_text())
    rec = next(r for r in doc["records"] if r["model"] == "cnn-32" and r["batch_size"] == 32)
    rec["energy_j_per_item"] *= 1.10  # the value alone, as a hand edit would
    cand = tmp_path / "cand.json"
    cand.write_text(json.dumps(doc))
    res = invoke(REAL, cand)
    assert res.exit_code == 1, res.output
    assert res.stdout.strip().splitlines()[-1].startswith(
        "1 regression: cnn-32 b32 fp32 cpu energy_j_per_item +10.0%")


SUMMARY = "1 regression: large b64 fp32 cpu energy_j_per_item +10.0%"


@pytest.mark.parametrize("spelling", ["new", "documented first"])
def test_exports_are_written_before_the_regression_exit(pair, tmp_path, spelling):
    base, cand = pair
    md, js, csv, junit = tmp_path / "c.md", tmp_path / "c.json", tmp_path / "c.csv", tmp_path / "c.xml"
    # .ci/run and docs/ci.md wrote "--markdown FILE --json FILE": still files, with a note each
    files = ["--markdown-out", md, "--json-out", js] if spelling == "new" else ["--markdown", md, "--json", js]
    res = invoke(base, cand, *files, "--csv-out", csv, "--junit", junit)
    assert res.exit_code == 1, res.output
    assert res.stdout.strip().splitlines()[-1].startswith(SUMMARY)
    notes = [line for line in res.stderr.splitlines() if "is read as" in line]
    assert len(notes) == (0 if spelling == "new" else 2)
    assert all(f"wrote {p}" in res.stderr for p in (md, js, csv, junit))
    assert SUMMARY in md.read_text()
    doc = json.loads(js.read_text())
    assert doc["summary"]["exit_code"] == 1 and doc["summary"]["line"].startswith(SUMMARY)
    import pandas as pd

    rows = pd.read_csv(csv)
    assert len(rows) == len(doc["rows"]) and list(rows["status"]).count("regression") == 1
    root = ET.parse(junit).getroot()
    assert root.get("failures") == "1"
    (case,) = [c for c in root.iter("testcase") if c.find("failure") is not None]
    assert case.get("name") == "large b64 fp32 cpu energy_j_per_item"


def test_the_older_spelling_is_read_only_where_it_must_be(pair, tmp_path):
    """--markdown before a file that would be a third positional is --markdown-out; before the two
    positionals, or with them already given, it is the stdout flag."""
    base, cand = pair
    res = invoke("--markdown", base, cand)
    assert res.exit_code == 1 and res.stdout.startswith("<!-- greenbench-compare -->")
    assert not (tmp_path / "base.json.md").exists() and "is read as" not in res.stderr
    res = invoke(base, "--json", cand)  # cand is the second positional, not a file to write
    assert res.exit_code == 1 and json.loads(res.stdout)["summary"]["regressions"] == 1


@pytest.mark.parametrize("flag", ["--json", "--markdown", "--csv"])
def test_stdout_formats_print_the_document_alone(pair, flag):
    base, cand = pair
    res = invoke(base, cand, flag)
    assert res.exit_code == 1, res.output
    if flag == "--json":
        assert json.loads(res.stdout)["summary"]["line"].startswith(SUMMARY)
    elif flag == "--markdown":
        assert res.stdout.startswith("<!-- greenbench-compare -->") and "| Point | Metric |" in res.stdout
    else:
        assert res.stdout.splitlines()[0].startswith("ladder,model,batch_size,")
    assert SUMMARY in res.stderr  # the verdict, off stdout
    two = invoke(base, cand, "--json", "--csv")
    assert two.exit_code == 2 and "choose one" in two.stderr


def test_markdown_escapes_html_in_names(tmp_path):
    evil = "<img src=x onerror=alert(1)>"
    base = make_profile(2, cv=0.05, models={"small": 0.8, evil: 0.9})
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    prof.save(base, a)
    prof.save(scaled(base, evil, 64, "energy_j_per_item", 1.5), b)
    res = invoke(a, b, "--markdown")
    assert res.exit_code == 1, res.output
    assert evil not in res.stdout and "<img" not in res.stdout
    assert "&lt;img src=x onerror=alert(1)&gt; b64" in res.stdout


def test_thresholds_and_options_from_the_command_line(pair):
    base, cand = pair
    res = invoke(base, cand, "--fail-on", "energy_j_per_item:+20%", "--fail-on", "accuracy:-0.01")
    assert res.exit_code == 0 and "energy_j_per_item:+20%" in res.stdout
    assert invoke(base, cand, "--estimates", "warn").exit_code == 0
    res = invoke(base, cand, "--quiet")
    assert res.exit_code == 1 and len(res.stdout.strip().splitlines()) == 1


@pytest.mark.parametrize("args, words", [
    (["--fail-on", "energy_j_per_item:-5%"], "write energy_j_per_item:+5%"),
    (["--fail-on", "watts:+5%"], "unknown metric 'watts'"),
    (["--alpha", "2"], "--alpha 2.0"),
    (["--correction", "bonferroni"], "choose holm or none"),
    (["--markdown", "/no/such/folder/c.md"], "does not exist"),
])
def test_usage_errors_are_one_line_exit_2(pair, args, words):
    base, cand = pair
    res = invoke(base, cand, *args)
    assert res.exit_code == 2 and words in res.output
    assert "Traceback" not in res.output


def test_bad_and_mismatched_profiles_exit_2(pair, tmp_path):
    base, _ = pair
    other = tmp_path / "other.json"
    prof.save(make_profile(1, batches=(2, 4)), other)
    res = invoke(base, other)
    assert res.exit_code == 2 and "no operating point in common" in res.output
    res = invoke(base, ROOT / "README.md")
    assert res.exit_code == 2 and "candidate" in res.output and "not a greenbench profile" in res.output
    res = invoke(tmp_path / "absent.json", base)
    assert res.exit_code == 2 and "baseline" in res.output and "cannot read" in res.output


def test_hardware_warning_goes_to_stderr(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    prof.save(make_profile(1), a)
    prof.save(make_profile(1, cpu_model="Other CPU"), b)
    res = invoke(a, b)
    assert res.exit_code == 0
    assert "warning: different hardware" in res.stderr and "different hardware" not in res.stdout


@pytest.mark.slow
def test_console_script_unrelated_file_is_one_clear_line():
    exe = Path(sys.executable).with_name("greenbench")
    proc = subprocess.run([str(exe), "compare", "profiles/mnist1d-cpu-2core.json", "pyproject.toml"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "greenbench: error: candidate pyproject.toml: not JSON (line 1, column 2: Expecting value), "
        "so not a greenbench profile"]
