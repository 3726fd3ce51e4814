"""optimizer-ablation (E8) at the ci preset, and its linear fit."""

import dataclasses

import numpy as np
import pytest

from experiments import optimizer_ablation
from experiments.registry import RunContext


def test_linear_fit():
    x = np.arange(10.0)
    slope, r2 = optimizer_ablation.linear_fit(x, 3.0 + 0.5 * x)
    assert slope == pytest.approx(0.5) and r2 == pytest.approx(1.0)
    _, r2_noise = optimizer_ablation.linear_fit(x, np.array([0, 1, 0, 1, 0, 1, 0, 1, 0, 1.0]))
    assert r2_noise < 0.2


def test_variants():
    variants = optimizer_ablation.PRESETS["paper"].variants()
    assert variants["Adam"].optimizer == "adamw" and variants["Adam"].learning_rate == 3e-4
    assert variants["SGD"].optimizer == "sgd" and variants["SGD"].learning_rate == 0.03
    assert variants["ReLU attn"].attention == "relu"
    assert {v.n_layers for v in variants.values()} == {3}


def test_ci_run(tmp_path):
    outcome = optimizer_ablation.run(
        optimizer_ablation.PRESETS["ci"], RunContext(tmp_path, progress=False)
    )
    assert {c.id for c in outcome.claims} == {
        "runs-learned",
        "adam-linear-growth",
        "adam-growth-factor",
        "sgd-flat",
        "relu-flat",
        "sgd-sinks-persist",
    }
    curves = outcome.summary["resid_norm_sink_block0"]
    assert set(curves) == {"Adam", "SGD", "ReLU attn"}
    assert curves["SGD"].shape == (1, len(outcome.summary["eval_steps"]))
    assert (tmp_path / outcome.figures[0]).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("change", [{"n_layers": 2}, {"optimizer": "sgd"}, {"band": 0.0}])
def test_rejects_bad_configs(change):
    with pytest.raises(ValueError):
        dataclasses.replace(optimizer_ablation.PRESETS["ci"], **change)
