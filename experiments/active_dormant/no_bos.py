"""E11 (Fig. 16): trained without <s>, where do the attention sink and the small values go?

The 1-layer model is trained on BB sequences that start directly with x[0] ~ pi0. The paper:
"sinks and small values move to other early or non-informative tokens". On the fixed
evaluation batch, for the dormant (non-trigger) queries, we measure how much of their attention
lands on early keys (the first `EARLY_POSITIONS` positions) or non-informative keys (the
triggers, whose token is never the one copied: spec A.2), and whether the keys they attend to
carry small values. The most-attended key positions and token types are reported beside.
"""

import dataclasses

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from flax import nnx

from experiments.active_dormant.bb_common import (
    CI_RUN,
    QUICK_RUN,
    BBRunConfig,
    TrainedBB,
    bb_planned_run,
    train_bb,
)
from experiments.framework.claims import Above, Below, ClaimSpec, Observation, check_specs, judge
from experiments.framework.experiment import Experiment, Outcome, RunContext
from experiments.framework.planning import PlannedRun
from sinkjax import plotting

# The label of the 1-layer run without <s>, in `run` and in its plan.
RUN_LABEL = "no-bos"
# "Early" tokens read as the first 4 positions (under 2% of the paper's N = 256).
EARLY_POSITIONS = 4
# How many of the most-attended key token types are reported (an observation).
N_SINK_TYPES = 4

PRESETS = {
    "ci": dataclasses.replace(CI_RUN, with_bos=False),
    "quick": dataclasses.replace(QUICK_RUN, with_bos=False),
    "paper": BBRunConfig(steps=10_000, chunk_size=1000, with_bos=False),
}

AD = "active_dormant.md"
CLAIMS = check_specs(
    [
        ClaimSpec(
            "sink-moves-to-early-or-non-informative",
            "E11: 'sinks ... move to other early or non-informative tokens': of the attention of "
            f"the dormant (non-trigger) queries n >= {EARLY_POSITIONS}, more than half ('a "
            f"sink') lands on early keys (positions < {EARLY_POSITIONS}) or non-informative "
            "keys (triggers, never the copied token), every seed",
            f"{AD} E11 and A.2 (a copied token is never a trigger); paper Fig. 16",
            Above(0.5),
        ),
        ClaimSpec(
            "small-values-move-with-the-sink",
            "E11: 'small values move' with the sinks: the mean ||W_O v|| that the dormant "
            f"queries n >= {EARLY_POSITIONS} attend to (attention-weighted) below half ('small') "
            "of what uniform attention over the same keys would give, every seed",
            f"{AD} E11 and C (value norms ||W_O v||); paper Fig. 16",
            Below(0.5),
        ),
    ]
)


def attention_statistics(
    weights: jax.Array, norms: jax.Array, inputs: jax.Array, trigger: jax.Array, vocab: int
) -> dict[str, jax.Array]:
    """Where the dormant queries put their attention, and the value norms there.

    Args:
        weights: (B, N, N) attention weights of the head (rows: queries, causal).
        norms: (B, N) ||W_O v|| of every key.
        inputs: (B, N) token ids; trigger: (B, N) whether each input is a trigger.
        vocab: vocabulary size V.

    Dormant queries are the non-trigger positions n >= `EARLY_POSITIONS`. Returns scalars
    `sink_share` (their mean attention on early or trigger keys) and `value_ratio` (their
    attention-weighted mean ||W_O v|| over the one uniform attention on their keys would give);
    `argmax_position` (N,) and `argmax_type` (V,) counts of their most-attended key's position
    and token type; `value_norm_position` (N,) mean ||W_O v|| per key position and
    `value_norm_type` (V,) per token type (NaN if absent).
    """
    n = inputs.shape[1]
    early = jnp.arange(n) < EARLY_POSITIONS
    queries = ~trigger & ~early  # (B, N)
    non_informative = (trigger | early).astype(weights.dtype)  # (B, N) keys
    sink_mass = jnp.einsum("bnj,bj->bn", weights, non_informative)
    retrieved = jnp.einsum("bnj,bj->bn", weights, norms)
    uniform = jnp.cumsum(norms, axis=1) / jnp.arange(1, n + 1)
    top = jnp.argmax(weights, axis=-1)  # (B, N) most-attended key position
    top_type = jnp.take_along_axis(inputs, top, axis=1)
    one_hot = jax.nn.one_hot(inputs, vocab)
    counts = one_hot.sum((0, 1))
    return {
        "sink_share": jnp.sum(sink_mass * queries) / jnp.sum(queries),
        "value_ratio": jnp.sum(retrieved * queries) / jnp.sum(uniform * queries),
        "argmax_position": jnp.sum(jax.nn.one_hot(top, n) * queries[..., None], (0, 1)),
        "argmax_type": jnp.sum(jax.nn.one_hot(top_type, vocab) * queries[..., None], (0, 1)),
        "value_norm_position": norms.mean(0),
        "value_norm_type": jnp.where(
            counts > 0, jnp.einsum("bn,bnv->v", norms, one_hot) / counts, jnp.nan
        ),
    }


def sink_statistics(bb: TrainedBB, seed_index: int = 0) -> dict[str, np.ndarray]:
    """`attention_statistics` of one seed's final model on the evaluation batch."""
    batch = bb.eval_batch

    @jax.jit
    def stats(params):
        _, trace = nnx.merge(bb.graphdef, params)(batch.inputs, trace=True)
        attn = trace.layers[0].attn
        norms = jnp.linalg.norm(attn.value_out[:, :, 0], axis=-1)  # (B, N)
        return attention_statistics(
            attn.weights[:, 0], norms, batch.inputs, batch.trigger, bb.task.vocab_size
        )

    return {k: np.asarray(v) for k, v in stats(bb.seed_params(seed_index)).items()}


def _figures(bb: TrainedBB, stats: dict[str, np.ndarray], ctx: RunContext) -> list[str]:
    n_show = min(24, bb.cfg.seq_len)
    position_share = stats["argmax_position"] / stats["argmax_position"].sum()
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
    axes[0].bar(range(n_show), position_share[:n_show])
    axes[0].set_xlabel("key position")
    axes[0].set_title("share of dormant queries whose top key is here", fontsize=10)
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


def _observations(bb: TrainedBB, stats: list[dict[str, np.ndarray]]) -> list[Observation]:
    """The most-attended token types and position 0's share of top keys, per seed; whether the
    model learned the task without <s> (E11 states no prediction about it)."""
    top_types, share_first = {}, []
    for seed, s in zip(bb.cfg.seeds, stats, strict=True):
        type_share = s["argmax_type"] / s["argmax_type"].sum()
        top = np.argsort(type_share)[::-1][:N_SINK_TYPES].tolist()
        labels = plotting.token_labels(top, bb.task.chars, bb.task.bos)
        top_types[f"seed {seed}"] = dict(zip(labels, type_share[top], strict=True))
        share_first.append(s["argmax_position"][0] / s["argmax_position"].sum())
    return [
        Observation(
            "top-key-token-types",
            f"the {N_SINK_TYPES} token types most often the dormant queries' top key, with "
            "their share of those queries, per seed",
            top_types,
        ),
        Observation(
            "top-key-at-position-0",
            "share of the dormant queries whose top key is position 0, per seed",
            share_first,
        ),
        *(
            Observation(
                f"final-{kind}-excess",
                f"final {kind} excess risk (nats) of the model trained without <s>, per seed",
                bb.final_metric(f"{kind}_excess"),
            )
            for kind in ("backcopy", "bigram")
        ),
    ]


def run(cfg: BBRunConfig, ctx: RunContext) -> Outcome:
    if cfg.with_bos:
        raise ValueError("no-bos trains without <s>: set with_bos=False")
    bb = train_bb(cfg, ctx, RUN_LABEL)
    stats = [sink_statistics(bb, i) for i in range(cfg.n_seeds)]
    measured = {
        "sink-moves-to-early-or-non-informative": [float(s["sink_share"]) for s in stats],
        "small-values-move-with-the-sink": [float(s["value_ratio"]) for s in stats],
    }
    summary = {
        "argmax_position_counts": stats[0]["argmax_position"],
        "argmax_type_counts": stats[0]["argmax_type"],
        "value_norm_position": stats[0]["value_norm_position"],
        "value_norm_type": stats[0]["value_norm_type"],
        "train_wall_time_s": bb.result.wall_time,
    }
    return Outcome(
        judge(CLAIMS, measured),
        _figures(bb, stats[0], ctx),
        list(cfg.seeds),
        summary,
        _observations(bb, stats),
    )


def training_plan(cfg: BBRunConfig) -> tuple[PlannedRun, ...]:
    """The one run of `run`: the 1-layer model of `cfg`, trained without <s>."""
    return (bb_planned_run(cfg, RUN_LABEL),)


EXPERIMENT = Experiment(
    name="no-bos",
    title="1-layer BB trained without <s>: where the sink and the small values move (E11, Fig. 16)",
    presets=PRESETS,
    run=run,
    claims=CLAIMS,
    training_plan=training_plan,
)
