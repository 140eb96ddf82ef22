"""The constant-power meter behind ``--meter fake``: the whole pipeline runs without hardware.

Its readings carry method ``fake`` and must never be mistaken for a measurement. (The test
doubles of vendor libraries live in tests/fakes.py, not in the package.)
"""

from __future__ import annotations

import math
from collections.abc import Callable

from greenbench.meters.base import FAKE, CounterMeter, MeterInfo


class FakeMeter(CounterMeter):
    """A counter at constant power that ticks every ``tick_s`` (method ``fake``)."""

    method = FAKE

    def __init__(
        self,
        power_w: float = 50.0,
        tick_s: float = 0.01,
        *,
        domain: str = "fake",
        clock: Callable[[], float] | None = None,
    ):
        super().__init__(clock)
        self.power_w, self.tick_s, self.domain = power_w, tick_s, domain
        self._t0_s = self._clock()

    def info(self) -> MeterInfo:
        reason = (
            f"synthetic counter for tests ({self.power_w:g} W, a tick every "
            f"{self.tick_s * 1000:g} ms): not a measurement"
        )
        return MeterInfo(self.domain, FAKE, True, reason, {"power_w": self.power_w, "tick_s": self.tick_s})

    def _read_j(self) -> float:
        ticks = math.floor((self._clock() - self._t0_s) / self.tick_s)
        return ticks * self.tick_s * self.power_w
