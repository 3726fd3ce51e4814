"""E10 (Figs. 14/15): the official code's simplified model (spec D.5) trained with AdamW.

The D.5 model (learned sink logits alpha, values W_O beta, learned MLP; AdamW lr 0.03) is
trained on Bigram-Backcopy beside the 1-layer transformer. The paper: "the curves resemble 1L,
and the logit grows ~ logarithmically". The resemblance is judged with bb-dynamics' readings of
the same 1-layer statements (E1, E4) applied to the D.5 model; the logarithmic growth by a
least-squares fit of the D.5 sink logit on ln(step) over E4's window [1k, 10k].

One figure overlays, on log-x axes, the D.5 sink logit (mean alpha over non-trigger types, the
spec C logit_<s> of this model), the transformer's logit_<s> and the mean alpha of the Theorem 3
(i) alpha-flow (beta = 0) of the BB-derived spec D.1 instance, drawn against its own time t (a
top axis, t in [1, 1e8]): at the nominal t = step x eta (at most 300) it has not yet left
alpha = 0, and under Adam that time map has no meaning.
"""

import dataclasses

import matplotlib.pyplot as plt
import numpy as np

import theory
from experiments.active_dormant import bb_dynamics
from experiments.active_dormant.bb_common import (
    CI_RUN,
    QUICK_RUN,
    BBRunConfig,
    bb_planned_run,
    load_task,
    task_learned_specs,
    train_bb,
)
from experiments.active_dormant.code_model import (
    CodeModelRun,
    bb_problem,
    code_model_planned_run,
    train_code_model,
)
from experiments.framework.claims import ClaimSpec, Observation, check_specs, judge
from experiments.framework.experiment import Experiment, Outcome, RunContext
from experiments.framework.planning import PlannedRun
from sinkjax import plotting
from sinkjax.train import TrainResult

D5, ONE_LAYER = "D.5 model (AdamW)", "1-layer transformer"
# The label of the 1-layer run, in `run` and in its plan.
TRANSFORMER_LABEL = "1l-transformer"
# Final time of the alpha-flow that is drawn (its slope is fit on the last decade).
FLOW_HORIZON = 1e8
# E4's window for the 1-layer logit_<s>, which E10 says the D.5 curves resemble.
LOG_FIT_WINDOW = bb_dynamics.LOG_FIT_WINDOW


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

    def __post_init__(self):
        for name in ("steps", "batch_size", "seq_len", "eval_batch_size", "bb_context_len"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")

    def code_model(self) -> CodeModelRun:
        """The D.5 run of this config (theorem3's at the same preset)."""
        return CodeModelRun(
            steps=self.steps,
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            seq_len=self.seq_len,
            eval_batch_size=self.eval_batch_size,
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

AD = "active_dormant.md"
_ONE_LAYER_SPECS = {spec.id: spec for spec in bb_dynamics.CLAIMS}


def _as_in_one_layer(spec_id: str, reading: str) -> ClaimSpec:
    """bb-dynamics' claim `spec_id` (same rule), judged on the D.5 model as `d5-<spec_id>`."""
    spec = _ONE_LAYER_SPECS[spec_id]
    return dataclasses.replace(
        spec,
        id=f"d5-{spec_id}",
        statement=f"E10: the D.5 curves 'resemble 1L', judged with bb-dynamics' reading on the "
        f"D.5 model ({reading}): {spec.statement}",
        source=f"{AD} E10; paper Figs. 14/15; the 1-layer reading: {spec.source}",
    )


CLAIMS = check_specs(
    [
        *task_learned_specs(
            "d5",
            "E10: the D.5 model under AdamW (lr 0.03), like the 1-layer model,",
            f"{AD} E10 and D.5 (at 10k steps backcopy CE 2.1e-7, bigram CE Bayes + 0.01); "
            "paper Figs. 14/15",
        ),
        _as_in_one_layer("attention-sink", "Attn_<s> of its non-trigger queries"),
        ClaimSpec(
            "d5-logit-log-linear",
            "E10: 'the logit grows ~ logarithmically' (Fig. 15b, log-x): least squares of the "
            "D.5 sink logit (mean alpha over non-trigger token types, the spec C logit_<s> of "
            f"this model) on ln(step) over the evaluations in [{LOG_FIT_WINDOW[0]:,}, "
            f"{LOG_FIT_WINDOW[1]:,}] (E4's window for the 1-layer model it resembles), with "
            "bb-dynamics' bound: R^2 >= 0.9 and a positive slope",
            f"{AD} E10 and E4 (window 1k-10k); paper Fig. 15b",
            _ONE_LAYER_SPECS["sink-logit-log-linear"].rule,
        ),
        _as_in_one_layer("value-norm-rises-then-falls", "||W_O beta|| for ||W_O v_<s>||"),
    ]
)


def log_fit(
    steps: np.ndarray, curve: np.ndarray, window: tuple[float, float]
) -> dict[str, float] | None:
    """Least squares of `curve` (E,) on ln(`steps`) (E,) over the steps in `window` (>= 1):
    `slope` (per e-fold of steps), `intercept` (the value at step 1), `r2`, and the window's
    first and last step; None when the window holds fewer than 3 evaluations."""
    inside = (steps >= window[0]) & (steps <= window[1])
    if inside.sum() < 3:
        return None
    x, y = np.log(steps[inside]), curve[inside]
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    r2 = 1 - np.sum(residual**2) / np.sum((y - y.mean()) ** 2)
    first, last = steps[inside][[0, -1]]
    fit = {"slope": slope, "intercept": intercept, "r2": r2, "first": first, "last": last}
    return {k: float(v) for k, v in fit.items()}


def flow_logit(problem: theory.SimplifiedProblem, horizon: float) -> tuple[np.ndarray, np.ndarray]:
    """Theorem 3 (i) on `problem`: the alpha-flow with beta = 0 from alpha(1) = 0 up to t =
    `horizon` (`theory.alpha_law`). Returns the times (T,) and the mean alpha (T,) over the
    token types in the loss (pi_v > 0)."""
    flow = theory.alpha_law(problem, horizon).flow
    return flow.ts, flow.alpha[:, problem.pi > 0].mean(axis=1)


def measure(code: TrainResult) -> tuple[dict, dict]:
    """(claim id -> measured value, claim id -> why it has no data) of the D.5 run (seed 42)."""
    steps = code.eval_steps
    m = {k: v[0] for k, v in code.metrics.items()}
    inside = (steps >= LOG_FIT_WINDOW[0]) & (steps <= LOG_FIT_WINDOW[1])
    measured = {
        "d5-backcopy": [m["backcopy_excess"][-1]],
        "d5-bigram": [m["bigram_excess"][-1]],
        "d5-attention-sink": [m["attn_sink"][-1]],
        "d5-value-norm-rises-then-falls": bb_dynamics.rises_then_falls(steps, m["wo_beta_norm"]),
    }
    skipped = {}
    if inside.sum() < 3:  # at `ci`, or a run cut below 1k steps
        skipped["d5-logit-log-linear"] = "fewer than 3 evaluations in steps 1k-10k"
    else:
        measured["d5-logit-log-linear"] = {
            "x": np.log(steps[inside]),
            "y": m["alpha_mean"][inside],
        }
    return measured, skipped


def _figure(fits: dict, curves: dict, flow: tuple, ctx: RunContext) -> str:
    """(a) the sink logits against step, the flow against its own time t (top axis), with the
    log fits dashed; (b) Attn_<s> and the value norm of <s> / its max, D.5 against 1-layer.

    `curves` maps a model name to (steps (E,), logit (E,), attn_sink (E,), value norm (E,));
    `fits` maps it to its `log_fit` (or None).
    """
    fig, axes = plt.subplots(1, 2, figsize=(15, 5))
    for name, (steps, logit, attn, value) in curves.items():
        x = np.maximum(steps, 1)
        (line,) = axes[0].plot(x, logit, label=f"{name}: logit", lw=1.5)
        fit = fits[name]
        if fit is not None:
            fit_steps = np.geomspace(fit["first"], fit["last"], 20)
            axes[0].plot(
                fit_steps,
                fit["slope"] * np.log(fit_steps) + fit["intercept"],
                "--",
                color=line.get_color(),
                lw=1,
                label=f"fit {fit['slope']:.2f} ln(step) + {fit['intercept']:.2f}, "
                f"R^2 {fit['r2']:.3f}",
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
    task = load_task(ctx)
    code = train_code_model(cfg.code_model(), task, ctx)
    transformer = train_bb(cfg.transformer, ctx, TRANSFORMER_LABEL)
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
    fits = {name: log_fit(c[0], c[1], LOG_FIT_WINDOW) for name, c in curves.items()}
    problem = bb_problem(task, cfg.bb_context_len)
    flow = flow_logit(problem, FLOW_HORIZON)
    flow_fit = log_fit(*flow, (FLOW_HORIZON / 10, FLOW_HORIZON))
    nominal_end = cfg.steps * cfg.learning_rate
    observations = [
        Observation(
            "1l-logit-log-fit",
            f"the 1-layer transformer's logit_<s> fit on ln(step) over the same window "
            f"[{LOG_FIT_WINDOW[0]:,}, {LOG_FIT_WINDOW[1]:,}] (slope, intercept, R^2; judged in "
            "bb-dynamics), seed 0",
            fits[ONE_LAYER] or "fewer than 3 evaluations in the window",
        ),
        Observation(
            "flow-log-slope-last-decade",
            "d mean(alpha) / d ln t of the Theorem 3 (i) alpha-flow on the BB-derived D.1 "
            "instance over t in [1e7, 1e8] (theory: 1/2)",
            flow_fit["slope"],
        ),
        Observation(
            "flow-mean-alpha-at-steps-x-eta",
            "the flow's mean alpha at the nominal time t = steps x lr of the D.5 run",
            np.interp(np.log(nominal_end), np.log(flow[0]), flow[1]),
        ),
    ]
    measured, skipped = measure(code)
    summary = {
        "fits": fits,
        "flow_mean_alpha_at_horizon": float(flow[1][-1]),
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
        judge(CLAIMS, measured, skipped),
        figures,
        sorted({42, *cfg.transformer.seeds}),
        summary,
        observations,
    )


def training_plan(cfg: SimplifiedAdamConfig) -> tuple[PlannedRun, ...]:
    """The runs of `run`: the D.5 code model (theorem3's), then the 1-layer transformer."""
    return (
        code_model_planned_run(cfg.code_model()),
        bb_planned_run(cfg.transformer, TRANSFORMER_LABEL),
    )


EXPERIMENT = Experiment(
    name="simplified-adam",
    title="The code's simplified model (D.5) under AdamW: logarithmic sink-logit growth beside "
    "the 1-layer transformer and the Theorem 3 flow (E10, Figs. 14/15)",
    presets=PRESETS,
    run=run,
    claims=CLAIMS,
    training_plan=training_plan,
)
