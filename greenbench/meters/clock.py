"""The clock that the window protocol and the meters read (``perf_counter`` seconds), and its sleep.

One seam on purpose: a simulation (tests/simgpu.py) replaces both with a virtual clock, so that a
simulated GPU drives greenbench's own protocol deterministically, whatever this machine's
scheduler does. Callers look the functions up at call time (``clock.now()``), never bind them.
"""

from __future__ import annotations

import time

now = time.perf_counter
sleep = time.sleep
