"""E7 (Fig. 5b): the residual peak of attn+mlp+attn+mlp+mlp feeds the sink and the value drain.

The 2xTF+MLP model (3 blocks, no attention in block 2) is trained, then probed twice in one
vmapped call: as trained, and with block 0 (attention and MLP) zeroed. Measured on the fixed
evaluation batch:
- the recentred ||Res_<s>|| at the output of block 0;
- the block-1 logit_<s>: Delta(v) of spec C averaged over the token types whose Delta(v) > 0 in
  the trained model (the paper's selection, kept fixed so both rows average the same types);
- the block-1 ||W_O v_<s>||, and its ratio to the median ||W_O v|| of the other positions.
"""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from flax import nnx

from experiments.active_dormant.bb_common import (
    BBRunConfig,
    TrainedBB,
    bb_planned_run,
    run_settings,
    train_bb,
)
from experiments.active_dormant.layerwise_maps import MATCH_FACTOR, first_over_others
from experiments.active_dormant.residual_peaks import ARCHITECTURES
from experiments.active_dormant.residual_peaks import PRESETS as SWEEP_PRESETS
from experiments.framework.claims import (
    Above,
    AllOf,
    AtLeast,
    Below,
    ClaimSpec,
    Observation,
    check_specs,
    judge,
)
from experiments.framework.experiment import Experiment, Outcome, RunContext
from experiments.framework.planning import PlannedRun
from sinkjax import probes
from sinkjax.active_dormant.bb_training import sink_type_mask
from sinkjax.interventions import Interventions

VARIANTS = ("trained", "block 0 zeroed")
# The label of the 2xTF+MLP run, in `run` and in its plan.
RUN_LABEL = "2xTF+MLP"
NO_ATTN, NO_FFN = ARCHITECTURES["2xTF+MLP"]


def _from(base: BBRunConfig) -> BBRunConfig:
    """The sweep preset's settings for the single 2xTF+MLP architecture."""
    return BBRunConfig(
        **{**run_settings(base), "n_layers": 3, "no_attn": NO_ATTN, "no_ffn": NO_FFN}
    )


PRESETS = {name: _from(cfg) for name, cfg in SWEEP_PRESETS.items()}

# E7's "removes the residual peak" and "collapses the layer-1 logit_<s>" read as "to about zero":
# less than a tenth of the trained model's value is left.
GONE = 0.1
AD = "active_dormant.md"
CLAIMS = check_specs(
    [
        ClaimSpec(
            "peak-collapses",
            "E7: zeroing layer 0 (attn and MLP) 'removes the residual peak': the recentred "
            "||Res_<s>|| at the block-0 output of the zeroed model over the trained model's "
            f"below {GONE:g} ('removes' read as less than a tenth left), every seed",
            f"{AD} E7 and C (recentred norm, 'zero layer 0'); paper Fig. 5b",
            Below(GONE),
        ),
        ClaimSpec(
            "logit-collapses",
            "E7: zeroing layer 0 'collapses the layer-1 logit_<s>': the block-1 logit_<s> "
            "(spec C: Delta(v) averaged over the types with Delta(v) > 0 in the trained model) "
            f"of the zeroed model over the trained model's below {GONE:g} ('collapses' read as "
            "less than a tenth left), every seed",
            f"{AD} E7 and C (logit_<s>, the 3-layer intervention); paper Fig. 5b",
            Below(GONE),
        ),
        ClaimSpec(
            "value-norm-restored",
            "E7: zeroing layer 0 'restores the layer-1 value norm of <s>': the block-1 "
            "||W_O v_<s>|| rises (zeroed over trained above 1) and is back at the other "
            "tokens' level ('restored' read as within a factor "
            f"{MATCH_FACTOR:g} of it, as 'matches' in E9: at least 1/{MATCH_FACTOR:g} of the "
            "median ||W_O v|| of the other positions of the zeroed model), every seed",
            f"{AD} E7 and C (||Val_<s>||); paper Fig. 5b",
            AllOf(
                {
                    "zeroed_over_trained": Above(1.0),
                    "zeroed_over_other_positions": AtLeast(1 / MATCH_FACTOR),
                }
            ),
        ),
    ]
)


def probe_variants(bb: TrainedBB, seed_index: int) -> dict[str, np.ndarray]:
    """(2,) per-variant probes of one seed: trained, then block 0 zeroed (one vmapped call).

    Returns `recentred_peak` (block-0 output), `sink_logit_1` (block 1, types with Delta > 0
    in the trained model), `value_norm_1` (block-1 ||W_O v_<s>||), `value_ratio_1` (that over
    the median ||W_O v|| of the positions n >= 1) and `n_types` (how many token types the logit
    averages).
    """
    cfg = bb.model_cfg
    none = Interventions.none(cfg.n_layers, cfg.n_heads)
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), none, none.zero_layer(0))
    inputs = bb.eval_batch.inputs
    type_mask = sink_type_mask(bb.task)
    params = bb.seed_params(seed_index)

    @jax.jit
    def probe(params):
        def one(gates):
            _, trace = nnx.merge(bb.graphdef, params)(inputs, gates, trace=True)
            _, recentred = probes.first_residual_norm(trace.layers[0].resid_post)
            attn = trace.layers[1].attn
            per_type = probes.sink_logit(attn.logits, inputs, type_mask).per_type[0]  # (V,)
            value_norm, _ = probes.first_value_norms(attn)
            value_ratio = first_over_others(jnp.linalg.norm(attn.value_out[:, :, 0], axis=-1))
            return recentred, per_type, value_norm[0], value_ratio

        recentred, per_type, value_norm, value_ratio = jax.vmap(one)(stacked)
        selected = type_mask & (per_type[0] > 0)  # NaN (absent types) compares False
        logit = jnp.sum(jnp.where(selected, per_type, 0.0), -1) / jnp.sum(selected)
        return recentred, logit, value_norm, value_ratio, jnp.sum(selected)

    recentred, logit, value_norm, value_ratio, n_types = probe(params)
    return {
        "recentred_peak": np.asarray(recentred),
        "sink_logit_1": np.asarray(logit),
        "value_norm_1": np.asarray(value_norm),
        "value_ratio_1": np.asarray(value_ratio),
        "n_types": int(n_types),
    }


def _figure(rows: dict[str, np.ndarray], ctx: RunContext) -> str:
    titles = {
        "recentred_peak": "recentred ||Res_<s>||, block-0 output",
        "sink_logit_1": "block-1 logit_<s> (types with Delta > 0)",
        "value_norm_1": "block-1 ||W_O v_<s>||",
    }
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, (key, title) in zip(axes, titles.items(), strict=True):
        values = rows[key]  # (S, 2)
        ax.bar(VARIANTS, values.mean(0), color=["tab:blue", "tab:orange"])
        for i in range(2):
            ax.scatter(np.full(len(values), i), values[:, i], color="black", s=12, zorder=3)
        ax.set_title(title, fontsize=10)
    fig.suptitle("E7: zeroing block 0 of attn+mlp+attn+mlp+mlp")
    return ctx.save_figure(fig, "peak_intervention")


def run(cfg: BBRunConfig, ctx: RunContext) -> Outcome:
    if (cfg.n_layers, tuple(cfg.no_attn), tuple(cfg.no_ffn)) != (3, NO_ATTN, NO_FFN):
        raise ValueError(
            "peak-intervention probes attn+mlp+attn+mlp+mlp: keep n_layers=3, no_attn=(2,), "
            "no_ffn=()"
        )
    bb = train_bb(cfg, ctx, RUN_LABEL)
    per_seed = [probe_variants(bb, i) for i in range(cfg.n_seeds)]
    rows = {k: np.stack([p[k] for p in per_seed]) for k in per_seed[0] if k != "n_types"}
    peak, logit, value = rows["recentred_peak"], rows["sink_logit_1"], rows["value_norm_1"]
    measured = {
        "peak-collapses": peak[:, 1] / peak[:, 0],
        "logit-collapses": logit[:, 1] / logit[:, 0],
        "value-norm-restored": {
            "zeroed_over_trained": value[:, 1] / value[:, 0],
            "zeroed_over_other_positions": rows["value_ratio_1"][:, 1],
        },
    }
    excess = {k: bb.final_metric(f"{k}_excess") for k in ("backcopy", "bigram")}
    observations = [
        Observation(
            "trained-value-drain",
            "The trained model's block-1 ||W_O v_<s>|| over the median ||W_O v|| of the other "
            "positions, per seed: the drain that zeroing layer 0 is to undo",
            rows["value_ratio_1"][:, 0],
        ),
        Observation(
            "final-excess",
            "Final backcopy and bigram excess risks of the trained 2xTF+MLP (nats, per seed)",
            excess,
        ),
    ]
    summary = {
        "variants": VARIANTS,
        **rows,
        "logit_types": [p["n_types"] for p in per_seed],
        "final_excess": excess,
        "train_wall_time_s": bb.result.wall_time,
    }
    claims = judge(CLAIMS, measured)
    return Outcome(claims, [_figure(rows, ctx)], list(cfg.seeds), summary, observations)


def training_plan(cfg: BBRunConfig) -> tuple[PlannedRun, ...]:
    """The one run of `run`: the 2xTF+MLP model of `cfg`."""
    return (bb_planned_run(cfg, RUN_LABEL),)


EXPERIMENT = Experiment(
    name="peak-intervention",
    title="Zeroing block 0 of attn+mlp+attn+mlp+mlp removes the peak, collapses the sink logit "
    "and restores the value norm of <s> (E7, Fig. 5b)",
    presets=PRESETS,
    run=run,
    claims=CLAIMS,
    training_plan=training_plan,
)
