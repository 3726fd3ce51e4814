"""relu-attention (E5) at the ci preset: both runs train, claims and the figure are written."""

import dataclasses

import pytest

from experiments.active_dormant import bb_dynamics, relu_attention
from experiments.framework.experiment import RunContext


def test_ci_run(tmp_path):
    cfg = relu_attention.PRESETS["ci"]
    outcome = relu_attention.run(cfg, RunContext(tmp_path, progress=False))
    assert [c.id for c in outcome.claims] == [s.id for s in relu_attention.CLAIMS]
    claims = {c.id: c for c in outcome.claims}
    assert all(c.verdict in ("pass", "fail") for c in outcome.claims)
    # Already after 40 steps the ReLU value of <s> has grown, not drained.
    assert claims["relu-no-drain"].passed and claims["relu-no-drain"].measured[0] > 1
    assert (tmp_path / outcome.figures[0]).read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "checkpoint" / "relu").is_dir() and (
        tmp_path / "checkpoint" / "softmax"
    ).is_dir()


def test_softmax_sink_is_bb_dynamics_reading():
    one_layer = {s.id: s for s in bb_dynamics.CLAIMS}["attention-sink"]
    softmax = {s.id: s for s in relu_attention.CLAIMS}["softmax-attention-sink"]
    assert softmax.rule == one_layer.rule and one_layer.statement in softmax.statement


def test_config_validation():
    with pytest.raises(ValueError, match="softmax_learning_rate"):
        dataclasses.replace(relu_attention.PRESETS["ci"], softmax_learning_rate=0.0)
    assert relu_attention.PRESETS["paper"].learning_rate == 3e-3
    assert relu_attention.PRESETS["paper"].attention == "relu"
