"""greenbench report: one self-contained HTML file, PNG plots beside it, and a look in a browser."""

import base64
import re
import subprocess
import sys
from pathlib import Path

import pytest
from synthetic_profiles import edited, make_profile, scaled
from typer.testing import CliRunner

from greenbench import profile as prof
from greenbench.cli import app
from greenbench.report import html as report

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
runner = CliRunner()


@pytest.fixture(scope="module")
def with_baseline(tmp_path_factory):
    base = make_profile(3, cv=0.03, method="estimate")
    cand = scaled(base, "medium", 8, "energy_j_per_item", 1.25)
    out = tmp_path_factory.mktemp("report")
    rep = report.write_report(cand, out, profile_name="cand.json", baseline=base, baseline_name="base.json")
    return rep, rep.html_path.read_text("utf-8")


def test_html_and_pngs_are_written(with_baseline):
    rep, html = with_baseline
    assert set(rep.images) == {"accuracy_vs_energy.png", "latency_vs_batch.png", "energy_by_model.png",
                               "changes.png"}
    for path in rep.images.values():
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
        # the same picture is inline in the HTML
        assert base64.b64encode(data).decode() in html
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")


def test_report_is_self_contained(with_baseline):
    _, html = with_baseline
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html and "<link" not in html and "@import" not in html
    sources = re.findall(r'src="([^"]*)"', html)
    assert len(sources) == 4 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "url(" not in html


def test_report_shows_points_changes_and_estimates(with_baseline):
    _, html = with_baseline
    assert "Energy here is an estimate, not a measurement." in html
    assert html.count('<span class="tag">estimate</span>') >= 9  # every point's method
    assert "Changes against the baseline" in html
    assert "1 regression: medium b8 fp32 cpu energy_j_per_item +25.0%" in html
    assert 'class="verdict fail"' in html
    for model in ("small", "medium", "large"):
        assert f"<td>{model}</td>" in html
    assert "Provenance" in html and "abc123" in html


def test_without_baseline_no_changes(tmp_path):
    rep = report.write_report(make_profile(1), tmp_path, profile_name="p.json")
    html = rep.html_path.read_text()
    assert "changes.png" not in rep.images and "Changes against the baseline" not in html
    assert "estimate, not a measurement" not in html  # measured (rapl) energy is not labelled an estimate
    assert "ESTIMATE" not in html


def test_missing_energy_is_said_not_drawn(tmp_path):
    p = make_profile(1)
    for r in p.records:
        r.energy_j_per_item, r.energy_method, r.energy_reason = None, "unavailable", "no meter"
    rep = report.write_report(p, tmp_path, profile_name="p.json")
    assert "accuracy_vs_energy.png" in rep.missing_plots and "energy_by_model.png" in rep.missing_plots
    assert "latency_vs_batch.png" in rep.images
    assert "Accuracy against energy per item: not drawn" in rep.html_path.read_text()


def test_text_from_the_profile_is_escaped(tmp_path):
    p = edited(make_profile(1), "small", 1, status="failed", error="<script>alert(1)</script>")
    html = report.write_report(p, tmp_path, profile_name="p.json").html_path.read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_cli_report(tmp_path):
    base, cand = tmp_path / "base.json", tmp_path / "cand.json"
    b = make_profile(2, cv=0.03)
    prof.save(b, base)
    prof.save(scaled(b, "large", 64, "latency_p95_ms", 1.5), cand)
    out = tmp_path / "rep"
    res = runner.invoke(app, ["report", str(cand), "--baseline", str(base), "--out", str(out)])
    assert res.exit_code == 0, res.output  # a report is not a gate
    # the verdict is the result (stdout); what was written is a note (stderr)
    assert len(res.stdout.strip().splitlines()) == 1
    assert res.stdout.startswith("1 regression: large b64 fp32 cpu latency_p95_ms +50.0%")
    assert (out / "changes.png").exists() and f"wrote {out / 'report.html'}" in res.stderr


def test_cli_report_bad_input(tmp_path):
    res = runner.invoke(app, ["report", str(ROOT / "README.md")])
    assert res.exit_code == 2 and "not a greenbench profile" in res.output
    good = tmp_path / "p.json"
    prof.save(make_profile(1), good)
    (tmp_path / "afile").write_text("x")
    res = runner.invoke(app, ["report", str(good), "--out", str(tmp_path / "afile")])
    assert res.exit_code == 2 and "not a folder" in res.output
    res = runner.invoke(app, ["report", str(good), "--fail-on", "accuracy:+1%"])
    assert res.exit_code == 2 and "write accuracy:-1%" in res.output


@pytest.mark.slow
def test_report_looks_right_in_headless_chromium(tmp_path):
    """Renders the report of the committed profile against a copy with one regression in Chromium
    and checks the screenshot (docs/check_report.py): drawn, plots decoded, red verdict."""
    sys.path.insert(0, str(ROOT / "docs"))
    import check_report

    if check_report.find_chromium() is None:
        pytest.skip("Chromium is not installed (apt-get install chromium, or set CHROMIUM=...)")
    real = ROOT / "profiles" / "mnist1d-cpu-2core.json"
    cand = scaled(prof.load(real), "cnn-64", 256, "energy_j_per_item", 1.10)
    cand_path = tmp_path / "cand.json"
    prof.save(cand, cand_path)
    shot = tmp_path / "shot.png"
    proc = subprocess.run([sys.executable, str(ROOT / "docs" / "check_report.py"), str(cand_path),
                           "--baseline", str(real), "--out", str(tmp_path / "rep"), "--screenshot", str(shot)],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok: the page is drawn, the plots render, the verdict banner is red" in proc.stdout
    assert shot.read_bytes().startswith(PNG_MAGIC)


def test_a_profile_with_no_points_is_one_line_not_a_traceback(tmp_path):
    import json
    from pathlib import Path

    from typer.testing import CliRunner

    from greenbench.cli import app

    doc = json.loads((Path(__file__).parent.parent / "profiles" / "mnist1d-cpu-2core.json").read_text())
    doc["records"] = []
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps(doc))
    res = CliRunner().invoke(app, ["report", str(empty), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "no operating point" in res.output and "Traceback" not in res.output


def test_energy_by_model_is_points_on_a_log_axis():
    """Bars on a log axis start from an arbitrary floor (a 1/1440 ratio looked like 1/4): markers
    instead, at each point's value, with its 95% interval."""
    from greenbench.report import plots

    p = make_profile(1)
    fig = plots.energy_by_model_figure(p)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and len(ax.patches) == 0  # no bars
    drawn = sorted(float(y) for line in ax.get_lines() if line.get_marker() in tuple(plots.MARKERS)
                   for y in line.get_ydata())  # the markers (not the whisker caps, nor the guide lines)
    assert drawn == pytest.approx(sorted(r.energy_j_per_item for r in p.records))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["small", "medium", "large"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["batch 1", "batch 8", "batch 64"]


def test_quick_against_full_is_said_first(tmp_path):
    full = make_profile(2, cv=0.03)
    quick = make_profile(3, cv=0.03, quick=True)
    rep = report.write_report(quick, tmp_path / "q", profile_name="q.json", baseline=full, baseline_name="full.json")
    assert rep.protocol_warning == ("the baseline full.json is a full profile and q.json a quick one: short windows "
                                    "shift latency and energy, so the changes may be the protocol's, not the code's; "
                                    "compare a quick profile with a quick baseline and a full one with a full one")
    assert rep.comparison is not None and rep.comparison.warnings[0] == rep.protocol_warning
    html = rep.html_path.read_text("utf-8")
    assert html.count("a full profile and q.json a quick one") == 1  # once, as a banner ...
    assert html.index("Not like with like:") < html.index('class="verdict')  # ... above the verdict
    same = report.write_report(quick, tmp_path / "s", profile_name="q.json", baseline=quick, baseline_name="b.json")
    assert same.protocol_warning is None and "Not like with like" not in same.html_path.read_text("utf-8")


def test_cli_report_warns_quick_against_full_in_one_line(tmp_path):
    base, cand = tmp_path / "full.json", tmp_path / "quick.json"
    prof.save(make_profile(2, cv=0.03), base)
    prof.save(make_profile(3, cv=0.03, quick=True), cand)
    res = runner.invoke(app, ["report", str(cand), "--baseline", str(base), "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    lines = [line for line in res.stderr.splitlines() if "a full profile and" in line]
    assert len(lines) == 1 and lines[0].startswith("warning: the baseline") and "quick one" in lines[0]
