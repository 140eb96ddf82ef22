"""Open a greenbench HTML report in a real browser (headless Chromium) and look at the screenshot.

    python docs/check_report.py                                  # the committed full profile
    python docs/check_report.py PROFILE [--baseline B] [--out DIR] [--screenshot PNG]

Writes the report, renders it with `chromium --headless --screenshot` (offline: the report must
not need the network), and checks the picture: the page is drawn, the plots are there (their
colours are on screen, so the inline PNGs decoded), and a regression banner is red when there is
one. Prints where the screenshot is, so a person can look at it too. Exit 0 when it looks right,
1 when it does not, 2 when Chromium is missing (install it: `apt-get install chromium`, or set
CHROMIUM=/path/to/chrome).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PROFILE = ROOT / "profiles" / "mnist1d-cpu-2core.json"
WIDTH, HEIGHT = 1280, 7000

# Colours the report must show when its plots render (RGB, with a tolerance).
PLOT_BLUE = (31, 119, 180)  # matplotlib tab10 C0: the first model's line and points
REGRESSION_BG = (251, 224, 221)  # the red verdict banner (#fbe0dd: its own shade, not the rows' #fdecea)
CHANGE_GREY = (120, 144, 156)  # bars within their threshold in the changes plot


def find_chromium() -> str | None:
    env = os.environ.get("CHROMIUM")
    if env:
        return env if Path(env).exists() or shutil.which(env) else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(browser: str, html: Path, png: Path, width: int = WIDTH, height: int = HEIGHT) -> None:
    with tempfile.TemporaryDirectory(prefix="greenbench-chromium-") as profile_dir:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--no-first-run", "--disable-extensions", "--disable-background-networking",
               f"--user-data-dir={profile_dir}", f"--window-size={width},{height}",
               f"--screenshot={png}", html.resolve().as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if not png.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{browser} wrote no screenshot (exit {proc.returncode}): {' / '.join(tail)}")


def _count(pixels, rgb, tol: int = 12) -> int:
    import numpy as np

    d = np.abs(pixels[:, :, :3].astype(int) - np.array(rgb)).max(axis=2)
    return int((d <= tol).sum())


def inspect(png: Path, expect_regression: bool | None = None) -> list[str]:
    """What is wrong with the screenshot (empty: it looks right)."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("RGB"))
    problems = []
    drawn = (pixels.min(axis=2) < 235).mean()
    rows = np.where((pixels.min(axis=2) < 235).any(axis=1))[0]
    page_px = int(rows.max()) + 1 if rows.size else 0
    if drawn < 0.02:
        problems.append(f"the page is (almost) blank: {drawn:.1%} of pixels drawn")
    if _count(pixels, PLOT_BLUE) < 200:
        problems.append("no plot colour on screen: the inline PNG plots did not render")
    if page_px >= pixels.shape[0] - 5:
        problems.append(f"the page is taller than the {pixels.shape[0]} px screenshot: raise --height")
    if expect_regression is True and _count(pixels, REGRESSION_BG, tol=3) < 2000:
        problems.append("a regression was expected but no red verdict banner is on screen")
    if expect_regression is False and _count(pixels, REGRESSION_BG, tol=3) > 2000:
        problems.append("a red regression banner is on screen where none was expected")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("profile", nargs="?", type=Path, default=DEFAULT_PROFILE)
    # No default baseline: the committed baseline is a quick profile and the default profile a full
    # one, and a report of one against the other is red for the protocol, not for the code.
    ap.add_argument("--baseline", type=Path, default=None, help="a baseline profile of the same protocol")
    ap.add_argument("--out", type=Path, default=None, help="report folder (default: a temporary one)")
    ap.add_argument("--screenshot", type=Path, default=None, help="where to keep the screenshot")
    ap.add_argument("--height", type=int, default=HEIGHT)
    args = ap.parse_args(argv)
    browser = find_chromium()
    if browser is None:
        print("check_report: Chromium not found: install it (apt-get install chromium) or set "
              "CHROMIUM=/path/to/chrome", file=sys.stderr)
        return 2
    baseline = args.baseline
    sys.path.insert(0, str(ROOT))
    from greenbench import profile as prof
    from greenbench.report.html import write_report

    out = args.out or Path(tempfile.mkdtemp(prefix="greenbench-report-"))
    rep = write_report(prof.load(args.profile), out, profile_name=str(args.profile),
                       baseline=prof.load(baseline) if baseline else None, baseline_name=str(baseline))
    shot = args.screenshot or out / "screenshot.png"
    screenshot(browser, rep.html_path, shot, height=args.height)
    expect = None if rep.comparison is None else bool(rep.comparison.regressions)
    problems = inspect(shot, expect)
    if rep.protocol_warning:
        print(f"warning: {rep.protocol_warning}", file=sys.stderr)
    print(f"report: {rep.html_path}")
    print(f"screenshot: {shot} ({WIDTH} px wide; look at it)")
    for p in problems:
        print(f"problem: {p}", file=sys.stderr)
    if not problems:
        print("ok: the page is drawn, the plots render" + ("" if expect is None else
              f", the verdict banner is {'red' if expect else 'not red'}"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
