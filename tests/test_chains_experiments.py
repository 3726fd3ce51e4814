"""The chain RL experiments (E1-E3) at the ci preset, their configs, presets and claim logic."""

import dataclasses
import types

import numpy as np
import pytest

from experiments import chains_emergence, chains_length_generalization, chains_simple_examples
from experiments.chains_common import PAPER_LINEAR, PAPER_SOFTMAX, ChainRunSetting
from experiments.registry import RunContext, get_experiments
from experiments.runner import UsageError, resolve_config

EXPERIMENTS = {
    "chains-emergence": chains_emergence,
    "chains-length-generalization": chains_length_generalization,
    "chains-simple-examples": chains_simple_examples,
}


def _ci_run(module, tmp_path):
    cfg = module.PRESETS["ci"]
    return cfg, module.run(cfg, RunContext(tmp_path, progress=False))


def _check_outcome(outcome, tmp_path, claim_ids, labels):
    assert [c.id for c in outcome.claims] == claim_ids
    for claim in outcome.claims:  # verdicts follow from the measured fraction and the bound
        assert 0.0 <= claim.measured <= 1.0
        op, bound = claim.predicted.split()
        holds = claim.measured > float(bound) if op == ">" else claim.measured < float(bound)
        assert claim.verdict == ("pass" if holds else "fail")
    for figure in outcome.figures:
        assert (tmp_path / figure).read_bytes()[:4] == b"\x89PNG"
    for label in labels:
        assert (tmp_path / "checkpoint" / label).is_dir()


def test_emergence_ci_run(tmp_path):
    cfg, outcome = _ci_run(chains_emergence, tmp_path)
    ids = [f"{a}-n3-{c}" for a in ("linear", "softmax") for c in ("accuracy", "traverse")]
    _check_outcome(outcome, tmp_path, ids, ["linear-n3", "softmax-n3"])
    summary = outcome.summary["softmax-n3"]
    assert summary["epochs_run"] == cfg.softmax.epochs
    assert len(summary["test"]["accuracy"]) == cfg.n_seeds
    # A re-run resumes from the finished checkpoints: same claims, no retraining.
    again = chains_emergence.run(cfg, RunContext(tmp_path, progress=False))
    assert [c.measured for c in again.claims] == [c.measured for c in outcome.claims]


def test_length_generalization_ci_run(tmp_path):
    cfg, outcome = _ci_run(chains_length_generalization, tmp_path)
    _check_outcome(
        outcome, tmp_path, ["linear-test-n3-accuracy", "linear-test-n5-accuracy"], ["linear"]
    )
    tests = outcome.summary["linear"]["test"]
    assert set(tests) == {"n3", "n5"}
    # Greedy decoding of at most 8 tokens on chains of 5 (s <= 4).
    assert 0 < tests["n5"]["mean_length"][0] <= cfg.test_max_new_tokens


def test_simple_examples_ci_run(tmp_path):
    cfg, outcome = _ci_run(chains_simple_examples, tmp_path)
    _check_outcome(outcome, tmp_path, ["linear-k1-near-chance"], ["linear-k1", "linear-k2"])
    runs = outcome.summary["runs"]
    for k in cfg.ks:  # no early stop: every epoch is run, and validated
        assert runs[f"linear-k{k}"]["epochs_run"] == cfg.linear.epochs
        assert np.all(np.isfinite(runs[f"linear-k{k}"]["val_accuracy"]))


def test_uniform_policy_accuracy_by_hand():
    # N = 10 labels, two sinks, H = 6: P(a sink within 6 draws) / 2.
    assert chains_simple_examples.uniform_policy_accuracy(10, 6) == pytest.approx((1 - 0.8**6) / 2)


def test_simple_examples_claims_can_fail():
    cfg = chains_simple_examples.PRESETS["quick"]

    @dataclasses.dataclass
    class FakeRun:  # the two members of `TrainedChain` that `_claims` reads
        accuracy: float
        result = types.SimpleNamespace(epochs_run=7)

        def final(self, name):
            return np.array([self.accuracy])

    runs = {("linear", 1): FakeRun(0.7), ("linear", 2): FakeRun(0.9), ("linear", 3): FakeRun(0.5)}
    claims = chains_simple_examples._claims(cfg, runs)
    assert [(c.id, c.verdict) for c in claims] == [
        ("linear-k1-near-chance", "fail"),
        ("linear-k3-solved", "fail"),
    ]


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
        resolve_config(get_experiments()[name], "ci", **override)
    assert resolve_config(get_experiments()[name], "ci", n_seeds=2).seeds[-1] == 43


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
