"""Carbon = energy x intensity x PUE, computed in one place (``co2e_g``), and static intensities.

Every intensity carries its source, year, basis (life-cycle ``lca`` or ``direct``) and the PUE
applied, so a co2e figure is never detached from where its factor came from. Records, `price`,
`simulate` and `carbon convert` all compute carbon with ``co2e_g``; PUE is checked by ``check_pue``.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources

from greenbench.errors import GreenbenchError
from greenbench.units import J_PER_KWH

DEFAULT_ZONE = "US-MIDA-PJM"  # PJM (US Mid-Atlantic), home of the largest data-centre market
DEFAULT_BASIS = "lca"
BASES = ("lca", "direct")


class CarbonError(GreenbenchError):
    """Bad intensity input; the message is one line for the user."""


def co2e_g(energy_j, intensity_gco2e_per_kwh, pue=1.0):
    """Grams CO2e of ``energy_j`` joules at the meter, at a grid intensity, times the PUE.

    The one carbon computation: floats or numpy arrays (element-wise); a None energy stays None.
    """
    if energy_j is None:
        return None
    return energy_j * intensity_gco2e_per_kwh * pue / J_PER_KWH


def check_pue(pue: float) -> float:
    """``pue`` if it is a finite number >= 1.0, else CarbonError (the one PUE check)."""
    if not (math.isfinite(pue) and pue >= 1.0):
        raise CarbonError(f"PUE must be a finite number of at least 1.0 (got {pue})")
    return float(pue)


@dataclass(frozen=True)
class Intensity:
    gco2e_per_kwh: float
    source: str
    zone: str | None = None
    year: int | None = None
    basis: str | None = None
    pue: float = 1.0

    def co2e_g(self, energy_j: float | None) -> float | None:
        """Grams CO2e for ``energy_j`` joules at the meter, times PUE; None stays None."""
        return co2e_g(energy_j, self.gco2e_per_kwh, self.pue)

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=1)
def annual_means() -> dict[tuple[str, str], float]:
    """(zone, basis) -> 2023 annual mean gCO2e/kWh, from the bundled Electricity Maps data."""
    text = resources.files("greenbench.data").joinpath("carbon_2023_annual_mean.csv").read_text("utf-8")
    rows = csv.DictReader(text.splitlines())
    return {(r["zone"], r["basis"]): float(r["mean_gco2e_per_kwh"]) for r in rows}


def zones() -> list[str]:
    return sorted({zone for zone, _ in annual_means()})


def static_intensity(
    *,
    zone: str | None = None,
    gco2e_per_kwh: float | None = None,
    basis: str = DEFAULT_BASIS,
    pue: float = 1.0,
) -> Intensity:
    """A fixed intensity: a number the user gives, or a zone's 2023 annual mean (default zone)."""
    check_pue(pue)
    if gco2e_per_kwh is not None:
        if not (math.isfinite(gco2e_per_kwh) and 0 <= gco2e_per_kwh <= 2000):
            raise CarbonError(
                f"intensity {gco2e_per_kwh} gCO2e/kWh is outside 0-2000; give grams per kWh"
            )
        return Intensity(gco2e_per_kwh, "user (--intensity)", pue=pue)
    if basis not in BASES:
        raise CarbonError(f"unknown basis {basis!r} (use {' or '.join(BASES)})")
    zone = zone or DEFAULT_ZONE
    key = (zone, basis)
    if key not in annual_means():
        raise CarbonError(f"unknown zone {zone!r} (known: {', '.join(zones())})")
    return Intensity(
        annual_means()[key],
        f"Electricity Maps 2023 annual mean ({basis}), ODbL",
        zone=zone,
        year=2023,
        basis=basis,
        pue=pue,
    )
