"""E5 (Fig. 5a): ReLU attention learns Bigram-Backcopy without an attention sink or a value drain.

The 1-layer model with ReLU attention (w_ij = ReLU(s_ij) / (i + 1), rows not normalised; Adam
lr 3e-3 as in the official script) is trained beside the softmax model. Attn_<s> of the ReLU
model is measured over non-trigger queries n >= 1: at n = 0 the only visible key is <s> itself,
and with ReLU attention its unnormalised weight is no choice of key and would dominate the mean.
"""

import dataclasses

import matplotlib.pyplot as plt
import numpy as np

from experiments.active_dormant import bb_dynamics
from experiments.active_dormant.bb_common import (
    BAYES_EXCESS_BOUND,
    CI_RUN,
    PAPER_LONG_RUN,
    QUICK_RUN,
    BBRunConfig,
    TrainedBB,
    bb_planned_run,
    task_learned_measured,
    task_learned_specs,
    train_bb,
)
from experiments.framework.claims import (
    Above,
    AllOf,
    Below,
    ClaimSpec,
    Observation,
    check_specs,
    judge,
)
from experiments.framework.experiment import Experiment, Outcome, RunContext
from experiments.framework.planning import PlannedRun
from sinkjax import plotting


@dataclasses.dataclass(frozen=True)
class ReluAttentionConfig(BBRunConfig):
    """The ReLU run (`attention`, `learning_rate`) and the softmax run it is compared with."""

    attention: str = "relu"
    learning_rate: float = 3e-3
    # Learning rate of the softmax comparison run (otherwise the same settings).
    softmax_learning_rate: float = 3e-4

    def __post_init__(self):
        super().__post_init__()
        if not self.softmax_learning_rate > 0:
            raise ValueError(
                f"softmax_learning_rate must be positive, got {self.softmax_learning_rate}"
            )


def _from(base: BBRunConfig, **changes) -> ReluAttentionConfig:
    return ReluAttentionConfig(**{**dataclasses.asdict(base), **changes})


PRESETS = {
    "ci": _from(CI_RUN, attention="relu", learning_rate=3e-3, softmax_learning_rate=1e-3),
    "quick": _from(QUICK_RUN, attention="relu", learning_rate=3e-3, softmax_learning_rate=1e-3),
    "paper": _from(PAPER_LONG_RUN, attention="relu", learning_rate=3e-3),
}

# "Within a few hundred steps" is judged at the evaluation nearest step 500.
FEW_HUNDRED_STEPS = 500
# "Attention on <s> stays ~0" read as Attn_<s> below 0.05 at every evaluation.
NO_SINK_BOUND = 0.05

AD = "active_dormant.md"
SOFTMAX_SINK = {spec.id: spec for spec in bb_dynamics.CLAIMS}["attention-sink"]
CLAIMS = check_specs(
    [
        *task_learned_specs("relu", "E5: the model with ReLU attention", f"{AD} E5; paper Fig. 5a"),
        ClaimSpec(
            "relu-bayes-within-few-hundred-steps",
            "E5: 'the Bayes risks are reached within a few hundred steps': backcopy and bigram "
            f"excess risks below {BAYES_EXCESS_BOUND:g} nats ('~0') at the evaluation nearest "
            f"step {FEW_HUNDRED_STEPS} (or the last, if training is shorter), every seed",
            f"{AD} E5; paper Fig. 5a",
            AllOf({"backcopy": Below(BAYES_EXCESS_BOUND), "bigram": Below(BAYES_EXCESS_BOUND)}),
        ),
        ClaimSpec(
            "relu-no-sink",
            "E5: 'attention on <s> stays ~0: no sink': Attn_<s> of the ReLU model (non-trigger "
            f"queries n >= 1) below {NO_SINK_BOUND:g} at every evaluation ('stays'), every seed",
            f"{AD} E5 and C (Attn_<s>); paper Fig. 5a",
            Below(NO_SINK_BOUND),
        ),
        ClaimSpec(
            "relu-no-drain",
            "E5: '||Val_<s>|| grows instead of shrinking: no drain': final ||W_O v_<s>|| over "
            "its value at step 0 above 1, every seed",
            f"{AD} E5 and C (||Val_<s>||); paper Fig. 5a",
            Above(1.0),
        ),
        dataclasses.replace(
            SOFTMAX_SINK,
            id="softmax-attention-sink",
            statement="E1 on the softmax model trained beside the ReLU one (the contrast of "
            f"Fig. 5a with Fig. 3b), with bb-dynamics' reading: {SOFTMAX_SINK.statement}",
            source=f"{SOFTMAX_SINK.source}; the contrast of paper Fig. 5a",
        ),
    ]
)


def measure(relu: TrainedBB, softmax: TrainedBB) -> dict:
    """Claim id -> measured value: per seed (S,) numbers, or a dict of them."""
    steps = relu.result.eval_steps
    at = int(np.argmin(np.abs(steps - min(FEW_HUNDRED_STEPS, steps[-1]))))
    metrics = relu.result.metrics
    value = metrics["value_norm_sink"][:, :, 0, 0]  # (S, E)
    return {
        **task_learned_measured(relu, "relu"),
        "relu-bayes-within-few-hundred-steps": {
            "backcopy": metrics["backcopy_excess"][:, at],
            "bigram": metrics["bigram_excess"][:, at],
        },
        "relu-no-sink": metrics["attn_sink_later"][:, :, 0, 0].max(axis=1),
        "relu-no-drain": value[:, -1] / value[:, 0],
        "softmax-attention-sink": softmax.final_metric("attn_sink")[:, 0, 0],
    }


def _panel(ax, run: TrainedBB, title: str):
    m = {k: v[0] for k, v in run.result.metrics.items()}  # seed 0
    plotting.curves_panel(
        ax,
        run.result.eval_steps,
        {
            "backcopy excess / max": plotting.rescaled(m["backcopy_excess"]),
            "bigram excess / max": plotting.rescaled(m["bigram_excess"]),
            "Attn_<s> (n >= 1)": m["attn_sink_later"][:, 0, 0],
            "||W_O v_<s>|| / max": plotting.rescaled(m["value_norm_sink"][:, 0, 0]),
        },
        title=title,
    )


def _figure(cfg: ReluAttentionConfig, relu: TrainedBB, softmax: TrainedBB, ctx) -> str:
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
    _panel(axes[0], relu, f"ReLU attention (lr {cfg.learning_rate:g})")
    _panel(axes[1], softmax, f"softmax attention (lr {cfg.softmax_learning_rate:g})")
    plotting.curves_panel(
        axes[2],
        relu.result.eval_steps,
        {
            "ReLU: ||W_O v_<s>||": relu.result.metrics["value_norm_sink"][0, :, 0, 0],
            "softmax: ||W_O v_<s>||": softmax.result.metrics["value_norm_sink"][0, :, 0, 0],
        },
        title="value norm of <s> (raw)",
    )
    axes[2].set_yscale("log")
    return ctx.save_figure(fig, "relu_vs_softmax")


def softmax_twin(cfg: ReluAttentionConfig) -> ReluAttentionConfig:
    """The softmax run compared with the ReLU run: the same settings, softmax attention and
    `softmax_learning_rate` (at every preset, bb-dynamics' run)."""
    return dataclasses.replace(cfg, attention="softmax", learning_rate=cfg.softmax_learning_rate)


def run(cfg: ReluAttentionConfig, ctx: RunContext) -> Outcome:
    relu = train_bb(cfg, ctx, "relu")
    softmax = train_bb(softmax_twin(cfg), ctx, "softmax")
    summary = {
        "eval_steps": relu.result.eval_steps,
        "relu_attn_sink_later": relu.result.metrics["attn_sink_later"][:, :, 0, 0],
        "relu_value_norm_sink": relu.result.metrics["value_norm_sink"][:, :, 0, 0],
        "softmax_value_norm_sink": softmax.result.metrics["value_norm_sink"][:, :, 0, 0],
        "train_wall_time_s": relu.result.wall_time + softmax.result.wall_time,
    }
    observations = [
        Observation(
            "relu-attn-sink-with-position-0",
            "final Attn_<s> of the ReLU model with query n = 0 included (spec C's definition; "
            "A[0, 0] is unnormalised there), per seed",
            relu.final_metric("attn_sink")[:, 0, 0],
        ),
        Observation(
            "softmax-value-norm-final-over-initial",
            "final ||W_O v_<s>|| over its value at step 0 in the softmax run, per seed",
            summary["softmax_value_norm_sink"][:, -1] / summary["softmax_value_norm_sink"][:, 0],
        ),
    ]
    claims = judge(CLAIMS, measure(relu, softmax))
    figures = [_figure(cfg, relu, softmax, ctx)]
    return Outcome(claims, figures, list(cfg.seeds), summary, observations)


def training_plan(cfg: ReluAttentionConfig) -> tuple[PlannedRun, ...]:
    """The ReLU run, then its softmax twin."""
    return (bb_planned_run(cfg, "relu"), bb_planned_run(softmax_twin(cfg), "softmax"))


EXPERIMENT = Experiment(
    name="relu-attention",
    title="1-layer BB with ReLU attention: no attention sink, no value drain (E5, Fig. 5a)",
    presets=PRESETS,
    run=run,
    claims=CLAIMS,
    training_plan=training_plan,
)
