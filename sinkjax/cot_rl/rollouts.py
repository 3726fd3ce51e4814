"""Autoregressive rollouts of the chain policy, reward and metrics (spec §1.2).

A rollout emits vertex labels one at a time from the policy (sampled, or greedy when no key is
given) for at most H = `max_new_tokens` steps. It stops at its first sink: later steps are frozen
(vertex -1, log-prob 0). Reward r = 1 iff that first sink is the target; a rollout that emits no
sink within H gets 0.

Two samplers with identical outputs for the same keys:
  * `rollout`: O(1) per step in the prefix length. Each prompt is summarised once for every
    possible query vertex (`chain_policy.init_decoders`, O(L N^2)); a `lax.scan` then samples
    each step from that table and the counts of the vertices emitted so far
    (`chain_policy.summary_logits_batched`, O(N^2) per step), and records the log-probs. The
    scan reads frozen weights; the log-probs' derivative is that of the same closed form
    evaluated for all steps of the sampled trajectories at once (teacher forcing, a
    `custom_jvp`), so sampling alone pays nothing for it and `grad` runs one batched pass
    instead of a backward scan;
  * `rollout_naive`: the official code's approach, a full causal forward over the whole padded
    buffer at every step (an explicit (T, T) score matrix, O(T^2 N) per step), log-probs taken
    inside the loop and differentiated through it. The reference for tests and benchmarks.

Randomness: one flat draw of H x B uniforms from `key`; step t draws prompt b's vertex by
inverse CDF from uniform [t, b] (exact sampling with one uniform per draw: N Gumbel draws per
step cost several times a whole O(1) step on CPU). Both samplers use the same uniforms, so they
emit the same vertices up to float rounding of the logits.
"""

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from sinkjax.cot_rl.chains import ChainBatch, uniform_from_bits
from sinkjax.cot_rl.policy import (
    ChainPolicyConfig,
    DecoderState,
    Params,
    PolicyWeights,
    init_decoders,
    policy_weights,
    prefix_logits,
    summary_logits_batched,
)


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=["vertices", "log_probs", "first_sink", "reward", "traversed"],
    meta_fields=[],
)
@dataclasses.dataclass(frozen=True)
class Rollout:
    """B rollouts of at most H steps.

    Attributes:
        vertices: (B, H) int32 emitted vertex labels, -1 after the first sink.
        log_probs: (B, H) float log pi of each emitted vertex (nats), 0 after the first sink;
            differentiable in the policy parameters. Their sum over H is log pi(trajectory),
            the stopping token included.
        first_sink: (B,) int32 the first sink emitted, -1 if none within H steps.
        reward: (B,) float32 1[first_sink == target].
        traversed: (B,) bool, the rollout is exactly the chain suffix after the start: every
            step moves to the current vertex's successor, ending at the target (spec §1.2
            `chain_traverse`; no repeats, detours or jumps).
    """

    vertices: Int[Array, "B H"]
    log_probs: Float[Array, "B H"]
    first_sink: Int[Array, " B"]
    reward: Float[Array, " B"]
    traversed: Bool[Array, " B"]

    @property
    def length(self) -> Int[Array, " B"]:
        """(B,) number of emitted vertices, the stopping sink included."""
        return jnp.sum(self.vertices >= 0, axis=1)


def _uniforms(key: PRNGKeyArray, n_samples: int, max_new_tokens: int) -> Float[Array, "H B"]:
    """(H, B) uniforms on (0, 1): step t samples prompt b by inverse CDF from [t, b]."""
    bits = jax.random.bits(key, (max_new_tokens * n_samples,))  # one flat draw
    return uniform_from_bits(bits).reshape(max_new_tokens, n_samples)


def _choose(
    logits: Float[Array, "B N"], uniform: Float[Array, " B"] | None
) -> tuple[Int[Array, " B"], Float[Array, " B"]]:
    """(vertex, its log-prob) per row: a draw from softmax(logits) by inverse CDF with the row's
    uniform, or the argmax when `uniform` is None (first index on ties).

    The draw is the first vertex whose CDF reaches u * total, i.e. the number of CDF entries
    below it (exact sampling). The CDF is a product with a triangular matrix of ones, so every
    entry sums the same terms in the same order and a vertex of probability 0 (a -inf logit,
    e.g. the masked current vertex) leaves it unchanged: such a vertex is never drawn. Counts
    and masked sums instead of argmax: XLA:CPU runs these reductions several times faster.
    """
    n = logits.shape[1]
    vertices = jnp.arange(n)
    top = jnp.max(logits, axis=1, keepdims=True)
    e = jnp.exp(logits - top)  # 1 at the argmax, 0 at -inf logits
    if uniform is None:
        vertex = jnp.min(jnp.where(logits == top, vertices, n), axis=1)
        total = jnp.sum(e, axis=1)
    else:
        cdf = e @ jnp.triu(jnp.ones((n, n), e.dtype))  # cdf[:, j] = sum_{i <= j} e[:, i]
        total = cdf[:, -1]
        vertex = jnp.minimum(jnp.sum(cdf < (uniform * total)[:, None], axis=1), n - 1)
    picked = jnp.sum(jnp.where(vertices == vertex[:, None], logits, 0.0), axis=1)
    return vertex.astype(jnp.int32), picked - top[:, 0] - jnp.log(total)


def _sample(
    logits_fn: Callable,
    append_fn: Callable,
    state0,
    start: Int[Array, " B"],
    key: PRNGKeyArray | None,
    max_new_tokens: int,
) -> tuple[Int[Array, "B H"], Float[Array, "B H"]]:
    """H sampling steps of B prompts.

    `logits_fn(state, t, current) -> (B, N)` gives step t's logits and `append_fn(state, t,
    vertex)` adds the emitted vertices (B,) to the prefixes. Step t draws from the logits with
    its uniforms (`_choose`), or decodes greedily when `key` is None. Sampling goes on after a
    sink (`_finish` masks those steps), so the loop has no per-sample control flow.

    Returns:
        (vertices, log_probs): (B, H) every step's vertex and its log-prob under the step's
        logits (differentiable through `logits_fn`).
    """
    uniforms = None if key is None else _uniforms(key, start.shape[0], max_new_tokens)

    def step(carry, xs):
        state, current = carry
        t, uniform = xs
        vertex, log_prob = _choose(logits_fn(state, t, current), uniform)
        return (append_fn(state, t, vertex), vertex), (vertex, log_prob)

    xs = (jnp.arange(max_new_tokens), uniforms)
    _, (vertices, log_probs) = jax.lax.scan(step, (state0, start), xs)
    return vertices.T, log_probs.T


def _finish(
    batch: ChainBatch, vertices: Int[Array, "B H"], log_probs: Float[Array, "B H"]
) -> Rollout:
    """The `Rollout` of every step's sampled vertex: steps after the first sink are frozen."""
    emitted_sink = jnp.take_along_axis(batch.sink_mask, vertices, axis=1)  # (B, H)
    steps = jnp.arange(vertices.shape[1])
    first_sink_step = jnp.min(jnp.where(emitted_sink, steps, vertices.shape[1]), axis=1)
    active = steps <= first_sink_step[:, None]  # no sink before step t
    first_sink = jnp.max(jnp.where(active & emitted_sink, vertices, -1), axis=1)
    current = jnp.concatenate([batch.start[:, None], vertices[:, :-1]], axis=1)
    expected = jnp.take_along_axis(batch.successor, current, axis=1)
    on_path = jnp.all(~active | (vertices == expected), axis=1)
    return Rollout(
        vertices=jnp.where(active, vertices, -1),
        log_probs=jnp.where(active, log_probs, 0.0),
        first_sink=first_sink,
        reward=(first_sink == batch.target).astype(jnp.float32),
        traversed=on_path & (first_sink >= 0),
    )


def _check(batch: ChainBatch, cfg: ChainPolicyConfig, max_new_tokens: int) -> None:
    if batch.successor.shape[-1] != cfg.n_vertices:
        raise ValueError(
            f"the batch has {batch.successor.shape[-1]} vertex labels but the policy "
            f"{cfg.n_vertices}; build both from the same n_vertices"
        )
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")


def rollout(
    params: Params,
    batch: ChainBatch,
    cfg: ChainPolicyConfig,
    max_new_tokens: int,
    *,
    key: PRNGKeyArray | None = None,
) -> Rollout:
    """Roll the policy out on every prompt of `batch`, O(1) work per step in the prefix length.

    Args:
        params: policy parameters (`chain_policy.init_policy_params`).
        batch: B prompts.
        cfg: the policy config (static).
        max_new_tokens: H, the most vertices emitted (static); the code trains with n + 1.
        key: PRNG key for sampling; None decodes greedily (argmax, first index on ties).

    Returns:
        A `Rollout` of B rollouts; log-probs are differentiable in `params` (forward and reverse
        mode; the derivative is the teacher-forced one, see the module docstring).
    """
    _check(batch, cfg, max_new_tokens)
    n = cfg.n_vertices
    weights = policy_weights(params, cfg)
    prompts = init_decoders(weights, batch.context, cfg)

    # Sampling needs no gradient: the scan reads frozen copies, so grad saves nothing per step.
    # It reads only the vertex columns of A and rows of V (sliced once, not at every step).
    frozen_weights, frozen_prompts = jax.lax.stop_gradient(
        (PolicyWeights(weights.A[:, :n], weights.V[:n], weights.is_key[:n]), prompts)
    )

    def logits_fn(counts, t, current):
        step_logits = summary_logits_batched(
            frozen_weights, frozen_prompts, current[:, None], counts[:, None], cfg
        )
        return step_logits[:, 0]

    def append_fn(counts, t, vertex):
        return counts + (jnp.arange(n) == vertex[:, None])

    counts0 = jnp.zeros((batch.start.shape[0], n), weights.A.dtype)
    vertices, log_probs = _sample(logits_fn, append_fn, counts0, batch.start, key, max_new_tokens)
    log_probs = _trajectory_log_probs(
        cfg, weights.A, weights.V, prompts, log_probs, weights.is_key, batch.start, vertices
    )
    return _finish(batch, vertices, log_probs)


def _teacher_forced_log_probs(
    cfg: ChainPolicyConfig,
    weights: PolicyWeights,
    prompts: DecoderState,
    start: Int[Array, " B"],
    vertices: Int[Array, "B H"],
) -> Float[Array, "B H"]:
    """log pi of every step of the given trajectories, all steps at once: step t's query is the
    previous vertex and its keys are the prompt and the vertices emitted before t."""
    n, horizon = cfg.n_vertices, vertices.shape[1]
    current = jnp.concatenate([start[:, None], vertices[:, :-1]], axis=1)  # (B, H)
    emitted = jax.nn.one_hot(vertices, n, dtype=weights.A.dtype)  # (B, H, N)
    before = jnp.tril(jnp.ones((horizon, horizon), emitted.dtype), -1)  # [t, s] = 1{s < t}
    counts = jnp.einsum("ts,bsn->btn", before, emitted)
    logits = summary_logits_batched(weights, prompts, current, counts, cfg)  # (B, H, N)
    picked = jnp.take_along_axis(logits, vertices[..., None], axis=2)[..., 0]
    return picked - jax.nn.logsumexp(logits, axis=2)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _trajectory_log_probs(cfg, a, v, prompts, sampled_log_probs, is_key, start, vertices):
    """`sampled_log_probs` (the sampling scan's values) with the derivative of the teacher-forced
    log-probs in (A, V, prompt summaries): the forward pays nothing for the gradient, and
    differentiating runs one batched pass over all steps instead of a backward scan."""
    return sampled_log_probs


@_trajectory_log_probs.defjvp
def _trajectory_log_probs_jvp(cfg, primals, tangents):
    a, v, prompts, sampled_log_probs, is_key, start, vertices = primals
    da, dv, d_prompts = tangents[:3]

    def forced(a, v, prompts):
        return _teacher_forced_log_probs(cfg, PolicyWeights(a, v, is_key), prompts, start, vertices)

    _, tangent = jax.jvp(forced, (a, v, prompts), (da, dv, d_prompts))
    return sampled_log_probs, tangent


def rollout_naive(
    params: Params,
    batch: ChainBatch,
    cfg: ChainPolicyConfig,
    max_new_tokens: int,
    *,
    key: PRNGKeyArray | None = None,
    forward: Callable[[PolicyWeights, Int[Array, " T"], ChainPolicyConfig], Array] = prefix_logits,
) -> Rollout:
    """`rollout` computed the official code's way: a full forward over the buffer at each step.

    Same arguments and, for the same key, the same result as `rollout` (up to float rounding in
    the logits). Costs O(T^2 N) per step, T = L + H; the log-prob gradient backpropagates
    through every step's full forward, as the code's does. `forward(weights, context (T,), cfg)
    -> (T, N)` logits is the whole-sequence forward (default `prefix_logits`).
    """
    _check(batch, cfg, max_new_tokens)
    weights = policy_weights(params, cfg)
    prompt_length = batch.tokens.shape[1]
    padding = jnp.zeros((batch.tokens.shape[0], max_new_tokens), jnp.int32)
    batched_forward = jax.vmap(forward, in_axes=(None, 0, None))  # (B, T, N)
    vertices, log_probs = _sample(
        lambda buf, t, current: batched_forward(weights, buf, cfg)[:, prompt_length - 1 + t],
        lambda buf, t, vertex: buf.at[:, prompt_length + t].set(vertex),
        jnp.concatenate([batch.context, padding], axis=1),
        batch.start,
        key,
        max_new_tokens,
    )
    return _finish(batch, vertices, log_probs)


def rollout_metrics(result: Rollout) -> dict[str, Float[Array, ""]]:
    """Batch metrics (float32 scalars, fractions in [0, 1]).

    Returns:
        accuracy: fraction whose first sink is the target (no sink counts as wrong);
        accuracy_code_quirk: the official code's accuracy, which drops the rollouts that emitted
            no sink from the denominator (0 when none emitted a sink, as in the code);
        chain_traverse: fraction of exact chain traversals (`Rollout.traversed`);
        chain_traverse_code_quirk: the same over the rollouts that emitted a sink (the code's);
        no_sink_rate: fraction that emitted no sink within H steps;
        mean_length: mean number of emitted vertices.
    """
    has_sink = result.first_sink >= 0
    n_with_sink = jnp.maximum(jnp.sum(has_sink), 1).astype(jnp.float32)
    correct = result.reward > 0
    return {
        "accuracy": jnp.mean(correct.astype(jnp.float32)),
        "accuracy_code_quirk": jnp.sum(correct) / n_with_sink,
        "chain_traverse": jnp.mean(result.traversed.astype(jnp.float32)),
        "chain_traverse_code_quirk": jnp.sum(result.traversed) / n_with_sink,
        "no_sink_rate": jnp.mean((~has_sink).astype(jnp.float32)),
        "mean_length": jnp.mean(result.length.astype(jnp.float32)),
    }
