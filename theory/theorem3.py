"""Theorem 3 of the active-dormant paper measured on one problem (spec D.4): the alpha law, the
value drain, the flat stationary family and the closed-form flow against `jax.grad`.

Pure functions of a `SimplifiedProblem` (float64 inside, numpy out); the `theorem3`
experiment turns their numbers into claims.
"""

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .flows import FlowSolution, solve_alpha_flow, solve_beta_flow
from .predictions import (
    alpha_curvature_at_stationary,
    alpha_log_offset,
    beta_limit,
    beta_limit_paper,
    hessian,
    stationary_point,
)
from .simplified_model import SimplifiedProblem, alpha_dot, beta_dot, loss, q_matrix


@dataclasses.dataclass(frozen=True)
class AlphaLaw:
    """The alpha-flow with beta = c 1 from alpha(1) = 0, against the (1/2) log t law.

    Attributes:
        flow: the solution for c = 0 at 101 log-spaced times in [1, horizon].
        c_shift: max |alpha_{c=0}(t) - alpha_{c=2.5}(t)| over t and v (theory: 0).
        offset: (T, V) alpha_v(t) - (1/2) log t.
        predicted_offset: (V,) (1/2) log(2 pi_v Var_{p_v}(phi)).
        slope: (V,) d alpha_v / d log t on [horizon / 10, horizon].
    """

    flow: FlowSolution
    c_shift: float
    offset: np.ndarray
    predicted_offset: np.ndarray
    slope: np.ndarray

    @property
    def error(self) -> np.ndarray:
        """(V,) |offset - predicted| at the final time."""
        return np.abs(self.offset[-1] - self.predicted_offset)


def alpha_law(problem: SimplifiedProblem, horizon: float) -> AlphaLaw:
    """Solve the alpha-flow (Theorem 3 (i)) up to t = `horizon` and measure its log law."""
    ts = np.geomspace(1.0, horizon, 101)
    alpha0 = np.zeros(problem.P.shape[0])
    flow = solve_alpha_flow(problem, alpha0, 0.0, ts)
    other_c = solve_alpha_flow(problem, alpha0, 2.5, ts)
    with jax.enable_x64(True):
        predicted = np.asarray(alpha_log_offset(problem.astype(jnp.float64)))
    i = np.argmin(np.abs(ts - horizon / 10))
    slope = (flow.alpha[-1] - flow.alpha[i]) / np.log(ts[-1] / ts[i])
    return AlphaLaw(
        flow=flow,
        c_shift=float(np.abs(flow.alpha - other_c.alpha).max()),
        offset=flow.alpha - 0.5 * np.log(ts)[:, None],
        predicted_offset=predicted,
        slope=slope,
    )


@dataclasses.dataclass(frozen=True)
class ValueDrain:
    """The beta-flow at fixed alpha 1 (Theorem 3 (ii)) and the two candidate limits.

    Attributes:
        flow: beta(t) at log-spaced t in [1e-3, 1e7].
        corrected: (V,) mean(beta0) - e^-alpha (phi - mean phi).
        paper: (V,) the paper's printed mean(beta0) - e^-alpha phi.
        predicted_miss: e^-alpha mean(phi), the paper's error on every coordinate.
    """

    flow: FlowSolution
    corrected: np.ndarray
    paper: np.ndarray
    predicted_miss: float


def value_drain(problem: SimplifiedProblem, alpha: float, seed: int) -> ValueDrain:
    """Solve the beta-flow from a N(0, 1) beta0 drawn from `seed`."""
    beta0 = np.random.default_rng(seed).normal(size=problem.P.shape[0])
    flow = solve_beta_flow(problem, alpha, beta0, np.geomspace(1e-3, 1e7, 60))
    with jax.enable_x64(True):
        p64 = problem.astype(jnp.float64)
        corrected = np.asarray(beta_limit(p64, alpha, beta0))
        paper = np.asarray(beta_limit_paper(p64, alpha, beta0))
    miss = float(np.exp(-alpha) * np.mean(problem.phi))
    return ValueDrain(flow, corrected, paper, miss)


@jax.jit
def _stationary_numbers(problem: SimplifiedProblem, alphas, cs):
    """At each (alpha, c): ||grad loss||, max |Q - P|, Hessian eigenvalues (2V,), and the
    relative error (V,) of the alpha-diagonal of the Hessian against pi_v Var(phi)/(e^a + W)^2."""
    n = problem.P.shape[0]

    def one(alpha, c):
        a, b = stationary_point(problem, alpha, c)
        grad = jnp.concatenate(jax.grad(loss, argnums=(0, 1))(a, b, problem))
        hess = hessian(a, b, problem)
        curvature = alpha_curvature_at_stationary(problem, alpha)
        return (
            jnp.linalg.norm(grad),
            jnp.abs(q_matrix(a, b, problem) - problem.P).max(),
            jnp.linalg.eigvalsh(hess),
            jnp.diag(hess)[:n] / curvature - 1,
        )

    return jax.vmap(one)(alphas, cs)


def stationary_family(
    problem: SimplifiedProblem,
    points: Sequence[tuple[float, float]],
    zero_eigenvalue: float,
) -> dict[str, np.ndarray]:
    """Gradient, Q - P, Hessian spectrum and alpha-curvature at M points (float64).

    Args:
        problem: the D.1 instance.
        points: M points (alpha, c) of the stationary family (alpha 1, c 1 - e^-alpha phi).
        zero_eigenvalue: |Hessian eigenvalue| below this counts as zero.

    Returns (M,) `grad_norm`, `q_error`, `n_zero`, `min_eig`, `smallest_nonzero` and
    `curvature_error` (max over v), one entry per point.
    """
    alphas, cs = np.asarray(points, np.float64).T
    with jax.enable_x64(True):
        grad_norm, q_error, eigs, curvature = (
            np.asarray(x)
            for x in _stationary_numbers(
                problem.astype(jnp.float64), jnp.asarray(alphas), jnp.asarray(cs)
            )
        )
    zero = np.abs(eigs) < zero_eigenvalue
    return {
        "grad_norm": grad_norm,
        "q_error": q_error,
        "n_zero": zero.sum(axis=1),
        "min_eig": eigs.min(axis=1),
        "smallest_nonzero": np.where(zero, np.inf, np.abs(eigs)).min(axis=1),
        "curvature_error": np.abs(curvature).max(axis=1),
    }


def gradient_check(problem: SimplifiedProblem, seed: int, n_points: int) -> float:
    """max |closed-form flow + jax.grad(loss)| over `n_points` (alpha, beta) ~ N(0, 1) drawn
    from `seed`, alpha- and beta-components together (float64)."""
    n = problem.P.shape[0]
    points = np.random.default_rng(seed).normal(size=(n_points, 2, n))
    with jax.enable_x64(True):
        p64 = problem.astype(jnp.float64)

        @jax.jit
        @jax.vmap
        def miss(point):
            alpha, beta = point
            grad_alpha, grad_beta = jax.grad(loss, argnums=(0, 1))(alpha, beta, p64)
            return jnp.maximum(
                jnp.abs(alpha_dot(alpha, beta, p64) + grad_alpha).max(),
                jnp.abs(beta_dot(alpha, beta, p64) + grad_beta).max(),
            )

        return float(miss(jnp.asarray(points)).max())
