"""The hardware as an axis of fit, price and report: on a fleet profile (two hosts, one H100 and
one L4) each operating point carries its hardware, fit says which hardware types the frontier
spans, price names what H and R run on, and the report shows each point's; a profile measured on
one hardware shows none of it."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest
from synthetic_profiles import make_profile
from typer.testing import CliRunner

from greenbench import profile as prof
from greenbench.carbon.trace import load_trace
from greenbench.cli import app
from greenbench.price import calculator as pricing
from greenbench.price.mix import load_tradeoff
from greenbench.price.users import load_users
from greenbench.profile.merge import merge
from greenbench.tradeoff.points import HardwareShare, hardware_shares, operating_points, pareto_front

runner = CliRunner()
H100_NAME, L4_NAME = "NVIDIA H100 80GB HBM3", "NVIDIA L4"


def host_profile(host: str, accelerator: str | None, name: str, seed: int, energy: dict | None = None,
                 latency: float = 1.0) -> prof.Profile:
    """A synthetic profile of one GPU of ``host`` whose Ray accelerator type is ``accelerator``;
    ``energy`` maps model -> a factor on its energy per item, ``latency`` is a factor on every
    latency (a GPU type better or worse at a model)."""
    p = make_profile(seed, method="nvml_counter")
    for r in p.records:
        f = (energy or {}).get(r.model, 1.0)
        r.device, r.device_name, r.accelerator_type, r.host = "cuda:0", name, accelerator, host
        r.energy_j_per_item *= f
        r.energy_net_j_per_item *= f
        lo, hi = r.energy_j_per_item_ci95
        r.energy_j_per_item_ci95 = (lo * f, hi * f)
        r.samples["energy_j_per_item"] = [x * f for x in r.samples["energy_j_per_item"]]
        r.latency_p50_ms *= latency
        r.latency_p95_ms *= latency
        r.latency_p99_ms *= latency
        for k in ("latency_p50_ms", "latency_p95_ms"):
            r.samples[k] = [x * latency for x in r.samples[k]]
    p.provenance.host = host
    idle = prof.IdleMeterPower(domain="gpu", method="nvml_counter", power_w=60.0)
    p.idle = {"cuda:0": prof.IdleBaseline(device="cuda:0", device_name=name, uuid=f"GPU-{host}", meters=[idle])}
    return p


def fleet_profile(l4_energy: dict | None = None, l4_latency: float = 1.0) -> prof.Profile:
    """Hosts a (H100: better at the large model, worse at the others) and b (L4), merged: devices
    a:cuda:0 and b:cuda:0."""
    a = host_profile("a", "H100", H100_NAME, 0, {"small": 2.0, "medium": 2.0, "large": 0.5})
    b = host_profile("b", "L4", L4_NAME, 1, l4_energy, l4_latency)
    return merge([a, b], ["a.json", "b.json"])


@pytest.fixture
def fleet(tmp_path) -> Path:
    path = tmp_path / "fleet.json"
    prof.save(fleet_profile(), path)
    return path


@pytest.fixture
def single(tmp_path) -> Path:
    path = tmp_path / "single.json"
    prof.save(make_profile(0), path)  # every point on "Test CPU"
    return path


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "80"})


def hardware_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("hardware:")]


def narrow(stdout: str) -> None:
    lines = stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)


# --- the library ---------------------------------------------------------------------------------


def test_operating_points_carry_the_accelerator_type_else_the_device_name():
    p = fleet_profile()
    points, _ = operating_points(p)
    assert {(pt.device, pt.hardware) for pt in points} == {("a:cuda:0", "H100"), ("b:cuda:0", "L4")}
    for r in p.records:  # no accelerator type (merged from hosts profiled without Ray): the device's name
        r.accelerator_type = None
    assert {pt.hardware for pt in operating_points(p)[0]} == {H100_NAME, L4_NAME}
    single, _ = operating_points(make_profile(0))
    assert {pt.hardware for pt in single} == {"Test CPU"}
    assert hardware_shares(single, pareto_front(single)) == ()  # one hardware: no axis


def test_hardware_shares_count_each_types_points_and_frontier_points():
    points, _ = operating_points(fleet_profile())
    front = pareto_front(points)
    shares = hardware_shares(points, front)
    assert [s.hardware for s in shares] == ["H100", "L4"]
    assert [s.points for s in shares] == [9, 9]
    assert [s.frontier for s in shares] == [sum(p.hardware == h for p in front) for h in ("H100", "L4")]
    assert all(s.frontier > 0 for s in shares)  # the frontier spans both
    unnamed = [replace(points[0], hardware=None), *points[1:]]
    last = hardware_shares(unnamed, front)[-1]
    assert last == HardwareShare(None, 1, int(points[0] in front)) and last.name == "unknown hardware"


def test_price_chooses_h_on_one_gpu_type_and_r_on_another_and_no_number_changes():
    points, _ = operating_points(fleet_profile())
    users = load_users()
    trace = load_trace("US-MIDA-PJM")
    res = pricing.price_points(points, users, trace)
    ch = res.choice
    assert ch.spans_hardware and ch.hardware == ("H100", "L4")
    assert (ch.premium.hardware, ch.reduced.hardware) == ("H100", "L4")
    doc = pricing.to_dict(res)
    assert (doc["premium"]["hardware"], doc["reduced"]["hardware"]) == ("H100", "L4")
    assert doc["hardware_types"] == ["H100", "L4"]
    assert all(row["hardware"] in ("H100", "L4") for row in doc["ranking"]["rows"])
    # the same points without their hardware price to the same numbers: the axis names, never decides
    bare = pricing.to_dict(pricing.price_points([replace(p, hardware=None) for p in points], users, trace))
    assert not pricing.price_points([replace(p, hardware=None) for p in points], users, trace).choice.spans_hardware

    def strip(d):
        if isinstance(d, dict):
            return {k: strip(v) for k, v in d.items() if k not in ("hardware", "hardware_types")}
        return [strip(x) for x in d] if isinstance(d, list) else d

    assert strip(doc) == strip(bare)


# --- fit -----------------------------------------------------------------------------------------


def test_fit_writes_each_points_hardware_and_says_the_frontier_spans_both(fleet, tmp_path):
    res = invoke("fit", fleet, "--no-plots", "--out", tmp_path / "fit", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert {(p["device"], p["hardware"]) for p in doc["points"]} == {("a:cuda:0", "H100"), ("b:cuda:0", "L4")}
    assert {p["hardware"] for p in doc["points"] if p["on_frontier"]} == {"H100", "L4"}
    with open(tmp_path / "fit" / "tradeoff.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["hardware"] for r in rows} == {"H100", "L4"}
    assert list(rows[0])[-2:] == ["energy_method", "on_frontier"]

    res = invoke("fit", fleet, "--no-plots", "--out", tmp_path / "fit")
    assert res.exit_code == 0, res.output
    narrow(res.stdout)
    front = [p for p in doc["points"] if p["on_frontier"]]
    n_h, n_l = (sum(p["hardware"] == h for p in front) for h in ("H100", "L4"))
    text = " ".join(res.stdout.split())  # the line wraps at 80 columns
    assert (f"hardware: the frontier spans 2 hardware types, with {n_h} of H100's 9 points and "
            f"{'all ' if n_l == 9 else ''}{n_l} of L4's 9") in text
    # under the frontier table, above the curves
    out = res.stdout
    assert out.index("Pareto frontier") < out.index("hardware:") < out.index("Curves")
    assert "hardware: the frontier spans 2" in invoke("fit", fleet, "--no-plots", "--out", tmp_path / "fit",
                                                      "--markdown").stdout


def test_fit_says_when_the_frontier_is_all_on_one_hardware(tmp_path):
    path = tmp_path / "fleet.json"  # the L4 slower and hungrier at every point: each is beaten by its H100 twin
    prof.save(fleet_profile({"small": 4.0, "medium": 4.0, "large": 4.0}, l4_latency=1.5), path)
    res = invoke("fit", path, "--no-plots", "--out", tmp_path / "fit", "--json")
    assert res.exit_code == 0, res.output
    front = [p for p in json.loads(res.stdout)["points"] if p["on_frontier"]]
    assert {p["hardware"] for p in front} == {"H100"}
    res = invoke("fit", path, "--no-plots", "--out", tmp_path / "fit")
    assert res.exit_code == 0, res.output
    narrow(res.stdout)
    assert (f"hardware: the frontier is all on H100 ({len(front)} of its 9 points); none of L4's 9 points is on "
            "it") in " ".join(res.stdout.split())


def test_a_single_hardware_profile_prints_no_hardware_line(single, tmp_path):
    res = invoke("fit", single, "--no-plots", "--out", tmp_path / "fit")
    assert res.exit_code == 0, res.output
    assert hardware_lines(res.stdout) == [] and "hardware" not in res.stdout
    assert "hardware" not in invoke("fit", single, "--no-plots", "--out", tmp_path / "fit", "--markdown").stdout
    doc = json.loads(invoke("fit", single, "--no-plots", "--out", tmp_path / "fit", "--json").stdout)
    assert {p["hardware"] for p in doc["points"]} == {"Test CPU"}  # the key is there, one value
    price = invoke("price", single, "--draws", "0")
    assert price.exit_code == 0, price.output
    assert "H runs on" not in price.stdout and "Test CPU" not in price.stdout and "(of the profile" not in price.stdout
    res = json.loads(invoke("price", single, "--draws", "0", "--json").stdout)
    assert res["hardware_types"] == ["Test CPU"] and res["premium"]["hardware"] == "Test CPU"


# --- price ---------------------------------------------------------------------------------------


def test_price_names_the_hardware_of_h_and_r(fleet):
    res = invoke("price", fleet, "--draws", "0", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    h, r = doc["premium"], doc["reduced"]
    assert (h["device"], h["hardware"]) == ("a:cuda:0", "H100") and h["model"] == "large"
    assert (r["device"], r["hardware"]) == ("b:cuda:0", "L4")
    assert doc["hardware_types"] == ["H100", "L4"]

    res = invoke("price", fleet, "--draws", "0")
    assert res.exit_code == 0, res.output
    narrow(res.stdout)
    text = " ".join(res.stdout.split())
    assert ("H runs on H100 and R on L4 (of the profile's 2 hardware types): green requests in high-carbon "
            "hours are served on L4") in text
    rows = [line.split() for line in res.stdout.splitlines() if line[:3] in ("H  ", "R  ")]
    assert [(row[0], " ".join(row[1:6])) for row in rows] == [
        ("H", f"{h['label']} (H100)"), ("R", f"{r['label']} (L4)")]
    md = invoke("price", fleet, "--draws", "0", "--markdown").stdout
    assert "H runs on H100 and R on L4" in md and f"{h['label']} (H100)" in md


def test_price_on_the_fits_tradeoff_json_keeps_the_hardware(fleet, tmp_path):
    assert invoke("fit", fleet, "--no-plots", "--out", tmp_path / "fit").exit_code == 0
    tj = tmp_path / "fit" / "tradeoff.json"
    assert {p.hardware for p in load_tradeoff(tj).points} == {"H100", "L4"}
    res = invoke("price", tj, "--draws", "0", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert (doc["premium"]["hardware"], doc["reduced"]["hardware"]) == ("H100", "L4")
    # a tradeoff.json of an earlier greenbench has no hardware: priced as before, no axis
    old = json.loads(tj.read_text())
    for p in old["points"]:
        del p["hardware"]
    tj.write_text(json.dumps(old))
    res = invoke("price", tj, "--draws", "0", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["hardware_types"] == [None]


# --- report --------------------------------------------------------------------------------------


def test_report_shows_each_points_hardware(fleet, single, tmp_path):
    res = invoke("report", fleet, "--out", tmp_path / "report")
    assert res.exit_code == 0, res.output
    html = (tmp_path / "report" / "report.html").read_text()
    assert "<th>hardware</th>" in html
    assert html.count("<td>H100</td>") == 9 and html.count("<td>L4</td>") == 9
    assert f"{H100_NAME} (a:cuda:0), {L4_NAME} (b:cuda:0)" in html  # the names already say the types
    res = invoke("report", single, "--out", tmp_path / "single")
    assert res.exit_code == 0, res.output
    assert "<th>hardware</th>" not in (tmp_path / "single" / "report.html").read_text()
