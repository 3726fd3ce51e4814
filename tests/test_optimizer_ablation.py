"""optimizer-ablation (E8) at the ci preset, and the evaluations its linear fit uses."""

import dataclasses

import pytest

from experiments.active_dormant import optimizer_ablation
from experiments.framework.experiment import RunContext


def test_variants():
    variants = optimizer_ablation.PRESETS["paper"].variants()
    assert variants["Adam"].optimizer == "adamw" and variants["Adam"].learning_rate == 3e-4
    assert variants["SGD"].optimizer == "sgd" and variants["SGD"].learning_rate == 0.03
    assert variants["ReLU attn"].attention == "relu"
    assert {v.n_layers for v in variants.values()} == {3}


def test_ci_run(tmp_path):
    cfg = optimizer_ablation.PRESETS["ci"]
    outcome = optimizer_ablation.run(cfg, RunContext(tmp_path, progress=False))
    assert [c.id for c in outcome.claims] == [s.id for s in optimizer_ablation.CLAIMS]
    assert "skipped" not in {c.verdict for c in outcome.claims}
    # The fit spans the whole run: the evenly spaced evaluations from step 0 to the last.
    fit = outcome.claims[0].measured
    assert fit["x"][0] == 0 and fit["x"][-1] == cfg.steps and len(fit["x"]) == cfg.n_linear_evals
    curves = outcome.summary["resid_norm_sink_block0"]
    assert set(curves) == {"Adam", "SGD", "ReLU attn"}
    assert curves["SGD"].shape == (1, len(outcome.summary["eval_steps"]))
    assert (tmp_path / outcome.figures[0]).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "change", [{"n_layers": 2}, {"optimizer": "sgd"}, {"sgd_learning_rate": 0.0}]
)
def test_rejects_bad_configs(change):
    with pytest.raises(ValueError):
        dataclasses.replace(optimizer_ablation.PRESETS["ci"], **change)
