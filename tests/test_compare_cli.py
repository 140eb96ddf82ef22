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
    for col in ("Point", "Metric", "Change", "Before", "After", "Ratio"):
        assert col in res.stdout
    assert "No regression: 45 rows within thresholds" in res.stdout
    assert "(estimate)" in res.stdout  # the committed profile's CPU energy is CodeCarbon's estimate


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


def test_exports_are_written_before_the_regression_exit(pair, tmp_path):
    base, cand = pair
    md, js, junit = tmp_path / "c.md", tmp_path / "c.json", tmp_path / "c.xml"
    res = invoke(base, cand, "--markdown", md, "--json", js, "--junit", junit)
    assert res.exit_code == 1, res.output
    summary = "1 regression: large b64 fp32 cpu energy_j_per_item +10.0%"
    assert res.stdout.strip().splitlines()[-1].startswith(summary)
    assert summary in md.read_text()
    doc = json.loads(js.read_text())
    assert doc["summary"]["exit_code"] == 1 and doc["summary"]["line"].startswith(summary)
    root = ET.parse(junit).getroot()
    assert root.get("failures") == "1"
    (case,) = [c for c in root.iter("testcase") if c.find("failure") is not None]
    assert case.get("name") == "large b64 fp32 cpu energy_j_per_item"


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
        "greenbench: error: candidate pyproject.toml: not JSON (line 1: Expecting value), "
        "so not a greenbench profile"]
