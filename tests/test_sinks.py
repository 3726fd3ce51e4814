"""Sink metrics (spec §4) on hand-built inputs with answers computed by hand.

Inputs are built in numpy and every metric is called through `run` (one `jit` compile per
call): op-by-op eager dispatch compiles each primitive separately and is several times slower
on a small CPU.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sinkjax.models import AttentionTrace, LayerTrace, ModelTrace
from sinkjax.sinks import metrics as sinks


def run(fn, *args, **static):
    """fn(*args, **static) under jit; keyword arguments are static."""
    return jax.jit(functools.partial(fn, **static))(*args)


def harmonic(n: int) -> float:
    return sum(1.0 / k for k in range(1, n + 1))


def first_token_map(n_pos: int) -> np.ndarray:
    """Every query puts all its attention on key 0."""
    attn = np.zeros((n_pos, n_pos), np.float32)
    attn[:, 0] = 1.0
    return attn


def uniform_map(n_pos: int) -> np.ndarray:
    return np.tril(np.ones((n_pos, n_pos), np.float32)) / np.arange(1, n_pos + 1)[:, None]


def stack(*maps, n_samples: int = 1, n_heads: int = 1) -> np.ndarray:
    """(N, L, H, T, T) with layer l holding maps[l] for every sample and head."""
    layers = np.stack(maps)[None, :, None]
    return np.broadcast_to(layers, (n_samples, len(maps), n_heads) + layers.shape[-2:]).copy()


# ---------------------------------------------------------------------------------------------
# M1


def test_causal_softmax_and_proxy_attention():
    scores = np.array([[0.0, 9.0], [np.log(3.0), 0.0]], np.float32)
    np.testing.assert_allclose(run(sinks.causal_softmax, scores), [[1, 0], [0.75, 0.25]], 1e-6)
    sim = np.array([[2.0, 5.0, 5.0], [1.0, 3.0, 5.0], [-1.0, 2.0, 1.0]], np.float32)
    np.testing.assert_allclose(
        run(sinks.proxy_attention, sim), [[1, 0, 0], [0.25, 0.75, 0], [-0.5, 1.0, 0.5]], 1e-6
    )
    np.testing.assert_allclose(
        run(sinks.proxy_attention, sim, signed=True)[2], [0.25, 0.5, 0.25], 1e-6
    )
    np.testing.assert_array_equal(run(sinks.proxy_attention, np.zeros((3, 3), np.float32)), 0.0)


def test_attention_maps_stacks_layers():
    def layer(value):
        weights = np.full((2, 3, 4, 4), value, np.float32)
        values, value_out = np.zeros((2, 4, 3, 1)), np.zeros((2, 4, 3, 2))
        resid = np.zeros((2, 4, 2))
        return LayerTrace(AttentionTrace(weights, weights, values, value_out), resid, resid)

    trace = ModelTrace(np.zeros((2, 4, 2)), (layer(1.0), layer(2.0)))
    maps = sinks.attention_maps(trace)
    assert maps.shape == (2, 2, 3, 4, 4)
    np.testing.assert_array_equal(maps[:, 0], 1.0)
    np.testing.assert_array_equal(maps[:, 1], 2.0)
    no_attn = ModelTrace(trace.embed, (LayerTrace(None, trace.embed, trace.embed),))
    with pytest.raises(ValueError, match="no attention"):
        sinks.attention_maps(no_attn)


# ---------------------------------------------------------------------------------------------
# M2, M3 and the uniform nulls


def test_importance_of_first_token_identity_and_hand_map():
    maps = np.stack(
        [
            first_token_map(3),
            np.eye(3, dtype=np.float32),
            np.array([[1.0, 0, 0], [0.6, 0.4, 0], [0.2, 0.2, 0.6]], np.float32),
        ]
    )
    np.testing.assert_allclose(
        run(sinks.importance, maps),
        [[1, 0, 0], [1 / 3, 1 / 2, 1], [1.8 / 3, 0.6 / 2, 0.6]],
        rtol=1e-6,
    )


def test_uniform_nulls_match_the_harmonic_closed_form_and_the_spec_numbers():
    alpha = run(sinks.importance, sinks.uniform_attention(64))
    expected = [(harmonic(64) - harmonic(j)) / (64 - j) for j in range(64)]
    np.testing.assert_allclose(alpha, expected, rtol=1e-5)
    np.testing.assert_allclose(sinks.uniform_importance(64), expected, rtol=1e-6)
    np.testing.assert_allclose(sinks.uniform_attention(4), uniform_map(4))
    # The spec's 0.074 is H_64 / 64 and its 0.034 is (H_40 - H_20) / 20: both check out.
    np.testing.assert_allclose(alpha[0], 0.0741233, atol=1e-6)
    assert round(float(alpha[0]), 3) == 0.074
    bos = run(sinks.bos_attention_per_head, sinks.uniform_attention(40))
    np.testing.assert_allclose(bos, (harmonic(40) - harmonic(20)) / 20, rtol=1e-5)
    np.testing.assert_allclose(sinks.uniform_bos_attention(40), 0.0340401, atol=1e-6)
    assert round(float(sinks.uniform_bos_attention(40)), 3) == 0.034
    # Odd T: queries i in [T//2, T) = {2, 3, 4} at T = 5.
    np.testing.assert_allclose(sinks.uniform_bos_attention(5), (1 / 3 + 1 / 4 + 1 / 5) / 3)
    np.testing.assert_allclose(
        run(sinks.mixing_concentration, uniform_map(5)), sinks.uniform_concentration(5), 1e-6
    )
    np.testing.assert_allclose(sinks.uniform_concentration(4), [1, 1 / 2, 1 / 3, 1 / 4])


def test_uniform_sink_rate_null_flips_between_t9_and_t10():
    # alpha_0 = H_T / T: 0.314 at T = 9 and 0.293 at T = 10 (eps = 0.3).
    assert float(sinks.uniform_sink_rate(9)) == 1.0
    assert float(sinks.uniform_sink_rate(10)) == 0.0
    assert float(sinks.uniform_sink_rate(64, eps=0.07)) == 1.0
    assert float(sinks.uniform_sink_rate(64, eps=0.015, position=63)) == 1.0  # alpha_63 = 1/64
    alpha = run(sinks.importance, stack(uniform_map(9)))
    assert float(run(sinks.sink_rate, alpha)) == 1.0


def test_sink_rate_thresholds_layers_and_mean_alpha():
    # 2 samples x 3 layers x 2 heads, T = 4: alpha_0 set directly, the other keys 0.
    alpha = np.zeros((2, 3, 2, 4), np.float32)
    alpha[..., 0] = [
        [[0.9, 0.1], [0.35, 0.25], [0.45, 0.6]],
        [[0.9, 0.1], [0.25, 0.25], [0.1, 0.6]],
    ]

    def report(alpha):
        return (
            sinks.sink_rate_by_layer(alpha),
            sinks.sink_rate(alpha),
            sinks.sink_rate(alpha, first_layer=1),
            sinks.sink_rate(alpha, 0.5, first_layer=2),
            sinks.sink_rate(alpha, position=1),
            sinks.sink_rates(alpha, first_layer=1),
        )

    by_layer, everywhere, from_1, strict_from_2, key_1, rates = run(report, alpha)
    np.testing.assert_allclose(by_layer, [0.5, 0.25, 0.75])
    np.testing.assert_allclose(
        [everywhere, from_1, strict_from_2, key_1], [6 / 12, 4 / 8, 2 / 4, 0]
    )
    np.testing.assert_allclose(rates.thresholds, [0.2, 0.3, 0.4, 0.5])
    np.testing.assert_allclose(rates.rates, [7 / 8, 4 / 8, 3 / 8, 2 / 8])
    np.testing.assert_allclose(rates.mean_alpha, 2.85 / 8, rtol=1e-6)
    with pytest.raises(ValueError, match="first_layer"):
        sinks.sink_rate(alpha, first_layer=3)
    with pytest.raises(ValueError, match="position"):
        sinks.sink_rate(alpha, position=4)


# ---------------------------------------------------------------------------------------------
# M4, M5


def test_bos_attention_band_and_head_map():
    # Layers 0..3: identity, all-on-0, uniform, all-on-0. The default band for L = 4 is [1, 3).
    attn = stack(
        np.eye(4, dtype=np.float32),
        first_token_map(4),
        uniform_map(4),
        first_token_map(4),
        n_samples=3,
        n_heads=2,
    )

    def report(attn):
        return (
            sinks.bos_attention(attn),
            sinks.bos_attention(attn, (0, 1)),
            sinks.bos_attention(attn, (0, 4)),
            sinks.bos_head_map(attn),
        )

    default, first_layer, every_layer, head_map = run(report, attn)
    uniform_late = (1 / 3 + 1 / 4) / 2  # queries i = 2, 3 of the uniform map
    np.testing.assert_allclose(default, [(1 + uniform_late) / 2] * 3, rtol=1e-6)
    np.testing.assert_allclose(first_layer, [0, 0, 0])
    np.testing.assert_allclose(every_layer, [(2 + uniform_late) / 4] * 3, rtol=1e-6)
    np.testing.assert_allclose(head_map, np.repeat([[0, 1, uniform_late, 1]], 2, 0).T, 1e-6)
    assert sinks.default_band(12) == (3, 11)
    with pytest.raises(ValueError, match="band"):
        sinks.bos_attention(attn, band=(2, 5))
    with pytest.raises(ValueError, match="band"):
        sinks.bos_attention(attn[:, :1])  # the default band (0, 0) of one layer is empty


def test_mean_se_and_percent_of_baseline():
    scores = np.array([0.5, 0.7, 0.9], np.float32)
    summary = run(sinks.mean_and_se, scores)
    np.testing.assert_allclose([summary.mean, summary.se], [0.7, 0.2 / np.sqrt(3)], rtol=1e-5)
    baseline = np.array([1.0, 2.5], np.float32)
    np.testing.assert_allclose(run(sinks.percent_of_baseline, scores, baseline), 40.0, 1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        sinks.mean_and_se(scores[:1])


def test_sink_profile_is_mean_importance():
    attn = stack(first_token_map(3), np.eye(3, dtype=np.float32))  # 1 sample, 2 layers, 1 head
    profile = run(lambda a: sinks.sink_profile(sinks.importance(a)), attn)
    np.testing.assert_allclose(profile, [(1 + 1 / 3) / 2, (0 + 1 / 2) / 2, (0 + 1) / 2], 1e-6)


# ---------------------------------------------------------------------------------------------
# M6


def planted_layer():
    """d = 2, one head with d_h = 2: W_Q = I, W_K = diag(2, 1), W_V = I, b_Q = (1, 0), b_K = (1, 1).

    The keys x_j W_K are (10, 0), (0, 1), (2, 1), so Delta = (10, 0, 2): planted at position 0.
    """
    qkv = np.zeros((2, 6), np.float32)
    qkv[:, :2] = np.eye(2)
    qkv[:, 2:4] = np.diag([2.0, 1.0])
    qkv[:, 4:] = np.eye(2)
    x = np.array([[5.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)
    return x, qkv, np.array([[1.0, 0.0]], np.float32), np.array([[1.0, 1.0]], np.float32)


def biased_scores(x, qkv, b_q, b_k):
    """q_i . k_j with the biases, straight from the fused kernel (head 0 of a 1-head model)."""
    return (x @ qkv[:, :2] + b_q[0]) @ (x @ qkv[:, 2:4] + b_k[0]).T


def test_head_kernels_split_layout():
    qkv = np.arange(4 * 12, dtype=np.float32).reshape(4, 12)  # d = 4, 2 heads, d_h = 2
    kernels = run(sinks.head_kernels, qkv, n_heads=2)
    assert kernels.key.shape == (2, 4, 2)
    np.testing.assert_array_equal(kernels.query[0], qkv[:, 0:2])
    np.testing.assert_array_equal(kernels.key[1], qkv[:, 6:8])  # K head 1 = columns d + 2..d + 4
    np.testing.assert_array_equal(kernels.value[1], qkv[:, 10:12])
    np.testing.assert_array_equal(sinks.split_heads(np.arange(4.0), 2), [[0, 1], [2, 3]])
    with pytest.raises(ValueError, match="n_heads"):
        sinks.split_heads(np.arange(5.0), 2)


def test_logit_terms_on_a_planted_delta():
    x, qkv, b_q, b_k = planted_layer()

    def report(x, qkv, b_q, b_k):
        terms = sinks.logit_terms(x, sinks.head_kernels(qkv, 1), b_q, b_k)
        no_key_bias = sinks.logit_terms(x, sinks.head_kernels(qkv, 1), b_q)
        return terms, no_key_bias, sinks.min_subtracted(terms.t3), sinks.delta_dominance(terms.t3)

    terms, no_key_bias, tilde, dominance = run(report, x, qkv, b_q, b_k)
    np.testing.assert_allclose(terms.t3, [[10, 0, 2]])
    np.testing.assert_allclose(terms.t1, [[[50, 0, 10], [0, 1, 1], [10, 1, 3]]])
    np.testing.assert_allclose(terms.t2, [[5, 1, 2]])  # x_i . b_K (W_Q = I)
    np.testing.assert_allclose(terms.t4, [1])
    total = terms.t1 + terms.t2[..., :, None] + terms.t3[..., None, :] + terms.t4[:, None, None]
    np.testing.assert_allclose(total[0], biased_scores(x, qkv, b_q, b_k), rtol=1e-6)
    np.testing.assert_allclose(tilde, [[10, 0, 2]])
    np.testing.assert_allclose(dominance, [10 - (0 + 2) / 2])
    np.testing.assert_allclose(no_key_bias.t2, 0.0)
    np.testing.assert_allclose(no_key_bias.t4, 0.0)
    np.testing.assert_allclose(no_key_bias.t3, terms.t3)
    shifted = run(sinks.min_subtracted, np.array([3.0, -1.0, 0.0], np.float32))
    np.testing.assert_allclose(shifted, [4, 0, 1])


def test_logit_advantage_attribution():
    x, qkv, b_q, b_k = planted_layer()

    def report(x, qkv, b_q, b_k):
        terms = sinks.logit_terms(x, sinks.head_kernels(qkv, 1), b_q, b_k)
        return sinks.logit_advantage(terms, d_head=2)

    advantage = run(report, x, qkv, b_q, b_k)
    root = np.sqrt(2.0)
    # Query 1: T1 (0, 1) -> 0 - 0.5; Delta (10, 0) -> 10 - 5.
    # Query 2: T1 (10, 1, 3) -> 10 - 14/3; Delta (10, 0, 2) -> 10 - 4.
    np.testing.assert_allclose(advantage.content, [[0, -0.5 / root, 16 / 3 / root]], rtol=1e-6)
    np.testing.assert_allclose(advantage.delta, [[0, 5 / root, 6 / root]], rtol=1e-6)
    # The total is the advantage read off the real causal scores s = q . k / sqrt(d_h).
    scores = biased_scores(x, qkv, b_q, b_k) / root
    direct = [scores[i, 0] - scores[i, : i + 1].mean() for i in range(3)]
    np.testing.assert_allclose(advantage.total[0], direct, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# M7–M10


def test_epe_and_massive_coordinates():
    pos_embed = np.array([[1.0, -2.0], [0.5, 3.0]], np.float32)
    epe = run(sinks.effective_positional_embedding, pos_embed, mlp0=jax.nn.relu)
    np.testing.assert_allclose(epe, [[2, -2], [1, 6]])
    spike = np.full(16, 0.5, np.float32)
    spike[5] = -40.0
    # |v| = (1, 4, 2, 3): nothing passes mean + 3 std = 5.85, so the top-2 fallback applies.
    flat = np.array([1.0, -4.0, 2.0, 3.0], np.float32)

    def report(spike, flat):
        return (
            sinks.massive_coordinates(spike),
            sinks.massive_coordinates(flat),
            sinks.massive_coordinates(flat, fallback_k=1),
            sinks.massive_coordinates(flat, n_sigma=0.0),  # above the mean 2.5
        )

    masks = run(report, spike, flat)
    expected = [[5], [1, 3], [1], [1, 3]]
    assert [np.flatnonzero(mask).tolist() for mask in masks] == expected
    with pytest.raises(ValueError, match="fallback_k"):
        sinks.massive_coordinates(flat, fallback_k=5)


def test_bias_epe_alignment_and_gap():
    b_q = np.array([[1.0, 0.0]], np.float32)
    w_k = np.eye(2, dtype=np.float32)[None]
    epe = np.array([[3.0, 0.0], [0.0, 2.0], [-1.0, 0.0]], np.float32)
    cosines, gap = run(
        lambda *a: (
            sinks.bias_epe_alignment(*a),
            sinks.alignment_gap(sinks.bias_epe_alignment(*a)),
        ),
        b_q,
        w_k,
        epe,
    )
    np.testing.assert_allclose(cosines, [[1, 0, -1]], atol=1e-7)
    np.testing.assert_allclose(gap, [1.5])


def test_coordinate_contributions_and_ratio():
    x, qkv, b_q, _ = planted_layer()

    def gamma_and_delta(x, qkv, b_q):
        kernels = sinks.head_kernels(qkv, 1)
        gamma = sinks.coordinate_contributions(b_q, kernels.key)
        return gamma, sinks.logit_terms(x, kernels, b_q).t3

    gamma, delta = run(gamma_and_delta, x, qkv, b_q)
    np.testing.assert_allclose(gamma, [[2, 0]])  # row d of W_K dotted with b_Q
    np.testing.assert_allclose(delta, (x @ np.asarray(gamma).T).T, rtol=1e-6)  # x_j . gamma

    gamma = np.array([[4.0, -1.0, 1.0, 8.0], [-2.0, 1.0, 2.0, 0.0]], np.float32)
    massive = np.array([True, False, False, True])

    def contrast_and_ratio(gamma, massive):
        contrast = sinks.coordinate_contrast(gamma, massive)
        return contrast, sinks.coordinate_ratio(contrast)

    contrast, ratio = run(contrast_and_ratio, gamma, massive)
    np.testing.assert_allclose(contrast.massive, [6, 1])
    np.testing.assert_allclose(contrast.other, [1, 1.5])
    np.testing.assert_allclose(ratio, 3.5 / 1.25, rtol=1e-6)


def test_epe_validation_variants():
    token_embed = np.array([[[1.0, -1.0], [0.0, 1.0]]], np.float32)
    pos_embed = np.array([[1.0, 2.0], [2.0, -1.0]], np.float32)
    linear = np.array([[1.0, 2.0], [0.0, 1.0]], np.float32)

    def report(token_embed, pos_embed):
        return (
            # Linear MLP: R - O = p + MLP(p) = EPE exactly.
            sinks.epe_validation(token_embed, pos_embed, lambda u: u @ linear),
            sinks.epe_validation(token_embed, pos_embed, jax.nn.relu),
            # Full block 0 as a cumulative sum over positions: R - O = cumsum(p).
            sinks.epe_validation(
                token_embed, pos_embed, jax.nn.relu, block0=lambda u: jnp.cumsum(u, axis=-2)
            ),
        )

    linear_cos, relu_cos, block_cos = run(report, token_embed, pos_embed)
    np.testing.assert_allclose(linear_cos, [[1, 1]], rtol=1e-6)
    # ReLU MLP at position 0: EPE = (2, 4); x = (2, 1), R = (4, 2), O = (2, -1): R - O = (2, 3).
    # Position 1: EPE = (4, -1); x = (2, 0), R = (4, 0), O = (0, 2): R - O = (4, -2).
    np.testing.assert_allclose(relu_cos, [[16 / np.sqrt(260), 18 / np.sqrt(340)]], rtol=1e-6)
    # cumsum(p) = ((1, 2), (3, 1)): cos((2, 4), (1, 2)) = 1, cos((4, -1), (3, 1)) = 11/sqrt(170).
    np.testing.assert_allclose(block_cos, [[1, 11 / np.sqrt(170)]], rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# M11


def test_massive_activation_ratio_and_key_zero_factors():
    hidden = np.zeros((2, 3, 2), np.float32)
    hidden[:, 0] = [6.0, 8.0]  # ||h_0|| = 10, planted
    hidden[:, 1, 0], hidden[:, 2, 1] = 1.0, 3.0  # the other norms are 1 and 3
    queries = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]], np.float32)
    keys = np.array([[2.0, 0.0], [5.0, 5.0], [1.0, 1.0]], np.float32)

    def report(hidden, queries, keys):
        norms = sinks.position_norms(hidden)
        return norms, norms.ratio, sinks.key_zero_factors(queries, keys)

    norms, ratio, factors = run(report, hidden, queries, keys)
    np.testing.assert_allclose(norms.first, [10, 10])
    np.testing.assert_allclose(norms.rest, [2, 2])
    np.testing.assert_allclose(ratio, [5, 5])
    np.testing.assert_allclose(factors.cosine, [1, 0, 1 / np.sqrt(2)], atol=1e-6)
    np.testing.assert_allclose(factors.norm_product, [2, 4, 2 * np.sqrt(18)], rtol=1e-6)
    np.testing.assert_allclose(factors.cosine * factors.norm_product, queries @ keys[0], 1e-5)


# ---------------------------------------------------------------------------------------------
# M12


def test_mixing_concentration_and_output_norm():
    maps = np.stack([np.eye(2), first_token_map(2), [[1.0, 0.0], [0.6, 0.4]]]).astype(np.float32)
    np.testing.assert_allclose(
        run(sinks.mixing_concentration, maps), [[1, 1], [1, 1], [1, 0.52]], rtol=1e-6
    )
    outputs = np.array([[3.0, 4.0], [0.0, 2.0]], np.float32)
    np.testing.assert_allclose(run(sinks.output_norm, outputs), [5, 2])


def test_cross_sample_cosine():
    states = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]], np.float32)
    np.testing.assert_allclose(
        run(sinks.cross_sample_cosine, states), (0 + 2 / np.sqrt(2)) / 3, rtol=1e-6
    )
    # (N = 2, L = 2, d): layer 0 aligned across samples, layer 1 orthogonal.
    per_layer = np.array([[[1.0, 1.0], [1.0, 0.0]], [[3.0, 3.0], [0.0, 1.0]]], np.float32)
    np.testing.assert_allclose(run(sinks.cross_sample_cosine, per_layer), [1, 0], atol=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        sinks.cross_sample_cosine(states[:1])


def test_rank_auc_by_hand():
    # Pairs: 0.9 beats all 3; 0.4 beats 0.1, ties 0.4, loses to 0.5: 4.5 / 6.
    positive, negative = np.array([0.9, 0.4]), np.array([0.1, 0.4, 0.5])
    np.testing.assert_allclose(run(sinks.rank_auc, positive, negative), 0.75)


def test_position_zero_probe_auc():
    planted = np.random.default_rng(0).normal(size=(8, 6, 4)).astype(np.float32)
    planted[:, 0, 2] += 20.0
    # Position 0 apart by a constant offset; and identical states everywhere (all scores tie).
    offset = np.zeros((8, 6, 4), np.float32)
    offset[:, 0, 1] = -1.0
    identical = np.ones((8, 6, 4), np.float32)
    aucs = run(jax.vmap(sinks.position_zero_probe_auc), np.stack([planted, offset, identical]))
    np.testing.assert_allclose(aucs, [1.0, 1.0, 0.5])
    with pytest.raises(ValueError, match="at least 2"):
        sinks.position_zero_probe_auc(planted[:1])


# ---------------------------------------------------------------------------------------------
# M13


def test_next_token_cross_entropy_and_summary():
    probs = np.array([[[0.5, 0.25, 0.25], [0.1, 0.1, 0.8], [1 / 3, 1 / 3, 1 / 3]]], np.float32)
    tokens = np.array([[2, 0, 2]])  # position 0 predicts token 0, position 1 predicts token 2
    ce = run(sinks.next_token_cross_entropy, np.log(probs), tokens)
    np.testing.assert_allclose(ce, [[np.log(2), -np.log(0.8)]], rtol=1e-6)
    ce = run(sinks.next_token_cross_entropy, np.zeros((2, 3, 4), np.float32), np.zeros((2, 3), int))
    np.testing.assert_allclose(ce, np.full((2, 2), np.log(4)), rtol=1e-6)
    summary = run(sinks.summarize_cross_entropy, np.array([[1.0, 3.0], [2.0, 6.0]], np.float32))
    np.testing.assert_allclose(summary.per_position, [1.5, 4.5])
    np.testing.assert_allclose(summary.mean, 3.0)
    np.testing.assert_allclose(summary.se, np.std([2.0, 4.0], ddof=1) / np.sqrt(2), rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# M15


def test_onset_half_crossing_and_max_slope():
    def onset(steps, values):
        result = run(sinks.onset, np.array(steps), np.array(values, np.float32))
        return [float(result.half_step), float(result.max_slope_step)]

    # Normalised (0, 0, .25, .75, 1, 1): 0.5 first reached at step 30; steepest 20 -> 30.
    assert onset([0, 10, 20, 30, 40, 50], [0, 0, 1, 3, 4, 4]) == [30, 25]
    # Overshoot: normalised (0, 1, 0.5); half of the final 0.5 is first reached at step 1.
    assert onset([0, 1, 2], [0, 4, 2]) == [1, 0.5]
    # Uneven spacing: the slope is per step (5/100 < 1/10), not per interval.
    assert onset([0, 100, 110], [0, 5, 6]) == [100, 105]
    assert np.isnan(onset([0, 1, 2], [1, 1, 1])).all()
    with pytest.raises(ValueError, match="same length"):
        sinks.onset(np.arange(3), np.ones(4))


# ---------------------------------------------------------------------------------------------
# jit / vmap


def test_metrics_jit_and_vmap():
    rng = np.random.default_rng(1)
    attn = run(sinks.proxy_attention, rng.uniform(size=(3, 4, 2, 6, 6)).astype(np.float32))

    @functools.partial(jax.jit, static_argnames="band")
    def summary(attn, eps, band):
        alpha = sinks.importance(attn)
        return alpha, sinks.sink_rate(alpha, eps), sinks.bos_attention(attn, band)

    alpha, rate, bos = summary(attn, 0.3, (1, 3))
    np.testing.assert_allclose(rate, np.mean(np.asarray(alpha)[..., 0] > 0.3), rtol=1e-6)
    np.testing.assert_allclose(bos, np.asarray(attn)[:, 1:3, :, 3:, 0].mean((1, 2, 3)), 1e-5)
    assert float(summary(attn, 1.1, (1, 3))[1]) == 0.0  # a new traced eps, same program

    # Stacked layers: vmap the per-layer decomposition over L = 3 layers of a 2-head model.
    x = rng.normal(size=(3, 5, 6, 4)).astype(np.float32)  # (L, N, T, d)
    qkv = rng.normal(size=(3, 4, 12)).astype(np.float32)
    b_q = np.ones((3, 2, 2), np.float32)

    def dominance(x, qkv, b_q):
        return sinks.delta_dominance(sinks.logit_terms(x, sinks.head_kernels(qkv, 2), b_q).t3)

    stacked = run(jax.vmap(dominance), x, qkv, b_q)
    assert stacked.shape == (3, 5, 2)
    keys = np.einsum("ntd,de->nte", x[2], qkv[2, :, 4:8]).reshape(5, 6, 2, 2)
    delta = np.einsum("nthe,he->nht", keys, b_q[2])
    np.testing.assert_allclose(stacked[2], delta[..., 0] - delta[..., 1:].mean(-1), 1e-4, 1e-5)
    ramps = np.triu(np.ones((3, 4), np.float32), k=1)  # the rows rise at steps 1, 2, 3
    onsets = run(jax.vmap(sinks.onset, in_axes=(None, 0)), np.arange(4), ramps)
    np.testing.assert_allclose(onsets.half_step, [1, 2, 3])
