"""LLM stand-in (Sec. 3): sinks, value drains, residual peaks and domain-dormant heads in a byte LM.

The paper's Llama-2 and OLMo results (Sec. 3) need weights we cannot download (active_dormant.md,
the note after E12), so the same probes run on a GPT-style model we train ourselves on a mix of
prose (the docstrings of the running interpreter's standard library, or `--prose PATH`, e.g. tiny
Shakespeare) and code (Python source of other stdlib files), every window starting with `<s>`. Along
training, on fixed held-out batches of each domain, we probe the attention on position 0 per layer
and head (Attn_<s>, spec C, over queries n >= 1), the sink logit, ||W_O v|| of position 0 against
the other positions, and the residual norm of position 0 against the other positions. After
training, every head is zero-ablated (one vmapped call) and the change in cross-entropy is measured
on prose and on code.

The claims are the paper's Sec. 3 predictions, read onto the stand-in (see `CLAIMS`): a sink on
`<s>` in most heads of layers >= 1, a head active on one domain and dormant on the other, the
value drain of `<s>` and its residual peak. They are the same at every preset; the README says
which of them our `quick` runs reproduce. Everything else (cross-entropies, sink logits, per-layer
ratios, the head whose ablation is most asymmetric) is recorded as observations. There is no
paper setting for this stand-in: `paper` is simply a GPU-sized model.
"""

import dataclasses

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from flax import nnx

from experiments.framework.claims import (
    Above,
    AllOf,
    Below,
    ClaimSpec,
    Fraction,
    Observation,
    Separated,
    check_specs,
    judge,
)
from experiments.framework.experiment import Experiment, Outcome, RunContext
from experiments.framework.planning import PlannedRun
from experiments.framework.runner import UsageError
from experiments.framework.stored_training import train_stored, training_schedule
from sinkjax import plotting, probes
from sinkjax.active_dormant.charlm_training import (
    CharEvalBatch,
    charlm_train_task,
    forward,
    head_ablation_cross_entropy,
    make_eval_batch,
)
from sinkjax.models import TransformerConfig
from sinkjax.optim import OptimizerConfig
from sinkjax.text.char_corpus import (
    BOS,
    BYTE_CHARS,
    DOMAINS,
    VOCAB_SIZE,
    CharCorpus,
    TokenStream,
    load_char_corpus,
)
from sinkjax.train import TrainResult

PROSE, CODE = DOMAINS.index("prose"), DOMAINS.index("code")

AD = "active_dormant.md"
# What `train_char_lm` trains: the run store's folder kind and the plan's.
CHAR_LM_KIND = "char-lm"
STAND_IN = f"{AD} note after E12 (Sec. 3 stand-in)"
CLAIMS = check_specs(
    [
        ClaimSpec(
            "sink-on-bos-in-most-heads",
            "Sec. 3: in LLMs an attention sink on <s> forms in most heads of the layers after "
            "the first. A head has a sink when its final Attn_<s> (spec C: mean A[n, 0] over "
            "the held-out queries n >= 1 of both domains) exceeds eps = 0.3, the sink threshold "
            "of Gu et al.'s Sink^eps (uniform attention gives about 0.06 at N = 64); 'most' = "
            "more than half of the heads of layers >= 1 (seeds pooled)",
            f"{STAND_IN}; {AD} C (Attn_<s>); sinks_gpt2_p0.md 3(a) (Sink^eps, eps = 0.3); "
            "paper Sec. 3",
            Fraction(Above(0.3), at_least=0.5, strict=True),
        ),
        ClaimSpec(
            "domain-active-dormant-head",
            "Sec. 3 (Llama-2-7B L16H25): some head is dormant on one domain (its attention "
            "sits on <s>) and active on the other, and zeroing it matters on the active domain "
            "only. The head is the one whose final Attn_<s> differs most between prose and "
            "code, dormant on the domain where it is higher. Numeric reading: Attn_<s> on the "
            "dormant domain above 0.7 (E1 puts the dormant 1L head well above it), on the "
            "active domain below 0.3 "
            "(no sink: below the eps of the sink claim); the CE increase (nats/byte) "
            "when the head is zero-ablated is on the active domain more than 10x its absolute "
            "change on the dormant domain ('only' read as an order of magnitude, like E2's "
            "'more than 10x'); every seed",
            f"{STAND_IN}; {AD} E1, E2 and C (Attn_<s>, 'No Attn' intervention); "
            "sinks_gpt2_p0.md 3(a) (eps = 0.3); paper Sec. 3",
            AllOf(
                {
                    "attn_dormant_domain": Above(0.7),
                    "attn_active_domain": Below(0.3),
                    "ablation_delta_ce": Separated(
                        low=("dormant_domain",), high=("active_domain",), factor=10.0
                    ),
                }
            ),
        ),
        ClaimSpec(
            "value-drain-in-most-heads",
            "Sec. 3 / E2: the value state of <s> drains: final ||W_O v_<s>|| 'far smaller than "
            "every other token's value norm, by more than 10x', i.e. below 0.1x the smallest "
            "mean ||W_O v|| of any other byte type (held-out batch, both domains), in more "
            "than half of the heads of layers >= 1 (the heads of the sink claim; seeds pooled)",
            f"{STAND_IN}; {AD} E2 and C (||Val_<s>||); paper Sec. 3",
            Fraction(Below(0.1), at_least=0.5, strict=True),
        ),
        ClaimSpec(
            "residual-peak-on-bos",
            "Sec. 3 / E9: the residual state of <s> peaks: ||Res_<s>|| 'much larger' than the "
            "other tokens', read as more than 10x (E2's reading of 'far'): final ||Res_0|| "
            "over the median ||Res_n>=1|| of the held-out batch, largest over the blocks' "
            "outputs, above 10, every seed",
            f"{STAND_IN}; {AD} E9 and C (residual norms); paper Sec. 3",
            Above(10.0),
        ),
    ]
)


@dataclasses.dataclass(frozen=True)
class CharLMConfig:
    """A byte-level LM trained on prose and code (defaults: the GPU-sized `paper` preset)."""

    # Optimiser steps.
    steps: int = 20_000
    # Constant AdamW learning rate and decoupled weight decay.
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    # Independent seeds trained together (seeds base_seed, base_seed + 1, ...).
    n_seeds: int = 1
    base_seed: int = 42
    # Windows per step and tokens per window (`<s>` included).
    batch_size: int = 64
    seq_len: int = 256
    # Model width, blocks and heads per block.
    d_model: int = 256
    n_layers: int = 6
    n_heads: int = 8
    # Probability that a training window is code (else prose).
    code_fraction: float = 0.5
    # Bytes of prose to take (--prose, else the stdlib docstrings: about 0.7 MB beside 1 MB of
    # code on Python 3.11; tiny Shakespeare is 1.1 MB).
    max_prose_bytes: int = 1_200_000
    # Bytes of stdlib Python source to take.
    max_code_bytes: int = 1_000_000
    # Held-out windows per domain in the fixed evaluation batch.
    eval_batch_size: int = 64
    # Steps per compiled chunk; evaluation points (log-spaced and evenly spaced).
    chunk_size: int = 500
    n_log_evals: int = 40
    n_linear_evals: int = 20
    # Tokens shown in the attention maps.
    n_show: int = 48

    def __post_init__(self):
        for name in (
            "steps",
            "n_seeds",
            "batch_size",
            "d_model",
            "n_layers",
            "n_heads",
            "max_prose_bytes",
            "max_code_bytes",
            "eval_batch_size",
            "chunk_size",
            "n_show",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.seq_len < 3:
            raise ValueError(f"seq_len must be at least 3, got {self.seq_len}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning rate must be positive, got {self.learning_rate}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 < self.code_fraction < 1:
            raise ValueError(f"code_fraction must lie in (0, 1), got {self.code_fraction}")
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads={self.n_heads} must divide d_model={self.d_model}")

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(range(self.base_seed, self.base_seed + self.n_seeds))

    def model_config(self) -> TransformerConfig:
        return TransformerConfig(
            vocab_size=VOCAB_SIZE,
            max_len=self.seq_len,
            d_model=self.d_model,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            d_mlp=4 * self.d_model,
        )


PRESETS = {
    "ci": CharLMConfig(
        steps=30,
        batch_size=8,
        seq_len=32,
        d_model=32,
        n_layers=2,
        n_heads=2,
        max_prose_bytes=50_000,
        max_code_bytes=50_000,
        eval_batch_size=8,
        chunk_size=15,
        n_log_evals=6,
        n_linear_evals=3,
        n_show=16,
    ),
    "quick": CharLMConfig(
        steps=2000,
        batch_size=32,
        seq_len=64,
        d_model=64,
        n_layers=4,
        n_heads=4,
        eval_batch_size=64,
        chunk_size=250,
        n_log_evals=25,
        n_linear_evals=10,
    ),
    "paper": CharLMConfig(),
}


@dataclasses.dataclass
class TrainedCharLM:
    """A finished run and what is needed to probe it."""

    cfg: CharLMConfig
    corpus: CharCorpus
    graphdef: nnx.GraphDef
    eval_batch: CharEvalBatch
    result: TrainResult

    def seed_params(self, i: int):
        return jax.tree.map(lambda leaf: leaf[i], self.result.params)


def train_char_lm(cfg: CharLMConfig, ctx: RunContext, label: str = "char-lm") -> TrainedCharLM:
    """Train `cfg.n_seeds` models together, resuming from checkpoint/<label> in the run folder.

    Raises:
        UsageError: the prose file is missing or a text is too short (one line, exit 2).
    """
    try:
        corpus = load_char_corpus(
            ctx.prose,
            max_prose_bytes=cfg.max_prose_bytes,
            max_code_bytes=cfg.max_code_bytes,
            seq_len=cfg.seq_len,
        )
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(str(err)) from None
    ctx.corpora.update(corpus.texts)
    eval_batch = make_eval_batch(corpus, cfg.eval_batch_size, cfg.seq_len)
    task, graphdef = charlm_train_task(
        cfg.model_config(),
        TokenStream.from_parts(corpus.train),
        cfg.batch_size,
        cfg.seq_len,
        cfg.code_fraction,
        eval_batch,
    )
    train_cfg = training_schedule(cfg, cfg.seeds, n_checkpoints=10)
    optimizer = OptimizerConfig(learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay)
    fingerprint = {"run": dataclasses.asdict(cfg), "data_sha256": corpus.digest()}
    result = train_stored(task, optimizer, train_cfg, fingerprint, ctx, label, CHAR_LM_KIND)
    return TrainedCharLM(cfg, corpus, graphdef, eval_batch, result)


def char_lm_planned_run(cfg: CharLMConfig, label: str = "char-lm") -> PlannedRun:
    """The run `train_char_lm(cfg, ctx, label)` opens, as the plan sees it (its settings are
    the config that `train_char_lm` fingerprints; the corpus is left out)."""
    settings = dataclasses.asdict(cfg)
    return PlannedRun.of_transformer_run(cfg, label, CHAR_LM_KIND, VOCAB_SIZE, settings)


def training_plan(cfg: CharLMConfig) -> tuple[PlannedRun, ...]:
    """The one run of `run`: the char LM of `cfg`."""
    return (char_lm_planned_run(cfg),)


def dynamics_curves(metrics: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Derived curves from the (S, E, ...) metrics of `train`.

    Returns `attn_sink` (S, E, L, H) averaged over the two domains, `value_ratio` (S, E, L, H)
    ||W_O v_0|| / median ||W_O v_n>=1||, `resid_ratio` (S, E, L) ||Res_0|| / median ||Res_n>=1||,
    `sink_logit` (S, E, L, H) and `ce` (S, E, D).
    """
    return {
        "attn_sink": metrics["attn_sink"].mean(axis=2),
        "value_ratio": metrics["value_norm_first"] / metrics["value_norm_others"],
        "resid_ratio": metrics["resid_norm_first"] / metrics["resid_norm_others"],
        "sink_logit": metrics["sink_logit"],
        "ce": metrics["ce"],
    }


def ablation_deltas(run: TrainedCharLM) -> tuple[np.ndarray, np.ndarray]:
    """(base (S, D), delta (S, L, H, D)): CE per domain and its change under each head ablation."""
    bases, deltas = [], []
    for i in range(run.cfg.n_seeds):
        base, ablated = head_ablation_cross_entropy(
            run.graphdef, run.seed_params(i), run.eval_batch
        )
        bases.append(np.asarray(base))
        deltas.append(np.asarray(ablated) - np.asarray(base))
    return np.stack(bases), np.stack(deltas)


def most_asymmetric_head(delta: np.ndarray) -> tuple[int, int]:
    """(layer, head) maximising |delta_code - delta_prose| for one seed's (L, H, D) deltas."""
    asymmetry = np.abs(delta[..., CODE] - delta[..., PROSE])
    layer, head = np.unravel_index(np.argmax(asymmetry), asymmetry.shape)
    return int(layer), int(head)


def active_dormant_head(attn: np.ndarray) -> tuple[int, int, int]:
    """(layer, head, dormant domain) for one seed's final (D, L, H) Attn_<s>.

    The head is the one whose Attn_<s> differs most between the two domains; its dormant
    domain is the one where its Attn_<s> is higher (the claim then asks how high and how low).
    """
    gap = np.abs(attn[CODE] - attn[PROSE])
    layer, head = np.unravel_index(np.argmax(gap), gap.shape)
    return int(layer), int(head), int(np.argmax(attn[:, layer, head]))


def final_value_norms_by_type(run: TrainedCharLM) -> np.ndarray:
    """(S, L, H, V) final mean ||W_O v|| of each token type over the whole evaluation batch
    (both domains; NaN for a byte absent from it). Column `BOS` is position 0's."""
    batch = run.eval_batch
    tokens = batch.inputs.reshape(-1, batch.inputs.shape[-1])

    @jax.jit
    @jax.vmap
    def norms(params):
        _, trace = forward(run.graphdef, params, batch)
        return jnp.stack(
            [probes.value_norms_by_type(l.attn, tokens, VOCAB_SIZE) for l in trace.layers]
        )

    return np.asarray(norms(run.result.params))


def measure(
    run: TrainedCharLM, curves: dict[str, np.ndarray], delta: np.ndarray
) -> tuple[dict, dict]:
    """(claim id -> measured value, further numbers) on the final models.

    Args:
        run: the trained models.
        curves: `dynamics_curves` of the run.
        delta: (S, L, H, D) CE change per domain when each head is zero-ablated (nats/byte).
    """
    attn = run.result.metrics["attn_sink"][:, -1]  # (S, D, L, H) final Attn_<s> per domain
    type_norms = final_value_norms_by_type(run)
    drain = type_norms[..., BOS] / np.nanmin(np.delete(type_norms, BOS, axis=-1), axis=-1)
    heads = [active_dormant_head(a) for a in attn]
    chosen = {"attn_dormant_domain": [], "attn_active_domain": [], "dormant": [], "active": []}
    for a, d, (layer, head, dormant) in zip(attn, delta, heads, strict=True):
        active = 1 - dormant  # the other of the two domains
        chosen["attn_dormant_domain"].append(a[dormant, layer, head])
        chosen["attn_active_domain"].append(a[active, layer, head])
        chosen["dormant"].append(abs(d[layer, head, dormant]))
        chosen["active"].append(d[layer, head, active])
    measured = {
        "sink-on-bos-in-most-heads": curves["attn_sink"][:, -1, 1:].reshape(-1),
        "domain-active-dormant-head": {
            "attn_dormant_domain": chosen["attn_dormant_domain"],
            "attn_active_domain": chosen["attn_active_domain"],
            "ablation_delta_ce": {
                "dormant_domain": chosen["dormant"],
                "active_domain": chosen["active"],
            },
        },
        "value-drain-in-most-heads": drain[:, 1:].reshape(-1),
        "residual-peak-on-bos": curves["resid_ratio"][:, -1].max(axis=1),
    }
    return measured, {"value_drain_ratio": drain, "active_dormant_head": heads}


def _heads_per_seed(cfg: CharLMConfig, delta: np.ndarray, details: dict) -> tuple[dict, dict]:
    """(seed -> the head the domain claim tests, seed -> the head whose ablation is the most
    asymmetric with its CE change per domain), from the (S, L, H, D) ablation deltas."""
    candidates = {
        str(seed): {"layer": layer, "head": head, "dormant_on": DOMAINS[dormant]}
        for seed, (layer, head, dormant) in zip(
            cfg.seeds, details["active_dormant_head"], strict=True
        )
    }
    asymmetric = {}
    for seed, d in zip(cfg.seeds, delta, strict=True):
        layer, head = most_asymmetric_head(d)
        asymmetric[str(seed)] = {
            "layer": layer,
            "head": head,
            "delta_ce": dict(zip(DOMAINS, d[layer, head].tolist(), strict=True)),
        }
    return candidates, asymmetric


def _observations(
    cfg: CharLMConfig,
    curves: dict[str, np.ndarray],
    delta: np.ndarray,
    details: dict,
) -> list[Observation]:
    """What the run shows beyond the paper's predictions (final model, per seed)."""
    candidates, asymmetric = _heads_per_seed(cfg, delta, details)
    return [
        Observation(
            "final-cross-entropy",
            f"held-out cross-entropy (nats/byte) per seed and domain {DOMAINS}",
            curves["ce"][:, -1],
        ),
        Observation(
            "uniform-attn-bos",
            "Attn_<s> of uniform causal attention over queries n >= 1 (the no-sink null)",
            np.mean(1 / np.arange(2, cfg.seq_len + 1)),
        ),
        Observation(
            "final-attn-bos",
            "final Attn_<s> per seed, layer and head (mean of the two domains)",
            curves["attn_sink"][:, -1],
        ),
        Observation(
            "final-sink-logit",
            "final logit_<s> (spec C, code definition) per seed, layer and head",
            curves["sink_logit"][:, -1],
        ),
        Observation(
            "value-drain-ratio",
            "final ||W_O v_<s>|| over the smallest other byte type's mean ||W_O v||, per seed, "
            "layer and head",
            details["value_drain_ratio"],
        ),
        Observation(
            "value-ratio-to-median",
            "final ||W_O v_0|| over the median ||W_O v_n>=1||, per seed, layer and head",
            curves["value_ratio"][:, -1],
        ),
        Observation(
            "residual-ratio-per-block",
            "final ||Res_0|| over the median ||Res_n>=1|| after each block, per seed",
            curves["resid_ratio"][:, -1],
        ),
        Observation(
            "active-dormant-candidate",
            "the head the domain claim tests (largest Attn_<s> gap between domains), per seed",
            candidates,
        ),
        Observation(
            "most-asymmetric-ablation",
            "the head whose zero-ablation changes CE most differently on prose and code, "
            "with its CE change per domain (nats/byte), per seed",
            asymmetric,
        ),
    ]


def _dynamics_figure(cfg: CharLMConfig, steps: np.ndarray, curves: dict, ctx: RunContext) -> str:
    """Attn_0, value-norm and residual-norm ratios, sink logits and CE against step (seed 0)."""
    n_cols = max(cfg.n_layers, 3)
    fig, axes = plt.subplots(3, n_cols, figsize=(3.6 * n_cols, 9.5), squeeze=False)
    for layer in range(cfg.n_layers):
        heads = range(cfg.n_heads)
        plotting.curves_panel(
            axes[0, layer],
            steps,
            {f"h{h}": curves["attn_sink"][0, :, layer, h] for h in heads},
            title=f"layer {layer}: Attn_0 (queries n >= 1)",
        )
        axes[0, layer].set_ylim(0, 1)
        plotting.curves_panel(
            axes[1, layer],
            steps,
            {f"h{h}": curves["value_ratio"][0, :, layer, h] for h in heads},
            title=f"layer {layer}: ||W_O v_0|| / median other",
        )
        axes[1, layer].set_yscale("log")
    for ax in axes[:2, cfg.n_layers :].flat:
        ax.axis("off")
    layers = range(cfg.n_layers)
    plotting.curves_panel(
        axes[2, 0],
        steps,
        {f"layer {l}": curves["resid_ratio"][0, :, l] for l in layers},
        title="||Res_0|| / median other (after each block)",
    )
    axes[2, 0].set_yscale("log")
    sink = curves["attn_sink"][0, -1]  # (L, H) final Attn_0
    top = [(l, int(np.argmax(sink[l]))) for l in layers]
    plotting.curves_panel(
        axes[2, 1],
        steps,
        {f"L{l}H{h}": curves["sink_logit"][0, :, l, h] for l, h in top},
        title="sink logit of each layer's top sink head",
    )
    plotting.curves_panel(
        axes[2, 2],
        steps,
        {f"{d} CE": curves["ce"][0, :, i] for i, d in enumerate(DOMAINS)},
        title="held-out cross-entropy (nats/byte)",
    )
    for ax in axes[2, 3:]:
        ax.axis("off")
    fig.suptitle(f"char-LM dynamics (seed {cfg.seeds[0]}, held-out prose + code)")
    fig.tight_layout()
    return ctx.save_figure(fig, "dynamics")


def _ablation_figure(
    run: TrainedCharLM, delta: np.ndarray, head: tuple[int, int], ctx: RunContext
) -> str:
    """Delta CE heatmaps per domain (seed 0) and `head`'s attention on one sample of each."""
    fig, axes = plt.subplots(1, 4, figsize=(22, 5.5))
    vmax = float(np.abs(delta).max())
    for ax, i in zip(axes[:2], (PROSE, CODE), strict=True):
        image = ax.imshow(delta[..., i], cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        for (l, h), value in np.ndenumerate(delta[..., i]):
            ax.text(h, l, f"{value:.2f}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(delta.shape[1]))
        ax.set_yticks(range(delta.shape[0]))
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_title(f"Delta CE on {DOMAINS[i]} when the head is zeroed (nats)", fontsize=10)
        fig.colorbar(image, ax=ax, shrink=0.8)
    n = min(run.cfg.n_show, run.cfg.seq_len)
    sample = CharEvalBatch(run.eval_batch.inputs[:, :1, :n], run.eval_batch.targets[:, :1, :n])
    _, trace = jax.jit(forward, static_argnums=0)(run.graphdef, run.seed_params(0), sample)
    weights = np.asarray(trace.layers[head[0]].attn.weights[:, head[1]])  # (D, n, n)
    for ax, i in zip(axes[2:], (PROSE, CODE), strict=True):
        tokens = np.asarray(sample.inputs[i, 0]).tolist()
        plotting.attention_heatmap(ax, weights[i], plotting.token_labels(tokens, BYTE_CHARS, BOS))
        ax.set_title(f"L{head[0]}H{head[1]} on a held-out {DOMAINS[i]} sample", fontsize=10)
    fig.tight_layout()
    return ctx.save_figure(fig, "head_ablation")


def run(cfg: CharLMConfig, ctx: RunContext) -> Outcome:
    trained = train_char_lm(cfg, ctx)
    steps = trained.result.eval_steps
    curves = dynamics_curves(trained.result.metrics)
    base, delta = ablation_deltas(trained)
    measured, details = measure(trained, curves, delta)
    layer, head, _ = details["active_dormant_head"][0]
    figures = [
        _dynamics_figure(cfg, steps, curves, ctx),
        _ablation_figure(trained, delta[0], (layer, head), ctx),
    ]
    summary = {
        "domains": DOMAINS,
        "eval_steps": steps,
        **curves,
        "attn_sink_by_domain": trained.result.metrics["attn_sink"],
        "ablation_base_ce": base,
        "ablation_delta_ce": delta,
        **details,
        "code_files": len(trained.corpus.code_files),
        "train_bytes": {d: len(t) for d, t in trained.corpus.train.items()},
        "data_sha256": trained.corpus.digest(),
        "train_wall_time_s": trained.result.wall_time,
        "resumed_from": trained.result.resumed_from,
    }
    observations = _observations(cfg, curves, delta, details)
    return Outcome(judge(CLAIMS, measured), figures, list(cfg.seeds), summary, observations)


EXPERIMENT = Experiment(
    name="char-lm-dynamics",
    title="LLM stand-in (Sec. 3): a byte-level LM on prose + code; sinks, drains, peaks, "
    "domain-dormant heads",
    presets=PRESETS,
    run=run,
    claims=CLAIMS,
    training_plan=training_plan,
)
