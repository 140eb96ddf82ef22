"""The CI recipe holds together: one set of thresholds in README, docs/ci.md, the GitHub Actions
example and .ci/run, each above the noise docs/ci.md states; the example workflow is valid and its
shell does what its comments say; benchmarks/ci_noise.py derives the numbers."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from synthetic_profiles import make_profile, scaled

from greenbench import profile as prof
from greenbench.compare.export import MARKDOWN_MARKER

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "docs" / "github-actions-example.yml"
RECIPE_FILES = [ROOT / "README.md", ROOT / "docs" / "ci.md", WORKFLOW, ROOT / ".ci" / "run"]
GATE_BASELINE = "mnist1d-quick-cpu.json"  # the gate's commands compare against this baseline


def compare_commands(text: str) -> list[str]:
    """Every `greenbench compare ...` command of a file, its backslash-continued lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [m.group(0) for m in re.finditer(r"greenbench compare [^\n`]*", joined)]


def gate_thresholds(path: Path) -> list[frozenset[str]]:
    """The --fail-on sets of the file's gate commands (those against the quick baseline, with
    thresholds: the README's examples without --fail-on show other things)."""
    sets = []
    for cmd in compare_commands(path.read_text("utf-8")):
        fail_on = frozenset(re.findall(r"--fail-on\s+(\S+)", cmd))
        if GATE_BASELINE in cmd and fail_on:
            sets.append(fail_on)
    return sets


def test_one_set_of_thresholds_everywhere():
    found = {p.relative_to(ROOT).as_posix(): gate_thresholds(p) for p in RECIPE_FILES}
    for name, sets in found.items():
        assert sets, f"{name}: no gate command (greenbench compare ... {GATE_BASELINE} --fail-on ...)"
    distinct = {s for sets in found.values() for s in sets}
    assert len(distinct) == 1, f"the CI thresholds differ between files: {found}"
    assert {t.split(":")[0] for t in distinct.pop()} == {"accuracy", "energy_j_per_item", "latency_p50_ms"}


def _ratio(threshold: str) -> float:
    """'energy_j_per_item:+500%' -> 6.0, the factor a value may grow by before the row fails."""
    m = re.fullmatch(r"[a-z0-9_]+:\+(\d+(?:\.\d+)?)%", threshold)
    assert m, threshold
    return 1 + float(m.group(1)) / 100


def test_thresholds_sit_above_the_noise_docs_ci_states():
    """docs/ci.md's noise table: each gated metric's threshold is the table's, and above the largest
    ratio measured between runs; an ungated one is said to be so."""
    text = (ROOT / "docs" / "ci.md").read_text("utf-8")
    rows = re.findall(r"^\| `([a-z0-9_]+)`[^|]*\| ([\d.]+)x [^|]*\|[^|]*\| ([^|]+?) \|$", text, re.M)
    table = {metric: (float(noise), gate) for metric, noise, gate in rows}
    assert set(table) == {"energy_j_per_item", "latency_p50_ms", "latency_p95_ms"}, rows
    (thresholds,) = set(gate_thresholds(ROOT / ".ci" / "run"))
    gated = {t.split(":")[0]: t for t in thresholds}
    for metric, (noise, gate) in table.items():
        if metric not in gated:
            assert gate == "not gated", (metric, gate)
            continue
        ratio = _ratio(gated[metric])
        assert gate.startswith(gated[metric].split(":")[1]), (metric, gate, gated[metric])
        assert ratio > noise * 1.2, f"{gated[metric]} ({ratio:.2f}x) is not clearly above the measured {noise}x"
    assert "accuracy:-0.005" in thresholds  # with the two-proportion test: docs/ci.md says why


def test_the_recipe_uses_only_options_compare_has():
    from typer.main import get_command

    from greenbench.cli import app

    command = get_command(app).commands["compare"]  # type: ignore[attr-defined]
    known = {o for p in command.params for o in getattr(p, "opts", [])}
    for path in RECIPE_FILES:
        for cmd in compare_commands(path.read_text("utf-8")):
            used = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", cmd))
            assert used <= known, f"{path.name}: {sorted(used - known)} not options of greenbench compare: {cmd}"


# --- the Actions example ------------------------------------------------------------------------

def _workflow() -> dict:
    doc = yaml.safe_load(WORKFLOW.read_text("utf-8"))
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def _steps(job: str) -> list[dict]:
    return _workflow()["jobs"][job]["steps"]


def test_workflow_shape():
    doc = _workflow()
    assert set(doc["on"]) == {"pull_request", "push"} and doc["on"]["push"]["branches"] == ["main"]
    gate, base = doc["jobs"]["energy-gate"], doc["jobs"]["baseline"]
    assert "pull_request" in gate["if"] and "push" in base["if"] and "refs/heads/main" in base["if"]
    for job in ("energy-gate", "baseline"):
        steps = _steps(job)
        setup = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python"))
        assert setup["with"]["cache"] == "pip" and setup["with"]["cache-dependency-path"] == "pyproject.toml"
        cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache"))
        key = cache["with"]["key"]
        assert "steps.greenbench.outputs.version" in key and "OMP_NUM_THREADS" in key
        for f in ("pyproject.toml", "greenbench/data/builtin_zoo.yaml", "model_zoo.yaml"):
            assert f"'{f}'" in key, (job, f, key)
        assert (ROOT / "greenbench" / "data" / "builtin_zoo.yaml").exists()
    # main uploads the baseline under the name the pull-request job downloads
    upload = next(s for s in _steps("baseline") if s.get("uses", "").startswith("actions/upload-artifact"))
    name = upload["with"]["name"]
    get = next(s for s in _steps("energy-gate") if s.get("name") == "Get the baseline")
    assert f"--name {name}" in get["run"] and "--branch main" in get["run"]
    assert "actions" in gate["permissions"] and gate["permissions"]["pull-requests"] == "write"
    profile_steps = [s["run"] for job in ("energy-gate", "baseline") for s in _steps(job)
                     if "greenbench profile" in s.get("run", "")]
    # the same measurement on both sides: only where it is written differs
    assert len(profile_steps) == 2 and len({" ".join(re.sub(r"--(out|name) \S+", "", r).split())
                                            for r in profile_steps}) == 1
    assert doc["env"]["OMP_NUM_THREADS"] == "1"


def _run_blocks() -> list[tuple[str, str]]:
    return [(f"{job}: {s.get('name', s.get('uses'))}", s["run"]) for job in _workflow()["jobs"]
            for s in _steps(job) if "run" in s]


def test_workflow_shell_parses():
    for where, script in _run_blocks():
        # ${{ ... }} is filled in by Actions before the shell sees the script
        text = re.sub(r"\$\{\{[^}]*\}\}", "x", script)
        proc = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True)
        assert proc.returncode == 0, f"{where}: {proc.stderr}"


FAKE_GH = r"""#!/usr/bin/env bash
# A stand-in for the GitHub CLI: serves $COMMENTS for a listing (through the real jq, as gh's --jq
# would) and records every other call.
if [ "$1" = api ] && [[ " $* " == *" --paginate "* ]]; then
    while [ $# -gt 0 ]; do if [ "$1" = --jq ]; then jq -r "$2" "$COMMENTS"; exit; fi; shift; done
fi
printf '%s\n' "$*" >> "$CALLS"
"""


@pytest.mark.skipif(shutil.which("jq") is None or shutil.which("bash") is None, reason="needs bash and jq")
@pytest.mark.parametrize("has_marker", [True, False])
def test_the_comment_step_edits_the_comment_with_the_marker(tmp_path, has_marker):
    step = next(s for s in _steps("energy-gate") if s.get("name") == "Post the result on the pull request")
    assert MARKDOWN_MARKER in step["env"]["MARKER"] and "--edit-last" not in step["run"]
    bot = "github-actions[bot]"
    comments = [{"id": 11, "user": {"login": "someone"}, "body": f"quoting {MARKDOWN_MARKER}"},
                {"id": 12, "user": {"login": bot}, "body": f"{MARKDOWN_MARKER}\nold result"},
                {"id": 13, "user": {"login": bot}, "body": "another workflow's comment, posted last"}]
    if not has_marker:
        comments.pop(1)
    (tmp_path / "comments.json").write_text(json.dumps(comments))
    (tmp_path / "bin").mkdir()
    gh = tmp_path / "bin" / "gh"
    gh.write_text(FAKE_GH)
    gh.chmod(0o755)
    (tmp_path / "compare.md").write_text(MARKDOWN_MARKER + "\nnew result\n")
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "COMMENTS": str(tmp_path / "comments.json"),
           "CALLS": str(tmp_path / "calls"), "GITHUB_REPOSITORY": "o/r", "PR": "7",
           "MARKER": step["env"]["MARKER"]}
    proc = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    if has_marker:
        assert calls == ["api --method PATCH repos/o/r/issues/comments/12 -F body=@compare.md"]
    else:
        assert calls == ["pr comment 7 --body-file compare.md"]


def test_workflow_lints():
    """actionlint where installed, else GitHub's workflow schema (check-jsonschema bundles it)."""
    if shutil.which("actionlint"):
        cmd = ["actionlint", str(WORKFLOW)]
    elif importlib.util.find_spec("check_jsonschema") is not None:
        cmd = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)]
    else:
        pytest.skip("neither actionlint nor check-jsonschema is installed (pip install check-jsonschema)")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, shlex.join(cmd) + "\n" + proc.stdout + proc.stderr


# --- benchmarks/ci_noise.py ------------------------------------------------------------------------

def _ci_noise():
    spec = importlib.util.spec_from_file_location("ci_noise", ROOT / "benchmarks" / "ci_noise.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_ci_noise_ratios_and_suggestion(tmp_path, capsys):
    noise = _ci_noise()
    base = make_profile(None)  # no noise: the ratios below are the shifts alone
    runs = [scaled(base, "medium", 8, "energy_j_per_item", 2.0), scaled(base, "large", 64, "latency_p50_ms", 1.5)]
    paths = []
    for i, p in enumerate([base, *runs]):
        paths.append(tmp_path / f"p{i}.json")
        prof.save(p, paths[-1])
    assert noise.main([str(paths[1]), str(paths[2]), "--baseline", str(paths[0])]) == 0
    out = capsys.readouterr().out
    # runs apart by 2x in energy (medium b8), the baseline between them; 2 x 1.25 = 2.5x -> +150%
    assert "energy_j_per_item: runs max/min 2.00x (worst medium b8 fp32 cpu" in out
    assert "suggested energy_j_per_item:+150%" in out
    assert "latency_p50_ms: runs max/min 1.50x (worst large b64 fp32 cpu" in out
    assert "suggested latency_p50_ms:+100%" in out  # 1.5 x 1.25 = 1.875x: +87.5%, up to +100%
    assert "accuracy: largest spread between runs 0.0000" in out
    assert [noise.round_up_percent(r) for r in (1.1, 1.875, 2.0, 2.01, 5.14)] == [25, 100, 100, 150, 500]


def test_ci_noise_bad_input_is_one_line(tmp_path, capsys):
    noise = _ci_noise()
    bad = tmp_path / "x.json"
    bad.write_text("{")
    good = tmp_path / "g.json"
    prof.save(make_profile(1), good)
    assert noise.main([str(bad), str(good)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ci_noise.py: error: ") and "x.json" in err[0]
    with pytest.raises(SystemExit) as e:
        noise.main([str(good)])
    assert e.value.code == 2
