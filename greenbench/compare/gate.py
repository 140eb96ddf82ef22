"""Baseline against candidate: the CI gate.

Operating points are matched by their key (``Record.key``): ladder, model, batch size or, for a
served model, concurrency and request rate, precision and device. Every metric has a direction
(accuracy, exact match and throughput: higher is better; energy, carbon, latency, perplexity, TTFT and
TPOT: lower is better). A
row is one point and one gated metric; it is a **regression** only when the change crosses the
metric's threshold in the bad direction *and* is statistically significant on the per-repeat
samples stored in the profiles (one-sided Welch test on log samples for energy, latency and
throughput; a two-proportion test for accuracy), with Holm's correction over the rows of one
comparison, so that a comparison of pure noise fails at most ``alpha`` of the time. Rows that
cannot be compared (another model, other evaluation data, another energy method) are marked and
never fail. The rules are documented in docs/ci.md; exports are in compare/export.py.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from greenbench.errors import Exit, GreenbenchError
from greenbench.methods import ESTIMATE, UNAVAILABLE, is_measurement, method_note
from greenbench.profile import Profile, Record


class CompareError(GreenbenchError):
    """Bad thresholds or profiles that cannot be compared at all (one line)."""


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    unit: str
    energy: bool = False  # derived from energy: non-measured energy is marked, methods must match
    optional: bool = False  # produced by some workloads only: no row where neither side has it
    # a peak over the windows, newer than older profiles: a row only where both sides have it,
    # judged on the threshold alone (one maximum per point, no per-repeat samples)
    peak: bool = False


METRICS: dict[str, Metric] = {m.name: m for m in [
    Metric("energy_j_per_item", False, "J", energy=True),
    Metric("energy_net_j_per_item", False, "J", energy=True),
    Metric("co2e_g_per_item", False, "g", energy=True),
    Metric("latency_p50_ms", False, "ms"),
    Metric("latency_p95_ms", False, "ms"),
    Metric("latency_p99_ms", False, "ms"),
    Metric("items_per_s", True, "items/s"),
    Metric("accuracy", True, ""),
    # language models (records of causal-LM ladders, in-process or served)
    Metric("perplexity", False, "", optional=True),
    Metric("exact_match", True, "", optional=True),
    Metric("ttft_p50_ms", False, "ms", optional=True),
    Metric("ttft_p95_ms", False, "ms", optional=True),
    Metric("ttft_p99_ms", False, "ms", optional=True),
    Metric("tpot_ms", False, "ms", optional=True),
    Metric("tpot_p50_ms", False, "ms", optional=True),
    Metric("tpot_p95_ms", False, "ms", optional=True),
    Metric("tpot_p99_ms", False, "ms", optional=True),
    Metric("itl_p95_ms", False, "ms", optional=True),
    Metric("output_tokens_per_s", True, "tokens/s", optional=True),
    Metric("requests_per_s", True, "requests/s", optional=True),
    Metric("goodput_requests_per_s", True, "requests/s", optional=True),
    Metric("energy_j_per_output_token", False, "J", energy=True, optional=True),
    # peak memory over a point's windows (GPU allocator; host resident set)
    Metric("gpu_mem_peak_mib", False, "MiB", optional=True, peak=True),
    Metric("host_rss_peak_mib", False, "MiB", optional=True, peak=True),
]}

# Gated when no --fail-on is given (docs/ci.md, "Thresholds"). The quality metrics of language
# models are optional: a row only where a profile scored them (perplexity, exact match), so that a
# classifier's comparison is what it was.
DEFAULT_THRESHOLDS = ("energy_j_per_item:+5%", "latency_p95_ms:+10%", "accuracy:-0.01", "perplexity:+1%",
                      "exact_match:-0.01")

# Values that are, by definition, the mean of their per-repeat samples: a mismatch means the
# samples do not describe the value (an edited file), so the row cannot be tested.
_MEAN_OF_SAMPLES = {"energy_j_per_item", "items_per_s"}
_EXACT_RTOL = 1e-9


@dataclass(frozen=True)
class Threshold:
    metric: str
    value: float  # signed, in the metric's bad direction: +0.05 (relative) or -0.01 (absolute)
    relative: bool
    text: str

    def crossed(self, change: float) -> bool:
        """Whether ``change`` (relative or absolute, like the threshold) goes past it."""
        tol = 1e-9 * max(1.0, abs(self.value))
        if METRICS[self.metric].higher_is_better:
            return change < self.value - tol
        return change > self.value + tol

    def mirrored_crossed(self, change: float) -> bool:
        """Whether ``change`` goes as far in the good direction (an improvement)."""
        tol = 1e-9 * max(1.0, abs(self.value))
        if METRICS[self.metric].higher_is_better:
            return change > -self.value + tol
        return change < -self.value - tol


_THRESHOLD_RE = re.compile(r"^\s*([a-z0-9_]+)\s*:\s*([+-]?)\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*(%?)\s*$")


def parse_threshold(text: str) -> Threshold:
    """``METRIC:+5%`` (relative) or ``METRIC:-0.01`` (absolute, in the metric's unit).

    The sign is the bad direction (``+`` for lower-is-better metrics, ``-`` for higher-is-better);
    without a sign the bad direction is assumed. A sign in the good direction is an error.
    """
    m = _THRESHOLD_RE.match(text)
    if not m:
        raise CompareError(f"--fail-on {text!r}: write METRIC:+5% (relative) or METRIC:-0.01 (absolute), "
                           f"e.g. energy_j_per_item:+5% or accuracy:-0.01")
    name, sign, number, pct = m.groups()
    if name not in METRICS:
        raise CompareError(f"--fail-on {text!r}: unknown metric {name!r}; choose one of {', '.join(METRICS)}")
    metric = METRICS[name]
    magnitude = float(number) / (100 if pct else 1)
    if not math.isfinite(magnitude):
        raise CompareError(f"--fail-on {text!r}: the threshold must be a finite number")
    bad = "-" if metric.higher_is_better else "+"
    if sign and sign != bad and magnitude != 0:
        direction = "higher" if metric.higher_is_better else "lower"
        raise CompareError(
            f"--fail-on {text!r}: {direction} {name} is better, so a regression is a "
            f"{'drop' if metric.higher_is_better else 'rise'}: write {name}:{bad}{number}{pct}")
    if pct and metric.higher_is_better and magnitude >= 1:
        raise CompareError(f"--fail-on {text!r}: a drop of {number}% or more cannot happen; use less than 100%")
    value = -magnitude if metric.higher_is_better else magnitude
    return Threshold(name, value, bool(pct), f"{name}:{bad}{number}{pct}")


def parse_thresholds(texts: list[str] | tuple[str, ...] | None) -> tuple[Threshold, ...]:
    out: dict[str, Threshold] = {}
    for t in (texts or DEFAULT_THRESHOLDS):
        th = parse_threshold(t)
        if th.metric in out:
            raise CompareError(f"--fail-on {th.metric} is given twice ({out[th.metric].text}, {th.text}): keep one")
        out[th.metric] = th
    return tuple(out.values())


Correction = Literal["holm", "none"]
Estimates = Literal["fail", "warn", "ignore"]


@dataclass(frozen=True)
class Options:
    thresholds: tuple[Threshold, ...] = ()
    alpha: float = 0.05
    stats: bool = True
    no_stats_for: frozenset[str] = frozenset()  # metrics judged on the threshold alone
    correction: Correction = "holm"
    estimates: Estimates = "fail"

    def __post_init__(self):
        if not (0 < self.alpha < 1):
            raise CompareError(f"--alpha {self.alpha}: choose a level between 0 and 1 (default 0.05)")
        if self.correction not in ("holm", "none"):
            raise CompareError(f"--correction {self.correction!r}: choose holm or none")
        if self.estimates not in ("fail", "warn", "ignore"):
            raise CompareError(f"--estimates {self.estimates!r}: choose fail, warn or ignore")
        for m in self.no_stats_for:
            if m not in METRICS:
                raise CompareError(f"--no-stats-for {m!r}: unknown metric; choose one of {', '.join(METRICS)}")
        if not self.thresholds:
            object.__setattr__(self, "thresholds", parse_thresholds(None))


# Row status: what the gate decided for one point and one metric.
Status = Literal["regression", "ok", "improvement", "not_comparable", "warning", "ignored", "missing", "new"]


@dataclass
class Row:
    point: str  # "cnn-64 b256 fp32 cpu"
    key: tuple
    metric: str
    threshold: str | None
    status: Status
    before: float | None = None
    after: float | None = None
    change: float | None = None  # relative (after/before - 1) or absolute (after - before), as the threshold
    relative: bool = True
    ratio: float | None = None
    p: float | None = None  # one-sided, in the bad direction, before correction
    p_adjusted: float | None = None  # Holm-adjusted (or p without correction)
    test: str = "none"  # welch-log, welch, two-proportion, exact, identical, untested, off
    crossed: bool = False
    significant: bool | None = None
    estimate: bool = False  # an energy metric whose energy is not a measurement (on either side)
    unmeasured: tuple[str, ...] = ()  # those sides' energy methods (estimate, fake, ...)
    n_before: int | None = None
    n_after: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def counts(self) -> bool:
        return self.status == "regression"

    def change_text(self) -> str:
        if self.change is None:
            return "—"
        if self.change == 0:
            return "0.0%" if self.relative else "0"
        return f"{self.change:+.1%}" if self.relative else f"{self.change:+.4g}"

    def p_text(self) -> str:
        if self.test == "exact":
            return "exact"
        if self.test in ("untested", "off", "identical"):
            return {"identical": "same"}.get(self.test, self.test)
        if self.p_adjusted is None:
            return "—"
        return "p<1e-4" if self.p_adjusted < 1e-4 else f"p={self.p_adjusted:.2g}"

    def verdict(self) -> str:
        if self.status == "regression":
            return "REGRESSION" + (" (estimate)" if self.estimate else "")
        if self.status in ("not_comparable", "missing", "new", "ignored", "warning"):
            text = {"not_comparable": "not comparable", "missing": "missing in candidate",
                    "new": "new in candidate", "ignored": "ignored (estimate)",
                    "warning": "warning (estimate)"}[self.status]
            return text
        if self.crossed and not self.significant:
            return "crossed, not significant"
        return "improved" if self.status == "improvement" else "ok"


@dataclass
class Result:
    baseline_name: str
    candidate_name: str
    baseline: Profile
    candidate: Profile
    options: Options
    rows: list[Row]
    warnings: list[str]
    family_size: int  # rows in the Holm family

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.counts]

    @property
    def judged(self) -> int:
        """Rows whose metric was actually held against its threshold."""
        return sum(r.status in ("ok", "improvement", "regression", "warning") for r in self.rows)

    @property
    def nothing_compared(self) -> str | None:
        """Why no row could be judged (every point not comparable or skipped), else None: a gate
        that compared nothing must not pass."""
        if self.judged or self.regressions:
            return None
        reasons = [n for r in self.rows if r.status == "not_comparable" for n in r.notes][:1]
        why = f" (first: {reasons[0]})" if reasons else ""
        return f"nothing was compared: {self.count('not_comparable')} row(s) not comparable{why}"

    @property
    def exit_code(self) -> Exit:
        if self.regressions:
            return Exit.REGRESSION
        return Exit.USAGE if self.nothing_compared else Exit.OK

    @property
    def unmeasured_methods(self) -> list[str]:
        """The energy methods behind the rows marked estimate: none of them is a measurement."""
        return sorted({m for r in self.rows if r.estimate for m in r.unmeasured})

    def unmeasured_text(self) -> str:
        return unmeasured_text(self.unmeasured_methods)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.rows)

    def summary_line(self) -> str:
        regs = self.regressions
        if regs:
            shown = "; ".join(_row_phrase(r) for r in regs[:3])
            more = f"; and {len(regs) - 3} more" if len(regs) > 3 else ""
            return f"{len(regs)} regression{'s' if len(regs) > 1 else ''}: {shown}{more}"
        crossed = sum(r.crossed and r.significant is False for r in self.rows if r.status == "ok")
        parts = [f"{sum(r.status in ('ok', 'improvement') for r in self.rows)} rows within thresholds"]
        if crossed:
            parts.append(f"{crossed} crossed a threshold without a significant change")
        for status, label in (("improvement", "improved"), ("not_comparable", "not comparable"),
                              ("warning", "estimate warning(s)"), ("missing", "missing in candidate")):
            if self.count(status):
                parts.append(f"{self.count(status)} {label}")
        return "No regression: " + ", ".join(parts)


def unmeasured_text(methods: Iterable[str]) -> str:
    """What energy marked estimate rests on: 'an estimate' for CodeCarbon's alone, else each
    method's note ("from the fake test meter (energy_method 'fake'), not a measurement")."""
    methods = sorted(methods)
    return "an estimate" if methods == [ESTIMATE] else "; ".join(method_note(m) for m in methods)


def _row_phrase(r: Row) -> str:
    if r.metric == "status":
        return f"{r.point} failed in the candidate"
    how = {"untested": ", untested: threshold alone", "off": ""}.get(r.test, f", {r.p_text()}")
    return f"{r.point} {r.metric} {r.change_text()} ({r.before:.4g} -> {r.after:.4g}{how})"


def point_label(r: Record) -> str:
    """The point's name: ``Record.label`` ("cnn-64 b256 fp32 cpu", "qwen c16 bf16 cuda:0")."""
    return r.label


def metric_value(r: Record, name: str) -> float | None:
    """The record's figure of a gated metric: a field, or one of its other quality figures
    (``Record.quality``, e.g. exact_match)."""
    v = getattr(r, name, None)
    if v is None and name not in Record.model_fields:
        v = (r.quality or {}).get(name)
    return v


# --- samples -------------------------------------------------------------------------------------

def samples_of(r: Record, metric: str) -> list[float] | None:
    """Per-repeat values of ``metric`` stored in (or derived from) the record, or None."""
    s = r.samples or {}
    if metric in s:
        return [float(x) for x in s[metric]]
    energy = s.get("energy_j_per_item")
    if metric == "energy_net_j_per_item" and energy and r.idle_power_w is not None:
        ips = s.get("items_per_s")
        if ips and len(ips) == len(energy) and all(x > 0 for x in ips):
            return [float(e - r.idle_power_w / x) for e, x in zip(energy, ips, strict=True)]
    if metric == "co2e_g_per_item" and energy and r.co2e_g_per_item is not None and r.energy_j_per_item:
        k = r.co2e_g_per_item / r.energy_j_per_item
        return [float(e * k) for e in energy]
    return None


def _one_sided(before: float, b: np.ndarray, after: float, a: np.ndarray, higher_is_better: bool):
    """(p of a change in the bad direction, test name, note) with the values as location and the
    samples as spread; None for p when the row cannot be tested."""
    from scipy import stats

    if len(b) < 2 or len(a) < 2:
        return None, "untested", "fewer than 2 samples on a side"
    positive = before > 0 and after > 0 and (b > 0).all() and (a > 0).all()
    f = np.log if positive else (lambda x: x)
    fb, fa = f(b), f(a)
    loc_b, loc_a = float(f(before)), float(f(after))
    worse = loc_a < loc_b if higher_is_better else loc_a > loc_b
    if len(a) == len(b):
        d = fa - fb
        if np.allclose(d, d[0], rtol=0, atol=_EXACT_RTOL * max(1.0, float(np.abs(fb).max()))):
            # samples are the baseline's shifted by one constant: a copy, not a new measurement
            if not math.isclose(float(d[0]), loc_a - loc_b, rel_tol=1e-6, abs_tol=_EXACT_RTOL):
                return None, "untested", "samples do not follow the value (an edited profile?)"
            if loc_a == loc_b:
                return 1.0, "identical", None
            return (0.0 if worse else 1.0), "exact", "candidate's samples are the baseline's times a constant"
    sd_b, sd_a = float(fb.std(ddof=1)), float(fa.std(ddof=1))
    if sd_b == 0 and sd_a == 0:
        return (1.0 if loc_a == loc_b or not worse else 0.0), "exact", "no spread in the samples"
    res = stats.ttest_ind_from_stats(loc_a, sd_a, len(a), loc_b, sd_b, len(b), equal_var=False,
                                     alternative="less" if higher_is_better else "greater")
    return float(res.pvalue), ("welch-log" if positive else "welch"), None


def _accuracy_test(b: Record, a: Record):
    from scipy import stats

    if not b.accuracy_n or not a.accuracy_n:
        return None, "untested", "no accuracy_n (number of evaluated items)"
    if b.accuracy is None or a.accuracy is None:  # not reached: _metric_blocker rules the row out first
        return None, "untested", "no accuracy"
    kb, ka = round(b.accuracy * b.accuracy_n), round(a.accuracy * a.accuracy_n)
    if kb * a.accuracy_n == ka * b.accuracy_n:
        return 1.0, "identical", "same count of correct items"
    n1, n2 = b.accuracy_n, a.accuracy_n
    pooled = (kb + ka) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (kb / n1 - ka / n2) / se
    return float(stats.norm.sf(z)), "two-proportion", None


# --- comparability -------------------------------------------------------------------------------

def _diff_keys(x: dict, y: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(x) | set(y)):
        vx, vy = x.get(k), y.get(k)
        if isinstance(vx, dict) and isinstance(vy, dict):
            out += _diff_keys(vx, vy, f"{prefix}{k}.")
        elif vx != vy:
            out.append(f"{prefix}{k} {vx!r} vs {vy!r}")
    return out


# Dataset provenance that says where or with what the data was read, not which data it is: a
# checkout on another machine, another `datasets` release or cache fingerprint, another version
# of the generator package. The identity (hub id/config/split/revision, file hash, seed, sizes)
# is compared; these are not.
_DATA_LOCATION_KEYS = {"path", "fingerprint", "datasets", "generator"}


def _data_identity(record: Record) -> dict:
    data = (record.workload or {}).get("dataset") or {}
    return {k: v for k, v in data.items() if k not in _DATA_LOCATION_KEYS}


def _row_blocker(b: Record, a: Record) -> str | None:
    """Why the two records measure different things (then no metric of the point is compared)."""
    diff = _diff_keys(b.model_spec or {}, a.model_spec or {})
    if diff:
        return "model changed: " + ", ".join(diff[:2])
    diff = _diff_keys(_data_identity(b), _data_identity(a))
    if diff:
        return "evaluation data changed: " + ", ".join(diff[:2])
    return None


def _metric_blocker(metric: Metric, b: Record, a: Record, bp: Profile, ap: Profile) -> str | None:
    if metric.energy:
        if b.energy_method != a.energy_method:
            return f"energy method {b.energy_method} vs {a.energy_method}"
        basis_b, basis_a = bp.settings.energy_basis, ap.settings.energy_basis
        if basis_b != basis_a:
            return f"energy basis {basis_b} vs {basis_a}"
        if metric.name == "co2e_g_per_item" and b.intensity_gco2e_per_kwh != a.intensity_gco2e_per_kwh:
            return f"carbon intensity {b.intensity_gco2e_per_kwh} vs {a.intensity_gco2e_per_kwh} gCO2e/kWh"
    if metric.name == "accuracy" and b.accuracy_n and a.accuracy_n and b.accuracy_n != a.accuracy_n:
        return f"accuracy over {b.accuracy_n} vs {a.accuracy_n} items"
    vb, va = metric_value(b, metric.name), metric_value(a, metric.name)
    if vb is None or va is None:
        side, rec = ("baseline", b) if vb is None else ("candidate", a)
        why = rec.energy_reason if metric.energy and rec.energy_reason else "null"
        return f"no {metric.name} in the {side} ({why})"
    return None


def _profile_warnings(bp: Profile, ap: Profile, names: tuple[str, str]) -> list[str]:
    w = []
    pb, pa = bp.provenance, ap.provenance
    hw = []
    if pb.cpu_model != pa.cpu_model:
        hw.append(f"CPU {pb.cpu_model} vs {pa.cpu_model}")
    for dev in sorted(set(bp.idle) & set(ap.idle)):
        ib, ia = bp.idle[dev], ap.idle[dev]
        if ib.uuid != ia.uuid and (ib.uuid or ia.uuid):
            hw.append(f"{dev} {ib.device_name} {ib.uuid} vs {ia.device_name} {ia.uuid}")
        elif ib.device_name != ia.device_name and dev != "cpu":
            hw.append(f"{dev} {ib.device_name} vs {ia.device_name}")
    if hw:
        w.append("different hardware (" + "; ".join(hw) + "): energy and latency changes may be the "
                 "machine's, not the code's; compare profiles measured on the same machine")
    if pb.torch_threads != pa.torch_threads and pb.torch_threads and pa.torch_threads:
        w.append(f"torch CPU threads {pb.torch_threads} vs {pa.torch_threads}: CPU latency and "
                 "energy depend on it; set OMP_NUM_THREADS alike for both runs")
    # the protocols as written (a setting one file lacks differs); the seed only orders batch sizes
    diff = _diff_keys(bp.settings.protocol.model_dump(exclude={"seed"}),
                      ap.settings.protocol.model_dump(exclude={"seed"}))
    if diff:
        w.append("the measurement protocols differ (" + ", ".join(diff[:3]) + "): latency and energy "
                 "may shift with the window; profile both with the same options")
    for name, p in zip(names, (bp, ap), strict=True):
        if not p.complete:
            w.append(f"{name} is incomplete (an interrupted run): only its finished points are compared")
    return w


# --- the comparison ------------------------------------------------------------------------------

def compare(baseline: Profile, candidate: Profile, options: Options | None = None,
            names: tuple[str, str] = ("baseline", "candidate")) -> Result:
    """Compare ``candidate`` with ``baseline``; raises CompareError when no point is in common."""
    options = options or Options()
    before = {r.key(): r for r in baseline.records}
    after = {r.key(): r for r in candidate.records}
    common = [k for k in before if k in after]
    if not common:
        def desc(p: Profile, name: str) -> str:
            devs = sorted({r.device for r in p.records})
            return f"{name} has ladder {p.ladder.name!r}, {len(p.records)} points on {', '.join(devs) or 'no device'}"
        raise CompareError(f"no operating point in common: {desc(baseline, names[0])}; {desc(candidate, names[1])}")
    warnings = _profile_warnings(baseline, candidate, names)
    gpus = sorted({(before[k].device, getattr(before[k], "device_uuid", None), getattr(after[k], "device_uuid", None))
                   for k in common} - {(k[4], None, None) for k in common})
    gpus = [g for g in gpus if g[1] != g[2]]
    if gpus and not any(w.startswith("different hardware") for w in warnings):
        warnings.insert(0, "different hardware (" + "; ".join(f"{d} {b} vs {a}" for d, b, a in gpus[:3])
                        + "): energy and latency changes may be the machine's, not the code's; compare "
                        "profiles measured on the same machine")
    rows: list[Row] = []
    for k in common:
        rows += _point_rows(before[k], after[k], baseline, candidate, options)
    missing = [before[k] for k in before if k not in after]
    new = [after[k] for k in after if k not in before]
    for r in missing:
        rows.append(Row(point_label(r), r.key(), "—", None, "missing"))
    for r in new:
        rows.append(Row(point_label(r), r.key(), "—", None, "new"))
    if missing:
        more = f" and {len(missing) - 4} more" if len(missing) > 4 else ""
        w = ", ".join(point_label(r) for r in missing[:4]) + more
        warnings.append(f"{len(missing)} baseline point(s) not in the {names[1]}: {w} (not compared)")
    gated = {t.metric for t in options.thresholds}
    if not any(r.metric in gated or r.metric == "status" for r in rows):
        warnings.append(f"nothing was compared: no common point has {', '.join(sorted(gated))}; "
                        "choose other metrics with --fail-on")
    family = _adjust(rows, options)
    for row in rows:
        _decide(row, options)
    return Result(names[0], names[1], baseline, candidate, options, rows, warnings, family)


def _point_rows(b: Record, a: Record, bp: Profile, ap: Profile, options: Options) -> list[Row]:
    label = point_label(b)
    if b.status != "ok":
        return [Row(label, b.key(), "status", None, "not_comparable", notes=[f"baseline point {b.status}"])]
    if a.status == "failed":
        return [Row(label, b.key(), "status", None, "regression", test="off", crossed=True,
                    notes=[f"failed in the candidate: {a.error or 'no error recorded'}"])]
    if a.status != "ok":
        return [Row(label, b.key(), "status", None, "not_comparable", notes=[f"candidate point {a.status}"])]
    blocker = _row_blocker(b, a)
    rows = []
    for th in options.thresholds:
        m = METRICS[th.metric]
        row = Row(label, b.key(), m.name, th.text, "ok", relative=th.relative)
        if m.energy:  # energy that is there but not a measurement (no energy at all is not comparable)
            row.unmeasured = tuple(sorted({x for x in (b.energy_method, a.energy_method)
                                           if x not in (UNAVAILABLE, None) and not is_measurement(x)}))
            row.estimate = bool(row.unmeasured)
        why = blocker or _metric_blocker(m, b, a, bp, ap)
        row.before, row.after = metric_value(b, m.name), metric_value(a, m.name)
        if row.before is None and row.after is None and (m.optional or m.name == "accuracy"):
            continue  # a figure this workload does not produce (accuracy of a language model)
        if m.peak and (row.before is None or row.after is None):
            continue  # a profile from before peaks were recorded, or a CPU point's GPU peak
        if why:
            row.status, row.notes = "not_comparable", [why]
            rows.append(row)
            continue
        before, after = row.before, row.after
        # _metric_blocker gives a reason (handled above) whenever either side lacks the metric
        assert before is not None and after is not None
        if th.relative and before <= 0:
            row.status, row.notes = "not_comparable", [f"relative change undefined (baseline {before:.4g})"]
            rows.append(row)
            continue
        row.ratio = after / before if before else None
        row.change = (after / before - 1) if th.relative else (after - before)
        row.crossed = th.crossed(row.change)
        if not options.stats or m.name in options.no_stats_for:
            row.test = "off"
        elif m.peak:
            row.test = "untested"
            row.notes.append("a peak: one figure per point, no samples")
        elif m.name == "accuracy":
            row.p, row.test, note = _accuracy_test(b, a)
            row.notes += [note] if note and row.test == "untested" else []
        else:
            sb, sa = samples_of(b, m.name), samples_of(a, m.name)
            row.n_before, row.n_after = (len(sb) if sb else None), (len(sa) if sa else None)
            note = None
            if not sb or not sa:
                row.test, note = "untested", "no per-repeat samples"
            elif m.name in _MEAN_OF_SAMPLES and any(
                    not math.isclose(v, float(np.mean(s)), rel_tol=1e-6)
                    for v, s in ((before, sb), (after, sa))):
                row.test, note = "untested", "samples do not match the value (an edited profile?)"
            else:
                row.p, row.test, note = _one_sided(before, np.asarray(sb), after, np.asarray(sa),
                                                   m.higher_is_better)
            if note and row.test in ("untested", "exact"):
                row.notes.append(note)
        if row.test == "untested":
            row.notes.append("judged on the threshold alone")
        rows.append(row)
    return rows


def _adjust(rows: list[Row], options: Options) -> int:
    """Holm's step-down adjustment over the rows tested by a random test; returns the family size."""
    fam = [(r.p, r) for r in rows if r.test in ("welch-log", "welch", "two-proportion") and r.p is not None]
    for r in rows:
        r.p_adjusted = r.p
    if options.correction == "none" or not fam:
        return len(fam)
    m = len(fam)
    running = 0.0
    for i, (p, r) in enumerate(sorted(fam, key=lambda pr: pr[0])):
        running = max(running, min(1.0, (m - i) * p))
        r.p_adjusted = running
    return m


def _decide(row: Row, options: Options) -> None:
    if row.status != "ok" or row.change is None:
        return
    if row.test in ("off", "untested"):
        row.significant = None
        sig, sig_good = True, True
    else:
        row.significant = row.p_adjusted is not None and row.p_adjusted <= options.alpha
        sig = row.significant
        sig_good = row.p is not None and (1 - row.p) <= options.alpha and row.test != "identical"
    th = next(t for t in options.thresholds if t.metric == row.metric)
    if row.crossed and sig:
        if row.estimate and options.estimates == "ignore":
            row.status = "ignored"
        elif row.estimate and options.estimates == "warn":
            row.status = "warning"
        else:
            row.status = "regression"
    elif th.mirrored_crossed(row.change) and sig_good:
        row.status = "improvement"
    if row.estimate and options.estimates == "ignore" and row.status == "ok":
        row.status = "ignored"
