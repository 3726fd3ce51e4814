r"""The Markov-chain reduction of chain identification (cot_rl spec §3.2, a reconstruction).

Graph: two directed chains a_1 -> ... -> a_n and b_1 -> ... -> b_n plus `n_isolated` isolated
vertices, N = 2n + n_isolated vertex labels. Vertex indices: a_i -> i - 1, b_i -> n + i - 1,
then the isolated vertices. `stack_chain_problems` pads problems of several n to one size with
indices that are not vertices (`valid` False), so that one compiled function serves them all.

Policy: one linear-attention layer with fixed V (edge rows 1{v in e}, vertex rows 0) and a
permutation-symmetric A that takes three values on the edge keys, theta = (alpha, beta, gamma).
From the current vertex u,

    z_u(v) = (1/tau) sum_j theta_j c_j(u, v),    P(u, v) = softmax_v z_u(v),

where c_j(u, v) counts the edges incident to v that are in class j relative to u (alpha: the
edge leaves u; beta: it enters u; gamma: u is not on it). `mask_self` forbids u -> u. Softmax
attention over the edge keys (the Markov variant of spec §3.3) puts the attention weight
e^{theta_j} / Z_u in place of theta_j, with Z_u = sum_j (number of class-j edges of u) e^{theta_j}.

The sinks (a_n, b_n and the isolated vertices) absorb. h(u) is the probability that the first
sink reached from u is a_n (within `horizon` moves, if one is given):

    h = (I - Q)^{-1} r  (no horizon),    h^{(j+1)} = r + Q h^{(j)}, h^{(0)} = 0  (horizon H),

with Q = P[T, T] and r = P[T, a_n] on the transient set T. A start distribution D over the
number of steps s (start a_{n-s}) has loss L = sum_s D(s) (1 - h(a_{n-s})).

Functions are pure `jax.numpy` and follow the dtype of their inputs; run them in float64
(`jax.enable_x64(True)`), since hard-only gradients fall to 1e-12. `predict_chain` does that itself.
"""

import dataclasses
import functools
from collections.abc import Iterable, Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

ALPHA, BETA, GAMMA = 0, 1, 2


@dataclasses.dataclass(frozen=True)
class ChainModel:
    """Static settings of the reduced policy (hashable: a static argument under `jit`).

    Attributes:
        tau: temperature; logits are divided by it.
        mask_self: forbid the move u -> u (the code's `mask_past_verticies`; the final code
            experiments run without it).
        horizon: the number of moves allowed (the code's `max_new_tokens`); None for no limit.
        attention: "linear" (the theory model) or "softmax" over the edge keys.
    """

    tau: float = 1.0
    mask_self: bool = False
    horizon: int | None = None
    attention: Literal["linear", "softmax"] = "linear"

    def __post_init__(self):
        if not self.tau > 0:
            raise ValueError(f"tau must be positive, got {self.tau}")
        if self.horizon is not None and self.horizon < 1:
            raise ValueError(f"horizon must be None or >= 1, got {self.horizon}")
        if self.attention not in ("linear", "softmax"):
            raise ValueError(f"attention must be 'linear' or 'softmax', got {self.attention!r}")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ChainProblem:
    """One graph and start distribution over N vertex indices (a leading batch axis is allowed).

    Attributes:
        counts: (3, N, N) c_j(u, v) for j = alpha, beta, gamma, query u, candidate v.
        valid: (N,) True at the vertices (False at padding).
        transient: (N,) True at a_1..a_{n-1} and b_1..b_{n-1}.
        target: (N,) one-hot at a_n.
        start: (N,) probability of starting at each vertex, D(s) at a_{n-s}.
    """

    counts: Float[Array, "3 N N"]
    valid: Bool[Array, " N"]
    transient: Bool[Array, " N"]
    target: Float[Array, " N"]
    start: Float[Array, " N"]


def uniform_steps(n: int, steps: Iterable[int] | None = None) -> np.ndarray:
    """D: (n - 1,) uniform over `steps` (default 1..n-1); entry s - 1 is D(s)."""
    steps = range(1, n) if steps is None else list(steps)
    if not steps or any(not 1 <= s <= n - 1 for s in steps):
        raise ValueError(f"steps must be a non-empty subset of 1..{n - 1}")
    dist = np.zeros(n - 1)
    dist[np.asarray(steps) - 1] = 1.0
    return dist / dist.sum()


def hard_steps(n: int) -> np.ndarray:
    """D = delta_{s = n - 1}: hard-only data (start a_1)."""
    return uniform_steps(n, [n - 1])


def mixed_steps(n: int, c: float, simple: int = 1) -> np.ndarray:
    """D_c = c delta_{s = simple} + (1 - c) delta_{s = n - 1}: mass c on simple examples."""
    if not 0 <= c <= 1:
        raise ValueError(f"the mass c must lie in [0, 1], got {c}")
    return c * uniform_steps(n, [simple]) + (1 - c) * hard_steps(n)


def chain_problem(n: int, steps, *, n_isolated: int = 0) -> ChainProblem:
    """The two-chain graph of chain size n with `n_isolated` isolated vertices (numpy arrays).

    Args:
        n: chain size (>= 2); the chains have n - 1 edges each.
        steps: (n - 1,) start distribution D over s = 1..n-1 (e.g. `uniform_steps(n)`).
        n_isolated: isolated vertices (sinks), as in the code's D_m vocabulary of 24 labels.
    """
    steps = np.asarray(steps, np.float64)
    if n < 2 or n_isolated < 0:
        raise ValueError(f"need n >= 2 and n_isolated >= 0, got {n}, {n_isolated}")
    if steps.shape != (n - 1,) or np.any(steps < 0) or not np.isclose(steps.sum(), 1.0):
        raise ValueError(f"steps must be a probability vector of length {n - 1}")
    size = 2 * n + n_isolated
    edges = [(i, i + 1) for i in range(n - 1)] + [(n + i, n + i + 1) for i in range(n - 1)]
    counts = np.zeros((3, size, size))
    for u in range(size):
        for w, z in edges:
            j = ALPHA if w == u else BETA if z == u else GAMMA
            counts[j, u, w] += 1
            counts[j, u, z] += 1
    transient = np.zeros(size, bool)
    transient[: n - 1] = transient[n : 2 * n - 1] = True
    target = np.zeros(size)
    target[n - 1] = 1.0
    start = np.zeros(size)
    start[: n - 1] = steps[::-1]  # a_{n-s} has index n - s - 1
    return ChainProblem(counts, np.ones(size, bool), transient, target, start)


def pad_chain_problem(problem: ChainProblem, size: int) -> ChainProblem:
    """Append `size - N` padding indices (not vertices; they never receive probability)."""
    extra = size - problem.valid.shape[-1]
    if extra < 0:
        raise ValueError(f"cannot pad a problem of {problem.valid.shape[-1]} indices to {size}")
    return ChainProblem(
        np.pad(problem.counts, ((0, 0), (0, extra), (0, extra))),
        *(np.pad(x, (0, extra)) for x in (problem.valid, problem.transient)),
        *(np.pad(x, (0, extra)) for x in (problem.target, problem.start)),
    )


def stack_chain_problems(problems: Sequence[ChainProblem], size: int | None = None) -> ChainProblem:
    """Pad single problems to `size` indices (default: the largest N) and stack them along a
    new leading axis. A common size lets one compiled function serve every sweep."""
    size = max(p.valid.shape[0] for p in problems) if size is None else size
    padded = [pad_chain_problem(jax.tree.map(np.asarray, p), size) for p in problems]
    return jax.tree.map(lambda *xs: np.stack(xs), *padded)


def chain_problems(
    ns: Sequence[int], steps, *, n_vocab: int | None = None, size: int | None = None
) -> ChainProblem:
    """`stack_chain_problems` of `chain_problem(n, steps(n))` for each n in ns.

    Args:
        steps: a function n -> (n - 1,) start distribution, e.g. `uniform_steps`.
        n_vocab: if given, every graph has n_vocab labels (n_vocab - 2n isolated vertices), as in
            the code's D_m setup (24); otherwise N = 2n.
        size: pad to this many indices (default: the largest N).
    """
    problems = [
        chain_problem(n, steps(n), n_isolated=0 if n_vocab is None else n_vocab - 2 * n) for n in ns
    ]
    return stack_chain_problems(problems, size)


def chain_class_sizes(n_vocab) -> Float[Array, "... 3"]:
    """Number of entries of A in each class over all N vertex queries and N(N-1) edge tokens:
    N(N-1) (alpha), N(N-1) (beta), N(N-1)(N-2) (gamma). n_vocab: () or (B,)."""
    n_vocab = jnp.asarray(n_vocab, jnp.result_type(float))
    pairs = n_vocab * (n_vocab - 1)
    return jnp.stack([pairs, pairs, pairs * (n_vocab - 2)], axis=-1)


def _attention_weights(theta, problem: ChainProblem, model: ChainModel) -> Float[Array, "3 N"]:
    """(3, N): the weight of a class-j edge key for query u (theta_j for linear attention)."""
    n_edges = problem.counts.sum(-1) / 2  # (3, N): class-j edges of query u
    if model.attention == "linear":
        return jnp.broadcast_to(theta[:, None], n_edges.shape)
    has_edges = n_edges.sum(0) > 0
    log_n = jnp.log(jnp.where(n_edges > 0, n_edges, 1.0))
    scores = jnp.where(n_edges > 0, theta[:, None] + log_n, -jnp.inf)
    log_z = jax.nn.logsumexp(jnp.where(has_edges, scores, 0.0), axis=0)  # (N,)
    return jnp.where(has_edges, jnp.exp(theta[:, None] - log_z), 0.0)


def _raw_logits(theta, problem: ChainProblem, model: ChainModel) -> Float[Array, "N N"]:
    weights = _attention_weights(theta, problem, model)
    return jnp.einsum("ju,juv->uv", weights, problem.counts) / model.tau


def _logit_jacobian(theta, problem: ChainProblem, model: ChainModel) -> Float[Array, "3 N N"]:
    """d z_u(v) / d theta_j: c_j / tau (linear) or
    a_j(u) (c_j(u, v) - n_j(u) tau z_u(v)) / tau (softmax, a = attention weight)."""
    if model.attention == "linear":
        return problem.counts / model.tau
    weights = _attention_weights(theta, problem, model)
    n_edges = problem.counts.sum(-1) / 2
    z = _raw_logits(theta, problem, model) * model.tau
    jac = problem.counts - n_edges[:, :, None] * z[None]
    return weights[:, :, None] * jac / model.tau


def chain_transition_matrix(theta, problem: ChainProblem, model: ChainModel) -> Float[Array, "N N"]:
    """P: (N, N) next-vertex law from every index u (rows of padding indices are unused)."""
    z = jnp.where(problem.valid[None, :], _raw_logits(theta, problem, model), -jnp.inf)
    if model.mask_self:
        z = jnp.where(jnp.eye(z.shape[-1], dtype=bool), -jnp.inf, z)
    return jax.nn.softmax(z, axis=-1)


def _absorbing_parts(P, problem: ChainProblem):
    """Q: (N, N) P on T x T (zero elsewhere) and r: (N,) P[u, a_n] on T (zero elsewhere)."""
    transient = problem.transient
    Q = jnp.where(transient[:, None] & transient[None, :], P, 0.0)
    r = jnp.where(transient, P @ problem.target, 0.0)
    return Q, r


def chain_success_probabilities(
    theta, problem: ChainProblem, model: ChainModel
) -> Float[Array, " N"]:
    """h_full: (N,) probability that the first sink is a_n (1 at a_n, 0 at the other sinks).

    Args:
        theta: (3,) (alpha, beta, gamma).
    """
    Q, r = _absorbing_parts(chain_transition_matrix(theta, problem, model), problem)
    if model.horizon is None:
        h = jnp.linalg.solve(jnp.eye(Q.shape[-1], dtype=Q.dtype) - Q, r)
    else:
        h = jax.lax.fori_loop(0, model.horizon, lambda _, h: r + Q @ h, jnp.zeros_like(r))
    return h + problem.target


def chain_loss(theta, problem: ChainProblem, model: ChainModel) -> Float[Array, ""]:
    """L(theta) = sum_u start(u) (1 - h(u)): the expected outcome loss, 1 - success."""
    h = chain_success_probabilities(theta, problem, model)
    return jnp.sum(problem.start * (1.0 - h))


def chain_loss_grad_adjoint(theta, problem: ChainProblem, model: ChainModel) -> Float[Array, " 3"]:
    r"""dL/dtheta by the adjoint method (an independent check of `jax.grad(chain_loss)`).

    No horizon: with (I - Q)^T lambda = w, w = -start on T,

        dL/dP(u, v) = lambda_u h_full(v).

    Horizon H: h^{(j+1)} = P[T, :] (h^{(j)} + target), so with lambda_j = (Q^T)^{H-1-j} w,

        dL/dP(u, v) = sum_{j<H} lambda_j(u) (h^{(j)}(v) + target(v)).

    Then dL/dz_u(v) = P(u, v) (dL/dP(u, v) - sum_w P(u, w) dL/dP(u, w)) and
    dL/dtheta_j = sum_{u,v} dL/dz_u(v) dz_u(v)/dtheta_j; for linear attention this is the
    spec's lambda^T (dP/dtheta_j) h_full with dP/dtheta_j = P (c_j - sum_w P c_j) / tau.
    """
    P = chain_transition_matrix(theta, problem, model)
    Q, r = _absorbing_parts(P, problem)
    w = -jnp.where(problem.transient, problem.start, 0.0)
    if model.horizon is None:
        eye = jnp.eye(Q.shape[-1], dtype=Q.dtype)
        h_full = jnp.linalg.solve(eye - Q, r) + problem.target
        lam = jnp.linalg.solve((eye - Q).T, w)
        dL_dP = jnp.outer(lam, h_full)
    else:
        _, hs = jax.lax.scan(lambda h, _: (r + Q @ h, h), jnp.zeros_like(r), length=model.horizon)
        _, lams = jax.lax.scan(lambda lam, _: (Q.T @ lam, lam), w, length=model.horizon)
        dL_dP = lams[::-1].T @ (hs + problem.target)  # lams[k] = (Q^T)^k w = lambda_{H-1-k}
    dL_dz = P * (dL_dP - jnp.sum(P * dL_dP, axis=-1, keepdims=True))
    return jnp.einsum("uv,juv->j", dL_dz, _logit_jacobian(theta, problem, model))


def chain_move_probabilities(
    theta, problem: ChainProblem, model: ChainModel
) -> Float[Array, "3 N"]:
    """(3, N): p_fwd (to the successor), p_bwd (to the predecessor) and p_self from each
    transient vertex; 0 off the transient set."""
    P = chain_transition_matrix(theta, problem, model)
    off_diagonal = ~jnp.eye(P.shape[-1], dtype=bool)
    forward = jnp.sum(jnp.where((problem.counts[ALPHA] > 0) & off_diagonal, P, 0.0), -1)
    backward = jnp.sum(jnp.where((problem.counts[BETA] > 0) & off_diagonal, P, 0.0), -1)
    moves = jnp.stack([forward, backward, jnp.diagonal(P)])
    return jnp.where(problem.transient, moves, 0.0)


@functools.partial(jax.jit, static_argnums=2)
def _predict(theta, problem: ChainProblem, model: ChainModel):
    loss, grad = jax.value_and_grad(chain_loss)(theta, problem, model)
    return 1.0 - loss, chain_success_probabilities(theta, problem, model), grad


@dataclasses.dataclass(frozen=True)
class ChainPrediction:
    """The reduced model's prediction for one setting (numpy float64).

    Attributes:
        success: sum_s D(s) h(a_{n-s}), the probability that a rollout ends at the target.
        success_by_step: (n - 1,) h(a_{n-s}) for s = 1..n-1.
        loss_grad: (3,) dL/d(alpha, beta, gamma) of L = 1 - success (the expected REINFORCE
            gradient on the symmetric subspace, summed over the entries of each class).
    """

    success: float
    success_by_step: np.ndarray
    loss_grad: np.ndarray


def predict_chain(
    theta, n: int, steps, model: ChainModel, *, n_isolated: int = 0
) -> ChainPrediction:
    """Success probability and loss gradient of the reduced model, in float64.

    Args:
        theta: (3,) (alpha, beta, gamma), the symmetric values of A on the edge keys.
        n: chain size; the vocabulary has 2n + n_isolated vertex labels.
        steps: (n - 1,) start distribution D over s = 1..n-1.
        model: temperature, self-mask, horizon and attention kind.
    """
    with jax.enable_x64(True):
        problem = jax.tree.map(jnp.asarray, chain_problem(n, steps, n_isolated=n_isolated))
        success, h, grad = _predict(jnp.asarray(theta, jnp.float64), problem, model)
        by_step = np.asarray(h)[: n - 1][::-1]
        return ChainPrediction(float(success), by_step, np.asarray(grad))
