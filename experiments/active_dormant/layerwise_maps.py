"""E9 (Figs. 11-13): the 3-layer transformer (3xTF, spec B.3) layer by layer.

Per layer, on a fixed prompt (the first evaluation sequence, its first `prompt_len` tokens):
the attention map, the value norms ||W_O v|| and the residual norms ||Res|| at the block output,
as one figure. The quick preset is the 3xTF run of `residual-peaks` and `optimizer-ablation`
(d = N = 64, AdamW 3e-3, 3000 steps).

The claims are E9's words, measured on the whole evaluation batch: <s> has a huge residual norm
at the outputs of layers 0 and 1 and matches the other tokens at the last layer's. What E9 does
not state (which layer >= 1 sinks, how small its value of <s> is, whether the task is learned,
how ||Res_<s>|| grows) is recorded as observations.
"""

import dataclasses

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from flax import nnx

from experiments.active_dormant.bb_common import (
    CI_RUN,
    BBRunConfig,
    TrainedBB,
    bb_planned_run,
    run_settings,
    task_learned_measured,
    train_bb,
)
from experiments.active_dormant.residual_peaks import PRESETS as SWEEP_PRESETS
from experiments.framework.claims import (
    AllOf,
    AtLeast,
    Between,
    ClaimSpec,
    Observation,
    check_specs,
    judge,
)
from experiments.framework.experiment import Experiment, Outcome, RunContext
from experiments.framework.planning import PlannedRun
from sinkjax import plotting


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


# The label of the 3xTF run, in `run` and in its plan.
RUN_LABEL = "3xtf"
# E9's "matches the other tokens" read as within a factor 2 either way; its "huge residual norm"
# as at least 3x ("several times") the other tokens'. "The other tokens" are the median over
# every sequence and position n >= 1.
MATCH_FACTOR = 2.0
HUGE_FACTOR = 3.0
AD = "active_dormant.md"
CLAIMS = check_specs(
    [
        ClaimSpec(
            "residual-huge-layers-0-1",
            "E9: '<s> has a huge residual norm at layers 0-1': at the outputs of layers 0 and 1, "
            "the mean ||Res_<s>|| over the median ||Res|| of the other positions at least "
            f"{HUGE_FACTOR:g} ('huge' read as at least {HUGE_FACTOR:g}x, several times the "
            "other tokens'), every seed",
            f"{AD} E9 and C (||Res_<s>|| at the block output); paper Figs. 11-13",
            AllOf({f"layer {layer}": AtLeast(HUGE_FACTOR) for layer in (0, 1)}),
        ),
        ClaimSpec(
            "residual-matches-last-layer",
            "E9: <s> 'matches the other tokens at the last layer': at the last layer's output, "
            "the mean ||Res_<s>|| over the median ||Res|| of the other positions in "
            f"[1/{MATCH_FACTOR:g}, {MATCH_FACTOR:g}] ('matches' read as within a factor "
            f"{MATCH_FACTOR:g} either way), every seed",
            f"{AD} E9 and C (||Res_<s>|| at the block output); paper Figs. 11-13",
            Between(1 / MATCH_FACTOR, MATCH_FACTOR),
        ),
    ]
)

PRESETS = {
    "ci": _from(CI_RUN, prompt_len=24),
    # The 3xTF quick run of residual-peaks (QUICK_RUN's d = N = 128 3xTF takes ~8 CPU minutes).
    "quick": _from(SWEEP_PRESETS["quick"]),
    "paper": LayerwiseConfig(steps=10_000, chunk_size=1000),
}


def first_over_others(norms: jax.Array) -> jax.Array:
    """(B, N) norms -> (): the mean over the batch at position 0 over the median of n >= 1."""
    return norms[:, 0].mean() / jnp.median(norms[:, 1:])


def layer_profiles(bb: TrainedBB) -> dict[str, np.ndarray]:
    """Per seed and layer, on the whole evaluation batch of the final models.

    Returns (S, L) arrays: `resid_ratio`, mean ||Res_<s>|| at the block output over the median
    ||Res|| of every other position (b, n >= 1); `value_ratio`, ||W_O v_<s>|| over the median
    ||W_O v|| of the other positions; and (S,) `embed_ratio`, the same residual ratio of the
    embedding (the stream entering layer 0); (S,) `resid0_growth`, ||Res_<s>|| at the layer-0
    output at the end over its value at the evaluation nearest 10% of training.
    """
    inputs = bb.eval_batch.inputs

    @jax.jit
    @jax.vmap
    def profile(params):
        _, trace = nnx.merge(bb.graphdef, params)(inputs, trace=True)
        resid = [first_over_others(jnp.linalg.norm(lt.resid_post, axis=-1)) for lt in trace.layers]
        value = [
            first_over_others(jnp.linalg.norm(lt.attn.value_out[:, :, 0], axis=-1))
            for lt in trace.layers
        ]
        return (
            jnp.stack(resid),
            jnp.stack(value),
            first_over_others(jnp.linalg.norm(trace.embed, axis=-1)),
        )

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


def observations(
    bb: TrainedBB, profiles: dict[str, np.ndarray], sink: np.ndarray
) -> list[Observation]:
    """What the 3xTF run shows beyond E9's words; `sink` is `sink_layers(bb)`."""
    seeds = np.arange(len(sink))
    learned = task_learned_measured(bb, "3xtf")
    return [
        *(
            Observation(
                name,
                f"Final {name.removeprefix('3xtf-')} excess risk of 3xTF (nats, per seed)",
                value,
            )
            for name, value in learned.items()
        ),
        Observation(
            "sink-layer",
            "Per seed, the layer >= 1 whose non-trigger queries n >= 1 attend most to <s>",
            sink,
        ),
        Observation(
            "sink-layer-attends-to-bos",
            "Final Attn_<s> over non-trigger queries n >= 1 in that sink layer, per seed",
            bb.final_metric("attn_sink_later")[seeds, sink, 0],
        ),
        Observation(
            "bos-value-small-in-sink-layer",
            "In that sink layer, ||W_O v_<s>|| over the median ||W_O v|| of the other positions, "
            "per seed",
            profiles["value_ratio"][seeds, sink],
        ),
        Observation(
            "residual-layer0-grows",
            "||Res_<s>|| at the layer-0 output at the end of training over its value at 10% of "
            "training, per seed (E8's growth under Adam is claimed by optimizer-ablation)",
            profiles["resid0_growth"],
        ),
    ]


def run(cfg: LayerwiseConfig, ctx: RunContext) -> Outcome:
    bb = train_bb(cfg, ctx, RUN_LABEL)
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
    resid = profiles["resid_ratio"]  # (S, L)
    measured = {
        "residual-huge-layers-0-1": {f"layer {layer}": resid[:, layer] for layer in (0, 1)},
        "residual-matches-last-layer": resid[:, -1],
    }
    return Outcome(
        judge(CLAIMS, measured),
        [_figure(bb, maps, ctx)],
        list(cfg.seeds),
        summary,
        observations(bb, profiles, sink),
    )


def training_plan(cfg: LayerwiseConfig) -> tuple[PlannedRun, ...]:
    """The one run of `run`: the 3xTF model of `cfg`."""
    return (bb_planned_run(cfg, RUN_LABEL),)


EXPERIMENT = Experiment(
    name="layerwise-maps",
    title="3xTF layer by layer: attention maps, value norms, residual norms of <s> (E9, "
    "Figs. 11-13)",
    presets=PRESETS,
    run=run,
    claims=CLAIMS,
    training_plan=training_plan,
)
