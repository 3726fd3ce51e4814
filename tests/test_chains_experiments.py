"""The chain RL experiments (E1-E3) at the ci preset, their configs, presets and claims."""

import dataclasses

import numpy as np
import pytest

from experiments.cot_rl import (
    chains_emergence,
    chains_length_generalization,
    chains_simple_examples,
)
from experiments.cot_rl.chains_common import (
    PAPER_LINEAR,
    PAPER_SOFTMAX,
    TEST_RATES,
    ChainRunSetting,
    reported_bound,
)
from experiments.framework.claims import judge
from experiments.framework.config_flags import resolve_config
from experiments.framework.experiment import RunContext
from experiments.framework.runner import UsageError
from experiments.registry import get_experiments

EXPERIMENTS = {
    "chains-emergence": chains_emergence,
    "chains-length-generalization": chains_length_generalization,
    "chains-simple-examples": chains_simple_examples,
}


def _ci_run(module, tmp_path):
    cfg = module.PRESETS["ci"]
    return cfg, module.run(cfg, RunContext(tmp_path, progress=False))


def _check_outcome(module, outcome, tmp_path, skipped_ids, labels):
    """The ci outcome judges the declared claims, skips exactly `skipped_ids` (no data at ci),
    and each verdict is the claim's rule applied to its measured rate."""
    assert [c.id for c in outcome.claims] == [s.id for s in module.CLAIMS]
    assert {c.id for c in outcome.claims if c.verdict == "skipped"} == set(skipped_ids)
    for spec, claim in zip(module.CLAIMS, outcome.claims, strict=True):
        if claim.verdict != "skipped":
            assert 0.0 <= claim.measured <= 1.0
            assert claim.verdict == spec.judge(claim.measured).verdict
    for figure in outcome.figures:
        assert (tmp_path / figure).read_bytes()[:4] == b"\x89PNG"
    for label in labels:
        assert (tmp_path / "checkpoint" / label).is_dir()


def test_emergence_ci_run(tmp_path):
    cfg, outcome = _ci_run(chains_emergence, tmp_path)
    skipped = [f"{a}-n{n}-{m}" for a in ("linear", "softmax") for n in (8, 12) for m in TEST_RATES]
    _check_outcome(chains_emergence, outcome, tmp_path, skipped, ["linear-n4", "softmax-n4"])
    summary = outcome.summary["softmax-n4"]
    assert summary["epochs_run"] == cfg.softmax.epochs
    assert len(summary["test"]["accuracy"]) == cfg.n_seeds
    # A re-run resumes from the finished checkpoints: same claims, no retraining.
    again = chains_emergence.run(cfg, RunContext(tmp_path, progress=False))
    assert [c.measured for c in again.claims] == [c.measured for c in outcome.claims]


def test_length_generalization_ci_run(tmp_path):
    cfg, outcome = _ci_run(chains_length_generalization, tmp_path)
    skipped = [f"softmax-test-n{n}-accuracy" for n in (4, 8, 12)]
    _check_outcome(chains_length_generalization, outcome, tmp_path, skipped, ["linear"])
    tests = outcome.summary["linear"]["test"]
    assert set(tests) == {"n4", "n8", "n12"}
    # Greedy decoding of at most 20 tokens on chains of 12 (s <= 11).
    assert 0 < tests["n12"]["mean_length"][0] <= cfg.test_max_new_tokens


def test_simple_examples_ci_run(tmp_path):
    cfg, outcome = _ci_run(chains_simple_examples, tmp_path)
    _check_outcome(
        chains_simple_examples, outcome, tmp_path, ["linear-k4-solved"], ["linear-k1", "linear-k3"]
    )
    runs = outcome.summary["runs"]
    for k in cfg.ks:  # no early stop: every epoch is run, and validated
        assert runs[f"linear-k{k}"]["epochs_run"] == cfg.linear.epochs
        assert np.all(np.isfinite(runs[f"linear-k{k}"]["val_accuracy"]))


def test_uniform_policy_accuracy_by_hand():
    # N = 10 labels, two sinks, H = 6: P(a sink within 6 draws) / 2.
    assert chains_simple_examples.uniform_policy_accuracy(10, 6) == pytest.approx((1 - 0.8**6) / 2)


def test_reported_bound_reads_the_codes_numbers():
    assert reported_bound(1.0) == 0.99  # a printed 100%
    assert reported_bound(0.932, 0.0437) == pytest.approx(0.8446)
    assert reported_bound(0.997, 0.0022) == 0.99
    bounds = {c.id: c.rule.bound for c in chains_emergence.CLAIMS}
    assert bounds["softmax-n12-accuracy"] == pytest.approx(0.9859 - 2 * 0.0199)
    assert bounds["linear-n8-traverse"] == pytest.approx(0.995 - 2 * 0.0071)


def test_simple_examples_measure_picks_the_claimed_runs():
    @dataclasses.dataclass
    class FakeRun:  # the member of `TrainedChain` that `measure` reads
        accuracy: float

        def final(self, name):
            return np.array([self.accuracy])

    cfg = chains_simple_examples.PRESETS["quick"]
    runs = {("linear", k): FakeRun(a) for k, a in ((1, 0.7), (2, 0.9), (3, 0.5), (4, 1.0))}
    measured, skipped = chains_simple_examples.measure(cfg, runs)
    assert skipped == {}
    assert measured == {
        "linear-k1-near-chance": 0.7,
        "linear-k3-solved": 0.5,
        "linear-k4-solved": 1.0,
    }
    claims = judge(chains_simple_examples.CLAIMS, measured)
    assert [c.verdict for c in claims] == ["fail", "fail", "pass"]
    # Another chain size is not the claims' n = 5: no data.
    other = dataclasses.replace(cfg, chain_length=6)
    assert set(chains_simple_examples.measure(other, runs)[1]) == set(measured)


def test_registered_in_order():
    names = list(get_experiments())
    i = names.index("char-lm-dynamics")
    assert names[i + 1 : i + 4] == list(EXPERIMENTS)


def test_paper_presets_are_the_code_settings():
    assert (PAPER_LINEAR.batch_size, PAPER_LINEAR.n_microbatches) == (200_000, 80)
    assert (PAPER_LINEAR.epochs, PAPER_LINEAR.epoch_steps, PAPER_LINEAR.temperature) == (
        200,
        10,
        0.2,
    )
    assert (PAPER_SOFTMAX.n_microbatches, PAPER_SOFTMAX.epochs, PAPER_SOFTMAX.epoch_steps) == (
        30,
        300,
        20,
    )
    assert PAPER_SOFTMAX.temperature == 0.05 and abs(PAPER_SOFTMAX.batch_size - 50_000) < 30
    emergence = chains_emergence.PRESETS["paper"]
    assert emergence.chain_lengths == (4, 8, 12) and emergence.seeds == (42, 43, 44)
    assert (emergence.learning_rate, emergence.val_size) == (1e-2, 1000)
    lengths = chains_length_generalization.PRESETS["paper"]
    assert lengths.linear.temperature == lengths.softmax.temperature == 0.05
    assert (lengths.n_vertices, lengths.train_steps, lengths.test_chain_lengths) == (
        24,
        (1, 2, 3),
        (4, 8, 12),
    )
    assert (lengths.max_new_tokens, lengths.test_max_new_tokens) == (13, 20)
    simple = chains_simple_examples.PRESETS["paper"]
    assert simple.seeds == (42,) and simple.val_size == 10_000 and simple.ks == (1, 2, 3, 4)
    assert (simple.linear.batch_size, simple.linear.n_microbatches, simple.linear.epochs) == (
        200_000,
        2,
        1000,
    )
    assert (simple.softmax.batch_size, simple.softmax.n_microbatches) == (50_000, 1)
    assert simple.train_task(3).step_probs == pytest.approx((0, 1 / 3, 1 / 3, 1 / 3))


@pytest.mark.parametrize("name", list(EXPERIMENTS))
@pytest.mark.parametrize(
    "override, match",
    [
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"n_seeds": 0}, "n_seeds"),
        ({"steps": 10}, "no steps"),
    ],
)
def test_cli_overrides_are_validated(name, override, match):
    with pytest.raises(UsageError, match=match):
        resolve_config(get_experiments()[name], "ci", override)
    assert resolve_config(get_experiments()[name], "ci", {"n_seeds": 2}).seeds[-1] == 43


@pytest.mark.parametrize(
    "module, field, value, match",
    [
        (chains_emergence, "chain_lengths", (2,), "chain_lengths"),
        (chains_emergence, "epoch_fractions", (0.5, 0.5), "epoch_fractions"),
        (chains_emergence, "test_size", 0, "test_size"),
        (chains_emergence, "linear", PAPER_SOFTMAX, "linear setting"),
        (chains_emergence, "softmax", None, None),
        (chains_length_generalization, "test_chain_lengths", (4, 13), "does not fit"),
        (chains_length_generalization, "train_steps", (5,), "steps"),
        (chains_length_generalization, "test_max_new_tokens", 0, "test_max_new_tokens"),
        (chains_simple_examples, "ks", (1, 5), "ks"),
        (chains_simple_examples, "linear", None, "at least one"),
    ],
)
def test_config_validation(module, field, value, match):
    cfg = module.PRESETS["paper"]
    if match is None:  # a valid change
        dataclasses.replace(cfg, **{field: value})
        return
    if module is chains_simple_examples and field == "linear":
        cfg = dataclasses.replace(cfg, softmax=None)
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(cfg, **{field: value})


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"attention": "relu"}, "attention"),
        ({"temperature": 0.0}, "temperature"),
        ({"batch_size": 1000, "n_microbatches": 3}, "multiple"),
        ({"epochs": 0}, "epochs"),
    ],
)
def test_run_setting_validation(changes, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(ChainRunSetting(), **changes)
