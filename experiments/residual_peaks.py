"""E6 (Fig. 10): which architectures grow a residual-state peak on <s>?

The five 3-block architectures of spec B.3 are trained together in one compiled program: each
is the full 3-block model under fixed sub-layer gates (`Interventions.architecture`), so they
share one parameter shape and are vmapped with the seeds. The measured quantity is the
recentred residual norm of <s> at the output of block 0, ||Res_<s>|| minus the mean norm of the
other positions (spec C), at the end of training.
"""

import dataclasses

import matplotlib.pyplot as plt
import numpy as np

from sinkjax import plotting

from .bb_common import CI_RUN, BBRunConfig, TrainedBB, train_bb
from .claims import claim_above, claim_below
from .registry import Experiment, Outcome, RunContext

# Spec B.3, as (no_attn, no_ffn) of a 3-block model; 2xTF is the 3-block model whose last block
# is the identity.
ARCHITECTURES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "2xTF": ((2,), (2,)),
    "3xTF": ((), ()),
    "2xTF+MLP": ((2,), ()),
    "MLP+TF+MLP": ((0, 2), ()),
    "Attn+TF+MLP": ((2,), (0,)),
}
# The paper's finding: only these two grow a large peak.
PEAKED = ("3xTF", "2xTF+MLP")
# Ours at the CPU presets: every architecture whose block 0 has an MLP grows one.
WITH_BLOCK0_MLP = ("2xTF", "3xTF", "2xTF+MLP", "MLP+TF+MLP")


@dataclasses.dataclass(frozen=True)
class ResidualPeaksConfig(BBRunConfig):
    """A 3-block BB run per architecture of spec B.3, and the margin the claim asks for."""

    n_layers: int = 3
    # The smaller peak of 3xTF and 2xTF+MLP must exceed the largest other peak by this factor.
    margin: float = 3.0

    def __post_init__(self):
        super().__post_init__()
        if self.n_layers != 3 or self.no_attn or self.no_ffn:
            raise ValueError(
                "residual-peaks sweeps its own 3-block architectures: keep n_layers=3 and leave "
                "no_attn/no_ffn empty"
            )
        if not self.margin > 0:
            raise ValueError(f"margin must be positive, got {self.margin}")


def _from(base: BBRunConfig, **changes) -> ResidualPeaksConfig:
    return ResidualPeaksConfig(**{**dataclasses.asdict(base), **changes})


PRESETS = {
    "ci": _from(CI_RUN, n_layers=3),
    "quick": ResidualPeaksConfig(
        steps=3000,
        batch_size=16,
        seq_len=64,
        d_model=64,
        eval_batch_size=64,
        chunk_size=250,
        learning_rate=3e-3,
    ),
    "paper": ResidualPeaksConfig(steps=10_000, chunk_size=1000),
}


def split_runs(sweep: TrainedBB, values: np.ndarray) -> dict[str, np.ndarray]:
    """Architecture -> (S, ...) rows of a (R, ...) per-run array (runs are variant-major)."""
    n = sweep.cfg.n_seeds
    return {name: values[i * n : (i + 1) * n] for i, name in enumerate(ARCHITECTURES)}


def peak_curves(sweep: TrainedBB) -> dict[str, np.ndarray]:
    """Architecture -> (S, E) recentred ||Res_<s>|| at the output of block 0 over training."""
    return split_runs(sweep, sweep.result.metrics["resid_norm_sink_recentred"][:, :, 0])


def _figure(sweep: TrainedBB, curves: dict[str, np.ndarray], ctx: RunContext) -> str:
    finals = {name: c[:, -1] for name, c in curves.items()}
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    names = list(finals)
    colors = ["tab:red" if n in PEAKED else "tab:gray" for n in names]
    axes[0].bar(names, [finals[n].mean() for n in names], color=colors)
    for i, n in enumerate(names):
        axes[0].scatter(np.full(len(finals[n]), i), finals[n], color="black", s=12, zorder=3)
    axes[0].set_ylabel("recentred ||Res_<s>||, block-0 output")
    axes[0].set_title(f"after {sweep.cfg.steps} steps (bars: seed mean, dots: seeds)")
    axes[0].tick_params(axis="x", rotation=20)
    plotting.curves_panel(
        axes[1],
        sweep.result.eval_steps,
        {n: c.mean(0) for n, c in curves.items()},
        title="recentred ||Res_<s>|| (block 0) during training",
    )
    return ctx.save_figure(fig, "residual_peaks")


def margin_ratio(finals: dict[str, np.ndarray], high: tuple[str, ...]) -> float:
    """The smallest final peak in `high` (worst seed) over the largest of the other
    architectures (best seed), whose value is floored at 1 (below 1 there is no peak)."""
    low = max(float(v.max()) for name, v in finals.items() if name not in high)
    return min(float(finals[name].min()) for name in high) / max(low, 1.0)


def run(cfg: ResidualPeaksConfig, ctx: RunContext) -> Outcome:
    sweep = train_bb(cfg, ctx, "sweep", architectures=ARCHITECTURES)
    curves = peak_curves(sweep)
    finals = {name: c[:, -1] for name, c in curves.items()}  # (S,) each
    excess = sweep.final_metric("backcopy_excess"), sweep.final_metric("bigram_excess")
    claims = [
        claim_below(
            "sweep-learned",
            "Every architecture learns the task (worst final excess risk over variants, seeds "
            "and backcopy/bigram)",
            float(max(excess[0].max(), excess[1].max())),
            0.1,
        ),
        claim_above(
            "peak-needs-depth",
            f"E6 (paper, Fig. 10): the recentred peak of {' and '.join(PEAKED)} exceeds that of "
            f"every other architecture by a factor > {cfg.margin:g} (smaller of the two, worst "
            "seed, over the largest other, best seed)",
            margin_ratio(finals, PEAKED),
            cfg.margin,
        ),
        claim_above(
            "peak-needs-block0-mlp",
            f"Every architecture with an MLP in block 0 grows a peak, Attn+TF+MLP does not: "
            f"factor > {cfg.margin:g} (smallest of the four, worst seed, over Attn+TF+MLP)",
            margin_ratio(finals, WITH_BLOCK0_MLP),
            cfg.margin,
        ),
    ]
    summary = {
        "eval_steps": sweep.result.eval_steps,
        "final_recentred_peak": finals,
        # The same for the embedding (token + position) entering block 0: the part of the peak
        # that block 0 did not build.
        "final_recentred_embed": split_runs(sweep, sweep.final_metric("embed_norm_sink_recentred")),
        "recentred_peak_curves": curves,
        "final_excess": {"backcopy": excess[0], "bigram": excess[1]},
        "train_wall_time_s": sweep.result.wall_time,
    }
    return Outcome(claims, [_figure(sweep, curves, ctx)], list(cfg.seeds), summary)


EXPERIMENT = Experiment(
    name="residual-peaks",
    title="Residual-state peaks need attn+mlp+attn+mlp+mlp: five architectures, one program "
    "(E6, Fig. 10)",
    presets=PRESETS,
    run=run,
)
