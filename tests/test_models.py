"""The transformer zoo: shapes, causality, attention kinds, init law, traces, interventions."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from sinkjax.interventions import Interventions
from sinkjax.models import Transformer, TransformerConfig

TINY = TransformerConfig(vocab_size=11, max_len=12, d_model=16, n_layers=2, n_heads=2, d_mlp=32)


def make(cfg=TINY, seed=0):
    return Transformer(cfg, rngs=nnx.Rngs(seed))


def tokens(shape=(3, 12), vocab=11, seed=1):
    return jax.random.randint(jax.random.key(seed), shape, 0, vocab)


def test_shapes_and_trace():
    model = make()
    x = tokens()
    logits, trace = model(x, trace=True)
    assert logits.shape == (3, 12, 11) and logits.dtype == jnp.float32
    assert trace.embed.shape == (3, 12, 16)
    assert len(trace.layers) == 2
    attn = trace.layers[0].attn
    assert attn.logits.shape == attn.weights.shape == (3, 2, 12, 12)
    assert attn.values.shape == (3, 12, 2, 8)
    assert attn.value_out.shape == (3, 12, 2, 16)
    np.testing.assert_allclose(model(x), logits, rtol=1e-6)


def test_removed_sublayers_have_no_parameters():
    cfg = dataclasses.replace(TINY, n_layers=3, no_attn=(2,), no_ffn=(0,))
    model = make(cfg)
    assert model.blocks[2].attn is None and model.blocks[0].mlp is None
    _, trace = model(tokens(), trace=True)
    assert trace.layers[2].attn is None
    np.testing.assert_array_equal(trace.layers[0].resid_post, trace.layers[0].resid_mid)
    np.testing.assert_array_equal(trace.layers[2].resid_mid, trace.layers[1].resid_post)


@pytest.mark.parametrize("kind", ["softmax", "relu"])
def test_causal_and_attention_kind(kind):
    model = make(dataclasses.replace(TINY, attention=kind))
    x = tokens()
    logits, trace = model(x, trace=True)
    attn = trace.layers[0].attn
    upper = np.triu(np.ones((12, 12), bool), 1)
    assert np.all(np.asarray(attn.weights)[..., upper] == 0)
    if kind == "softmax":
        np.testing.assert_allclose(attn.weights.sum(-1), 1.0, rtol=1e-5)
    else:  # w_ij = ReLU(s_ij) / (i + 1) on and below the diagonal
        expected = np.maximum(np.asarray(attn.logits), 0) / np.arange(1, 13)[:, None]
        expected[..., upper] = 0
        np.testing.assert_allclose(attn.weights, expected, rtol=1e-6, atol=1e-7)
    # The future does not leak: changing the last token leaves earlier logits unchanged.
    logits2 = model(x.at[:, -1].set((x[:, -1] + 1) % 11))
    np.testing.assert_allclose(logits2[:, :-1], logits[:, :-1], rtol=1e-5, atol=1e-6)
    assert not np.allclose(logits2[:, -1], logits[:, -1])


def test_value_out_is_values_through_w_o():
    model = make()
    _, trace = model(tokens(), trace=True)
    attn = trace.layers[1].attn
    w_o = model.blocks[1].attn.o.kernel[...].reshape(2, 8, 16)
    np.testing.assert_allclose(
        attn.value_out, np.einsum("bnhd,hde->bnhe", attn.values, w_o), rtol=1e-5, atol=1e-6
    )


def test_torch_init_matches_reference_statistics():
    """PyTorch defaults give ||Res_<s>|| ~ 24.3, ||W_O v_<s>|| ~ 5.2, ||v_<s>|| ~ 9.0 (spec B.1)."""
    cfg = TransformerConfig()
    x = jnp.full((1, 8), 65)
    res, wov, v = [], [], []
    for seed in range(6):
        _, trace = make(cfg, seed)(x, trace=True)
        res.append(np.linalg.norm(trace.layers[0].resid_post[0, 0]))
        wov.append(np.linalg.norm(trace.layers[0].attn.value_out[0, 0]))
        v.append(np.linalg.norm(trace.layers[0].attn.values[0, 0]))
    assert abs(np.mean(res) - 24.3) < 1.5
    assert abs(np.mean(wov) - 5.2) < 0.6
    assert abs(np.mean(v) - 9.0) < 0.8
    model = make(cfg)
    bound = 1 / 16
    assert float(jnp.abs(model.blocks[0].attn.qkv[...]).max()) <= bound
    assert float(jnp.abs(model.blocks[0].attn.qkv[...]).max()) > 0.99 * bound
    assert abs(float(model.token_embed.embedding[...].std()) - 1) < 0.02
    assert float(jnp.abs(model.blocks[0].mlp.down.kernel[...]).max()) <= 1 / 32


def test_bias_switches():
    cfg = dataclasses.replace(TINY, use_bias=False, query_bias=True)
    attn = make(cfg).blocks[0].attn
    assert attn.q_bias is not None and attn.kv_bias is None and attn.o.bias is None
    attn = make(dataclasses.replace(TINY, use_bias=True, query_bias=False)).blocks[0].attn
    assert attn.q_bias is None and attn.kv_bias is not None and attn.o.bias is not None


def test_config_validation():
    with pytest.raises(ValueError, match="divisible"):
        TransformerConfig(d_model=10, n_heads=3)
    with pytest.raises(ValueError, match="outside"):
        TransformerConfig(n_layers=2, no_attn=(2,))
    with pytest.raises(ValueError, match="positive"):
        TransformerConfig(d_model=0)


def test_identity_intervention_changes_nothing():
    model, x = make(), tokens()
    np.testing.assert_array_equal(model(x, Interventions.none(2, 2)), model(x))


def test_zero_attention_and_remove_mlp():
    model, x = make(), tokens()
    none = Interventions.none(2, 2)
    _, trace = model(x, none.zero_attention(0), trace=True)
    np.testing.assert_allclose(trace.layers[0].resid_mid, trace.embed, atol=1e-6)
    _, trace = model(x, none.remove_mlp(1), trace=True)
    np.testing.assert_array_equal(trace.layers[1].resid_post, trace.layers[1].resid_mid)
    _, trace = model(x, none.zero_layer(0), trace=True)
    np.testing.assert_allclose(trace.layers[0].resid_post, trace.embed, atol=1e-6)


def test_head_ablation_acts_before_w_o():
    """Zeroing head 1 equals zeroing head 1's rows of W_O (ablation on z, not after W_O)."""
    model, x = make(), tokens()
    ablated = model(x, Interventions.none(2, 2).zero_attention(0, head=1))
    kernel = model.blocks[0].attn.o.kernel
    kernel[...] = kernel[...].at[8:].set(0.0)
    np.testing.assert_allclose(ablated, model(x), rtol=1e-5, atol=1e-6)


def test_new_intervention_values_do_not_retrace():
    graphdef, params = nnx.split(make())
    n_traces = 0

    @jax.jit
    def forward(params, x, iv):
        nonlocal n_traces
        n_traces += 1
        return nnx.merge(graphdef, params)(x, iv)

    x = tokens()
    for iv in (Interventions.none(2, 2), Interventions.none(2, 2).zero_layer(1)):
        forward(params, x, iv)
    assert n_traces == 1
