"""E11 (Fig. 16): trained without <s>, where do the attention sink and the small values go?

The 1-layer model is trained on BB sequences that start directly with x[0] ~ pi0. On the fixed
evaluation batch we find, for every non-trigger query n >= 1, the key it attends to most, and
report the positions and token types of those keys, and the value norms ||W_O v|| there. In our
runs the sink does not move to the first position: it moves to the non-informative tokens
(the triggers ' ', 'e', 't' and the newline), which also carry the smallest values.
"""

import dataclasses

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from flax import nnx

from sinkjax import plotting

from .bb_common import CI_RUN, QUICK_RUN, BBRunConfig, TrainedBB, task_learned_claims, train_bb
from .claims import claim_above, claim_below
from .registry import Experiment, Outcome, RunContext

# How many of the most-attended key token types count as the new sink.
N_SINK_TYPES = 4

PRESETS = {
    "ci": dataclasses.replace(CI_RUN, with_bos=False),
    "quick": dataclasses.replace(QUICK_RUN, with_bos=False),
    "paper": BBRunConfig(steps=10_000, chunk_size=1000, with_bos=False),
}


def sink_statistics(bb: TrainedBB, seed_index: int = 0) -> dict[str, np.ndarray]:
    """Where non-trigger queries n >= 1 put their largest attention weight, and value norms.

    Returns `argmax_position` (N,) counts of the most-attended key position, `argmax_type` (V,)
    counts of its token type, `max_weight` () the mean largest weight, `value_norm_position`
    (N,) mean ||W_O v|| per key position and `value_norm_type` (V,) per token type (NaN if absent).
    """
    batch = bb.eval_batch
    vocab = bb.task.vocab_size

    @jax.jit
    def stats(params):
        _, trace = nnx.merge(bb.graphdef, params)(batch.inputs, trace=True)
        attn = trace.layers[0].attn
        weights = attn.weights[:, 0]  # (B, N, N)
        queries = (~batch.trigger).at[:, 0].set(False)  # (B, N)
        top = jnp.argmax(weights, axis=-1)  # (B, N) most-attended key position
        top_type = jnp.take_along_axis(batch.inputs, top, axis=1)
        n = batch.inputs.shape[1]
        by_position = jnp.sum(jax.nn.one_hot(top, n) * queries[..., None], axis=(0, 1))
        by_type = jnp.sum(jax.nn.one_hot(top_type, vocab) * queries[..., None], axis=(0, 1))
        max_weight = jnp.sum(jnp.max(weights, -1) * queries) / jnp.sum(queries)
        norms = jnp.linalg.norm(attn.value_out[:, :, 0], axis=-1)  # (B, N)
        one_hot = jax.nn.one_hot(batch.inputs, vocab)
        counts = one_hot.sum((0, 1))
        type_norm = jnp.where(counts > 0, jnp.einsum("bn,bnv->v", norms, one_hot) / counts, jnp.nan)
        return by_position, by_type, max_weight, norms.mean(0), type_norm

    keys = (
        "argmax_position",
        "argmax_type",
        "max_weight",
        "value_norm_position",
        "value_norm_type",
    )
    return {k: np.asarray(v) for k, v in zip(keys, stats(bb.seed_params(seed_index)), strict=True)}


def _figures(bb: TrainedBB, stats: dict[str, np.ndarray], ctx: RunContext) -> list[str]:
    n_show = min(24, bb.cfg.seq_len)
    position_share = stats["argmax_position"] / stats["argmax_position"].sum()
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
    axes[0].bar(range(n_show), position_share[:n_show])
    axes[0].set_xlabel("key position")
    axes[0].set_title("share of non-trigger queries whose top key is here", fontsize=10)
    axes[1].bar(range(n_show), stats["value_norm_position"][:n_show], color="tab:orange")
    axes[1].set_xlabel("key position")
    axes[1].set_title("mean ||W_O v|| per position", fontsize=10)
    type_share = stats["argmax_type"] / stats["argmax_type"].sum()
    top = np.argsort(type_share)[::-1][:10]
    labels = plotting.token_labels(top.tolist(), bb.task.chars, bb.task.bos)
    axes[2].bar(labels, type_share[top], color="tab:green")
    for i, t in enumerate(top):
        axes[2].text(
            i,
            type_share[t],
            f"{stats['value_norm_type'][t]:.1f}",
            ha="center",
            va="bottom",
            fontsize=7,
        )
    axes[2].set_title("token types of the top keys (label: their mean ||W_O v||)", fontsize=10)
    return [ctx.save_figure(fig, "sink_without_bos")]


def run(cfg: BBRunConfig, ctx: RunContext) -> Outcome:
    if cfg.with_bos:
        raise ValueError("no-bos trains without <s>: set with_bos=False")
    bb = train_bb(cfg, ctx, "no-bos")
    stats = [sink_statistics(bb, i) for i in range(cfg.n_seeds)]
    concentration, value_ratio, share_first, sink_types = [], [], [], []
    for s in stats:
        type_share = s["argmax_type"] / s["argmax_type"].sum()
        top = np.argsort(type_share)[::-1][:N_SINK_TYPES]
        sink_types.append([bb.task.chars[t] if t < bb.task.bos else "<d>" for t in top])
        concentration.append(type_share[top].sum())
        sink_value = np.average(s["value_norm_type"][top], weights=type_share[top])
        value_ratio.append(sink_value / np.nanmedian(s["value_norm_type"]))
        share_first.append(s["argmax_position"][0] / s["argmax_position"].sum())
    claims = [
        *task_learned_claims(bb, "no-bos", "The model trained without <s>"),
        claim_above(
            "sink-on-few-token-types",
            f"E11: a sink re-forms on a few token types: share of non-trigger queries n >= 1 whose "
            f"top key is one of the {N_SINK_TYPES} most chosen types (weakest seed)",
            float(min(concentration)),
            0.5,
        ),
        claim_below(
            "sink-keys-small-values",
            "E11: those sink keys carry small values: their mean ||W_O v|| over the median over "
            "token types (worst seed)",
            float(max(value_ratio)),
            0.8,
        ),
    ]
    summary = {
        "sink_token_types": sink_types,
        "sink_type_share": concentration,
        "sink_value_ratio_to_median_type": value_ratio,
        "share_top_key_at_position0": share_first,
        "max_weight_mean": [float(s["max_weight"]) for s in stats],
        "argmax_position_counts": stats[0]["argmax_position"],
        "argmax_type_counts": stats[0]["argmax_type"],
        "value_norm_position": stats[0]["value_norm_position"],
        "train_wall_time_s": bb.result.wall_time,
    }
    return Outcome(claims, _figures(bb, stats[0], ctx), list(cfg.seeds), summary)


EXPERIMENT = Experiment(
    name="no-bos",
    title="1-layer BB trained without <s>: where the sink and the small values move (E11, Fig. 16)",
    presets=PRESETS,
    run=run,
)
