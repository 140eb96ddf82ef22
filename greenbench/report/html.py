"""A self-contained HTML report of a profile (and its changes against a baseline), with the plots
also written as PNG files beside it.

Self-contained means one file that opens anywhere, offline: CSS inline, plots as base64 PNG data,
no script, no font, no link to anything on a network.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from greenbench.compare.gate import Options, Result, Row, compare
from greenbench.errors import GreenbenchError
from greenbench.methods import (
    ESTIMATE,
    FAKE,
    is_measurement,
    method_label,
    method_source,
)
from greenbench.profile import QUALITY_DIRECTIONS, Profile, Record, utc_now
from greenbench.report import plots as plots
from greenbench.tradeoff.points import UNKNOWN_HARDWARE


class ReportError(GreenbenchError):
    """The report cannot be written (one line)."""


PLOTS = {  # file name -> (title, what it shows)
    "accuracy_vs_energy.png": ("Accuracy against energy per item",
                               "Each point is an operating point; bars are 95% intervals on both axes."),
    "exact_match_vs_energy.png": ("Exact match against energy per item",
                                  "Each point is an operating point; bars are 95% intervals of energy."),
    "perplexity_vs_energy.png": ("Perplexity against energy per item",
                                 "Each point is an operating point (lower perplexity is better, log axis); "
                                 "bars are 95% intervals of energy."),
    "latency_vs_batch.png": ("Latency against batch size",
                             "Latency per batch (what each request of a batch waits): p50 solid, p95 dashed."),
    "latency_vs_concurrency.png": ("Request latency against concurrency",
                                   "Each request's end-to-end latency under a closed-loop load of N requests in "
                                   "flight: p50 solid, p95 dashed."),
    "latency_vs_rate.png": ("Request latency against request rate",
                            "Each request's end-to-end latency under an open-loop (Poisson) load: p50 solid, "
                            "p95 dashed."),
    "energy_by_model.png": ("Energy per item by model",
                            "One marker per batch size (or load) on a log axis (equal steps are equal ratios); "
                            "whiskers are 95% intervals."),
}
# Language models only (drawn where the profile has the figures): name -> (title, caption, drawer).
LM_PLOTS = {
    "energy_per_token_vs_{axis}.png": ("Energy per output token against {words}",
                                       "The energy of a request over its output tokens, per model.",
                                       plots.energy_per_token),
    "ttft_vs_{axis}.png": ("Time to first token against {words}",
                           "What a user waits before the first token: p50 solid, p95 dashed.", plots.ttft),
}
CHANGES_PNG = "changes.png"


Drawer = Callable[[Profile], "bytes | None"]


def _plot_list(profile: Profile) -> list[tuple[str, str, str, Drawer]]:
    """(file, title, caption, drawer) of every plot this profile gets, in the report's order."""
    recs = profile.ok_records()
    axis = plots.resource_axis(recs) if recs else "batch"
    words = plots.AXES[axis][0].split(" (")[0]
    quality, latency = plots.quality_plot_name(profile), f"latency_vs_{axis}.png"
    out: list[tuple[str, str, str, Drawer]] = [
        (quality, *PLOTS[quality], plots.accuracy_vs_energy), (latency, *PLOTS[latency], plots.latency_vs_batch),
        ("energy_by_model.png", *PLOTS["energy_by_model.png"], plots.energy_by_model)]
    if recs and all(r.batch_size is None for r in recs):  # served: energy is per request
        out = [(f, t.replace("per item", "per request"), c, fn) for f, t, c, fn in out]
    for name, (title, caption, fn) in LM_PLOTS.items():
        field = "energy_j_per_output_token" if fn is plots.energy_per_token else "ttft_p50_ms"
        if any(getattr(r, field) is not None for r in recs):
            out.append((name.format(axis=axis), title.format(words=words), caption, fn))
    return out


@dataclass
class Report:
    html_path: Path
    images: dict[str, Path] = field(default_factory=dict)
    comparison: Result | None = None
    missing_plots: dict[str, str] = field(default_factory=dict)  # file -> why it was not drawn
    protocol_warning: str | None = None  # quick against full: also first in comparison.warnings


def protocol_warning(baseline: Profile, profile: Profile, names: tuple[str, str]) -> str | None:
    """One line when one profile is quick and the other full, else None: a quick run's short
    windows shift latency and energy, so its changes against a full run may be the protocol's."""
    if baseline.settings.quick == profile.settings.quick:
        return None
    kind = {True: "a quick", False: "a full"}
    return (f"the baseline {names[0]} is {kind[baseline.settings.quick]} profile and {names[1]} "
            f"{kind[profile.settings.quick]} one: short windows shift latency and energy, so the changes may be "
            "the protocol's, not the code's; "
            "compare a quick profile with a quick baseline and a full one with a full one")


def write_report(profile: Profile, out_dir: Path, *, profile_name: str = "profile",
                 baseline: Profile | None = None, baseline_name: str = "baseline",
                 options: Options | None = None) -> Report:
    """Write ``out_dir/report.html`` and the PNG plots beside it; returns what was written."""
    if not profile.records:
        raise ReportError(f"{profile_name}: the profile holds no operating point yet; nothing to report")
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ReportError(f"{out_dir}: cannot create the report folder: {e.strerror or e}") from None
    comparison = None
    mismatch = None
    if baseline is not None:
        comparison = compare(baseline, profile, options or Options(), names=(baseline_name, profile_name))
        mismatch = protocol_warning(baseline, profile, (baseline_name, profile_name))
        if mismatch is not None:  # first, so that a reader of the warnings sees it before the rest
            comparison.warnings.insert(0, mismatch)
    drawn: dict[str, bytes] = {}
    missing: dict[str, str] = {}
    for name, _, _, fn in _plot_list(profile):
        png = fn(profile)
        if png is None:
            missing[name] = "no point of this profile has the values it needs"
        else:
            drawn[name] = png
    if comparison is not None:
        png = plots.changes(comparison)
        if png is None:
            missing[CHANGES_PNG] = "no row could be compared"
        else:
            drawn[CHANGES_PNG] = png
    report = Report(out_dir / "report.html", comparison=comparison, missing_plots=missing,
                    protocol_warning=mismatch)
    try:
        for name, png in drawn.items():
            (out_dir / name).write_bytes(png)
            report.images[name] = out_dir / name
        report.html_path.write_text(render_html(profile, profile_name, drawn, comparison, missing,
                                                mismatch), "utf-8")
    except OSError as e:
        raise ReportError(f"{out_dir}: cannot write the report: {e.strerror or e}") from None
    return report


# --- HTML ----------------------------------------------------------------------------------------

CSS = """
:root { --fg:#1d2327; --muted:#5f6b73; --line:#d9dee2; --bg:#ffffff; --band:#f4f6f8; --red:#c62828;
        --amber:#8a5a00; --amberbg:#fff4dc; --green:#2e7d32; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--fg); background: var(--bg); margin: 0; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 20px 0 6px; }
.sub { color: var(--muted); margin: 0 0 16px; }
.banner { border-left: 5px solid #ef8f00; background: var(--amberbg); color: var(--amber);
          padding: 10px 14px; margin: 14px 0; border-radius: 3px; }
.verdict { font-size: 16px; font-weight: 600; padding: 10px 14px; border-radius: 3px; margin: 10px 0; }
.verdict.fail { background: #fbe0dd; color: var(--red); border-left: 5px solid var(--red); }
.verdict.pass { background: #e8f5e9; color: var(--green); border-left: 5px solid var(--green); }
ul.lines { margin: 6px 0; padding-left: 20px; }
figure { margin: 14px 0 22px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 3px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 12.5px; margin: 8px 0 4px; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
th { background: var(--band); position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafbfc; }
tr.regression td { background: #fdecea; color: var(--red); font-weight: 600; }
tr.crossed td { background: var(--amberbg); }
tr.improvement td { color: var(--green); }
tr.not_comparable td, tr.missing td, tr.new td, tr.ignored td { color: var(--muted); }
tr.failed td { color: var(--red); }
td.wrap { white-space: normal; min-width: 150px; }
td.flags { font-size: 11px; color: var(--muted); }
details summary { cursor: pointer; color: var(--muted); margin: 8px 0; }
.tag { display: inline-block; font-size: 11px; padding: 0 5px; border-radius: 3px; background: var(--amberbg);
       color: var(--amber); border: 1px solid #f0c36d; }
.note { color: var(--muted); font-size: 12.5px; }
table.kv td:first-child { color: var(--muted); }
table.kv td { white-space: normal; }
footer { color: var(--muted); font-size: 12px; margin-top: 36px; border-top: 1px solid var(--line); padding-top: 8px; }
"""


def _e(x: object) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _num(x: float | None, spec: str = ".3g") -> str:
    return "—" if x is None else format(x, spec)


def _cell(tag: str, cls: str, value: str) -> str:
    return f'<{tag} class="{cls}">{value}</{tag}>' if cls else f"<{tag}>{value}</{tag}>"


def _img(name: str, png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def _unmeasured(profile: Profile) -> list[str]:
    """The energy methods of the profile's energy figures that are not measurements."""
    return sorted({r.energy_method for r in profile.ok_records()
                   if r.energy_j_per_item is not None and not is_measurement(r.energy_method)})


def _device_names(profile: Profile) -> str:
    """Each device with its name, and its accelerator type where the cluster named one the name
    does not already say: "NVIDIA L4 (gpu-b:cuda:0)", "FAKE-H100 (a:cuda:0)"."""
    def name(r: Record) -> str:
        parts = [x for x in (r.device_name, r.accelerator_type) if x]
        if len(parts) == 2 and parts[1].lower() in parts[0].lower():
            parts = parts[:1]  # "NVIDIA H100 80GB HBM3" already says H100
        return ", ".join(parts) or r.device

    names = dict.fromkeys(f"{name(r)} ({r.device})" for r in profile.records)
    return ", ".join(names) or "no device"


def _hardware_varies(profile: Profile) -> bool:
    """The points ran on more than one hardware type (a fleet): the points table says each one's."""
    return len({r.hardware for r in profile.records}) > 1


def _served(profile: Profile) -> bool:
    recs = profile.ok_records() or profile.records
    return bool(recs) and all(r.batch_size is None for r in recs)


def summary_lines(profile: Profile) -> list[str]:
    """Best quality, least energy, and what the spread between them costs; for language models
    also the least energy per output token and the shortest time to first token."""
    metric = plots.quality_metric(profile) or "accuracy"
    lower = QUALITY_DIRECTIONS.get(metric) == "lower"
    words = plots.QUALITY_WORDS.get(metric, metric)
    # (record, energy per item, quality) of the points that have both
    ok = [(r, r.energy_j_per_item, q) for r in profile.ok_records()
          if r.energy_j_per_item is not None and (q := _quality(r, metric)) is not None]
    if not ok:
        return [f"No point has both {words} and energy."]
    unit = "request" if _served(profile) else "item"

    def good(q: float) -> float:
        return -q if lower else q

    def fq(q: float) -> str:
        return f"{q:.3g}" if metric == "perplexity" else f"{q:.3f}"

    best, best_e, best_a = max(ok, key=lambda p: (good(p[2]), -p[1]))
    least, least_e, least_a = min(ok, key=lambda p: p[1])
    head = "Most accurate" if metric == "accuracy" else f"{'Lowest' if lower else 'Highest'} {words}"
    lines = [f"{head}: {best.model} ({words} {fq(best_a)}) at {best_e:.3g} "
             f"J per {unit} ({plots.setting_words(best)}, {method_label(best.energy_method)})."]
    if least is not best and least_e > 0:
        diff = f"{least_a - best_a:+.3f}" if metric != "perplexity" else f"{least_a / best_a:.2f}× that"
        lines.append(f"Least energy: {least.model} at {plots.setting_words(least)}, "
                     f"{best_e / least_e:.3g}× less energy per {unit} than that, "
                     f"{words} {fq(least_a)} ({diff}).")
    fastest = max(profile.ok_records(), key=lambda r: r.items_per_s or 0)
    if fastest.items_per_s:
        tokens = f" ({fastest.output_tokens_per_s:,.0f} output tokens/s)" if fastest.output_tokens_per_s else ""
        lines.append(f"Highest throughput: {fastest.model} at {plots.setting_words(fastest)}, "
                     f"{fastest.items_per_s:,.0f} {'requests' if unit == 'request' else 'items'}/s{tokens}.")
    per_token = [r for r in profile.ok_records() if r.energy_j_per_output_token is not None]
    if per_token:
        r = min(per_token, key=lambda r: r.energy_j_per_output_token or 0.0)
        lines.append(f"Least energy per output token: {r.model} at {plots.setting_words(r)}, "
                     f"{r.energy_j_per_output_token:.3g} J per token ({method_label(r.energy_method)}).")
    first = [r for r in profile.ok_records() if r.ttft_p50_ms is not None]
    if first:
        r = min(first, key=lambda r: r.ttft_p50_ms or 0.0)
        lines.append(f"Shortest time to first token: {r.model} at {plots.setting_words(r)}, "
                     f"{r.ttft_p50_ms:.3g} ms (p50).")
    return lines


def _quality(r: Record, metric: str) -> float | None:
    if metric == "accuracy":
        return r.accuracy
    if metric == "perplexity":
        return r.perplexity
    return r.quality.get(metric)


def _any(profile: Profile, field: str) -> bool:
    return any(getattr(r, field) is not None for r in profile.records)


def _points_table(profile: Profile) -> str:
    """One row per point; precision and device get columns only when they vary, the quality and
    language-model columns only when some point has them."""
    varying = {c for c in ("precision", "device") if len({getattr(r, c) for r in profile.records}) > 1}
    batched = all(r.batch_size is not None for r in profile.records)
    served = _served(profile)
    cols = [("model", "", lambda r: _e(r.model)), ("params", "num", lambda r: _num(r.params, ",")),
            ("batch", "num", lambda r: str(r.batch_size)) if batched else ("setting", "", lambda r: _e(r.setting))]
    if "precision" in varying:
        cols.append(("prec", "", lambda r: _e(r.precision)))
    if "device" in varying:
        cols.append(("device", "", lambda r: _e(r.device)))
    if _hardware_varies(profile):
        cols.append(("hardware", "", lambda r: _e(r.hardware or UNKNOWN_HARDWARE)))
    lead = len(cols)
    if _any(profile, "accuracy") or not (_any(profile, "perplexity") or _exact_match(profile)):
        cols.append(("accuracy [95% CI]", "num", _acc))
    if _any(profile, "perplexity"):
        cols.append(("perplexity", "num", lambda r: _num(r.perplexity)))
    if _exact_match(profile):
        cols.append(("exact match", "num", lambda r: _num(r.quality.get("exact_match"), ".3f")))
    cols += [("p50 ms", "num", lambda r: _num(r.latency_p50_ms)),
             ("p95 ms", "num", lambda r: _num(r.latency_p95_ms))]
    lm = [("TTFT p50 ms", "ttft_p50_ms", ".3g"), ("TTFT p95 ms", "ttft_p95_ms", ".3g"), ("TPOT ms", "tpot_ms", ".3g"),
          ("tokens/s", "output_tokens_per_s", ",.0f"), ("J/token", "energy_j_per_output_token", ".3g")]
    for name, attr, spec in lm:
        if _any(profile, attr):
            cols.append((name, "num", _field_cell(attr, spec)))
    cols += [("requests/s" if served else "items/s", "num",
              lambda r: "—" if r.items_per_s is None else f"{r.items_per_s:,.3g}" if served
              else f"{r.items_per_s:,.0f}"),
             ("J/request ± σ" if served else "J/item ± σ", "num", _energy),
             ("CV", "num", lambda r: "—" if r.energy_j_per_item_cv is None else f"{r.energy_j_per_item_cv:.1%}"),
             ("method", "", lambda r: _e(r.energy_method) if is_measurement(r.energy_method)
              or r.energy_j_per_item is None else f'<span class="tag">{_e(r.energy_method)}</span>'),
             ("W", "num", lambda r: _num(r.power_w, ".1f")),
             ("mgCO2e/item", "num", lambda r: _num(None if r.co2e_g_per_item is None else r.co2e_g_per_item * 1e3)),
             ("flags", "flags", lambda r: "<br>".join(_e(f) for f in r.flags))]
    head = "".join(_cell("th", c, _e(n)) for n, c, _ in cols)
    body = []
    for r in profile.records:
        if r.status != "ok":
            first = "".join(_cell("td", c, f(r)) for _, c, f in cols[:lead])
            body.append(f'<tr class="failed">{first}<td colspan="{len(cols) - lead}" class="wrap">'
                        f"{_e(r.status)}: {_e(r.error)}</td></tr>")
            continue
        body.append("<tr>" + "".join(_cell("td", c, f(r)) for _, c, f in cols) + "</tr>")
    uniform = "" if varying >= {"precision", "device"} else (
        '<p class="note">All points: ' + ", ".join(
            f"{c} {getattr(profile.records[0], c)}" for c in ("precision", "device") if c not in varying) + ".</p>")
    return (f'{uniform}<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _field_cell(attr: str, spec: str) -> Callable[[Record], str]:
    """A table cell of one record field, formatted with ``spec`` ("—" when null)."""
    return lambda r: _num(getattr(r, attr), spec)


def _exact_match(profile: Profile) -> bool:
    return any("exact_match" in r.quality for r in profile.records)


def _acc(r: Record) -> str:
    if r.accuracy is None:
        return "—"
    ci = f" [{r.accuracy_ci95[0]:.3f}, {r.accuracy_ci95[1]:.3f}]" if r.accuracy_ci95 else ""
    return f"{r.accuracy:.3f}{ci}"


def _energy(r: Record) -> str:
    if r.energy_j_per_item is None:
        return "null"
    std = "" if r.energy_j_per_item_std is None else f" ± {r.energy_j_per_item_std:.2g}"
    return f"{r.energy_j_per_item:.3g}{std}"


def _changes_table(rows: list[Row]) -> str:
    from greenbench.compare.export import fmt_ratio, fmt_value

    cols = [("Point", ""), ("Metric", ""), ("Change", "num"), ("Before", "num"), ("After", "num"),
            ("Ratio", "num"), ("Test", ""), ("Verdict", "wrap")]
    head = "".join(_cell("th", c, n) for n, c in cols)
    body = []
    for r in rows:
        cls = "crossed" if r.status == "ok" and r.crossed else r.status
        metric = _e(r.metric) + (f' <span class="tag">{_e(", ".join(r.unmeasured))}</span>' if r.estimate else "")
        verdict = _e(r.verdict()) + (f'<br><span class="note">{_e("; ".join(r.notes))}</span>' if r.notes else "")
        cells = [_e(r.point), metric, _e(r.change_text()), fmt_value(r.before), fmt_value(r.after),
                 fmt_ratio(r.ratio), _e(r.p_text()), verdict]
        body.append(f'<tr class="{cls}">' + "".join(_cell("td", c, v) for (_, c), v in zip(cols, cells, strict=True))
                    + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _kv(rows: list[tuple[str, object]]) -> str:
    return '<table class="kv">' + "".join(
        f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows if v not in (None, "", {})) + "</table>"


def _unmeasured_reason(profile: Profile, method: str) -> str:
    """Why energy of ``method`` (not a measurement) is what it is, as a sentence."""
    if method == ESTIMATE:
        return _estimate_reason(profile)
    if method == FAKE:
        return "Read from a constant-power test meter (--meter fake), not from hardware"
    return f"Energy method {method!r} is not a meter reading"


def _estimate_reason(profile: Profile) -> str:
    for idle in profile.idle.values():
        meter = idle.meter
        if meter is not None and meter.method == ESTIMATE and meter.reason:
            reason = meter.reason
            prefix = "estimate, not a measurement:"
            reason = reason[len(prefix):].strip() if reason.startswith(prefix) else reason
            return reason[:1].upper() + reason[1:]
    return "Modelled from load and time, not read from an energy counter"


def render_html(profile: Profile, profile_name: str, images: dict[str, bytes], comparison: Result | None,
                missing: dict[str, str] | None = None, mismatch: str | None = None) -> str:
    from greenbench import __version__

    missing = missing or {}
    name = profile.ladder.name
    quick = profile.settings.quick
    prov = profile.provenance
    parts = [f"<h1>greenbench report: {_e(name)}{' (quick)' if quick else ''}</h1>",
             f'<p class="sub">{_e(profile_name)} · {len(profile.records)} operating points · '
             f"{_e(_device_names(profile))} · profiled {_e(profile.created_utc)}"
             f"{'' if profile.complete else ' · INCOMPLETE (interrupted run)'}</p>"]
    unmeasured = _unmeasured(profile)
    if unmeasured:
        what = " and ".join(method_source(m) for m in unmeasured)
        tags = ", ".join(f'<span class="tag">{_e(m)}</span>' for m in unmeasured)
        parts.append(f'<div class="banner"><b>Energy here is {_e(what)}, not a measurement.</b> '
                     f"{_e('; '.join(_unmeasured_reason(profile, m) for m in unmeasured))}. Figures and tables mark it "
                     f"{tags}; treat energy differences as differences in time.</div>")
    if quick:
        parts.append('<div class="banner">A <b>quick</b> profile (short windows, few repeats): '
                     "good for smoke tests and CI gates, not for publishing numbers.</div>")
    parts.append('<ul class="lines">' + "".join(f"<li>{_e(x)}</li>" for x in summary_lines(profile)) + "</ul>")
    carbon = profile.carbon
    if carbon.gco2e_per_kwh is not None:
        parts.append(f'<p class="note">Carbon at {_e(carbon.gco2e_per_kwh)} gCO2e/kWh ({_e(carbon.where)}, '
                     f'PUE {_e(carbon.pue)}); source: {_e(carbon.source)}.</p>')
    if comparison is not None:
        parts.append(_comparison_section(comparison, images, missing, mismatch))
    parts.append("<h2>Plots</h2>")
    for file, title, caption, _ in _plot_list(profile):
        if file in images:
            parts.append(f"<figure>{_img(file, images[file], title)}<figcaption><b>{_e(title)}</b> "
                         f"({_e(file)}). {_e(caption)}</figcaption></figure>")
        else:
            parts.append(f'<p class="note">{_e(title)}: not drawn ({_e(missing.get(file, "no data"))}).</p>')
    parts.append("<h2>Operating points</h2>")
    if _served(profile):
        parts.append('<p class="note">Served points: the setting is the load (cN: N requests in flight, closed loop; '
                     "rN/s: Poisson arrivals at N requests/s). Latency is each request's end to end (p50 and p95 "
                     "over the requests of the measured windows); TTFT is the time to first token, TPOT the time "
                     "per output token after the first; tokens/s counts output tokens; J/request is the mean over "
                     "repeats ± its standard deviation and J/token the energy per output token; CV is σ/mean.</p>")
    else:
        lm = " TTFT is the time to first token (the prefill), TPOT the time per output token after the first; " \
             "J/token is the energy of a request over its output tokens." if _any(profile, "ttft_p50_ms") or \
             _any(profile, "energy_j_per_output_token") else ""
        parts.append('<p class="note">Latency is per batch (p50 and p95 over every step of every repeat); '
                     f"J/item is the mean over repeats ± its standard deviation; CV is σ/mean.{lm}</p>")
    parts.append(_points_table(profile))
    flags = sorted({f for r in profile.records for f in r.flags})
    if flags:
        parts.append(f'<p class="note">Flags: {_e(", ".join(flags))} (see the README, "Validity flags").</p>')
    proto = profile.settings.protocol.model_dump()  # the settings the file holds
    parts.append("<h2>Provenance</h2>")
    parts.append(_kv([
        ("greenbench", profile.greenbench_version), ("git commit", prov.git_commit),
        ("host", prov.host), ("OS", prov.os), ("CPU", f"{prov.cpu_model} ({prov.cpu_count} cores)"),
        ("Python", prov.python), ("torch", prov.torch), ("CUDA", prov.torch_cuda),
        ("CodeCarbon", prov.codecarbon), ("nvidia-ml-py", prov.nvidia_ml_py),
        ("serving engine", ", ".join(dict.fromkeys(
            f"{r.engine} {r.engine_version or ''}".strip() for r in profile.records if r.engine))),
        ("protocol", ", ".join(f"{k} {v}" for k, v in proto.items())),
        ("meter", profile.settings.meter), ("energy basis", profile.settings.energy_basis),
        ("created", profile.created_utc), ("updated", profile.updated_utc),
    ]))
    parts.append(f"<footer>Written by greenbench {_e(__version__)} at {_e(utc_now())}. This file is "
                 "self-contained (no network access); the plots are also saved as PNG files beside it.</footer>")
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>greenbench report: {_e(name)}</title><style>{CSS}</style></head>"
            f"<body><main>{''.join(parts)}</main></body></html>\n")


def _comparison_section(res: Result, images: dict[str, bytes], missing: dict[str, str],
                        mismatch: str | None = None) -> str:
    o = res.options
    cls = "fail" if res.regressions else "pass"
    parts = ["<h2>Changes against the baseline</h2>",
             f'<p class="sub">Baseline {_e(res.baseline_name)} (profiled {_e(res.baseline.created_utc)}) → '
             f"this profile. Thresholds: {_e(', '.join(t.text for t in o.thresholds))}; "
             + (f"one-sided tests at alpha {o.alpha:g}"
                + (f", Holm-corrected over {res.family_size} tested rows" if o.correction == "holm" else "")
                if o.stats else "no significance test") + ".</p>"]
    if mismatch is not None:  # above the verdict: it changes what the verdict means
        parts.append(f'<div class="banner"><b>Not like with like:</b> {_e(mismatch)}.</div>')
    parts.append(f'<div class="verdict {cls}">{_e(res.summary_line())}</div>')
    for w in res.warnings:
        if w != mismatch:
            parts.append(f'<div class="banner">warning: {_e(w)}</div>')
    if CHANGES_PNG in images:
        parts.append(f"<figure>{_img(CHANGES_PNG, images[CHANGES_PNG], 'changes against the baseline')}"
                     f"<figcaption><b>Changes</b> ({CHANGES_PNG}): each point's change per gated metric; "
                     "the dashed line is the threshold. Red: regression (crossed and significant); "
                     "amber: crossed but not significant; green: improved.</figcaption></figure>")
    else:
        parts.append(f'<p class="note">Changes plot not drawn ({_e(missing.get(CHANGES_PNG, "no data"))}).</p>')
    flagged = [r for r in res.rows if r.status not in ("ok", "improvement", "ignored") or r.crossed]
    if flagged and len(flagged) < len(res.rows):
        parts.append(f"<h3>Rows that need a look ({len(flagged)})</h3>")
        parts.append(_changes_table(flagged))
    parts.append(f"<details{' open' if len(res.rows) <= 12 or not flagged else ''}>"
                 f"<summary>All {len(res.rows)} rows</summary>{_changes_table(res.rows)}</details>")
    return "".join(parts)
