"""E9 (Figs. 11-13): the 3-layer transformer (3xTF, spec B.3) layer by layer.

Per layer, on a fixed prompt (the first evaluation sequence, its first `prompt_len` tokens):
the attention map, the value norms ||W_O v|| and the residual norms ||Res|| at the block output,
as one figure. The claims are measured on the whole evaluation batch. The quick preset is the
3xTF run of `residual-peaks` and `optimizer-ablation` (d = N = 64, AdamW 3e-3, 3000 steps). In
our CPU runs a layer >= 1 becomes a sink layer with a small value of <s> (which layer depends on
the run); ||Res_<s>|| at the layer-0 output grows under Adam to several times the other tokens'
(3.6x at quick, the paper's peak is larger), is smaller at layer 1 (1.6x) and matches the
other tokens' at the last layer.
"""

import dataclasses

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from flax import nnx

from sinkjax import plotting

from .bb_common import (
    CI_RUN,
    BBRunConfig,
    TrainedBB,
    run_settings,
    task_learned_claims,
    train_bb,
)
from .claims import Claim, claim_above, claim_below, claim_true
from .registry import Experiment, Outcome, RunContext
from .residual_peaks import PRESETS as SWEEP_PRESETS


@dataclasses.dataclass(frozen=True)
class LayerwiseConfig(BBRunConfig):
    """A 3xTF run (`n_layers` = 3 by default) and the length of the prompt that is drawn."""

    n_layers: int = 3
    # Tokens of the first evaluation sequence shown in the per-layer figure.
    prompt_len: int = 48

    def __post_init__(self):
        super().__post_init__()
        if self.n_layers < 2:
            raise ValueError(
                f"n_layers must be at least 2 (layers >= 1 are probed), got {self.n_layers}"
            )
        if not 2 <= self.prompt_len <= self.seq_len:
            raise ValueError(
                f"prompt_len must lie in [2, seq_len = {self.seq_len}], got {self.prompt_len}"
            )


def _from(base: BBRunConfig, **changes) -> LayerwiseConfig:
    return LayerwiseConfig(**{**run_settings(base), "n_layers": 3, **changes})


PRESETS = {
    "ci": _from(CI_RUN, prompt_len=24),
    # The 3xTF quick run of residual-peaks (QUICK_RUN's d = N = 128 3xTF takes ~8 CPU minutes).
    "quick": _from(SWEEP_PRESETS["quick"]),
    "paper": LayerwiseConfig(steps=10_000, chunk_size=1000),
}


def layer_profiles(bb: TrainedBB) -> dict[str, np.ndarray]:
    """Per seed and layer, on the whole evaluation batch of the final models.

    Returns (S, L) arrays: `resid_ratio`, mean ||Res_<s>|| at the block output over the median
    ||Res|| of every other position (b, n >= 1); `value_ratio`, ||W_O v_<s>|| over the median
    ||W_O v|| of the other positions; and (S,) `embed_ratio`, the same residual ratio of the
    embedding (the stream entering layer 0); (S,) `resid0_growth`, ||Res_<s>|| at the layer-0
    output at the end over its value at the evaluation nearest 10% of training.
    """
    inputs = bb.eval_batch.inputs

    def ratio(norms):  # (B, N) -> (): position 0 against the median of positions n >= 1
        return norms[:, 0].mean() / jnp.median(norms[:, 1:])

    @jax.jit
    @jax.vmap
    def profile(params):
        _, trace = nnx.merge(bb.graphdef, params)(inputs, trace=True)
        resid = [ratio(jnp.linalg.norm(lt.resid_post, axis=-1)) for lt in trace.layers]
        value = [ratio(jnp.linalg.norm(lt.attn.value_out[:, :, 0], axis=-1)) for lt in trace.layers]
        return jnp.stack(resid), jnp.stack(value), ratio(jnp.linalg.norm(trace.embed, axis=-1))

    resid, value, embed = profile(bb.result.params)
    steps = bb.result.eval_steps
    at_10pct = int(np.argmin(np.abs(steps - 0.1 * bb.cfg.steps)))
    resid0 = bb.result.metrics["resid_norm_sink"][:, :, 0]  # (S, E)
    return {
        "resid0_growth": resid0[:, -1] / resid0[:, at_10pct],
        "resid_ratio": np.asarray(resid),
        "value_ratio": np.asarray(value),
        "embed_ratio": np.asarray(embed),
    }


def prompt_maps(bb: TrainedBB, prompt_len: int) -> dict[str, np.ndarray]:
    """Seed 0's final model on the fixed prompt (first evaluation sequence, `prompt_len` tokens).

    Returns `tokens` (P,), `attention` (L, P, P) weights of head 0, `value_norm` (L, P) ||W_O v||
    and `resid_norm` (L, P) ||Res|| at each block output.
    """
    tokens = bb.eval_batch.inputs[:1, :prompt_len]
    _, trace = nnx.merge(bb.graphdef, bb.seed_params(0))(tokens, trace=True)
    return {
        "tokens": np.asarray(tokens[0]),
        "attention": np.stack([np.asarray(lt.attn.weights[0, 0]) for lt in trace.layers]),
        "value_norm": np.stack(
            [np.linalg.norm(np.asarray(lt.attn.value_out[0, :, 0]), axis=-1) for lt in trace.layers]
        ),
        "resid_norm": np.stack(
            [np.linalg.norm(np.asarray(lt.resid_post[0]), axis=-1) for lt in trace.layers]
        ),
    }


def _figure(bb: TrainedBB, maps: dict[str, np.ndarray], ctx: RunContext) -> str:
    tokens = maps["tokens"]
    n_layers, n = maps["value_norm"].shape
    labels = plotting.token_labels(tokens.tolist(), bb.task.chars, bb.task.bos)
    triggers = np.flatnonzero(np.asarray(bb.eval_batch.trigger[0, :n]))
    colors = ["tab:red" if t == bb.task.bos else "tab:blue" for t in tokens]
    fig, axes = plt.subplots(
        3,
        n_layers,
        figsize=(6 * n_layers, 14),
        gridspec_kw={"height_ratios": [2, 1, 1]},
        layout="constrained",
    )
    for layer in range(n_layers):
        plotting.attention_heatmap(axes[0, layer], maps["attention"][layer], labels, triggers)
        axes[0, layer].set_title(f"layer {layer}: attention (trigger rows in red)", fontsize=10)
        for row, key, name in ((1, "value_norm", "||W_O v||"), (2, "resid_norm", "||Res||")):
            ax = axes[row, layer]
            ax.bar(range(n), maps[key][layer], color=colors)
            ax.set_xticks(range(n), labels, fontsize=5, rotation=90)
            ax.set_title(f"layer {layer}: {name} per position (<s> in red)", fontsize=10)
        if layer > 0:
            axes[2, layer].sharey(axes[2, 0])
    axes[2, 0].set_ylim(0, maps["resid_norm"].max() * 1.05)
    fig.suptitle("3xTF on a fixed prompt (||Res|| at each block's output)", fontsize=11)
    return ctx.save_figure(fig, "layerwise_maps")


def sink_layers(bb: TrainedBB) -> np.ndarray:
    """(S,) per seed, the layer >= 1 whose non-trigger queries n >= 1 attend most to <s>."""
    return 1 + np.argmax(bb.final_metric("attn_sink_later")[:, 1:, 0], axis=1)


def _claims(bb: TrainedBB, profiles: dict[str, np.ndarray], sink: np.ndarray) -> list[Claim]:
    seeds = np.arange(len(sink))
    attn = bb.final_metric("attn_sink_later")[seeds, sink, 0]  # (S,)
    resid, value = profiles["resid_ratio"], profiles["value_ratio"]
    growth = profiles["resid0_growth"]
    last = resid[:, -1]
    return [
        *task_learned_claims(bb, "3xtf", "E9: 3xTF"),
        claim_above(
            "sink-layer-attends-to-bos",
            f"E9: a layer >= 1 (layer {sink.tolist()} per seed) is dormant on <s>: its non-trigger "
            "queries n >= 1 attend to <s> (final Attn_<s>, weakest seed)",
            float(attn.min()),
            0.6,
        ),
        claim_below(
            "bos-value-small-in-sink-layer",
            "E9: in that sink layer ||W_O v_<s>|| is small: over the median other position's "
            "(worst seed)",
            float(value[seeds, sink].max()),
            0.5,
        ),
        claim_above(
            "residual-above-tokens-layer0",
            "E9: <s> has a residual peak at the layer-0 output: ||Res_<s>|| over the median "
            "other token's (weakest seed)",
            float(resid[:, 0].min()),
            2.0,
        ),
        claim_above(
            "residual-layer0-grows",
            "E8/E9: ||Res_<s>|| at the layer-0 output keeps growing under Adam: final over its "
            "value at 10% of training (weakest seed)",
            float(growth.min()),
            1.1,
        ),
        claim_true(
            "residual-matches-last-layer",
            "E9: at the last layer's output ||Res_<s>|| matches the other tokens' (ratio to the "
            "median other token's within [0.5, 2], every seed)",
            last.tolist(),
            "in [0.5, 2]",
            bool(np.all((last >= 0.5) & (last <= 2.0))),
            "[0.5, 2]",
        ),
    ]


def run(cfg: LayerwiseConfig, ctx: RunContext) -> Outcome:
    bb = train_bb(cfg, ctx, "3xtf")
    profiles = layer_profiles(bb)
    sink = sink_layers(bb)
    maps = prompt_maps(bb, cfg.prompt_len)
    summary = {
        **profiles,
        "sink_layer": sink,
        "attn_sink_final": bb.final_metric("attn_sink")[:, :, 0],
        "attn_sink_later_final": bb.final_metric("attn_sink_later")[:, :, 0],
        "value_norm_sink_final": bb.final_metric("value_norm_sink")[:, :, 0],
        "resid_norm_sink_final": bb.final_metric("resid_norm_sink"),
        "eval_steps": bb.result.eval_steps,
        "resid_norm_sink": bb.result.metrics["resid_norm_sink"],
        "prompt_tokens": maps["tokens"],
        "prompt_resid_norm": maps["resid_norm"],
        "prompt_value_norm": maps["value_norm"],
        "train_wall_time_s": bb.result.wall_time,
    }
    return Outcome(_claims(bb, profiles, sink), [_figure(bb, maps, ctx)], list(cfg.seeds), summary)


EXPERIMENT = Experiment(
    name="layerwise-maps",
    title="3xTF layer by layer: attention maps, value norms, residual norms of <s> (E9, "
    "Figs. 11-13)",
    presets=PRESETS,
    run=run,
)
