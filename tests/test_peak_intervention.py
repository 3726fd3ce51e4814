"""peak-intervention (E7) at the ci preset."""

import dataclasses

import numpy as np
import pytest

from experiments.active_dormant import peak_intervention
from experiments.framework.experiment import RunContext


def test_ci_run(tmp_path):
    cfg = peak_intervention.PRESETS["ci"]
    assert (cfg.n_layers, cfg.no_attn, cfg.no_ffn) == (3, (2,), ())
    outcome = peak_intervention.run(cfg, RunContext(tmp_path, progress=False))
    assert [c.id for c in outcome.claims] == [s.id for s in peak_intervention.CLAIMS]
    assert [o.id for o in outcome.observations] == ["trained-value-drain", "final-excess"]
    for key in ("recentred_peak", "sink_logit_1", "value_norm_1", "value_ratio_1"):
        values = np.asarray(outcome.summary[key])
        assert values.shape == (1, 2) and np.isfinite(values).all(), key
    assert (tmp_path / outcome.figures[0]).read_bytes()[:4] == b"\x89PNG"


def test_rejects_another_architecture(tmp_path):
    cfg = dataclasses.replace(peak_intervention.PRESETS["ci"], no_attn=())
    with pytest.raises(ValueError, match="attn\\+mlp\\+attn\\+mlp\\+mlp"):
        peak_intervention.run(cfg, RunContext(tmp_path))
