"""The documents and files `greenbench fit` writes: tradeoff.json (versioned), tradeoff.csv
(points), curves.csv, and the plots (``greenbench.tradeoff.plots``). Library only.
"""

from __future__ import annotations

import json
from pathlib import Path

from greenbench.methods import METHOD_NOTES
from greenbench.profile import Profile
from greenbench.tradeoff.curves import Curve, Tradeoff
from greenbench.tradeoff.points import ENERGY_FIELD, LATENCY_FIELD, OperatingPoint, TradeoffError

TRADEOFF_SCHEMA = "greenbench/tradeoff"
TRADEOFF_SCHEMA_VERSION = 1


def point_rows(t: Tradeoff) -> list[dict]:
    return [{**{k: getattr(p, k) for k in OperatingPoint.__dataclass_fields__},
             "on_frontier": t.on_frontier(p)} for p in t.points]


def curve_doc(c: Curve) -> dict:
    d = {k: getattr(c, k) for k in Curve.__dataclass_fields__ if k != "candidates"}
    d["candidates"] = [vars(x).copy() for x in c.candidates]
    return d


def to_doc(t: Tradeoff, profile: Profile | None = None, profile_path: str | None = None) -> dict:
    """The versioned JSON document of a tradeoff."""
    from greenbench import __version__
    from greenbench.profile import utc_now

    src: dict[str, object] = {"path": profile_path}
    if profile is not None:
        src.update(ladder=profile.ladder.name, created_utc=profile.created_utc,
                   complete=profile.complete, host=profile.provenance.host)
    return {
        "schema": TRADEOFF_SCHEMA,
        "schema_version": TRADEOFF_SCHEMA_VERSION,
        "greenbench_version": __version__,
        "created_utc": utc_now(),
        "profile": src,
        "settings": {"latency": t.latency, "latency_field": LATENCY_FIELD[t.latency],
                     "energy": t.energy, "energy_field": ENERGY_FIELD[t.energy],
                     "max_residual": t.max_residual},
        "energy_methods": {m: METHOD_NOTES.get(m, m) for m in t.energy_methods},
        "points": point_rows(t),
        "frontier": [p.label for p in t.frontier],
        "excluded": t.excluded,
        "curves": [curve_doc(c) for c in t.curves],
    }


CURVE_CSV_COLUMNS = ["name", "group", "status", "form", "expression", "params", "max_residual",
                     "loo_max_error", "n_points", "energy_methods", "reason"]


def curve_rows(t: Tradeoff) -> list[dict]:
    return [{"name": c.name, "group": c.group, "status": c.status, "form": c.form,
             "expression": c.expression,
             "params": json.dumps(c.params) if c.params is not None else None,
             "max_residual": c.max_residual, "loo_max_error": c.loo_max_error,
             "n_points": len(c.x), "energy_methods": ";".join(c.energy_methods), "reason": c.reason}
            for c in t.curves]


def default_out_dir(profile_path) -> Path:
    """Next to the profile: profiles/x.json -> profiles/x-fit/ (the profile's stem names it)."""
    p = Path(profile_path)
    return p.with_name(p.stem + "-fit")


def write_outputs(t: Tradeoff, out_dir, *, profile: Profile | None = None,
                  profile_path: str | None = None, plots: bool = True) -> list[Path]:
    """tradeoff.json, tradeoff.csv (points), curves.csv and the plots (PNG and SVG)."""
    import pandas as pd

    from greenbench.profile import write_atomic

    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TradeoffError(f"{out_dir}: cannot create the output folder: {e.strerror or e}") from None
    written = []
    try:
        doc = to_doc(t, profile, profile_path)
        path = out_dir / "tradeoff.json"
        write_atomic(path, json.dumps(doc, indent=1, allow_nan=False) + "\n")
        written.append(path)
        cols = [*OperatingPoint.__dataclass_fields__, "on_frontier"]
        path = out_dir / "tradeoff.csv"
        pd.DataFrame(point_rows(t), columns=cols).to_csv(path, index=False)
        written.append(path)
        path = out_dir / "curves.csv"
        pd.DataFrame(curve_rows(t), columns=CURVE_CSV_COLUMNS).to_csv(path, index=False)
        written.append(path)
        if plots:
            from greenbench.tradeoff import plots as plotmod

            written += plotmod.accuracy_vs_energy(t, out_dir / "accuracy_vs_energy")
            written += plotmod.batch_curves(t, out_dir / "batch_curves")
    except OSError as e:
        raise TradeoffError(f"{out_dir}: cannot write: {e.strerror or e}") from None
    return written
