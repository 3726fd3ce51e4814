"""E1, E2, E4: the active-dormant head, the attention sink and the value drain of the 1-layer model.

Trains the 1-layer, 1-head transformer on Bigram-Backcopy and checks, on the fixed evaluation
batch, that (E4) both excess risks vanish, (E1) non-trigger tokens attend to <s>, (E4) the sink
logit keeps growing after the attention saturates, and (E2) the value of <s> drains.
"""

import jax
import matplotlib.pyplot as plt
import numpy as np
from flax import nnx

from sinkjax import plotting, probes

from .bb_common import CI_RUN, QUICK_RUN, BBRunConfig, TrainedBB, final_trace, train_bb
from .claims import claim_above, claim_below
from .registry import Experiment, Outcome, RunContext

PRESETS = {
    "ci": CI_RUN,
    "quick": QUICK_RUN,
    "paper": BBRunConfig(steps=100_000, chunk_size=1000, n_log_evals=60, n_linear_evals=50),
}


def _figures(run, ctx: RunContext) -> list[str]:
    steps = run.result.eval_steps
    m = {k: v[0] for k, v in run.result.metrics.items()}  # seed 0
    _, trace = final_trace(run)
    tokens = np.asarray(run.eval_batch.inputs[0])
    attn = trace.layers[0].attn
    n_show = min(40, len(tokens))
    labels = plotting.token_labels(tokens[:n_show], run.task.chars, run.task.bos)
    triggers = np.flatnonzero(np.asarray(run.eval_batch.trigger[0, :n_show]))

    fig, axes = plt.subplots(1, 2, figsize=(14, 6.5), gridspec_kw={"width_ratios": [3, 2]})
    image = plotting.attention_heatmap(axes[0], np.asarray(attn.weights[0, 0]), labels, triggers)
    fig.colorbar(image, ax=axes[0], fraction=0.04)
    axes[0].set_title(
        "E1: attention (trigger rows in red attend to n-1; others to <s>)", fontsize=10
    )
    value_norms = np.linalg.norm(np.asarray(attn.value_out[0, :n_show, 0]), axis=-1)
    colors = ["tab:red" if t == run.task.bos else "tab:blue" for t in tokens[:n_show]]
    axes[1].barh(range(n_show), value_norms, color=colors)
    axes[1].set_yticks(range(n_show), labels, fontsize=6)
    axes[1].invert_yaxis()
    axes[1].set_xlabel("||W_O v||")
    axes[1].set_title("E2: value-state drain (<s> in red)", fontsize=10)
    figures = [ctx.save_figure(fig, "attention_and_values")]

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    logit = m["sink_logit"][:, 0, 0]
    plotting.curves_panel(
        axes[0],
        steps,
        {
            "backcopy excess / max": plotting.rescaled(m["backcopy_excess"]),
            "bigram excess / max": plotting.rescaled(m["bigram_excess"]),
            "Attn_<s>": m["attn_sink"][:, 0, 0],
            "logit_<s> / max": plotting.rescaled(logit),
            "||W_O v_<s>|| / max": plotting.rescaled(m["value_norm_sink"][:, 0, 0]),
        },
        title="E4: dynamics (rescaled as in Fig. 3b)",
    )
    plotting.curves_panel(
        axes[1],
        steps,
        {
            "backcopy excess": m["backcopy_excess"],
            "bigram excess": m["bigram_excess"],
            "logit_<s>": logit,
            "||W_O v_<s>||": m["value_norm_sink"][:, 0, 0],
        },
        bands={"logit_<s>": (m["sink_logit_q10"][:, 0, 0], m["sink_logit_q90"][:, 0, 0])},
        title="raw values (logit band: 10-90% over token types)",
    )
    axes[1].set_yscale("symlog", linthresh=0.1)
    figures.append(ctx.save_figure(fig, "dynamics"))
    return figures


def final_head_probes(bb: TrainedBB) -> tuple[np.ndarray, np.ndarray]:
    """Per seed, on the whole evaluation batch at the end of training: the mean attention of
    trigger queries on n-1, (S,), and the mean ||W_O v|| of each token type, (S, V)."""
    batch = bb.eval_batch

    @jax.jit
    @jax.vmap
    def probe(params):
        _, trace = nnx.merge(bb.graphdef, params)(batch.inputs, trace=True)
        attn = trace.layers[0].attn
        return (
            probes.attention_to_previous(attn.weights, batch.trigger)[0],
            probes.value_norms_by_type(attn, batch.inputs, bb.task.vocab_size)[0],
        )

    to_previous, value_norms = probe(bb.result.params)
    return np.asarray(to_previous), np.asarray(value_norms)


def run(cfg: BBRunConfig, ctx: RunContext) -> Outcome:
    bb = train_bb(cfg, ctx, "bb-dynamics")
    to_previous, type_value_norms = final_head_probes(bb)
    sink_value = type_value_norms[:, bb.task.bos]
    other_values = np.delete(type_value_norms, bb.task.bos, axis=1)
    drain_vs_tokens = sink_value / np.nanmin(other_values, axis=1)
    metrics, steps = bb.result.metrics, bb.result.eval_steps
    value_norm = metrics["value_norm_sink"][:, :, 0, 0]  # (S, E)
    logit = metrics["sink_logit"][:, :, 0, 0]
    at_10pct = int(np.argmin(np.abs(steps - 0.1 * cfg.steps)))
    drain = value_norm[:, -1] / value_norm.max(axis=1)
    logit_gain = logit[:, -1] - logit[:, at_10pct]
    worst = {
        "backcopy": float(bb.final_metric("backcopy_excess").max()),
        "bigram": float(bb.final_metric("bigram_excess").max()),
        "attn": float(bb.final_metric("attn_sink")[:, 0, 0].min()),
    }
    claims = [
        claim_below(
            "backcopy-excess",
            "E4: the backcopy excess risk vanishes (final, worst seed)",
            worst["backcopy"],
            0.05,
        ),
        claim_below(
            "bigram-excess",
            "E4: the bigram excess risk vanishes (final, code-style oracle, worst seed)",
            worst["bigram"],
            0.05,
        ),
        claim_above(
            "attention-sink",
            "E1: non-trigger queries put most attention on <s> (final Attn_<s>, worst seed)",
            worst["attn"],
            0.6,
        ),
        claim_above(
            "active-head",
            "E1: trigger queries attend to the previous token (final mean A[n, n-1], worst seed)",
            float(to_previous.min()),
            0.8,
        ),
        claim_below(
            "value-drain-vs-tokens",
            "E2: ||W_O v_<s>|| is smaller than every other token type's mean value norm "
            "(ratio to the smallest, worst seed)",
            float(drain_vs_tokens.max()),
            1.0,
        ),
        claim_below(
            "value-drain",
            "E2/E4: ||W_O v_<s>|| ends below half its maximum over training (worst seed ratio)",
            float(drain.max()),
            0.5,
        ),
        claim_above(
            "sink-logit-growth",
            f"E4: logit_<s> keeps growing: final minus value at step {int(steps[at_10pct])} "
            "(10% of training), worst seed",
            float(logit_gain.min()),
            0.0,
        ),
    ]
    summary = {
        "eval_steps": steps,
        "final": {
            k: bb.final_metric(k)
            for k in (
                "backcopy_excess",
                "bigram_excess",
                "bigram_excess_corrected",
                "attn_sink",
                "sink_logit",
                "value_norm_sink",
            )
        },
        "value_norm_sink_max": value_norm.max(axis=1),
        "value_norm_by_type_final": type_value_norms,
        "value_drain_ratio_to_median_token": sink_value / np.nanmedian(other_values, axis=1),
        "sink_logit_at_10pct": logit[:, at_10pct],
        "train_wall_time_s": bb.result.wall_time,
        "resumed_from": bb.result.resumed_from,
    }
    return Outcome(claims, _figures(bb, ctx), list(cfg.seeds), summary)


EXPERIMENT = Experiment(
    name="bb-dynamics",
    title="1-layer BB: active-dormant head, attention sink, value drain, dynamics (E1, E2, E4)",
    presets=PRESETS,
    run=run,
)
