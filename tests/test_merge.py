"""greenbench merge: profiles of several hosts into one fleet profile (greenbench.profile.merge and
the command), and fit, price and report on the merged file, the hardware as one more axis."""

from __future__ import annotations

import json
from pathlib import Path

import helpers
import pytest
from synthetic_profiles import make_profile
from typer.testing import CliRunner

from greenbench import profile as prof
from greenbench.cli import app
from greenbench.profile.merge import MergeError, merge, sources_of, summarize

runner = CliRunner()
H100, L4 = "NVIDIA H100 80GB HBM3", "NVIDIA L4"
UUID_A, UUID_B = "GPU-aaaaaaaa-1111-2222-3333-444444444444", "GPU-bbbbbbbb-1111-2222-3333-444444444444"


def host_profile(host: str | None, gpu: str = H100, uuid: str = UUID_A, energy: dict | None = None,
                 models: dict | None = None, seed: int = 0, **kw) -> prof.Profile:
    """A synthetic profile measured on one GPU of ``host``; ``energy`` maps model -> a factor on
    its energy per item (a GPU type better or worse at that model)."""
    p = make_profile(seed, method="nvml", models=models, **kw)
    for r in p.records:
        f = (energy or {}).get(r.model, 1.0)
        r.device, r.device_name, r.device_uuid = "cuda:0", gpu, uuid
        r.energy_j_per_item *= f
        r.energy_net_j_per_item *= f
        lo, hi = r.energy_j_per_item_ci95
        r.energy_j_per_item_ci95 = (lo * f, hi * f)
        r.samples["energy_j_per_item"] = [x * f for x in r.samples["energy_j_per_item"]]
    p.provenance.host = host
    idle = prof.IdleMeterPower(domain="gpu", method="nvml", power_w=60.0)
    p.idle = {"cuda:0": prof.IdleBaseline(device="cuda:0", device_name=gpu, uuid=uuid, meters=[idle])}
    return p


def write(tmp_path: Path, name: str, p: prof.Profile) -> Path:
    path = tmp_path / name
    prof.save(p, path)
    return path


def invoke(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def one_line_error(res, *needles):
    return helpers.one_line_error(res, *needles, stream="stderr")  # the error line alone on stderr


# --- the library ---------------------------------------------------------------------------------


def test_two_hosts_give_two_points_per_setting_each_with_its_source(tmp_path):
    a, b = host_profile("gpu-a.cluster.example.org"), host_profile("gpu-b", L4, UUID_B, seed=1)
    m = merge([a, b], ["a.json", "b.json"])
    assert len(m.records) == len(a.records) + len(b.records)
    labels = [r.label for r in m.records]
    assert len(set(labels)) == len(labels)
    assert "small b8 fp32 gpu-a:cuda:0" in labels and "small b8 fp32 gpu-b:cuda:0" in labels
    sources = sources_of(m)
    assert sources is not None and [s["file"] for s in sources] == ["a.json", "b.json"]
    assert [s["host"] for s in sources] == ["gpu-a", "gpu-b"]
    assert sources[0]["provenance"]["host"] == "gpu-a.cluster.example.org"
    assert sources[1]["devices"] == {"cuda:0": "gpu-b:cuda:0"}
    for r in m.records:  # each record says where it came from, and keeps its accelerator
        s = sources[r.source]
        assert r.device == s["devices"]["cuda:0"] and r.device_name == (H100 if s["host"] == "gpu-a" else L4)
    # the idle baselines no longer collide on "cuda:0": keyed by host, and each source keeps its own
    assert set(m.idle) == {"gpu-a:cuda:0", "gpu-b:cuda:0"}
    assert m.idle["gpu-b:cuda:0"].device_name == L4 and m.idle["gpu-b:cuda:0"].uuid == UUID_B
    assert sources[1]["idle"]["cuda:0"]["uuid"] == UUID_B
    assert m.provenance.host == "gpu-a, gpu-b" and m.provenance.cpu_model == "Test CPU"
    assert m.settings.devices == ["gpu-a:cuda:0", "gpu-b:cuda:0"] and m.settings.protocol.repeats == 5
    # it loads with greenbench's own loader, every figure and provenance reference intact
    path = write(tmp_path, "fleet.json", m)
    again = prof.load(path)
    assert again.records == m.records and sources_of(again) == sources


def test_existing_profiles_load_with_no_source():
    committed = Path(__file__).resolve().parents[1] / "profiles" / "mnist1d-cpu-2core.json"
    assert all(r.source is None for r in prof.load(committed).records)
    assert sources_of(prof.load(committed)) is None


@pytest.mark.parametrize("change, words", [
    (lambda p: setattr(p.settings.protocol, "quick", True),
     "b.json: protocol differs from a.json: quick true vs false"),
    (lambda p: setattr(p.settings.protocol, "repeats", 3), "repeats 3 vs 5"),
    (lambda p: setattr(p.settings.protocol, "min_window_s", 0.25), "min_window_s 0.25 vs 2"),
    (lambda p: setattr(p.settings, "energy_basis", "net"), "energy basis net vs gross"),
    (lambda p: setattr(p.ladder, "name", "other"), "ladder 'other' differs from a.json's 'synthetic'"),
    (lambda p: setattr(p.ladder, "definition", {"dataset": {"seed": 2}}), "defined differently from a.json (dataset)"),
])
def test_incompatible_profiles_are_refused_in_one_line(change, words):
    a, b = host_profile("gpu-a"), host_profile("gpu-b", L4, UUID_B)
    change(b)
    with pytest.raises(MergeError) as e:
        merge([a, b], ["a.json", "b.json"])
    assert words in str(e.value) and "\n" not in str(e.value)


def test_what_may_differ_between_hosts():
    a, b = host_profile("gpu-a"), host_profile("gpu-b", L4, UUID_B)
    b.settings.protocol.seed, b.settings.protocol.max_cv = 7, 0.1
    b.settings.meter, b.settings.threads = "nvml", 4
    b.ladder.definition = {"devices": ["cuda:0"]}
    a.ladder.definition = {"devices": ["auto"]}
    m = merge([a, b], ["a.json", "b.json"])
    assert m.settings.protocol.seed is None and m.settings.protocol.max_cv is None  # they differ: not one value
    assert m.settings.meter is None and m.ladder.definition == {"devices": ["auto", "cuda:0"]}


def test_the_same_point_of_one_host_twice_is_refused():
    a = host_profile("gpu-a")
    rerun = host_profile("gpu-a", seed=3, models={"large": 0.95})  # the same GPU, large measured again
    with pytest.raises(MergeError) as e:
        merge([a, rerun], ["a.json", "a2.json"])
    assert str(e.value).startswith("a2.json: large b1 fp32 gpu-a:cuda:0 is also in a.json")


def test_slices_of_one_host_merge_and_two_gpus_seen_as_cuda0_stay_apart():
    small = host_profile("node1", models={"small": 0.8})
    large = host_profile("node1", models={"large": 0.95})  # another task on the same GPU: another model
    m = merge([small, large], ["s.json", "l.json"])
    assert {r.device for r in m.records} == {"node1:cuda:0"} and len(m.records) == 6
    assert list(m.idle) == ["node1:cuda:0"]  # the first baseline; each source keeps its own
    # two Slurm tasks on one node, each seeing its own GPU as cuda:0: the same point on two GPUs
    other = host_profile("node1", uuid=UUID_B, models={"small": 0.8}, seed=4)
    m = merge([small, other], ["s.json", "t.json"])
    assert {r.device for r in m.records} == {"node1:cuda:0:GPU-aaaaaaaa", "node1:cuda:0:GPU-bbbbbbbb"}
    assert len({r.label for r in m.records}) == 6


def test_hosts_without_a_name_or_sharing_a_short_one():
    m = merge([host_profile(None), host_profile("n1.a.org", uuid=UUID_B), host_profile("n1.b.org", uuid=UUID_B)],
              ["runs/slice-0.json", "x.json", "y.json"])
    assert [s["host"] for s in sources_of(m) or []] == ["slice-0", "n1.a.org", "n1.b.org"]


def test_failed_records_are_kept_and_a_merged_profile_merges_again(tmp_path):
    b = host_profile("gpu-b", L4, UUID_B)
    b.records[-1] = b.records[-1].model_copy(update={"status": "failed", "error": "OutOfMemoryError: x",
                                                     "energy_j_per_item": None})
    first = merge([host_profile("gpu-a"), b], ["a.json", "b.json"])
    assert sum(r.status == "failed" for r in first.records) == 1
    path = write(tmp_path, "fleet.json", first)
    c = host_profile("gpu-c", "NVIDIA A100", "GPU-cccccccc-0")
    again = merge([prof.load(path), c], [str(path), "c.json"])
    assert [s["file"] for s in sources_of(again) or []] == ["a.json", "b.json", "c.json"]
    assert {r.device for r in again.records} == {"gpu-a:cuda:0", "gpu-b:cuda:0", "gpu-c:cuda:0"}
    assert [r.model_copy(update={"source": None}) for r in again.records[:len(first.records)]] == \
        [r.model_copy(update={"source": None}) for r in first.records]
    assert all(sources_of(again)[r.source]["devices"]["cuda:0"] == r.device for r in again.records)  # type: ignore[index]
    with pytest.raises(MergeError, match="is also in"):  # b.json once directly and once inside fleet.json
        merge([prof.load(path), b], [str(path), "b.json"])
    s = summarize(again)
    assert [(x.host, x.device_names, x.points, x.ok) for x in s.sources] == [
        ("gpu-a", (H100,), 9, 9), ("gpu-b", (L4,), 9, 8), ("gpu-c", ("NVIDIA A100",), 9, 9)]


# --- the command ---------------------------------------------------------------------------------


@pytest.fixture
def fleet(tmp_path):
    """Two hosts: the H100 is better at the large model, the L4 at the small and medium ones."""
    a = write(tmp_path, "a.json", host_profile("gpu-a", energy={"small": 2.0, "medium": 2.0, "large": 0.5}))
    b = write(tmp_path, "b.json", host_profile("gpu-b", L4, UUID_B, seed=1))
    return a, b, tmp_path / "fleet.json"


def test_merge_writes_the_profile_and_says_what_came_from_where(fleet, monkeypatch):
    a, b, out = fleet
    monkeypatch.chdir(out.parent)
    a, b, out = Path(a.name), Path(b.name), Path(out.name)
    res = invoke("merge", a, b, "-o", out, env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    assert f"wrote {out}" in res.stderr and a.name in res.stdout and "wrote" not in res.stdout
    for word in ("host", "devices", "points", "gpu-a", "gpu-b", H100, L4):
        assert word in res.stdout
    assert all(len(line) <= 80 for line in res.stdout.splitlines())
    assert res.stdout.strip().splitlines()[-1] == "merged 18 points (18 ok) from 2 files on 2 hosts"
    assert len(prof.load(out).records) == 18
    again = invoke("merge", a, b, "-o", out)
    one_line_error(again, f"{out} exists: pass --force")
    res = invoke("merge", a, b, "--out", out, "--force", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["schema"] == "greenbench/merge" and doc["out"] == str(out) and doc["points"] == 18
    assert [(s["host"], s["device_names"], s["devices"]) for s in doc["sources"]] == [
        ("gpu-a", [H100], ["gpu-a:cuda:0"]), ("gpu-b", [L4], ["gpu-b:cuda:0"])]
    md = invoke("merge", a, b, "-o", out, "--force", "--markdown")
    assert md.exit_code == 0 and "| file | host | devices | points | ok | as |" in md.stdout


@pytest.mark.parametrize("case", ["quick", "duplicate", "twice", "input", "missing", "not json"])
def test_merge_refuses_in_one_line(fleet, case):
    a, b, out = fleet
    args: list = [a, b, "-o", out]
    words = {"quick": "protocol differs from", "duplicate": "is also in", "twice": "given twice",
             "input": "is an input of this command", "missing": "no such file", "not json": "profile"}[case]
    if case == "quick":
        p = prof.load(b)
        p.settings.protocol.quick = True
        prof.save(p, b)
    elif case == "duplicate":
        prof.save(prof.load(a), out.with_name("a2.json"))
        args = [a, out.with_name("a2.json"), "-o", out]
    elif case == "twice":
        args = [a, out.parent / "." / a.name, "-o", out]
    elif case == "input":
        args = [a, b, "-o", b, "--force"]
    elif case == "missing":
        args = [a, out.with_name("nope.json"), "-o", out]
    else:
        out.with_name("bad.json").write_text("{nope")
        args = [a, out.with_name("bad.json"), "-o", out]
    one_line_error(invoke("merge", *args), words)
    assert not out.exists()


def test_fit_price_and_report_span_the_hosts(fleet, tmp_path):
    a, b, out = fleet
    assert invoke("merge", a, b, "-o", out).exit_code == 0
    fit = invoke("fit", out, "--no-plots", "--out", tmp_path / "fit", "--json")
    assert fit.exit_code == 0, fit.output
    doc = json.loads(fit.stdout)
    assert doc["profile"]["host"] == "gpu-a, gpu-b"
    front = [p for p in doc["points"] if p["on_frontier"]]
    assert {p["device"].split(":")[0] for p in front} == {"gpu-a", "gpu-b"}  # the frontier spans the hardware
    price = invoke("price", out, "--json")
    assert price.exit_code == 0, price.output
    res = json.loads(price.stdout)
    # H: the large model, cheapest on the H100; R: a small model, cheapest on the L4
    assert res["premium"]["device"] == "gpu-a:cuda:0" and res["premium"]["model"] == "large"
    assert res["reduced"]["device"] == "gpu-b:cuda:0"
    report = invoke("report", out, "--out", tmp_path / "report")
    assert report.exit_code == 0, report.output
    html = (tmp_path / "report" / "report.html").read_text()
    assert "gpu-a:cuda:0" in html and "gpu-b:cuda:0" in html and L4 in html
