"""The guard between greenbench and a server it launches: ``python -m greenbench.serving.guard
PARENT_PID -- COMMAND...``.

greenbench starts the guard in a session (and process group) of its own; the guard runs the
server in that group and takes the whole group down, SIGTERM then SIGKILL after a grace period,
when it is told to stop (SIGTERM, SIGINT) or when greenbench dies in any way, SIGKILL included:
on Linux the kernel's parent-death signal tells it at once, elsewhere it notices within half a
second that its parent has gone. A serving engine spawns workers of its own (vLLM's engine core);
they are in the group too, so no process of the launch outlives greenbench.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time

GRACE_S = 10.0  # a server's own shutdown (vLLM frees its engine) before the group is killed
_PR_SET_PDEATHSIG = 1


def _parent_death_signal(sig: int) -> None:
    """Linux: have the kernel send ``sig`` to this process when its parent dies."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: the polling below still notices
        pass


def _kill_group(grace_s: float, child: subprocess.Popen[bytes]) -> None:
    group = os.getpgrp()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the guard outlives its own group signal
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.1)
    time.sleep(0.2)  # the server's workers a moment after it
    os.killpg(group, signal.SIGKILL)  # ends the guard too, and any worker that lingered


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m greenbench.serving.guard PARENT_PID -- COMMAND...", file=sys.stderr)
        return 2
    parent = int(argv[0])
    _parent_death_signal(signal.SIGTERM)
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if os.getppid() != parent:  # greenbench died before the death signal was armed
        return 1
    try:
        child = subprocess.Popen(argv[2:])
    except OSError as e:
        print(f"greenbench: cannot start {argv[2]!r}: {e.strerror or e}", file=sys.stderr)
        return 127
    while True:
        code = child.poll()
        if code is not None:
            return code
        if stop or os.getppid() != parent:
            _kill_group(GRACE_S, child)
            return 143
        time.sleep(0.5)  # a signal's handler sets the flag; it is read within half a second


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
