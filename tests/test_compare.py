"""compare: directions, thresholds, significance on per-repeat samples, comparability, exports."""

import json
import xml.etree.ElementTree as ET

import pytest
from synthetic_profiles import edited, make_profile, scaled

from greenbench.compare import export as export
from greenbench.compare import gate as cmp


def run(base, cand, *fail_on, **kw):
    options = cmp.Options(thresholds=cmp.parse_thresholds(list(fail_on) or None), **kw)
    return cmp.compare(base, cand, options)


def flagged(res):
    return {(r.key[1], r.key[2], r.metric) for r in res.regressions}


# --- thresholds ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, value, relative", [
    ("energy_j_per_item:+5%", 0.05, True), ("latency_p95_ms:+10%", 0.10, True),
    ("accuracy:-0.01", -0.01, False), ("items_per_s:-3%", -0.03, True),
    ("latency_p99_ms:2", 2.0, False),  # no sign: the bad direction
    ("accuracy:1%", -0.01, True), ("energy_j_per_item:+0%", 0.0, True),
])
def test_thresholds_parse_with_their_direction(text, value, relative):
    th = cmp.parse_threshold(text)
    assert th.value == pytest.approx(value) and th.relative is relative


@pytest.mark.parametrize("text, words", [
    ("energy_j_per_item:-5%", "write energy_j_per_item:+5%"),
    ("accuracy:+0.01", "write accuracy:-0.01"),
    ("items_per_s:+5%", "write items_per_s:-5%"),
    ("joules:+5%", "unknown metric 'joules'"),
    ("energy_j_per_item", "write METRIC:+5%"),
    ("energy_j_per_item:+five%", "write METRIC:+5%"),
    ("accuracy:-100%", "cannot happen"),
])
def test_bad_thresholds_are_one_line_errors(text, words):
    with pytest.raises(cmp.CompareError) as e:
        cmp.parse_threshold(text)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_default_thresholds_and_duplicates():
    assert [t.text for t in cmp.Options().thresholds] == list(cmp.DEFAULT_THRESHOLDS)
    with pytest.raises(cmp.CompareError, match="given twice"):
        cmp.parse_thresholds(["accuracy:-0.01", "accuracy:-1%"])
    with pytest.raises(cmp.CompareError, match="alpha"):
        cmp.Options(alpha=1.5)
    with pytest.raises(cmp.CompareError, match="--estimates"):
        cmp.Options(estimates="maybe")
    with pytest.raises(cmp.CompareError, match="--no-stats-for"):
        cmp.Options(no_stats_for=frozenset({"speed"}))


# --- known shifts --------------------------------------------------------------------------------

def test_a_profile_compared_with_itself_has_no_change():
    p = make_profile(1, cv=0.1)
    res = run(p, p)
    assert res.exit_code == 0 and not res.regressions
    assert {r.test for r in res.rows} == {"identical"} and all(r.change == 0 for r in res.rows)


def test_known_shifts_are_flagged_exactly():
    shifts = {("medium", 8, "energy_j_per_item"): 1.20, ("large", 64, "latency_p95_ms"): 1.40,
              ("small", 1, "items_per_s"): 0.75,
              ("large", 1, "energy_j_per_item"): 1.03}  # a real shift, but under its +5% threshold
    base = make_profile(11, cv=0.02)
    cand = make_profile(12, cv=0.02, shifts=shifts, accuracy_shift={"small": -80})
    res = run(base, cand, "energy_j_per_item:+5%", "latency_p95_ms:+10%", "items_per_s:-10%", "accuracy:-0.01")
    assert flagged(res) == {("medium", 8, "energy_j_per_item"), ("large", 64, "latency_p95_ms"),
                            ("small", 1, "items_per_s"), ("small", 1, "accuracy"),
                            ("small", 8, "accuracy"), ("small", 64, "accuracy")}
    assert res.exit_code == 1
    row = next(r for r in res.regressions if r.metric == "energy_j_per_item")
    assert row.change == pytest.approx(0.20, abs=0.05) and row.test == "welch-log" and row.p_adjusted < 0.05
    line = res.summary_line()
    assert line.startswith("6 regressions: small b1 fp32 cpu items_per_s -2") and line.endswith("; and 3 more")


def test_improvements_are_reported_not_failed():
    base = make_profile(3, cv=0.02)
    cand = make_profile(4, cv=0.02, shifts={("large", 64, "energy_j_per_item"): 0.7})
    res = run(base, cand)
    assert res.exit_code == 0
    assert [(r.key[1], r.key[2]) for r in res.rows if r.status == "improvement"] == [("large", 64)]


def test_a_ten_percent_rise_on_one_point_of_a_copy_fails_and_names_it():
    base = make_profile(5, cv=0.15)  # noisy: 10% is within the noise of independent runs
    for samples in (True, False):  # the value and its samples scaled, or the value alone
        cand = scaled(base, "medium", 8, "energy_j_per_item", 1.10, samples=samples)
        res = run(base, cand)
        assert res.exit_code == 1, samples
        assert flagged(res) == {("medium", 8, "energy_j_per_item")}
        assert res.summary_line().startswith("1 regression: medium b8 fp32 cpu energy_j_per_item +10.0%")
        row = res.regressions[0]
        assert row.test == ("exact" if samples else "untested")


def test_a_latency_value_edited_without_its_samples_is_judged_on_the_threshold():
    base = make_profile(5, cv=0.05)
    cand = scaled(base, "small", 8, "latency_p95_ms", 1.5, samples=False)
    res = run(base, cand)
    assert flagged(res) == {("small", 8, "latency_p95_ms")}
    assert "samples do not follow the value" in " ".join(res.regressions[0].notes)


def test_a_ten_percent_shift_is_detected_with_two_percent_noise():
    hits = 0
    for seed in range(20):
        base = make_profile(2 * seed, cv=0.02)
        cand = make_profile(2 * seed + 1, cv=0.02, shifts={("medium", 8, "energy_j_per_item"): 1.10})
        res = run(base, cand, "energy_j_per_item:+5%")
        assert flagged(res) <= {("medium", 8, "energy_j_per_item")}
        hits += bool(res.regressions)
    assert hits >= 15  # power of at least 75% with 5 repeats a side, Holm over 9 rows


# --- false positives -----------------------------------------------------------------------------

SEEDS = 200
ALLOWED_FALSE_POSITIVE_RATE = 0.05  # share of noise-only comparisons that may fail: alpha


def test_noise_without_shift_fails_at_most_alpha_of_comparisons():
    """200 pairs of independent noisy profiles (9 points x 4 metrics, CV 10%: larger than the 5%
    thresholds, so only the significance test stands between noise and a failure). Holm keeps the
    share of failing *comparisons* at or under alpha = 5%."""
    failing = 0
    for seed in range(SEEDS):
        res = run(make_profile(10_000 + 2 * seed, cv=0.10), make_profile(10_001 + 2 * seed, cv=0.10),
                  "energy_j_per_item:+5%", "latency_p95_ms:+5%", "items_per_s:-5%", "latency_p50_ms:+5%")
        failing += res.exit_code
    assert failing / SEEDS <= ALLOWED_FALSE_POSITIVE_RATE, f"{failing} of {SEEDS} noise-only comparisons failed"


def test_noise_without_shift_per_row_rate_without_correction():
    """Without Holm each row is tested at alpha: at most 5% of noise-only rows fail."""
    rows = failing = 0
    for seed in range(60):
        res = run(make_profile(20_000 + 2 * seed, cv=0.10), make_profile(20_001 + 2 * seed, cv=0.10),
                  "energy_j_per_item:+0%", "latency_p95_ms:+0%", correction="none")
        rows += len(res.rows)
        failing += len(res.regressions)
    assert failing / rows <= ALLOWED_FALSE_POSITIVE_RATE


def test_noise_well_under_the_thresholds_flags_nothing():
    for seed in range(50):
        res = run(make_profile(30_000 + 2 * seed, cv=0.01), make_profile(30_001 + 2 * seed, cv=0.01),
                  "energy_j_per_item:+5%", "latency_p95_ms:+5%", correction="none")
        assert not res.regressions


def test_without_stats_thresholds_alone_decide():
    base, cand = make_profile(7, cv=0.10), make_profile(8, cv=0.10)
    with_stats = run(base, cand, "energy_j_per_item:+5%")
    no_stats = run(base, cand, "energy_j_per_item:+5%", stats=False)
    crossed = {(r.key[1], r.key[2]) for r in no_stats.rows if r.crossed}
    assert crossed and {(r.key[1], r.key[2]) for r in no_stats.regressions} == crossed
    assert len(with_stats.regressions) < len(no_stats.regressions)
    assert all(r.test == "off" for r in no_stats.rows)


# --- accuracy ------------------------------------------------------------------------------------

def test_accuracy_uses_a_two_proportion_test_or_the_threshold_alone():
    base = make_profile(1)
    small_drop = make_profile(1, accuracy_shift={"large": -30})  # -0.015: over the threshold, within noise
    res = run(base, small_drop, "accuracy:-0.01")
    rows = [r for r in res.rows if r.key[1] == "large"]
    assert all(r.test == "two-proportion" and r.crossed and r.status == "ok" for r in rows)
    assert all(r.verdict() == "crossed, not significant" for r in rows)
    res = run(base, small_drop, "accuracy:-0.01", no_stats_for=frozenset({"accuracy"}))
    assert flagged(res) == {("large", b, "accuracy") for b in (1, 8, 64)}
    big_drop = make_profile(1, accuracy_shift={"large": -200})
    assert flagged(run(base, big_drop, "accuracy:-0.01")) == {("large", b, "accuracy") for b in (1, 8, 64)}


# --- untested, not comparable, warnings ----------------------------------------------------------

def test_rows_without_samples_are_untested_and_judged_on_the_threshold():
    base = make_profile(1)
    cand = scaled(base, "small", 1, "latency_p99_ms", 1.3)  # p99 has no per-repeat samples
    res = run(base, cand, "latency_p99_ms:+10%")
    assert flagged(res) == {("small", 1, "latency_p99_ms")}
    assert all(r.test == "untested" for r in res.rows if r.status != "identical")
    assert "judged on the threshold alone" in res.regressions[0].notes


def test_derived_samples_for_net_energy_and_carbon():
    base = make_profile(1, cv=0.03)
    r = base.records[0]
    net = cmp.samples_of(r, "energy_net_j_per_item")
    assert len(net) == 5 and \
        net[0] == pytest.approx(r.samples["energy_j_per_item"][0] - 15 / r.samples["items_per_s"][0])
    co2 = cmp.samples_of(r, "co2e_g_per_item")
    assert co2[0] == pytest.approx(r.samples["energy_j_per_item"][0] / 3.6e6 * 400)
    assert cmp.samples_of(r, "latency_p99_ms") is None


def test_other_model_or_data_is_not_comparable_and_never_fails():
    base = make_profile(1)
    cand = scaled(base, "small", 1, "energy_j_per_item", 3.0)
    cand = edited(cand, "small", 1, model_spec={"name": "small", "arch": "cnn", "width": 64})
    cand = edited(cand, "medium", 1, workload={"dataset": {"id": "synthetic", "seed": 2, "split": "test"}},
                  energy_j_per_item=1.0)
    res = run(base, cand)
    assert res.exit_code == 0
    small = [r for r in res.rows if r.key[1:3] == ("small", 1)]
    assert all(r.status == "not_comparable" and "model changed: width 8 vs 64" in r.notes[0] for r in small)
    medium = [r for r in res.rows if r.key[1:3] == ("medium", 1)]
    assert all(r.status == "not_comparable" and "evaluation data changed" in r.notes[0] for r in medium)
    assert "3 not comparable" in res.summary_line() or "6 not comparable" in res.summary_line()


def test_other_energy_method_makes_energy_rows_not_comparable_only():
    base = make_profile(1, method="rapl")
    cand = make_profile(1, method="estimate")
    res = run(base, cand)
    energy = [r for r in res.rows if r.metric == "energy_j_per_item"]
    assert all(r.status == "not_comparable" and "rapl vs estimate" in r.notes[0] for r in energy)
    assert all(r.status == "ok" for r in res.rows if r.metric != "energy_j_per_item")


def test_estimated_energy_is_marked_and_follows_the_estimates_rule():
    base = make_profile(1, method="estimate")
    cand = scaled(base, "large", 64, "energy_j_per_item", 1.5)
    res = run(base, cand)
    assert flagged(res) == {("large", 64, "energy_j_per_item")} and res.regressions[0].estimate
    assert res.regressions[0].verdict() == "REGRESSION (estimate)"
    warn = run(base, cand, estimates="warn")
    assert warn.exit_code == 0 and warn.count("warning") == 1
    ignore = run(base, cand, estimates="ignore")
    assert ignore.exit_code == 0 and ignore.count("ignored") == 9
    assert all(not r.estimate for r in res.rows if r.metric != "energy_j_per_item")


def test_hardware_and_protocol_differences_are_warnings():
    base = make_profile(1)
    cand = make_profile(1, cpu_model="Other CPU", quick=True)
    res = run(base, cand)
    assert res.exit_code == 0
    assert any(w.startswith("different hardware (CPU Test CPU vs Other CPU)") for w in res.warnings)
    assert any("protocols differ" in w and "quick" in w for w in res.warnings)


def test_failed_missing_and_new_points():
    base = make_profile(1, batches=(1, 8))
    cand = make_profile(1, batches=(8, 64))
    cand = edited(cand, "large", 8, status="failed", error="OutOfMemoryError: CUDA out of memory")
    res = run(base, cand)
    assert res.exit_code == 1
    (failed,) = res.regressions
    assert failed.point == "large b8 fp32 cpu" and "OutOfMemoryError" in failed.notes[0]
    assert res.count("missing") == 3 and res.count("new") == 3
    assert any("3 baseline point(s) not in the candidate" in w for w in res.warnings)
    assert "large b8 fp32 cpu failed in the candidate" in res.summary_line()


def test_no_point_in_common_is_an_error():
    base = make_profile(1)
    cand = make_profile(1, batches=(2, 4))
    with pytest.raises(cmp.CompareError, match="no operating point in common: baseline has ladder 'synthetic'"):
        run(base, cand)


# --- exports -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def regression():
    base = make_profile(5, cv=0.05, method="estimate")
    return cmp.compare(base, scaled(base, "medium", 8, "energy_j_per_item", 1.10), cmp.Options())


def test_json_export(regression):
    doc = json.loads(export.to_json(regression))
    assert doc["schema"] == "greenbench/compare" and doc["schema_version"] == 1
    assert doc["summary"]["exit_code"] == 1 and doc["summary"]["regressions"] == 1
    assert doc["options"]["thresholds"] == list(cmp.DEFAULT_THRESHOLDS)
    (row,) = [r for r in doc["rows"] if r["status"] == "regression"]
    assert row["point"] == {"ladder": "synthetic", "model": "medium", "batch_size": 8, "precision": "fp32",
                            "device": "cpu"}
    assert row["metric"] == "energy_j_per_item" and row["direction"] == "lower_is_better"
    assert row["change"] == pytest.approx(0.10) and row["estimate"] is True and row["test"] == "exact"


def test_markdown_export(regression):
    md = export.to_markdown(regression)
    assert md.startswith(export.MARKDOWN_MARKER)
    assert "### ❌ greenbench compare: 1 regression: medium b8 fp32 cpu energy_j_per_item +10.0%" in md
    assert "| Point | Metric | Change | Before | After | Ratio | Test | Verdict |" in md
    assert "**REGRESSION (estimate)**" in md and "estimate" in md and "<details>" in md


def test_junit_export(regression):
    root = ET.fromstring(export.to_junit(regression))
    assert root.tag == "testsuite" and root.get("failures") == "1" and root.get("tests") == "27"
    failures = [c for c in root.iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failures] == ["medium b8 fp32 cpu energy_j_per_item"]
    assert "+10.0%" in failures[0].find("failure").get("message")


def test_another_gpu_by_uuid_is_a_hardware_warning():
    base = make_profile(1)
    for r in base.records:
        r.device_uuid = "GPU-aaaa"
    cand = make_profile(1)
    for r in cand.records:
        r.device_uuid = "GPU-bbbb"
    res = run(base, cand)
    assert res.exit_code == 0
    assert any(w.startswith("different hardware (cpu GPU-aaaa vs GPU-bbbb)") for w in res.warnings)
    assert not run(base, base).warnings


def test_language_model_records_gate_perplexity_and_skip_accuracy():
    base = make_profile(1)
    for r in base.records:
        r.accuracy, r.accuracy_n, r.quality_metric, r.perplexity = None, None, "perplexity", 20.0
    cand = scaled(base, "large", 64, "perplexity", 1.05)
    res = run(base, cand, "perplexity:+1%", "accuracy:-0.01", "energy_j_per_item:+5%")
    assert flagged(res) == {("large", 64, "perplexity")}
    assert not any(r.metric == "accuracy" for r in res.rows)
    assert res.regressions[0].test == "untested"
    res = run(make_profile(1), make_profile(1), "perplexity:+1%")
    assert not res.rows and any(w.startswith("nothing was compared") for w in res.warnings)


def test_data_read_from_another_place_is_still_comparable_and_other_data_is_not():
    from synthetic_profiles import make_profile

    from greenbench.compare import gate as cmp

    base = make_profile(seed=1)
    cand = base.model_copy(deep=True)
    for r in base.records:
        r.workload = {"dataset": {"id": "glue", "split": "validation", "path": "/home/alice/sst2.csv",
                                  "sha256": "abc", "datasets": "2.19.0", "fingerprint": "f1"}}
    for r in cand.records:
        r.workload = {"dataset": {"id": "glue", "split": "validation", "path": "/home/runner/sst2.csv",
                                  "sha256": "abc", "datasets": "3.0.1", "fingerprint": "f2"}}
    res = cmp.compare(base, cand)
    assert res.count("not_comparable") == 0 and res.exit_code == 0 and res.judged > 0
    for r in cand.records:
        r.workload["dataset"]["sha256"] = "other"  # different data: nothing comparable, nothing passes
    res = cmp.compare(base, cand)
    assert res.judged == 0 and res.exit_code == 2
    assert res.nothing_compared.startswith("nothing was compared:") and \
        "evaluation data changed" in res.nothing_compared


def test_peak_memory_is_gated_only_where_both_sides_have_it():
    base = make_profile(0)
    for r in base.records:
        r.host_rss_peak_mib = 400.0
    cand = edited(base, "large", 64, host_rss_peak_mib=480.0)  # +20%
    res = run(base, cand, "host_rss_peak_mib:+10%", "gpu_mem_peak_mib:+10%")
    assert flagged(res) == {("large", 64, "host_rss_peak_mib")}
    (row,) = res.regressions
    assert row.test == "untested" and row.change == pytest.approx(0.2)  # a peak: the threshold decides
    assert not any(r.metric == "gpu_mem_peak_mib" for r in res.rows)  # CPU points: no GPU peak on either side
    older = edited(cand, "large", 64, host_rss_peak_mib=None)  # a profile from before peaks were recorded
    res = run(base, older, "host_rss_peak_mib:+10%")
    assert not res.regressions and not any(r.point.startswith("large b64") for r in res.rows)
    assert cmp.METRICS["host_rss_peak_mib"].unit == "MiB" and not cmp.METRICS["gpu_mem_peak_mib"].higher_is_better
