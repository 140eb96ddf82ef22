"""Exports of a comparison: JSON (versioned), Markdown (a pull-request comment), JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from greenbench.compare.gate import METRICS, Result, Row, unmeasured_text
from greenbench.markdown import escape
from greenbench.methods import ESTIMATE
from greenbench.profile import Profile

SCHEMA = "greenbench/compare"
SCHEMA_VERSION = 1
MARKDOWN_MARKER = "<!-- greenbench-compare -->"  # lets a CI job find and update its own comment


def _side(p: Profile, name: str) -> dict[str, Any]:
    prov = p.provenance
    return {"path": name, "ladder": p.ladder.name, "created_utc": p.created_utc,
            "complete": p.complete, "quick": p.settings.quick,
            "git_commit": prov.git_commit, "host": prov.host, "cpu_model": prov.cpu_model,
            "greenbench_version": p.greenbench_version}


def _row_dict(r: Row) -> dict[str, Any]:
    ladder, model, batch, precision, device, concurrency, rate = r.key
    metric = METRICS.get(r.metric)
    point = {"ladder": ladder, "model": model, "batch_size": batch, "precision": precision, "device": device}
    if batch is None:  # a served point: its load instead of a batch
        point |= {"concurrency": concurrency, "request_rate_per_s": rate}
    return {
        "point": point,
        "label": r.point, "metric": r.metric,
        "direction": None if metric is None else ("higher_is_better" if metric.higher_is_better else "lower_is_better"),
        "threshold": r.threshold, "status": r.status, "before": r.before, "after": r.after,
        "change": r.change, "change_kind": "relative" if r.relative else "absolute", "ratio": r.ratio,
        "test": r.test, "p": r.p, "p_adjusted": r.p_adjusted, "crossed": r.crossed, "significant": r.significant,
        "estimate": r.estimate, "n_before": r.n_before, "n_after": r.n_after, "notes": list(r.notes),
    }


def to_dict(res: Result) -> dict[str, Any]:
    from greenbench import __version__

    o = res.options
    return {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "greenbench_version": __version__,
        "baseline": _side(res.baseline, res.baseline_name),
        "candidate": _side(res.candidate, res.candidate_name),
        "options": {"thresholds": [t.text for t in o.thresholds], "alpha": o.alpha, "stats": o.stats,
                    "no_stats_for": sorted(o.no_stats_for), "correction": o.correction,
                    "estimates": o.estimates, "family_size": res.family_size},
        "summary": {"exit_code": res.exit_code, "line": res.summary_line(),
                    "regressions": len(res.regressions),
                    **{s: res.count(s) for s in ("ok", "improvement", "not_comparable", "warning", "ignored",
                                                   "missing", "new")},
                    "untested": sum(r.test == "untested" for r in res.rows),
                    "estimates": sum(r.estimate for r in res.rows)},
        "warnings": list(res.warnings),
        "rows": [_row_dict(r) for r in res.rows],
    }


def to_json(res: Result) -> str:
    return json.dumps(to_dict(res), indent=1, allow_nan=False) + "\n"


# The columns of the CSV export: one row per (point, metric), as the JSON's rows, flattened.
CSV_COLUMNS = ["ladder", "model", "batch_size", "concurrency", "request_rate_per_s", "precision", "device", "label",
               "metric", "direction", "threshold", "status", "before", "after", "change", "change_kind", "ratio",
               "test", "p", "p_adjusted", "crossed", "significant", "estimate", "n_before", "n_after", "notes"]


def to_csv(res: Result) -> str:
    """Every row as CSV, for a spreadsheet or pandas (the JSON's rows, one line each)."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in res.rows:
        d = _row_dict(r)
        flat = {**d.pop("point"), **d, "notes": "; ".join(d["notes"])}
        w.writerow({k: "" if flat.get(k) is None else flat[k] for k in CSV_COLUMNS})
    return buf.getvalue()


def fmt_value(x: float | None) -> str:
    return "—" if x is None else f"{x:.4g}"


def fmt_ratio(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def _md_escape(text: str) -> str:
    """Text greenbench did not write itself (a point's name, a path, a note) for the comment:
    HTML and Markdown escaped, so that a model named ``<img src=x onerror=...>`` is shown, not run."""
    return escape(text)


def _md_table(rows: list[Row]) -> list[str]:
    lines = ["| Point | Metric | Change | Before | After | Ratio | Test | Verdict |",
             "|---|---|--:|--:|--:|--:|---|---|"]
    for r in rows:
        verdict = _md_escape(r.verdict())
        if r.status == "regression":
            verdict = f"**{verdict}**"
        if r.notes:
            verdict += " — " + _md_escape("; ".join(r.notes))
        metric = _md_escape(r.metric) + (" ⚠ estimate" if r.estimate else "")
        cells = [_md_escape(r.point), metric, *(_md_escape(x) for x in (
            r.change_text(), fmt_value(r.before), fmt_value(r.after), fmt_ratio(r.ratio), r.p_text())), verdict]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def to_markdown(res: Result) -> str:
    """A pull-request comment: the verdict first, flagged rows, then every row folded away."""
    regs = res.regressions
    icon = "❌" if regs else "✅"
    o = res.options
    lines = [MARKDOWN_MARKER, f"### {icon} greenbench compare: {_md_escape(res.summary_line())}", ""]
    lines.append(f"Baseline {_md_escape(res.baseline_name)} ({_md_escape(_describe(res.baseline))}) → candidate "
                 f"{_md_escape(res.candidate_name)} ({_md_escape(_describe(res.candidate))}).")
    lines.append("")
    stats = ("off (thresholds alone)" if not o.stats else
             f"one-sided, alpha {o.alpha:g}" + (f", Holm-corrected over {res.family_size} tested rows"
                                                 if o.correction == "holm" else ", no correction"))
    lines.append(f"Thresholds: {', '.join(_md_escape(t.text) for t in o.thresholds)}; significance: {stats}"
                 + (f"; no test for {_md_escape(', '.join(sorted(o.no_stats_for)))}" if o.no_stats_for else "") + ".")
    if any(r.estimate for r in res.rows):
        lines.append("")
        what = ("was modelled (CodeCarbon: power model × time), not metered"
                if res.unmeasured_methods == [ESTIMATE] else f"is {res.unmeasured_text()}")
        lines.append(f"⚠ Energy marked *estimate* {what}; estimates are treated as `--estimates {o.estimates}`.")
    if res.warnings:
        lines.append("")
        lines += [f"> **warning:** {_md_escape(w)}" for w in res.warnings]
    flagged = [r for r in res.rows if r.status not in ("ok", "improvement", "ignored")
               or (r.crossed and r.status == "ok")]
    if flagged:
        lines += ["", *_md_table(flagged)]
    lines += ["", f"<details><summary>All {len(res.rows)} rows</summary>", "", *_md_table(res.rows), "",
              "</details>", ""]
    return "\n".join(lines)


def _describe(p: Profile) -> str:
    prov = p.provenance
    bits = [prov.git_commit and str(prov.git_commit)[:12], prov.cpu_model,
            "quick" if p.settings.quick else None, p.created_utc]
    return ", ".join(str(b) for b in bits if b)


def to_junit(res: Result) -> str:
    """One testcase per row; a regression is a <failure> naming the point; not comparable rows are
    <skipped>."""
    suite = ET.Element("testsuite", name="greenbench compare", tests=str(len(res.rows)),
                       failures=str(len(res.regressions)),
                       skipped=str(sum(r.status in ("not_comparable", "missing", "new", "ignored")
                                       for r in res.rows)), errors="0")
    props = ET.SubElement(suite, "properties")
    for k, v in (("baseline", res.baseline_name), ("candidate", res.candidate_name),
                 ("thresholds", " ".join(t.text for t in res.options.thresholds)),
                 ("alpha", str(res.options.alpha)), ("summary", res.summary_line())):
        ET.SubElement(props, "property", name=k, value=v)
    ladder = res.baseline.ladder.name
    for r in res.rows:
        case = ET.SubElement(suite, "testcase", classname=f"greenbench.compare.gate.{ladder}",
                             name=f"{r.point} {r.metric}")
        detail = (f"{r.point} {r.metric}: {r.change_text()} (before {fmt_value(r.before)}, after "
                  f"{fmt_value(r.after)}, {r.p_text()}, threshold {r.threshold})"
                  + (f"; energy is {unmeasured_text(r.unmeasured)}" if r.estimate else "")
                  + ("; " + "; ".join(r.notes) if r.notes else ""))
        if r.status == "regression":
            f = ET.SubElement(case, "failure", message=f"regression: {detail}", type="regression")
            f.text = detail
        elif r.status in ("not_comparable", "missing", "new", "ignored"):
            ET.SubElement(case, "skipped", message=f"{r.verdict()}: {'; '.join(r.notes) or r.point}")
        elif r.status == "warning":
            out = ET.SubElement(case, "system-out")
            out.text = f"warning (estimate): {detail}"
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
