"""Architecture gates (one parameter shape, several architectures), per-run training data, and
the residual-peaks (E6) experiment at the ci preset."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from experiments.active_dormant import residual_peaks
from experiments.framework.experiment import RunContext
from sinkjax.interventions import Interventions
from sinkjax.models import Transformer, TransformerConfig
from sinkjax.optim import OptimizerConfig
from sinkjax.train import TrainConfig, TrainTask, train

SMALL = TransformerConfig(vocab_size=11, max_len=8, d_model=16, d_mlp=32, n_layers=3)


@pytest.mark.parametrize("name", list(residual_peaks.ARCHITECTURES))
def test_gates_are_the_architecture(name):
    """The gated full model computes what the model built without those sub-layers computes,
    with the same weights, and passes no gradient to the gated-off sub-layers."""
    no_attn, no_ffn = residual_peaks.ARCHITECTURES[name]
    full = Transformer(SMALL, rngs=nnx.Rngs(0))
    static = Transformer(
        dataclasses.replace(SMALL, no_attn=no_attn, no_ffn=no_ffn), rngs=nnx.Rngs(1)
    )
    weights = dict(nnx.to_flat_state(nnx.state(full)))
    shared = nnx.from_flat_state(
        [(path, weights[path]) for path, _ in nnx.to_flat_state(nnx.state(static))]
    )
    nnx.update(static, shared)
    gates = Interventions.architecture(3, 1, no_attn, no_ffn)
    tokens = jax.random.randint(jax.random.key(2), (2, 8), 0, 11)
    np.testing.assert_allclose(full(tokens, gates), static(tokens), rtol=1e-5, atol=1e-5)

    graphdef, params = nnx.split(full)
    grads = jax.grad(lambda p: nnx.merge(graphdef, p)(tokens, gates).sum())(params)
    checked = 0
    for path, grad in nnx.to_flat_state(grads):
        block, sub = (path[1], path[2]) if path[0] == "blocks" else (None, None)
        removed = (sub in ("attn", "ln_attn") and block in no_attn) or (
            sub in ("mlp", "ln_ffn") and block in no_ffn
        )
        if removed:
            assert not jnp.any(grad.get_value()), path
            checked += 1
    # Each removed attention has LN (scale, bias) and a fused qkv and an output kernel; each
    # removed MLP has LN (scale, bias) and two kernels.
    assert checked == 4 * (len(no_attn) + len(no_ffn))


def test_run_args_must_match_the_runs():
    task = TrainTask(
        lambda key, w: {"w": w},
        lambda p, key, w: jnp.sum((p["w"] - 2 * w) ** 2),
        lambda p, w: {"w": p["w"]},
        run_args=jnp.array([1.0, 3.0]),
    )
    result = train(task, _sgd(), TrainConfig(steps=50, seeds=(0, 0), chunk_size=25), progress=False)
    # Each run is pulled to its own target 2 * run_arg.
    np.testing.assert_allclose(result.metrics["w"][:, -1], [2.0, 6.0], rtol=1e-3)
    with pytest.raises(ValueError, match="one row per run"):
        train(task, _sgd(), TrainConfig(steps=5, seeds=(0, 1, 2)), progress=False)


def _sgd():
    return OptimizerConfig(name="sgd", learning_rate=0.1, momentum=0.0, weight_decay=0.0)


def test_ci_run(tmp_path):
    outcome = residual_peaks.run(residual_peaks.PRESETS["ci"], RunContext(tmp_path, progress=False))
    assert [c.id for c in outcome.claims] == [s.id for s in residual_peaks.CLAIMS]
    assert [o.id for o in outcome.observations] == ["peak-needs-block0-mlp", "sweep-final-excess"]
    assert set(outcome.claims[0].measured) == set(residual_peaks.ARCHITECTURES)
    assert set(outcome.summary["final_recentred_peak"]) == set(residual_peaks.ARCHITECTURES)
    curves = outcome.summary["recentred_peak_curves"]["3xTF"]
    assert curves.shape == (1, len(outcome.summary["eval_steps"]))
    assert (tmp_path / outcome.figures[0]).read_bytes()[:4] == b"\x89PNG"


def test_rejects_a_fixed_architecture():
    with pytest.raises(ValueError, match="n_layers=3"):
        dataclasses.replace(residual_peaks.PRESETS["ci"], no_attn=(1,))
