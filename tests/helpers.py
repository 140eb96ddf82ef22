"""A tiny ladder for fast pipeline tests (trained in about a second, cached per test session)."""

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


def load_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())
