"""The chain task: vocabulary, graph invariants of sampled prompts, the step law, validation.

Every prompt is decoded back into a graph on the host with the tokenizer's own layout, and the
invariants are checked against that graph, not against the generator's intermediate arrays.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from sinkjax.cot_rl.chains import (
    N_SPECIAL,
    ChainTask,
    edge_endpoints,
    edge_token,
    sample_chains,
    vertex_token,
)

sample = jax.jit(sample_chains, static_argnums=(1, 2))


def decode_edges(tokens: np.ndarray, n_vertices: int) -> list[tuple[int, int]]:
    """The (src, dst) pairs of the edge tokens of one prompt, via the tokenizer's pair order."""
    pairs = [(i, j) for i in range(n_vertices) for j in range(n_vertices) if i != j]
    first_edge = N_SPECIAL + n_vertices
    return [pairs[t - first_edge] for t in tokens]


def test_vocabulary_layout():
    n_vertices = 6
    task = ChainTask.uniform(3)
    assert task.n_vertices == n_vertices and task.vocab_size == 5 + 6 + 30
    assert vertex_token(0) == 5 and vertex_token(5) == 10
    # i-major then j, skipping i == j: (0,1) (0,2) ... (0,5) (1,0) (1,2) ...
    assert edge_token(0, 1, n_vertices) == 11 and edge_token(0, 5, n_vertices) == 15
    assert edge_token(1, 0, n_vertices) == 16 and edge_token(1, 2, n_vertices) == 17
    assert edge_token(5, 4, n_vertices) == task.vocab_size - 1
    src, dst = edge_endpoints(n_vertices)
    assert len(src) == 30 and np.all(src != dst)
    ids = edge_token(src, dst, n_vertices) - N_SPECIAL  # context ids, one per ordered pair
    np.testing.assert_array_equal(ids, np.arange(n_vertices, n_vertices**2))
    assert decode_edges(edge_token(src, dst, n_vertices), n_vertices) == list(
        zip(src.tolist(), dst.tolist(), strict=True)
    )


@pytest.mark.parametrize("shuffle", [False, True], ids=["path_order", "shuffled"])
def test_prompts_are_two_chains_with_the_right_target_and_sinks(shuffle):
    n, n_isolated, size = 5, 3, 400
    task = ChainTask.uniform(n, n_vertices=2 * n + n_isolated, shuffle_edges=shuffle)
    n_vertices = task.n_vertices
    batch = jax.tree.map(np.asarray, sample(jax.random.key(0), task, size))
    assert batch.tokens.shape == (size, 2 * n - 1) and batch.tokens.dtype == np.int32
    assert batch.successor.shape == (size, n_vertices)
    sink_mask = np.asarray(batch.sink_mask)
    in_path_order = []
    for b in range(size):
        edges = decode_edges(batch.tokens[b, :-1], n_vertices)
        assert len(set(edges)) == 2 * (n - 1)
        succ = dict(edges)
        preds = {d: s for s, d in edges}
        assert len(succ) == len(preds) == 2 * (n - 1)  # out- and in-degree <= 1
        # The graph is exactly two paths of n vertices.
        heads = [v for v in succ if v not in preds]
        paths = []
        for head in heads:
            path = [head]
            while path[-1] in succ:
                path.append(succ[path[-1]])
            paths.append(path)
        assert sorted(map(len, paths)) == [n, n]
        in_chain = {v for p in paths for v in p}
        isolated = set(range(n_vertices)) - in_chain
        assert len(isolated) == n_isolated
        # The start token is the last one; the target ends the start's path after `steps` moves.
        assert batch.tokens[b, -1] == vertex_token(batch.start[b])
        walk = [int(batch.start[b])]
        while walk[-1] in succ:
            walk.append(succ[walk[-1]])
        assert walk[-1] == batch.target[b] and len(walk) - 1 == batch.steps[b]
        assert 1 <= batch.steps[b] <= n - 1
        # Sinks: out-degree 0, i.e. both terminals and the isolated vertices.
        sinks = {p[-1] for p in paths} | isolated
        assert set(np.flatnonzero(sink_mask[b]).tolist()) == sinks
        expected_succ = [succ.get(v, -1) for v in range(n_vertices)]
        np.testing.assert_array_equal(batch.successor[b], expected_succ)
        # Path order: chain A's edges then chain B's, each from head to tail.
        a_path = next(p for p in paths if batch.start[b] in p)
        b_path = next(p for p in paths if batch.start[b] not in p)
        ordered = list(zip(a_path[:-1], a_path[1:], strict=True))
        ordered += list(zip(b_path[:-1], b_path[1:], strict=True))
        in_path_order.append(edges == ordered)
    assert (not any(in_path_order)) if shuffle else all(in_path_order)


def test_step_counts_follow_the_law():
    """Pearson chi-square at 20k draws: a fixed key, so the p-value threshold 1e-3 either holds
    or fails deterministically; a 1% error in one cell (mass 0.3) would give z ~ 1.5 per cell,
    a wrong law (e.g. reversed) p ~ 0. Zero-probability counts must be exactly 0."""
    probs = (0.1, 0.0, 0.3, 0.2, 0.4)
    task = ChainTask(6, probs, n_isolated=2)
    size = 20_000
    batch = sample(jax.random.key(1), task, size)
    counts = np.bincount(np.asarray(batch.steps), minlength=6)[1:]
    assert counts.sum() == size and counts[1] == 0
    support = np.asarray(probs) > 0
    _, p_value = stats.chisquare(counts[support], size * np.asarray(probs)[support])
    assert p_value > 1e-3


def test_start_and_labels_are_uniform_over_vertices():
    """The start label is uniform over the N labels (the permutation is uniform); chi-square."""
    task = ChainTask.uniform(4, n_vertices=10)
    batch = sample(jax.random.key(2), task, 20_000)
    for labels in (batch.start, batch.target):
        counts = np.bincount(np.asarray(labels), minlength=10)
        assert stats.chisquare(counts).pvalue > 1e-3


def test_sampler_is_deterministic_and_vmappable():
    task = ChainTask.uniform(4)
    one = sample(jax.random.key(3), task, 16)
    np.testing.assert_array_equal(one.tokens, sample(jax.random.key(3), task, 16).tokens)
    other = sample(jax.random.key(4), task, 16)
    assert not np.array_equal(one.tokens, other.tokens)
    keys = jax.random.split(jax.random.key(5), 3)
    many = jax.jit(jax.vmap(functools.partial(sample_chains, task=task, batch_size=16)))(keys)
    assert many.tokens.shape == (3, 16, 7) and many.successor.shape == (3, 16, 8)
    assert jnp.issubdtype(many.steps.dtype, jnp.integer)


def test_uniform_and_validation():
    assert ChainTask.uniform(5).step_probs == (0.25, 0.25, 0.25, 0.25)
    assert ChainTask.uniform(5, steps=(4,)).step_probs == (0.0, 0.0, 0.0, 1.0)
    d_m = ChainTask.uniform(4, steps=(1, 2, 3), n_vertices=24)
    assert (d_m.n_isolated, d_m.n_vertices, d_m.prompt_length) == (16, 24, 7)
    with pytest.raises(ValueError, match="chain_length"):
        ChainTask(1, ())
    with pytest.raises(ValueError, match="one per step count"):
        ChainTask(4, (0.5, 0.5))
    with pytest.raises(ValueError, match="sum to 1"):
        ChainTask(3, (0.5, 0.6))
    with pytest.raises(ValueError, match="non-negative"):
        ChainTask(3, (1.5, -0.5))
    with pytest.raises(ValueError, match="n_isolated"):
        ChainTask.uniform(4, n_vertices=7)
    with pytest.raises(ValueError, match="subset"):
        ChainTask.uniform(4, steps=(4,))
