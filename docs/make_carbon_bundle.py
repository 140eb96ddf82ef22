"""Regenerate greenbench/data/carbon_2023_hourly.npz from the Electricity Maps 2023 files in ../shared.

    .venv/bin/python docs/make_carbon_bundle.py [--shared ../shared] [--check]

The bundle holds, for the 18 zones, every hour of 2023 in life-cycle (lca) and direct intensity as
int32 centigrams per kWh: the source publishes 2 decimals, so value = int / 100 is exact to the
source. It is a derived database of ODbL data: it ships with greenbench/data/CARBON_DATA_NOTICE.md.
``--check`` rebuilds in memory and exits 1 if the committed bundle differs (nothing is written).
"""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "greenbench" / "data" / "carbon_2023_hourly.npz"
LCA_COL = "Carbon Intensity gCO₂eq/kWh (LCA)"
DIRECT_COL = "Carbon Intensity gCO₂eq/kWh (direct)"

# file stem -> (true Zone Id, region, local time zone); from shared/data/carbon/SOURCES.md.
# Three file names differ from the Zone Id inside the file (BR-SP, CL-SIC, DE-LU).
ZONES = {
    "AU-NSW": ("AU-NSW", "New South Wales, Australia", "Australia/Sydney"),
    "AU-VIC": ("AU-VIC", "Victoria, Australia", "Australia/Melbourne"),
    "BR-SP": ("BR-CS", "Brazil Central-South", "America/Sao_Paulo"),
    "CA-ON": ("CA-ON", "Ontario, Canada", "America/Toronto"),
    "CL-SIC": ("CL-SEN", "Chile (SEN)", "America/Santiago"),
    "DE-LU": ("DE", "Germany", "Europe/Berlin"),
    "ES": ("ES", "Spain (mainland)", "Europe/Madrid"),
    "GB": ("GB", "Great Britain", "Europe/London"),
    "IN-WE": ("IN-WE", "Western India", "Asia/Kolkata"),
    "JP-TK": ("JP-TK", "Tokyo, Japan", "Asia/Tokyo"),
    "KR": ("KR", "South Korea", "Asia/Seoul"),
    "NO": ("NO", "Norway", "Europe/Oslo"),
    "SG": ("SG", "Singapore", "Asia/Singapore"),
    "US-CAL-CISO": ("US-CAL-CISO", "California (CAISO)", "America/Los_Angeles"),
    "US-MIDA-PJM": ("US-MIDA-PJM", "PJM (US Mid-Atlantic)", "America/New_York"),
    "US-NY-NYIS": ("US-NY-NYIS", "New York (NYISO)", "America/New_York"),
    "US-TEX-ERCO": ("US-TEX-ERCO", "Texas (ERCOT)", "America/Chicago"),
    "ZA": ("ZA", "South Africa", "Africa/Johannesburg"),
}
HOURS = 8760
START = datetime(2023, 1, 1, tzinfo=timezone.utc)


def _centi(text: str, where: str) -> int:
    """'185.8' -> 18580, refusing anything that 2 decimals cannot hold exactly."""
    value = float(text)
    cg = round(value * 100)
    if not (np.isfinite(value) and value >= 0) or f"{cg / 100:.2f}" != f"{value:.2f}" or abs(cg / 100 - value) > 1e-9:
        raise SystemExit(f"{where}: {text!r} is not a non-negative number with at most 2 decimals")
    return cg


def build(shared: Path) -> dict[str, np.ndarray]:
    folder = shared / "data" / "carbon" / "electricitymaps_2023"
    stems = sorted(ZONES, key=lambda s: ZONES[s][0])
    lca = np.zeros((len(stems), HOURS), dtype=np.int32)
    direct = np.zeros_like(lca)
    estimated = np.zeros(len(stems), dtype=np.int32)
    for i, stem in enumerate(stems):
        path = folder / f"{stem}_2023_hourly.csv"
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        if len(rows) != HOURS:
            raise SystemExit(f"{path}: {len(rows)} rows, expected {HOURS}")
        for h, r in enumerate(rows):
            where = f"{path.name}:{h + 2}"
            t = datetime.fromisoformat(r["Datetime (UTC)"]).replace(tzinfo=timezone.utc)
            if int((t - START).total_seconds()) != h * 3600:
                raise SystemExit(f"{where}: {r['Datetime (UTC)']} is not hour {h} of 2023")
            if r["Zone Id"] != ZONES[stem][0]:
                raise SystemExit(f"{where}: Zone Id {r['Zone Id']} != {ZONES[stem][0]}")
            lca[i, h] = _centi(r[LCA_COL], where)
            direct[i, h] = _centi(r[DIRECT_COL], where)
            estimated[i] += r["Data Estimated"].strip().lower() == "true"
    _cross_check(shared, [ZONES[s][0] for s in stems], lca, direct)
    return {
        "zones": np.array([ZONES[s][0] for s in stems]),
        "files": np.array([f"{s}_2023_hourly.csv" for s in stems]),
        "regions": np.array([ZONES[s][1] for s in stems]),
        "tz": np.array([ZONES[s][2] for s in stems]),
        "start_utc_s": np.array(int(START.timestamp()), dtype=np.int64),
        "lca_cg_per_kwh": lca,
        "direct_cg_per_kwh": direct,
        "estimated_hours": estimated,
    }


def _cross_check(shared: Path, zones: list[str], lca: np.ndarray, direct: np.ndarray) -> None:
    """The derived wide files must agree with the originals (they claim to be unchanged copies)."""
    for basis, arr in (("lca", lca), ("direct", direct)):
        path = shared / "data" / "carbon" / "derived" / f"ci_2023_hourly_{basis}_wide.csv"
        if not path.exists():
            continue
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        for i, z in enumerate(zones):
            wide = np.array([round(float(r[z]) * 100) for r in rows], dtype=np.int32)
            if not np.array_equal(wide, arr[i]):
                raise SystemExit(f"{path.name}: column {z} differs from the original file")


def same(a: dict[str, np.ndarray], b) -> bool:
    return set(a) == set(b.files) and all(np.array_equal(a[k], b[k]) for k in a)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--check", action="store_true", help="compare with the committed bundle, write nothing")
    args = ap.parse_args()
    arrays = build(args.shared)
    if args.check:
        with np.load(BUNDLE, allow_pickle=False) as old:
            ok = same(arrays, old)
        print("bundle is up to date" if ok else f"{BUNDLE} differs from {args.shared}")
        return 0 if ok else 1
    np.savez_compressed(BUNDLE, **arrays)
    print(f"wrote {BUNDLE} ({BUNDLE.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
