"""The human report: every claim with its verdict, beside the figures, in one HTML page."""

import html
import json
import math
import pathlib
from typing import Any

from experiments.framework.runner import RECORD_NAME

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; width: 100%; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.pass { background: #e3f6e3; font-weight: bold; }
.fail { background: #fbe0e0; font-weight: bold; }
.skipped { background: #eeeeee; }
img { max-width: 100%; border: 1px solid #ddd; margin: 4px 0; }
code { background: #f6f6f6; padding: 1px 3px; }
"""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, list):
        shown = ", ".join(_fmt(v) for v in value[:8])
        return f"[{shown}{', ...' if len(value) > 8 else ''}]"
    return "" if value is None else str(value)


def _claim_rows(claims: list[dict[str, Any]]) -> str:
    return "".join(
        f"<tr><td><code>{html.escape(c['id'])}</code></td><td>{html.escape(c['statement'])}</td>"
        f"<td>{html.escape(c['source'])}</td><td>{html.escape(c['bound'])}</td>"
        f"<td>{html.escape(_fmt(c['measured']))}"
        f"{'<br>' + html.escape(_fmt(c['derived'])) if c['derived'] else ''}"
        f"{'<br>' + html.escape(c['note']) if c['note'] else ''}</td>"
        f"<td class='{c['verdict']}'>{c['verdict']}</td></tr>"
        for c in claims
    )


def _observation_rows(observations: list[dict[str, Any]]) -> str:
    return "".join(
        f"<tr><td><code>{html.escape(o['id'])}</code></td><td>{html.escape(o['statement'])}</td>"
        f"<td>{html.escape(_fmt(o['measured']))}</td></tr>"
        for o in observations
    )


def _experiment_section(record: dict[str, Any], rel_dir: str) -> str:
    figures = "".join(
        f"<p><img src='{html.escape(rel_dir)}/{html.escape(f)}' alt='{html.escape(f)}'></p>"
        for f in record["figures"]
    )
    observations = record.get("observations", [])
    observed = (
        "<h3>Observations (measured beyond the papers; no verdict)</h3>"
        "<table><tr><th>observation</th><th>statement</th><th>measured</th></tr>"
        f"{_observation_rows(observations)}</table>"
        if observations
        else ""
    )
    return (
        f"<h2 id='{record['experiment']}'>{html.escape(record['experiment'])}: "
        f"{html.escape(record['title'])}</h2>"
        f"<p>preset <code>{record['preset']}</code>, seeds {record['seeds']}, "
        f"{record['wall_time_s']:.0f} s, record <code>{rel_dir}/{RECORD_NAME}</code></p>"
        "<h3>Claims (the papers' predictions)</h3>"
        "<table><tr><th>claim</th><th>statement</th><th>source</th><th>bound</th>"
        f"<th>measured</th><th>verdict</th></tr>{_claim_rows(record['claims'])}</table>"
        f"{observed}{figures}"
    )


def write_report(out_root: pathlib.Path, names: list[str], errors: dict[str, str]) -> pathlib.Path:
    """Write out_root/report.html from the records of `names` (and the runs that errored)."""
    records = []
    for name in names:
        path = out_root / name / RECORD_NAME
        if path.exists():
            records.append(json.loads(path.read_text()))
    n_claims = sum(len(r["claims"]) for r in records)
    n_pass = sum(c["verdict"] == "pass" for r in records for c in r["claims"])
    summary = "".join(
        f"<tr><td><a href='#{r['experiment']}'>{r['experiment']}</a></td>"
        f"<td>{sum(c['verdict'] == 'pass' for c in r['claims'])}/{len(r['claims'])}</td>"
        f"<td>{r['wall_time_s']:.0f} s</td></tr>"
        for r in records
    )
    summary += "".join(
        f"<tr><td>{html.escape(n)}</td><td class='fail'>error: {html.escape(e)}</td><td></td></tr>"
        for n, e in errors.items()
    )
    versions = records[0]["versions"] if records else {}
    body = (
        f"<h1>sinkjax report</h1><p>{n_pass}/{n_claims} claims pass"
        f"{f'; {len(errors)} experiment(s) failed to run' if errors else ''}.</p>"
        "<table><tr><th>experiment</th><th>claims passed</th><th>wall time</th></tr>"
        f"{summary}</table>"
        f"<p>versions: {html.escape(json.dumps(versions))}</p>"
        + "".join(_experiment_section(r, r["experiment"]) for r in records)
    )
    page = "<!doctype html><html><head><meta charset='utf-8'><title>sinkjax report</title>"
    page += f"<style>{STYLE}</style></head><body>{body}</body></html>"
    path = out_root / "report.html"
    tmp = out_root / ".report.html.tmp"
    tmp.write_text(page)
    tmp.replace(path)
    return path
