"""P2 (Peng et al.): the P0 sink circuit, with and without a BOS token.

P2's circuit recognises position 0 without any semantic cue: the causal mask makes position
0's layer-0 attention output its own value, unmixed (mixing concentration sum_j A_0j^2 = 1),
so it stands out in norm and direction; the next MLP turns that into a high-norm state of a
fixed direction, which later layers attend to as the sink. In LLaMA-family models, removing
[BOS] lowers the sink only in the first two layers (spec sinks_gpt2_p0.md §2).

P2's models (LLaMA, Mistral, its own) use RoPE, so nothing but the causal mask marks position
0 in the residual stream. With GPT-2's learned absolute positions p_0 alone identifies it
(a linear probe finds it at the embedding), which would make the test empty. So we train the
toy of `gpt2-circuit` with RoPE instead (the `rope` variant of `sink-dispensability`, the same
run at each preset) twice, with a fixed `<s>` at index 0 and without it, and read the M12
signals per layer (`text_lm_metrics`) on held-out windows in three conditions: the BOS-trained
model with and without `<s>`, and the no-BOS model. The claims are P2's predictions, each read
from the condition it is about.
"""

import dataclasses

import jax
import matplotlib.pyplot as plt
import numpy as np

from experiments.framework.claims import (
    Above,
    AllOf,
    AtLeast,
    ClaimSpec,
    Observation,
    check_specs,
    judge,
)
from experiments.framework.experiment import Experiment, Outcome, RunContext
from experiments.framework.planning import PlannedRun
from experiments.sinks.text_common import (
    CI_TEXT_RUN,
    QUICK_TEXT_RUN,
    QUICK_VARIANT_STEPS,
    SINK_RULE,
    SINK_SOURCE,
    SPEC,
    TextRunConfig,
    TrainedTextLM,
    text_planned_run,
    text_run_settings,
    train_text_lm,
)
from sinkjax.sinks import metrics as sinks
from sinkjax.sinks.toy_lm import text_lm_metrics
from sinkjax.text.domains import make_text_eval_batch

# The three conditions: (label, BOS-trained model, inputs start with <s>).
CONDITIONS = (
    ("BOS-trained, with <s>", True, True),
    ("BOS-trained, without <s>", True, False),
    ("no-BOS-trained", False, False),
)
# The per-layer signals of the figure and the record: name -> text_lm_metrics key(s).
SIGNALS = (
    "bos_attention",
    "sink_rate",
    "rho",
    "attention_output_ratio",
    "cross_sample_cosine",
    "p0_probe_auc",
)


def _from(run: TextRunConfig, **changes) -> TextRunConfig:
    settings = {**text_run_settings(run), "with_bos": True, "architecture": "rope"}
    return TextRunConfig(**{**settings, **changes})


PRESETS = {
    "ci": _from(CI_TEXT_RUN),
    # sink-dispensability's rope variant is this BOS run.
    "quick": _from(QUICK_TEXT_RUN, steps=QUICK_VARIANT_STEPS),
    "paper": _from(TextRunConfig()),
}

# P2's "first two blocks": position 0 is recognised after block EARLY_BLOCKS - 1, and
# removing [BOS] lowers the sink only in layers < EARLY_BLOCKS.
EARLY_BLOCKS = 2
P2 = "paper P2 (v2)"
CLAIMS = check_specs(
    [
        ClaimSpec(
            "p0-recognised",
            "P2: without any semantic cue position 0 is recognised, and 'P0 separates within 2 "
            "blocks'; 'separates' read as a held-out linear-probe AUC for 'is position 0' of "
            f"at least 0.95 (chance 0.5) on the residual after block {EARLY_BLOCKS - 1} of the "
            "model trained and read without <s>",
            f"{SPEC} §2(a) item 1, §2(b) per-layer diagnostics, M12 (probe AUC); {P2}",
            AtLeast(0.95),
        ),
        ClaimSpec(
            "p0-fixed-direction",
            "P2: the MLP writes a 'high-norm, fixed-direction P0 representation ... consistent "
            "across inputs', diagnosed by the cross-sample cosine of P0 hidden states; 'fixed "
            "direction' read as a mean cross-sample cosine of h_0 of at least 0.9 after block "
            f"{EARLY_BLOCKS - 1}, model trained and read without <s> (with <s> it is 1 by "
            "construction)",
            f"{SPEC} §2(a) item 2, §2(b) per-layer diagnostics, M12 (direction stability); {P2}",
            AtLeast(0.9),
        ),
        ClaimSpec(
            "p0-unmixed-output",
            "P2's cone model: E||o||^2 = a^2 + (1 - a^2) E[sum_j p_j^2] is largest at position "
            "0, whose causal row is unmixed (sum_j p_j^2 = 1): ||o_0|| / mean_t>0 ||o_t|| of "
            "the layer-0 attention output above 1, model trained and read without <s>",
            f"{SPEC} §2(a) item 1 (cone model), M12 (attention-output norm); {P2}",
            Above(1.0),
        ),
        ClaimSpec(
            "deep-sink-survives-bos-removal",
            f"P2 (LLaMA family): removing [BOS] lowers the sink only in the first "
            f"{EARLY_BLOCKS} layers; Sink_0[2:] 'recovers to near the with-BOS level'. Read on "
            f"the continuous BOS attention (M4 per layer, mean over layers >= {EARLY_BLOCKS}; "
            f"spec §5 item 6) of the model trained with <s>: read with <s> it is above Gu's "
            f"sink threshold {SINK_RULE.bound:g} (the sink of gpt2-circuit's sink-forms), and "
            "read without <s> it keeps at least 0.9 of that value ('near')",
            f"{SPEC} §2(d) LLaMA family, §2(b) [BOS] ablation, {SINK_SOURCE}; {P2} Table 1a",
            AllOf({"with_bos": SINK_RULE, "without_over_with": AtLeast(0.9)}),
        ),
    ]
)


# One compiled program per model structure and batch shape (the BOS-trained model is read twice).
_metrics = jax.jit(text_lm_metrics, static_argnums=0)


def condition_signals(trained: TrainedTextLM, with_bos: bool, seed: int = 1) -> dict:
    """The per-layer signals (L,) of `SIGNALS` for the first seed's model on held-out windows
    (`eval_batch_size` per domain, `seq_len` tokens) that start with `<s>` or not."""
    cfg = trained.cfg
    batch = make_text_eval_batch(
        trained.corpus, cfg.eval_batch_size, cfg.seq_len, with_bos=with_bos, seed=seed
    )
    metrics = _metrics(trained.graphdef, trained.seed_params(0), batch)
    m = {k: np.asarray(v) for k, v in metrics.items()}
    m["attention_output_ratio"] = m["attn_out_first"] / m["attn_out_rest"]
    return {name: m[name] for name in SIGNALS}


def measure(signals: dict[str, dict], n_layers: int) -> tuple[dict, dict]:
    """(claim id -> measured value, claim id -> why it has no data) from the per-layer
    signals of every condition."""
    with_bos, without_bos, no_bos = (signals[c[0]] for c in CONDITIONS)
    after = EARLY_BLOCKS - 1
    measured = {
        "p0-recognised": no_bos["p0_probe_auc"][after],
        "p0-fixed-direction": no_bos["cross_sample_cosine"][after],
        "p0-unmixed-output": no_bos["attention_output_ratio"][0],
    }
    if n_layers <= EARLY_BLOCKS:  # only at `ci`, whose model has 2 layers
        return measured, {
            "deep-sink-survives-bos-removal": f"no layer >= {EARLY_BLOCKS} in {n_layers} layers"
        }
    deep_with = with_bos["bos_attention"][EARLY_BLOCKS:].mean()
    deep_without = without_bos["bos_attention"][EARLY_BLOCKS:].mean()
    measured["deep-sink-survives-bos-removal"] = {
        "with_bos": deep_with,
        "without_over_with": deep_without / deep_with,
    }
    return measured, {}


def observations(signals: dict[str, dict]) -> list[Observation]:
    """The per-layer BOS attention of each condition (P2: removing [BOS] lowers the sink in
    the first two layers)."""
    return [
        Observation(
            "bos-attention-by-layer",
            "BOS attention (M4) per layer, mean over heads, in each condition",
            {label: values["bos_attention"] for label, values in signals.items()},
        )
    ]


def _figure(cfg, signals: dict[str, dict], null: float, ctx: RunContext) -> str:
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    layers = np.arange(cfg.n_layers)
    for ax, name in zip(axes.ravel(), SIGNALS, strict=True):
        for label, values in signals.items():
            ax.plot(layers, values[name], marker="o", label=label)
        ax.set_title(name.replace("_", " "), fontsize=10)
        ax.set_xlabel("layer")
        ax.set_xticks(layers)
        ax.grid(alpha=0.3)
    axes[0, 0].axhline(null, color="black", lw=0.8, label="uniform null")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(
        f"P0-circuit signals per layer (held-out windows of {cfg.seq_len} tokens)", fontsize=11
    )
    fig.tight_layout()
    return ctx.save_figure(fig, "p0_signals")


def bos_runs(cfg: TextRunConfig) -> dict[bool, tuple[str, TextRunConfig]]:
    """Trained with <s> -> the label and run: the config's run, and the same without <s>."""
    base = cfg.training_run()
    return {
        True: (f"toy-{cfg.architecture}", base),
        False: (f"toy-{cfg.architecture}-no-bos", dataclasses.replace(base, with_bos=False)),
    }


def run(cfg: TextRunConfig, ctx: RunContext) -> Outcome:
    models = {bos: train_text_lm(run, ctx, label) for bos, (label, run) in bos_runs(cfg).items()}
    signals = {
        label: condition_signals(models[trained_bos], inputs_bos)
        for label, trained_bos, inputs_bos in CONDITIONS
    }
    null = float(sinks.uniform_bos_attention(cfg.seq_len))
    measured, skipped = measure(signals, cfg.n_layers)
    figure = _figure(cfg, signals, null, ctx)
    summary = {
        "conditions": signals,
        "uniform_null": null,
        "final_ce": {str(bos): m.result.metrics["ce"][:, -1] for bos, m in models.items()},
    }
    claims = judge(CLAIMS, measured, skipped)
    return Outcome(claims, [figure], list(cfg.seeds), summary, observations(signals))


def training_plan(cfg: TextRunConfig) -> tuple[PlannedRun, ...]:
    """The runs of `run`: with <s> (at the presets, sink-dispensability's rope run), then
    without it."""
    return tuple(text_planned_run(run, label) for label, run in bos_runs(cfg).values())


EXPERIMENT = Experiment(
    name="p0-circuit",
    title="P2's P0 sink circuit on a RoPE toy: position-0 signals with and without BOS",
    presets=PRESETS,
    run=run,
    claims=CLAIMS,
    training_plan=training_plan,
)
