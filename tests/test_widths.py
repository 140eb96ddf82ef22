"""Every table at 80 and 120 columns: nothing cut to "…" in the default view, the names a user
types next (ladders, models, points, zones, user types, months) whole on their line, no line
wider than the terminal; --wide shows more columns, at its own width, and cuts nothing either."""

from __future__ import annotations

import copy
import io
import json
import re
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
# A hub model's name, longer than a table's first column can hold at 80 columns
SUFFIX = "-base-uncased-finetuned-sst-2-english"
LONG_POINTS = [f"{m}{SUFFIX} b{b} fp32 cpu" for m in MODELS for b in (1, 32, 256)]


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


def readable(text: str, name: str) -> bool:
    """Whether ``name`` can be read in ``text`` down one column: whole on a line, or folded onto
    the next lines at the same offset (at its spaces, or inside a word too long for the column)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        for x in range(len(line)):
            if (x and line[x - 1] != " ") or not line.startswith(name[: min(4, len(name))], x):
                continue
            rest, j = name, i
            while j < len(lines):
                seg = lines[j][x:]
                same = [a == b for a, b in zip(seg, rest, strict=False)]
                n = same.index(False) if False in same else len(same)
                if n == 0:
                    break
                rest = rest[n:].lstrip(" ")  # a fold at a space drops the space
                if not rest:
                    return True
                j += 1
    return False


def check_long_names(text: str, width: int, names: list[str] | tuple[str, ...]) -> None:
    """The default view with names too long for one line: nothing cut, no line too wide, every
    name readable down its column, and the numbers (every J/item shown) whole."""
    assert "…" not in text, text
    too_wide = [line for line in text.splitlines() if len(line.rstrip()) > width]
    assert not too_wide, "\n".join(too_wide)
    for name in names:
        assert readable(text, name), f"{name!r} not readable in:\n{text}"


def long_named(path: Path, tmp_path: Path) -> Path:
    """A copy of a committed profile whose models have a hub model's long names."""
    doc = json.loads(path.read_text())
    for r in doc["records"]:
        r["model"] += SUFFIX
    target = tmp_path / f"long-{path.name}"
    target.write_text(json.dumps(doc))
    return target


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


def frontier(path: Path, tmp_path: Path) -> list[str]:
    res = runner.invoke(app, ["fit", str(path), "--out", str(tmp_path), "--no-plots", "--json"])
    assert res.exit_code == 0, res.output
    return [p["label"] for p in json.loads(res.stdout)["points"] if p["on_frontier"]]


@pytest.mark.parametrize("width", WIDTHS)
def test_fit(width, tmp_path):
    text = run(width, "fit", FULL, "--out", tmp_path, "--no-plots")
    on = frontier(FULL, tmp_path)
    assert len(on) >= 10
    check_default_view(text, width, [*on, "accuracy_vs_energy", "latency_vs_batch", "cnn-64 fp32 cpu"])
    wide = run(width, "fit", FULL, "--out", tmp_path, "--no-plots", "--wide")
    assert "…" not in wide and "held-out check skipped" in wide


@pytest.mark.parametrize("width", WIDTHS)
def test_price(width, tmp_path):
    text = run(width, "price", FULL)
    check_default_view(text, width, [*frontier(FULL, tmp_path), "accuracy-sensitive", "environmentally-conscious",
                                     "2023-12", "latency-sensitive"])
    assert "money in USD" in " ".join(text.split())


@pytest.mark.parametrize("width", WIDTHS)
def test_simulate_totals(width):
    text = run(width, "simulate", FULL, "--electricity-price-per-kwh", "0.2", "--trace", "DE")
    check_default_view(text, width, ["2023-01", "total"])
    total = next(line for line in text.splitlines() if line.startswith("total"))
    assert re.search(r" \d{1,3}(,\d{3})+\.\d\d ", total), total  # the year's discounts, in full (e.g. 104,537.03)


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


# --- names too long for one line: they fold, nothing is cut ----------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_profile_table_long_names(width, tmp_path):
    text = rendered(prof.load(long_named(FULL, tmp_path)), width)
    check_long_names(text, width, [m + SUFFIX for m in MODELS])
    assert "J/item" in text and "p95 ms" in text  # headers whole


@pytest.mark.parametrize("width", WIDTHS)
def test_fit_long_names(width, tmp_path):
    path = long_named(FULL, tmp_path)
    text = run(width, "fit", path, "--out", tmp_path, "--no-plots")
    check_long_names(text, width, [*frontier(path, tmp_path), "accuracy_vs_energy", "latency_vs_batch",
                                   f"cnn-64{SUFFIX} fp32 cpu"])
    for header in ("accuracy", "p95 ms", "J/item", "resid.", "LOO"):
        assert header in text
    on = frontier(path, tmp_path)
    doc = json.loads(runner.invoke(app, ["fit", str(path), "--out", str(tmp_path), "--no-plots", "--json"]).stdout)
    energies = {p["label"]: p["energy_j_per_item"] for p in doc["points"]}
    body = " ".join(text.split())
    for label in on:  # every number whole: each point's energy to 3 significant figures
        assert f"{energies[label]:.2e}" in body or f"{energies[label]:.3g}" in body, label


@pytest.mark.parametrize("width", WIDTHS)
def test_price_long_names(width, tmp_path):
    path = long_named(FULL, tmp_path)
    text = run(width, "price", path)
    # the R ranking lists every frontier point
    check_long_names(text, width, [*frontier(path, tmp_path), "accuracy-sensitive", "2023-12"])
    for header in ("accuracy", "J/request", "ΔE J", "J/U", "ΔC/1k", "C_base/1k"):
        assert header in text


@pytest.mark.parametrize("width", WIDTHS)
def test_simulate_long_names(width, tmp_path):
    text = run(width, "simulate", long_named(FULL, tmp_path), "--electricity-price-per-kwh", "0.2",
               "--trace", "DE")
    check_long_names(text, width, ["2023-01", "total", f"cnn-64{SUFFIX} b256 fp32 cpu"])
    total = next(line for line in text.splitlines() if line.startswith("total"))
    assert re.search(r" \d{1,3}(,\d{3})+\.\d\d ", total), total


@pytest.mark.parametrize("width", WIDTHS)
def test_compare_long_names(width, tmp_path):
    text = run(width, "compare", long_named(QUICK, tmp_path), long_named(FULL, tmp_path))
    check_long_names(text, width, [*LONG_POINTS, "energy_j_per_item *", "latency_p95_ms"])
    for header in ("before", "after", "change", "test", "verdict"):
        assert header in text


@pytest.mark.parametrize("width", WIDTHS)
def test_carbon_convert_long_names(width, tmp_path):
    text = run(width, "carbon", "convert", long_named(FULL, tmp_path), "--zone", "DE")
    check_long_names(text, width, [m + SUFFIX for m in MODELS])
    for header in ("J/item", "gCO2e/item", "g per 1M"):
        assert header in text


@pytest.mark.parametrize("width", WIDTHS)
def test_zoo_long_names(width, tmp_path):
    long = "distilbert-base-uncased-finetuned-sst-2-english-on-a-laptop-at-home"
    zoo = tmp_path / "zoo.yaml"
    zoo.write_text(f"""version: 1
ladders:
  {long}:
    workload: embedded
    models:
      - {{name: {long}-linear, arch: linear}}
      - {{name: mlp, arch: mlp, width: 32}}
    batch_sizes: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048]
    precisions: [fp32, bf16]
""")
    text = run(width, "zoo", "--zoo", zoo)
    check_long_names(text, width, [long, "mnist1d (default)", "sst2-bert"])
    assert "1024, 2048" in " ".join(text.split()) or "1024," in text
    models = run(width, "zoo", long, "--zoo", zoo)
    check_long_names(models, width, [f"{long}-linear", "mlp"])


def test_a_table_whose_numbers_alone_are_wider_than_the_console_is_printed_wider_not_cut():
    from greenbench.cli.tables import Col, Section, print_sections

    buf = io.StringIO()
    console = Console(file=buf, width=40, color_system=None)
    cols = [Col("name", "name"), *(Col(f"n{i}") for i in range(6))]
    print_sections(console, [Section("t", cols, [["a-long-model-name", *(f"{1234.5 * i:,.1f}" for i in range(6))]])])
    text = buf.getvalue()
    assert "…" not in text and "1,234.5  2,469.0  3,703.5  4,938.0  6,172.5" in text
    assert readable(text, "a-long-model-name")


def test_a_column_has_one_notation():
    from greenbench.cli.tables import Col, Section, print_sections, sig, to_markdown

    rows = [["a", sig(0.00302)], ["b", sig(2.12e-4)], ["c", sig(11.3)], ["d", "—"]]
    section = Section("t", [Col("m", "name"), Col("J")], rows)
    buf = io.StringIO()
    print_sections(Console(file=buf, width=80, color_system=None), [section])
    text = buf.getvalue()
    assert "3.02e-03" in text and "2.12e-04" in text and "1.13e+01" in text and "—" in text
    assert "0.00302" not in text
    assert "| a | 3.02e-03 |" in to_markdown([section])
    plain = Section("t", [Col("m", "name"), Col("J")], [["a", sig(0.00302)], ["b", sig(11.3)]])
    buf = io.StringIO()
    print_sections(Console(file=buf, width=80, color_system=None), [plain])
    assert "0.00302" in buf.getvalue() and "11.3" in buf.getvalue()  # no exponent needed: none written
    # a column of different quantities row by row (compare's before/after): each cell as written
    mixed = Section("t", [Col("metric", "name"), Col("before", mixed=True)],
                    [["energy", "2.12e-04"], ["accuracy", "0.318"]])
    assert "| accuracy | 0.318 |" in to_markdown([mixed])
