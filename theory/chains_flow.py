r"""Gradient flows of the reduced chain model (cot_rl spec §3.3, a reconstruction) with diffrax.

(G1) theta = (alpha, beta, gamma) flows directly:     d theta / dt = -grad L(theta).
(G2) full-matrix gradient flow on A from a symmetric start: every entry of class j moves by the
     class-total gradient over the class size (`chain_class_sizes`, N vertex labels),

         d theta_j / dt = -(1 / |C_j|) dL/d theta_j,
         |C_alpha| = |C_beta| = N(N-1),  |C_gamma| = N(N-1)(N-2).

T_reach is the first time with L_eval(theta(t)) <= threshold (0.1 on the hardest start by
default), found by a diffrax `Event` located by bisection inside the step that crosses it.

Every public function enters `jax.enable_x64(True)` itself, converts its inputs to float64 there
and returns numpy float64 arrays. Problems of several n are padded to one size
(`chain_problems`, `size=`), so a sweep over n or over the data mixture reuses one compilation.
"""

import dataclasses
from collections.abc import Callable, Sequence
from typing import Literal

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jaxtyping import Array, Float

from theory.chains_model import (
    ChainModel,
    ChainProblem,
    chain_class_sizes,
    chain_loss,
    chain_problem,
    chain_problems,
    hard_steps,
    mixed_steps,
    stack_chain_problems,
)

RTOL, ATOL = 1e-6, 1e-9  # spec §3.3
MAX_STEPS = 100_000
Flow = Literal["G1", "G2"]


def chain_preconditioner(problem: ChainProblem, flow: Flow) -> Float[Array, "... 3"]:
    """(3,) factor on -grad L ((B, 3) for a batched problem): ones for (G1) and
    1 / `chain_class_sizes`(N) for (G2), N = number of vertex labels."""
    n_vocab = jnp.sum(problem.valid, axis=-1)
    if flow == "G1":
        return jnp.ones((*n_vocab.shape, 3), problem.target.dtype)
    if flow == "G2":
        return 1.0 / chain_class_sizes(n_vocab)
    raise ValueError(f"flow must be 'G1' or 'G2', got {flow!r}")


def chain_flow_field(
    theta, problem: ChainProblem, model: ChainModel, flow: Flow
) -> Float[Array, " 3"]:
    """d theta / dt = -preconditioner * grad L(theta)."""
    return -chain_preconditioner(problem, flow) * jax.grad(chain_loss)(theta, problem, model)


@dataclasses.dataclass(frozen=True)
class ChainFlowSolution:
    """A flow sampled at the requested times (numpy float64).

    Attributes:
        ts: (T,) times.
        theta: (T, 3) (alpha, beta, gamma)(t).
        loss: (T,) L(theta(t)) on the training distribution.
        ok: whether diffrax reported success.
        num_steps: accepted + rejected solver steps.
    """

    ts: np.ndarray
    theta: np.ndarray
    loss: np.ndarray
    ok: bool
    num_steps: int


def _diffeqsolve(theta0, problem, scale, model, t1, saveat, event=None):
    """Tsit5 + PID solve of d theta / dt = -scale * grad L(theta) from t = 0 to t1. The
    preconditioner `scale` is data, so (G1) and (G2) share one compilation."""

    def field(t, theta, args):
        return -scale * jax.grad(chain_loss)(theta, problem, model)

    return dfx.diffeqsolve(
        dfx.ODETerm(field),
        dfx.Tsit5(),
        t0=0.0,
        t1=t1,
        dt0=None,
        y0=theta0,
        saveat=saveat,
        stepsize_controller=dfx.PIDController(rtol=RTOL, atol=ATOL),
        event=event,
        max_steps=MAX_STEPS,
        throw=False,
    )


@eqx.filter_jit
def _path(theta0, problem, scale, ts, model):
    sol = _diffeqsolve(theta0, problem, scale, model, ts[-1], dfx.SaveAt(ts=ts))
    losses = jax.vmap(chain_loss, in_axes=(0, None, None))(sol.ys, problem, model)
    return sol.ys, losses, sol.result == dfx.RESULTS.successful, sol.stats["num_steps"]


_ROOT_FIND_STEP_LIMIT = dfx.RESULTS.promote(optx.RESULTS.nonlinear_max_steps_reached)


def _reach(theta0, train, evaluate, scale, threshold, t_max, model):
    def above_threshold(t, y, args, **kwargs):  # diffrax passes t, y, args by keyword
        return chain_loss(y, evaluate, model) - threshold

    # Bisection compiles faster than Newton here and agrees with it to 1e-8 relative.
    root_finder = optx.Bisection(rtol=1e-8, atol=1e-8)
    event = dfx.Event(above_threshold, root_finder=root_finder, direction=False)
    sol = _diffeqsolve(theta0, train, scale, model, t_max, dfx.SaveAt(t1=True), event)
    # Bisection also asks |L - threshold| < atol, which float64 cannot meet when dL/dt times the
    # spacing of t exceeds atol (an escape lasting ~1e4 at t ~ 1e13: (G2), hard-only, n = 12).
    # It then stops at its step limit with the crossing bracketed to float64 resolution in t.
    at_resolution = sol.result == _ROOT_FIND_STEP_LIMIT
    reached = (sol.result == dfx.RESULTS.event_occurred) | at_resolution
    t_reach = jnp.where(reached, sol.ts[-1], jnp.inf)
    t_reach = jnp.where(chain_loss(theta0, evaluate, model) <= threshold, 0.0, t_reach)
    return t_reach, dfx.is_okay(sol.result) | at_resolution


# One member at a time: a vmapped batch would run in lockstep up to the slowest member's step
# count (T_reach spans many decades) and takes longer to compile.
_reach_one = eqx.filter_jit(_reach)
_preconditioner = jax.jit(chain_preconditioner, static_argnums=1)
_chain_losses = jax.jit(jax.vmap(chain_loss, in_axes=(None, 0, None)), static_argnums=2)
_gradients = jax.jit(
    jax.vmap(chain_flow_field, in_axes=(None, 0, None, None)), static_argnums=(2, 3)
)


def _f64(x):
    return jnp.asarray(x, jnp.float64)


def _f64_problem(problem: ChainProblem) -> ChainProblem:
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.float64 if x.dtype != bool else bool), problem)


def solve_chain_flow(
    theta0, problem: ChainProblem, ts, model: ChainModel, flow: Flow = "G1"
) -> ChainFlowSolution:
    """Integrate (G1) or (G2) from theta(0) = theta0 and sample it at ts.

    Args:
        theta0: (3,) initial (alpha, beta, gamma).
        problem: one (unbatched) graph and training distribution, e.g. `chain_problem(...)`.
        ts: (T,) strictly increasing non-negative save times (log-spaced for long runs).
        model: temperature, self-mask, horizon and attention kind.
        flow: "G1" (theta flows directly) or "G2" (full-matrix flow on A).
    """
    ts = np.asarray(ts, np.float64)
    if ts.ndim != 1 or ts[0] < 0 or np.any(np.diff(ts) <= 0):
        raise ValueError("ts must be a strictly increasing 1-D array of non-negative times")
    with jax.enable_x64(True):
        problem = _f64_problem(problem)
        scale = _preconditioner(problem, flow)
        thetas, losses, ok, steps = _path(_f64(theta0), problem, scale, _f64(ts), model)
        return ChainFlowSolution(ts, np.asarray(thetas), np.asarray(losses), bool(ok), int(steps))


def extrapolation_losses(
    theta0, train: ChainProblem, ts, tests: ChainProblem, model: ChainModel, flow: Flow = "G1"
) -> np.ndarray:
    """L_test: (T, B) loss on each member of the batched `tests` (e.g. `chain_problems(range(5,
    13), hard_steps)`) along the flow trained on `train`, sampled at ts.

    Raises:
        RuntimeError: if the training solve fails.
    """
    sol = solve_chain_flow(theta0, train, ts, model, flow)
    if not sol.ok:
        raise RuntimeError("the training flow did not reach ts[-1]")
    return np.stack([chain_losses(theta, tests, model) for theta in sol.theta])


def reach_times(
    theta0,
    train: ChainProblem,
    evaluate: ChainProblem,
    model: ChainModel,
    *,
    flow: Flow = "G1",
    threshold: float = 0.1,
    t_max: float = 1e12,
) -> np.ndarray:
    """T_reach: (B,) first time with L_evaluate <= threshold under the flow trained on `train`.

    Args:
        theta0: (3,) initial (alpha, beta, gamma), shared by the batch.
        train, evaluate: batched problems (leading axis B, e.g. from `chain_problems`); member b
            trains on train[b] and is evaluated on evaluate[b].
        t_max: integration limit.

    Returns:
        (B,) T_reach; 0 where L_evaluate(theta0) <= threshold already, and inf where the
        threshold is not reached by t_max or within MAX_STEPS solver steps (which is what
        happens at a stationary point, e.g. theta0 = 0 with no s = 1 examples).
    """
    with jax.enable_x64(True):
        scales = np.asarray(_preconditioner(_f64_problem(train), flow))
        theta0, threshold, t_max = _f64(theta0), _f64(threshold), _f64(t_max)
        out = []
        for b, scale in enumerate(scales):
            t_reach, ok = _reach_one(
                theta0,
                _f64_problem(jax.tree.map(lambda x, b=b: np.asarray(x)[b], train)),
                _f64_problem(jax.tree.map(lambda x, b=b: np.asarray(x)[b], evaluate)),
                _f64(scale),
                threshold,
                t_max,
                model,
            )
            out.append(float(t_reach) if ok else np.inf)
        return np.array(out)


def reach_time_vs_n(
    theta0,
    ns: Sequence[int],
    train_steps: Callable[[int], np.ndarray],
    model: ChainModel,
    *,
    flow: Flow = "G1",
    eval_steps: Callable[[int], np.ndarray] = hard_steps,
    threshold: float = 0.1,
    t_max: float = 1e12,
    n_vocab: int | None = None,
    size: int | None = None,
) -> np.ndarray:
    """T_reach(n): (len(ns),) for training data `train_steps(n)` (e.g. `hard_steps` or
    `uniform_steps`) and evaluation on `eval_steps(n)` (default: the hardest start only).
    `n_vocab` fixes the vocabulary (isolated vertices fill it) as in the code's D_m setup;
    `size` pads the problems (see `chain_problems`)."""
    train = chain_problems(ns, train_steps, n_vocab=n_vocab, size=size)
    evaluate = chain_problems(ns, eval_steps, n_vocab=n_vocab, size=size)
    return reach_times(theta0, train, evaluate, model, flow=flow, threshold=threshold, t_max=t_max)


def reach_time_vs_mass(
    theta0,
    n: int,
    masses: Sequence[float],
    model: ChainModel,
    *,
    flow: Flow = "G1",
    simple: int = 1,
    threshold: float = 0.1,
    t_max: float = 1e12,
    size: int | None = None,
) -> np.ndarray:
    """T_reach(c): (len(masses),) for D_c = c delta_{s=simple} + (1-c) delta_{s=n-1}, evaluated
    on the hardest start s = n - 1; `size` pads the problems (see `stack_chain_problems`)."""
    train = [chain_problem(n, mixed_steps(n, c, simple)) for c in masses]
    train = stack_chain_problems(train, size)
    evaluate = stack_chain_problems([chain_problem(n, hard_steps(n))] * len(masses), size)
    return reach_times(theta0, train, evaluate, model, flow=flow, threshold=threshold, t_max=t_max)


def chain_losses(theta, problems: ChainProblem, model: ChainModel) -> np.ndarray:
    """(B,) L(theta) on each member of a batched problem, e.g. L_test(n) for a trained theta."""
    with jax.enable_x64(True):
        return np.asarray(_chain_losses(_f64(theta), _f64_problem(problems), model))


def chain_gradient_norms(
    theta, problems: ChainProblem, model: ChainModel, flow: Flow = "G1"
) -> np.ndarray:
    """(B,) Euclidean norm of the flow field -preconditioner * grad L(theta) on each member."""
    with jax.enable_x64(True):
        field = _gradients(_f64(theta), _f64_problem(problems), model, flow)
        return np.linalg.norm(np.asarray(field), axis=-1)
