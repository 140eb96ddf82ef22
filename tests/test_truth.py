"""Energy that is not a measurement says so in every output.

One profile metered with ``--meter fake`` (the constant-power test meter) goes through profile,
report, compare (against itself), fit and price; each output must call its energy not a
measurement (greenbench.methods.method_label's words), and none may call it measured.
"""

import json
import re

import pytest
from helpers import FAST, write_zoo
from typer.testing import CliRunner

from greenbench.cli import app
from greenbench.methods import FAKE, is_measurement, method_label, method_note

runner = CliRunner()
NOT_A_MEASUREMENT = "not a measurement"

# Phrases that would call this energy measured: "(batch 8, measured)", "measured (fake)",
# "energy measured by fake", "(measured)". "not a measurement" and advice such as "for measured
# energy" are not among them.
CLAIMS_MEASURED = re.compile(r", measured\b|\(measured\b|\bmeasured \(|\benergy (?:is |was )?measured\b"
                             r"|\bmeasured by\b")


def invoke(args, cache_dir):
    return runner.invoke(app, [str(a) for a in args], env={"GREENBENCH_CACHE": str(cache_dir)})


def says_not_measured(text: str) -> None:
    assert NOT_A_MEASUREMENT in text, text
    assert not CLAIMS_MEASURED.findall(text), CLAIMS_MEASURED.findall(text)


@pytest.fixture(scope="module")
def fake_profile(tmp_path_factory, cache_dir):
    """The tiny ladder metered by the fake meter: (path, the profile command's result)."""
    tmp = tmp_path_factory.mktemp("truth")
    res = invoke(["profile", "tiny", "--zoo", write_zoo(tmp), "--out", tmp / "out", *FAST], cache_dir)
    assert res.exit_code == 0, res.output
    path = tmp / "out" / "tiny.json"
    doc = json.loads(path.read_text())
    assert {r["energy_method"] for r in doc["records"]} == {FAKE}
    return path, res


def test_one_rule_and_one_label():
    assert [is_measurement(m) for m in ("nvml_counter", "nvml_power", "rapl")] == [True] * 3
    assert not any(is_measurement(m) for m in ("estimate", "fake", "unavailable", None))
    assert method_label("nvml_counter") == "measured (nvml_counter)"
    assert method_label("estimate") == "estimate, not a measurement"
    assert method_label("fake") == "fake test meter, not a measurement"
    assert method_label("unavailable") == "unavailable"
    assert method_note("fake") == "from the fake test meter (energy_method 'fake'), not a measurement"


def test_meters_re_export_the_names():
    from greenbench import methods
    from greenbench.meters import base

    assert base.ESTIMATE is methods.ESTIMATE and base.is_measurement is methods.is_measurement
    assert base.METHODS == methods.METHODS and base.MEASURED_METHODS == methods.MEASURED_METHODS


def test_profile_summary_says_not_a_measurement(fake_profile):
    _, res = fake_profile
    summary = res.stdout[res.stdout.index("Most accurate"):]
    says_not_measured(summary)
    assert method_label(FAKE) in summary


def test_report_has_the_banner(fake_profile, tmp_path, cache_dir):
    path, _ = fake_profile
    res = invoke(["report", path, "--out", tmp_path / "rep"], cache_dir)
    assert res.exit_code == 0, res.output
    html = (tmp_path / "rep" / "report.html").read_text("utf-8")
    assert "Energy here is from the fake test meter, not a measurement." in html
    assert method_label(FAKE) in html
    says_not_measured(html)


def test_compare_marks_every_energy_row(fake_profile, tmp_path, cache_dir):
    path, _ = fake_profile
    js, md = tmp_path / "c.json", tmp_path / "c.md"
    res = invoke(["compare", path, path, "--json", js, "--markdown", md], cache_dir)
    assert res.exit_code == 0, res.output
    says_not_measured(res.stdout)
    says_not_measured(md.read_text("utf-8"))
    doc = json.loads(js.read_text())
    energy_rows = [r for r in doc["rows"] if r["metric"] == "energy_j_per_item"]
    assert len(energy_rows) == 4 and all(r["estimate"] for r in energy_rows)
    assert doc["summary"]["estimates"] == len(energy_rows)
    assert not any(r["estimate"] for r in doc["rows"] if r["metric"] != "energy_j_per_item")


def test_fit_says_not_a_measurement(fake_profile, tmp_path, cache_dir):
    path, _ = fake_profile
    res = invoke(["fit", path, "--out", tmp_path / "fit", "--no-plots"], cache_dir)
    assert res.exit_code == 0, res.output
    says_not_measured(res.stderr)
    doc = json.loads((tmp_path / "fit" / "tradeoff.json").read_text())
    says_not_measured(json.dumps(doc["energy_methods"]))


def test_price_says_not_a_measurement(fake_profile, cache_dir):
    path, _ = fake_profile
    res = invoke(["price", path, "--trace", "DE"], cache_dir)
    assert res.exit_code == 0, res.output
    says_not_measured(res.output)
