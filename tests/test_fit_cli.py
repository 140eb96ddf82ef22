"""greenbench fit through Typer's CliRunner: files written, tables shown, bad input as one line."""

import json

import pytest
from test_tradeoff import law_profile, make_profile
from typer.testing import CliRunner

from greenbench import profile as prof
from greenbench.cli import app

runner = CliRunner()


@pytest.fixture
def profile_path(tmp_path):
    path = tmp_path / "run.json"
    prof.save(law_profile(), path)
    return path


def fit(*args):
    return runner.invoke(app, ["fit", *map(str, args)])


def one_line_error(res, text):
    assert res.exit_code == 2, res.output
    assert text in res.stderr
    assert "Traceback" not in res.output
    assert len(res.stderr.strip().splitlines()) == 1


def test_fit_writes_tables_and_plots(tmp_path, profile_path):
    res = fit(profile_path, "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    assert "Pareto frontier" in res.stdout and "Curves" in res.stdout
    # a fitted curve shows the form it kept; --wide adds the expression, parameters and why
    assert "energy_vs_batch" in res.stdout and "amortised" in res.stdout and "E(b) =" not in res.stdout
    names = ["tradeoff.json", "tradeoff.csv", "curves.csv", "accuracy_vs_energy.png",
             "accuracy_vs_energy.svg", "batch_curves.png", "batch_curves.svg"]
    for name in names:
        path = tmp_path / "o" / name
        assert path.stat().st_size > 0
        assert f"wrote {path}" in res.stderr  # the files are listed on stderr, not stdout
        assert str(path) not in res.stdout
    assert (tmp_path / "o" / "accuracy_vs_energy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "estimated, not metered" in res.stderr
    svg = (tmp_path / "o" / "accuracy_vs_energy.svg").read_text()
    assert "ESTIMATE, not metered" in svg and "method: estimate" in svg


def test_wide_markdown_and_csv(tmp_path, profile_path):
    wide = fit(profile_path, "--out", tmp_path / "o", "--no-plots", "--wide")
    assert wide.exit_code == 0 and "E(b) =" in wide.stdout and "why" in wide.stdout
    md = fit(profile_path, "--out", tmp_path / "o", "--no-plots", "--markdown")
    assert md.exit_code == 0 and "| curve | model | fit | expression |" in md.stdout
    csv = fit(profile_path, "--out", tmp_path / "o", "--no-plots", "--csv")
    assert csv.exit_code == 0
    assert csv.stdout == (tmp_path / "o" / "tradeoff.csv").read_text()  # the file's rows, on stdout
    one_line_error(fit(profile_path, "--no-plots", "--csv", "--json"), "choose one")


def test_default_out_is_next_to_the_profile(profile_path):
    res = fit(profile_path, "--no-plots")
    assert res.exit_code == 0, res.output
    out = profile_path.parent / "run-fit"
    assert sorted(p.name for p in out.iterdir()) == ["curves.csv", "tradeoff.csv", "tradeoff.json"]


def test_json_on_stdout(tmp_path, profile_path):
    res = fit(profile_path, "--out", tmp_path / "o", "--no-plots", "--json", "--latency", "mean",
              "--energy", "net", "--max-residual", "0.1")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["schema"] == "greenbench/tradeoff"
    assert doc["settings"]["latency_field"] == "latency_mean_ms"
    assert doc["settings"]["energy_field"] == "energy_net_j_per_item"
    assert doc["settings"]["max_residual"] == 0.1
    assert doc["profile"]["path"] == str(profile_path)


def test_excluded_records_are_noted(tmp_path):
    p = law_profile()
    p.records.append(prof.Record(ladder="t", model="x", batch_size=1, precision="fp32",
                                 device="cpu", status="failed", error="OutOfMemoryError: x"))
    path = tmp_path / "p.json"
    prof.save(p, path)
    res = fit(path, "--out", tmp_path / "o", "--no-plots")
    assert res.exit_code == 0
    assert "x b1 fp32 cpu: excluded, failed: OutOfMemoryError" in res.stderr


def test_real_profile(tmp_path):
    res = fit("profiles/mnist1d-cpu-2core.json", "--out", tmp_path, "--no-plots", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert len(doc["points"]) == 15 and doc["excluded"] == []
    assert {c["status"] for c in doc["curves"]} <= {"fitted", "interpolated"}
    assert all(c["reason"] for c in doc["curves"])


def test_missing_file(tmp_path):
    one_line_error(fit(tmp_path / "nope.json"), "cannot read")


def test_not_a_profile(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"a": 1}')
    one_line_error(fit(path), "not a greenbench profile")


def test_no_usable_points(tmp_path):
    p = make_profile([prof.Record(ladder="t", model="c", batch_size=1, precision="fp32",
                                  device="cpu", status="failed", error="boom")])
    path = tmp_path / "p.json"
    prof.save(p, path)
    one_line_error(fit(path, "--out", tmp_path / "o"), "no usable operating point")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args,text", [(["--latency", "p42"], "--latency 'p42'"),
                                       (["--energy", "green"], "--energy 'green'"),
                                       (["--max-residual", "0"], "--max-residual 0.0")])
def test_bad_options(profile_path, args, text):
    one_line_error(fit(profile_path, *args), text)


def test_unwritable_out(tmp_path, profile_path):
    (tmp_path / "file").write_text("x")
    one_line_error(fit(profile_path, "--out", tmp_path / "file", "--no-plots"), "cannot create the output folder")
