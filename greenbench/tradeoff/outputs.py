"""The documents and files `greenbench fit` writes: tradeoff.json (versioned), tradeoff.csv
(points), curves.csv, and the plots (``greenbench.tradeoff.plots``). Library only.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from pathlib import Path

from greenbench.methods import METHOD_NOTES
from greenbench.profile import Profile
from greenbench.tradeoff.curves import RESOURCE_AXES, Curve, Tradeoff, quality_curve_name
from greenbench.tradeoff.points import ENERGY_FIELD, LATENCY_KIND_WORDS, TradeoffError, latency_field

TRADEOFF_SCHEMA = "greenbench/tradeoff"
TRADEOFF_SCHEMA_VERSION = 1


def point_columns(t: Tradeoff) -> list[str]:
    """tradeoff.csv's columns: the quality column is named for its metric (accuracy, perplexity),
    a served profile's load columns (concurrency, request rate) come where the batch size is, and
    the hardware (a fleet's accelerator type, else the device's name) after the device."""
    load = [k for k in ("concurrency", "request_rate_per_s") if any(getattr(p, k) is not None for p in t.points)]
    return ["label", "model", "batch_size", *load, "precision", "device", "hardware", "params", t.quality_metric,
            "latency_ms", "energy_j_per_item", "energy_method", "on_frontier"]


def point_rows(t: Tradeoff) -> list[dict]:
    cols = point_columns(t)
    return [{k: p.quality if k == t.quality_metric else t.on_frontier(p) if k == "on_frontier" else getattr(p, k)
             for k in cols} for p in t.points]


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
        "settings": {"quality_metric": t.quality_metric, "quality_direction": t.direction,
                     "latency": t.latency, "latency_kind": t.latency_kind,
                     "latency_field": latency_field(t.latency, t.latency_kind),
                     "latency_means": LATENCY_KIND_WORDS[t.latency_kind],
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


# Files of earlier runs that this run may not write again (a ladder with a single batch size per
# model has no batch curves; a perplexity fit has no accuracy plot): removed with the new set so
# that the folder never mixes two fits.
_OPTIONAL = tuple(f"{base}{suffix}" for base in (
    "batch_curves", "concurrency_curves", "rate_curves",
    "accuracy_vs_energy", "exact_match_vs_energy", "perplexity_vs_energy") for suffix in (".png", ".svg"))


def render_outputs(t: Tradeoff, *, profile: Profile | None = None, profile_path: str | None = None,
                   plots: bool = True) -> dict[str, bytes]:
    """Every file of a fit as bytes, by file name, computed in memory: nothing is written.

    Raises TradeoffError (one line) when the values cannot be written or drawn (a value no float
    format or plot axis can hold, such as energies near 1e308), so that ``write_outputs`` leaves
    nothing behind."""
    import pandas as pd

    where = profile_path or "profile"
    for p in t.points:  # a resource axis is logarithmic: a batch holds at least one item, a load is positive
        axis, value = p.resource
        if axis == "batch_size" and not value >= 1:
            raise TradeoffError(f"{where}: point {p.label}: batch size {value:g}; a batch holds at least one item")
        if not value > 0:
            raise TradeoffError(f"{where}: point {p.label}: {axis} {value:g}; a load is positive")
    files: dict[str, bytes] = {}
    try:
        doc = to_doc(t, profile, profile_path)
        files["tradeoff.json"] = (json.dumps(doc, indent=1, allow_nan=False) + "\n").encode("utf-8")
    except ValueError as e:  # allow_nan=False: a NaN or infinity reached the document
        raise TradeoffError(f"{where}: cannot write the tradeoff document: {e}") from None
    files["tradeoff.csv"] = pd.DataFrame(point_rows(t), columns=point_columns(t)).to_csv(index=False).encode("utf-8")
    files["curves.csv"] = pd.DataFrame(curve_rows(t), columns=CURVE_CSV_COLUMNS).to_csv(index=False).encode("utf-8")
    if plots:
        from greenbench import plotting
        from greenbench.tradeoff import plots as plotmod

        figures = {quality_curve_name(t.quality_metric): plotmod.quality_vs_energy,
                   **{f"{RESOURCE_AXES[axis]}_curves": plotmod.resource_drawer(axis) for axis in t.resource_axes}}
        for base, draw in figures.items():
            try:
                with warnings.catch_warnings():
                    # numpy's overflow warnings on such values would print before the one line
                    warnings.simplefilter("ignore", RuntimeWarning)
                    fig = draw(t)
                    drawn = plotting.render(fig) if fig is not None else {}
            except (ValueError, OverflowError, FloatingPointError) as e:
                # matplotlib's answer to values far outside any plausible range (log ticks that
                # overflow, an axis of zero width): the profile's fault, not greenbench's
                raise TradeoffError(f"{where}: cannot draw {base}: {type(e).__name__}: {e} "
                                    "(are the profile's energies and latencies plausible?)") from None
            files.update({base + suffix: data for suffix, data in drawn.items()})
    return files


def write_outputs(t: Tradeoff, out_dir: Path | str, *, profile: Profile | None = None,
                  profile_path: str | None = None, plots: bool = True) -> list[Path]:
    """tradeoff.json, tradeoff.csv (points), curves.csv and the plots (PNG and SVG), all or none.

    Everything is computed first (``render_outputs``); then each file goes to a temporary file in
    ``out_dir`` and only when all of them are written are they renamed into place, so a failure
    (bad values, a full disk) leaves the folder as it was."""
    files = render_outputs(t, profile=profile, profile_path=profile_path, plots=plots)
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TradeoffError(f"{out_dir}: cannot create the output folder: {e.strerror or e}") from None
    staged: list[tuple[Path, Path]] = []  # (temporary file, final path)
    try:
        for name, data in files.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out_dir)
            staged.append((Path(tmp), out_dir / name))
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; these are ordinary files
        for tmp_path, path in staged:
            os.replace(tmp_path, path)
        for name in _OPTIONAL:
            if name not in files and plots:
                (out_dir / name).unlink(missing_ok=True)
    except BaseException as e:  # an interrupt too: no temporary file is left behind
        for tmp_path, _ in staged:
            with contextlib.suppress(OSError):
                tmp_path.unlink(missing_ok=True)
        if created:
            with contextlib.suppress(OSError):
                out_dir.rmdir()  # only the folder this call made, and only when empty
        if isinstance(e, OSError):
            raise TradeoffError(f"{out_dir}: cannot write: {e.strerror or e}") from None
        raise
    return [out_dir / name for name in files]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
