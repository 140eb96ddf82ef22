"""Every table at 80 and 120 columns: nothing cut to "…" in the default view, the names a user
types next (ladders, models, points, zones, user types, months) whole on their line, no line
wider than the terminal; --wide shows more columns, at its own width, and cuts nothing either."""

from __future__ import annotations

import copy
import io
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from greenbench import profile as prof
from greenbench.cli import app
from greenbench.cli.common import PIPE_WIDTH, console_width
from greenbench.cli.profile_view import print_profile

ROOT = Path(__file__).resolve().parents[1]
FULL = ROOT / "profiles" / "mnist1d-cpu-2core.json"
QUICK = ROOT / "profiles" / "baseline" / "mnist1d-quick-cpu.json"
MODELS = ("linear", "mlp-32", "cnn-16", "cnn-32", "cnn-64")
POINTS = [f"{m} b{b} fp32 cpu" for m in MODELS for b in (1, 32, 256)]
runner = CliRunner()
WIDTHS = (80, 120)


def run(width: int, *args: str | Path) -> str:
    res = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": str(width)})
    assert res.exit_code in (0, 1), res.output  # compare exits 1 on the regressions it finds
    return res.stdout


def check_default_view(text: str, width: int, names: list[str] | tuple[str, ...]) -> None:
    assert "…" not in text, text
    too_wide = [line for line in text.splitlines() if len(line.rstrip()) > width]
    assert not too_wide, "\n".join(too_wide)
    for name in names:  # on one line, whole: what a user copies into the next command
        assert any(name in line for line in text.splitlines()), f"{name!r} not whole in:\n{text}"


def rendered(profile: prof.Profile, width: int, wide: bool = False) -> str:
    buf = io.StringIO()
    print_profile(Console(file=buf, width=width, color_system=None), profile, wide=wide)
    return buf.getvalue()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("path", [FULL, QUICK], ids=["full", "quick"])
def test_profile_table(width, path):
    p = prof.load(path)
    text = rendered(p, width)
    check_default_view(text, width, MODELS)
    assert "fp32" not in text.split("\n", 3)[1]  # the same everywhere: said once in the legend
    assert "all points fp32 on cpu" in " ".join(text.split())
    wide = rendered(p, width, wide=True)
    assert "…" not in wide and "95% CI" in wide and "GPU MiB" in wide and "RSS MiB" in wide


def test_profile_table_with_long_names_failures_and_mixed_devices():
    p = prof.load(FULL)
    long_name = "distilbert-base-uncased-finetuned-sst-2-english"
    extra = copy.deepcopy(p.records[0])
    extra.model, extra.device, extra.status, extra.error = long_name, "cuda:0", "failed", "OutOfMemoryError: CUDA"
    p.records.append(extra)
    gpu = copy.deepcopy(p.records[1])
    gpu.device, gpu.energy_method = "cuda:0", "nvml_counter"
    gpu.gpu_mem_peak_mib, gpu.host_rss_peak_mib = 812.5, 2048.0
    p.records.append(gpu)
    text = rendered(p, 80)
    assert "…" not in text
    # the long name folds onto a second line rather than lose its end
    assert long_name in "".join(line.strip() for line in text.splitlines())
    assert "cuda:0" in text and "nvml_counter" in text  # devices and methods differ: their columns show
    assert f"{long_name} b1 fp32 cuda:0: failed: OutOfMemoryError: CUDA" in " ".join(text.split())
    wide = rendered(p, 80, wide=True)
    row = next(line for line in wide.splitlines() if "nvml_counter" in line)
    assert "812" in row and "2,048" in row


@pytest.mark.parametrize("width", WIDTHS)
def test_zoo(width):
    text = run(width, "zoo")
    check_default_view(text, width, ["mnist1d (default)", "mnist1d-precisions", "sst2-bert", "imagenet-resnet-vit",
                                     "pythia-wikitext"])
    wide = run(width, "zoo", "--wide")
    assert "…" not in wide and "model names" in wide and "built-in" in wide


@pytest.mark.parametrize("width", WIDTHS)
def test_env(width):
    text = run(width, "env", "--zones")
    check_default_view(text, width, ["US-MIDA-PJM (default)", "versions:"])


@pytest.mark.parametrize("width", WIDTHS)
def test_carbon(width):
    zones = run(width, "carbon", "zones")
    check_default_view(zones, width, ["US-MIDA-PJM (default)", "US-CAL-CISO", "AU-NSW"])
    convert = run(width, "carbon", "convert", FULL, "--zone", "DE")
    check_default_view(convert, width, MODELS)
    show = run(width, "carbon", "show", "DE")
    check_default_view(show, width, ["Europe/Berlin"])
    wide = run(width, "carbon", "convert", FULL, "--zone", "DE", "--wide")
    assert "…" not in wide and "net g/item" in wide


@pytest.mark.parametrize("width", WIDTHS)
def test_fit(width, tmp_path):
    text = run(width, "fit", FULL, "--out", tmp_path, "--no-plots")
    check_default_view(text, width, [*POINTS, "accuracy_vs_energy", "latency_vs_batch", "cnn-64 fp32 cpu"])
    wide = run(width, "fit", FULL, "--out", tmp_path, "--no-plots", "--wide")
    assert "…" not in wide and "held-out check skipped" in wide


@pytest.mark.parametrize("width", WIDTHS)
def test_price(width):
    text = run(width, "price", FULL)
    check_default_view(text, width, [*POINTS, "accuracy-sensitive", "environmentally-conscious", "2023-12",
                                     "latency-sensitive"])
    assert "money in USD" in " ".join(text.split())


@pytest.mark.parametrize("width", WIDTHS)
def test_simulate_totals(width):
    text = run(width, "simulate", FULL, "--electricity-price-per-kwh", "0.2", "--trace", "DE")
    check_default_view(text, width, ["2023-01", "total"])
    total = next(line for line in text.splitlines() if line.startswith("total"))
    assert "156,543.93" in total  # the year's discounts, in full


@pytest.mark.parametrize("width", WIDTHS)
def test_compare(width):
    text = run(width, "compare", QUICK, FULL)
    check_default_view(text, width, [*POINTS, "energy_j_per_item *", "latency_p95_ms", "accuracy"])
    wide = run(width, "compare", QUICK, FULL, "--wide")
    assert "…" not in wide and "ratio" in wide


def test_width_comes_from_columns_then_the_terminal_then_a_wide_default(monkeypatch):
    monkeypatch.setenv("COLUMNS", "93")
    assert console_width(is_terminal=False, terminal_width=80) == 93
    assert console_width(is_terminal=True, terminal_width=80) == 93
    monkeypatch.delenv("COLUMNS")
    assert console_width(is_terminal=True, terminal_width=132) == 132
    assert console_width(is_terminal=False, terminal_width=80) == PIPE_WIDTH
    monkeypatch.setenv("COLUMNS", "not-a-number")
    assert console_width(is_terminal=False, terminal_width=80) == PIPE_WIDTH
