"""E12: Theorem 3 of the active-dormant paper, theory against experiment (spec D).

Claims (spec D.4, with its tolerances): the closed-form gradient flow of Prop. 7 against
`jax.grad` (D.4.1); the alpha law alpha_v(t) - (1/2) log t -> (1/2) log(2 pi_v Var_{p_v}(phi))
(D.4.2); the value drain to the beta limit, both the paper's printed formula and the spec's
corrected one (D.4.3); the flat stationary family (D.4.4); and a joint (alpha, beta) gradient
descent run converging to it (D.4.5). Theory side: float64, diffrax, `theory`.

Observations (ours, not the paper's): the spec D.1 model written as an attention forward pass
(`SinkAttentionModel`) trained by small-step gradient descent on its exact loss against the
joint flow at t = k * eta, on the spec D.4 problem and on the Bigram-Backcopy statistics; the
same model under Adam; and the official code's simplified model (spec D.5) trained with AdamW on
Bigram-Backcopy batches, whose E10 claims are judged by `simplified-adam` on the same run.
"""

import dataclasses

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

import theory
from experiments.active_dormant.bb_common import load_task
from experiments.active_dormant.code_model import (
    CodeModelRun,
    bb_problem,
    code_model_planned_run,
    train_code_model,
)
from experiments.framework.claims import (
    Above,
    AllOf,
    AtLeast,
    Below,
    Between,
    ClaimSpec,
    Near,
    Observation,
    check_specs,
    judge,
)
from experiments.framework.experiment import Experiment, Outcome, RunContext
from experiments.framework.planning import PlannedRun
from sinkjax import plotting
from sinkjax.active_dormant.simplified_model import SinkAttentionModel
from sinkjax.active_dormant.simplified_training import exact_loss_trajectory
from sinkjax.train import TrainResult

# Points (alpha, c) of the stationary family (alpha 1, c 1 - e^-alpha phi) that are checked.
STATIONARY_POINTS = ((0.0, 0.0), (1.5, -0.7), (4.0, 2.0))
# |Hessian eigenvalue| below this counts as zero (spec D.4 item 4).
ZERO_EIGENVALUE = 1e-9
# Final time of the alpha law (spec D.4 item 2: the error at t = 1e8, the slope on [1e7, 1e8]).
ALPHA_HORIZON = 1e8
# (alpha, beta) points, drawn N(0, 1), where the closed-form flow is checked against jax.grad.
N_GRADIENT_POINTS = 4


@dataclasses.dataclass(frozen=True)
class Theorem3Config:
    """Settings of the theory checks and of the training runs."""

    # Seed of the spec D.4 problem (V = 6 tokens, Dirichlet rows, W_k in {1,2,3}, xi in (0.5, 2)).
    problem_seed: int = 0
    # Gradient-descent steps and step size eta on the exact D.1 loss (flow time t = steps * eta).
    steps: int = 4000
    learning_rate: float = 0.25
    # Adam learning rate on the same loss (plotted beside the flow).
    adam_learning_rate: float = 0.01
    # Length n of the fixed context bag of the BB-derived D.1 instance (W_k ~ n * unigram_k).
    bb_context_len: int = 16
    # The official code's simplified model on BB (spec D.5): steps, AdamW lr, batch shape.
    code_model_steps: int = 10_000
    code_model_learning_rate: float = 0.03
    code_model_batch_size: int = 512
    code_model_seq_len: int = 256
    code_model_eval_batch_size: int = 512
    # Fixed alpha of the beta-flow check.
    beta_flow_alpha: float = 0.5

    def __post_init__(self):
        for name in (
            "steps",
            "bb_context_len",
            "code_model_steps",
            "code_model_batch_size",
            "code_model_seq_len",
            "code_model_eval_batch_size",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("learning_rate", "adam_learning_rate", "code_model_learning_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    def code_model(self) -> CodeModelRun:
        """The D.5 run of this config."""
        return CodeModelRun(
            steps=self.code_model_steps,
            learning_rate=self.code_model_learning_rate,
            batch_size=self.code_model_batch_size,
            seq_len=self.code_model_seq_len,
            eval_batch_size=self.code_model_eval_batch_size,
        )


PRESETS = {
    "ci": Theorem3Config(
        steps=400,
        code_model_steps=30,
        code_model_batch_size=8,
        code_model_seq_len=32,
        code_model_eval_batch_size=8,
    ),
    "quick": Theorem3Config(
        code_model_steps=2000,
        code_model_batch_size=64,
        code_model_seq_len=128,
        code_model_eval_batch_size=128,
    ),
    "paper": Theorem3Config(steps=40_000, learning_rate=0.05),
}

AD = "active_dormant.md"
CLAIMS = check_specs(
    [
        ClaimSpec(
            "gradient-closed-form",
            "Prop. 7 (signs corrected in spec D.2): jax.grad of the D.1 loss equals minus the "
            "closed-form alpha- and beta-flow: max |difference| over "
            f"{N_GRADIENT_POINTS} N(0, 1) points below 1e-9 (float64)",
            f"{AD} D.2 and D.4 item 1; paper Prop. 7",
            Below(1e-9),
        ),
        ClaimSpec(
            "alpha-law-error",
            "Thm 3 (i): alpha_v(t) = (1/2) log t + r_v(t), r_v -> (1/2) log(2 pi_v "
            "Var_{p_v}(phi)) (beta = c 1, alpha(1) = 0): |alpha_v(t) - (1/2) log t - (1/2) "
            "log(2 pi_v Var_{p_v}(phi))| below 0.02 at t = 1e8, every v",
            f"{AD} D.3 (i) and D.4 item 2; paper Thm 3 (i)",
            Below(0.02),
        ),
        ClaimSpec(
            "alpha-law-slope",
            "Thm 3 (i): alpha_v grows like (1/2) log t: d alpha_v / d log t on [1e7, 1e8] "
            "within 0.5 +- 0.02, every v",
            f"{AD} D.3 (i) and D.4 item 2; paper Thm 3 (i)",
            Near(0.5, 0.02),
        ),
        ClaimSpec(
            "alpha-monotone",
            "Thm 3 (i): every alpha_v is strictly increasing along the flow: its smallest "
            "increment between the 101 log-spaced times in [1, 1e8] above 0, every v",
            f"{AD} D.3 (i) and D.4 item 2; paper Thm 3 (i)",
            Above(0.0),
        ),
        ClaimSpec(
            "alpha-flow-c-independent",
            "Thm 3 (i): the alpha-flow does not depend on c in beta = c 1: max over t and v of "
            "|alpha_{c=0} - alpha_{c=2.5}| below 1e-6 (the solvers' rtol is 1e-11)",
            f"{AD} D.3 (i) and D.4 item 2; paper Thm 3 (i)",
            Below(1e-6),
        ),
        ClaimSpec(
            "beta-mean-conserved",
            "Thm 3 (ii): the beta-flow at fixed alpha conserves mean(beta): max drift below 1e-10",
            f"{AD} D.3 (ii) and D.4 item 3; paper Thm 3 (ii)",
            Below(1e-10),
        ),
        ClaimSpec(
            "beta-limit-paper",
            "Thm 3 (ii) / Thm 10 as printed: beta -> mean(beta0) 1 - e^-alpha phi: max_k "
            "|beta_k(1e7) - limit_k| below 1e-5 (spec D.2 item 5 derives that this limit is off "
            "by e^-alpha mean(phi) on every coordinate, since the flow conserves mean(beta))",
            f"{AD} D.2 item 5 and D.4 item 3; paper Thm 3 (ii), Thm 10",
            Below(1e-5),
        ),
        ClaimSpec(
            "beta-limit-corrected",
            "Thm 3 (ii) with the limit corrected by the spec: beta -> mean(beta0) 1 - e^-alpha "
            "(phi - mean(phi) 1), the value drain to ~ the mean vector: max_k |beta_k(1e7) - "
            "limit_k| below 1e-5",
            f"{AD} D.2 item 5, D.3 (ii) and D.4 item 3; paper Thm 3 (ii), Thm 10",
            Below(1e-5),
        ),
        ClaimSpec(
            "stationary-gradient",
            "Thm 3 (iii): every (alpha 1, c 1 - e^-alpha phi) is stationary: ||grad loss|| "
            f"below 1e-12 at (alpha, c) in {list(STATIONARY_POINTS)}",
            f"{AD} D.3 (iii) and D.4 item 4; paper Thm 3 (iii)",
            Below(1e-12),
        ),
        ClaimSpec(
            "stationary-q-equals-p",
            "Thm 3 (iii): there Q = P, so the excess loss is 0: max |Q - P| below 1e-12 "
            "(float64 round-off), at every point",
            f"{AD} D.3 (iii) and D.4 item 4; paper Thm 3 (iii)",
            Below(1e-12),
        ),
        ClaimSpec(
            "stationary-hessian-psd",
            "Thm 3 (iii): these are global minimisers: Hessian eigenvalues >= -1e-9, at every "
            "point",
            f"{AD} D.3 (iii) and D.4 item 4; paper Thm 3 (iii), Thm 8",
            AtLeast(-ZERO_EIGENVALUE),
        ),
        ClaimSpec(
            "stationary-two-flat-directions",
            "Thm 3 (iii): with full-support P the minimisers form a 2-dimensional family: "
            f"exactly 2 Hessian eigenvalues ~0 (|eig| < {ZERO_EIGENVALUE:g}), at every point",
            f"{AD} D.3 (iii) and D.4 item 4; paper Thm 3 (iii)",
            Between(2, 2),
        ),
        ClaimSpec(
            "stationary-alpha-curvature",
            "Thm 8 (corrected in spec D.2 item 4): there d^2 loss / d alpha_v^2 = pi_v "
            "Var_{p_v}(phi) / (e^alpha + W)^2: max relative error below 1e-8 (float64), at "
            "every point",
            f"{AD} D.2 item 4 and D.4 item 4; paper Thm 8",
            Below(1e-8),
        ),
        ClaimSpec(
            "joint-gd-converges",
            "Spec D.4 item 5 (the paper observes its simulations converge to the stable set): "
            "joint (alpha, beta) gradient descent from N(0, 1) on the D.4 problem drives the "
            "excess loss to 0 (read as: the final excess loss below 1% of the initial one; "
            "with full-support P, excess 0 means beta + e^-alpha phi constant across k) as "
            "alpha equalises (read as: the final spread max_v alpha_v - min_v alpha_v below "
            "the initial one)",
            f"{AD} D.3 (iii) and D.4 item 5; paper Sec. 4 (simulations)",
            AllOf(
                {
                    "excess_final_over_initial": Below(0.01),
                    "alpha_spread_final_over_initial": Below(1.0),
                }
            ),
        ),
    ]
)


# ----------------------------------------------------------------------------------------------
# ----------------------------------------------------------------------------------------------
# Experiment side: the D.1 model trained on its exact loss


@dataclasses.dataclass(frozen=True)
class FlowComparison:
    """GD and Adam on the exact D.1 loss against the joint gradient flow.

    Attributes:
        ts: (K + 1,) flow times t = k * eta of the GD steps k = 0..K.
        gd, adam: (alphas, betas), each (K + 1, V), after k optimiser steps.
        flow: the joint flow at `ts`.
        error: (K + 1,) ||(alpha, beta)_GD - (alpha, beta)_flow|| / ||(alpha, beta)_flow||.
        displacement: ||(alpha, beta)_flow(t_K) - (alpha, beta)(0)|| / ||(alpha, beta)(0)||, how
            far the flow moves (the error is only meaningful against it).
        excess: "flow", "gd", "adam" -> (K + 1,) excess loss sum_v pi_v KL(p_v || q_v).
    """

    ts: np.ndarray
    gd: tuple[np.ndarray, np.ndarray]
    adam: tuple[np.ndarray, np.ndarray]
    flow: theory.FlowSolution
    error: np.ndarray
    displacement: float
    excess: dict[str, np.ndarray]


# (K, V), (K, V), problem -> (K,) excess loss along a path.
_excess_path = jax.jit(jax.vmap(theory.excess_loss, (0, 0, None)))


def gd_vs_flow(problem: theory.SimplifiedProblem, cfg: Theorem3Config, seed: int) -> FlowComparison:
    """Train the D.1 model in float64 by GD and by Adam from N(0, 1) (alpha0, beta0) drawn from
    `seed`, and solve the joint flow at t = k * eta."""
    n = problem.P.shape[0]
    rng = np.random.default_rng(seed)
    alpha0, beta0 = rng.normal(size=n), rng.normal(size=n)
    with jax.enable_x64(True):
        p64 = problem.astype(jnp.float64)
        model = SinkAttentionModel(p64.P, p64.pi, np.asarray(problem.W), p64.xi, alpha0, beta0)
        gd = exact_loss_trajectory(model, optax.sgd(cfg.learning_rate), cfg.steps)
        adam = exact_loss_trajectory(model, optax.adam(cfg.adam_learning_rate), cfg.steps)
        ts = cfg.learning_rate * np.arange(cfg.steps + 1)
        flow = theory.solve_joint_flow(problem, alpha0, beta0, ts)
        excess = {
            name: np.asarray(_excess_path(*path, p64))
            for name, path in (("flow", (flow.alpha, flow.beta)), ("gd", gd), ("adam", adam))
        }
    stacked_gd = np.concatenate(gd, axis=1)
    stacked_flow = np.concatenate([flow.alpha, flow.beta], axis=1)
    norm = np.linalg.norm(stacked_flow, axis=1)
    error = np.linalg.norm(stacked_gd - stacked_flow, axis=1) / norm
    displacement = np.linalg.norm(stacked_flow[-1] - stacked_flow[0]) / norm[0]
    return FlowComparison(ts, gd, adam, flow, error, float(displacement), excess)


# ----------------------------------------------------------------------------------------------
# Measurements, observations and figures


def _spread(alpha: np.ndarray, pi: np.ndarray) -> float:
    """max_v alpha_v - min_v alpha_v over the tokens in the loss (pi_v > 0)."""
    inside = alpha[pi > 0]
    return float(inside.max() - inside.min())


def measure(
    law: theory.AlphaLaw,
    drain: theory.ValueDrain,
    stat: dict,
    gradient_miss: float,
    gd: FlowComparison,
    pi: np.ndarray,
) -> dict:
    """Claim id -> measured value, from the theory checks and the joint GD run `gd` (a
    `FlowComparison`) on the spec D.4 problem, whose token weights are `pi` (V,)."""
    beta_end = drain.flow.beta[-1]
    alphas = gd.gd[0]
    return {
        "gradient-closed-form": gradient_miss,
        "alpha-law-error": law.error,
        "alpha-law-slope": law.slope,
        "alpha-monotone": np.diff(law.flow.alpha, axis=0).min(axis=0),
        "alpha-flow-c-independent": law.c_shift,
        "beta-mean-conserved": np.abs(drain.flow.beta.mean(axis=1) - drain.flow.beta[0].mean()),
        "beta-limit-paper": np.abs(beta_end - drain.paper).max(),
        "beta-limit-corrected": np.abs(beta_end - drain.corrected).max(),
        "stationary-gradient": stat["grad_norm"],
        "stationary-q-equals-p": stat["q_error"],
        "stationary-hessian-psd": stat["min_eig"],
        "stationary-two-flat-directions": stat["n_zero"],
        "stationary-alpha-curvature": stat["curvature_error"],
        "joint-gd-converges": {
            "excess_final_over_initial": gd.excess["gd"][-1] / gd.excess["gd"][0],
            "alpha_spread_final_over_initial": _spread(alphas[-1], pi) / _spread(alphas[0], pi),
        },
    }


def _observations(
    drain: theory.ValueDrain, random_run, bb_run, code: TrainResult
) -> list[Observation]:
    """GD and Adam against the flow, the size of the paper's beta-limit miss, and the D.5 code
    model's final metrics (its E10 claims are judged by simplified-adam)."""
    miss = np.abs(drain.flow.beta[-1] - drain.paper)
    return [
        Observation(
            "beta-limit-paper-miss",
            "|beta_k(1e7) - the paper's limit_k| (mean, max over k) against spec D.2 item 5's "
            "e^-alpha mean(phi)",
            {"mean": miss.mean(), "max": miss.max(), "predicted": drain.predicted_miss},
        ),
        Observation(
            "gd-vs-flow",
            "GD on the D.1 attention model (spec D.4 problem) against the joint gradient flow "
            "at t = k eta: max relative trajectory error, and how far the flow moves "
            "(relative displacement)",
            {"error": random_run.error.max(), "displacement": random_run.displacement},
        ),
        Observation(
            "gd-vs-flow-bb",
            "the same on the BB statistics (V = 65 characters, triggers out of the loss)",
            {"error": bb_run.error.max(), "displacement": bb_run.displacement},
        ),
        Observation(
            "final-excess-loss",
            "final excess loss sum_v pi_v KL(p_v || q_v) of the flow, GD and Adam, on the spec "
            "D.4 problem and on the BB statistics",
            {
                "d4": {k: v[-1] for k, v in random_run.excess.items()},
                "bb": {k: v[-1] for k, v in bb_run.excess.items()},
            },
        ),
        Observation(
            "code-model-final",
            "the D.5 code model under AdamW at its last evaluation (E10 is judged by "
            "simplified-adam on this run)",
            {k: v[0, -1] for k, v in code.metrics.items()},
        ),
    ]


def _log_spaced_indices(n: int, count: int = 30) -> np.ndarray:
    return np.unique(np.round(np.geomspace(1, n - 1, count)).astype(int))


def _alpha_law_figure(ctx: RunContext, law: theory.AlphaLaw) -> str:
    """alpha_v(t) - (1/2) log t along the alpha flow (beta = 0), one line per token v against
    its predicted limit (1/2) log(2 pi_v Var_{p_v}(phi)) (dashed); returns the file name."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for v in range(law.offset.shape[1]):
        (line,) = ax.plot(law.flow.ts, law.offset[:, v], label=f"v={v}")
        ax.axhline(law.predicted_offset[v], color=line.get_color(), ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel("alpha_v(t) - log(t)/2")
    ax.set_title("alpha law (beta = 0): dashed = (1/2) log(2 pi_v Var_{p_v}(phi))", fontsize=10)
    ax.legend(fontsize=7, ncol=3)
    return ctx.save_figure(fig, "alpha_law")


def _beta_drain_figure(ctx: RunContext, cfg: Theorem3Config, drain: theory.ValueDrain) -> str:
    """The beta-flow at fixed alpha = `cfg.beta_flow_alpha` against flow time t: every beta_k
    with the corrected (dashed) and the paper's (dotted) limit, and max_k |beta_k(t) - limit_k|
    for both limits beside the predicted miss e^-alpha mean(phi); returns the file name."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    ts = drain.flow.ts
    for k in range(drain.flow.beta.shape[1]):
        (line,) = axes[0].plot(ts, drain.flow.beta[:, k], label=f"beta_{k}")
        axes[0].axhline(drain.corrected[k], color=line.get_color(), ls="--", lw=1)
        axes[0].axhline(drain.paper[k], color=line.get_color(), ls=":", lw=1)
    axes[0].set_title(
        f"value drain (alpha = {cfg.beta_flow_alpha:g}): dashed = corrected limit, "
        "dotted = paper's limit",
        fontsize=9,
    )
    axes[0].legend(fontsize=7, ncol=3)
    for name, limit in (("corrected limit", drain.corrected), ("paper's limit", drain.paper)):
        axes[1].plot(ts, np.abs(drain.flow.beta - limit).max(axis=1), label=name)
    axes[1].axhline(drain.predicted_miss, color="gray", ls="--", lw=1, label="e^-alpha mean(phi)")
    axes[1].set_yscale("log")
    axes[1].set_title("max_k |beta_k(t) - limit_k|", fontsize=10)
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("t")
    return ctx.save_figure(fig, "beta_drain")


def _gd_vs_flow_figure(
    ctx: RunContext, cfg: Theorem3Config, run: FlowComparison, bb_run: FlowComparison
) -> str:
    """GD (dots) and Adam (dashed) on the D.1 loss against the joint flow (line) at
    t = step x eta on the spec D.4 problem (`run`): alpha, beta and the excess loss; and the
    relative trajectory error of GD there and on the BB statistics (`bb_run`); returns the
    file name."""
    x = np.maximum(run.ts, run.ts[1])  # step 0 drawn at t = eta on the log axis
    dots = _log_spaced_indices(len(x))
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.2))
    for v in range(run.flow.alpha.shape[1]):
        for ax, flow, gd, adam in (
            (axes[0], run.flow.alpha, run.gd[0], run.adam[0]),
            (axes[1], run.flow.beta, run.gd[1], run.adam[1]),
        ):
            (line,) = ax.plot(x, flow[:, v], lw=2, alpha=0.5)
            ax.plot(x[dots], gd[dots, v], "o", ms=3, color=line.get_color())
            ax.plot(x, adam[:, v], "--", lw=1, color=line.get_color())
    axes[0].set_title("alpha: flow (line), GD (dots), Adam (dashed)", fontsize=10)
    axes[1].set_title("beta: flow (line), GD (dots), Adam (dashed)", fontsize=10)
    axes[2].plot(x, run.excess["flow"], lw=2, alpha=0.5, label="flow")
    axes[2].plot(x[dots], run.excess["gd"][dots], "o", ms=3, label="GD")
    axes[2].plot(x, run.excess["adam"], "--", label=f"Adam (lr {cfg.adam_learning_rate:g})")
    axes[2].set_yscale("log")
    axes[2].set_title("excess loss sum_v pi_v KL(p_v || q_v)", fontsize=10)
    axes[2].legend(fontsize=8)
    axes[3].plot(x, run.error, label="spec D.4 problem (V = 6)")
    axes[3].plot(x, bb_run.error, label="BB statistics (V = 65)")
    axes[3].set_yscale("log")
    axes[3].set_title("GD vs flow: relative trajectory error", fontsize=10)
    axes[3].legend(fontsize=8)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel(f"t = step x {cfg.learning_rate:g} (Adam: same step)")
    return ctx.save_figure(fig, "gd_vs_flow")


def _code_model_figure(ctx: RunContext, code: TrainResult) -> str:
    """The D.5 code model's first run under AdamW against the step: its sink logits, the
    value norm ||W_O beta|| and the attention sink with the excess risks; returns the file
    name."""
    m = {k: v[0] for k, v in code.metrics.items()}
    fig, axes = plt.subplots(1, 3, figsize=(18, 4.2))
    plotting.curves_panel(
        axes[0],
        code.eval_steps,
        {
            "mean alpha (non-trigger types)": m["alpha_mean"],
            "logit <s> (seq 0, pos 1)": m["first_logit"],
        },
        title="D.5 code model under AdamW: sink logits",
    )
    plotting.curves_panel(
        axes[1], code.eval_steps, {"||W_O beta||": m["wo_beta_norm"]}, title="value of <s>"
    )
    axes[1].set_yscale("log")
    plotting.curves_panel(
        axes[2],
        code.eval_steps,
        {
            "Attn_<s>": m["attn_sink"],
            "backcopy excess": m["backcopy_excess"],
            "bigram excess": m["bigram_excess"],
        },
        title="attention sink and excess risks",
    )
    return ctx.save_figure(fig, "code_model")


def _figures(
    ctx, cfg, law: theory.AlphaLaw, drain: theory.ValueDrain, random_run, bb_run, code
) -> list[str]:
    """The experiment's four figures, drawn and saved in `ctx`'s run folder: the alpha law,
    the value drain, GD and Adam against the flow, and the D.5 code model; their file names."""
    return [
        _alpha_law_figure(ctx, law),
        _beta_drain_figure(ctx, cfg, drain),
        _gd_vs_flow_figure(ctx, cfg, random_run, bb_run),
        _code_model_figure(ctx, code),
    ]


def run(cfg: Theorem3Config, ctx: RunContext) -> Outcome:
    problem = theory.random_problem(cfg.problem_seed)
    law = theory.alpha_law(problem, ALPHA_HORIZON)
    drain = theory.value_drain(problem, cfg.beta_flow_alpha, seed=cfg.problem_seed + 2)
    stat = theory.stationary_family(problem, STATIONARY_POINTS, ZERO_EIGENVALUE)
    gradient_miss = theory.gradient_check(
        problem, seed=cfg.problem_seed + 3, n_points=N_GRADIENT_POINTS
    )
    task = load_task(ctx)
    random_run = gd_vs_flow(problem, cfg, seed=cfg.problem_seed + 1)
    bb_run = gd_vs_flow(bb_problem(task, cfg.bb_context_len), cfg, seed=cfg.problem_seed + 1)
    code = train_code_model(cfg.code_model(), task, ctx)

    measured = measure(law, drain, stat, gradient_miss, random_run, np.asarray(problem.pi))
    summary = {
        "problem_seed": cfg.problem_seed,
        "alpha_solver_steps": law.flow.num_steps,
        "gd_final_alpha": random_run.gd[0][-1],
        "flow_final_alpha": random_run.flow.alpha[-1],
        "adam_final_alpha": random_run.adam[0][-1],
        "bb_excess_loss_start": bb_run.excess["flow"][0],
        "code_model_eval_steps": code.eval_steps,
        "code_model_resumed_from": code.resumed_from,
    }
    figures = _figures(ctx, cfg, law, drain, random_run, bb_run, code)
    observations = _observations(drain, random_run, bb_run, code)
    return Outcome(judge(CLAIMS, measured), figures, [42], summary, observations)


def training_plan(cfg: Theorem3Config) -> tuple[PlannedRun, ...]:
    """The one run of `run`: the D.5 code model (the theory checks train nothing stored)."""
    return (code_model_planned_run(cfg.code_model()),)


EXPERIMENT = Experiment(
    name="theorem3",
    title="Simplified model: alpha law, value drain, stationary family; GD and Adam vs the flow",
    presets=PRESETS,
    run=run,
    claims=CLAIMS,
    training_plan=training_plan,
)
