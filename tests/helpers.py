"""Test helpers: a tiny ladder for fast pipeline tests (trained in about a second, cached per test
session), its fast protocol, and virtual time for greenbench's clock."""

import json
from pathlib import Path

TINY_ZOO = """
version: 1
ladders:
  tiny:
    workload: embedded
    dataset: {name: mnist1d, num_samples: 600, test_share: 0.25, seed: 1}
    train: {steps: 60, batch_size: 64, lr: 0.01, seed: 0}
    models:
      - {name: lin, arch: linear}
      - {name: cnn, arch: cnn, width: 4}
    batch_sizes: [1, 8]
    precisions: [fp32]
    devices: [cpu]
"""

# Fast protocol: 3 repeats of short windows, fake meter (20 W host counter ticking every 10 ms).
FAST = ["--meter", "fake", "--repeats", "3", "--min-window", "0.03", "--min-updates", "3",
        "--warmup", "0", "--idle", "0.1"]


def write_zoo(tmp_path: Path, text: str = TINY_ZOO) -> Path:
    path = tmp_path / "zoo.yaml"
    path.write_text(text)
    return path


def one_line_error(res, *needles: str, stream: str = "output") -> str:
    """A command refused a bad input: exit 2, no traceback, and one non-empty line on ``stream``
    (``output``: stdout and stderr together, or ``stderr``) holding every needle; that line."""
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = [line for line in getattr(res, stream).splitlines() if line.strip()]
    assert len(lines) == 1, res.output
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def load_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


class VirtualClock:
    """Virtual time for greenbench's clock seam (``greenbench.meters.clock.now`` and ``sleep``).

    It moves only when read (``read_s`` per read, so spin loops end and every step is timed),
    when slept on, or when a simulated step ``advance``s it: whatever this machine's scheduler
    does, a window, its counter ticks and the idle baselines come out the same on every run.
    """

    def __init__(self, t_s: float = 1000.0, read_s: float = 20e-6):
        self.t_s, self.read_s = t_s, read_s

    def now(self) -> float:
        self.t_s += self.read_s
        return self.t_s

    def sleep(self, seconds: float) -> None:
        self.t_s += max(0.0, seconds)

    advance = sleep


def install_virtual_clock(monkeypatch) -> VirtualClock:
    """Replace greenbench's clock seam with a VirtualClock for one test (monkeypatch undoes it)."""
    from greenbench.meters import clock as clockmod

    vc = VirtualClock()
    monkeypatch.setattr(clockmod, "now", vc.now)
    monkeypatch.setattr(clockmod, "sleep", vc.sleep)
    return vc


def step_s(batch_size: int) -> float:
    """The virtual time one step of a tiny model takes: a fixed cost plus a cost per item."""
    return 0.5e-3 + 0.05e-3 * batch_size


def on_virtual_time(monkeypatch, step_cost=step_s) -> VirtualClock:
    """Profiles run on a VirtualClock: the clock seam is replaced, and every step of every
    workload the runner builds advances it by ``step_cost(batch_size)`` after running the real
    model (so accuracy, shapes and failures stay real; only time is simulated)."""
    from greenbench.measure import runner

    vc = install_virtual_clock(monkeypatch)
    real_build = runner.build_workload

    def build(*args, **kwargs):
        workload = real_build(*args, **kwargs)
        real_make_step = workload.make_step

        def make_step(batch_size):
            step, cost_s = real_make_step(batch_size), step_cost(batch_size)

            def timed():
                out = step()
                vc.advance(cost_s)
                return out

            return timed

        workload.make_step = make_step
        return workload

    monkeypatch.setattr(runner, "build_workload", build)
    return vc
