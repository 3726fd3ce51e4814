"""Zoo variants (sinks spec T1-T3) against an independent float64 numpy forward pass.

Every parameter is re-drawn at random (LayerNorm affine and biases included) so that each one
matters, then the model's logits and attention traces are compared with `reference`.
"""

import dataclasses

import jax
import numpy as np
import pytest
from flax import nnx
from reference_model import randomized, reference

from sinkjax.models import Transformer, TransformerConfig
from sinkjax.models.layers import alibi_slopes

BASE = TransformerConfig(vocab_size=11, max_len=12, d_model=16, n_layers=2, n_heads=2, d_mlp=32)
TOKENS = jax.random.randint(jax.random.key(1), (2, 12), 0, 11)


VARIANTS = {
    "default": {},
    "gpt2_like": dict(use_bias=True, mlp_activation="gelu_new", tie_embeddings=True),
    "qv_bias_no_k_bias": dict(use_bias=True, key_bias=False),
    # Softmax is blind to b_K, sigmoid is not.
    "k_bias_only_sigmoid": dict(key_bias=True, attention="sigmoid"),
    "v_bias_only_nope": dict(value_bias=True, query_bias=True, positions="none"),
    "sinusoidal": dict(positions="sinusoidal"),
    "relu_rope": dict(attention="relu", positions="rope", rope_base=100.0),
    "kbias": dict(attention="softmax_kbias", use_bias=True),
    "kbias_alibi": dict(attention="softmax_kbias", positions="alibi"),
    "sink_token": dict(sink_token=True),
    "sink_token_rope": dict(sink_token=True, positions="rope", mlp_activation="gelu_new"),
    "sink_token_alibi_sigmoid": dict(sink_token=True, positions="alibi", attention="sigmoid"),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_matches_reference(name):
    cfg = dataclasses.replace(BASE, **VARIANTS[name])
    model = randomized(cfg)
    logits, trace = model(TOKENS, trace=True)
    expected, maps = reference(model, TOKENS)
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model(TOKENS), logits, rtol=1e-6, atol=1e-6)
    has_slot = cfg.sink_token or cfg.attention == "softmax_kbias"
    for layer, layer_trace in enumerate(trace.layers):
        attn = layer_trace.attn
        assert attn.weights.shape == attn.logits.shape == (2, 2, 12, 12)
        assert attn.values.shape == (2, 12, 2, 8) and layer_trace.resid_post.shape == (2, 12, 16)
        weights = np.stack([maps[b][layer][0] for b in range(2)])
        np.testing.assert_allclose(attn.weights, weights, rtol=1e-5, atol=1e-6)
        if has_slot:
            slot = np.stack([maps[b][layer][1] for b in range(2)])
            np.testing.assert_allclose(attn.slot_weights, slot, rtol=1e-5, atol=1e-6)
            assert attn.slot_logits.shape == (2, 2, 12)
        else:
            assert attn.slot_weights is None and attn.slot_logits is None
        if cfg.attention == "softmax" or cfg.attention == "softmax_kbias":
            total = attn.weights.sum(-1) + (attn.slot_weights if has_slot else 0)
            np.testing.assert_allclose(total, 1.0, rtol=1e-5)
    assert trace.embed.shape == (2, 12, 16)


def test_optional_parameters_exist_only_when_switched_on():
    def params(**kw):
        cfg = dataclasses.replace(BASE, **kw)
        model = nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(0)))
        return {".".join(map(str, p)) for p, _ in nnx.to_flat_state(nnx.state(model, nnx.Param))}

    default = params()
    assert not any(
        name.endswith(("q_bias", "kv_bias", "k_bias", "v_bias", "slot_key", "sink_embed"))
        for name in default
    )
    assert params(positions="rope") == default - {"pos_embed.embedding"}
    assert params(tie_embeddings=True) == default - {"head.kernel"}
    assert params(sink_token=True) == default | {"sink_embed"}
    assert params(attention="softmax_kbias") == default | {
        f"blocks.{i}.attn.slot_key" for i in range(2)
    }
    assert params(key_bias=True) == default | {f"blocks.{i}.attn.k_bias" for i in range(2)}
    assert params(mlp_activation="gelu_new", attention="sigmoid") == default


def test_default_model_is_unchanged():
    """Golden values recorded before the zoo extensions (init order of existing checkpoints);
    a parameter created last (sink token) or dropped (tied head) leaves all others identical."""
    model = Transformer(BASE, rngs=nnx.Rngs(3))
    golden = [
        (model.blocks[1].attn.qkv, [0.1407570242881775, -0.05427199602127075, 0.14894509315490723]),
        (model.pos_embed.embedding, [-0.32190296053886414, -1.903960108757019, 0.638420581817627]),
        (model.head.kernel, [-0.11301857233047485, -0.010808289051055908, 0.118874192237854]),
    ]
    for param, values in golden:
        np.testing.assert_array_equal(param[...][2, :3], np.float32(values))
    expected = [-0.6460282206535339, 0.5176778435707092, 0.32450348138809204, -0.0371486209332]
    np.testing.assert_allclose(model(TOKENS)[1, 5, :4], expected, rtol=1e-6, atol=1e-7)
    biased = Transformer(dataclasses.replace(BASE, use_bias=True), rngs=nnx.Rngs(3))
    np.testing.assert_array_equal(
        biased.blocks[1].attn.kv_bias[...][:3],
        np.float32([-0.0638161301612854, 0.10583257675170898, 0.11764103174209595]),
    )
    default = nnx.to_flat_state(nnx.state(model, nnx.Param))
    for kw in (dict(sink_token=True), dict(tie_embeddings=True)):
        other = Transformer(dataclasses.replace(BASE, **kw), rngs=nnx.Rngs(3))
        other = dict(nnx.to_flat_state(nnx.state(other, nnx.Param)))
        for path, value in default:
            if path in other:
                np.testing.assert_array_equal(other[path][...], value[...])


def test_alibi_slopes_follow_press_et_al():
    np.testing.assert_array_equal(alibi_slopes(4), np.float32([2**-2, 2**-4, 2**-6, 2**-8]))
    # Not a power of two: the 4-head slopes, then every other slope of the 8-head set.
    np.testing.assert_allclose(alibi_slopes(6), [2**-2, 2**-4, 2**-6, 2**-8, 2**-1, 2**-3])


def test_traced_sink_token_model_under_jit():
    cfg = dataclasses.replace(BASE, sink_token=True, attention="relu")
    model = randomized(cfg)
    logits, trace = nnx.jit(lambda m, x: m(x, trace=True))(model, TOKENS)
    np.testing.assert_allclose(logits, model(TOKENS), rtol=1e-5, atol=1e-6)
    # ReLU attention counts the sink as a visible key: token i divides by i + 2.
    attn = trace.layers[0].attn
    expected = np.maximum(np.asarray(attn.slot_logits), 0) / np.arange(2, 14)
    np.testing.assert_allclose(attn.slot_weights, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(positions="sinusoidal", d_model=15, n_heads=1), "even d_model"),
        (dict(positions="rope", d_model=12, n_heads=4), "even d_head"),
        (dict(sink_token=True, attention="softmax_kbias"), "pick one"),
        (dict(positions="t5"), "positions must be one of"),
        (dict(mlp_activation="swish"), "mlp_activation must be one of"),
        (dict(attention="elu"), "attention must be one of"),
    ],
)
def test_config_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(BASE, **kw)
