r"""How many records per second the driver of ``greenbench profile --ray`` can take in.

On a cluster every group's records come back to one driver, which writes the whole profile
atomically after each group (``cluster.FleetWriter``: the JSON document, fsync, rename). The write
grows with the profile, so the driver is the one part of a fleet run that does not scale out. This
pushes ``--records`` synthetic records (each with the samples of ``--repeats`` windows, like a
measured one) through that write path, ``--per-group`` at a time from ``--nodes`` nodes, and
prints:

- records/s and groups/s over the whole run, timing the driver's write path alone (what a sweep
  of that size costs the driver; building the synthetic records is not counted);
- the time of one write at the end (the full profile), as a mean and 95% interval over the last
  ``--tail`` writes;
- the largest fleet the driver keeps up with at that size: a GPU finishes a group every
  ``--group-s`` seconds (a group is a model's batch sizes x repeats x windows: minutes on a GPU), so
  the driver falls behind when GPUs / group_s groups arrive per second and each takes longer than
  its share to write. The verdict compares that with ``--target-gpus``, "inconclusive" when the
  interval of the write time straddles the target.

    python benchmarks/fleet_driver_bench.py                      # 10,000 records
    python benchmarks/fleet_driver_bench.py --records 2000 --per-group 15

Figures on stdout; the profile is written to a temporary folder and removed.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from greenbench import __version__
from greenbench import profile as prof
from greenbench.carbon.intensity import static_intensity
from greenbench.measure.cluster import Fleet, FleetWriter, GroupTask, Placed, Placement
from greenbench.measure.protocol import Protocol
from greenbench.measure.runner import Clock, Group, RunConfig, Saved
from greenbench.measure.zoo import get_ladder


def _record(model: str, batch: int, device: str, repeats: int, rng: random.Random) -> prof.Record:
    """A record of the size a measured one has: the figures, and per-repeat samples."""
    e = rng.uniform(1e-4, 1e-2)
    lat = rng.uniform(0.1, 50.0)
    samples = {k: [v * rng.uniform(0.95, 1.05) for _ in range(repeats)] for k, v in (
        ("energy_j_per_item", e), ("energy_net_j_per_item", e * 0.6), ("latency_p50_ms", lat),
        ("latency_p95_ms", lat * 1.3), ("items_per_s", batch / lat * 1e3), ("power_w", 300.0))}
    return prof.Record(
        ladder="mnist1d", model=model, params=rng.randint(10**3, 10**9), batch_size=batch, precision="fp32",
        device=device, device_name="NVIDIA H100 80GB HBM3", device_uuid=f"GPU-{rng.getrandbits(64):016x}",
        accuracy=rng.uniform(0.2, 0.9), accuracy_ci95=(0.1, 0.95), accuracy_n=2000, quality_metric="accuracy",
        latency_mean_ms=lat, latency_p50_ms=lat, latency_p90_ms=lat * 1.2, latency_p95_ms=lat * 1.3,
        latency_p99_ms=lat * 1.5, latency_per_item_ms=lat / batch, items_per_s=batch / lat * 1e3,
        energy_j_per_item=e, energy_j_per_item_std=e * 0.02, energy_j_per_item_cv=0.02,
        energy_j_per_item_ci95=(e * 0.98, e * 1.02), energy_net_j_per_item=e * 0.6, energy_method="nvml_counter",
        energy_domain="gpu", power_w=300.0, idle_power_w=80.0, idle_basis="warm", counter_update_period_s=0.1,
        co2e_g_per_item=e / 3.6e6 * 392.4, intensity_gco2e_per_kwh=392.4, intensity_source="bundled",
        repeats=repeats, window_s=2.0, counter_updates_min=20, samples=samples, flags=[],
        model_spec={"name": model, "arch": "cnn", "width": 64}, measured_utc=prof.utc_now(),
        host=device.split(":")[0], accelerator_type="H100", placement="gpu")


def _interval(xs: list[float]) -> tuple[float, float, float]:
    m = statistics.fmean(xs)
    if len(xs) < 2:
        return m, m, m
    half = 1.96 * statistics.stdev(xs) / math.sqrt(len(xs))
    return m, max(m - half, min(xs)), m + half  # a write never takes less than the fastest one seen


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--per-group", type=int, default=5, help="records per group (a model's batch sizes)")
    ap.add_argument("--nodes", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tail", type=int, default=20, help="writes at the end whose time is reported")
    ap.add_argument("--group-s", type=float, default=60.0, help="seconds one GPU takes for a group")
    ap.add_argument("--target-gpus", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.records < 1 or a.per_group < 1 or a.nodes < 1 or a.tail < 2 or a.group_s <= 0:
        print("give positive --records, --per-group, --nodes, --group-s and --tail of at least 2", file=sys.stderr)
        return 2
    rng = random.Random(a.seed)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = RunConfig(ladder=get_ladder("mnist1d"), out_path=Path(tmp) / "fleet.json", protocol=Protocol(),
                        intensity=static_intensity(), cache_dir=Path(tmp))
        now = prof.utc_now()
        profile = prof.Profile(greenbench_version=__version__, created_utc=now, updated_utc=now,
                               ladder=prof.LadderInfo(name="mnist1d"), settings=cfg.settings(),
                               provenance=prof.Provenance(host="driver"))
        fleet = Fleet()
        writer = FleetWriter(cfg, profile, fleet, Saved(cfg.out_path), lambda e: None, Clock(1))
        groups = math.ceil(a.records / a.per_group)
        write_s: list[float] = []
        made = 0
        for g in range(groups):
            node = g % a.nodes
            n = min(a.per_group, a.records - made)
            placed = Placed(f"{node:056x}", f"gpu-{node:03d}", f"cuda:{g % 8}", "cuda:0", "NVIDIA H100 80GB HBM3",
                            f"GPU-{node:08x}", 0, {"host": f"gpu-{node:03d}"})
            task = GroupTask(Group(f"m{g}", "fp32", tuple(range(1, n + 1))), Placement(1), placed=placed)
            task.source = fleet.source(placed)
            task.device = fleet.device(task.source, placed.local)
            records = [_record(f"m{g}", b, task.device, a.repeats, rng) for b in range(1, n + 1)]
            made += n
            t = time.perf_counter()
            writer.finish(task, records, None)
            write_s.append(time.perf_counter() - t)
        total_s = sum(write_s)  # the driver's write path alone: making the synthetic records is not timed
        size_mb = cfg.out_path.stat().st_size / 1e6
        assert len(prof.load(cfg.out_path).records) == a.records  # what was written is the whole sweep
    tail = write_s[-a.tail:]
    mean_s, lo_s, hi_s = _interval(tail)
    print(f"{a.records:,} records in {groups:,} groups of {a.per_group} from {a.nodes} nodes: {total_s:.1f} s, "
          f"{a.records / total_s:,.0f} records/s, {groups / total_s:,.1f} groups/s")
    print(f"profile at the end: {size_mb:.1f} MB; one write of it: {mean_s * 1e3:.0f} ms "
          f"(95% interval {lo_s * 1e3:.0f}-{hi_s * 1e3:.0f} ms, last {len(tail)} writes)")
    # GPUs whose groups the driver writes as fast as they finish, at this profile size
    gpus, gpus_lo, gpus_hi = a.group_s / mean_s, a.group_s / hi_s, a.group_s / max(lo_s, 1e-9)
    print(f"keeps up with about {gpus:,.0f} GPUs (interval {gpus_lo:,.0f}-{gpus_hi:,.0f}) finishing a group "
          f"every {a.group_s:g} s each, at {a.records:,} records")
    if gpus_lo >= a.target_gpus:
        verdict = f"met: the driver keeps up with {a.target_gpus:,} GPUs at this size"
    elif gpus_hi < a.target_gpus:
        verdict = f"not met: the driver falls behind {a.target_gpus:,} GPUs at this size"
    else:
        verdict = f"inconclusive: the interval straddles {a.target_gpus:,} GPUs; run again on a quieter machine"
    print(f"verdict: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
