"""P2 (Peng et al.): when does the first-token sink and its P0 circuit form along training?

P2 proposes the P0 sink circuit as a pre-training convergence signal: in its trace the circuit
emerges early and, over training, concentrates into the first two layers. We test that on the
GPT-2-style toy of `gpt2-circuit` (the same run at every preset): at each evaluation
checkpoint `text_lm_metrics` has recorded, per layer, the sink rate (M3), P1's BOS attention
(M4, also over the spec's layer band), the massive-activation ratio rho^l (M11), Δ-dominance
(M6), and the P0 signals of M12 (attention-output norm ratio, linear-probe AUC). For each we
find the onset step (M15: first checkpoint at half of the min-max normalised final value) and
set it against the step where the loss has converged.

The claims are P2's predictions, read on the spec's band as in `gpt2-circuit`: the sink forms,
and its onset comes before the loss converges. The strongest-sink layer and the position-0
norm ratio of the first two blocks are observations (the spec gives no number for them).
"""

import jax
import matplotlib.pyplot as plt
import numpy as np

from experiments.framework.claims import AllOf, AtMost, ClaimSpec, Observation, check_specs, judge
from experiments.framework.experiment import Experiment, Outcome, RunContext
from experiments.framework.planning import PlannedRun
from experiments.sinks.text_common import (
    CI_TEXT_RUN,
    QUICK_TEXT_RUN,
    SINK_READING,
    SINK_RULE,
    SINK_SOURCE,
    SPEC,
    TextRunConfig,
    text_planned_run,
    train_text_lm,
)
from sinkjax import plotting
from sinkjax.sinks import metrics as sinks
from sinkjax.text.domains import TEXT_DOMAINS

# The label of the toy's run, in `run` and in its plan.
RUN_LABEL = "toy-gpt2"
PRESETS = {"ci": CI_TEXT_RUN, "quick": QUICK_TEXT_RUN, "paper": TextRunConfig()}

# The loss has converged at the first checkpoint where its excess over the final value is at
# most this fraction of the total drop (mean cross-entropy over the domains).
CONVERGED_FRACTION = 0.1
# P2's "first two layers" (the rho^l observation).
EARLY_LAYERS = 2
CLAIMS = check_specs(
    [
        ClaimSpec(
            "sink-forms",
            f"The toy sinks on its first token at the end of training; {SINK_READING}, at the "
            "last checkpoint on the held-out evaluation batch, every seed",
            f"{SPEC} §2(b) training trace, §5 (toy), {SINK_SOURCE}; paper P2 (v1) training trace",
            SINK_RULE,
        ),
        ClaimSpec(
            "sink-early",
            "P2: the circuit 'emerges early' and is proposed as a pre-training-convergence "
            "signal: the sink forms (as in sink-forms) and the M15 half-way onset of the band's "
            "BOS attention comes no later than the loss convergence step (first checkpoint "
            f"within {CONVERGED_FRACTION:g} of the total drop of the mean held-out "
            "cross-entropy from its final value), every seed",
            f"{SPEC} §2(b) training trace, M15, {SINK_SOURCE}; paper P2 (v1) training trace",
            AllOf({"band_bos_attention": SINK_RULE, "onset_minus_convergence_step": AtMost(0)}),
        ),
    ]
)


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


def measure(steps: np.ndarray, metrics: dict[str, np.ndarray]) -> dict:
    """Claim id -> measured value, per seed, from `text_lm_metrics` histories (S, E, ...)."""
    band = metrics["bos_attention_band"]  # (S, E)
    band_onset = np.asarray(jax.vmap(sinks.onset, in_axes=(None, 0))(steps, band).half_step)
    converged = np.array(
        [convergence_step(steps, ce.mean(-1), CONVERGED_FRACTION) for ce in metrics["ce"]]
    )
    return {
        "sink-forms": band[:, -1],
        "sink-early": {
            "band_bos_attention": band[:, -1],
            "onset_minus_convergence_step": band_onset - converged,
        },
    }


def observations(signals: dict[str, np.ndarray], null: float) -> list[Observation]:
    """The strongest-sink layer and the early blocks' rho^l, from the seed-mean curves."""
    bos = signals["BOS attention (M4)"][-1]  # (L,)
    strongest = int(np.argmax(bos))
    return [
        Observation(
            "strongest-sink-layer",
            "the layer with the largest final BOS attention (M4, mean over heads), its value "
            "and its ratio to the uniform null at the training length",
            {
                "layer": strongest,
                "bos_attention": bos[strongest],
                "over_null": bos[strongest] / null,
            },
        ),
        Observation(
            "massive-p0-early",
            f"largest final rho^l = ||h_0|| / mean_t>0 ||h_t|| over the first {EARLY_LAYERS} "
            "blocks (P2's high-norm position-0 state; the spec gives no number for it)",
            signals["rho (M11)"][-1, :EARLY_LAYERS].max(),
        ),
    ]


def _figure(steps, signals, metrics, onset, converged, null, ctx: RunContext) -> str:
    ce = metrics["ce"]
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
    axes[1].plot(steps, metrics["bos_attention_band"], "k--", lw=1.5, label="band (M4)")
    axes[1].axhline(null, color="black", lw=0.8, label="uniform null")
    axes[1].axhline(SINK_RULE.bound, color="red", lw=0.8, label="sink threshold")
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


def run(cfg: TextRunConfig, ctx: RunContext) -> Outcome:
    trained = train_text_lm(cfg.training_run(), ctx, RUN_LABEL)
    steps = trained.result.eval_steps
    per_seed = {k: np.asarray(v) for k, v in trained.result.metrics.items()}
    metrics = {k: v.mean(0) for k, v in per_seed.items()}  # mean over seeds
    signals = layer_signals(metrics)
    onset = onsets(steps, signals)
    converged = convergence_step(steps, metrics["ce"].mean(-1), CONVERGED_FRACTION)
    null = float(sinks.uniform_bos_attention(cfg.seq_len))
    measured = measure(steps, per_seed)
    figure = _figure(steps, signals, metrics, onset, converged, null, ctx)
    summary = {
        "eval_steps": steps,
        "signals": signals,
        "onset_steps": onset,
        "loss_converged_step": converged,
        "band_bos_attention": metrics["bos_attention_band"],
        "ce": metrics["ce"],
        "uniform_null": null,
        "train_wall_time_s": trained.result.wall_time,
    }
    claims = judge(CLAIMS, measured)
    return Outcome(claims, [figure], list(cfg.seeds), summary, observations(signals, null))


def training_plan(cfg: TextRunConfig) -> tuple[PlannedRun, ...]:
    """The one run of `run`: the toy of `cfg` (gpt2-circuit's at every preset)."""
    return (text_planned_run(cfg.training_run(), RUN_LABEL),)


EXPERIMENT = Experiment(
    name="sink-dynamics",
    title="P2's prediction on the toy: the sink and its P0 circuit form early in training",
    presets=PRESETS,
    run=run,
    claims=CLAIMS,
    training_plan=training_plan,
)
