"""`docs/claims.md`: every registered claim with its source, its bound and its verdicts.

    sinkjax ledger --runs runs     # after a quick main job: snapshot its verdicts, rewrite the page
    sinkjax ledger                 # rewrite the page from the registry and the snapshots

The page is generated, never edited: from the registry (each experiment's `CLAIMS`), from
`docs/ledger-quick.json` (the verdicts of the latest `quick` main job, written by `--runs`; a
folder holding some experiments' quick records updates just those)
and from the `paper` records in `docs/paper/<experiment>/record.json`. A verdict recorded under
another bound than the claim's present one says so, and so does a record whose float32
matmuls ran in TF32 (GPU records without `versions.matmul_precision = float32`).
`tests/test_ledger.py` fails when the page is stale.
"""

import json
import math
import pathlib
from collections.abc import Mapping
from typing import Any

from experiments.framework.claims import ClaimSpec
from experiments.framework.experiment import Experiment
from experiments.framework.runner import RECORD_NAME, UsageError, write_json_atomic

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"
PAGE = DOCS / "claims.md"
QUICK_SNAPSHOT = DOCS / "ledger-quick.json"
PAPER_RECORDS = DOCS / "paper"


def _short(value: Any, digits: int = 3) -> str:
    """A measured value in a few characters: numbers to `digits` significant digits."""
    if isinstance(value, float):
        return f"{value:.{digits}g}" if math.isfinite(value) else str(value)
    if isinstance(value, int | bool) or value is None:
        return str(value)
    if isinstance(value, list):
        shown = ", ".join(_short(v, digits) for v in value[:4])
        return f"[{shown}{', ...' if len(value) > 4 else ''}]"
    if isinstance(value, Mapping):
        if set(value) >= {"x", "y"}:
            return f"{len(value['y'])} points"
        return "{" + ", ".join(f"{k}: {_short(v, digits)}" for k, v in value.items()) + "}"
    return str(value)


def _verdict_entry(claim: dict[str, Any]) -> dict[str, str]:
    """What the page shows of one recorded claim."""
    derived = claim.get("derived") or {}
    # The numbers the verdict rests on, when they are not the measured value itself.
    shown = {k: v for k, v in derived.items() if not isinstance(v, Mapping)} or claim["measured"]
    skipped = claim["verdict"] == "skipped"
    return {
        "verdict": claim["verdict"],
        "measured": claim.get("note", "") if skipped else _short(shown),
        "bound": claim.get("bound", claim.get("predicted", "")),
    }


def snapshot_quick(runs: pathlib.Path, experiments: Mapping[str, Experiment]) -> dict[str, Any]:
    """The verdicts of the `quick` records under `runs`, by experiment and claim id."""
    snapshot = {}
    for name in experiments:
        path = runs / name / RECORD_NAME
        if not path.is_file():
            continue
        record = json.loads(path.read_text())
        if record["preset"] != "quick":
            raise UsageError(
                f"{path} is a {record['preset']!r} record; pass a quick main job's --out"
            )
        snapshot[name] = {
            "git": record["versions"].get("git", "unknown"),
            "started": record["started"],
            "claims": {c["id"]: _verdict_entry(c) for c in record["claims"]},
        }
    if not snapshot:
        raise UsageError(f"no records under {runs}; pass the --out of `sinkjax reproduce`")
    return snapshot


def _paper_entries(name: str) -> tuple[dict[str, dict[str, str]], str]:
    """The claims of the `paper` record of `name` in docs/paper and how it ran."""
    path = PAPER_RECORDS / name / RECORD_NAME
    if not path.is_file():
        return {}, ""
    record = json.loads(path.read_text())
    versions = record["versions"]
    precision = versions.get("matmul_precision") or "default"
    on_gpu = versions.get("device", "cpu").lower() != "cpu"
    tf32 = on_gpu and precision != "float32"
    how = f"{versions.get('device', '?')}, {record['started'][:10]}"
    how += ", TF32 matmuls" if tf32 else f", {precision} matmuls"
    return {c["id"]: _verdict_entry(c) for c in record["claims"]}, how


def _cell(record: Mapping[str, dict[str, str]] | None, spec: ClaimSpec) -> str:
    """What `record` (claim id -> entry; None when there is no record) says of `spec`."""
    if record is None:
        return "not run"
    entry = record.get(spec.id)
    if entry is None:
        return "no such claim in the record"
    if entry["bound"] != spec.rule.describe():
        return (
            f"{entry['verdict']} against its bound then, `{entry['bound']}` "
            f"({entry['measured']}); not judged against the present bound"
        )
    return f"**{entry['verdict']}** ({entry['measured']})"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(experiments: Mapping[str, Experiment], quick: Mapping[str, Any]) -> str:
    """The whole page as Markdown."""
    n_claims = sum(len(e.claims) for e in experiments.values())
    quick_verdicts = [entry["verdict"] for q in quick.values() for entry in q["claims"].values()]
    lines = [
        "# The claims ledger",
        "",
        "Generated by `sinkjax ledger` (experiments/framework/ledger.py); do not edit. Each claim",
        "is a paper's prediction, fixed before any run and the same at every preset, with its",
        "source and the bound made from the paper's words. *quick*: the latest `quick` main job",
        "(docs/ledger-quick.json, from `sinkjax ledger --runs OUT`). *paper*: the records in",
        "docs/paper/ (a record made before a claim's present bound says what it was judged",
        "against). Observations (measured beyond the papers, no verdict) are in each",
        "`record.json` and the HTML report, not here.",
        "",
        f"{n_claims} claims in {len(experiments)} experiments; in the quick main job "
        f"{quick_verdicts.count('pass')} pass, {quick_verdicts.count('fail')} fail, "
        f"{quick_verdicts.count('skipped')} are skipped (comparisons with a reference run at "
        "other settings).",
        "",
    ]
    for name, experiment in experiments.items():
        run = quick.get(name)
        paper, how = _paper_entries(name)
        lines += [f"## `{name}`: {_escape(experiment.title)}", ""]
        if run:
            lines.append(f"quick: commit {run['git']}, {run['started'][:10]}.")
        if how:
            lines.append(f"paper: {how}.")
        lines += [
            "",
            "| claim | statement | source | bound | quick | paper |",
            "|---|---|---|---|---|---|",
        ]
        for spec in experiment.claims:
            lines.append(
                f"| `{spec.id}` | {_escape(spec.statement)} | {_escape(spec.source)} "
                f"| `{_escape(spec.rule.describe())}` "
                f"| {_escape(_cell(run['claims'] if run else None, spec))} "
                f"| {_escape(_cell(paper or None, spec))} |"
            )
        lines.append("")
    return "\n".join(lines)


def load_quick_snapshot() -> dict[str, Any]:
    return json.loads(QUICK_SNAPSHOT.read_text()) if QUICK_SNAPSHOT.is_file() else {}


def write_ledger(experiments: Mapping[str, Experiment], runs: pathlib.Path | None) -> pathlib.Path:
    """Snapshot the quick verdicts of `experiments` under `runs` (if given: the experiments
    recorded there replace their entries, the others keep theirs), then rewrite docs/claims.md."""
    if not DOCS.is_dir():
        raise UsageError(f"no {DOCS}: `sinkjax ledger` writes docs/ of a source checkout")
    if runs is not None:
        snapshot = load_quick_snapshot() | snapshot_quick(runs, experiments)
        write_json_atomic(QUICK_SNAPSHOT, {n: snapshot[n] for n in experiments if n in snapshot})
    tmp = PAGE.with_name(f".{PAGE.name}.tmp")
    tmp.write_text(render(experiments, load_quick_snapshot()))
    tmp.replace(PAGE)
    return PAGE
