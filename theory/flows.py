"""Diffrax solvers for the gradient flows of the simplified model (float64).

Every public function enters `jax.enable_x64(True)` itself, converts its inputs to float64
there, and returns numpy float64 arrays, so callers in float32 code need no global switch.
The jitted solves are only ever traced inside that context, so they are traced once per shape.

Long horizons are integrated in log-time s = log t (d y / d s = t * d y / d t): the alpha-flow
needs t up to 1e8, where alpha grows like (1/2) log t.
"""

import dataclasses

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from theory.simplified_model import SimplifiedProblem, alpha_dot, beta_dot

RTOL, ATOL = 1e-11, 1e-12
MAX_STEPS = 100_000


@dataclasses.dataclass(frozen=True)
class FlowSolution:
    """A flow sampled at the requested times (numpy float64).

    Attributes:
        ts: (T,) times t.
        alpha: (T, V) alpha(t) (or (M, T, V) for a batch of initial conditions).
        beta: (T, V) beta(t), likewise.
        ok: whether diffrax reported success (for every member of a batch).
        num_steps: accepted + rejected solver steps (max over a batch).
    """

    ts: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    ok: bool
    num_steps: int


def _solve(field, y0, save_at, args):
    """Integrate dy/dt = field(t, y, args) from save_at[0] to save_at[-1] with Tsit5 and a tight
    PID controller; return (ys at save_at, success flag, number of solver steps)."""
    sol = dfx.diffeqsolve(
        dfx.ODETerm(field),
        dfx.Tsit5(),
        t0=save_at[0],
        t1=save_at[-1],
        dt0=None,
        y0=y0,
        args=args,
        saveat=dfx.SaveAt(ts=save_at),
        stepsize_controller=dfx.PIDController(rtol=RTOL, atol=ATOL),
        max_steps=MAX_STEPS,
        throw=False,
    )
    return sol.ys, sol.result == dfx.RESULTS.successful, sol.stats["num_steps"]


def _alpha_field_log_time(s, alpha, args):
    problem, c = args
    beta = jnp.full_like(alpha, c)
    return jnp.exp(s) * alpha_dot(alpha, beta, problem)


def _beta_field_log_time(s, beta, args):
    problem, alpha = args
    return jnp.exp(s) * beta_dot(alpha, beta, problem)


def _joint_field(t, y, problem):
    alpha, beta = y
    return alpha_dot(alpha, beta, problem), beta_dot(alpha, beta, problem)


def _alpha_path(problem, alpha0, c, log_ts):
    return _solve(_alpha_field_log_time, alpha0, log_ts, (problem, c))


def _beta_path(problem, alpha, beta0, log_ts):
    return _solve(_beta_field_log_time, beta0, log_ts, (problem, alpha))


def _joint_path(problem, alpha0, beta0, ts):
    return _solve(_joint_field, (alpha0, beta0), ts, problem)


_alpha_solve = eqx.filter_jit(_alpha_path)
_alpha_solve_batch = eqx.filter_jit(jax.vmap(_alpha_path, in_axes=(None, 0, None, None)))
_beta_solve = eqx.filter_jit(_beta_path)
_joint_solve = eqx.filter_jit(_joint_path)


def _f64(x):
    return jnp.asarray(x, jnp.float64)


def _check_times(ts, *, positive: bool) -> np.ndarray:
    ts = np.asarray(ts, np.float64)
    if ts.ndim != 1 or len(ts) < 2 or np.any(np.diff(ts) <= 0):
        raise ValueError("ts must be a strictly increasing 1-D array of at least two times")
    if positive and ts[0] <= 0:
        raise ValueError("log-time integration needs ts[0] > 0")
    return ts


def solve_alpha_flow(problem: SimplifiedProblem, alpha0, c: float, ts) -> FlowSolution:
    """The alpha-flow with beta = c * 1 held fixed (Theorem 3 (i)), from alpha(ts[0]) = alpha0.

    Args:
        problem: the simplified model's data.
        alpha0: (V,) alpha at the first time.
        c: the constant value of every beta_k.
        ts: (T,) increasing positive times (the first is the initial time).
    """
    ts = _check_times(ts, positive=True)
    with jax.enable_x64(True):
        ys, ok, steps = _alpha_solve(
            problem.astype(jnp.float64), _f64(alpha0), _f64(c), _f64(np.log(ts))
        )
        alpha = np.asarray(ys)
        return FlowSolution(ts, alpha, np.full_like(alpha, float(c)), bool(ok), int(steps))


def solve_alpha_flow_batch(problem: SimplifiedProblem, alpha0s, c: float, ts) -> FlowSolution:
    """`solve_alpha_flow` for M initial conditions alpha0s (M, V) at once, under `vmap`."""
    ts = _check_times(ts, positive=True)
    with jax.enable_x64(True):
        ys, ok, steps = _alpha_solve_batch(
            problem.astype(jnp.float64), _f64(alpha0s), _f64(c), _f64(np.log(ts))
        )
        alpha = np.asarray(ys)
        return FlowSolution(
            ts, alpha, np.full_like(alpha, float(c)), bool(np.all(ok)), int(np.max(steps))
        )


def solve_beta_flow(problem: SimplifiedProblem, alpha, beta0, ts) -> FlowSolution:
    """The beta-flow with alpha held fixed (Theorem 3 (ii)), from beta(ts[0]) = beta0.

    Args:
        alpha: a scalar (alpha * 1) or a (V,) vector, held fixed.
        beta0: (V,) beta at the first time.
        ts: (T,) increasing positive times.
    """
    ts = _check_times(ts, positive=True)
    with jax.enable_x64(True):
        alpha = jnp.broadcast_to(_f64(alpha), np.shape(beta0))
        ys, ok, steps = _beta_solve(
            problem.astype(jnp.float64), alpha, _f64(beta0), _f64(np.log(ts))
        )
        beta = np.asarray(ys)
        return FlowSolution(
            ts, np.broadcast_to(np.asarray(alpha), beta.shape), beta, bool(ok), int(steps)
        )


def solve_joint_flow(problem: SimplifiedProblem, alpha0, beta0, ts) -> FlowSolution:
    """The joint (alpha, beta) gradient flow in plain time t from (alpha0, beta0) at ts[0] >= 0."""
    ts = _check_times(ts, positive=False)
    with jax.enable_x64(True):
        (alpha, beta), ok, steps = _joint_solve(
            problem.astype(jnp.float64), _f64(alpha0), _f64(beta0), _f64(ts)
        )
        return FlowSolution(ts, np.asarray(alpha), np.asarray(beta), bool(ok), int(steps))
