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

from sinkjax import sinks
from sinkjax.tasks.text import make_text_eval_batch
from sinkjax.text_training import text_lm_metrics

from .claims import Claim, claim_above, claim_true
from .registry import Experiment, Outcome, RunContext
from .text_common import (
    CI_TEXT_RUN,
    QUICK_TEXT_RUN,
    QUICK_VARIANT_STEPS,
    TextRunConfig,
    TrainedTextLM,
    text_run_settings,
    train_text_lm,
)

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


@dataclasses.dataclass(frozen=True)
class P0CircuitConfig(TextRunConfig):
    """The BOS-trained run (the base fields; its no-BOS twin differs only in `with_bos`) and
    the thresholds of P2's predictions."""

    # P2's "first two blocks": position 0 is recognised after block early_layers - 1.
    early_layers: int = 2
    # Linear-probe AUC (held-out) for "is position 0" that counts as recognised.
    probe_auc: float = 0.95
    # Cross-sample cosine of position-0 states that counts as a fixed direction.
    direction_cosine: float = 0.9
    # Without <s>, the deep layers (>= early_layers) keep at least this share of their BOS
    # attention, and with <s> they sink at sink_factor x the uniform null.
    recovery_fraction: float = 0.5
    sink_factor: float = 3.0

    def __post_init__(self):
        super().__post_init__()
        if not 1 <= self.early_layers < self.n_layers:
            raise ValueError(f"early_layers must lie in [1, n_layers), got {self.early_layers}")
        for name in ("probe_auc", "direction_cosine", "recovery_fraction"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must lie in (0, 1], got {getattr(self, name)}")
        if self.sink_factor <= 1:
            raise ValueError(f"sink_factor must be > 1 (1 is the null), got {self.sink_factor}")


def _from(run: TextRunConfig, **changes) -> P0CircuitConfig:
    settings = {**text_run_settings(run), "with_bos": True, "architecture": "rope"}
    return P0CircuitConfig(**{**settings, **changes})


PRESETS = {
    "ci": _from(CI_TEXT_RUN, early_layers=1),  # its model has 2 layers
    # sink-dispensability's rope variant is this BOS run.
    "quick": _from(QUICK_TEXT_RUN, steps=QUICK_VARIANT_STEPS),
    "paper": _from(TextRunConfig()),
}


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


def _claims(cfg: P0CircuitConfig, signals: dict[str, dict], null: float) -> list[Claim]:
    with_bos, without_bos, no_bos = (signals[c[0]] for c in CONDITIONS)
    probe_layer = cfg.early_layers - 1
    deep = slice(cfg.early_layers, None)
    deep_with = float(with_bos["bos_attention"][deep].mean())
    deep_without = float(without_bos["bos_attention"][deep].mean())
    return [
        claim_above(
            "p0-recognised",
            f"P2: without any BOS, position 0 is recognised within {cfg.early_layers} blocks: "
            f"held-out linear-probe AUC for 'is position 0' after block {probe_layer} "
            "(no-BOS-trained model)",
            float(no_bos["p0_probe_auc"][probe_layer]),
            cfg.probe_auc,
        ),
        claim_above(
            "p0-fixed-direction",
            f"P2: the position-0 state takes a fixed direction across inputs: cross-sample "
            f"cosine of h_0 after block {probe_layer} (no-BOS-trained model)",
            float(no_bos["cross_sample_cosine"][probe_layer]),
            cfg.direction_cosine,
        ),
        claim_above(
            "p0-unmixed-output",
            "P2's cone model: position 0's layer-0 attention output is unmixed, so its norm "
            "exceeds the mean of the other positions': ||o_0|| / mean ||o_t|| at layer 0 "
            "(no-BOS-trained model)",
            float(no_bos["attention_output_ratio"][0]),
            1.0,
        ),
        claim_true(
            "deep-sink-survives-bos-removal",
            f"P2 (LLaMA): removing <s> lowers the sink only in the first {cfg.early_layers} "
            f"layers: the BOS-trained model's BOS attention over layers >= {cfg.early_layers} "
            "sinks with <s> and keeps its share without it",
            {"with_bos": deep_with, "without_bos": deep_without, "null": null},
            f"with_bos > {cfg.sink_factor:g} x null and without_bos >= "
            f"{cfg.recovery_fraction:g} x with_bos",
            deep_with > cfg.sink_factor * null
            and deep_without >= cfg.recovery_fraction * deep_with,
        ),
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


def run(cfg: P0CircuitConfig, ctx: RunContext) -> Outcome:
    base = cfg.training_run()
    models = {
        True: train_text_lm(base, ctx, f"toy-{cfg.architecture}"),
        False: train_text_lm(
            dataclasses.replace(base, with_bos=False), ctx, f"toy-{cfg.architecture}-no-bos"
        ),
    }
    signals = {
        label: condition_signals(models[trained_bos], inputs_bos)
        for label, trained_bos, inputs_bos in CONDITIONS
    }
    null = float(sinks.uniform_bos_attention(cfg.seq_len))
    claims = _claims(cfg, signals, null)
    figure = _figure(cfg, signals, null, ctx)
    summary = {
        "conditions": signals,
        "uniform_null": null,
        "final_ce": {str(bos): m.result.metrics["ce"][:, -1] for bos, m in models.items()},
    }
    return Outcome(claims, [figure], list(cfg.seeds), summary)


EXPERIMENT = Experiment(
    name="p0-circuit",
    title="P2's P0 sink circuit on a RoPE toy: position-0 signals with and without BOS",
    presets=PRESETS,
    run=run,
)
