"""Bad profiles and write faults: every command that reads a profile refuses an impossible one in
one line; a run checks what it writes before measuring, keeps file modes, removes what a killed
run left, locks its profile against a second writer, and stays inside --out."""

from __future__ import annotations

import copy
import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import write_zoo
from typer.testing import CliRunner

from greenbench import profile as prof
from greenbench.carbon import intensity as carbon
from greenbench.cli import app
from greenbench.measure import protocol as protocol
from greenbench.measure import runner as runner
from greenbench.measure import zoo as zoomod
from greenbench.measure.protocol import Protocol

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "profiles" / "mnist1d-cpu-2core.json"
FAST_PROTOCOL = Protocol(repeats=3, min_window_s=0.03, min_counter_updates=3, warmup_s=0, idle_s=0.1)


def committed_doc() -> dict:
    return json.loads(COMMITTED.read_text())


def write_doc(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc))
    return path


# --- reading: what is read is plausible ---------------------------------------------------------


def _negate_energies(doc: dict) -> dict:
    for r in doc["records"]:
        for k, v in list(r.items()):
            if k.startswith("energy") and isinstance(v, (int, float)):
                r[k] = -v
        r["samples"]["energy_j_per_item"] = [-x for x in r["samples"].get("energy_j_per_item", [])]
    return doc


def _set(index: int, key: str, value):
    def edit(doc: dict) -> dict:
        doc["records"][index][key] = value
        return doc
    return edit


def _duplicate(doc: dict) -> dict:
    doc["records"].append(copy.deepcopy(doc["records"][3]))
    return doc


def _idle_negative(doc: dict) -> dict:
    doc["idle"]["cpu"]["meters"][0]["power_w"] = -3.0
    return doc


def _negative_sample(doc: dict) -> dict:
    doc["records"][1]["samples"]["energy_j_per_item"][0] = -1e-4
    return doc


IMPOSSIBLE = {
    "every energy negated": (_negate_energies,
                             r"records\[0\] \(linear b1 fp32 cpu\) energy_j_per_item: .* is negative"),
    "energy of 1e308": (_set(2, "energy_j_per_item", 1e308), r"energy_j_per_item: 1e\+308 J is beyond 1e\+09 J"),
    "infinite power": (_set(2, "power_w", float("inf")), r"records\[2\] .*power_w"),
    "accuracy above 1": (_set(4, "accuracy", 1.5), r"accuracy: 1.5 is outside \[0, 1\]"),
    "accuracy below 0": (_set(4, "accuracy", -0.1), r"accuracy: -0.1 is outside \[0, 1\]"),
    "batch size 0": (_set(0, "batch_size", 0), r"batch_size: 0: a batch holds at least 1 item"),
    "negative latency": (_set(5, "latency_p95_ms", -1.0), r"latency_p95_ms: -1 ms is negative"),
    "negative idle power": (_idle_negative, r"idle\.cpu\.meters\.0\.power_w: -3 W is negative"),
    "negative energy sample": (_negative_sample, r"samples: -0.0001 J is negative"),
    "a point twice": (_duplicate, r"records\[15\] \(mlp-32 b1 fp32 cpu\) is the same operating point as records\[3\]"),
    "batch size 1e30": (_set(0, "batch_size", 10**30),
                        r"batch_size: a 31-digit number of items in a batch is beyond 2,147,483,648"),
    "control characters in a name": (_set(0, "model", "bad\x01name\x1b[31m"),
                                     r"records\[0\] \(bad\\x01name\\x1b\[31m b1 fp32 cpu\) model: "
                                     r"'bad\\x01name\\x1b\[31m' holds the control character U\+0001"),
    "a bidirectional override in a device": (_set(1, "device", "cpu\u202e"), r"device: .*U\+202E"),
    "an escape in a ladder": (_set(2, "ladder", "x\x1b[2J"), r"ladder: .*U\+001B"),
    "a tab in a precision": (_set(3, "precision", "fp\t32"), r"precision: .*U\+0009"),
}


@pytest.mark.parametrize("case", list(IMPOSSIBLE))
def test_an_impossible_profile_is_refused_in_one_line_naming_the_file(tmp_path, case):
    edit, expected = IMPOSSIBLE[case]
    path = write_doc(tmp_path / "bad.json", edit(committed_doc()))
    with pytest.raises(prof.ProfileError, match=expected) as e:
        prof.load(path)
    assert str(e.value).startswith(f"{path}: ") and "\n" not in str(e.value)


def test_what_a_measurement_can_give_still_loads(tmp_path):
    doc = committed_doc()
    doc["records"][0]["energy_net_j_per_item"] = -2e-6  # net of idle dips below 0 in noise
    doc["records"][0]["energy_j_per_item_ci95"] = [-1e-5, 3e-4]  # a t interval may cross 0
    doc["records"][0]["items_per_s_ci95"] = [-5.0, 2e5]
    p = prof.load(write_doc(tmp_path / "ok.json", doc))
    assert p.records[0].energy_net_j_per_item == -2e-6
    for committed in sorted((REPO / "profiles").rglob("*.json")):  # older records still load
        assert prof.load(committed).records


def test_unreadable_files_are_refused_in_one_line(tmp_path, monkeypatch):
    latin = tmp_path / "latin.json"
    latin.write_bytes('{"schema": "é"}'.encode("latin-1"))
    binary = tmp_path / "binary.json"
    binary.write_bytes(bytes(range(256)) * (50 * 2**20 // 256))  # 50 MiB of binary
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)  # json.loads alone: RecursionError
    for path, expected in ((latin, r"not UTF-8 text \(byte 0xe9 at offset 12\)"),
                           (binary, "not (UTF-8 )?text"), (deep, "nested deeper than 32 levels")):
        with pytest.raises(prof.ProfileError, match=expected) as e:
            prof.load(path)
        assert str(e.value).startswith(f"{path}: ") and "\n" not in str(e.value)
    big = write_doc(tmp_path / "big.json", committed_doc())
    monkeypatch.setattr(prof.io, "MAX_PROFILE_BYTES", 1000)  # refused before it is read
    with pytest.raises(prof.ProfileError, match=r"big.json: .* is more than the 1000 bytes a profile may hold"):
        prof.load(big)


COMMANDS = {
    "compare (candidate)": lambda bad, out: ["compare", str(COMMITTED), str(bad)],
    "compare (baseline)": lambda bad, out: ["compare", str(bad), str(COMMITTED)],
    "fit": lambda bad, out: ["fit", str(bad), "--out", str(out)],
    "price": lambda bad, out: ["price", str(bad)],
    "report --baseline": lambda bad, out: ["report", str(COMMITTED), "--baseline", str(bad), "--out", str(out)],
    "carbon convert": lambda bad, out: ["carbon", "convert", str(bad)],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", ["every energy negated", "a point twice", "batch size 0", "batch size 1e30",
                                  "control characters in a name"])
def test_every_command_that_reads_a_profile_refuses_an_impossible_one(tmp_path, command, case):
    edit, _ = IMPOSSIBLE[case]
    bad = write_doc(tmp_path / "bad.json", edit(committed_doc()))
    out = tmp_path / "out"
    res = CliRunner().invoke(app, COMMANDS[command](bad, out))
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "bad.json" in lines[0] and "Traceback" not in res.output, res.output
    assert "\x1b" not in res.output and "\x01" not in res.output  # never raw on a terminal
    assert not out.exists()  # nothing half-written


# --- writing: what is written is safe -----------------------------------------------------------


def _profile() -> prof.Profile:
    return prof.Profile(greenbench_version="0", created_utc="x", updated_utc="x", ladder={"name": "t"},
                        settings={}, provenance={})


@pytest.mark.parametrize("mode", [0o444, 0o640])
def test_rewriting_a_profile_keeps_its_mode(tmp_path, mode):
    path = tmp_path / "p.json"
    prof.save(_profile(), path)
    os.chmod(path, mode)
    prof.save(_profile(), path)
    assert stat.S_IMODE(path.stat().st_mode) == mode


@pytest.mark.parametrize("err,text", [(errno.ENOSPC, "No space left on device"),
                                      (errno.EROFS, "Read-only file system"),
                                      (errno.EPERM, "Operation not permitted")])
def test_a_write_failure_names_the_path_and_leaves_nothing(tmp_path, monkeypatch, err, text):
    path = tmp_path / "p.json"

    def fail(*a, **k):
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(prof.io.os, "fsync" if err == errno.ENOSPC else "replace", fail)
    with pytest.raises(prof.WriteError, match=rf"^{path}: cannot write: {text}$"):
        prof.save(_profile(), path)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(prof.WriteError, match=rf"^{path}: cannot write: "):
        prof.check_writable(path) if err == errno.ENOSPC else prof.write_atomic(path, "x")


def _chattr(flag: str, path: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


def test_an_immutable_profile_is_found_before_measuring(tmp_path, cache_dir, monkeypatch):
    cfg = run_config(tmp_path, cache_dir, resume=True)
    cfg.out_path.parent.mkdir(parents=True)
    prof.save(_profile(), cfg.out_path)
    if not _chattr("+i", cfg.out_path):
        pytest.skip("chattr +i is not possible here (needs root and an ext4/xfs/btrfs folder)")
    try:
        monkeypatch.setattr(runner, "build_workload", lambda *a, **k: pytest.fail("measured before the check"))
        with pytest.raises(prof.WriteError, match=r"tiny\.json: cannot write: Operation not permitted .*immutable"):
            runner.run_profile(cfg)
    finally:
        _chattr("-i", cfg.out_path)


def run_config(tmp_path: Path, cache_dir, **kw) -> runner.RunConfig:
    lad = zoomod.get_ladder("tiny", write_zoo(tmp_path))
    return runner.RunConfig(ladder=lad, out_path=tmp_path / "o" / "tiny.json", protocol=FAST_PROTOCOL,
                            intensity=carbon.static_intensity(), cache_dir=Path(cache_dir), meter="fake",
                            threads=1, **kw)


def test_an_unwritable_output_fails_before_the_first_point_on_resume_too(tmp_path, cache_dir, monkeypatch):
    def no_space(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(runner, "build_workload", lambda *a, **k: pytest.fail("measured before the check"))
    for resume in (False, True):
        cfg = run_config(tmp_path, cache_dir, resume=resume)
        with monkeypatch.context() as m:
            m.setattr(prof.io.os, "fsync", no_space)
            with pytest.raises(prof.WriteError, match=r"tiny\.json: cannot write: No space left on device"):
                runner.run_profile(cfg)
    cfg = run_config(tmp_path, cache_dir, export_csv=tmp_path / "missing" / "x.csv")
    with pytest.raises(prof.WriteError, match=r"x\.csv: cannot write: the folder .*missing does not exist"):
        runner.run_profile(cfg)
    cfg = run_config(tmp_path, cache_dir, export_csv=tmp_path / "o" / "tiny.json")
    with pytest.raises(runner.RunError, match="is the profile itself"):
        runner.run_profile(cfg)
    assert not (tmp_path / "o" / "tiny.json").exists() and not prof.lock_path(cfg.out_path).exists()


def test_the_csv_export_is_written_with_the_profile(tmp_path, cache_dir, virtual_time):
    csv = tmp_path / "points.csv"
    result = runner.run_profile(run_config(tmp_path, cache_dir, export_csv=csv))
    import pandas as pd

    table = pd.read_csv(csv)
    assert list(table.columns) == prof.CSV_COLUMNS and len(table) == len(result.records) == 4
    assert (table["host_rss_peak_mib"] > 0).all() or sys.platform != "linux"
    assert table["gpu_mem_peak_mib"].isna().all()  # CPU points
    # the tiny ladder's models were trained by greenbench (here or by an earlier test): said so
    assert table["training_seed"].eq(0).all() and set(table["training_source"]) <= {"trained", "cache"}
    assert all(r.training is not None and r.training.seed == 0 for r in result.records)


def test_stale_temporary_files_of_a_killed_run_are_removed(tmp_path, cache_dir, virtual_time):
    out = tmp_path / "o"
    out.mkdir()
    old = time.time() - 3600
    stale = [out / ".tiny.json.k3j_x9q2.tmp", out / ".tiny.json.a1b2c3d4.probe"]
    kept = [out / ".tiny.json.notours.tmp", out / ".other.json.k3j_x9q2.tmp", out / "tiny.json.k3j_x9q2.tmp"]
    for f in stale + kept:
        f.write_text("half a profile")
        os.utime(f, (old, old))
    fresh = out / ".tiny.json.zzzzzzzz.tmp"  # newer than the lock: not from a dead run
    fresh.write_text("x")
    os.utime(fresh, (time.time() + 60, time.time() + 60))
    events = []
    runner.run_profile(run_config(tmp_path, cache_dir), events.append)
    assert not any(f.exists() for f in stale)
    assert all(f.exists() for f in [*kept, fresh])
    assert any("removed 2 temporary file(s)" in e.text for e in events)


def test_a_second_writer_is_refused_in_one_line(tmp_path, cache_dir, monkeypatch):
    cfg = run_config(tmp_path, cache_dir)
    cfg.out_path.parent.mkdir(parents=True)
    monkeypatch.setattr(runner, "build_workload", lambda *a, **k: pytest.fail("the second run measured"))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from greenbench.profile import WriteLock; "
         f"WriteLock({str(cfg.out_path)!r}).acquire(); print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        for resume in (False, True):
            busy = rf"tiny\.json is being written by another greenbench run \(pid {holder.pid}\); wait for it"
            with pytest.raises(prof.ProfileBusy, match=busy + " or choose another --name"):
                runner.run_profile(run_config(tmp_path, cache_dir, resume=resume))
    finally:
        holder.kill()
        holder.wait()
    with prof.WriteLock(cfg.out_path):  # a dead holder's lock is taken over
        assert prof.lock_path(cfg.out_path).read_text().strip() == str(os.getpid())
    assert not prof.lock_path(cfg.out_path).exists()


@pytest.mark.parametrize("stem", ["../../x", "/abs/x", "a/b", "..", ".hidden", "", "a\\b", "x\n"])
def test_a_profile_name_stays_inside_out(tmp_path, stem):
    with pytest.raises(runner.RunError, match="a profile name is a file name inside --out"):
        runner.profile_path(tmp_path / "o", stem)


def test_a_symlink_out_of_the_folder_is_refused(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "x.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(runner.RunError, match="points outside --out"):
        runner.profile_path(out, "x")
    assert runner.profile_path(out, "mnist1d-quick") == out / "mnist1d-quick.json"


def test_ctrl_c_says_what_is_on_disk(tmp_path, cache_dir, virtual_time, monkeypatch):
    real_build = runner.build_workload
    builds = []

    def build(*a, **k):
        builds.append(k["model"].name)
        if len(builds) == stop_at:
            raise KeyboardInterrupt
        return real_build(*a, **k)

    monkeypatch.setattr(runner, "build_workload", build)
    cfg = run_config(tmp_path, cache_dir)
    stop_at = 1
    with pytest.raises(runner.RunInterrupted) as e:  # before any point: nothing on disk
        runner.run_profile(cfg)
    assert (e.value.saved, e.value.points_saved) == (False, 0) and not cfg.out_path.exists()
    assert not prof.lock_path(cfg.out_path).exists()  # the lock went with the run
    builds.clear()
    stop_at = 2
    with pytest.raises(KeyboardInterrupt) as e:  # a KeyboardInterrupt still, for older callers
        runner.run_profile(cfg)
    assert isinstance(e.value, runner.RunInterrupted)
    assert (e.value.saved, e.value.points_saved) == (True, 2) and len(prof.load(cfg.out_path).records) == 2


# --- peak memory --------------------------------------------------------------------------------


def test_cpu_points_record_the_host_peak_rss_and_no_gpu_peak(tmp_path, cache_dir, virtual_time):
    result = runner.run_profile(run_config(tmp_path, cache_dir))
    for r in result.records:
        assert r.gpu_mem_peak_mib is None
        if sys.platform == "linux" and os.access(protocol.CLEAR_REFS_PATH, os.W_OK):
            assert r.host_rss_peak_mib is not None and r.host_rss_peak_mib > 10  # python and torch alone
            assert r.memory_reason is None
        else:
            assert r.host_rss_peak_mib is None and "cannot be reset" in (r.memory_reason or "")


def test_without_a_per_window_reset_the_host_peak_is_null_and_says_why(tmp_path, cache_dir, virtual_time,
                                                                       monkeypatch):
    monkeypatch.setattr(protocol, "CLEAR_REFS_PATH", str(tmp_path / "no" / "clear_refs"))
    result = runner.run_profile(run_config(tmp_path, cache_dir))
    for r in result.records:
        assert r.host_rss_peak_mib is None and r.gpu_mem_peak_mib is None
        assert "the host peak RSS cannot be reset per window" in (r.memory_reason or "")


def test_the_peak_is_the_largest_window_and_needs_every_window():
    from greenbench.measure.protocol import MemoryPeak, Trial
    from greenbench.measure.records import memory_peaks

    def trial(memory):
        return Trial(1, 1.0, None, (), None, memory)  # type: ignore[arg-type]

    peaks = [MemoryPeak(100.0, 300.0), MemoryPeak(120.0, 290.0), MemoryPeak(110.0, 310.0)]
    assert memory_peaks([trial(m) for m in peaks], is_cuda=True) == (120.0, 310.0, None)
    assert memory_peaks([trial(m) for m in peaks], is_cuda=False) == (None, 310.0, None)
    gaps = [MemoryPeak(100.0, 300.0), MemoryPeak(None, 290.0, gpu_reason="no statistics")]
    assert memory_peaks([trial(m) for m in gaps], is_cuda=True) == (None, 300.0, "no statistics")


def test_a_gpu_point_records_the_allocators_peak_over_its_windows(tmp_path, monkeypatch):
    import simgpu as sg
    import torch

    resets: list[object] = []
    peaks = iter(range(1, 1000))  # MiB; each window's peak one more than the last
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: resets.append(device))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: next(peaks) * 2**20)
    proto = Protocol(repeats=3, min_window_s=0.2, min_counter_updates=2, warmup_s=0.01, idle_s=0.2)
    result, _ = sg.profile(sg.SimConfig(), {"m": sg.constant_step(0.005)}, tmp_path / "p.json", protocol=proto,
                           batch_sizes=(1, 4))
    assert len(resets) == 6 and set(resets) == {"cuda:0"}  # reset before every window
    by_batch = {r.batch_size: r for r in result.records}
    assert sorted([by_batch[1].gpu_mem_peak_mib, by_batch[4].gpu_mem_peak_mib]) == [5.0, 6.0]  # each point's largest
    assert all(r.memory_reason is None or "host" in r.memory_reason for r in result.records)


def test_without_gpu_memory_statistics_the_gpu_peak_is_null_and_says_why(tmp_path, monkeypatch):
    import simgpu as sg
    import torch

    def unavailable(device=None):
        raise RuntimeError("no CUDA statistics")

    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", unavailable)
    proto = Protocol(repeats=3, min_window_s=0.2, min_counter_updates=2, warmup_s=0.01, idle_s=0.2)
    result, _ = sg.profile(sg.SimConfig(), {"m": sg.constant_step(0.005)}, tmp_path / "p.json", protocol=proto)
    (r,) = result.records
    assert r.gpu_mem_peak_mib is None and "GPU memory statistics are unavailable (RuntimeError)" in r.memory_reason


# --- what an output path may be -------------------------------------------------------------------


def test_a_symlinked_output_replaces_its_target_and_stays_a_link(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old")
    os.chmod(target, 0o640)
    link = tmp_path / "link.json"
    link.symlink_to(target.name)
    prof.check_writable(link)
    prof.io.write_atomic(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to("made.json")  # a link to a file not yet written: the file is made
    prof.io.write_atomic(dangling, "x")
    assert dangling.is_symlink() and (tmp_path / "made.json").read_text() == "x"
    assert [f.name for f in tmp_path.iterdir() if f.name.endswith(".tmp")] == []


def _special_files(tmp_path: Path) -> dict[str, Path]:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    files = {"a FIFO": fifo, "a folder": tmp_path / "folder"}
    files["a folder"].mkdir()
    if os.geteuid() == 0:  # a device node of its own (1, 3: null), never the machine's /dev
        dev = tmp_path / "null"
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        files["a character device"] = dev
    link = tmp_path / "to-fifo"
    link.symlink_to(fifo)
    files["a FIFO (through a link)"] = link
    return files


def test_a_fifo_a_device_or_a_folder_is_refused_as_an_output_and_left_as_it_was(tmp_path):
    for what, path in _special_files(tmp_path).items():
        kind = what.split(" (")[0]
        for check in (prof.check_writable, lambda p: prof.io.write_atomic(p, "x")):
            with pytest.raises(prof.WriteError) as e:
                check(path)
            assert str(e.value).startswith(f"{path}: cannot write: it is {kind}") and "\n" not in str(e.value)
        mode = os.stat(path).st_mode
        assert {"a FIFO": stat.S_ISFIFO, "a folder": stat.S_ISDIR, "a character device": stat.S_ISCHR}[kind](mode)


def test_an_output_below_a_regular_file_says_it_is_not_a_folder(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for path in (afile / "x.json", afile / "sub" / "x.json"):
        with pytest.raises(prof.WriteError, match=rf"^{path}: cannot write: {afile} is not a folder$"):
            prof.check_writable(path)
    with pytest.raises(prof.WriteError, match=r"the folder .*nowhere does not exist"):
        prof.check_writable(tmp_path / "nowhere" / "x.json")


# --- the profile command checks its outputs before measuring or noting anything -------------------


def profile_args(tmp_path: Path, *extra: str) -> list[str]:
    from helpers import FAST

    return ["profile", "tiny", "--zoo", str(write_zoo(tmp_path)), "--out", str(tmp_path / "o"), *FAST, *extra]


def one_error_line(res) -> str:
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    return lines[0]


@pytest.mark.parametrize("option", ["--json-out", "--markdown-out", "--csv-out", "--export-csv"])
def test_profile_checks_every_output_before_measuring(tmp_path, cache_dir, monkeypatch, option):
    monkeypatch.setattr(runner, "build_workload", lambda *a, **k: pytest.fail("measured before the check"))
    afile = tmp_path / "afile"
    afile.write_text("x")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    cli = CliRunner()
    env = {"GREENBENCH_CACHE": str(cache_dir)}
    line = one_error_line(cli.invoke(app, profile_args(tmp_path, option, str(afile / "x")), env=env))
    assert line.endswith(f"{afile / 'x'}: cannot write: {afile} is not a folder")
    line = one_error_line(cli.invoke(app, profile_args(tmp_path, option, str(fifo)), env=env))
    assert "it is a FIFO (named pipe), not a regular file" in line
    profile = tmp_path / "o" / "tiny.json"
    line = one_error_line(cli.invoke(app, profile_args(tmp_path, option, str(profile)), env=env))
    named = "--csv-out" if option == "--export-csv" else option  # one option named (the newer name), not two
    assert line.startswith(f"greenbench: error: {named} {profile}: is the profile itself"), line
    assert "--export-csv" not in line
    assert not profile.exists() and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_profile_resume_of_a_bad_profile_is_one_line_before_any_note(tmp_path, cache_dir, monkeypatch):
    monkeypatch.setattr(runner, "build_workload", lambda *a, **k: pytest.fail("measured a bad resume"))
    bad = tmp_path / "o" / "tiny.json"
    bad.parent.mkdir()
    bad.write_text('{"schema": "greenbench/profile", "schema_version": 1, "records": "x"}')
    res = CliRunner().invoke(app, profile_args(tmp_path, "--resume"), env={"GREENBENCH_CACHE": str(cache_dir)})
    line = one_error_line(res)
    assert line.startswith("greenbench: error: --resume: ") and str(bad) in line and "invalid profile" in line


def test_profile_name_keeps_one_json_and_refuses_an_empty_one(tmp_path, cache_dir, virtual_time):
    env = {"GREENBENCH_CACHE": str(cache_dir)}
    for empty in ("", " ", ".json"):
        line = one_error_line(CliRunner().invoke(app, profile_args(tmp_path, "--name", empty, "--model", "lin"),
                                                 env=env))
        assert "--name: give a file name for the profile" in line
    assert not (tmp_path / "o").exists()
    res = CliRunner().invoke(app, profile_args(tmp_path, "--name", "run.json", "--model", "lin",
                                               "--batch-size", "1"), env=env)
    assert res.exit_code == 0, res.output
    assert sorted(f.name for f in (tmp_path / "o").iterdir()) == ["run.json"]
