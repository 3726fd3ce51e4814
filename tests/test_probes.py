"""Probes of spec C on hand-built inputs and a hand-built tiny model, answers computed by hand."""

import jax.numpy as jnp
import numpy as np
from flax import nnx

from sinkjax import probes
from sinkjax.models import AttentionTrace, Transformer, TransformerConfig


def test_oracle_cross_entropy_and_entropy():
    logits = jnp.log(jnp.array([[[0.5, 0.25, 0.25]]]))
    oracle = jnp.array([[[1.0, 0.0, 0.0]]])
    np.testing.assert_allclose(
        probes.oracle_cross_entropy(logits, oracle), [[np.log(2)]], rtol=1e-6
    )
    mixed = jnp.array([[[0.5, 0.5, 0.0]]])
    expected = -(0.5 * np.log(0.5) + 0.5 * np.log(0.25))
    np.testing.assert_allclose(probes.oracle_cross_entropy(logits, mixed), [[expected]], rtol=1e-6)
    np.testing.assert_allclose(probes.oracle_entropy(mixed), [[np.log(2)]], rtol=1e-6)


def test_attention_to_first_and_previous():
    w = jnp.zeros((1, 1, 3, 3))
    w = w.at[0, 0, 0, 0].set(1.0).at[0, 0, 1].set(jnp.array([0.2, 0.8, 0]))
    w = w.at[0, 0, 2].set(jnp.array([0.6, 0.3, 0.1]))
    everywhere = jnp.ones((1, 3), bool)
    np.testing.assert_allclose(probes.attention_to_first(w, everywhere), [(1 + 0.2 + 0.6) / 3])
    only_last = jnp.array([[False, False, True]])
    np.testing.assert_allclose(probes.attention_to_first(w, only_last), [0.6])
    np.testing.assert_allclose(probes.attention_to_previous(w, everywhere), [(0.2 + 0.3) / 2])


def test_sink_logit_by_hand():
    # One sequence of tokens [<s>=3, 0, 1, 1]; scores s[n, j] below the diagonal.
    s = np.zeros((1, 1, 4, 4), np.float32)
    s[0, 0, 2, :3] = [5.0, 1.0, 9.0]  # n = 2: Delta = 5 - 1 = 4 (key 2 is the diagonal)
    s[0, 0, 3, :4] = [2.0, 1.0, -1.0, 7.0]  # n = 3: Delta = 2 - (1 - 1) / 2 = 2
    tokens = jnp.array([[3, 0, 1, 1]])
    type_mask = jnp.array([True, True, True, False])
    result = probes.sink_logit(jnp.asarray(s), tokens, type_mask)
    # Token 1 sits at n = 2 and n = 3: Delta(1) = (4 + 2) / 2 = 3; token 0 only at n = 1 (skipped).
    np.testing.assert_allclose(result.per_type[0, 1], 3.0)
    assert np.isnan(result.per_type[0, 0]) and np.isnan(result.per_type[0, 2])
    np.testing.assert_allclose(result.mean, [3.0])  # the only selected type present
    np.testing.assert_allclose(result.q10, [3.0])


def test_value_and_residual_norms_by_hand():
    values = jnp.zeros((2, 3, 1, 2)).at[:, 0, 0].set(jnp.array([3.0, 4.0]))
    value_out = 2 * values
    trace = AttentionTrace(jnp.zeros((2, 1, 3, 3)), jnp.zeros((2, 1, 3, 3)), values, value_out)
    wov, v = probes.first_value_norms(trace)
    np.testing.assert_allclose(wov, [10.0])
    np.testing.assert_allclose(v, [5.0])
    by_type = probes.value_norms_by_type(trace, jnp.array([[2, 0, 1], [2, 1, 1]]), 3)
    np.testing.assert_allclose(by_type[0], [0.0, 0.0, 10.0])
    resid = jnp.zeros((1, 3, 2)).at[0, 0].set(jnp.array([6.0, 8.0])).at[0, 1:, 0].set(2.0)
    raw, recentred = probes.first_residual_norm(resid)
    np.testing.assert_allclose([raw, recentred], [10.0, 8.0])


def test_probes_on_a_hand_built_transformer():
    """Zero Q and K give uniform causal attention; V = I and W_O = 2I give known value norms."""
    cfg = TransformerConfig(vocab_size=3, max_len=4, d_model=2, d_mlp=4, n_heads=1)
    model = Transformer(cfg, rngs=nnx.Rngs(0))
    qkv = np.zeros((2, 6), np.float32)
    qkv[:, 4:] = np.eye(2)
    model.blocks[0].attn.qkv[...] = jnp.asarray(qkv)
    model.blocks[0].attn.o.kernel[...] = 2 * jnp.eye(2)
    model.token_embed.embedding[...] = jnp.array([[3.0, -1.0], [0.0, 1.0], [1.0, 0.0]])
    model.pos_embed.embedding[...] = jnp.zeros((4, 2))
    tokens = jnp.array([[0, 1, 2, 1]])
    _, trace = model(tokens, trace=True)
    attn = trace.layers[0].attn
    # Uniform attention over the n + 1 visible keys.
    np.testing.assert_allclose(
        probes.attention_to_first(attn.weights, jnp.ones((1, 4), bool)),
        [np.mean([1, 1 / 2, 1 / 3, 1 / 4])],
        rtol=1e-6,
    )
    sink = probes.sink_logit(attn.logits, tokens, jnp.ones(3, bool))
    np.testing.assert_allclose(sink.mean, [0.0], atol=1e-7)
    # LN([3, -1]) = [1, -1] (eps aside); v = [1, -1]; W_O v = [2, -2].
    wov, v = probes.first_value_norms(attn)
    np.testing.assert_allclose(v, [np.sqrt(2)], rtol=1e-4)
    np.testing.assert_allclose(wov, [2 * np.sqrt(2)], rtol=1e-4)
