"""The claims ledger: declared claims, verdicts computed from measurements, docs/claims.md.

Every experiment's claims are judged on synthetic measurements (no training): the paper-like
ones in `tests/ledger_cases_*.py` must all pass, and each contradicting one must fail its own
claim alone. An inverted bound, a wrong rule or a wrong threshold side fails here.
"""

import dataclasses
import json
import pathlib

import ledger_cases_bb
import ledger_cases_bb_deep
import ledger_cases_chains
import ledger_cases_charlm
import ledger_cases_sinks
import pytest
from test_quick_presets import KNOWN_QUICK_FAILURES

from experiments.framework import ledger
from experiments.framework.claims import (
    Above,
    AllOf,
    AtLeast,
    AtMost,
    Below,
    Between,
    ClaimSpec,
    Fraction,
    LinearFit,
    Near,
    Observation,
    Separated,
    judge,
)
from experiments.framework.experiment import Experiment, Outcome
from experiments.framework.runner import check_ledger
from experiments.registry import get_experiments

EXPERIMENTS = get_experiments()
CASES = {
    **ledger_cases_bb.CASES,
    **ledger_cases_bb_deep.CASES,
    **ledger_cases_charlm.CASES,
    **ledger_cases_chains.CASES,
    **ledger_cases_sinks.CASES,
}
README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def test_every_experiment_declares_sourced_claims():
    for name, experiment in EXPERIMENTS.items():
        assert experiment.claims, f"{name} declares no claims"
        ids = [spec.id for spec in experiment.claims]
        assert len(ids) == len(set(ids)), f"{name}: repeated claim ids"
        for spec in experiment.claims:
            assert spec.source.strip() and spec.statement.strip(), (name, spec.id)
            assert ".md" in spec.source, f"{name}/{spec.id}: the source names no spec line"


def test_every_claim_has_a_passing_and_a_failing_case():
    assert set(CASES) == set(EXPERIMENTS)
    for name, experiment in EXPERIMENTS.items():
        ids = {spec.id for spec in experiment.claims}
        assert set(CASES[name]["pass"]) == ids, f"{name}: pass cases != claims"
        assert set(CASES[name]["fail"]) == ids, f"{name}: fail cases != claims"


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_paper_like_measurements_pass(name):
    claims = judge(EXPERIMENTS[name].claims, CASES[name]["pass"])
    assert [c.id for c in claims if not c.passed] == []


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_each_contradicting_measurement_fails_its_claim(name):
    passing = CASES[name]["pass"]
    for claim_id, contradicting in CASES[name]["fail"].items():
        claims = judge(EXPERIMENTS[name].claims, {**passing, claim_id: contradicting})
        assert [c.id for c in claims if not c.passed] == [claim_id], claim_id


# --- The rules themselves ---------------------------------------------------------------


@pytest.mark.parametrize(
    "rule, good, bad",
    [
        (Above(0.7), [0.8, 0.9], [0.8, 0.7]),
        (AtLeast(0.7), 0.7, 0.69),
        (Below(0.1), 0.05, 0.1),
        (AtMost(0.1), 0.1, 0.11),
        (Between(0.75, 0.999), [0.8, 0.99], [0.8, 1.0]),
        (Near(1.42, 0.25, relative=True), 1.7, 1.8),
        (Near(0.5, 0.02), 0.51, 0.53),
        (Separated(low=("a",), high=("b",)), {"a": 1, "b": 2}, {"a": 2, "b": 1}),
        (
            Separated(("a", "b"), ("c",), factor=3),
            {"a": 1, "b": 2, "c": 7},
            {"a": 1, "b": 3, "c": 7},
        ),
        (Fraction(Above(0.5), at_least=0.5), [0.6, 0.7, 0.1], [0.6, 0.1, 0.1]),
        (Fraction(Above(0.5), at_least=0.0, strict=True), [0.1, 0.6], [0.1, 0.2]),
        (
            LinearFit(0.9, Above(0)),
            {"x": [1, 2, 3, 4], "y": [1, 2.1, 2.9, 4]},
            {"x": [1, 2, 3, 4], "y": [4, 3, 2, 1]},
        ),
        (AllOf({"a": Above(0), "b": Below(1)}), {"a": 1, "b": 0}, {"a": 1, "b": 2}),
    ],
)
def test_rule_verdicts(rule, good, bad):
    spec = ClaimSpec("x", "a statement", "spec.md X1", rule)
    assert spec.judge(good).verdict == "pass"
    assert spec.judge(bad).verdict == "fail"


def test_non_finite_measurements_fail():
    for rule in (Above(0), Below(1), Between(0, 1), Near(0, 1)):
        assert ClaimSpec("x", "s", "spec.md", rule).judge(float("nan")).verdict == "fail"


def test_linear_fit_reports_slope_and_r2():
    claim = ClaimSpec("x", "s", "spec.md", LinearFit(0.9, Above(0))).judge(
        {"x": [0, 1, 2, 3], "y": [1, 3, 5, 7]}
    )
    assert claim.derived["slope"] == pytest.approx(2) and claim.derived["r2"] == pytest.approx(1)


def test_judge_refuses_unknown_missing_and_double_ids():
    specs = (ClaimSpec("a", "s", "spec.md", Above(0)), ClaimSpec("b", "s", "spec.md", Above(0)))
    with pytest.raises(ValueError, match="not measured"):
        judge(specs, {"a": 1})
    with pytest.raises(ValueError, match="unknown"):
        judge(specs, {"a": 1, "b": 1, "c": 1})
    with pytest.raises(ValueError, match="both"):
        judge(specs, {"a": 1, "b": 1}, skipped={"b": "no data"})
    assert [c.verdict for c in judge(specs, {"a": 1}, skipped={"b": "no data"})] == [
        "pass",
        "skipped",
    ]


def test_a_claim_needs_a_source():
    with pytest.raises(ValueError, match="source"):
        ClaimSpec("a", "s", " ", Above(0))


def test_runner_refuses_skipped_claims_outside_ci_and_undeclared_claims():
    specs = (ClaimSpec("a", "s", "spec.md", Above(0)), ClaimSpec("b", "s", "spec.md", Above(0)))
    experiment = Experiment("toy", "toy", {}, lambda cfg, ctx: None, specs)
    outcome = Outcome(judge(specs, {"a": 1}, skipped={"b": "no data"}), [], [0])
    check_ledger(experiment, outcome, "ci")
    with pytest.raises(RuntimeError, match="skipped"):
        check_ledger(experiment, outcome, "quick")
    check_ledger(experiment, outcome, "paper", overridden=True)  # e.g. --steps cut the window
    with pytest.raises(RuntimeError, match="declared"):
        check_ledger(experiment, dataclasses.replace(outcome, claims=outcome.claims[:1]), "ci")


def test_a_reference_comparison_is_skipped_only_away_from_its_preset():
    specs = (ClaimSpec("a", "s", "official code", Above(0), only_at="paper"),)
    experiment = Experiment("toy", "toy", {}, lambda cfg, ctx: None, specs)
    outcome = Outcome(judge(specs, {}, skipped={"a": "not the official settings"}), [], [0])
    check_ledger(experiment, outcome, "quick")
    with pytest.raises(RuntimeError, match="skipped at preset 'paper'"):
        check_ledger(experiment, outcome, "paper")


def test_observations_are_plain_json():
    import numpy as np

    observation = Observation("o", "s", np.arange(3.0))
    assert json.loads(json.dumps(dataclasses.asdict(observation)))["measured"] == [0, 1, 2]


# --- docs/claims.md and the quick failures -------------------------------------------------


def test_docs_claims_md_is_current():
    expected = ledger.render(EXPERIMENTS, ledger.load_quick_snapshot())
    assert ledger.PAGE.read_text() == expected, "docs/claims.md is stale: run `sinkjax ledger`"
    for name, experiment in EXPERIMENTS.items():
        for spec in experiment.claims:
            assert f"`{spec.id}`" in expected, (name, spec.id)


def test_known_quick_failures_are_the_quick_main_jobs_failures():
    snapshot = ledger.load_quick_snapshot()
    failed = {
        (name, claim_id)
        for name, run in snapshot.items()
        for claim_id, entry in run["claims"].items()
        if entry["verdict"] == "fail"
    }
    assert set(snapshot) == set(EXPERIMENTS), "the quick snapshot misses experiments"
    assert failed == set(KNOWN_QUICK_FAILURES)
    readme = README.read_text()
    for _, claim_id in KNOWN_QUICK_FAILURES:
        assert f"`{claim_id}`" in readme, f"README does not explain the quick failure {claim_id}"


def test_snapshot_takes_quick_records_only(tmp_path):
    from experiments.framework.runner import UsageError

    name = "bb-dynamics"
    record = {
        "preset": "quick",
        "versions": {"git": "abc"},
        "started": "2026-12-04T00:00:00+00:00",
        "claims": [
            dataclasses.asdict(c)
            for c in judge(EXPERIMENTS[name].claims, ledger_cases_bb.CASES[name]["pass"])
        ],
    }
    (tmp_path / name).mkdir()
    (tmp_path / name / "record.json").write_text(json.dumps(record))
    snapshot = ledger.snapshot_quick(tmp_path, EXPERIMENTS)
    assert set(snapshot) == {name}
    assert {e["verdict"] for e in snapshot[name]["claims"].values()} == {"pass"}
    page = ledger.render({name: EXPERIMENTS[name]}, snapshot)
    assert page.count("**pass**") >= len(EXPERIMENTS[name].claims)

    (tmp_path / name / "record.json").write_text(json.dumps({**record, "preset": "ci"}))
    with pytest.raises(UsageError, match="quick main job"):
        ledger.snapshot_quick(tmp_path, EXPERIMENTS)
    with pytest.raises(UsageError, match="no records"):
        ledger.snapshot_quick(tmp_path / "empty", EXPERIMENTS)
