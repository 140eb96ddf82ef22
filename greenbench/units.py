"""Constants with units, defined once for every stage: ``energy_j / J_PER_KWH`` is kWh.

Names read as "how many of the first unit in one of the second": ``J_PER_KWH`` joules in a
kilowatt-hour, ``MG_PER_G`` milligrams in a gram. Integer where the arithmetic is on integer
seconds (datetime64[s] as int64), float otherwise.
"""

from __future__ import annotations

# energy
J_PER_KWH = 3.6e6  # joules in a kilowatt-hour
MJ_PER_J = 1e3  # millijoules in a joule (NVML counters count mJ)

# mass (carbon is in grams CO2e)
MG_PER_G = 1e3  # milligrams in a gram (per-item carbon is shown in mg)
G_PER_KG = 1e3
G_PER_TONNE = 1e6  # carbon prices are per tonne
G_PER_LB = 453.59237  # the international avoirdupois pound

# time
MS_PER_S = 1e3  # milliseconds in a second (latencies are in ms)
S_PER_HOUR = 3600
S_PER_DAY = 86400
HOURS_PER_DAY = 24
