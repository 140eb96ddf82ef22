import json
import random

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenbench import profile as prof
from greenbench.errors import GreenbenchError
from greenbench.tradeoff.curves import fit, fit_curve
from greenbench.tradeoff.outputs import default_out_dir, point_rows, write_outputs
from greenbench.tradeoff.points import OperatingPoint, TradeoffError, dominates, operating_points, pareto_front


def make_profile(records):
    p = prof.Profile(
        greenbench_version="0.1.0", created_utc="2026-01-01T00:00:00Z", updated_utc="x",
        ladder={"name": "t"}, settings={}, provenance={},
    )
    p.records.extend(records)
    return p


def rec(model="m", b=1, acc=0.9, lat=1.0, e=0.1, net=None, method="estimate", **kw):
    return prof.Record(ladder="t", model=model, batch_size=b, precision="fp32", device="cpu",
                       accuracy=acc, latency_p95_ms=lat, latency_mean_ms=lat / 2,
                       energy_j_per_item=e, energy_net_j_per_item=net, energy_method=method, **kw)


def pt(label, acc, lat, e):
    return OperatingPoint(label=label, model=label, batch_size=1, precision="fp32",
                             device="cpu", params=None, quality=acc, latency_ms=lat,
                             energy_j_per_item=e, energy_method="estimate")


# ---- operating_points ----

def test_points_sorted_and_exclusions_explained():
    p = make_profile([
        rec("b", 32, e=0.01), rec("a", 256, e=0.001), rec("a", 1),
        prof.Record(ladder="t", model="c", batch_size=1, precision="fp32", device="cpu",
                    status="failed", error="OutOfMemoryError: x"),
        prof.Record(ladder="t", model="d", batch_size=1, precision="fp32", device="cpu",
                    accuracy=0.5, latency_p95_ms=1.0, energy_reason="no meter on this host"),
        prof.Record(ladder="t", model="e", batch_size=1, precision="fp32", device="cpu",
                    status="skipped", error="batch larger than the eval set"),
    ])
    points, excluded = operating_points(p)
    assert [x.label for x in points] == ["a b1 fp32 cpu", "a b256 fp32 cpu", "b b32 fp32 cpu"]
    assert len(excluded) == 3
    assert "failed: OutOfMemoryError" in excluded[0]
    assert "energy unavailable: no meter on this host" in excluded[1]
    assert "skipped" in excluded[2]
    assert all(x.energy_method != "unavailable" for x in points)


def test_latency_and_energy_options():
    p = make_profile([rec("a", 1, lat=4.0, e=0.2, net=0.05), rec("b", 1, e=0.3)])
    points, excluded = operating_points(p, latency="mean", energy="net")
    assert [(x.label, x.latency_ms, x.energy_j_per_item) for x in points] == [("a b1 fp32 cpu", 2.0, 0.05)]
    assert "net energy missing" in excluded[0]
    gross = operating_points(p)[0][0]
    assert gross.latency_ms == 4.0 and gross.energy_j_per_item == 0.2


def test_missing_latency_statistic_excluded():
    p = make_profile([rec("a"), rec("b")])
    p.records[1].latency_p95_ms = None
    points, excluded = operating_points(p)
    assert len(points) == 1 and "latency_p95_ms missing" in excluded[0]


@pytest.mark.parametrize("kw,msg", [({"latency": "p42"}, "latency statistic 'p42'"),
                                    ({"energy": "green"}, "energy basis 'green'")])
def test_bad_options_raise_one_line(kw, msg):
    with pytest.raises(TradeoffError, match=msg) as e:
        operating_points(make_profile([rec()]), **kw)
    assert "\n" not in str(e.value)


def test_no_usable_point_raises():
    p = make_profile([prof.Record(ladder="t", model="c", batch_size=1, precision="fp32",
                                  device="cpu", status="failed", error="boom")])
    with pytest.raises(TradeoffError, match="no usable operating point"):
        operating_points(p)
    with pytest.raises(TradeoffError, match="no usable"):
        operating_points(make_profile([]))
    assert issubclass(TradeoffError, GreenbenchError)


def test_real_profile_has_fifteen_points():
    points, excluded = operating_points(prof.load("profiles/mnist1d-cpu-2core.json"))
    assert len(points) == 15 and excluded == []
    assert len({x.label for x in points}) == 15


# ---- pareto_front ----

def test_dominated_point_removed():
    a, b, c = pt("a", 0.9, 1.0, 1.0), pt("b", 0.8, 2.0, 2.0), pt("c", 0.95, 3.0, 0.5)
    assert pareto_front([a, b, c]) == [a, c]  # b is worse than a on every axis


def test_weakly_dominated_point_removed_exact_ties_kept():
    a = pt("a", 0.9, 1.0, 1.0)
    worse_on_one = pt("b", 0.9, 1.0, 1.1)
    twin = pt("c", 0.9, 1.0, 1.0)
    assert pareto_front([worse_on_one, twin, a]) == [a, twin]


def test_each_objective_counts():
    base = pt("base", 0.9, 1.0, 1.0)
    more_acc = pt("acc", 0.95, 2.0, 2.0)
    less_lat = pt("lat", 0.5, 0.5, 2.0)
    less_e = pt("e", 0.5, 2.0, 0.5)
    assert len(pareto_front([base, more_acc, less_lat, less_e])) == 4


vals = st.sampled_from([0.1, 0.5, 1.0, 2.0])  # few values: ties are frequent


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(vals, vals, vals), min_size=1, max_size=12), st.randoms())
def test_front_properties(triples, rnd):
    points = [pt(f"p{i}", a / 2, lat, e) for i, (a, lat, e) in enumerate(triples)]
    front = pareto_front(points)
    shuffled = points[:]
    rnd.shuffle(shuffled)
    assert pareto_front(shuffled) == front  # independent of input order
    assert front  # a non-empty set always has a non-dominated point
    for p in points:  # every point is on the front or dominated by a point of the front
        assert p in front or any(dominates(q, p) for q in front)
    for p in front:
        assert not any(dominates(q, p) for q in points)


# ---- curves ----

B = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256], dtype=float)


def test_amortised_energy_recovered_within_one_percent():
    c = fit_curve("energy_vs_batch", B, 1 + 8 / B)
    assert c.status == "fitted" and c.form == "amortised"
    assert c.params["e_inf_j"] == pytest.approx(1, rel=0.01)
    assert c.params["e0_j"] == pytest.approx(8, rel=0.01)
    assert c.loo_max_error is not None and c.loo_max_error < 0.01
    assert np.allclose(c.predict([3.0]), 1 + 8 / 3, rtol=0.01)


def test_tiny_energies_recovered_too():
    # Real energies per item are micro-joules: scaling must not bias the fit.
    c = fit_curve("energy_vs_batch", B, 2e-6 + 3e-4 / B)
    assert c.params["e_inf_j"] == pytest.approx(2e-6, rel=0.01)
    assert c.params["e0_j"] == pytest.approx(3e-4, rel=0.01)


def test_linear_latency_recovered_with_noise():
    rng = np.random.default_rng(0)
    y = (2 + 0.5 * B) * (1 + rng.uniform(-0.03, 0.03, B.size))
    c = fit_curve("latency_vs_batch", B, y)
    assert c.status == "fitted" and c.form == "linear"
    assert c.params["l0_ms"] == pytest.approx(2, rel=0.1)
    assert c.params["l1_ms"] == pytest.approx(0.5, rel=0.05)
    assert c.max_residual < 0.05


def test_power_latency_chosen_when_it_fits_better():
    c = fit_curve("latency_vs_batch", B, 0.2 * B ** 0.4)
    assert c.status == "fitted" and c.form == "power"
    assert c.params["k"] == pytest.approx(0.4, rel=0.01)


def test_saturating_accuracy_recovered():
    e = np.geomspace(1e-6, 1e-3, 8)
    c = fit_curve("accuracy_vs_energy", e, 0.95 - 0.02 * e ** -0.3)
    assert c.status == "fitted" and c.form == "saturating"
    assert c.params["a_max"] == pytest.approx(0.95, rel=0.01)
    assert c.params["k"] == pytest.approx(0.3, rel=0.01)


def test_non_monotone_set_rejected_and_interpolated():
    y = np.array([5, 1, 7, 2, 9, 1, 6, 3, 4], dtype=float)
    c = fit_curve("energy_vs_batch", B, y)
    assert c.status == "interpolated" and c.params is None
    assert "max residual" in c.reason and "amortised" in c.reason and "power" in c.reason
    assert all(not k.passed for k in c.candidates) and len(c.candidates) == 2
    assert np.allclose(c.predict(B), y)  # through every measured point
    mid = c.predict([1.5])[0]
    assert min(5, 1) <= mid <= max(5, 1)  # piecewise-linear: never overshoots
    assert np.isnan(c.predict([0.5, 512])).all()  # no extrapolation


def test_held_out_check_rejects_what_residuals_accept():
    y = 1 + 8 / B
    y[0] *= 0.8  # the b=1 point 20% low: the full fit spreads it, a held-out fit exposes it
    c = fit_curve("energy_vs_batch", B, y)
    amortised = next(k for k in c.candidates if k.form == "amortised")
    assert amortised.max_residual <= 0.15 and amortised.loo_max_error > 0.15
    assert not amortised.passed and "leave-one-out" in amortised.note
    assert c.status == "interpolated"
    loose = fit_curve("energy_vs_batch", B, y, max_residual=0.5)
    assert loose.status == "fitted"  # the tolerance is an option, not a constant


def test_three_points_fit_on_residuals_only_and_say_so():
    b = np.array([1, 32, 256.0])
    c = fit_curve("energy_vs_batch", b, 1 + 8 / b)
    assert c.status == "fitted" and c.loo_max_error is None
    assert "held-out check skipped (3 points, needs 4)" in c.reason


def test_too_few_points():
    c = fit_curve("energy_vs_batch", [1, 8], [2.0, 1.0])
    assert c.status == "interpolated" and "needs at least 3" in c.reason
    one = fit_curve("energy_vs_batch", [4], [1.0])
    assert one.status == "unavailable" and np.isnan(one.predict([4])).all()


def test_duplicate_x_become_their_mean():
    c = fit_curve("energy_vs_batch", [1, 1, 8], [2.0, 4.0, 1.0], point_labels=["a", "b", "c"])
    assert c.x == (1.0, 8.0) and c.y == (3.0, 1.0) and c.point_labels == ("a + b", "c")


# ---- the whole tradeoff of a profile ----

MODELS = {"small": (0.60, 1e-6, 2e-5, 0.01, 0.001), "mid": (0.85, 4e-6, 1e-4, 0.03, 0.004),
          "big": (0.95, 2e-5, 6e-4, 0.1, 0.02)}  # accuracy, e_inf_j, e0_j, l0_ms, l1_ms


def law_profile(batches=(1, 2, 4, 8, 16, 64)):
    recs = []
    for m, (acc, e_inf, e0, l0, l1) in MODELS.items():
        for b in batches:
            recs.append(rec(m, b, acc=acc, lat=l0 + l1 * b, e=e_inf + e0 / b, net=0.5 * (e_inf + e0 / b)))
    return make_profile(recs)


def test_fit_recovers_per_model_laws():
    t = fit(law_profile())
    assert len(t.points) == 18 and t.excluded == []
    for m, (_acc, e_inf, e0, _l0, l1) in MODELS.items():
        e = next(c for c in t.curves if c.name == "energy_vs_batch" and c.group == f"{m} fp32 cpu")
        lat = next(c for c in t.curves if c.name == "latency_vs_batch" and c.group == f"{m} fp32 cpu")
        assert e.status == lat.status == "fitted"
        assert e.params["e_inf_j"] == pytest.approx(e_inf, rel=0.01)
        assert e.params["e0_j"] == pytest.approx(e0, rel=0.01)
        assert lat.params["l1_ms"] == pytest.approx(l1, rel=0.01)
    acc = next(c for c in t.curves if c.name == "accuracy_vs_energy")
    # each model's lowest-energy point (its largest batch) feeds the cross-model curve
    assert acc.point_labels == ("small b64 fp32 cpu", "mid b64 fp32 cpu", "big b64 fp32 cpu")
    assert acc.status == "fitted" and acc.form == "log"  # 3 points: only the 2-parameter form
    assert {c.energy_methods for c in t.curves} == {("estimate",)}


def test_fit_frontier_and_flags():
    p = law_profile()
    # a point worse than big b1 on every axis
    p.records.append(rec("worse", 1, acc=0.9, lat=1.0, e=1.0))
    t = fit(p)
    rows = {r["label"]: r for r in point_rows(t)}
    assert rows["worse b1 fp32 cpu"]["on_frontier"] is False
    assert rows["big b1 fp32 cpu"]["on_frontier"] is True
    assert sum(r["on_frontier"] for r in rows.values()) == len(t.frontier)
    # a model measured at one batch size gets no batch curve
    assert not any(c.group == "worse fp32 cpu" for c in t.curves)
    # nor a place on the accuracy curve: big b64 is more accurate for less energy
    acc = next(c for c in t.curves if c.name == "accuracy_vs_energy")
    assert "worse b1 fp32 cpu" not in acc.point_labels and len(acc.point_labels) == 3
    assert acc.reason.endswith("beaten on accuracy and energy by another model: worse")


def test_fit_independent_of_record_order():
    p = law_profile()
    q = law_profile()
    random.Random(3).shuffle(q.records)
    a, b = fit(p), fit(q)
    assert a.points == b.points and a.frontier == b.frontier
    assert [(c.name, c.group, c.status, c.form) for c in a.curves] == \
        [(c.name, c.group, c.status, c.form) for c in b.curves]
    for ca, cb in zip(a.curves, b.curves, strict=True):
        assert ca.params == pytest.approx(cb.params, rel=1e-6) if ca.params else cb.params is None


def test_net_energy_option_reaches_the_curves():
    t = fit(law_profile(), energy="net")
    e = next(c for c in t.curves if c.name == "energy_vs_batch" and c.group == "big fp32 cpu")
    assert e.params["e0_j"] == pytest.approx(0.5 * 6e-4, rel=0.01)


def test_bad_max_residual():
    with pytest.raises(TradeoffError, match="max residual"):
        fit(law_profile(), max_residual=float("nan"))


def test_document_and_files(tmp_path):
    p = law_profile()
    t = fit(p)
    written = write_outputs(t, tmp_path / "out", profile=p, profile_path="p.json", plots=False)
    assert [w.name for w in written] == ["tradeoff.json", "tradeoff.csv", "curves.csv"]
    doc = json.loads((tmp_path / "out" / "tradeoff.json").read_text())
    assert doc["schema"] == "greenbench/tradeoff" and doc["schema_version"] == 1
    settings = {k: v for k, v in doc["settings"].items() if k != "latency_means"}
    assert settings == {"quality_metric": "accuracy", "quality_direction": "higher", "latency": "p95",
                        "latency_kind": "e2e", "latency_field": "latency_p95_ms", "energy": "gross",
                        "energy_field": "energy_j_per_item", "max_residual": 0.15}
    assert "estimate" in doc["energy_methods"] and "not metered" in doc["energy_methods"]["estimate"]
    assert len(doc["points"]) == 18 and all("on_frontier" in r for r in doc["points"])
    curve = doc["curves"][1]
    assert set(curve) >= {"name", "group", "status", "form", "params", "residuals", "reason", "candidates"}
    points = pd.read_csv(tmp_path / "out" / "tradeoff.csv")
    assert list(points.columns[-2:]) == ["energy_method", "on_frontier"]
    assert (points["energy_method"] == "estimate").all()
    curves = pd.read_csv(tmp_path / "out" / "curves.csv")
    assert len(curves) == len(t.curves) and set(curves["status"]) <= {"fitted", "interpolated"}


def test_output_folder_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(TradeoffError, match="cannot create the output folder"):
        write_outputs(fit(law_profile()), tmp_path / "f", plots=False)


def _files(folder):
    return {f.name: f.read_bytes() for f in folder.iterdir()} if folder.exists() else {}


def _huge_energy():
    """A fit of energies near the largest float: finite, but no log axis can draw them."""
    p = law_profile()
    for r in p.records:
        r.energy_j_per_item = 1e308
    return fit(p)


def test_outputs_are_all_written_or_none(tmp_path):
    import dataclasses

    t = fit(law_profile())
    out = tmp_path / "fresh"
    with pytest.raises(TradeoffError, match="cannot draw"):
        write_outputs(_huge_energy(), out)
    assert not out.exists()  # not even the folder: nothing was written
    bad = dataclasses.replace(t, points=[dataclasses.replace(t.points[0], batch_size=0), *t.points[1:]])
    with pytest.raises(TradeoffError, match="batch size 0; a batch holds at least one item"):
        write_outputs(bad, out)
    assert not out.exists()
    # over an earlier fit's files, a failure leaves them byte for byte
    done = tmp_path / "done"
    written = write_outputs(t, done)
    assert {w.name for w in written} == {"tradeoff.json", "tradeoff.csv", "curves.csv", "accuracy_vs_energy.png",
                                         "accuracy_vs_energy.svg", "batch_curves.png", "batch_curves.svg"}
    before = _files(done)
    with pytest.raises(TradeoffError):
        write_outputs(_huge_energy(), done)
    assert _files(done) == before


def test_a_write_failure_midway_leaves_the_folder_as_it_was(tmp_path, monkeypatch):
    import os

    t = fit(law_profile())
    done = tmp_path / "done"
    write_outputs(t, done, plots=False)
    before = _files(done)
    real = os.fdopen
    calls = []

    def fail_third(fd, *a, **kw):  # the disk fills up at the third file
        calls.append(fd)
        if len(calls) == 3:
            os.close(fd)
            raise OSError(28, "No space left on device")
        return real(fd, *a, **kw)

    monkeypatch.setattr(os, "fdopen", fail_third)
    with pytest.raises(TradeoffError, match="cannot write: No space left on device"):
        write_outputs(fit(law_profile(batches=(1, 4, 16))), done, plots=False)
    assert _files(done) == before  # the old set, and no temporary file left behind


def test_a_rerun_without_batch_curves_removes_the_old_ones(tmp_path):
    out = tmp_path / "f"
    write_outputs(fit(law_profile()), out)
    assert (out / "batch_curves.png").exists()
    one_batch = make_profile([rec(m, 64, acc=a, lat=1.0 + i, e=0.01 * (i + 1)) for i, (m, (a, *_)) in
                              enumerate(MODELS.items())])
    names = {w.name for w in write_outputs(fit(one_batch), out)}
    assert "batch_curves.png" not in names and not (out / "batch_curves.png").exists()


def test_frontier_rings_mean_something():
    from matplotlib.collections import PathCollection

    from greenbench.tradeoff import plots

    def rings(fig):
        return [c for c in fig.axes[0].collections if isinstance(c, PathCollection)
                and len(c.get_facecolors()) == 0]  # hollow markers: the rings

    all_on = fit(law_profile(batches=(1, 64)))
    assert len(all_on.frontier) == len(all_on.points)
    fig = plots.accuracy_vs_energy(all_on)
    assert rings(fig) == []  # no ring round every point...
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(text.startswith("every point (6 of 6) is on the") for text in legend)  # ...it says so instead
    p = law_profile(batches=(1, 64))
    p.records.append(rec("small", 8, acc=0.5, lat=50.0, e=1.0))  # beaten by everything
    some = fit(p)
    fig = plots.accuracy_vs_energy(some)
    (ring,) = rings(fig)
    assert len(ring.get_offsets()) == len(some.frontier) == len(some.points) - 1
    assert any("6 of 7 points" in t.get_text().replace("\n", " ") for t in fig.axes[0].get_legend().get_texts())


def test_one_colour_per_model_in_every_fit_plot():
    from greenbench.tradeoff import plots

    t = fit(law_profile())
    colours = plots.model_colours(t)
    assert list(colours) == ["small", "mid", "big"]  # by lowest energy: the ladder's order
    scatter = {c.get_label(): tuple(c.get_facecolors()[0]) for c in plots.accuracy_vs_energy(t).axes[0].collections
               if c.get_label() in colours}
    fig = plots.batch_curves(t)
    legend = {h.get_label().split(" ")[0]: h.get_color() for h in fig.legends[0].legend_handles
              if h.get_label().split(" ")[0] in colours}
    for m, c in colours.items():
        assert scatter[m][:3] == pytest.approx(c[:3]) and tuple(legend[m])[:3] == pytest.approx(c[:3])


def test_default_out_dir():
    assert str(default_out_dir("profiles/x.json")) == "profiles/x-fit"


# ---- the plotting style shared by fit, simulate and report ----

def test_the_shared_plot_style_writes_the_same_files_and_says_estimate(tmp_path):
    from greenbench import plotting

    written = []
    for name in ("a", "b"):
        fig = plotting.figure(3, 2)
        ax = fig.add_subplot()
        ax.plot([1, 2, 3], [3, 1, 2], label="x")
        plotting.title(ax, plotting.estimate_tag("energy", True))
        plotting.grid(ax)
        plotting.right_legend(ax)
        written.append(plotting.save(fig, tmp_path / name))
    assert [p.name for p in written[0]] == ["a.png", "a.svg"]
    assert [p.read_bytes() for p in written[0]] == [p.read_bytes() for p in written[1]]  # a rerun: same bytes
    assert "energy (estimate)" in written[0][1].read_text()  # SVG text stays text
    assert plotting.energy_caveat(["rapl"]) == "" and plotting.not_measured(["rapl", "nvml_counter"]) == []
    assert plotting.energy_caveat(["estimate", "rapl"]) == "energy is an ESTIMATE, not metered"
    assert "FAKE" in plotting.energy_caveat(["fake"]) and plotting.not_measured(["fake", "rapl"]) == ["fake"]
