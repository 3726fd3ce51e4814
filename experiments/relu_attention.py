"""E5 (Fig. 5a): ReLU attention learns Bigram-Backcopy without an attention sink or a value drain.

The 1-layer model with ReLU attention (w_ij = ReLU(s_ij) / (i + 1), rows not normalised; Adam
lr 3e-3 as in the official script) is trained beside the softmax model. Attn_<s> is measured over
non-trigger queries n >= 1: at n = 0 the only visible key is <s> itself, and with ReLU attention
its unnormalised weight (about 12 in our runs) would dominate the mean without being a sink.
"""

import dataclasses

import matplotlib.pyplot as plt

from sinkjax import plotting

from .bb_common import CI_RUN, QUICK_RUN, BBRunConfig, TrainedBB, task_learned_claims, train_bb
from .claims import claim_above, claim_below
from .registry import Experiment, Outcome, RunContext


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
    "paper": ReluAttentionConfig(steps=100_000, chunk_size=1000, n_log_evals=60, n_linear_evals=50),
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


def run(cfg: ReluAttentionConfig, ctx: RunContext) -> Outcome:
    relu = train_bb(cfg, ctx, "relu")
    softmax_cfg = dataclasses.replace(
        cfg, attention="softmax", learning_rate=cfg.softmax_learning_rate
    )
    softmax = train_bb(softmax_cfg, ctx, "softmax")

    steps = relu.result.eval_steps
    trained = steps >= 0.1 * cfg.steps  # from 10% of training on
    attn = relu.result.metrics["attn_sink_later"][:, trained, 0, 0]  # (S, E')
    value = relu.result.metrics["value_norm_sink"][:, :, 0, 0]
    softmax_value = softmax.result.metrics["value_norm_sink"][:, :, 0, 0]
    claims = [
        *task_learned_claims(relu, "relu", "E5: the model with ReLU attention"),
        claim_below(
            "relu-no-sink",
            f"E5: with ReLU attention queries n >= 1 do not attend to <s> (max Attn_<s> from "
            f"step {int(steps[trained][0])}, 10% of training, on)",
            float(attn.max()),
            0.05,
        ),
        claim_above(
            "relu-no-drain",
            "E5: ||W_O v_<s>|| does not drain: final / initial (worst seed)",
            float((value[:, -1] / value[:, 0]).min()),
            1.0,
        ),
        claim_above(
            "softmax-sink-contrast",
            "Contrast: the softmax model of the same run attends to <s> (final Attn_<s>, n >= 1)",
            float(softmax.final_metric("attn_sink_later")[:, 0, 0].min()),
            0.6,
        ),
    ]

    fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
    _panel(axes[0], relu, f"ReLU attention (lr {cfg.learning_rate:g})")
    _panel(axes[1], softmax, f"softmax attention (lr {cfg.softmax_learning_rate:g})")
    plotting.curves_panel(
        axes[2],
        relu.result.eval_steps,
        {"ReLU: ||W_O v_<s>||": value[0], "softmax: ||W_O v_<s>||": softmax_value[0]},
        title="value norm of <s> (raw)",
    )
    axes[2].set_yscale("log")
    figures = [ctx.save_figure(fig, "relu_vs_softmax")]
    summary = {
        "eval_steps": relu.result.eval_steps,
        "relu_attn_sink_later": relu.result.metrics["attn_sink_later"][:, :, 0, 0],
        "relu_attn_sink_with_position0_final": relu.final_metric("attn_sink")[:, 0, 0],
        "relu_value_norm_sink": value,
        "softmax_value_norm_sink": softmax_value,
        "train_wall_time_s": relu.result.wall_time + softmax.result.wall_time,
    }
    return Outcome(claims, figures, list(cfg.seeds), summary)


EXPERIMENT = Experiment(
    name="relu-attention",
    title="1-layer BB with ReLU attention: no attention sink, no value drain (E5, Fig. 5a)",
    presets=PRESETS,
    run=run,
)
