"""Devices: what ``auto``, ``cuda``, ``cuda:N`` and GPU UUIDs mean here, and machine facts."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from greenbench.errors import GreenbenchError


class DeviceError(GreenbenchError):
    """A device that does not exist here; the message is one line."""


@dataclass(frozen=True)
class Device:
    spec: str  # what the profile records: "cpu" or "cuda:N"
    name: str  # CPU model or GPU name
    uuid: str | None = None  # GPU UUID (NVML selects by it, whatever CUDA_VISIBLE_DEVICES says)
    note: str | None = None  # e.g. why "auto" meant the CPU
    parts: tuple[Device, ...] = ()  # the GPUs of a group ("cuda:0+cuda:1"): one tensor-parallel server

    @property
    def is_cuda(self) -> bool:
        return self.spec.startswith("cuda")

    @property
    def is_group(self) -> bool:
        return bool(self.parts)

    @property
    def gpus(self) -> tuple[Device, ...]:
        """The GPUs this device is: its parts, or itself (none for the CPU)."""
        return self.parts if self.parts else ((self,) if self.is_cuda else ())


@lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _cuda_device(index: int) -> Device:
    import torch

    props = torch.cuda.get_device_properties(index)
    uuid = getattr(props, "uuid", None)
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if index < len(visible) and visible[index].startswith("MIG-"):
        uuid = visible[index]  # a MIG slice: NVML must see the slice, not the whole GPU
    elif uuid is not None and not str(uuid).startswith(("GPU-", "MIG-")):
        uuid = f"GPU-{uuid}"
    return Device(f"cuda:{index}", props.name, str(uuid) if uuid else None)


def resolve(spec: str) -> Device:
    """``auto`` -> first visible GPU, else the CPU (with a note); ``cuda:N``; a GPU UUID; ``cpu``;
    GPUs joined by "+" (``cuda:0+cuda:1``): the group one tensor-parallel server spans."""
    if "+" in spec:
        return _group(spec)
    if spec == "cpu":
        return Device("cpu", cpu_model())
    if not (spec in ("auto", "cuda") or spec.startswith(("cuda:", "GPU-", "MIG-"))):
        raise DeviceError(f"unknown device {spec!r} (use auto, cpu, cuda:N, a GPU UUID, or GPUs joined by '+' "
                          "for a tensor-parallel server)")
    count = cuda_count()
    if spec == "auto":
        if count == 0:
            return Device("cpu", cpu_model(), note="no GPU visible to torch: measuring on the CPU")
        return _cuda_device(0)
    if count == 0:
        raise DeviceError(f"device {spec!r}: no CUDA GPU is visible to torch here (use --device cpu)")
    if spec == "cuda":
        return _cuda_device(0)
    if spec.startswith("cuda:"):
        try:
            index = int(spec.split(":", 1)[1])
        except ValueError:
            raise DeviceError(f"device {spec!r}: expected cuda:N with N an integer") from None
        if not 0 <= index < count:
            raise DeviceError(f"device {spec!r}: only {count} GPU(s) visible (cuda:0..cuda:{count - 1})")
        return _cuda_device(index)
    for i in range(count):  # a UUID, possibly abbreviated as nvidia-smi allows
        dev = _cuda_device(i)
        if dev.uuid and dev.uuid.lower().startswith(spec.lower()):
            return dev
    raise DeviceError(f"device {spec!r}: no visible GPU has that UUID")


def _group(spec: str) -> Device:
    words = [w.strip() for w in spec.split("+")]
    if any(not w or w in ("auto", "cpu", "cuda") for w in words):
        raise DeviceError(f"device {spec!r}: a group joins GPUs (cuda:N or GPU UUIDs) with '+', "
                          "e.g. cuda:0+cuda:1")
    parts = tuple(resolve(w) for w in words)
    seen: dict[str, str] = {}
    for w, d in zip(words, parts, strict=True):
        key = d.uuid or d.spec
        if key in seen:
            raise DeviceError(f"device {spec!r}: {w} and {seen[key]} are the same GPU")
        seen[key] = w
    names = [d.name for d in parts]
    name = f"{len(parts)} x {names[0]}" if len(set(names)) == 1 else " + ".join(names)
    uuid = "+".join(d.uuid for d in parts if d.uuid) if all(d.uuid for d in parts) else None
    return Device("+".join(d.spec for d in parts), name, uuid, parts=parts)


def check_disjoint(devices: list[Device]) -> None:
    """One run's devices share no GPU: a GPU in two of them would be metered (and loaded) twice."""
    owner: dict[str, str] = {}
    for d in devices:
        for g in d.gpus:
            key = g.uuid or g.spec
            if key in owner and owner[key] != d.spec:
                raise DeviceError(f"devices {owner[key]} and {d.spec} share {g.spec}: give each GPU to one "
                                  "device of a run")
            owner[key] = d.spec


def visible_gpus() -> list[str]:
    """``cuda:N`` for every GPU torch sees; a DeviceError when there is none."""
    count = cuda_count()
    if count == 0:
        raise DeviceError("--devices all: no CUDA GPU is visible to torch here (use --device cpu)")
    return [f"cuda:{i}" for i in range(count)]


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def git_commit(cwd: Path | None = None) -> str | None:
    """The commit of the working directory's repository, with '+dirty' when it has changes."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, timeout=5,
        )
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def default_cache_dir() -> Path:
    """Where trained models and data are cached: $GREENBENCH_CACHE, else the user's cache folder."""
    env = os.environ.get("GREENBENCH_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "greenbench"


def affinity() -> list[int]:
    """The CPUs this process may run on (all of them where the OS cannot say)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def default_threads() -> int:
    """torch threads for a run: half the CPUs this process may use (at least 1). torch's default
    (one per CPU) oversubscribes a small shared machine as soon as anything else runs: on 2 cores
    with one kept busy, two threads ran the first profile 10-30x slower than one."""
    return max(1, len(affinity()) // 2)


def set_threads(threads: int) -> None:
    import torch

    if threads < 1:
        raise DeviceError(f"--threads {threads}: give at least 1")
    torch.set_num_threads(threads)


def _ranges(cpus: list[int]) -> str:
    """[0, 1, 2, 5] -> "0-2,5" (as taskset and /proc print affinity)."""
    parts, start = [], None
    for i, cpu in enumerate(cpus):
        if start is None:
            start = cpu
        if i + 1 == len(cpus) or cpus[i + 1] != cpu + 1:
            parts.append(str(start) if start == cpu else f"{start}-{cpu}")
            start = None
    return ",".join(parts)


def provenance() -> dict[str, Any]:
    """Machine and software facts stored in every profile (docs/measurement.md)."""
    import torch

    return {
        "host": socket.gethostname(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "cpu_affinity": _ranges(affinity()),
        "cpu_affinity_count": len(affinity()),
        "transformers": _version("transformers"),
        "codecarbon": _version("codecarbon"),
        "nvidia_ml_py": _version("nvidia-ml-py"),
        "greenbench": _version("greenbench"),
        "git_commit": git_commit(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
