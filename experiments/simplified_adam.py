"""E10 (Figs. 14/15): the official code's simplified model (spec D.5) trained with AdamW.

The D.5 model (learned sink logits alpha, values W_O beta, learned MLP; AdamW lr 0.03) is
trained on Bigram-Backcopy beside the 1-layer transformer. One figure overlays, on log-x axes,
its sink logit (mean alpha over non-trigger types), the transformer's logit_<s> and the mean
alpha of the Theorem 3 (i) alpha-flow (beta = 0) of the BB-derived spec D.1 instance. The flow
is drawn against its own time t (a top axis, t in [1, 1e8]): at the nominal t = step x eta
(at most 300) it has not yet left alpha = 0, and under Adam that time map has no meaning.
The claim: the D.5 logit grows about logarithmically, measured by a least-squares fit of the
logit against ln(step) over the late window [fit_start x steps, steps].
"""

import dataclasses

import matplotlib.pyplot as plt
import numpy as np

import theory
from sinkjax import plotting

from .bb_common import CI_RUN, QUICK_RUN, BBRunConfig, load_task, train_bb
from .claims import Claim, claim_above
from .registry import Experiment, Outcome, RunContext
from .theorem3 import Theorem3Config, alpha_law, bb_problem, train_code_model

D5, ONE_LAYER = "D.5 model (AdamW)", "1-layer transformer"
# Final time of the alpha-flow that is drawn (its slope is fit on the last decade).
FLOW_HORIZON = 1e8


@dataclasses.dataclass(frozen=True)
class SimplifiedAdamConfig:
    """The D.5 run (spec D.5 defaults = `paper`), the 1-layer run and the flow it is drawn with."""

    # AdamW steps and learning rate of the D.5 model (wd 1e-4, betas (0.9, 0.99)).
    steps: int = 10_000
    learning_rate: float = 0.03
    # D.5 batch shape and evaluation batch size.
    batch_size: int = 512
    seq_len: int = 256
    eval_batch_size: int = 512
    # The 1-layer transformer run that is overlaid.
    transformer: BBRunConfig = BBRunConfig()
    # Context length n of the BB-derived D.1 instance of the flow (W_k ~ n * unigram_k).
    bb_context_len: int = 16
    # The log fit uses the evaluations at steps >= fit_start * steps.
    fit_start: float = 0.1

    def __post_init__(self):
        for name in ("steps", "batch_size", "seq_len", "eval_batch_size", "bb_context_len"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if not 0 < self.fit_start < 1:
            raise ValueError(f"fit_start must lie in (0, 1), got {self.fit_start}")

    def code_model_config(self) -> Theorem3Config:
        """The theorem3 config whose code-model fields are this D.5 run (for `train_code_model`)."""
        return Theorem3Config(
            code_model_steps=self.steps,
            code_model_learning_rate=self.learning_rate,
            code_model_batch_size=self.batch_size,
            code_model_seq_len=self.seq_len,
            code_model_eval_batch_size=self.eval_batch_size,
        )


PRESETS = {
    "ci": SimplifiedAdamConfig(
        steps=30, batch_size=8, seq_len=32, eval_batch_size=8, transformer=CI_RUN
    ),
    # The D.5 run of theorem3's quick preset and the 1-layer run of bb-dynamics': under
    # `sinkjax reproduce` both are restored from the run store, not trained again.
    "quick": SimplifiedAdamConfig(
        steps=2000, batch_size=64, seq_len=128, eval_batch_size=128, transformer=QUICK_RUN
    ),
    "paper": SimplifiedAdamConfig(),
}


@dataclasses.dataclass(frozen=True)
class LogFit:
    """Least squares y = slope * ln(step) + intercept over a window of evaluation steps.

    Attributes:
        slope: dy / d ln(step).
        intercept: y at step 1.
        r2: coefficient of determination of the fit.
        steps: (W,) the steps in the window.
    """

    slope: float
    intercept: float
    r2: float
    steps: np.ndarray


def log_fit(steps: np.ndarray, curve: np.ndarray, start: float) -> LogFit:
    """Fit `curve` (E,) against ln(`steps`) (E,) over the steps >= `start` (> 0)."""
    window = steps >= start
    if window.sum() < 3:
        raise ValueError(f"the fit window from step {start:g} holds fewer than 3 evaluations")
    x, y = np.log(steps[window]), curve[window]
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    r2 = 1 - np.sum(residual**2) / np.sum((y - y.mean()) ** 2)
    return LogFit(float(slope), float(intercept), float(r2), steps[window])


def flow_logit(problem: theory.SimplifiedProblem, horizon: float) -> tuple[np.ndarray, np.ndarray]:
    """Theorem 3 (i) on `problem`: the alpha-flow with beta = 0 from alpha(1) = 0 up to t =
    `horizon` (`theorem3.alpha_law`). Returns the times (T,) and the mean alpha (T,) over the
    token types in the loss (pi_v > 0)."""
    flow = alpha_law(problem, horizon).flow
    return flow.ts, flow.alpha[:, problem.pi > 0].mean(axis=1)


def _claims(cfg: SimplifiedAdamConfig, d5: LogFit, one_layer: LogFit) -> list[Claim]:
    window = f"steps [{cfg.fit_start:g} x steps, steps]"
    return [
        claim_above(
            "d5-logit-log-fit",
            f"E10: the D.5 sink logit (mean alpha over non-trigger types) is about linear in "
            f"ln(step): R^2 of the least-squares fit over {window} (slope "
            f"{d5.slope:.3f} per e-fold)",
            d5.r2,
            0.9,
        ),
        claim_above(
            "d5-logit-log-slope",
            f"E10: the D.5 sink logit keeps growing: fitted d logit / d ln(step) over {window}",
            d5.slope,
            0.0,
        ),
        claim_above(
            "1l-logit-log-slope",
            f"E10: as in the 1-layer transformer, whose logit_<s> also grows: fitted d logit / "
            f"d ln(step) over its own {window} (R^2 {one_layer.r2:.3f})",
            one_layer.slope,
            0.0,
        ),
    ]


def _figure(fits: dict[str, LogFit], curves: dict, flow: tuple, ctx: RunContext) -> str:
    """(a) the sink logits against step, the flow against its own time t (top axis), with the
    log fits dashed; (b) Attn_<s> and the value norm of <s> / its max, D.5 against 1-layer.

    `curves` maps a model name to (steps (E,), logit (E,), attn_sink (E,), value norm (E,)).
    """
    fig, axes = plt.subplots(1, 2, figsize=(15, 5))
    for name, (steps, logit, attn, value) in curves.items():
        x = np.maximum(steps, 1)
        (line,) = axes[0].plot(x, logit, label=f"{name}: logit", lw=1.5)
        fit = fits[name]
        axes[0].plot(
            fit.steps,
            fit.slope * np.log(fit.steps) + fit.intercept,
            "--",
            color=line.get_color(),
            lw=1,
            label=f"fit {fit.slope:.2f} ln(step) + {fit.intercept:.2f}, R^2 {fit.r2:.3f}",
        )
        axes[1].plot(x, attn, color=line.get_color(), label=f"{name}: Attn_<s>")
        axes[1].plot(
            x,
            plotting.rescaled(value),
            ":",
            color=line.get_color(),
            label=f"{name}: value norm of <s> / max",
        )
    top = axes[0].twiny()
    top.plot(*flow, color="tab:green", lw=1.5, label="Theorem 3 alpha-flow (beta = 0): mean alpha")
    top.set_xscale("log")
    top.set_xlabel("flow time t (the flow at t = step x eta has not started to grow)")
    top.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel("sink logit")
    axes[0].set_title(
        "(a) sink logit against step; the D.1 flow on BB against t", fontsize=10, pad=30
    )
    axes[1].set_title("(b) attention on <s> and value drain, D.5 against 1-layer", fontsize=10)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("step")
        ax.legend(fontsize=7, loc="upper left")
        ax.grid(alpha=0.3)
    return ctx.save_figure(fig, "simplified_adam")


def run(cfg: SimplifiedAdamConfig, ctx: RunContext) -> Outcome:
    task = load_task(ctx.corpus)
    code = train_code_model(cfg.code_model_config(), task, ctx)
    transformer = train_bb(cfg.transformer, ctx, "1l-transformer")
    d5 = {k: v[0] for k, v in code.metrics.items()}
    tf = {k: v[0, :, 0, 0] for k, v in transformer.result.metrics.items() if v.ndim == 4}
    curves = {
        D5: (code.eval_steps, d5["alpha_mean"], d5["attn_sink"], d5["wo_beta_norm"]),
        ONE_LAYER: (
            transformer.result.eval_steps,
            tf["sink_logit"],
            tf["attn_sink"],
            tf["value_norm_sink"],
        ),
    }
    fits = {
        D5: log_fit(code.eval_steps, d5["alpha_mean"], cfg.fit_start * cfg.steps),
        ONE_LAYER: log_fit(
            transformer.result.eval_steps, tf["sink_logit"], cfg.fit_start * cfg.transformer.steps
        ),
    }
    problem = bb_problem(task, cfg.bb_context_len)
    flow = flow_logit(problem, FLOW_HORIZON)
    flow_fit = log_fit(*flow, FLOW_HORIZON / 10)
    nominal_end = cfg.steps * cfg.learning_rate
    summary = {
        "fits": {
            name: {"slope": f.slope, "intercept": f.intercept, "r2": f.r2, "window": f.steps}
            for name, f in fits.items()
        },
        "flow_log_slope_last_decade": flow_fit.slope,
        "flow_mean_alpha_at_horizon": float(flow[1][-1]),
        "flow_mean_alpha_at_steps_x_eta": float(
            np.interp(np.log(nominal_end), np.log(flow[0]), flow[1])
        ),
        "d5_eval_steps": code.eval_steps,
        "d5_logit": d5["alpha_mean"],
        "d5_final": {k: float(v[-1]) for k, v in d5.items()},
        "transformer_eval_steps": transformer.result.eval_steps,
        "transformer_logit": tf["sink_logit"],
        "train_wall_time_s": code.wall_time + transformer.result.wall_time,
    }
    figures = [_figure(fits, curves, flow, ctx)]
    # The D.5 run uses train's default seed, 42.
    return Outcome(
        _claims(cfg, fits[D5], fits[ONE_LAYER]),
        figures,
        sorted({42, *cfg.transformer.seeds}),
        summary,
    )


EXPERIMENT = Experiment(
    name="simplified-adam",
    title="The code's simplified model (D.5) under AdamW: logarithmic sink-logit growth beside "
    "the 1-layer transformer and the Theorem 3 flow (E10, Figs. 14/15)",
    presets=PRESETS,
    run=run,
)
