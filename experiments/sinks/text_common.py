"""Training runs of the GPT-2-style character LM shared by the sink-circuit experiments."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from experiments.framework.claims import Above
from experiments.framework.experiment import RunContext
from experiments.framework.planning import PlannedRun
from experiments.framework.runner import UsageError
from experiments.framework.stored_training import train_stored, training_schedule
from sinkjax.interventions import Interventions
from sinkjax.models import Transformer, TransformerConfig
from sinkjax.optim import OptimizerConfig
from sinkjax.sinks import circuit as sink_circuit
from sinkjax.sinks.toy_lm import SINK_EPS, text_lm_train_task, toy_gpt2_config
from sinkjax.text.domains import (
    TEXT_DOMAINS,
    TextBatch,
    TextConfig,
    TextCorpus,
    TextStream,
    load_text_corpus,
    make_text_eval_batch,
    vocab_size,
)
from sinkjax.train import TrainResult, TrainTask

SPEC = "sinks_gpt2_p0.md"
# "A sink on token 0", shared by the sink experiments on the toy: P1's BOS attention (M4: the
# late queries i >= T//2, the spec's band [L//4, L-1)) above Gu's sink threshold (P3 §3(a),
# M3: eps = 0.3, "strict yet insensitive to T"; P1's GPT-2 has 0.539-0.599 per dataset).
SINK_RULE = Above(SINK_EPS)
SINK_READING = (
    f"'a sink' read with Gu's threshold eps = {SINK_EPS:g}: P1's BOS attention (M4: queries "
    f"i >= T//2 on token 0, the spec's layer band [L//4, L-1)) above {SINK_EPS:g}"
)
SINK_SOURCE = "M4, M3 and §3(a) (eps = 0.3)"
# What `train_text_lm` trains: the run store's folder kind and the plan's.
TEXT_KIND = "text-lm"


@dataclasses.dataclass(frozen=True)
class TextRunConfig:
    """A next-token training run of the toy GPT-2 (spec sinks_gpt2_p0.md §5) on prose, code
    and math, with the probes of `text_lm_metrics` recorded along training."""

    # AdamW steps, constant learning rate and decoupled weight decay (spec §5 recipe 2: a
    # higher lr and wd about 0.5 push a toy model towards a sink).
    steps: int = 20_000
    learning_rate: float = 1e-3
    weight_decay: float = 0.1
    # Windows per step and tokens per window.
    batch_size: int = 64
    seq_len: int = 64
    # Every window starts with the fixed <s> token (spec §5 recipe 1).
    with_bos: bool = True
    # Sampling weights of the prose, code and math windows.
    domain_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    # The model: blocks, width d, heads.
    n_layers: int = 6
    d_model: int = 256
    n_heads: int = 4
    # The GPT-2 toy or one of its variants (`sinkjax.sinks.toy_lm.ARCHITECTURES`).
    architecture: str = "gpt2"
    # Held-out windows per domain in the evaluation batch, and the evaluation schedule.
    eval_batch_size: int = 64
    chunk_size: int = 250
    n_log_evals: int = 20
    n_linear_evals: int = 20
    # Seeds trained together (vmapped): base_seed, base_seed + 1, ...
    n_seeds: int = 1
    base_seed: int = 0

    def __post_init__(self):
        for name in ("steps", "batch_size", "seq_len", "n_layers", "d_model", "n_heads"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("eval_batch_size", "chunk_size", "n_seeds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning rate must be positive, got {self.learning_rate}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if len(self.domain_weights) != len(TEXT_DOMAINS) or min(self.domain_weights) < 0:
            raise ValueError("domain_weights needs 3 non-negative weights (prose, code, math)")
        if self.n_layers < 2:
            raise ValueError("n_layers must be at least 2 (the BOS-attention band needs it)")
        self.model_config()  # validates d_model / n_heads

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(range(self.base_seed, self.base_seed + self.n_seeds))

    def training_run(self) -> "TextRunConfig":
        """Just the run's fields (an experiment's config may subclass this one): what
        `train_text_lm` fingerprints, so experiments with the same run share it."""
        return TextRunConfig(**text_run_settings(self))

    def model_config(self) -> TransformerConfig:
        return toy_gpt2_config(
            vocab_size(True),  # the <s> id exists in the table whether or not it is used
            n_layers=self.n_layers,
            d_model=self.d_model,
            n_heads=self.n_heads,
            max_len=self.seq_len,
            architecture=self.architecture,
        )


# The runs the sink experiments share (gpt2-circuit, sink-dynamics, p0-circuit train the same
# model at each preset, so `sinkjax reproduce` trains it once through the run store). Quick:
# the spec §5 toy with recipes 1 (fixed <s>) and 2 (lr 3e-3, about 3x the usual 1e-3, and
# wd 0.5); 1,500 steps of 32 x 64 tokens (3.1M tokens).
CI_TEXT_RUN = TextRunConfig(
    steps=30,
    batch_size=8,
    seq_len=24,
    n_layers=2,
    d_model=32,
    n_heads=2,
    eval_batch_size=4,
    chunk_size=10,
    n_log_evals=4,
    n_linear_evals=2,
)
QUICK_TEXT_RUN = TextRunConfig(
    steps=1500,
    learning_rate=3e-3,
    weight_decay=0.5,
    batch_size=32,
    seq_len=64,
    n_layers=4,
    d_model=128,
    n_heads=4,
    eval_batch_size=32,
    n_log_evals=10,
    n_linear_evals=10,
)
# The shorter quick runs of sink-dispensability's seven variants (p0-circuit's BOS run is its
# rope variant): 400 steps each keeps the whole `reproduce --preset quick` within 45 minutes.
QUICK_VARIANT_STEPS = 400


@dataclasses.dataclass(frozen=True)
class AnalysedTextRunConfig(TextRunConfig):
    """A run whose trained model is analysed on P1-style inputs: `n_examples` held-out windows
    of `analysis_len` tokens per domain."""

    # Tokens per analysed input (P1: T = 40) and held-out inputs per domain (P1: 100).
    analysis_len: int = 40
    n_examples: int = 100

    def __post_init__(self):
        super().__post_init__()
        if not 2 <= self.analysis_len <= self.seq_len:
            raise ValueError(
                f"analysis_len must lie in [2, seq_len = {self.seq_len}], got {self.analysis_len}"
            )
        if self.n_examples < 2:
            raise ValueError(f"n_examples must be at least 2 (for a SE), got {self.n_examples}")

    def analysis_batch(self, corpus: TextCorpus) -> TextBatch:
        """The (D, n_examples, analysis_len) held-out inputs (seed 1, apart from training's
        evaluation batch), with `<s>` when the run has it."""
        return make_text_eval_batch(
            corpus, self.n_examples, self.analysis_len, with_bos=self.with_bos, seed=1
        )


def text_run_settings(cfg: TextRunConfig) -> dict:
    """The `TextRunConfig` fields of `cfg` (an experiment's config may subclass it)."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(TextRunConfig)}


@dataclasses.dataclass
class TrainedTextLM:
    """A finished run: its config, data, model graph, evaluation batch and `TrainResult`."""

    cfg: TextRunConfig
    corpus: TextCorpus
    graphdef: nnx.GraphDef
    eval_batch: TextBatch
    result: TrainResult

    def model(self, seed_index: int = 0) -> Transformer:
        """The trained model of one seed."""
        return nnx.merge(self.graphdef, self.seed_params(seed_index))

    def seed_params(self, i: int):
        return jax.tree.map(lambda leaf: leaf[i], self.result.params)


@functools.cache
def _corpus(prose_path) -> TextCorpus:
    return load_text_corpus(TextConfig(prose_path=prose_path))


def load_corpus(ctx: RunContext) -> TextCorpus:
    """Prose (`--prose`, else the stdlib docstrings), code and math, loaded once per process,
    and noted in the experiment's record (`ctx.corpora`).

    Raises:
        UsageError: the --prose file is missing (one line, exit 2).
    """
    try:
        corpus = _corpus(ctx.prose)
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None
    ctx.corpora.update(corpus.texts)
    return corpus


def text_run_task(
    cfg: TextRunConfig, corpus: TextCorpus, eval_batch: TextBatch
) -> tuple[TrainTask, nnx.GraphDef]:
    """`cfg`'s next-token `TrainTask` on the corpus's training parts, evaluated on
    `eval_batch` (`text_lm_train_task`), and the model's graphdef."""
    return text_lm_train_task(
        cfg.model_config(),
        TextStream.from_parts(corpus.train),
        cfg.batch_size,
        cfg.seq_len,
        jnp.asarray(cfg.domain_weights, jnp.float32),
        eval_batch,
        with_bos=cfg.with_bos,
    )


def train_text_lm(cfg: TextRunConfig, ctx: RunContext, label: str) -> TrainedTextLM:
    """Train (or resume / restore from the run store) every seed of `cfg` together."""
    corpus = load_corpus(ctx)
    eval_batch = make_text_eval_batch(
        corpus, cfg.eval_batch_size, cfg.seq_len, with_bos=cfg.with_bos
    )
    task, graphdef = text_run_task(cfg, corpus, eval_batch)
    train_cfg = training_schedule(cfg, cfg.seeds, n_checkpoints=10)
    optimizer = OptimizerConfig(learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay)
    fingerprint = {"run": text_run_settings(cfg), "data_sha256": corpus.digest()}
    result = train_stored(task, optimizer, train_cfg, fingerprint, ctx, label, TEXT_KIND)
    return TrainedTextLM(cfg, corpus, graphdef, eval_batch, result)


def text_planned_run(cfg: TextRunConfig, label: str) -> PlannedRun:
    """The run `train_text_lm(cfg, ctx, label)` opens, as the plan sees it (its settings are
    the run's fields; the corpus is left out)."""
    vocab_size = cfg.model_config().vocab_size
    return PlannedRun.of_transformer_run(cfg, label, TEXT_KIND, vocab_size, text_run_settings(cfg))


def domain_scores(
    model: Transformer,
    inputs: np.ndarray,
    targets: np.ndarray,
    interventions: dict[str, Interventions],
    chunk: int | None = None,
) -> dict[str, np.ndarray]:
    """Every intervention on (D, n, T) inputs (and their next-token targets), domain by domain.

    Args:
        interventions: G named interventions, the baseline first.
        chunk: examples per compiled call, with one intervention per pass (for models whose
            G x n x T x V logits do not fit in memory, e.g. GPT-2 small); None runs each
            domain in one call with every intervention vmapped.

    Returns:
        (G, D, n) arrays per example, in the order of `interventions`: `bos` the BOS attention
        (M4), `ce` the mean cross-entropy (nats), `slot` the extra key slot's weight (0
        without a slot); and `names` (G,).
    """
    grid = list(interventions.values())
    n = inputs.shape[1]
    step = chunk or n
    fields = {"bos": "bos_attention", "ce": "cross_entropy", "slot": "slot_attention"}
    per_domain = {key: [] for key in fields}
    for d in range(inputs.shape[0]):
        parts = [
            sink_circuit.score_interventions(
                model,
                jnp.asarray(inputs[d, i : i + step]),
                jnp.asarray(targets[d, i : i + step]),
                grid,
                per_pass=1 if chunk else None,
            )
            for i in range(0, n, step)
        ]
        for key, field in fields.items():
            values = [np.asarray(getattr(part, field)) for part in parts]
            per_domain[key].append(np.concatenate(values, axis=1))
    return {
        **{key: np.stack(values, 1) for key, values in per_domain.items()},
        "names": list(interventions),
    }


def table_rows(scores: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Per intervention of `domain_scores`: (D,) mean and SE of the BOS attention, % of the
    baseline (the first intervention) and the change in cross-entropy (nats)."""
    bos, ce = scores["bos"], scores["ce"]
    mean, n = bos.mean(-1), bos.shape[-1]
    se = bos.std(-1, ddof=1) / np.sqrt(n)
    return {
        name: {
            "bos_mean": mean[g],
            "bos_se": se[g],
            "percent_of_baseline": 100 * mean[g] / mean[0],
            "delta_ce": ce[g].mean(-1) - ce[0].mean(-1),
        }
        for g, name in enumerate(scores["names"])
    }
