r"""The simplified (alpha, beta) model of the active-dormant paper (spec D.1) and its gradient flow.

For each non-trigger query token v, with a_v = e^{alpha_v} and phi = W * xi (fixed counts W_k,
value scales xi_k >= 0, W = sum_k W_k):

    u_vk = (a_v beta_k + phi_k) / (a_v + W),     q_v = softmax(log p_v + u_v),
    loss(alpha, beta) = sum_v pi_v CE(p_v, q_v) = sum_v pi_v [H(p_v) + KL(p_v || q_v)].

Gradient flow (signs re-derived and checked against `jax.grad`; spec D.2):

    d alpha_v / dt = pi_v a_v / (a_v + W)^2 * sum_k (p_vk - q_vk) (W beta_k - phi_k)
    d beta_j / dt  = sum_k pi_k a_k / (a_k + W) * (p_kj - q_kj)

Every function here is pure `jax.numpy` and follows the dtype of its inputs; the theory is run
in float64 (see `theory.flows`, whose entry points enter `jax.enable_x64` themselves).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SimplifiedProblem:
    """Fixed data of the simplified model over V tokens.

    Attributes:
        P: (V, V) row-stochastic next-token probabilities p_vk.
        pi: (V,) non-negative token weights (stationary weights; 0 excludes a token).
        W: (V,) fixed token counts W_k >= 0 in the context (W = sum_k W_k).
        xi: (V,) value scales xi_k >= 0.
    """

    P: Float[Array, "V V"]
    pi: Float[Array, " V"]
    W: Float[Array, " V"]
    xi: Float[Array, " V"]

    @property
    def phi(self) -> Float[Array, " V"]:
        """phi_k = W_k xi_k."""
        return self.W * self.xi

    @property
    def W_total(self) -> Float[Array, ""]:
        return self.W.sum()

    def astype(self, dtype) -> "SimplifiedProblem":
        return jax.tree.map(lambda x: jnp.asarray(x, dtype), self)


def random_problem(seed: int, n_tokens: int = 6) -> SimplifiedProblem:
    """The spec D.4 test problem, as float64 numpy arrays.

    P has strictly positive Dirichlet(1) rows, pi is a positive simplex vector, W_k is uniform on
    {1, 2, 3} and xi_k uniform on (0.5, 2).
    """
    rng = np.random.default_rng(seed)
    return SimplifiedProblem(
        P=rng.dirichlet(np.ones(n_tokens), size=n_tokens),
        pi=rng.dirichlet(np.ones(n_tokens)),
        W=rng.integers(1, 4, n_tokens).astype(np.float64),
        xi=rng.uniform(0.5, 2.0, n_tokens),
    )


def _sink_share(alpha, W_total):
    """a / (a + W) = sigmoid(alpha - log W), without overflow for large alpha."""
    return jax.nn.sigmoid(alpha - jnp.log(W_total))


def logit_shift(alpha: Float[Array, " V"], beta: Float[Array, " V"], problem: SimplifiedProblem):
    """u: (V, V) with u_vk = (a_v beta_k + phi_k) / (a_v + W)."""
    share = _sink_share(alpha, problem.W_total)[:, None]  # a / (a + W)
    return share * beta[None, :] + (1 - share) * (problem.phi / problem.W_total)[None, :]


def _log_p(P):
    return jnp.log(jnp.where(P > 0, P, 1.0))


def q_matrix(alpha, beta, problem: SimplifiedProblem) -> Float[Array, "V V"]:
    """Q: (V, V), the model's next-token law q_v for each query token v."""
    logits = jnp.where(
        problem.P > 0, _log_p(problem.P) + logit_shift(alpha, beta, problem), -jnp.inf
    )
    return jax.nn.softmax(logits, axis=-1)


def _cross_entropy(P, Q):
    """(V,) CE(p_v, q_v), dropping the terms with p_vk = 0."""
    return -jnp.sum(jnp.where(P > 0, P * jnp.log(jnp.where(P > 0, Q, 1.0)), 0.0), axis=-1)


def loss(alpha, beta, problem: SimplifiedProblem) -> Float[Array, ""]:
    """sum_v pi_v CE(p_v, q_v)."""
    return jnp.dot(problem.pi, _cross_entropy(problem.P, q_matrix(alpha, beta, problem)))


def excess_loss(alpha, beta, problem: SimplifiedProblem) -> Float[Array, ""]:
    """sum_v pi_v KL(p_v || q_v) = loss - sum_v pi_v H(p_v) (zero exactly when Q = P)."""
    entropy = _cross_entropy(problem.P, problem.P)
    return loss(alpha, beta, problem) - jnp.dot(problem.pi, entropy)


def alpha_dot(alpha, beta, problem: SimplifiedProblem) -> Float[Array, " V"]:
    """d alpha_v / dt = pi_v a_v / (a_v + W)^2 sum_k (p_vk - q_vk)(W beta_k - phi_k)."""
    W = problem.W_total
    share = _sink_share(alpha, W)
    residual = problem.P - q_matrix(alpha, beta, problem)  # (V, V)
    drive = residual @ (W * beta - problem.phi)  # (V,)
    return problem.pi * share * (1 - share) / W * drive  # a / (a + W)^2 = share (1 - share) / W


def beta_dot(alpha, beta, problem: SimplifiedProblem) -> Float[Array, " V"]:
    """d beta_j / dt = sum_k pi_k a_k / (a_k + W) (p_kj - q_kj)."""
    weights = problem.pi * _sink_share(alpha, problem.W_total)
    return weights @ (problem.P - q_matrix(alpha, beta, problem))
