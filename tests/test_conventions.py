"""The conventions every command keeps: --version, -h, shell completion, help without <bool> and
with each default once, one meaning for the output flags (stdout, or a file with -out), results on
stdout and notes on stderr, outputs beside the input, Markdown escaped, and the progress lines."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import FAST, write_zoo
from rich.console import Console
from typer.main import get_command
from typer.testing import CliRunner

from greenbench import __version__
from greenbench import profile as prof
from greenbench.cli import app
from greenbench.cli.command import legacy_output_args
from greenbench.cli.profile_view import bar_description, closing_line, duration, make_progress, point_line

ROOT = Path(__file__).resolve().parents[1]
FULL = ROOT / "profiles" / "mnist1d-cpu-2core.json"
QUICK = ROOT / "profiles" / "baseline" / "mnist1d-quick-cpu.json"
EVIL = "<img src=x onerror=alert(1)>"
runner = CliRunner()


def command_paths() -> list[list[str]]:
    """Every command, subcommands of groups included: ["profile"], ["carbon", "zones"], ..."""
    root = get_command(app)  # Typer's own (vendored) click: groups are known by their commands
    paths = []
    for name, cmd in root.commands.items():  # type: ignore[attr-defined]
        if hasattr(cmd, "commands"):
            paths += [[name, sub] for sub in cmd.commands]
        paths.append([name])
    return paths


def test_version_is_one_line():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0
    (line,) = res.stdout.splitlines()
    assert line.startswith(f"greenbench {__version__} (python ") and "torch" in line


@pytest.mark.parametrize("path", command_paths(), ids=" ".join)
def test_every_command_takes_h_and_its_help_is_tidy(path):
    short = runner.invoke(app, [*path, "-h"], env={"COLUMNS": "400"})
    assert short.exit_code == 0, short.output
    assert short.stdout == runner.invoke(app, [*path, "--help"], env={"COLUMNS": "400"}).stdout
    assert "<bool>" not in short.stdout  # a flag takes no value: no type shown
    for line in short.stdout.splitlines():  # one option a line at 400 columns
        if "[default:" in line:  # Typer's default: the help text must not state it too
            text = line.split("[default:")[0]
            assert not re.search(r"\bdefault(:| [^)])", text, re.IGNORECASE), line


@pytest.mark.parametrize("path", command_paths(), ids=" ".join)
def test_arguments_are_in_capitals_on_the_usage_line_and_in_errors(path):
    cmd = get_command(app)
    for name in path:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    arguments = [p for p in cmd.params if p.param_type_name == "argument"]
    usage = next(line for line in runner.invoke(app, [*path, "-h"], env={"COLUMNS": "400"}).stdout.splitlines()
                 if "Usage:" in line)
    assert "{" not in usage, usage  # Typer 0.29 writes {profile} for a required argument
    for a in arguments:
        shown = a.name.upper() if a.required else f"[{a.name.upper()}]"
        assert f" {shown}" in usage, usage
    required = [a for a in arguments if a.required]
    if required:
        res = runner.invoke(app, path)
        assert f"Missing argument '{required[0].name.upper()}'" in res.output, res.output


def test_an_output_that_is_an_input_or_another_output_is_refused(tmp_path, capsys):
    import typer

    from greenbench.cli.common import check_out_paths

    profile = tmp_path / "p.json"
    profile.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(profile.name)
    hard = tmp_path / "hard.json"
    os.link(profile, hard)
    for out in (profile, link, hard, tmp_path / "." / "p.json"):
        with pytest.raises(typer.Exit) as e:
            check_out_paths(None, out, inputs=(profile, None, "DE"))
        assert e.value.exit_code == 2
        err = capsys.readouterr().err
        assert f"{out}: is an input of this command" in err and "choose another file" in err
        assert err.count("\n") == 1
        assert profile.read_text() == "{}"
    with pytest.raises(typer.Exit):
        check_out_paths(tmp_path / "a.md", tmp_path / "." / "a.md")
    assert "given for two outputs" in capsys.readouterr().err
    check_out_paths(tmp_path / "new.json", inputs=(profile, "DE", "flat", tmp_path / "missing.json"))
    assert capsys.readouterr().err == "" and not (tmp_path / "new.json").exists()


def test_shell_completion_is_on():
    res = runner.invoke(app, ["--show-completion", "bash"])
    assert res.exit_code == 0 and "_greenbench_completion" in res.stdout
    exe = shutil.which("greenbench") or str(Path(sys.executable).with_name("greenbench"))
    got = subprocess.run([exe], env={"_GREENBENCH_COMPLETE": "complete_bash", "COMP_WORDS": "greenbench pr",
                                     "COMP_CWORD": "1", "PATH": str(Path(sys.executable).parent)},
                         capture_output=True, text=True, timeout=60)
    assert got.returncode == 0 and set(got.stdout.split()) == {"profile", "price"}


def test_a_file_after_a_stdout_flag_gets_a_helpful_line(monkeypatch, capsys):
    import greenbench.cli as cli

    monkeypatch.setattr("sys.argv", ["greenbench", "price", str(FULL), "--markdown", "x.md"])
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "unexpected extra argument" in line and "use --markdown-out x.md" in line
    assert not Path("x.md").exists()


def test_legacy_rewrite_reads_a_file_only_where_a_third_positional_would_be():
    takes = {"--fail-on", "--markdown-out", "--json-out"}
    assert legacy_output_args(["a", "b", "--markdown", "c.md"], takes, 2) == (
        ["a", "b", "--markdown-out", "c.md"], ["--markdown"])
    assert legacy_output_args(["--markdown", "a", "b"], takes, 2) == (["--markdown", "a", "b"], [])
    assert legacy_output_args(["a", "--fail-on", "x:+5%", "b", "--json", "j"], takes, 2) == (
        ["a", "--fail-on", "x:+5%", "b", "--json-out", "j"], ["--json"])
    assert legacy_output_args(["a", "b", "--json", "--wide"], takes, 2) == (["a", "b", "--json", "--wide"], [])


@pytest.mark.parametrize("args", [
    ["price", FULL], ["simulate", FULL], ["fit", FULL, "--no-plots"], ["compare", QUICK, FULL],
    ["carbon", "zones"], ["carbon", "convert", FULL],
])
def test_json_prints_the_document_alone_on_stdout(args, tmp_path):
    out = ["--out", tmp_path] if args[0] == "fit" else []
    res = runner.invoke(app, [str(a) for a in [*args, *out, "--json"]])
    assert res.exit_code in (0, 1), res.output
    assert isinstance(json.loads(res.stdout), dict)


@pytest.mark.parametrize("command", ["price", "simulate"])
def test_out_options_write_files_and_say_so_on_stderr(command, tmp_path):
    js, md = tmp_path / "r.json", tmp_path / "r.md"
    res = runner.invoke(app, [command, str(FULL), "--json-out", str(js), "--markdown-out", str(md)])
    assert res.exit_code == 0, res.output
    assert json.loads(js.read_text())["schema"].startswith("greenbench/")
    # price opens with its decision, then the tables; simulate with the tables
    assert md.read_text().startswith("**decision" if command == "price" else "**options that ran**")
    assert "**options that ran**" in md.read_text()
    assert f"wrote {js}" in res.stderr and f"wrote {md}" in res.stderr and str(js) not in res.stdout
    assert "options that ran" in res.stdout  # the tables still on stdout
    missing = runner.invoke(app, [command, str(FULL), "--json-out", str(tmp_path / "no" / "r.json")])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


def test_simulate_plots_are_noted_on_stderr(tmp_path):
    res = runner.invoke(app, ["simulate", str(FULL), "--plots", str(tmp_path / "plots")])
    assert res.exit_code == 0, res.output
    written = sorted((tmp_path / "plots").iterdir())
    assert written and all(f"wrote {p}" in res.stderr for p in written)
    assert "plot" not in res.stdout.lower().replace("--plots", "")


def test_report_writes_beside_the_profile(tmp_path):
    path = tmp_path / "runs" / "mine.json"
    path.parent.mkdir()
    shutil.copy(QUICK, path)
    res = runner.invoke(app, ["report", str(path)])
    assert res.exit_code == 0, res.output
    html = tmp_path / "runs" / "mine-report" / "report.html"
    assert html.is_file() and f"wrote {html}" in res.stderr and str(html) not in res.stdout


def _evil_profile(tmp_path: Path) -> Path:
    doc = json.loads(FULL.read_text())
    for r in doc["records"]:
        if r["model"] == "cnn-64":
            r["model"] = EVIL
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("args", [["price"], ["simulate"], ["fit", "--no-plots"]])
def test_markdown_escapes_html(args, tmp_path):
    path = _evil_profile(tmp_path)
    out = ["--out", str(tmp_path / "fit")] if args[0] == "fit" else []
    res = runner.invoke(app, [args[0], str(path), *args[1:], *out, "--markdown"])
    assert res.exit_code == 0, res.output
    assert EVIL not in res.stdout and "<img" not in res.stdout
    assert "&lt;img src=x onerror=alert(1)&gt;" in res.stdout


def test_profile_markdown_escapes_html(tmp_path):
    from greenbench.cli.profile_view import profile_markdown

    text = profile_markdown(prof.load(_evil_profile(tmp_path)))
    assert "<img" not in text and "| &lt;img src=x onerror=alert(1)&gt; |" in text


# ------------------------------------------------------------------------------------------------
# progress


def test_progress_words():
    assert duration(42.4) == "42s" and duration(102) == "1m 42s" and duration(7500) == "2h 05m"
    r = prof.load(FULL).records[4]
    assert point_line(9, 45, r) == f"[9/45] mlp-32 b32 fp32 cpu: ok, {r.energy_j_per_item:.2e} J/item"
    failed = r.model_copy(update={"status": "failed", "error": "OutOfMemoryError: x"})
    assert point_line(2, 3, failed) == "[2/3] mlp-32 b32 fp32 cpu: failed: OutOfMemoryError: x"
    assert closing_line([r, r, failed], 102) == "measured 3 points (1 failed) in 1m 42s"


@pytest.mark.parametrize("width", [80, 60])
def test_the_bar_keeps_its_eta_at_narrow_widths(width):
    console = Console(file=io.StringIO(), width=width, force_terminal=True, color_system=None)
    progress = make_progress(console)
    text = "distilbert-base-uncased-finetuned-sst-2-english b256: 1,234 items/s, 0.1 J/item (rapl)"
    task = progress.add_task(bar_description(text, width), total=450, eta="ETA 12m 03s")
    progress.update(task, completed=99)
    shown = Console(file=io.StringIO(), width=width, force_terminal=True, color_system=None)
    shown.print(progress.make_tasks_table(progress.tasks))
    (line,) = shown.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert line.rstrip().endswith("99/450 0:00:00 ETA 12m 03s") and len(line.rstrip()) <= width
    assert "━" * 4 in line  # the bar keeps its 20 cells


def test_a_log_gets_one_line_per_finished_point(tmp_path, cache_dir, virtual_time):
    zoo = write_zoo(tmp_path)
    res = runner.invoke(app, ["profile", "tiny", "--zoo", str(zoo), "--out", str(tmp_path / "out"), *FAST],
                        env={"GREENBENCH_CACHE": str(cache_dir)})
    assert res.exit_code == 0, res.output
    lines = [line for line in res.stderr.splitlines() if re.match(r"\[\d+/\d+\] ", line)]
    assert [line.split("]")[0] + "]" for line in lines] == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    assert {line.split("] ")[1].split(":")[0] for line in lines} == {
        "lin b1 fp32 cpu", "lin b8 fp32 cpu", "cnn b1 fp32 cpu", "cnn b8 fp32 cpu"}
    assert all(re.search(r": ok, \S+ J/item$", line) for line in lines)
    assert re.search(r"^measured 4 points \(0 failed\) in \d+s$", res.stderr, re.MULTILINE)
