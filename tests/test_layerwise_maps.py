"""layerwise-maps (E9) at the ci preset: the 3-layer run, its per-layer profiles and figure."""

import dataclasses

import numpy as np
import pytest

from experiments.active_dormant import layerwise_maps
from experiments.framework.experiment import RunContext


def test_ci_run(tmp_path):
    cfg = layerwise_maps.PRESETS["ci"]
    assert cfg.n_layers == 3
    outcome = layerwise_maps.run(cfg, RunContext(tmp_path, progress=False))
    summary = outcome.summary
    assert [c.id for c in outcome.claims] == [s.id for s in layerwise_maps.CLAIMS]
    assert [o.id for o in outcome.observations] == [
        "3xtf-backcopy",
        "3xtf-bigram",
        "sink-layer",
        "sink-layer-attends-to-bos",
        "bos-value-small-in-sink-layer",
        "residual-layer0-grows",
    ]
    # The claims read the per-layer residual ratios of the summary.
    resid = np.asarray(summary["resid_ratio"])
    np.testing.assert_allclose(outcome.claims[1].measured, resid[:, -1], rtol=1e-6)
    for key in ("resid_ratio", "value_ratio", "attn_sink_final", "value_norm_sink_final"):
        assert np.shape(summary[key]) == (1, 3), key
    assert np.shape(summary["prompt_resid_norm"]) == (3, cfg.prompt_len)
    assert np.shape(summary["prompt_value_norm"]) == (3, cfg.prompt_len)
    # Every sequence starts with <s>, so the ratios compare position 0 with real tokens.
    assert summary["prompt_tokens"][0] == 65
    assert np.all(np.asarray(summary["resid_ratio"]) > 0)
    assert np.asarray(summary["sink_layer"]).tolist()[0] in (1, 2)
    assert (tmp_path / outcome.figures[0]).read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "checkpoint" / "3xtf").is_dir()


@pytest.mark.parametrize(
    "field, value", [("prompt_len", 1), ("prompt_len", 33), ("n_layers", 1), ("steps", 0)]
)
def test_config_validation(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(layerwise_maps.PRESETS["ci"], **{field: value})


def test_paper_preset_is_the_spec_3xtf():
    cfg = layerwise_maps.PRESETS["paper"]
    assert (cfg.n_layers, cfg.d_model, cfg.batch_size, cfg.seq_len) == (3, 256, 512, 256)
    assert (cfg.learning_rate, cfg.steps) == (3e-4, 10_000)
