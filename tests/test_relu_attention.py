"""relu-attention (E5) at the ci preset: both runs train, claims and the figure are written."""

import dataclasses

import pytest

from experiments import relu_attention
from experiments.registry import RunContext


def test_ci_run(tmp_path):
    cfg = relu_attention.PRESETS["ci"]
    outcome = relu_attention.run(cfg, RunContext(tmp_path, progress=False))
    claims = {c.id: c for c in outcome.claims}
    assert set(claims) == {
        "relu-backcopy",
        "relu-bigram",
        "relu-no-sink",
        "relu-no-drain",
        "softmax-sink-contrast",
    }
    # Already after 40 steps the ReLU value of <s> has grown, not drained.
    assert claims["relu-no-drain"].passed and claims["relu-no-drain"].measured > 1
    assert (tmp_path / outcome.figures[0]).read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "checkpoint" / "relu").is_dir() and (
        tmp_path / "checkpoint" / "softmax"
    ).is_dir()


def test_config_validation():
    with pytest.raises(ValueError, match="softmax_learning_rate"):
        dataclasses.replace(relu_attention.PRESETS["ci"], softmax_learning_rate=0.0)
    assert relu_attention.PRESETS["paper"].learning_rate == 3e-3
    assert relu_attention.PRESETS["paper"].attention == "relu"
