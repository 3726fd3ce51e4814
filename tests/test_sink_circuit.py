"""P1's Table 1 grid on a zoo model: the right edits, one vmapped pass equal to single passes."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference_model import randomized

from sinkjax.models import TransformerConfig
from sinkjax.sinks import circuit as sink_circuit
from sinkjax.sinks import metrics as sinks

CFG = TransformerConfig(
    vocab_size=13,
    max_len=16,
    d_model=16,
    n_layers=4,
    n_heads=2,
    d_mlp=32,
    use_bias=True,
    mlp_activation="gelu_new",
    tie_embeddings=True,
)
T = 12
TOKENS = jax.random.randint(jax.random.key(0), (3, T), 0, CFG.vocab_size)
TARGETS = jnp.roll(TOKENS, -1, axis=1)


@pytest.fixture(scope="module")
def model():
    return randomized(CFG, seed=1)


def test_table1_edits_and_coordinates(model):
    interventions, top, random = sink_circuit.table1_interventions(model, T, seed=5)
    assert tuple(interventions) == sink_circuit.TABLE1
    epe = np.asarray(sink_circuit.effective_positions(model, T))
    table = np.asarray(model.pos_embed.embedding[...])[:T]
    mlp0 = np.asarray(model.blocks[0].mlp(jnp.asarray(table)[None])[0])
    np.testing.assert_allclose(epe, table + mlp0, rtol=1e-6)
    # (i) zeroes the three largest |EPE_0| coordinates in every layer, (j) three random ones
    # per layer, drawn without repetition.
    assert set(top) == set(np.argsort(-np.abs(epe[0]))[:3])
    scale_i = np.asarray(interventions["i zero top-3 W_K"].key_input_scale)
    assert (scale_i[:, top] == 0).all() and (scale_i == 0).sum() == 3 * CFG.n_layers
    scale_j = np.asarray(interventions["j zero random W_K (ctrl)"].key_input_scale)
    for layer in range(CFG.n_layers):
        assert set(np.flatnonzero(scale_j[layer] == 0)) == set(random[layer])
    # (d) swaps along EPE_0/EPE_1, (e) along the raw p_0/p_1, both in block 0 only.
    swap_d = interventions["d swap EPE"].mlp_swap
    np.testing.assert_allclose(swap_d.directions[0], epe[0] / np.linalg.norm(epe[0]), rtol=1e-5)
    np.testing.assert_array_equal(swap_d.gate, [1, 0, 0, 0])
    swap_e = interventions["e swap PE (ctrl)"].mlp_swap
    np.testing.assert_allclose(swap_e.directions[1], table[1] / np.linalg.norm(table[1]), rtol=1e-5)


def test_vmapped_scores_equal_single_passes(model):
    interventions, _, _ = sink_circuit.table1_interventions(model, T)
    scores = sink_circuit.score_interventions(model, TOKENS, TARGETS, list(interventions.values()))
    assert scores.bos_attention.shape == scores.cross_entropy.shape == (10, 3)
    for g, iv in enumerate(interventions.values()):
        logits, trace = model(TOKENS, iv, trace=True)
        bos = sinks.bos_attention(sinks.attention_maps(trace))
        np.testing.assert_allclose(scores.bos_attention[g], bos, rtol=1e-5, atol=1e-6)
        log_probs = jax.nn.log_softmax(logits, -1)
        ce = -np.take_along_axis(np.asarray(log_probs), np.asarray(TARGETS)[..., None], -1)
        np.testing.assert_allclose(scores.cross_entropy[g], ce[..., 0].mean(-1), rtol=1e-5)
    # The edits do something: no query bias and no PE move the sink score of a random model.
    assert abs(float(scores.bos_attention[1].mean() - scores.bos_attention[0].mean())) > 1e-4
    assert abs(float(scores.bos_attention[7].mean() - scores.bos_attention[0].mean())) > 1e-4


def test_circuit_needs_learned_positions_and_query_bias():
    rope = randomized(dataclasses.replace(CFG, positions="rope"))
    with pytest.raises(ValueError, match="positions='learned', a query bias"):
        sink_circuit.table1_interventions(rope, T)
    no_bias = randomized(dataclasses.replace(CFG, use_bias=False))
    with pytest.raises(ValueError, match="query bias=False"):
        sink_circuit.effective_positions(no_bias, T)
