"""Interventions I1-I9 (sinks spec §4) against the independent reference forward pass.

Each edit is applied through `Interventions` (data, one compiled pass) and compared with the
same edit written out from its definition in `reference_model.reference`; known answers are
checked where an edit has one (e.g. p_0 <- p_1 makes the position-0 embedding e_0 + p_1).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from reference_model import randomized, reference

from sinkjax.interventions import Interventions, key_coordinate_scale, position_edit, stack
from sinkjax.models import TransformerConfig

CFG = TransformerConfig(
    vocab_size=11,
    max_len=12,
    d_model=16,
    n_layers=2,
    n_heads=2,
    d_mlp=32,
    use_bias=True,
    mlp_activation="gelu_new",
    tie_embeddings=True,
)
N, D, L, H = 10, CFG.d_model, CFG.n_layers, CFG.n_heads
TOKENS = np.asarray(jax.random.randint(jax.random.key(3), (2, N), 0, CFG.vocab_size))
RNG = np.random.default_rng(0)
U0, U1 = RNG.standard_normal(D), RNG.standard_normal(D)
PATCH = RNG.standard_normal(D)
NONE = Interventions.none(L, H)

# name -> (Interventions, the same edit for `reference`)
CASES = {
    "I1 no query bias": (NONE.scale_query_bias(0.0), {"query_bias_scale": np.zeros((L, H))}),
    "I1 one head x2": (
        NONE.scale_query_bias(2.0, layer=1, head=0),
        {"query_bias_scale": np.array([[1.0, 1.0], [2.0, 1.0]])},
    ),
    "I2 p0 <- p1": (
        NONE.mix_positions(position_edit(N, "replace")),
        {"pos_mix": position_edit(N, "replace")},
    ),
    "I2 swap p0, p3": (
        NONE.mix_positions(position_edit(N, "swap", source=3)),
        {"pos_mix": position_edit(N, "swap", source=3)},
    ),
    "I3 swap MLP output": (NONE.swap_mlp_output(U0, U1, layer=0), {"swap": (U0, U1, 0)}),
    "I4 zero e0": (
        NONE.scale_token_embedding(np.r_[0.0, np.ones(N - 1)]),
        {"token_scale": np.r_[0.0, np.ones(N - 1)]},
    ),
    "I5 no MLP": (NONE.remove_mlp(slice(None)), {"mlp_scale": np.zeros(L)}),
    "I6 no PE": (
        NONE.mix_positions(position_edit(N, "none")),
        {"pos_mix": np.zeros((N, N))},
    ),
    "I7 zero key rows": (
        NONE.scale_key_coordinates(key_coordinate_scale(L, D, [[1, 5], [2, 7]])),
        {"key_rows": key_coordinate_scale(L, D, [[1, 5], [2, 7]])},
    ),
    "I8 remove head": (
        NONE.zero_attention(1, head=1),
        {"attn_scale": np.array([[1.0, 1.0], [1.0, 0.0]])},
    ),
    "I9 patch h0": (NONE.patch_first_residual(0, PATCH), {"patch": (0, PATCH)}),
}


@pytest.fixture(scope="module")
def model():
    return randomized(CFG, seed=4)


@pytest.fixture(scope="module")
def forward(model):
    graphdef, state = nnx.split(model)

    @jax.jit
    def run(interventions):
        return nnx.merge(graphdef, state)(jnp.asarray(TOKENS), interventions)

    return run


@pytest.mark.parametrize("name", list(CASES))
def test_intervention_matches_reference(model, forward, name):
    interventions, edits = CASES[name]
    expected, _ = reference(model, TOKENS, edits)
    np.testing.assert_allclose(forward(interventions), expected, rtol=1e-5, atol=1e-5)
    # ... and it changes the output (a no-op edit would pass the comparison vacuously).
    baseline, _ = reference(model, TOKENS)
    assert np.abs(expected - baseline).max() > 1e-3


def test_grid_of_completed_interventions_in_one_vmapped_pass(model, forward):
    """Interventions setting different fields stack into one pytree; the vmapped pass equals
    the one-by-one calls, and `complete` alone is the identity."""
    grid = [NONE] + [iv for iv, _ in CASES.values()]
    stacked = stack(grid, D, N)
    graphdef, state = nnx.split(model)
    batched = jax.jit(jax.vmap(lambda iv: nnx.merge(graphdef, state)(jnp.asarray(TOKENS), iv)))
    out = batched(stacked)
    assert out.shape == (len(grid), 2, N, CFG.vocab_size)
    np.testing.assert_allclose(out[0], forward(NONE), rtol=1e-6, atol=1e-6)
    for i, iv in enumerate(grid[1:], start=1):
        np.testing.assert_allclose(out[i], forward(iv), rtol=1e-5, atol=1e-5)


def test_position_edits_have_known_answers(model):
    table = np.asarray(model.pos_embed.embedding[...])[:N]
    token = np.asarray(model.token_embed.embedding[...])[TOKENS[0]]
    for kind, expected0 in [
        ("replace", table[1]),
        ("interpolate", 0.25 * table[0] + 0.75 * table[1]),
        ("scale", 0.25 * table[0]),
        ("swap", table[3]),
        ("none", np.zeros(D)),
    ]:
        matrix = position_edit(N, kind, source=3 if kind == "swap" else 1, alpha=0.25)
        embed = model.embed(jnp.asarray(TOKENS), NONE.mix_positions(matrix))
        np.testing.assert_allclose(embed[0, 0], token[0] + expected0, rtol=1e-5, atol=1e-6)
        if kind == "swap":
            np.testing.assert_allclose(embed[0, 3], token[3] + table[0], rtol=1e-5, atol=1e-6)
        elif kind != "none":  # only position 0 changes
            np.testing.assert_allclose(embed[0, 1:], token[1:] + table[1:], rtol=1e-5, atol=1e-6)


def test_zeroing_every_key_row_makes_keys_input_free(model):
    """I7 on all d rows: k = b_K for every position, so the content term q.k_j and with it the
    softmax weights no longer depend on the key's input: softmax over j <= i of a
    constant is uniform."""
    everything = NONE.scale_key_coordinates(np.zeros((L, D)))
    _, trace = model(jnp.asarray(TOKENS), everything, trace=True)
    weights = np.asarray(trace.layers[1].attn.weights)
    uniform = np.tril(np.ones((N, N))) / np.arange(1, N + 1)[:, None]
    np.testing.assert_allclose(weights, np.broadcast_to(uniform, weights.shape), atol=1e-6)


def test_patch_sets_the_first_residual_and_swap_moves_the_component(model):
    _, trace = model(jnp.asarray(TOKENS), NONE.patch_first_residual(1, PATCH), trace=True)
    np.testing.assert_allclose(trace.layers[1].resid_post[:, 0], np.tile(PATCH, (2, 1)), atol=1e-6)
    per_sequence = RNG.standard_normal((2, D))
    _, trace = model(jnp.asarray(TOKENS), NONE.patch_first_residual(0, per_sequence), trace=True)
    np.testing.assert_allclose(trace.layers[0].resid_post[:, 0], per_sequence, atol=1e-6)


def test_edits_are_rejected_where_they_do_not_apply():
    rope = randomized(dataclasses.replace(CFG, positions="rope"))
    with pytest.raises(ValueError, match="need learned or sinusoidal positions"):
        rope(jnp.asarray(TOKENS), NONE.mix_positions(position_edit(N, "replace")))
    with pytest.raises(ValueError, match="unknown position edit"):
        position_edit(N, "shuffle")
    with pytest.raises(ValueError, match="source position"):
        position_edit(N, "replace", source=N)
    with pytest.raises(ValueError, match="key coordinates"):
        key_coordinate_scale(L, D, [D])
