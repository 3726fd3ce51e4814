"""E7 (Fig. 5b): the residual peak of attn+mlp+attn+mlp+mlp feeds the sink and the value drain.

The 2xTF+MLP model (3 blocks, no attention in block 2) is trained, then probed twice in one
vmapped call: as trained, and with block 0 (attention and MLP) zeroed. Measured on the fixed
evaluation batch:
- the recentred ||Res_<s>|| at the output of block 0;
- the block-1 logit_<s>: Delta(v) of spec C averaged over the token types whose Delta(v) > 0 in
  the trained model (the paper's selection, kept fixed so both rows average the same types);
- the block-1 ||W_O v_<s>||.
"""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from flax import nnx

from sinkjax import probes
from sinkjax.bb_training import sink_type_mask
from sinkjax.interventions import Interventions

from .bb_common import BBRunConfig, TrainedBB, run_settings, train_bb
from .claims import claim_above, claim_below
from .registry import Experiment, Outcome, RunContext
from .residual_peaks import ARCHITECTURES
from .residual_peaks import PRESETS as SWEEP_PRESETS

VARIANTS = ("trained", "block 0 zeroed")
NO_ATTN, NO_FFN = ARCHITECTURES["2xTF+MLP"]


def _from(base: BBRunConfig) -> BBRunConfig:
    """The sweep preset's settings for the single 2xTF+MLP architecture."""
    return BBRunConfig(
        **{**run_settings(base), "n_layers": 3, "no_attn": NO_ATTN, "no_ffn": NO_FFN}
    )


PRESETS = {name: _from(cfg) for name, cfg in SWEEP_PRESETS.items()}


def probe_variants(bb: TrainedBB, seed_index: int) -> dict[str, np.ndarray]:
    """(2,) per-variant probes of one seed: trained, then block 0 zeroed (one vmapped call).

    Returns `recentred_peak` (block-0 output), `sink_logit_1` (block 1, types with Delta > 0
    in the trained model), `value_norm_1` (block-1 ||W_O v_<s>||) and `n_types` (how many
    token types the logit averages).
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
            return recentred, per_type, value_norm[0]

        recentred, per_type, value_norm = jax.vmap(one)(stacked)
        selected = type_mask & (per_type[0] > 0)  # NaN (absent types) compares False
        logit = jnp.sum(jnp.where(selected, per_type, 0.0), -1) / jnp.sum(selected)
        return recentred, logit, value_norm, jnp.sum(selected)

    recentred, logit, value_norm, n_types = probe(params)
    return {
        "recentred_peak": np.asarray(recentred),
        "sink_logit_1": np.asarray(logit),
        "value_norm_1": np.asarray(value_norm),
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
    bb = train_bb(cfg, ctx, "2xTF+MLP")
    per_seed = [probe_variants(bb, i) for i in range(cfg.n_seeds)]
    rows = {k: np.stack([p[k] for p in per_seed]) for k in per_seed[0] if k != "n_types"}
    peak, logit, value = rows["recentred_peak"], rows["sink_logit_1"], rows["value_norm_1"]
    claims = [
        claim_below(
            "peak-collapses",
            "E7: zeroing block 0 removes the residual peak (recentred ||Res_<s>|| zeroed / "
            "trained, worst seed)",
            float((peak[:, 1] / peak[:, 0]).max()),
            0.25,
        ),
        claim_below(
            "logit-falls",
            "E7: zeroing block 0 lowers the block-1 logit_<s> (zeroed - trained, worst seed)",
            float((logit[:, 1] - logit[:, 0]).max()),
            0.0,
        ),
        claim_above(
            "value-norm-rises",
            "E7: zeroing block 0 raises the block-1 ||W_O v_<s>|| (zeroed / trained, weakest seed)",
            float((value[:, 1] / value[:, 0]).min()),
            1.0,
        ),
    ]
    summary = {
        "variants": VARIANTS,
        **rows,
        "logit_types": [p["n_types"] for p in per_seed],
        "final_excess": {
            "backcopy": bb.final_metric("backcopy_excess"),
            "bigram": bb.final_metric("bigram_excess"),
        },
        "train_wall_time_s": bb.result.wall_time,
    }
    return Outcome(claims, [_figure(rows, ctx)], list(cfg.seeds), summary)


EXPERIMENT = Experiment(
    name="peak-intervention",
    title="Zeroing block 0 of attn+mlp+attn+mlp+mlp removes the peak, the sink logit and the "
    "value drain (E7, Fig. 5b)",
    presets=PRESETS,
    run=run,
)
