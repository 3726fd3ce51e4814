"""chains-theory-vs-rl: REINFORCE with plain SGD on the theory policy against its gradient flow.

The trained model is the symmetric (theory) policy of `sinkjax.cot_rl.policy`: one layer
of linear attention, V fixed to the edge incidence matrix, A = sum_j theta_j 1[class j] with
params {"theta": (3,)} = (alpha, beta, gamma), trained by `sinkjax.cot_rl.rl.train_rl`
(REINFORCE with a batch-mean baseline, `optimizer="sgd"`, one step per epoch, S seeds vmapped).

Which flow. `train_rl` differentiates the surrogate with respect to theta itself, and
dA/dtheta_j is the class-j indicator, so its gradient is the class-summed gradient
sum_{(u, c) in class j} dL/dA[u, c] = dL/dtheta_j of the reduced model: the expected SGD step
follows (G1) d theta / dt = -grad L. (G2), the full-matrix flow on A (each entry moves by the
class total / the class size), would be the flow of training the (N, C) matrix A itself.

Time map. The batch-mean baseline over b rollouts makes the expected gradient (1 - 1/b) grad L
(`sinkjax.cot_rl.rl`), so SGD step k sits at flow time t_k = eta (1 - 1/b) k. The reduced loss uses
the run's n, temperature tau, self-mask and horizon H = max_new_tokens = n + 1 (the code's training
horizon), and the task's law of the number of steps (Unif{1..n-1}).

Tolerance. The S seeds are S independent SGD paths. At C checkpoints the seed mean of each
coordinate is compared with the theory path; its standard error is the seed spread / sqrt(S).
If the mean path is the theory path, (mean - theory) / se is Student-t with S - 1 degrees of
freedom; the critical value z is Bonferroni-corrected over the 3C (theta) or C (success)
comparisons at the family-wise error `family_error`. SGD is also an Euler scheme of step
eta (1 - 1/b), whose deterministic gap to the flow, |GD - flow| with GD the exact-gradient
iterates of the reduced model, is added: a checkpoint agrees when |mean - flow| <= z se + gap.
The same test (without the slack) against exact-gradient steps of the wrong dynamics, (G2)'s
class-size time scale or the loss without a horizon, must fail.

Claims (spec §3.2: the expected REINFORCE gradient is exactly grad L of the reduced model, with
the horizon H; §3.3: theta itself flows by (G1); §4 assertion 1): every normalised deviation
|mean - theory| / (z se + slack) is <= 1 against the (G1) flow, against exact-gradient descent
and, for the success rate, against 1 - L(flow); and some deviation from each wrong dynamics is
> 1. How far the flow's success rises in units of the tolerance (whether the agreement says
anything) is an observation.
"""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import theory
from experiments.cot_rl.chains_common import CHAIN_KIND, rl_planned_run
from experiments.framework.claims import (
    Above,
    AllOf,
    AtMost,
    ClaimSpec,
    Fraction,
    Observation,
    check_specs,
    judge,
)
from experiments.framework.experiment import Experiment, Outcome, RunContext
from experiments.framework.planning import PlannedRun
from sinkjax.cot_rl.chains import ChainTask
from sinkjax.cot_rl.policy import ChainPolicyConfig
from sinkjax.cot_rl.rl import RLConfig, RLResult, rl_fingerprint, train_rl

THETA_NAMES = ("alpha", "beta", "gamma")
# Greedy validation prompts per epoch (train_rl needs some; they are not used here).
VAL_SIZE = 64
# The label of the RL run, in `train` and in its plan.
RUN_LABEL = "rl"
SOURCE = (
    "cot_rl.md §3.2 (grad L = the expected REINFORCE gradient; horizon H), §3.3 (G1), "
    "§4 assertion 1"
)
# A checkpoint agrees with a theory path when its normalised deviation is <= 1.
AGREES = AtMost(1.0)
# ... and disagrees somewhere when some normalised deviation exceeds 1.
SOME_DISAGREE = Fraction(Above(1.0), at_least=0.0, strict=True)
CLAIMS = check_specs(
    [
        ClaimSpec(
            "theta-follows-flow",
            "SGD + REINFORCE on the symmetric theory policy follows the (G1) flow of the reduced "
            "loss (the run's n, tau, mask and horizon n + 1) at t = eta (1 - 1/b) k: at every "
            "checkpoint and coordinate of (alpha, beta, gamma), |seed mean - flow| / (z se + "
            "|GD - flow|) <= 1, z the Bonferroni-corrected Student-t critical value",
            SOURCE,
            AGREES,
        ),
        ClaimSpec(
            "theta-follows-exact-gd",
            "The seed-mean SGD path is exact-gradient descent with the same steps up to the "
            "Monte-Carlo error (REINFORCE is unbiased): |seed mean - GD| / (z se) <= 1 at every "
            "checkpoint and coordinate",
            SOURCE,
            AGREES,
        ),
        ClaimSpec(
            "success-follows-flow",
            "The training success rate at step k (rollouts at theta_{k-1}) follows 1 - L(flow) "
            "with the same horizon, mask and tau: |mean - theory| / (z se + |L_GD - L_flow|) "
            "<= 1 at every checkpoint",
            SOURCE,
            AGREES,
        ),
        ClaimSpec(
            "wrong-flows-rejected",
            "The SGD path is not the (G2) flow (A's class-size time scale) nor the flow of the "
            "loss without a horizon: against exact-gradient steps of each, some checkpoint's "
            "normalised deviation |seed mean - path| / (z se) exceeds 1",
            "cot_rl.md §3.3 ((G1) for theta, (G2) for the full matrix A), §3.2 (finite horizon)",
            AllOf({"G2": SOME_DISAGREE, "no_horizon": SOME_DISAGREE}),
        ),
    ]
)


@dataclasses.dataclass(frozen=True)
class TheoryVsRLConfig:
    """The RL run (defaults: `quick`) and the statistics of the comparison."""

    # n: vertices per chain (N = 2n labels, Unif{1..n-1} starts, horizon n + 1).
    chain_length: int = 4
    # tau of the policy and of the reduced model (the code's linear runs: 0.2).
    temperature: float = 0.2
    # Forbid self-repeats (the code's runs: False).
    mask_current: bool = False
    # SGD steps and learning rate eta (flow time eta (1 - 1/b) per step).
    steps: int = 250
    learning_rate: float = 0.02
    # Rollouts per step and gradient-accumulation micro-batches (b = batch_size / n_microbatches).
    batch_size: int = 1024
    n_microbatches: int = 1
    # Independent SGD runs (vmapped); their spread gives the standard errors.
    n_seeds: int = 8
    # Checkpoints (equally spaced steps) at which the paths are compared.
    n_checkpoints: int = 8
    # Family-wise error of the Bonferroni-corrected comparisons.
    family_error: float = 0.01

    def __post_init__(self):
        if self.chain_length < 3:
            raise ValueError(f"chain_length must be >= 3, got {self.chain_length}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.n_seeds < 3:
            raise ValueError(
                f"n_seeds must be >= 3 (the seed spread is the error), got {self.n_seeds}"
            )
        if not 1 <= self.n_checkpoints <= self.steps:
            raise ValueError(
                f"n_checkpoints must lie in 1..steps = {self.steps}, got {self.n_checkpoints}"
            )
        if self.n_microbatches < 1 or self.batch_size % self.n_microbatches:
            raise ValueError(
                f"batch_size {self.batch_size} must be a multiple of n_microbatches "
                f"{self.n_microbatches}"
            )
        if self.batch_size // self.n_microbatches < 2:
            raise ValueError("need >= 2 rollouts per micro-batch (the baseline is their mean)")
        if not 0 < self.family_error < 1:
            raise ValueError(f"family_error must lie in (0, 1), got {self.family_error}")

    @property
    def task(self) -> ChainTask:
        return ChainTask.uniform(self.chain_length)

    @property
    def horizon(self) -> int:
        return self.task.default_max_new_tokens

    @property
    def time_per_step(self) -> float:
        """Flow time of one SGD step: eta (1 - 1/b), b = rollouts per baseline."""
        return self.learning_rate * (1 - self.n_microbatches / self.batch_size)

    def model(self, with_horizon: bool = True) -> theory.ChainModel:
        """The reduced model of the run: its tau, self-mask and horizon n + 1 (or none)."""
        horizon = self.horizon if with_horizon else None
        return theory.ChainModel(tau=self.temperature, mask_self=self.mask_current, horizon=horizon)


PRESETS = {
    "ci": TheoryVsRLConfig(
        steps=100, learning_rate=0.05, batch_size=256, n_seeds=4, n_checkpoints=4
    ),
    "quick": TheoryVsRLConfig(),
    "paper": TheoryVsRLConfig(
        chain_length=5, steps=1000, learning_rate=0.01, batch_size=65536, n_microbatches=8
    ),
}


def student_t_quantile(p: float, dof: int) -> float:
    """The p-quantile, p in (1/2, 1), of Student's t with `dof` degrees of freedom: bisection on
    the upper tail P(T > t) = I_{dof / (dof + t^2)}(dof / 2, 1 / 2) / 2."""
    with jax.enable_x64(True):

        def upper_tail(t: float) -> float:
            x = dof / (dof + t * t)
            return 0.5 * float(jax.scipy.special.betainc(dof / 2, 0.5, x))

        low, high = 0.0, 1.0
        while upper_tail(high) > 1 - p:
            low, high = high, 2 * high
        for _ in range(60):
            mid = 0.5 * (low + high)
            low, high = (mid, high) if upper_tail(mid) > 1 - p else (low, mid)
    return 0.5 * (low + high)


def critical_value(cfg: TheoryVsRLConfig, n_comparisons: int) -> float:
    """Two-sided Bonferroni critical |t| for `n_comparisons` at family-wise `family_error`."""
    return student_t_quantile(1 - cfg.family_error / (2 * n_comparisons), cfg.n_seeds - 1)


def rl_setup(cfg: TheoryVsRLConfig) -> tuple[ChainTask, ChainPolicyConfig, RLConfig]:
    """The task, the symmetric policy and the `RLConfig` of the run `train` trains."""
    task = cfg.task
    policy = ChainPolicyConfig(
        task.n_vertices,
        "linear",
        cfg.temperature,
        mask_current=cfg.mask_current,
        parameterization="symmetric",
    )
    rl = RLConfig(
        epochs=cfg.steps,
        epoch_steps=1,
        batch_size=cfg.batch_size,
        n_microbatches=cfg.n_microbatches,
        optimizer="sgd",
        learning_rate=cfg.learning_rate,
        seeds=tuple(range(42, 42 + cfg.n_seeds)),
        val_size=VAL_SIZE,
        early_stop="off",
        epochs_per_chunk=math.ceil(cfg.steps / 5),
    )
    return task, policy, rl


def train(cfg: TheoryVsRLConfig, ctx: RunContext) -> RLResult:
    """REINFORCE + plain SGD on the symmetric policy from theta ~ N(0, 1e-16) (the uniform
    policy), one optimiser step per epoch so that the history holds theta after every step."""
    task, policy, rl = rl_setup(cfg)
    run_key = rl_fingerprint(policy, task, task, rl)
    with ctx.training_run(RUN_LABEL, CHAIN_KIND, run_key) as path:
        result = train_rl(
            policy,
            task,
            task,
            rl,
            checkpoint_dir=str(path),
            progress=ctx.progress,
            description="chains-theory-vs-rl",
        )
    ctx.placements[RUN_LABEL] = result.placement
    return result


@functools.partial(jax.jit, static_argnums=(2, 3))
def _gd_path(theta0, problem, model: theory.ChainModel, steps: int, step_size):
    """(steps + 1, 3) exact-gradient descent theta_{k+1} = theta_k - step_size * grad L(theta_k);
    step_size (3,): the flow time per step times the (G1) or (G2) preconditioner."""
    grad = jax.grad(theory.chain_loss)

    def body(theta, _):
        theta = theta - step_size * grad(theta, problem, model)
        return theta, theta

    _, path = jax.lax.scan(body, theta0, None, length=steps)
    return jnp.concatenate([theta0[None], path])


@functools.partial(jax.jit, static_argnums=2)
def _path_stats(thetas, problem, model: theory.ChainModel):
    """For thetas (M, 3): the loss (M,) and min_u p_fwd(u) over the transient vertices (M,)."""

    def one(theta):
        p_fwd = theory.chain_move_probabilities(theta, problem, model)[0]
        loss = theory.chain_loss(theta, problem, model)
        return loss, jnp.min(jnp.where(problem.transient, p_fwd, jnp.inf))

    return jax.vmap(one)(thetas)


@dataclasses.dataclass(frozen=True)
class TheoryPaths:
    """The reduced model along the RL time axis t_k = eta (1 - 1/b) k, k = 0..steps.

    Attributes:
        ts: (K + 1,) flow times.
        theta: name -> (K + 1, 3) from the seeds' mean initial theta: "flow" ((G1), diffrax),
            "GD" (exact-gradient steps of the run's size: SGD without Monte-Carlo noise), and
            the wrong dynamics, as exact-gradient steps: "GD (G2)" (A's class sizes) and
            "GD, no horizon" (the loss without the horizon H).
        loss, p_fwd: name -> (K + 1,) L (with the horizon) and min_u p_fwd along each path.
        rl_p_fwd: (S, K + 1) min_u p_fwd along each seed's SGD path.
    """

    ts: np.ndarray
    theta: dict[str, np.ndarray]
    loss: dict[str, np.ndarray]
    p_fwd: dict[str, np.ndarray]
    rl_p_fwd: np.ndarray


def theory_paths(cfg: TheoryVsRLConfig, rl_theta: np.ndarray) -> TheoryPaths:
    """The theory paths from the mean initial theta of `rl_theta` (S, K + 1, 3)."""
    ts = cfg.time_per_step * np.arange(cfg.steps + 1)
    theta0 = rl_theta[:, 0].astype(np.float64).mean(axis=0)
    problem = theory.chain_problem(cfg.chain_length, cfg.task.step_probs)
    flow = theory.solve_chain_flow(theta0, problem, ts, cfg.model())
    if not flow.ok:
        raise RuntimeError("the (G1) solve failed")
    thetas = {"flow": flow.theta}
    with jax.enable_x64(True):
        problem = jax.tree.map(jnp.asarray, problem)
        for name, flow_kind, model in (
            ("GD", "G1", cfg.model()),
            ("GD (G2)", "G2", cfg.model()),
            ("GD, no horizon", "G1", cfg.model(with_horizon=False)),
        ):
            step = cfg.time_per_step * theory.chain_preconditioner(problem, flow_kind)
            path = _gd_path(jnp.asarray(theta0), problem, model, cfg.steps, step)
            thetas[name] = np.asarray(path)
        everything = np.concatenate([*thetas.values(), *rl_theta.astype(np.float64)])
        loss, p_fwd = (np.asarray(x) for x in _path_stats(everything, problem, cfg.model()))
    size = cfg.steps + 1
    n_paths = len(thetas)
    return TheoryPaths(
        ts=ts,
        theta=thetas,
        loss={k: loss[i * size : (i + 1) * size] for i, k in enumerate(thetas)},
        p_fwd={k: p_fwd[i * size : (i + 1) * size] for i, k in enumerate(thetas)},
        rl_p_fwd=p_fwd[n_paths * size :].reshape(-1, size),
    )


def checkpoint_steps(cfg: TheoryVsRLConfig) -> np.ndarray:
    """(C,) equally spaced steps in 1..steps (the last one included)."""
    return np.unique(np.round(np.linspace(0, cfg.steps, cfg.n_checkpoints + 1)[1:]).astype(int))


def deviation_ratio(samples: np.ndarray, reference: np.ndarray, slack: np.ndarray, z: float):
    """|mean_s samples - reference| / (z se + slack), elementwise; samples (S, ...), se = the
    seed standard deviation / sqrt(S). <= 1 where the reference is within the tolerance."""
    se = samples.std(axis=0, ddof=1) / np.sqrt(samples.shape[0])
    return np.abs(samples.mean(axis=0) - reference) / (z * se + slack)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The checkpoint statistics.

    Attributes:
        steps: (C,) checkpoint steps k.
        z_theta, z_success: Bonferroni critical values (3C and C comparisons).
        theta_ratio: name -> (C, 3) `deviation_ratio` of the seeds' theta against each theory
            path: "flow" with the slack |GD - flow|, the "GD" paths with none.
        success_ratio: (C,) the seeds' training reward at step k (rollouts at theta_{k-1})
            against 1 - L_flow(t_{k-1}), slack |L_GD - L_flow|.
        success_tolerance: (C,) z_success se + slack of the success comparison.
    """

    steps: np.ndarray
    z_theta: float
    z_success: float
    theta_ratio: dict[str, np.ndarray]
    success_ratio: np.ndarray
    success_tolerance: np.ndarray


def compare(cfg: TheoryVsRLConfig, result: RLResult, paths: TheoryPaths) -> Comparison:
    steps = checkpoint_steps(cfg)
    z_theta = critical_value(cfg, 3 * len(steps))
    z_success = critical_value(cfg, len(steps))
    rl_theta = result.history["theta"].astype(np.float64)[:, steps]  # (S, C, 3)
    euler = np.abs(paths.theta["GD"] - paths.theta["flow"])[steps]
    theta_ratio = {
        name: deviation_ratio(rl_theta, path[steps], euler if name == "flow" else 0.0, z_theta)
        for name, path in paths.theta.items()
    }
    reward = result.history["train_reward"].astype(np.float64)[:, steps]  # rollouts at k - 1
    success = 1 - paths.loss["flow"][steps - 1]
    slack = np.abs(paths.loss["GD"] - paths.loss["flow"])[steps - 1]
    se = reward.std(axis=0, ddof=1) / np.sqrt(cfg.n_seeds)
    return Comparison(
        steps=steps,
        z_theta=z_theta,
        z_success=z_success,
        theta_ratio=theta_ratio,
        success_ratio=deviation_ratio(reward, success, slack, z_success),
        success_tolerance=z_success * se + slack,
    )


def measure(c: Comparison) -> dict:
    """Claim id -> the normalised deviations the claims bound (see `CLAIMS`)."""
    return {
        "theta-follows-flow": c.theta_ratio["flow"],
        "theta-follows-exact-gd": c.theta_ratio["GD"],
        "success-follows-flow": c.success_ratio,
        "wrong-flows-rejected": {
            "G2": c.theta_ratio["GD (G2)"],
            "no_horizon": c.theta_ratio["GD, no horizon"],
        },
    }


def _observations(cfg: TheoryVsRLConfig, paths: TheoryPaths, c: Comparison):
    setting = (
        f"n = {cfg.chain_length}, tau = {cfg.temperature:g}, H = {cfg.horizon}, "
        f"{'masked' if cfg.mask_current else 'unmasked'}, eta = {cfg.learning_rate:g}, "
        f"b = {cfg.batch_size // cfg.n_microbatches}, {cfg.n_seeds} seeds"
    )
    rise = paths.loss["flow"][0] - paths.loss["flow"][-1]
    return [
        Observation(
            "comparison-power",
            f"the flow's rise in success probability over the run in units of the largest "
            f"success tolerance ({setting}): the agreement says something when it is well "
            "above 1",
            rise / c.success_tolerance.max(),
        ),
    ]


def _figure(cfg, result: RLResult, paths: TheoryPaths, c: Comparison, ctx: RunContext) -> str:
    ts, seeds = paths.ts, result.history["theta"]
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    ax = axes[0, 0]
    for j, name in enumerate(THETA_NAMES):
        (line,) = ax.plot(ts, paths.theta["flow"][:, j], lw=2, label=f"{name}: (G1) flow")
        ax.plot(ts, seeds[:, :, j].T, color=line.get_color(), lw=0.5, alpha=0.5)
        ax.plot(ts, paths.theta["GD, no horizon"][:, j], ":", color=line.get_color(), lw=1)
        ax.plot(ts, paths.theta["GD (G2)"][:, j], "-.", color=line.get_color(), lw=1)
    ax.set_title(
        "(a) theta: flow (thick), SGD seeds (thin), no horizon (dotted), (G2) (dash-dot)",
        fontsize=9,
    )
    ax.set_ylabel("theta")
    ax.legend(fontsize=8)

    ax = axes[0, 1]
    ax.plot(ts, paths.rl_p_fwd.T, color="tab:blue", lw=0.5, alpha=0.5)
    ax.plot(ts, paths.p_fwd["flow"], color="black", lw=2, label="(G1) flow")
    ax.plot(ts, paths.p_fwd["GD, no horizon"], ":", color="gray", label="no horizon")
    ax.set_title("(b) min_u p_fwd(u): SGD seeds (thin) against the flow", fontsize=9)
    ax.legend(fontsize=8)

    ax = axes[1, 0]
    reward = result.history["train_reward"][:, 1:]  # rollouts at theta_0 .. theta_{K-1}
    ax.plot(ts[:-1], reward.mean(axis=0), lw=0.8, label=f"training reward, mean of {cfg.n_seeds}")
    ax.plot(ts, 1 - paths.loss["flow"], color="black", lw=2, label="1 - L(flow)")
    k = c.steps - 1
    ax.errorbar(
        ts[k],
        1 - paths.loss["flow"][k],
        yerr=c.success_tolerance,
        fmt="none",
        color="red",
        capsize=3,
        label="tolerance at the checkpoints",
    )
    ax.set_title("(c) success probability", fontsize=9)
    ax.legend(fontsize=8)

    ax = axes[1, 1]
    for name, ratio in c.theta_ratio.items():
        ax.plot(ts[c.steps], ratio.max(axis=1), "o-", ms=3, label=f"theta vs {name}")
    ax.plot(ts[c.steps], c.success_ratio, "s--", ms=3, label="success vs flow")
    ax.axhline(1.0, color="gray", ls="--", lw=1)
    ax.set_yscale("log")
    ax.set_title("(d) deviation / tolerance at the checkpoints (<= 1 agrees)", fontsize=9)
    ax.legend(fontsize=8)
    for ax in axes.flat:
        ax.set_xlabel(f"flow time t = eta (1 - 1/b) k ({cfg.steps} SGD steps)")
        ax.grid(alpha=0.3)
    return ctx.save_figure(fig, "chains_theory_vs_rl")


def run(cfg: TheoryVsRLConfig, ctx: RunContext) -> Outcome:
    result = train(cfg, ctx)
    paths = theory_paths(cfg, result.history["theta"])
    comparison = compare(cfg, result, paths)
    summary = {
        "checkpoint_steps": comparison.steps,
        "flow_times": paths.ts[comparison.steps],
        "theta_flow": paths.theta["flow"][comparison.steps],
        "theta_seed_mean": result.history["theta"][:, comparison.steps].mean(axis=0),
        "theta_seed_std": result.history["theta"][:, comparison.steps].std(axis=0, ddof=1),
        "euler_gap": np.abs(paths.theta["GD"] - paths.theta["flow"])[comparison.steps],
        "theta_ratio_max": {k: v.max() for k, v in comparison.theta_ratio.items()},
        "success_ratio": comparison.success_ratio,
        "loss_flow": paths.loss["flow"][comparison.steps],
        "p_fwd_flow": paths.p_fwd["flow"][comparison.steps],
        "z_theta": comparison.z_theta,
        "z_success": comparison.z_success,
        "train_wall_time_s": result.wall_time,
        "resumed_from": result.resumed_from,
    }
    figures = [_figure(cfg, result, paths, comparison, ctx)]
    return Outcome(
        judge(CLAIMS, measure(comparison)),
        figures,
        list(range(42, 42 + cfg.n_seeds)),
        summary,
        _observations(cfg, paths, comparison),
    )


def training_plan(cfg: TheoryVsRLConfig) -> tuple[PlannedRun, ...]:
    """The one run of `run`: the SGD run of the symmetric policy (`rl_setup`)."""
    task, policy, rl = rl_setup(cfg)
    return (rl_planned_run(RUN_LABEL, policy, task, task, rl),)


EXPERIMENT = Experiment(
    name="chains-theory-vs-rl",
    title="REINFORCE + SGD on the symmetric theory policy follows the (G1) gradient flow of the "
    "reduced chain model (time t = eta (1 - 1/b) steps, horizon n + 1)",
    presets=PRESETS,
    run=run,
    claims=CLAIMS,
    training_plan=training_plan,
)
