"""E12: Theorem 3 of the active-dormant paper, theory against experiment (spec D).

Theory side (float64, diffrax): the alpha law alpha_v(t) - (1/2) log t -> (1/2) log(2 pi_v Var),
the value drain to the corrected beta limit (and the paper's printed limit missing it), and the
flat stationary family. Experiment side: the spec D.1 model written as an attention forward
pass (`SinkAttentionModel`) trained by small-step gradient descent on its exact loss, against
the flow at t = k * eta; the same model under Adam; and the official code's simplified model
(spec D.5) trained with AdamW on Bigram-Backcopy batches.
"""

import dataclasses

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from flax import nnx

import theory
from sinkjax import plotting
from sinkjax.bb_training import code_simple_train_task, make_eval_batch
from sinkjax.models import SinkAttentionModel
from sinkjax.optim import OptimizerConfig
from sinkjax.train import TrainConfig, train

from .bb_common import load_task
from .claims import claim_above, claim_below, claim_close, claim_true
from .registry import Experiment, Outcome, RunContext


@dataclasses.dataclass(frozen=True)
class Theorem3Config:
    """Settings of the theory checks and of the three training runs."""

    # Seed of the spec D.4 problem (V = 6 tokens, Dirichlet rows, W_k in {1,2,3}, xi in (0.5, 2)).
    problem_seed: int = 0
    # Gradient-descent steps and step size eta on the exact D.1 loss (flow time t = steps * eta).
    steps: int = 4000
    learning_rate: float = 0.25
    # Adam learning rate on the same loss (plotted beside the flow).
    adam_learning_rate: float = 0.01
    # The official code's simplified model on BB (spec D.5): steps, AdamW lr, batch shape.
    code_model_steps: int = 10_000
    code_model_learning_rate: float = 0.03
    code_model_batch_size: int = 512
    code_model_seq_len: int = 256
    code_model_eval_batch_size: int = 512
    # Fixed alpha of the beta-flow check, and the final time of the alpha law.
    beta_flow_alpha: float = 0.5
    alpha_horizon: float = 1e8

    def __post_init__(self):
        for name in ("steps", "code_model_steps", "code_model_batch_size", "code_model_seq_len"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("learning_rate", "adam_learning_rate", "code_model_learning_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.alpha_horizon < 1e7:
            raise ValueError("alpha_horizon must be at least 1e7 (the slope is fit on [t/10, t])")


PRESETS = {
    "ci": Theorem3Config(
        steps=400,
        code_model_steps=30,
        code_model_batch_size=8,
        code_model_seq_len=32,
        code_model_eval_batch_size=8,
    ),
    "quick": Theorem3Config(
        code_model_steps=1500,
        code_model_batch_size=64,
        code_model_seq_len=128,
        code_model_eval_batch_size=128,
    ),
    "paper": Theorem3Config(steps=40_000, learning_rate=0.05),
}


def _optimise(model: SinkAttentionModel, tx: optax.GradientTransformation, steps: int):
    """(steps + 1, V) alpha and beta along `steps` optimiser steps on the exact loss (lax.scan)."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss(params):
        return nnx.merge(graphdef, params, rest).loss()

    def step(carry, _):
        params, opt_state = carry
        grads = jax.grad(loss)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return (params, opt_state), (params["alpha"][...], params["beta"][...])

    @jax.jit
    def run(params):
        _, (alphas, betas) = jax.lax.scan(step, (params, tx.init(params)), None, length=steps)
        return alphas, betas

    alphas, betas = run(params)
    first = (params["alpha"][...][None], params["beta"][...][None])
    return np.concatenate([first[0], alphas]), np.concatenate([first[1], betas])


def gradient_descent_vs_flow(cfg: Theorem3Config, problem: theory.SimplifiedProblem):
    """Train the D.1 model by GD and by Adam in float64, and solve the flow at t = k * eta."""
    rng = np.random.default_rng(cfg.problem_seed + 1)
    alpha0, beta0 = rng.normal(size=6), rng.normal(size=6)
    with jax.enable_x64(True):
        p64 = problem.astype(jnp.float64)
        model = SinkAttentionModel(p64.P, p64.pi, np.asarray(problem.W), p64.xi, alpha0, beta0)
        gd = _optimise(model, optax.sgd(cfg.learning_rate), cfg.steps)
        adam = _optimise(model, optax.adam(cfg.adam_learning_rate), cfg.steps)
    ts = cfg.learning_rate * np.arange(cfg.steps + 1)
    flow = theory.solve_joint_flow(problem, alpha0, beta0, ts)
    stacked_gd = np.concatenate(gd, axis=1)
    stacked_flow = np.concatenate([flow.alpha, flow.beta], axis=1)
    error = np.linalg.norm(stacked_gd - stacked_flow, axis=1) / np.linalg.norm(stacked_flow, axis=1)
    return ts, gd, adam, flow, error


def _alpha_law(cfg, problem, p64):
    ts = np.geomspace(1.0, cfg.alpha_horizon, 101)
    sol = theory.solve_alpha_flow(problem, np.zeros(6), 0.0, ts)
    with jax.enable_x64(True):
        predicted_offset = np.asarray(theory.alpha_log_offset(p64))
    offset = sol.alpha - 0.5 * np.log(ts)[:, None]
    i = np.argmin(np.abs(ts - cfg.alpha_horizon / 10))
    slope = (sol.alpha[-1] - sol.alpha[i]) / np.log(ts[-1] / ts[i])
    return ts, sol, offset, predicted_offset, slope


def _stationary_checks(p64):
    grad_norms, min_eigs, n_zero, curvature_err = [], [], [], []
    for alpha, c in [(0.0, 0.0), (1.5, -0.7), (4.0, 2.0)]:
        a, b = theory.stationary_point(p64, alpha, c)
        grads = jax.grad(theory.loss, argnums=(0, 1))(a, b, p64)
        grad_norms.append(float(jnp.linalg.norm(jnp.concatenate(grads))))
        hess = np.asarray(theory.hessian(a, b, p64))
        eigs = np.linalg.eigvalsh(hess)
        min_eigs.append(float(eigs.min()))
        n_zero.append(int(np.sum(np.abs(eigs) < 1e-9)))
        predicted = np.asarray(theory.alpha_curvature_at_stationary(p64, alpha))
        curvature_err.append(float(np.max(np.abs(np.diag(hess)[:6] / predicted - 1))))
    return grad_norms, min_eigs, n_zero, curvature_err


def _train_code_model(cfg: Theorem3Config, ctx: RunContext):
    task = load_task(ctx.corpus)
    eval_batch = make_eval_batch(task, cfg.code_model_eval_batch_size, cfg.code_model_seq_len)
    train_task, _ = code_simple_train_task(
        task, cfg.code_model_batch_size, cfg.code_model_seq_len, eval_batch
    )
    optimizer = OptimizerConfig(learning_rate=cfg.code_model_learning_rate, weight_decay=1e-4)
    train_cfg = TrainConfig(
        steps=cfg.code_model_steps,
        chunk_size=min(250, cfg.code_model_steps),
        n_log_evals=40,
        n_linear_evals=20,
        checkpoint_every=max(cfg.code_model_steps // 10, 1),
    )
    return train(
        train_task,
        optimizer,
        train_cfg,
        checkpoint_dir=str(ctx.checkpoint_dir / "code-model"),
        fingerprint={"config": dataclasses.asdict(cfg), "corpus": str(ctx.corpus)},
        progress=ctx.progress,
        description="theorem3: D.5 model",
    )


def _figures(ctx, cfg, law, beta, gd_run, code_result) -> list[str]:
    ts, _, offset, predicted_offset, _ = law
    figures = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for v in range(offset.shape[1]):
        (line,) = ax.plot(ts, offset[:, v], label=f"v={v}")
        ax.axhline(predicted_offset[v], color=line.get_color(), ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel("alpha_v(t) - log(t)/2")
    ax.set_title("alpha law (beta = c 1): dashed = (1/2) log(2 pi_v Var_p(phi))", fontsize=10)
    ax.legend(fontsize=7, ncol=3)
    figures.append(ctx.save_figure(fig, "alpha_law"))

    beta_ts, beta_sol, corrected, paper = beta
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k in range(beta_sol.beta.shape[1]):
        (line,) = ax.plot(beta_ts, beta_sol.beta[:, k], label=f"beta_{k}")
        ax.axhline(corrected[k], color=line.get_color(), ls="--", lw=1)
        ax.axhline(paper[k], color=line.get_color(), ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("t")
    ax.set_title(
        f"value drain (alpha = {cfg.beta_flow_alpha}): dashed = corrected limit, "
        "dotted = paper's printed limit",
        fontsize=9,
    )
    ax.legend(fontsize=7, ncol=3)
    figures.append(ctx.save_figure(fig, "beta_drain"))

    ts_gd, gd, adam, flow, error = gd_run
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    x = np.maximum(ts_gd, ts_gd[1])
    for v in range(6):
        (line,) = axes[0].plot(x, flow.alpha[:, v], lw=2, alpha=0.5)
        axes[0].plot(
            x[:: max(len(x) // 25, 1)],
            gd[0][:: max(len(x) // 25, 1), v],
            "o",
            ms=3,
            color=line.get_color(),
        )
        axes[0].plot(x, adam[0][:, v], "--", lw=1, color=line.get_color())
        axes[1].plot(x, flow.beta[:, v], lw=2, alpha=0.5, color=line.get_color())
        axes[1].plot(
            x[:: max(len(x) // 25, 1)],
            gd[1][:: max(len(x) // 25, 1), v],
            "o",
            ms=3,
            color=line.get_color(),
        )
        axes[1].plot(x, adam[1][:, v], "--", lw=1, color=line.get_color())
    axes[0].set_title("alpha: flow (line), GD (dots), Adam (dashed)", fontsize=10)
    axes[1].set_title("beta: flow (line), GD (dots), Adam (dashed)", fontsize=10)
    axes[2].plot(x, error)
    axes[2].set_yscale("log")
    axes[2].set_title("GD vs flow: relative error", fontsize=10)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel(f"t = step x {cfg.learning_rate:g}")
    figures.append(ctx.save_figure(fig, "gd_vs_flow"))

    m = {k: v[0] for k, v in code_result.metrics.items()}
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    plotting.curves_panel(
        axes[0],
        code_result.eval_steps,
        {
            "mean alpha (non-trigger)": m["alpha_mean"],
            "logit <s> (seq 0, pos 1)": m["first_logit"],
            "||W_O beta||": m["wo_beta_norm"],
        },
        title="D.5 code model under AdamW: sink logits and value norm",
    )
    plotting.curves_panel(
        axes[1],
        code_result.eval_steps,
        {
            "Attn_<s>": m["attn_sink"],
            "backcopy excess": m["backcopy_excess"],
            "bigram excess": m["bigram_excess"],
        },
        title="D.5 code model: attention sink and excess risks",
    )
    figures.append(ctx.save_figure(fig, "code_model"))
    return figures


def run(cfg: Theorem3Config, ctx: RunContext) -> Outcome:
    problem = theory.random_problem(cfg.problem_seed)
    with jax.enable_x64(True):
        p64 = problem.astype(jnp.float64)
        law = _alpha_law(cfg, problem, p64)
        beta0 = np.random.default_rng(cfg.problem_seed + 2).normal(size=6)
        beta_ts = np.geomspace(1e-3, 1e7, 60)
        beta_sol = theory.solve_beta_flow(problem, cfg.beta_flow_alpha, beta0, beta_ts)
        corrected = np.asarray(theory.beta_limit(p64, cfg.beta_flow_alpha, beta0))
        paper = np.asarray(theory.beta_limit_paper(p64, cfg.beta_flow_alpha, beta0))
        predicted_miss = float(np.exp(-cfg.beta_flow_alpha) * np.mean(problem.phi))
        grad_norms, min_eigs, n_zero, curvature_err = _stationary_checks(p64)
    ts, sol, offset, predicted_offset, slope = law
    gd_run = gradient_descent_vs_flow(cfg, problem)
    code_result = _train_code_model(cfg, ctx)

    law_error = np.abs(offset[-1] - predicted_offset)
    claims = [
        claim_below(
            "alpha-law-error",
            f"Thm 3(i): alpha_v(t) - log(t)/2 -> log(2 pi_v Var)/2; max_v error at t = "
            f"{cfg.alpha_horizon:g}",
            float(law_error.max()),
            0.02,
        ),
        claim_close(
            "alpha-law-slope",
            "Thm 3(i): d alpha_v / d log t on [t/10, t] is 1/2 (the worst v)",
            float(slope[np.argmax(np.abs(slope - 0.5))]),
            0.5,
            0.02,
        ),
        claim_true(
            "alpha-monotone",
            "Thm 3(i): every alpha_v increases strictly along the flow (min increment)",
            float(np.diff(sol.alpha, axis=0).min()),
            "> 0",
            bool(np.diff(sol.alpha, axis=0).min() > 0),
        ),
        claim_below(
            "beta-limit-corrected",
            "Thm 3(ii): beta -> mean(beta0) - e^-alpha (phi - mean phi) (max error)",
            float(np.abs(beta_sol.beta[-1] - corrected).max()),
            1e-5,
        ),
        claim_below(
            "beta-mean-conserved",
            "Thm 3(ii): the flow conserves mean(beta) (max drift)",
            float(np.abs(beta_sol.beta.mean(axis=1) - beta0.mean()).max()),
            1e-10,
        ),
        claim_close(
            "beta-limit-paper-miss",
            "The paper's printed limit mean(beta0) - e^-alpha phi misses by e^-alpha mean(phi) "
            "(mean miss)",
            float(np.mean(np.abs(beta_sol.beta[-1] - paper))),
            predicted_miss,
            1e-5,
        ),
        claim_below(
            "stationary-gradient",
            "Thm 3(iii): (alpha 1, c 1 - e^-alpha phi) is stationary (max ||grad loss||)",
            max(grad_norms),
            1e-10,
        ),
        claim_above(
            "stationary-hessian-psd",
            "Thm 3(iii): the Hessian there is PSD (min eigenvalue)",
            min(min_eigs),
            -1e-9,
        ),
        claim_true(
            "stationary-two-flat-directions",
            "Thm 3(iii): exactly two zero Hessian eigenvalues (the 2-d family)",
            n_zero,
            "2 at every point",
            all(n == 2 for n in n_zero),
        ),
        claim_below(
            "stationary-alpha-curvature",
            "d^2 loss / d alpha_v^2 = pi_v Var(phi) / (e^alpha + W)^2 (max relative error)",
            max(curvature_err),
            1e-8,
        ),
        claim_below(
            "gd-vs-flow",
            f"GD on the D.1 model (eta = {cfg.learning_rate:g}, {cfg.steps} steps) follows the "
            "gradient flow at t = k eta (max relative trajectory error)",
            float(gd_run[4].max()),
            1e-2,
        ),
    ]
    summary = {
        "problem_seed": cfg.problem_seed,
        "alpha_law_error": law_error,
        "alpha_slope": slope,
        "alpha_solver_steps": sol.num_steps,
        "beta_limit_paper_miss_predicted": predicted_miss,
        "stationary_grad_norms": grad_norms,
        "stationary_min_eigenvalues": min_eigs,
        "gd_final_alpha": gd_run[1][0][-1],
        "flow_final_alpha": gd_run[3].alpha[-1],
        "adam_final_alpha": gd_run[2][0][-1],
        "code_model_final": {k: v[0, -1] for k, v in code_result.metrics.items()},
        "code_model_eval_steps": code_result.eval_steps,
    }
    beta = (beta_ts, beta_sol, corrected, paper)
    figures = _figures(ctx, cfg, law, beta, gd_run, code_result)
    return Outcome(claims, figures, [42], summary)


EXPERIMENT = Experiment(
    name="theorem3",
    title="Simplified model: alpha law, value drain, stationary family; GD and Adam vs the flow",
    presets=PRESETS,
    run=run,
)
