"""E8 (Fig. 5c): the residual peak needs Adam; the sink does not.

3xTF is trained three times: with AdamW, with SGD (momentum 0.9, coupled weight decay, the
official script's lr 0.03) and with ReLU attention under AdamW. The raw ||Res_<s>|| at the
output of block 0 is followed along training. Under Adam it grows roughly linearly (least-squares
slope and R^2 from a tenth of training to the end); under SGD and with ReLU attention it stays in a
band around its initial value. The attention sinks of blocks 1-2 persist under SGD.

The three runs differ in optimiser state or attention graph, so they are compiled separately;
the seeds of each run are vmapped.
"""

import dataclasses

import matplotlib.pyplot as plt
import numpy as np

from sinkjax import plotting

from .bb_common import BBRunConfig, TrainedBB, run_settings, train_bb
from .claims import claim_above, claim_below, claim_true
from .registry import Experiment, Outcome, RunContext
from .residual_peaks import PRESETS as SWEEP_PRESETS


@dataclasses.dataclass(frozen=True)
class OptimizerAblationConfig(BBRunConfig):
    """The Adam run (the base fields), and the SGD and ReLU-attention runs beside it."""

    n_layers: int = 3
    # SGD learning rate (momentum 0.9, coupled weight decay `weight_decay`).
    sgd_learning_rate: float = 0.03
    # AdamW learning rate of the ReLU-attention run.
    relu_learning_rate: float = 3e-4
    # A run "stays in a band" when max_t | ||Res_<s>||(t) / ||Res_<s>||(0) - 1 | is below this.
    band: float = 0.5

    def __post_init__(self):
        super().__post_init__()
        if self.n_layers != 3 or self.no_attn or self.no_ffn or self.attention != "softmax":
            raise ValueError(
                "optimizer-ablation trains 3xTF: keep n_layers=3, softmax attention and no "
                "removed sub-layers"
            )
        if self.optimizer != "adamw":
            raise ValueError("the base run of optimizer-ablation is AdamW; keep optimizer='adamw'")
        if not (self.sgd_learning_rate > 0 and self.relu_learning_rate > 0 and self.band > 0):
            raise ValueError("sgd_learning_rate, relu_learning_rate and band must be positive")

    def variants(self) -> dict[str, BBRunConfig]:
        """The three runs as plain `BBRunConfig`s, by label."""
        adam = BBRunConfig(**run_settings(self))
        return {
            "Adam": adam,
            "SGD": dataclasses.replace(adam, optimizer="sgd", learning_rate=self.sgd_learning_rate),
            "ReLU attn": dataclasses.replace(
                adam, attention="relu", learning_rate=self.relu_learning_rate
            ),
        }


def _from(base: BBRunConfig, **changes) -> OptimizerAblationConfig:
    return OptimizerAblationConfig(**{**run_settings(base), **changes})


PRESETS = {
    "ci": _from(SWEEP_PRESETS["ci"], relu_learning_rate=1e-3),
    # Both AdamW runs share one learning rate, as in the paper (3e-4 there).
    "quick": _from(SWEEP_PRESETS["quick"], relu_learning_rate=3e-3),
    "paper": OptimizerAblationConfig(steps=10_000, chunk_size=1000),
}


def linear_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(slope, R^2) of the least-squares line y = a + slope * x."""
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (intercept + slope * x)
    total = np.sum((y - y.mean()) ** 2)
    return float(slope), float(1 - np.sum(residual**2) / total) if total > 0 else 0.0


def _peak(run: TrainedBB) -> np.ndarray:
    """(S, E) raw ||Res_<s>|| at the output of block 0."""
    return run.result.metrics["resid_norm_sink"][:, :, 0]


def _band(run: TrainedBB) -> float:
    """max over seeds and steps of | ||Res_<s>||(t) / ||Res_<s>||(0) - 1 |."""
    peak = _peak(run)
    return float(np.abs(peak / peak[:, :1] - 1).max())


def _figure(runs: dict[str, TrainedBB], fits, ctx: RunContext) -> str:
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    for name, run in runs.items():
        steps = run.result.eval_steps
        axes[0].plot(steps, _peak(run)[0], marker=".", label=name)
    slope, intercept, window = fits
    axes[0].plot(window, intercept + slope * window, "k--", lw=1, label="Adam: linear fit")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("||Res_<s>||, block-0 output")
    axes[0].set_title("E8: residual norm of <s> (seed 0)")
    axes[0].legend()
    plotting.curves_panel(
        axes[1],
        runs["SGD"].result.eval_steps,
        {
            f"SGD: Attn_<s> block {layer}": runs["SGD"].result.metrics["attn_sink"][0, :, layer, 0]
            for layer in range(3)
        },
        title="sinks under SGD",
    )
    return ctx.save_figure(fig, "optimizer_ablation")


def run(cfg: OptimizerAblationConfig, ctx: RunContext) -> Outcome:
    runs = {name: train_bb(variant, ctx, name) for name, variant in cfg.variants().items()}
    adam = runs["Adam"]
    steps = adam.result.eval_steps
    late = steps >= steps[-1] / 10  # after the first tenth of training (the transient)
    fits = [linear_fit(steps[late], peak[late]) for peak in _peak(adam)]
    slopes, r2 = np.array([f[0] for f in fits]), np.array([f[1] for f in fits])
    growth = _peak(adam)[:, -1] / _peak(adam)[:, 0]
    sgd_sink = runs["SGD"].final_metric("attn_sink")[:, :, 0]  # (S, L)
    claims = [
        claim_below(
            "runs-learned",
            "Each of the three runs learns the task (worst final excess risk over runs, seeds "
            "and backcopy/bigram)",
            max(
                float(r.final_metric(f"{kind}_excess").max())
                for r in runs.values()
                for kind in ("backcopy", "bigram")
            ),
            0.1,
        ),
        claim_true(
            "adam-linear-growth",
            "E8: under Adam ||Res_<s>|| (block 0) grows roughly linearly from a tenth of "
            "training to the end: slope > 0 and R^2 > 0.9 for every seed (measured: slope per "
            "step, R^2)",
            {"slope": slopes.tolist(), "r2": r2.tolist()},
            "slope > 0, R^2 > 0.9",
            bool((slopes > 0).all() and (r2 > 0.9).all()),
        ),
        claim_above(
            "adam-growth-factor",
            "E8: under Adam ||Res_<s>|| (block 0) ends several times its initial value "
            "(final / initial, weakest seed)",
            float(growth.min()),
            2.0,
        ),
        claim_below(
            "sgd-flat",
            "E8: under SGD ||Res_<s>|| (block 0) stays near its initial value (max relative "
            "deviation over steps and seeds)",
            _band(runs["SGD"]),
            cfg.band,
        ),
        claim_below(
            "relu-flat",
            "E8: with ReLU attention ||Res_<s>|| (block 0) stays near its initial value (max "
            "relative deviation over steps and seeds)",
            _band(runs["ReLU attn"]),
            cfg.band,
        ),
        claim_above(
            "sgd-sinks-persist",
            "E8: the sinks persist under SGD (largest final Attn_<s> over blocks 1-2, weakest "
            "seed)",
            float(sgd_sink[:, 1:].max(axis=1).min()),
            0.5,
        ),
    ]
    window = steps[late].astype(float)
    intercept = float(np.polyfit(window, _peak(adam)[0][late], 1)[1])
    summary = {
        "eval_steps": steps,
        "resid_norm_sink_block0": {name: _peak(r) for name, r in runs.items()},
        "adam_slope_per_step": slopes,
        "adam_r2": r2,
        "sgd_final_attn_sink": sgd_sink,
        "final_excess": {
            name: {
                "backcopy": r.final_metric("backcopy_excess"),
                "bigram": r.final_metric("bigram_excess"),
            }
            for name, r in runs.items()
        },
        "train_wall_time_s": sum(r.result.wall_time for r in runs.values()),
    }
    figure = _figure(runs, (slopes[0], intercept, window), ctx)
    return Outcome(claims, [figure], list(cfg.seeds), summary)


EXPERIMENT = Experiment(
    name="optimizer-ablation",
    title="3xTF under Adam, SGD and ReLU attention: the residual peak needs Adam (E8, Fig. 5c)",
    presets=PRESETS,
    run=run,
)
