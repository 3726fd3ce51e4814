"""The chain policy and its rollouts: init, the symmetric (theory) weights against the class
table of spec §3.2, the O(1) sampler against the naive full-prefix sampler (same keys), stopping,
a hand-built perfect policy, and the metrics."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sinkjax.cot_rl.chains import ChainTask, edge_endpoints, sample_chains
from sinkjax.cot_rl.policy import (
    ChainPolicyConfig,
    init_decoder,
    init_policy_params,
    policy_weights,
    prefix_logits,
    summary_logits,
    symmetric_policy_params,
)
from sinkjax.cot_rl.rollouts import Rollout, rollout, rollout_metrics, rollout_naive

N_CHAIN, N_ISOLATED = 5, 2
TASK = ChainTask.uniform(N_CHAIN, n_vertices=2 * N_CHAIN + N_ISOLATED)
N = TASK.n_vertices
BATCH = sample_chains(jax.random.key(0), TASK, 256)
HORIZON = 8  # longer than n + 1, so frozen steps after the first sink are exercised

fast = jax.jit(rollout, static_argnums=(2, 3))
naive = jax.jit(rollout_naive, static_argnums=(2, 3))


def walk(successor: np.ndarray, start: int) -> list[int]:
    """The chain suffix after `start`: successor, successor of successor, ..., the terminal."""
    path = [int(successor[start])]
    while successor[path[-1]] >= 0:
        path.append(int(successor[path[-1]]))
    return path


def random_params(cfg: ChainPolicyConfig, key) -> dict:
    """Parameters at scale 1, so the policy is far from uniform (the tests need structure)."""
    if cfg.parameterization == "symmetric":
        return symmetric_policy_params(1.0, -0.5, 0.3)
    return init_policy_params(key, dataclasses.replace(cfg, init_std=1.0))


@functools.partial(jax.jit, static_argnums=2)
def all_prefix_logits(params, context, cfg):
    """(B, T, N) logits of the full forward at every position of every prompt."""
    weights = policy_weights(params, cfg)
    return jax.vmap(lambda c: prefix_logits(weights, c, cfg))(context)


def test_init_is_tiny_and_the_initial_policy_uniform():
    for attention in ("linear", "softmax"):
        cfg = ChainPolicyConfig(N, attention, temperature=0.05)
        params = init_policy_params(jax.random.key(1), cfg)
        assert params["A"].shape == (N, N * N) and params["V"].shape == (N * N, N)
        assert params["A"].dtype == params["V"].dtype == jnp.float32
        assert 0.5e-8 < float(jnp.std(params["A"])) < 2e-8
        assert 0.5e-8 < float(jnp.std(params["V"])) < 2e-8
        log_probs = jax.nn.log_softmax(all_prefix_logits(params, BATCH.context, cfg))
        np.testing.assert_allclose(log_probs, -np.log(N), atol=1e-5)
    theory = init_policy_params(
        jax.random.key(1), ChainPolicyConfig(N, parameterization="symmetric")
    )
    assert theory["theta"].shape == (3,)


@pytest.mark.parametrize("attention", ["linear", "softmax"])
def test_symmetric_weights_follow_the_class_table(attention):
    """Spec §3.2: from u, candidate v gets (1/tau) sum over edges e containing v of
    theta_class(u, e); for linear attention the table of counts c_j(u, v); for softmax the same
    sum of attention weights exp(theta_class) / Z_u. Checked at the start vertex of every prompt."""
    alpha, beta, gamma, tau = 1.3, -0.4, 0.2, 0.5
    cfg = ChainPolicyConfig(N, attention, temperature=tau, parameterization="symmetric")
    logits = all_prefix_logits(symmetric_policy_params(alpha, beta, gamma), BATCH.context, cfg)
    logits = logits[:, -1]  # at the start vertex
    successor = np.asarray(BATCH.successor)
    n_edges = TASK.n_edges
    for b in range(64):
        succ, u = successor[b], int(BATCH.start[b])
        has_out = (succ >= 0).astype(int)
        has_in = np.isin(np.arange(N), succ).astype(int)
        pred = int(np.flatnonzero(succ == u)[0]) if has_in[u] else None
        w = {"alpha": alpha, "beta": beta, "gamma": gamma}
        if attention == "softmax":  # attention weights per class, normalised over all edges
            z_u = (
                np.exp(alpha) + has_in[u] * np.exp(beta) + (n_edges - 1 - has_in[u]) * np.exp(gamma)
            )
            w = {k: np.exp(v) / z_u for k, v in w.items()}
        expected = np.zeros(N)
        for v in range(N):
            if v == succ[u]:
                expected[v] = w["alpha"] + w["gamma"] * has_out[v]
            elif v == pred:
                expected[v] = w["beta"] + w["gamma"] * has_in[v]
            elif v == u:
                expected[v] = w["alpha"] + w["beta"] * has_in[u]
            else:
                expected[v] = w["gamma"] * (has_out[v] + has_in[v])
        np.testing.assert_allclose(np.asarray(logits[b]), expected / tau, rtol=1e-5, atol=1e-6)


def test_symmetric_matrices():
    cfg = ChainPolicyConfig(4, parameterization="symmetric")
    a, v, is_key = policy_weights(symmetric_policy_params(1.0, 2.0, 3.0), cfg)
    src, dst = edge_endpoints(4)
    assert np.all(np.asarray(a[:, :4]) == 0) and not np.any(np.asarray(is_key[:4]))
    for u in range(4):
        expected = np.where(src == u, 1.0, np.where(dst == u, 2.0, 3.0))
        np.testing.assert_array_equal(np.asarray(a[u, 4:]), expected)
    np.testing.assert_array_equal(np.asarray(v[:4]), 0)
    np.testing.assert_array_equal(np.asarray(v[4:]).sum(1), 2)
    np.testing.assert_array_equal(np.asarray(v[4:])[np.arange(12), src], 1)
    np.testing.assert_array_equal(np.asarray(v[4:])[np.arange(12), dst], 1)


SAMPLER_CASES = [
    ("linear", "full", False),
    ("softmax", "full", False),
    ("softmax", "symmetric", True),
]


def _log_prob_and_rollout(sampler, params, cfg, key):
    result = sampler(params, BATCH, cfg, HORIZON, key=key)
    return jnp.sum(result.log_probs), result


@functools.cache
def sampled(attention, parameterization, mask):
    """(params, O(1) rollout, naive rollout, grads of the O(1) rollout's summed log-probs) for
    one policy and one key."""
    cfg = ChainPolicyConfig(N, attention, 0.5, mask_current=mask, parameterization=parameterization)
    params = random_params(cfg, jax.random.key(3))
    key = jax.random.key(4)
    fn = functools.partial(_log_prob_and_rollout, rollout, cfg=cfg, key=key)
    (_, result), grads = jax.jit(jax.value_and_grad(fn, has_aux=True))(params)
    return params, result, naive(params, BATCH, cfg, HORIZON, key=key), grads


@pytest.mark.parametrize(("attention", "parameterization", "mask"), SAMPLER_CASES)
def test_o1_sampler_equals_naive_sampler(attention, parameterization, mask):
    _, a, b, _ = sampled(attention, parameterization, mask)
    np.testing.assert_array_equal(a.vertices, b.vertices)
    np.testing.assert_allclose(a.log_probs, b.log_probs, atol=2e-5)
    np.testing.assert_array_equal(a.first_sink, b.first_sink)
    np.testing.assert_array_equal(a.traversed, b.traversed)
    # The sampled rollouts are diverse (the comparison is not between constant outputs).
    assert len(np.unique(np.asarray(a.vertices[:, 0]))) > 3
    if mask:
        current = np.concatenate([np.asarray(BATCH.start)[:, None], np.asarray(a.vertices)], 1)
        repeats = (current[:, 1:] == current[:, :-1]) & (current[:, 1:] >= 0)
        assert not repeats.any()


def test_greedy_o1_decoding_equals_naive_decoding():
    for attention in ("linear", "softmax"):
        cfg = ChainPolicyConfig(N, attention, 0.5)
        params = random_params(cfg, jax.random.key(5))
        a, b = fast(params, BATCH, cfg, HORIZON), naive(params, BATCH, cfg, HORIZON)
        np.testing.assert_array_equal(a.vertices, b.vertices)
        np.testing.assert_allclose(a.log_probs, b.log_probs, atol=2e-5)
        assert len(np.unique(np.asarray(a.vertices[:, 0]))) > 3


@functools.partial(jax.jit, static_argnums=1)
def teacher_forced_log_prob(params, cfg, vertices):
    """Sum of log pi(emitted vertex) from ONE full forward over each final buffer (causal, so
    position L - 1 + t sees exactly the prefix of step t); frozen steps (-1) are skipped."""
    buffers = jnp.concatenate([BATCH.context, jnp.maximum(vertices, 0)], axis=1)
    start = BATCH.tokens.shape[1] - 1
    logits = all_prefix_logits(params, buffers, cfg)[:, start : start + vertices.shape[1]]
    picked = jnp.take_along_axis(jax.nn.log_softmax(logits), jnp.maximum(vertices, 0)[..., None], 2)
    return jnp.sum(jnp.where(vertices >= 0, picked[..., 0], 0.0))


@pytest.mark.parametrize(("attention", "parameterization", "mask"), SAMPLER_CASES)
def test_o1_log_prob_gradients_equal_the_full_forward_ones(attention, parameterization, mask):
    """REINFORCE differentiates the O(1) sampler's log-probs: their sum and its gradient (by
    teacher forcing through the prompt tables and vertex counts) equal those of the whole
    trajectories scored by the full causal forward."""
    params, result, _, g_fast = sampled(attention, parameterization, mask)
    cfg = ChainPolicyConfig(N, attention, 0.5, mask_current=mask, parameterization=parameterization)
    total, g_ref = jax.value_and_grad(teacher_forced_log_prob)(params, cfg, result.vertices)
    np.testing.assert_allclose(float(jnp.sum(result.log_probs)), float(total), rtol=1e-5)
    for name, leaf in g_ref.items():
        scale = float(jnp.max(jnp.abs(leaf)))
        assert scale > 0.1
        np.testing.assert_allclose(g_fast[name], leaf, atol=1e-4 * scale)


def test_o1_sampler_is_stable_at_large_scores():
    """Softmax scores far apart (vertex keys 100 above the edges, then 100 below): the prompt
    and vertex parts are combined by a stable log-sum-exp, so log-probs and gradients stay
    finite and equal the full forward's (whose softmax is stable by construction)."""
    cfg = ChainPolicyConfig(N, "softmax", 0.5)
    key = jax.random.key(7)
    total_log_prob = jax.jit(
        jax.grad(lambda p: jnp.sum(rollout(p, BATCH, cfg, HORIZON, key=key).log_probs))
    )
    for shift in (100.0, -100.0):
        params = random_params(cfg, jax.random.key(6))
        params = {**params, "A": params["A"].at[:, :N].add(shift)}
        a, b = (
            fast(params, BATCH, cfg, HORIZON, key=key),
            naive(params, BATCH, cfg, HORIZON, key=key),
        )
        np.testing.assert_array_equal(a.vertices, b.vertices)
        np.testing.assert_allclose(a.log_probs, b.log_probs, atol=1e-4)
        assert all(np.isfinite(np.asarray(g)).all() for g in total_log_prob(params).values())


def test_decoders_equal_the_full_forward():
    """`summary_logits` (the `init_decoder` prompt table + vertex counts) gives the full
    forward's logits at every generated position, repeats of a vertex included."""
    rng = np.random.default_rng(0)
    forward = jax.jit(prefix_logits, static_argnums=2)
    table_of = jax.jit(init_decoder, static_argnums=2)
    summary = jax.jit(summary_logits, static_argnums=4)
    for attention, parameterization, mask in [*SAMPLER_CASES, ("linear", "symmetric", True)]:
        cfg = ChainPolicyConfig(
            N, attention, 0.5, mask_current=mask, parameterization=parameterization
        )
        weights = policy_weights(random_params(cfg, jax.random.key(8)), cfg)
        for b in range(2):
            prompt = BATCH.context[b]
            generated = rng.integers(0, N, size=6)
            generated[3] = generated[1]  # a repeated vertex
            sequence = jnp.concatenate([prompt, jnp.asarray(generated, jnp.int32)])
            expected = forward(weights, sequence, cfg)[len(prompt) - 1 :]
            table = table_of(weights, prompt, cfg)
            counts = np.zeros(N, np.float32)
            current = prompt[-1]
            for t in range(len(generated) + 1):
                got = summary(weights, table, current, jnp.asarray(counts), cfg)
                np.testing.assert_allclose(got, expected[t], rtol=1e-5, atol=1e-5)
                if t < len(generated):
                    current = jnp.int32(generated[t])
                    counts[generated[t]] += 1


def test_rollouts_stop_at_the_first_sink_and_score_it():
    result = jax.tree.map(np.asarray, sampled(*SAMPLER_CASES[0])[1])
    successor, sink = np.asarray(BATCH.successor), np.asarray(BATCH.sink_mask)
    assert result.vertices.shape == result.log_probs.shape == (256, HORIZON)
    lengths = np.asarray(result.length)
    for b in range(256):
        emitted = result.vertices[b, : lengths[b]]
        assert np.all(result.vertices[b, lengths[b] :] == -1)
        assert np.all(result.log_probs[b, lengths[b] :] == 0)
        assert np.all(result.log_probs[b, : lengths[b]] <= 0)
        assert not sink[b, emitted[:-1]].any()  # no sink before the last emitted vertex
        if sink[b, emitted[-1]]:
            assert result.first_sink[b] == emitted[-1]
        else:
            assert lengths[b] == HORIZON and result.first_sink[b] == -1
        assert result.reward[b] == float(result.first_sink[b] == BATCH.target[b])
        traversal = walk(successor[b], int(BATCH.start[b]))
        assert result.traversed[b] == (emitted.tolist() == traversal)
    # All outcomes occur: success, a wrong sink, no sink, and exact traversals.
    assert 0 < result.reward.mean() < 1 and (result.first_sink == -1).any()
    assert result.traversed.any()


def perfect_params(cfg: ChainPolicyConfig) -> dict:
    """A[u, (u, w)] = 10 for every edge leaving u and V[(u, w)] = e_w: the traversal algorithm."""
    src, dst = edge_endpoints(N)
    a = np.zeros((N, N * N), np.float32)
    v = np.zeros((N * N, N), np.float32)
    a[src, N + np.arange(len(src))] = 10.0
    v[N + np.arange(len(src)), dst] = 1.0
    return {"A": jnp.asarray(a), "V": jnp.asarray(v)}


@pytest.mark.parametrize(
    ("attention", "parameterization"),
    [("linear", "full"), ("softmax", "full"), ("linear", "symmetric")],
)
def test_greedy_decoding_of_a_perfect_policy_traverses_the_chain(attention, parameterization):
    symmetric = parameterization == "symmetric"
    cfg = ChainPolicyConfig(
        N, attention, 0.2, mask_current=symmetric, parameterization=parameterization
    )
    params = symmetric_policy_params(5.0, 0.0, 0.0) if symmetric else perfect_params(cfg)
    result = fast(params, BATCH, cfg, TASK.default_max_new_tokens)
    metrics = rollout_metrics(result)
    assert float(metrics["accuracy"]) == 1.0 and float(metrics["chain_traverse"]) == 1.0
    np.testing.assert_array_equal(result.length, BATCH.steps)
    first_moves = BATCH.successor[jnp.arange(256), BATCH.start]
    np.testing.assert_array_equal(result.vertices[:, 0], first_moves)
    if symmetric:  # without the self-mask the current vertex ties with its successor
        cfg = dataclasses.replace(cfg, mask_current=False)
        result = fast(params, BATCH, cfg, TASK.default_max_new_tokens)
        assert float(rollout_metrics(result)["chain_traverse"]) < 1.0


def test_metrics_and_the_code_quirk():
    # 4 rollouts: exact traversal; right sink after a detour; wrong sink; no sink at all.
    result = Rollout(
        vertices=jnp.array([[3, 4, -1], [1, 4, -1], [7, -1, -1], [1, 2, 1]], jnp.int32),
        log_probs=jnp.zeros((4, 3)),
        first_sink=jnp.array([4, 4, 7, -1], jnp.int32),
        reward=jnp.array([1.0, 1.0, 0.0, 0.0]),
        traversed=jnp.array([True, False, False, False]),
    )
    metrics = {k: float(v) for k, v in rollout_metrics(result).items()}
    assert metrics["accuracy"] == 0.5
    assert metrics["accuracy_code_quirk"] == pytest.approx(2 / 3)  # the no-sink row is dropped
    assert metrics["chain_traverse"] == 0.25
    assert metrics["chain_traverse_code_quirk"] == pytest.approx(1 / 3)
    assert metrics["no_sink_rate"] == 0.25 and metrics["mean_length"] == 2.0
    nothing = Rollout(
        result.vertices, result.log_probs, jnp.full((4,), -1), jnp.zeros(4), jnp.zeros(4, bool)
    )
    assert float(rollout_metrics(nothing)["accuracy_code_quirk"]) == 0.0  # as the code: 0


def test_validation():
    with pytest.raises(ValueError, match="n_vertices"):
        ChainPolicyConfig(1)
    with pytest.raises(ValueError, match="attention"):
        ChainPolicyConfig(4, "relu")
    with pytest.raises(ValueError, match="parameterization"):
        ChainPolicyConfig(4, parameterization="diagonal")
    with pytest.raises(ValueError, match="temperature"):
        ChainPolicyConfig(4, temperature=0.0)
    with pytest.raises(ValueError, match="init_std"):
        ChainPolicyConfig(4, init_std=-1.0)
    cfg = ChainPolicyConfig(N + 1)
    with pytest.raises(ValueError, match="same n_vertices"):
        rollout(init_policy_params(jax.random.key(0), cfg), BATCH, cfg, 4)
    with pytest.raises(ValueError, match="max_new_tokens"):
        cfg = ChainPolicyConfig(N)
        rollout(init_policy_params(jax.random.key(0), cfg), BATCH, cfg, 0)
