"""The one-layer attention policy of the chain task (spec §2.1) and its theory variant (§2.2).

The official `SimplifiedLinearTransformer`: one-hot tokens, no positions, residual, MLP or norm.
A query vertex u reads the row A[u, :] (N x C, C = N^2 context tokens, see `sinkjax.cot_rl.chains`);
the keys are the context tokens of the prefix (the query position included) and V (C x N) maps a
key to vertex logits:

    linear:  logits[v] = (1/tau) sum_{s <= t} A[u, x_s] V[x_s, v]
    softmax: logits[v] = (1/tau) sum_{s <= t} w_s V[x_s, v],  w = softmax_s A[u, x_s]

The output covers the N vertices only (the code sets every other logit to -1e9).

Parameterisations (`ChainPolicyConfig.parameterization`):
  * "full" (the code's RL model): params {"A": (N, C), "V": (C, N)}, both trained, init
    N(0, init_std^2) with init_std = 1e-8 (a uniform policy);
  * "symmetric" (the theory model): params {"theta": (3,)} = (alpha, beta, gamma), with
    A[u, (u, w)] = alpha (edge leaving u), A[u, (w, u)] = beta (edge entering u),
    A[u, (w, z)] = gamma (edge not incident to u), and V fixed to the incidence matrix
    V[(u, w), v] = 1{v in {u, w}}. Vertex tokens are not keys (the Markov variant of spec §3.3):
    for linear attention this changes nothing (their V rows are 0), for softmax it keeps the
    attention on the edges so the policy depends on the current vertex only.

Why pure functions of a parameter dict rather than an NNX module: the policy is two matrices read
at every step of a `lax.scan` that sits inside `vmap` (seeds) and `grad` (REINFORCE). A dict of
arrays goes through all three transforms with no split/merge, and the O(1) decoder needs the
weights in forms a whole-sequence `__call__` would not expose (columns of A, per-query summaries
of the prompt). `prefix_logits` is the whole-sequence forward (the code's), used as the reference.

O(1) decoding. A rollout's prefix is the prompt followed by generated vertex tokens, and a key's
score under the query vertex u is A[u, key token]: it depends on (u, token), not on the position.
So the prefix enters the logits only through
  * the prompt, summarised once per prompt for every possible query vertex u (`init_decoder`,
    or `init_decoders` for a batch; O(L N^2)): linear: S[u, v] = sum_keys A[u, c] V[c, v];
    softmax: m[u] = max_keys A[u, c], den[u] = sum_keys exp(A[u, c] - m[u]) and
    num[u, v] = sum_keys exp(A[u, c] - m[u]) V[c, v];
  * the generated vertices, through their counts k_w over the N vertex labels:
    linear: logits = (S[u] + sum_w k_w A[u, w] V[w]) / tau; softmax: the prompt part and
    sum_w k_w exp(A[u, w]) (1, V[w]) combined with a stable log-sum-exp (`summary_logits`,
    or `summary_logits_batched` for a batch).
A step costs O(N^2) (one (N,) x (N, N) product) whatever the prefix length, and because the step
logits are a closed form of (prompt summary, u, counts) they can also be evaluated for all steps
of sampled trajectories at once (teacher forcing), which is how `rollouts.rollout`
differentiates the log-probs of its samples.

Masking the current vertex (`mask_current`) sets its logit to -inf, which forbids self-repeats
(spec §2.1, needed by the theory replica, §3.5). Note: the official option `mask_past_verticies`
actually masks the vertex *before* the current one (its loop looks at positions < t); all final
experiments turn it off, and this module implements the spec's current-vertex mask.
"""

import dataclasses
import functools
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from sinkjax.cot_rl.chains import edge_endpoints

Attention = Literal["linear", "softmax"]
Parameterization = Literal["full", "symmetric"]
Params = dict[str, Float[Array, "..."]]
DecoderState = dict[str, Float[Array, "..."]]


@dataclasses.dataclass(frozen=True)
class ChainPolicyConfig:
    """Static description of the policy (hashable: a `jax.jit` static argument)."""

    # N, the number of vertex labels (the task's `n_vertices`).
    n_vertices: int
    # "linear" or "softmax" attention over the prefix.
    attention: Attention = "linear"
    # tau: logits are divided by it (the code's `tmp`: 1/5 linear, 1/20 softmax, 1/20 in D_m).
    temperature: float = 0.2
    # Forbid emitting the current vertex again (no self-repeats); the code's runs use False.
    mask_current: bool = False
    # "full": trainable A and V (the code); "symmetric": A(alpha, beta, gamma), V fixed (theory).
    parameterization: Parameterization = "full"
    # Standard deviation of the i.i.d. normal initialisation (of A and V, or of theta).
    init_std: float = 1e-8

    def __post_init__(self):
        if self.n_vertices < 2:
            raise ValueError(f"n_vertices must be >= 2, got {self.n_vertices}")
        if self.attention not in ("linear", "softmax"):
            raise ValueError(f"attention must be 'linear' or 'softmax', got {self.attention!r}")
        if self.parameterization not in ("full", "symmetric"):
            raise ValueError(
                f"parameterization must be 'full' or 'symmetric', got {self.parameterization!r}"
            )
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        if self.init_std < 0:
            raise ValueError(f"init_std must be >= 0, got {self.init_std}")

    @property
    def n_context(self) -> int:
        """C = N^2 context tokens (N vertices, N(N-1) edges)."""
        return self.n_vertices**2


class PolicyWeights(NamedTuple):
    """The matrices the forward pass uses (N vertices, C = N^2 context tokens).

    Attributes:
        A: (N, C) query-key scores, one row per query vertex.
        V: (C, N) value-output map from a key to vertex logits (before 1/tau).
        is_key: (C,) bool, the context tokens attention may read.
    """

    A: Float[Array, "N C"]
    V: Float[Array, "C N"]
    is_key: Bool[Array, " C"]


def init_policy_params(key: PRNGKeyArray, cfg: ChainPolicyConfig) -> Params:
    """N(0, init_std^2) parameters: {"A": (N, C), "V": (C, N)} or {"theta": (3,)}, float32."""
    if cfg.parameterization == "symmetric":
        return {"theta": cfg.init_std * jax.random.normal(key, (3,))}
    k_a, k_v = jax.random.split(key)
    n, c = cfg.n_vertices, cfg.n_context
    # Flat draws, reshaped: they compile several times faster than 2-D draws on CPU.
    return {
        "A": cfg.init_std * jax.random.normal(k_a, (n * c,)).reshape(n, c),
        "V": cfg.init_std * jax.random.normal(k_v, (c * n,)).reshape(c, n),
    }


def symmetric_policy_params(alpha: float, beta: float, gamma: float) -> Params:
    """Parameters of the symmetric (theory) policy at theta = (alpha, beta, gamma), float32."""
    return {"theta": jnp.asarray([alpha, beta, gamma], jnp.float32)}


def symmetric_classes(n_vertices: int) -> np.ndarray:
    """(3, N, C) float32 indicators of the classes (alpha, beta, gamma) of A[u, c].

    Class alpha: edge c = (u, w) leaves u; beta: c = (w, u) enters u; gamma: edge c not
    incident to u. Vertex columns (c < N) belong to no class.
    """
    src, dst = edge_endpoints(n_vertices)
    u = np.arange(n_vertices)[:, None]
    leaving, entering = src[None, :] == u, dst[None, :] == u
    edges = np.stack([leaving, entering, ~leaving & ~entering]).astype(np.float32)
    return np.concatenate([np.zeros((3, n_vertices, n_vertices), np.float32), edges], axis=2)


def incidence_values(n_vertices: int) -> np.ndarray:
    """(C, N) float32 V of the theory: V[(u, w), v] = 1{v in {u, w}}, vertex rows 0."""
    src, dst = edge_endpoints(n_vertices)
    v = np.arange(n_vertices)[None, :]
    edges = ((src[:, None] == v) | (dst[:, None] == v)).astype(np.float32)
    return np.concatenate([np.zeros((n_vertices, n_vertices), np.float32), edges])


def policy_weights(params: Params, cfg: ChainPolicyConfig) -> PolicyWeights:
    """The (A, V, is_key) of `params`; differentiable in params."""
    n, c = cfg.n_vertices, cfg.n_context
    if cfg.parameterization == "full":
        return PolicyWeights(params["A"], params["V"], jnp.ones((c,), bool))
    theta = params["theta"]
    a = jnp.einsum("j,juc->uc", theta, jnp.asarray(symmetric_classes(n), theta.dtype))
    return PolicyWeights(
        a,
        jnp.asarray(incidence_values(n), theta.dtype),
        jnp.arange(c) >= n,  # edges only
    )


def _mask_current(logits: Float[Array, "... N"], current) -> Float[Array, "... N"]:
    """-inf at the current vertex (per row of `current`, broadcast against logits[..., :])."""
    vertices = jnp.arange(logits.shape[-1])
    return jnp.where(vertices == jnp.asarray(current)[..., None], -jnp.inf, logits)


def prefix_logits(
    weights: PolicyWeights, context: Int[Array, " T"], cfg: ChainPolicyConfig
) -> Float[Array, "T N"]:
    """Causal next-vertex logits at every position of one context-id sequence (the code's forward).

    Row t only reads context[0..t], so entries after the part of a buffer already written can
    be anything. An explicit (T, T) score matrix, causal and key masks, then the values: O(T^2 N)
    for both attentions. (The code's linear branch multiplies prefix token counts (T, C) by the
    gathered A rows, O(T C N): the same sum, slower while T < C = N^2, as always here.)

    Args:
        weights: the policy matrices.
        context: (T,) int32 context ids (vertices < N, edges >= N).
        cfg: the policy config.

    Returns:
        (T, N) logits (1/tau included; -inf at the current vertex with `mask_current`). Rows
        whose token is not a vertex use the zero query, as in the code.
    """
    n = cfg.n_vertices
    is_vertex = context < n
    queries = jnp.where(is_vertex[:, None], weights.A[jnp.minimum(context, n - 1)], 0.0)  # (T, C)
    scores = queries[:, context]  # (T, T): query position t, key position s
    visible = jnp.tril(jnp.ones(scores.shape, bool)) & weights.is_key[context][None, :]
    if cfg.attention == "linear":
        attention = jnp.where(visible, scores, 0.0)
    else:
        attention = jax.nn.softmax(jnp.where(visible, scores, -jnp.inf), axis=-1)
    logits = attention @ weights.V[context] / cfg.temperature
    if cfg.mask_current:
        logits = jnp.where(is_vertex[:, None], _mask_current(logits, context), logits)
    return logits


def init_decoder(
    weights: PolicyWeights, prompt: Int[Array, " L"], cfg: ChainPolicyConfig
) -> DecoderState:
    """Key summaries of a prompt (context ids (L,)) for every query vertex; O(L N^2).

    Returns:
        linear: {"S": (N, N)}; softmax: {"num": (N, N), "den": (N,), "max": (N,)} ("max" carries
        no gradient: the logits do not depend on it). See the module docstring. The prompt must
        contain a key (it always holds an edge).
    """
    return jax.tree.map(lambda x: x[0], init_decoders(weights, prompt[None], cfg))


def init_decoders(
    weights: PolicyWeights, prompts: Int[Array, "B L"], cfg: ChainPolicyConfig
) -> DecoderState:
    """`init_decoder` of B prompts (context ids (B, L)): every leaf gains a leading axis B."""
    if cfg.attention == "linear":
        return {"S": _prompt_outer_sum(weights.A.T, weights.V, weights.is_key, prompts)}
    scores = weights.A.T[prompts]  # (B, L, N): score of each prompt key under every query
    masked = jnp.where(weights.is_key[prompts][..., None], scores, -jnp.inf)
    # The max over the prompt as L elementwise maxima, and e materialised: XLA:CPU otherwise
    # runs a slow reduction and recomputes the exponentials inside the sum of outer products.
    top = functools.reduce(jnp.maximum, [masked[:, i] for i in range(masked.shape[1])])
    top = jax.lax.stop_gradient(top)  # (B, N)
    e = jax.lax.optimization_barrier(jnp.exp(masked - top[:, None, :]))  # 0 at non-keys
    num = _sum_of_outer_products(e, weights.V[prompts])
    return {"num": num, "den": jnp.sum(e, axis=1), "max": top}


@jax.custom_jvp
def _sum_of_outer_products(a: Float[Array, "B L N"], v: Float[Array, "B L M"]) -> Array:
    """(B, N, M) sum over l of a[:, l] (x) v[:, l], i.e. einsum("bln,blm->bnm").

    Computed as L fused multiply-adds, 2-3x faster than XLA:CPU's batched matmul of these small
    shapes; the derivative uses the einsum, whose transpose (for grad) is fast, unlike the
    unrolled sum's.
    """
    return sum(a[:, i, :, None] * v[:, i, None, :] for i in range(a.shape[1]))


@_sum_of_outer_products.defjvp
def _sum_of_outer_products_jvp(primals, tangents):
    (a, v), (da, dv) = primals, tangents
    tangent = jnp.einsum("bln,blm->bnm", da, v) + jnp.einsum("bln,blm->bnm", a, dv)
    return _sum_of_outer_products(a, v), tangent


@jax.custom_jvp
def _prompt_outer_sum(
    scores: Float[Array, "C N"], values: Float[Array, "C M"], is_key: Bool[Array, " C"], prompts
) -> Array:
    """(B, N, M) sum over the keys c of each prompt (context ids (B, L)) of scores[c] (x)
    values[c]: the linear table S = A[:, prompt] V[prompt].

    The C outer products are formed once and each prompt sums L of them (rows of C x NM): 2x
    faster than `_sum_of_outer_products` of the gathered rows (which the derivative uses).
    """
    n_tokens, n = scores.shape
    outer = jnp.where(is_key[:, None, None], scores[:, :, None] * values[:, None, :], 0.0)
    outer = jax.lax.optimization_barrier(outer.reshape(n_tokens, -1))  # formed once
    total = sum(outer[prompts[:, i]] for i in range(prompts.shape[1]))
    return total.reshape(prompts.shape[0], n, values.shape[1])


@_prompt_outer_sum.defjvp
def _prompt_outer_sum_jvp(primals, tangents):
    scores, values, is_key, prompts = primals
    d_scores, d_values = tangents[:2]
    keys = is_key[prompts][..., None]  # (B, L, 1)
    a, v = jnp.where(keys, scores[prompts], 0.0), values[prompts]
    da, dv = jnp.where(keys, d_scores[prompts], 0.0), d_values[prompts]
    tangent = jnp.einsum("bln,blm->bnm", da, v) + jnp.einsum("bln,blm->bnm", a, dv)
    # The primal from the rows gathered anyway: under grad, XLA materialises the L gathers of
    # the C x NM products instead of fusing them.
    return _sum_of_outer_products(a, v), tangent


def summary_logits(
    weights: PolicyWeights,
    prompt_state: DecoderState,
    current: Int[Array, ""],
    counts: Float[Array, " N"],
    cfg: ChainPolicyConfig,
) -> Float[Array, " N"]:
    """(N,) next-vertex logits of the query vertex `current` after a prompt and generated vertices.

    The prefix is the prompt summarised by `init_decoder` (`prompt_state`, not updated) followed
    by vertex tokens, `counts[w]` of them with label w (in any order: there are no positions),
    the query's own token included. O(N^2), independent of the prefix length. Softmax combines
    the prompt's and the vertices' parts with a stable log-sum-exp: both are scaled by
    exp(-max), the max over the keys present, so the larger part holds a term equal to 1.

    Args:
        weights: the policy matrices.
        prompt_state: `init_decoder(weights, prompt, cfg)` of one prompt.
        current: the query vertex u (the last token of the prefix).
        counts: (N,) float multiplicities of the generated vertex tokens.
        cfg: the policy config.
    """
    one = jax.tree.map(lambda x: x[None], prompt_state)
    current = jnp.asarray(current)[None, None]
    return summary_logits_batched(weights, one, current, counts[None, None], cfg)[0, 0]


def summary_logits_batched(
    weights: PolicyWeights,
    prompt_states: DecoderState,
    current: Int[Array, "B K"],
    counts: Float[Array, "B K N"],
    cfg: ChainPolicyConfig,
) -> Float[Array, "B K N"]:
    """`summary_logits` of K queries on each of B prompts (`init_decoders` of the prompts).

    Only the vertex columns A[:, :N], rows V[:N] and flags is_key[:N] of `weights` are read, so
    weights cut to those (as the sampling loop passes them) give the same logits.
    """
    n = cfg.n_vertices
    scores = weights.A[:, :n][current]  # (B, K, N) vertex keys under each query
    values = weights.V[:n]  # (N, N)
    counts = jnp.where(weights.is_key[:n], counts, 0.0)
    flat_index = jnp.arange(current.shape[0])[:, None] * n + current  # (B, K) rows of B x N

    def rows(table):  # the queries' rows of per-prompt tables: (B, N, ...) -> (B, K, ...)
        return table.reshape(-1, *table.shape[2:])[flat_index]

    if cfg.attention == "linear":
        logits = rows(prompt_states["S"]) + (counts * scores) @ values
    else:
        present = counts > 0
        prompt_max = rows(prompt_states["max"])  # (B, K)
        vertex_max = jnp.max(jnp.where(present, scores, -jnp.inf), axis=-1)
        top = jax.lax.stop_gradient(jnp.maximum(prompt_max, vertex_max))
        e = counts * jnp.exp(jnp.where(present, scores - top[..., None], -jnp.inf))
        scale = jnp.exp(prompt_max - top)
        num = rows(prompt_states["num"]) * scale[..., None] + e @ values
        den = rows(prompt_states["den"]) * scale + jnp.sum(e, axis=-1)
        logits = num / den[..., None]
    logits = logits / cfg.temperature
    return _mask_current(logits, current) if cfg.mask_current else logits
