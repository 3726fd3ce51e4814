"""simplified-adam (E10) at the ci preset, and the log fit on a hand-checkable curve."""

import dataclasses

import numpy as np
import pytest

from experiments.active_dormant import simplified_adam
from experiments.framework.experiment import RunContext


def test_log_fit_recovers_an_exact_log_law():
    steps = np.array([0, 1, 10, 100, 200, 500, 1000, 2000])
    curve = 0.7 * np.log(np.maximum(steps, 1)) - 2.0
    fit = simplified_adam.log_fit(steps, curve, (100, 1000))
    assert fit["slope"] == pytest.approx(0.7) and fit["intercept"] == pytest.approx(-2.0)
    assert fit["r2"] == pytest.approx(1.0) and (fit["first"], fit["last"]) == (100, 1000)
    assert simplified_adam.log_fit(steps, curve, (600, 1500)) is None


def test_ci_run(tmp_path):
    cfg = simplified_adam.PRESETS["ci"]
    outcome = simplified_adam.run(cfg, RunContext(tmp_path, progress=False))
    assert [c.id for c in outcome.claims] == [s.id for s in simplified_adam.CLAIMS]
    # The 30-step ci run has no evaluation in E4's window [1k, 10k]: only the fit is skipped.
    skipped = {c.id for c in outcome.claims if c.verdict == "skipped"}
    assert skipped == {"d5-logit-log-linear"}
    summary = outcome.summary
    assert set(summary["fits"]) == {simplified_adam.D5, simplified_adam.ONE_LAYER}
    assert np.shape(summary["d5_logit"]) == np.shape(summary["d5_eval_steps"])
    assert summary["d5_eval_steps"][-1] == cfg.steps
    assert np.shape(summary["transformer_logit"]) == np.shape(summary["transformer_eval_steps"])
    observed = {o.id: o.measured for o in outcome.observations}
    # The Theorem 3 alpha-flow grows like (1/2) log t on the BB statistics.
    assert observed["flow-log-slope-last-decade"] > 0.4
    assert (tmp_path / outcome.figures[0]).read_bytes()[:4] == b"\x89PNG"
    for label in ("code-model", "1l-transformer"):
        assert (tmp_path / "checkpoint" / label).is_dir()


def test_claims_share_bb_dynamics_bounds():
    from experiments.active_dormant import bb_dynamics

    one_layer = {s.id: s.rule for s in bb_dynamics.CLAIMS}
    d5 = {s.id: s.rule for s in simplified_adam.CLAIMS}
    assert d5["d5-attention-sink"] == one_layer["attention-sink"]
    assert d5["d5-logit-log-linear"] == one_layer["sink-logit-log-linear"]
    assert d5["d5-value-norm-rises-then-falls"] == one_layer["value-norm-rises-then-falls"]
    assert simplified_adam.LOG_FIT_WINDOW == bb_dynamics.LOG_FIT_WINDOW


@pytest.mark.parametrize("field, value", [("steps", 0), ("learning_rate", 0.0)])
def test_config_validation(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(simplified_adam.PRESETS["ci"], **{field: value})


def test_paper_preset_uses_the_code_settings():
    cfg = simplified_adam.PRESETS["paper"]
    assert (cfg.learning_rate, cfg.batch_size, cfg.seq_len, cfg.steps) == (0.03, 512, 256, 10_000)
    assert (cfg.transformer.n_layers, cfg.transformer.learning_rate) == (1, 3e-4)
