"""Every command through Typer's CliRunner, the bad inputs included."""

import json

import pytest
from helpers import FAST, TINY_ZOO, load_json, write_zoo
from typer.testing import CliRunner

from greenbench import profile as prof
from greenbench.cli import app

runner = CliRunner()


def invoke(args, cache_dir):
    return runner.invoke(app, args, env={"GREENBENCH_CACHE": str(cache_dir)})


@pytest.fixture
def zoo(tmp_path):
    return write_zoo(tmp_path)


def run_tiny(tmp_path, zoo, cache_dir, *extra):
    return invoke(["profile", "tiny", "--zoo", str(zoo), "--out", str(tmp_path / "out"), *FAST, *extra], cache_dir)


def test_profile_writes_a_complete_labelled_profile(tmp_path, zoo, cache_dir, virtual_time):
    # On virtual time (helpers.on_virtual_time: real models, simulated clock), so that the
    # physics below is checked exactly however busy this machine is; 0.15 s windows, 15 ticks.
    res = run_tiny(tmp_path, zoo, cache_dir, "--min-window", "0.15")
    assert res.exit_code == 0, res.output
    assert "J/item" in res.stdout and "accuracy" in res.stdout
    doc = load_json(tmp_path / "out" / "tiny.json")
    assert doc["schema"] == prof.SCHEMA and doc["complete"] is True
    assert doc["settings"]["protocol"]["repeats"] == 3
    recs = doc["records"]
    assert {(r["model"], r["batch_size"]) for r in recs} == {("lin", 1), ("lin", 8), ("cnn", 1), ("cnn", 8)}
    for r in recs:
        assert r["status"] == "ok" and r["device"] == "cpu"
        assert r["energy_method"] == "fake"
        # the fake host counter draws 20 W: in every window, energy per item x items per second
        # is that power (a per-batch/per-item mix-up would be off by a factor of 8). Per window,
        # because a mean of ratios times a mean of ratios need not be the power. On virtual time
        # no window is dropped, so the lists pair up.
        energies, rates = r["samples"]["energy_j_per_item"], r["samples"]["items_per_s"]
        assert len(energies) == len(rates) == 3
        for e, rate in zip(energies, rates, strict=True):
            assert e * rate == pytest.approx(20.0, rel=0.25)
        assert r["power_w"] == pytest.approx(20.0, rel=0.25)
        lo, hi = r["energy_j_per_item_ci95"]
        assert lo <= r["energy_j_per_item"] <= hi
        lo, hi = r["accuracy_ci95"]
        assert 0 <= lo <= r["accuracy"] <= hi <= 1
        assert len(r["samples"]["energy_j_per_item"]) == r["repeats"] == 3
        assert r["latency_p50_ms"] <= r["latency_p90_ms"] <= r["latency_p95_ms"] <= r["latency_p99_ms"]
        assert r["latency_per_item_p95_ms"] == pytest.approx(r["latency_p95_ms"] / r["batch_size"])
        assert r["items_per_s"] * r["latency_mean_ms"] / 1e3 == pytest.approx(r["batch_size"], rel=0.25)
        assert r["intensity_gco2e_per_kwh"] > 0 and "Electricity Maps" in r["intensity_source"]
        assert r["co2e_g_per_item"] == pytest.approx(r["energy_j_per_item"] / 3.6e6 * r["intensity_gco2e_per_kwh"])
        assert r["idle_power_w"] == pytest.approx(20.0, rel=0.1)
    assert doc["provenance"]["torch"] and doc["provenance"]["cpu_model"]
    # the same model scores the same whatever the batch size
    acc = {r["model"]: r["accuracy"] for r in recs}
    assert all(r["accuracy"] == acc[r["model"]] for r in recs)


def test_json_and_csv_exports(tmp_path, zoo, cache_dir, virtual_time):
    csv_path = tmp_path / "p.csv"
    res = run_tiny(tmp_path, zoo, cache_dir, "--json", "--export-csv", str(csv_path), "--model", "lin")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [r["model"] for r in doc["records"]] == ["lin", "lin"]
    import pandas as pd

    df = pd.read_csv(csv_path)
    assert len(df) == 2 and set(df["energy_method"]) == {"fake"}


def test_stdout_formats_and_out_files(tmp_path, zoo, cache_dir, virtual_time):
    """--markdown / --csv / --json print that format on stdout; --*-out FILE writes it (a note on stderr)."""
    js, csv_path = tmp_path / "p.json", tmp_path / "p.csv"
    res = run_tiny(tmp_path, zoo, cache_dir, "--model", "lin", "--markdown", "--json-out", str(js),
                   "--csv-out", str(csv_path))
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("**greenbench profile: tiny**") and "| lin |" in res.stdout
    assert json.loads(js.read_text())["records"][0]["model"] == "lin"
    assert csv_path.read_text().startswith("ladder,model,") and f"wrote {csv_path}" in res.stderr
    res = run_tiny(tmp_path, zoo, cache_dir, "--model", "lin", "--resume", "--csv")
    assert res.exit_code == 0 and res.stdout == csv_path.read_text()
    res = run_tiny(tmp_path, zoo, cache_dir, "--model", "lin", "--resume", "--csv", "--json")
    assert res.exit_code == 2 and "choose one" in res.output


def test_existing_profile_needs_resume_or_force(tmp_path, zoo, cache_dir, virtual_time):
    assert run_tiny(tmp_path, zoo, cache_dir, "--model", "lin").exit_code == 0
    res = run_tiny(tmp_path, zoo, cache_dir, "--model", "lin")
    assert res.exit_code == 2 and "pass --resume" in res.output
    res = run_tiny(tmp_path, zoo, cache_dir, "--model", "lin", "--resume", "--repeats", "4")
    assert res.exit_code == 2 and "other settings (protocol)" in res.output
    assert run_tiny(tmp_path, zoo, cache_dir, "--model", "lin", "--force").exit_code == 0


def test_resume_refuses_a_changed_ladder(tmp_path, zoo, cache_dir, virtual_time):
    assert run_tiny(tmp_path, zoo, cache_dir, "--model", "lin").exit_code == 0
    zoo.write_text(TINY_ZOO.replace("width: 4", "width: 5"))
    res = run_tiny(tmp_path, zoo, cache_dir, "--model", "lin", "--resume")
    assert res.exit_code == 2 and "was changed since this profile was started" in res.output


def test_resume_retries_failed_points(tmp_path, zoo, cache_dir, virtual_time):
    assert run_tiny(tmp_path, zoo, cache_dir, "--model", "lin").exit_code == 0
    path = tmp_path / "out" / "tiny.json"
    doc = load_json(path)
    doc["records"][1].update(status="failed", error="OutOfMemoryError: transient", energy_j_per_item=None)
    doc["complete"] = False
    path.write_text(json.dumps(doc))
    assert run_tiny(tmp_path, zoo, cache_dir, "--model", "lin", "--resume").exit_code == 0
    again = load_json(path)
    assert [r["status"] for r in again["records"]] == ["ok", "ok"]
    assert again["records"][0] == doc["records"][0]


def test_resume_measures_only_missing_points(tmp_path, zoo, cache_dir, virtual_time):
    assert run_tiny(tmp_path, zoo, cache_dir).exit_code == 0
    path = tmp_path / "out" / "tiny.json"
    doc = load_json(path)
    kept = [r for r in doc["records"] if r["model"] == "lin"]
    doc["records"], doc["complete"] = kept, False
    path.write_text(json.dumps(doc))
    res = run_tiny(tmp_path, zoo, cache_dir, "--resume")
    assert res.exit_code == 0, res.output
    again = load_json(path)
    assert again["complete"] and len(again["records"]) == 4
    assert again["records"][:2] == kept  # finished points untouched, not measured again


BAD_ZOOS = {
    "broken yaml": "ladders: {tiny: [",
    "unknown key": TINY_ZOO.replace("batch_sizes: [1, 8]", "batch_sizes: [1, 8]\n    batchsizes: [2]"),
    "bad value": TINY_ZOO.replace("arch: linear", "arch: quantum"),
}


@pytest.mark.parametrize("case", sorted(BAD_ZOOS))
def test_bad_zoo_is_one_line_and_exit_2(tmp_path, cache_dir, case):
    zoo = write_zoo(tmp_path, BAD_ZOOS[case])
    res = invoke(["profile", "tiny", "--zoo", str(zoo), "--out", str(tmp_path / "o")], cache_dir)
    assert res.exit_code == 2
    assert "Traceback" not in res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and str(zoo) in lines[0] and "error" in lines[0]


@pytest.mark.parametrize(
    "args,expected",
    [
        (["profile", "nope"], "unknown ladder 'nope'"),
        (["profile", "tiny", "--model", "resnet"], "has no model 'resnet'"),
        (["profile", "tiny", "--meter", "magic"], "--meter 'magic'"),
        (["profile", "tiny", "--precision", "fp8"], "--precision 'fp8'"),
        (["profile", "tiny", "--zone", "ATLANTIS"], "unknown zone 'ATLANTIS'"),
        (["profile", "tiny", "--intensity", "-5"], "outside 0-2000"),
        (["profile", "tiny", "--device", "cuda:0"], "no CUDA GPU is visible"),
        (["profile", "tiny", "--device", "tpu"], "unknown device"),
        (["profile", "tiny", "--repeats", "0"], "Invalid value"),
        (["profile", "tiny", "--pue", "0.5"], "PUE must be a finite number of at least 1.0"),
        (["profile", "tiny", "--pue", "nan"], "finite numbers"),
        (["profile", "tiny", "--min-window", "inf"], "finite numbers"),
        (["profile", "tiny", "--intensity", "nan"], "outside 0-2000"),
        (["profile", "tiny", "--repeats", "2"], "Invalid value"),
        (["zoo", "nope"], "unknown ladder 'nope'"),
    ],
)
def test_bad_options_exit_2_without_traceback(tmp_path, zoo, cache_dir, args, expected):
    out = ["--out", str(tmp_path / "o")] if args[0] == "profile" else []
    res = invoke([*args, "--zoo", str(zoo), *out], cache_dir)
    assert res.exit_code == 2, res.output
    assert expected in res.output
    assert "Traceback" not in res.output


@pytest.mark.parametrize(
    "args,expected",
    [
        (["profile", "--batch-size", "-3"], "Invalid value for '--batch-size'"),
        (["profile", "--bogus"], "No such option: --bogus"),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["profile", "--cache-dir", "/proc/greenbench-cache"], "cannot use as the cache folder"),
        (["profile", "--export-csv", "/nonexistent-dir/p.csv"], "does not exist"),
    ],
)
def test_console_script_usage_errors_are_one_line(tmp_path, args, expected):
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "greenbench", *args, "--out", str(tmp_path)] if args[0] == "profile"
                         else [sys.executable, "-m", "greenbench", *args],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and lines[0].startswith("greenbench: error:")


def test_unwritable_output_folder(tmp_path, zoo, cache_dir):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    res = invoke(["profile", "tiny", "--zoo", str(zoo), "--out", str(blocker / "sub"), *FAST], cache_dir)
    assert res.exit_code == 2 and "cannot create the output folder" in res.output
    assert "Traceback" not in res.output


def _method_shown_for(device, stdout):
    """The energy method `greenbench env` shows for ``device``: from its wide table (one row per
    meter, the headline first) or, on a narrow console, from its blocks of "column  value"."""
    lines = stdout.splitlines()
    for line in lines:
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 6 and cells[1] == device:
            return cells[5]
    for i, line in enumerate(lines):
        if line.split() == ["device", device]:
            return next(ln.split()[1] for ln in lines[i:] if ln.split()[:1] == ["method"])
    raise AssertionError(f"no row for {device} in:\n{stdout}")


def test_env_lists_devices_and_methods(cache_dir):
    from greenbench import meters

    res = invoke(["env", "--zones"], cache_dir)
    assert res.exit_code == 0, res.output
    # this machine's branch: RAPL where its powercap counters are readable, else the estimate
    rapl_readable = meters.RaplMeter().info().available
    expected = meters.RAPL if rapl_readable else meters.ESTIMATE
    assert "cpu" in res.stdout and _method_shown_for("cpu", res.stdout) == expected
    if not rapl_readable:  # and it says why RAPL is not used
        assert "rapl: " in res.stdout and "CodeCarbon estimate for cpu" in res.stdout
    gpus = meters.list_gpus()
    assert "NVML" in res.stdout and "US-MIDA-PJM" in res.stdout
    assert ("NVML: no GPU listed" in res.stdout) == (len(gpus) == 0)


def test_zoo_lists_builtin_and_file_ladders(zoo, cache_dir):
    res = invoke(["zoo", "--zoo", str(zoo)], cache_dir)
    assert res.exit_code == 0 and "mnist1d" in res.stdout and "tiny" in res.stdout
    res = invoke(["zoo", "mnist1d"], cache_dir)
    assert res.exit_code == 0 and "cnn-64" in res.stdout and "operating points" in res.stdout


def test_help_documents_exit_codes():
    res = runner.invoke(app, ["profile", "--help"])
    assert res.exit_code == 0 and "Exit codes" in res.output and "--resume" in res.output


def test_a_bug_is_one_line_and_exit_4_never_1(monkeypatch, capsys):
    import greenbench.cli as cli

    def boom(*a, **k):
        raise KeyError("surprise")

    monkeypatch.setattr("greenbench.measure.zoo.load_zoo", boom)
    monkeypatch.setattr("sys.argv", ["greenbench", "zoo"])
    monkeypatch.delenv("GREENBENCH_DEBUG", raising=False)
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code == 4  # 1 would read as a regression in a CI gate
    err = capsys.readouterr().err
    assert err.startswith("greenbench: internal error: KeyError") and "GREENBENCH_DEBUG=1" in err
    assert "Traceback" not in err
