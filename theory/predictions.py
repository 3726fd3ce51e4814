"""Closed-form predictions of Theorem 3 (corrected where the paper's formula is wrong).

Let phi = W * xi and Var_{p_v}(phi) = sum_k p_vk phi_k^2 - (sum_k p_vk phi_k)^2.

* alpha law (beta = c 1): alpha_v(t) = (1/2) log t + r_v(t) with
  r_v(t) -> (1/2) log(2 pi_v Var_{p_v}(phi)).
* beta limit (alpha = alpha 1 fixed): mean(beta) is conserved and
  beta(inf) = mean(beta0) 1 - e^{-alpha} (phi - mean(phi) 1).
  The paper prints mean(beta0) 1 - e^{-alpha} phi, which misses by e^{-alpha} mean(phi).
* stationary family: (alpha 1, c 1 - e^{-alpha} phi) has Q = P for every alpha, c.

Functions are pure `jax.numpy`; call them inside `jax.enable_x64(True)` for float64 results.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from theory.simplified_model import SimplifiedProblem, loss


def phi_variance(problem: SimplifiedProblem) -> Float[Array, " V"]:
    """Var_{p_v}(phi) for every v."""
    mean = problem.P @ problem.phi
    return problem.P @ problem.phi**2 - mean**2


def alpha_log_offset(problem: SimplifiedProblem) -> Float[Array, " V"]:
    """lim_t (alpha_v(t) - (1/2) log t) = (1/2) log(2 pi_v Var_{p_v}(phi))."""
    return 0.5 * jnp.log(2 * problem.pi * phi_variance(problem))


def alpha_asymptote(problem: SimplifiedProblem, t) -> Float[Array, "... V"]:
    """(1/2) log t + the offset: the large-t prediction of alpha_v(t), broadcast over t."""
    return 0.5 * jnp.log(jnp.asarray(t))[..., None] + alpha_log_offset(problem)


def beta_limit(problem: SimplifiedProblem, alpha, beta0) -> Float[Array, " V"]:
    """Corrected beta-flow limit at fixed scalar alpha: mean(beta0) - e^{-alpha}(phi - mean phi)."""
    phi = problem.phi
    return jnp.mean(beta0) - jnp.exp(-alpha) * (phi - jnp.mean(phi))


def beta_limit_paper(problem: SimplifiedProblem, alpha, beta0) -> Float[Array, " V"]:
    """The limit as printed in the paper (Thm 3 / Thm 10): mean(beta0) - e^{-alpha} phi. Wrong."""
    return jnp.mean(beta0) - jnp.exp(-alpha) * problem.phi


def stationary_point(problem: SimplifiedProblem, alpha, c):
    """(alpha 1, c 1 - e^{-alpha} phi): a global minimiser with Q = P, for any alpha and c."""
    phi = problem.phi
    return jnp.full_like(phi, alpha), c - jnp.exp(-alpha) * phi


def hessian(alpha, beta, problem: SimplifiedProblem) -> Float[Array, "2V 2V"]:
    """Hessian of the loss in the stacked variables (alpha, beta), by `jax.hessian`."""
    n = alpha.shape[0]
    return jax.hessian(lambda y: loss(y[:n], y[n:], problem))(jnp.concatenate([alpha, beta]))


def alpha_curvature_at_stationary(problem: SimplifiedProblem, alpha) -> Float[Array, " V"]:
    """d^2 loss / d alpha_v^2 on the stationary family: pi_v Var_{p_v}(phi) / (e^alpha + W)^2."""
    return problem.pi * phi_variance(problem) / (jnp.exp(alpha) + problem.W_total) ** 2
