"""P2 (Peng et al.): when does the first-token sink and its P0 circuit form along training?

P2 proposes the P0 sink circuit as a pre-training convergence signal: in its trace the circuit
emerges early and, over training, concentrates into the first two layers. We test that on the
GPT-2-style toy of `gpt2-circuit` (the same run at every preset): at each evaluation
checkpoint `text_lm_metrics` has recorded, per layer, the sink rate (M3), P1's BOS attention
(M4), the massive-activation ratio rho^l (M11), Δ-dominance (M6), and the P0 signals of M12
(attention-output norm ratio, linear-probe AUC). For each we find the onset step (M15: first
checkpoint at half of the min-max normalised final value) and set it against the step where
the loss has converged.

The claims are P2's predictions, tested rather than assumed: the sink forms, its onset comes
before the loss converges, and a massive position-0 state is written within the first two
blocks.
"""

import dataclasses

import jax
import matplotlib.pyplot as plt
import numpy as np

from sinkjax import plotting, sinks
from sinkjax.tasks.text import TEXT_DOMAINS

from .claims import Claim, claim_above, claim_true
from .registry import Experiment, Outcome, RunContext
from .text_common import (
    CI_TEXT_RUN,
    QUICK_TEXT_RUN,
    TextRunConfig,
    text_run_settings,
    train_text_lm,
)


@dataclasses.dataclass(frozen=True)
class SinkDynamicsConfig(TextRunConfig):
    """The run (the base fields) and how its curves are read."""

    # The loss has converged at the first checkpoint where its excess over the final value is
    # at most this fraction of the total drop (mean cross-entropy over the domains).
    converged_fraction: float = 0.1
    # A layer sinks when its BOS attention (M4, mean over heads) exceeds this many times the
    # uniform-attention null (as in gpt2-circuit).
    sink_factor: float = 3.0
    # P2's "first two layers", and the rho^l a massive position-0 state must reach there.
    early_layers: int = 2
    massive_rho: float = 2.0

    def __post_init__(self):
        super().__post_init__()
        if not 0 < self.converged_fraction < 1:
            raise ValueError(
                f"converged_fraction must lie in (0, 1), got {self.converged_fraction}"
            )
        if not 1 <= self.early_layers <= self.n_layers:
            raise ValueError(f"early_layers must lie in [1, n_layers], got {self.early_layers}")
        if self.sink_factor <= 1 or self.massive_rho <= 1:
            raise ValueError("sink_factor and massive_rho must be > 1 (1 is the null)")


def _from(run: TextRunConfig) -> SinkDynamicsConfig:
    return SinkDynamicsConfig(**text_run_settings(run))


PRESETS = {
    "ci": _from(CI_TEXT_RUN),
    "quick": _from(QUICK_TEXT_RUN),
    "paper": _from(TextRunConfig()),
}


def layer_signals(metrics: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-layer curves (E, L) of one run from `text_lm_metrics` histories (E checkpoints).

    Δ-dominance is averaged over heads (absent without a query bias); the attention-output
    ratio is ||o_0|| / mean_{t>0} ||o_t||.
    """
    signals = {
        "BOS attention (M4)": metrics["bos_attention"],
        "sink rate (M3)": metrics["sink_rate"],
        "rho (M11)": metrics["rho"],
        "attention-output ratio (M12)": metrics["attn_out_first"] / metrics["attn_out_rest"],
        "P0 probe AUC (M12)": metrics["p0_probe_auc"],
    }
    if "delta_dominance" in metrics:
        signals["Δ-dominance (M6)"] = metrics["delta_dominance"].mean(-1)
    return signals


def onsets(steps: np.ndarray, signals: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """M15 half-way onset step of every signal, per layer: name -> (L,) (NaN if flat)."""

    per_layer = jax.vmap(sinks.onset, in_axes=(None, 1))
    return {name: np.asarray(per_layer(steps, curve).half_step) for name, curve in signals.items()}


def convergence_step(steps: np.ndarray, loss: np.ndarray, fraction: float) -> int:
    """First checkpoint where loss - loss[-1] <= fraction * (loss[0] - loss[-1])."""
    excess = loss - loss[-1]
    return int(steps[np.argmax(excess <= fraction * (loss[0] - loss[-1]))])


def _claims(cfg, signals, onset, converged, null) -> list[Claim]:
    bos = signals["BOS attention (M4)"]
    sink_layer = int(np.argmax(bos[-1]))
    rho = signals["rho (M11)"][-1]
    sink_onset = float(onset["BOS attention (M4)"][sink_layer])
    ratio = float(bos[-1, sink_layer] / null)
    return [
        claim_above(
            "sink-forms",
            f"A first-token sink forms: final BOS attention of the strongest layer (layer "
            f"{sink_layer}) over the uniform-attention null at T = {cfg.seq_len}",
            ratio,
            cfg.sink_factor,
        ),
        claim_true(
            "sink-early",
            "P2: the sink emerges early: the onset (M15, half-way) of the strongest layer's BOS "
            "attention comes no later than the loss convergence step (only a formed sink has "
            "an onset: it needs sink-forms)",
            {"sink_onset": sink_onset, "loss_converged": converged, "sink_over_null": ratio},
            f"sink_onset <= loss_converged and sink_over_null > {cfg.sink_factor:g}",
            bool(ratio > cfg.sink_factor and sink_onset <= converged),
        ),
        claim_above(
            "massive-p0-early",
            f"P2: the circuit concentrates in the first {cfg.early_layers} layers: the largest "
            f"final rho^l = ||h_0|| / mean ||h_t|| over layers < {cfg.early_layers}",
            float(rho[: cfg.early_layers].max()),
            cfg.massive_rho,
        ),
    ]


def _figure(steps, signals, ce, onset, converged, null, ctx: RunContext) -> str:
    fig, axes = plt.subplots(2, 4, figsize=(20, 8.5))
    axes = axes.ravel()
    plotting.curves_panel(
        axes[0],
        steps,
        {d: ce[:, i] for i, d in enumerate(TEXT_DOMAINS)},
        title="held-out cross-entropy (nats)",
    )
    axes[0].axvline(max(converged, 1), ls="--", color="gray", lw=1)
    for ax, (name, curve) in zip(axes[1:], signals.items(), strict=False):
        plotting.curves_panel(
            ax, steps, {f"layer {l}": curve[:, l] for l in range(curve.shape[1])}, title=name
        )
        for l, step in enumerate(onset[name]):
            if np.isfinite(step):
                ax.axvline(max(step, 1), color=f"C{l}", ls=":", lw=1)
        ax.axvline(max(converged, 1), ls="--", color="gray", lw=1)
    axes[1].axhline(null, color="black", lw=0.8, label="uniform null")
    axes[1].legend(fontsize=7)
    for ax in axes[1 + len(signals) :]:
        ax.axis("off")
    fig.suptitle(
        "Sink and P0-circuit signals along training (dotted: M15 onset per layer; dashed: "
        "loss convergence)",
        fontsize=11,
    )
    fig.tight_layout()
    return ctx.save_figure(fig, "dynamics")


def run(cfg: SinkDynamicsConfig, ctx: RunContext) -> Outcome:
    trained = train_text_lm(cfg.training_run(), ctx, "toy-gpt2")
    steps = trained.result.eval_steps
    metrics = {k: v.mean(0) for k, v in trained.result.metrics.items()}  # mean over seeds
    signals = layer_signals(metrics)
    onset = onsets(steps, signals)
    converged = convergence_step(steps, metrics["ce"].mean(-1), cfg.converged_fraction)
    null = float(sinks.uniform_bos_attention(cfg.seq_len))
    claims = _claims(cfg, signals, onset, converged, null)
    figure = _figure(steps, signals, metrics["ce"], onset, converged, null, ctx)
    summary = {
        "eval_steps": steps,
        "signals": signals,
        "onset_steps": onset,
        "loss_converged_step": converged,
        "ce": metrics["ce"],
        "uniform_null": null,
        "train_wall_time_s": trained.result.wall_time,
    }
    return Outcome(claims, [figure], list(cfg.seeds), summary)


EXPERIMENT = Experiment(
    name="sink-dynamics",
    title="P2's prediction on the toy: the sink and its P0 circuit form early in training",
    presets=PRESETS,
    run=run,
)
