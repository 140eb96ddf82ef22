#!/usr/bin/env bash
# Wheels for benchmarks/gpu_check.py on the lent GPU machine (Python 3.12, x86-64, no registry).
#
# That machine already has torch 2.11, transformers 5.17, nvidia-ml-py, numpy, pandas, scipy,
# matplotlib, typer, rich, pytest, psutil, pyyaml, requests, pillow, torchvision (the device
# tool's KINDS.md lists them), but not pydantic, mnist1d or codecarbon. Run this here, where pip
# reaches PyPI, from anywhere in the repo:
#
#     bash benchmarks/gpu_wheels.sh                      # pydantic and mnist1d, with what they need
#     WITH_CODECARBON=1 bash benchmarks/gpu_wheels.sh    # also CodeCarbon and its 12 missing needs
#
# It fills .whl/ (ignored by git: .gitignore and .git/info/exclude), checks that every wheel's
# requirements are carried or already on that machine, and that the folder is small enough to
# travel (the working tree and the carried paths share 64 MiB). Then the device command is
# (carry [".whl"], timeout_s 540):
#
#     python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit; set -o pipefail; PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py --out $OUT/gpu 2>&1 | tee $OUT/gpu-check.log
#
# CodeCarbon is left out by default: greenbench uses it only for the host CPU beside the GPU
# (a labelled estimate this check does not use); without it that component is recorded as
# unavailable with the reason, and each ladder saves CodeCarbon's ~1.3 s hardware detection.
# Versions are the ones this project's development machine resolves under pyproject.toml
# (pydantic>=2.5, mnist1d>=0.0.2, codecarbon>=2.8); keep one version of each wheel.
set -euo pipefail
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
PY=${PYTHON:-python3}

WHEELS=(
  pydantic==2.14.4            # greenbench's records, zoo and profiles
  pydantic_core==2.50.5       # pydantic 2.14.4 pins it (compiled: cp312 manylinux)
  annotated-types==0.8.0      # pydantic
  typing-inspection==0.4.5    # pydantic
  typing_extensions==4.16.0   # pydantic needs >= 4.16.0; the machine's own may be older
  mnist1d==0.0.2.post1        # the embedded ladder's data (needs numpy, scipy, matplotlib, requests: there)
)
if [ "${WITH_CODECARBON:-0}" = 1 ]; then
  WHEELS+=(
    codecarbon==3.3.2 arrow==1.4.0 tzdata==2026.6 authlib==1.9.10 joserfc==1.8.0
    cryptography==50.0.2 cffi==2.1.1 pycparser==3.12 rapidfuzz==3.14.6 questionary==2.1.1
    prompt_toolkit==3.0.53 wcwidth==0.9.4 pycountry==26.2.16
  )
fi

mkdir -p .whl .git/info
grep -qxF '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -f .whl/*.whl  # one version of each: two of one package stop the whole install there

# The device tool's pip line for that machine (its README, the "nvidia-h200" note).
"$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}"

# Every requirement must be carried here or already be on the machine (names from KINDS.md).
"$PY" - "${WHEELS[@]}" <<'EOF'
import re, sys, zipfile
from pathlib import Path

try:
    from packaging.requirements import Requirement
except ImportError:  # pip's own copy
    from pip._vendor.packaging.requirements import Requirement

ON_DEVICE = {"numpy", "scipy", "matplotlib", "requests", "pandas", "psutil", "rich", "typer", "click",
             "prometheus-client", "py-cpuinfo", "nvidia-ml-py", "python-dateutil", "pyyaml", "pillow",
             "torch", "transformers", "typing-extensions"}
DEVICE_ENV = {"python_version": "3.12", "python_full_version": "3.12.3", "implementation_name": "cpython",
              "platform_python_implementation": "CPython", "sys_platform": "linux", "os_name": "posix",
              "platform_system": "Linux", "platform_machine": "x86_64", "extra": ""}
norm = lambda s: re.sub(r"[-_.]+", "-", s).lower()
wanted = {norm(w.split("==")[0]) for w in sys.argv[1:]}
wheels = sorted(Path(".whl").glob("*.whl"))
have = {norm(w.name.split("-")[0]) for w in wheels}
problems = [f"not downloaded: {', '.join(sorted(wanted - have))}"] if wanted - have else []
if len(have) != len(wheels):
    problems.append("two versions of one package in .whl/")
total = 0
for w in wheels:
    total += w.stat().st_size
    with zipfile.ZipFile(w) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        lines = z.read(meta).decode().splitlines()
    needs = set()
    for line in lines:
        if not line.startswith("Requires-Dist:"):
            continue
        req = Requirement(line.split(":", 1)[1].strip())
        if req.marker is not None and not req.marker.evaluate(DEVICE_ENV):
            continue  # an extra, or a marker false on that machine's CPython 3.12
        needs.add(norm(req.name))
    for pkg in sorted(needs - have - ON_DEVICE):
        problems.append(f"{w.name} needs {pkg}, neither carried nor on the machine")
    print(f"{w.stat().st_size / 2**20:7.2f} MiB  {w.name}  needs: {', '.join(sorted(needs)) or '-'}")
print(f"{total / 2**20:7.2f} MiB  in {len(wheels)} wheels")
if total > 48 * 2**20:
    problems.append("over 48 MiB: with the working tree it may not fit the 64 MiB that travels")
if problems:
    sys.exit("gpu_wheels: " + "; ".join(problems))
EOF
