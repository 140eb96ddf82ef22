import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenbench import profile as prof
from greenbench import tradeoff as tr


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
    return tr.OperatingPoint(label=label, model=label, batch_size=1, precision="fp32",
                             device="cpu", params=None, accuracy=acc, latency_ms=lat,
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
    points, excluded = tr.operating_points(p)
    assert [x.label for x in points] == ["a b1 fp32 cpu", "a b256 fp32 cpu", "b b32 fp32 cpu"]
    assert len(excluded) == 3
    assert "failed: OutOfMemoryError" in excluded[0]
    assert "energy unavailable: no meter on this host" in excluded[1]
    assert "skipped" in excluded[2]
    assert all(x.energy_method != "unavailable" for x in points)


def test_latency_and_energy_options():
    p = make_profile([rec("a", 1, lat=4.0, e=0.2, net=0.05), rec("b", 1, e=0.3)])
    points, excluded = tr.operating_points(p, latency="mean", energy="net")
    assert [(x.label, x.latency_ms, x.energy_j_per_item) for x in points] == [("a b1 fp32 cpu", 2.0, 0.05)]
    assert "net energy missing" in excluded[0]
    gross = tr.operating_points(p)[0][0]
    assert gross.latency_ms == 4.0 and gross.energy_j_per_item == 0.2


def test_missing_latency_statistic_excluded():
    p = make_profile([rec("a"), rec("b")])
    p.records[1].latency_p95_ms = None
    points, excluded = tr.operating_points(p)
    assert len(points) == 1 and "latency_p95_ms missing" in excluded[0]


@pytest.mark.parametrize("kw,msg", [({"latency": "p42"}, "latency statistic 'p42'"),
                                    ({"energy": "green"}, "energy basis 'green'")])
def test_bad_options_raise_one_line(kw, msg):
    with pytest.raises(tr.TradeoffError, match=msg) as e:
        tr.operating_points(make_profile([rec()]), **kw)
    assert "\n" not in str(e.value)


def test_no_usable_point_raises():
    p = make_profile([prof.Record(ladder="t", model="c", batch_size=1, precision="fp32",
                                  device="cpu", status="failed", error="boom")])
    with pytest.raises(tr.TradeoffError, match="no usable operating point"):
        tr.operating_points(p)
    with pytest.raises(tr.TradeoffError, match="no usable"):
        tr.operating_points(make_profile([]))
    assert issubclass(tr.TradeoffError, tr.GreenbenchError)


def test_real_profile_has_fifteen_points():
    points, excluded = tr.operating_points(prof.load("profiles/mnist1d-cpu-2core.json"))
    assert len(points) == 15 and excluded == []
    assert len({x.label for x in points}) == 15


# ---- pareto_front ----

def test_dominated_point_removed():
    a, b, c = pt("a", 0.9, 1.0, 1.0), pt("b", 0.8, 2.0, 2.0), pt("c", 0.95, 3.0, 0.5)
    assert tr.pareto_front([a, b, c]) == [a, c]  # b is worse than a on every axis


def test_weakly_dominated_point_removed_exact_ties_kept():
    a = pt("a", 0.9, 1.0, 1.0)
    worse_on_one = pt("b", 0.9, 1.0, 1.1)
    twin = pt("c", 0.9, 1.0, 1.0)
    assert tr.pareto_front([worse_on_one, twin, a]) == [a, twin]


def test_each_objective_counts():
    base = pt("base", 0.9, 1.0, 1.0)
    more_acc = pt("acc", 0.95, 2.0, 2.0)
    less_lat = pt("lat", 0.5, 0.5, 2.0)
    less_e = pt("e", 0.5, 2.0, 0.5)
    assert len(tr.pareto_front([base, more_acc, less_lat, less_e])) == 4


vals = st.sampled_from([0.1, 0.5, 1.0, 2.0])  # few values: ties are frequent


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(vals, vals, vals), min_size=1, max_size=12), st.randoms())
def test_front_properties(triples, rnd):
    points = [pt(f"p{i}", a / 2, l, e) for i, (a, l, e) in enumerate(triples)]
    front = tr.pareto_front(points)
    shuffled = points[:]
    rnd.shuffle(shuffled)
    assert tr.pareto_front(shuffled) == front  # independent of input order
    assert front  # a non-empty set always has a non-dominated point
    for p in points:  # every point is on the front or dominated by a point of the front
        assert p in front or any(tr.dominates(q, p) for q in front)
    for p in front:
        assert not any(tr.dominates(q, p) for q in points)
