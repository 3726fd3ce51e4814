"""Shared set-up of the Bigram-Backcopy experiments: config, task, training, final trace."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from experiments.active_dormant.official_reference import OFFICIAL_PROBE_STEPS
from experiments.framework.claims import Below, ClaimSpec
from experiments.framework.experiment import RunContext
from experiments.framework.planning import PlannedRun
from experiments.framework.stored_training import train_stored, training_schedule
from sinkjax.active_dormant.bb import BBTask, default_bb_task
from sinkjax.active_dormant.bb_training import BBEvalBatch, bb_train_task, make_eval_batch
from sinkjax.active_dormant.corpus_stats import SHIPPED_COUNTS, count_chars, shipped_counts_path
from sinkjax.interventions import Interventions
from sinkjax.models import Transformer, TransformerConfig
from sinkjax.optim import OptimizerConfig
from sinkjax.text import sources
from sinkjax.torch_init import with_official_init
from sinkjax.train import TrainResult

INITS = ("sinkjax", "official")
# What `train_bb` trains: the run store's folder kind and the plan's.
BB_KIND = "bb-transformer"
# An architecture sweep of `train_bb`: name -> (no_attn, no_ffn) of each variant.
Architectures = dict[str, tuple[tuple[int, ...], tuple[int, ...]]]


@dataclasses.dataclass(frozen=True)
class BBRunConfig:
    """A Bigram-Backcopy training run of a 1-head transformer (spec B.1 defaults = `paper`)."""

    # Optimiser steps.
    steps: int = 10_000
    # Constant learning rate.
    learning_rate: float = 3e-4
    # Weight decay: decoupled for AdamW, coupled (L2) for SGD.
    weight_decay: float = 1e-4
    # "adamw" (betas 0.9, 0.99) or "sgd" (momentum 0.9), as in the official scripts.
    optimizer: str = "adamw"
    # Independent seeds trained together (seeds base_seed, base_seed + 1, ...).
    n_seeds: int = 1
    base_seed: int = 42
    # Sequences per step and tokens per sequence.
    batch_size: int = 512
    seq_len: int = 256
    # Start every sequence with <s> (spec A.2); False starts with x[0] ~ pi0 (spec A.4, Fig. 16).
    with_bos: bool = True
    # Model width, layers and attention kind.
    d_model: int = 256
    n_layers: int = 1
    attention: str = "softmax"
    # Blocks without attention / without MLP (spec B.3).
    no_attn: tuple[int, ...] = ()
    no_ffn: tuple[int, ...] = ()
    # Sequences in the fixed evaluation batch.
    eval_batch_size: int = 512
    # Steps per compiled chunk; evaluation points (log-spaced and evenly spaced).
    chunk_size: int = 250
    n_log_evals: int = 40
    n_linear_evals: int = 40
    # Further evaluation steps (the `paper` run adds the official run's probe steps).
    eval_at: tuple[int, ...] = ()
    # Initial parameters: "sinkjax" draws them from jax.random.key(seed); "official" takes the
    # official code's draw, torch.manual_seed(seed) and PyTorch's default init (same laws,
    # other numbers; needs the `parity` extra; `sinkjax.torch_init`).
    init: str = "sinkjax"
    # Float32 matrix products in full "float32" (spec G, every preset) or "tf32" (10-bit mantissa
    # inputs: native on a GPU, emulated on the CPU; `sinkjax.precision`), to measure TF32's effect.
    matmul_precision: str = "float32"

    def __post_init__(self):
        for name in ("steps", "n_seeds", "batch_size", "seq_len", "d_model", "n_layers"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning rate must be positive, got {self.learning_rate}")
        if self.eval_batch_size <= 0 or self.chunk_size <= 0:
            raise ValueError("eval_batch_size and chunk_size must be positive")
        if self.init not in INITS:
            raise ValueError(f"init {self.init!r}; choose one of {', '.join(INITS)}")
        if any(step < 0 for step in self.eval_at):
            raise ValueError(f"eval_at steps must be >= 0, got {self.eval_at}")
        self.optimizer_config()  # validates the optimiser name
        self.model_config(vocab_size=1)  # validates the architecture

    def optimizer_config(self) -> OptimizerConfig:
        return OptimizerConfig(
            name=self.optimizer, learning_rate=self.learning_rate, weight_decay=self.weight_decay
        )

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(range(self.base_seed, self.base_seed + self.n_seeds))

    def model_config(self, vocab_size: int) -> TransformerConfig:
        return TransformerConfig(
            vocab_size=vocab_size,
            max_len=self.seq_len,
            d_model=self.d_model,
            n_layers=self.n_layers,
            d_mlp=4 * self.d_model,
            attention=self.attention,
            no_attn=tuple(self.no_attn),
            no_ffn=tuple(self.no_ffn),
            matmul_precision=self.matmul_precision,
        )


def run_settings(cfg: BBRunConfig) -> dict:
    """The `BBRunConfig` fields of `cfg` (an experiment's config may subclass it)."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(BBRunConfig)}


# The CPU presets shared by the 1-layer experiments: `ci` runs in seconds (its claims are not
# expected to hold); `quick` (d=128, N=128, lr 1e-3) reaches the paper's phenomena in minutes.
CI_RUN = BBRunConfig(
    steps=40,
    batch_size=8,
    seq_len=32,
    d_model=32,
    eval_batch_size=16,
    chunk_size=20,
    n_log_evals=8,
    n_linear_evals=4,
    learning_rate=1e-3,
)
QUICK_RUN = BBRunConfig(
    steps=1500,
    batch_size=32,
    seq_len=128,
    d_model=128,
    eval_batch_size=128,
    chunk_size=250,
    learning_rate=1e-3,
)

# The paper's 1-layer run (spec B.1, 100k steps): the official run, from its initial parameters
# (issue 18: at B = 512 the run is a function of its initial draw) and evaluated also at its
# probe steps; `bb-dynamics` and the softmax twin of `relu-attention` share it.
PAPER_LONG_RUN = BBRunConfig(
    steps=100_000,
    chunk_size=1000,
    n_log_evals=60,
    n_linear_evals=50,
    eval_at=OFFICIAL_PROBE_STEPS,
    init="official",
)


@dataclasses.dataclass
class TrainedBB:
    """A finished BB training run and what is needed to probe it.

    The result's leading axis holds the runs: the seeds, or for an architecture sweep the
    variants in order, each with every seed (run = variant * n_seeds + seed index).
    """

    cfg: BBRunConfig
    task: BBTask
    model_cfg: TransformerConfig
    graphdef: nnx.GraphDef
    eval_batch: BBEvalBatch
    result: TrainResult
    # The gates of every run for an architecture sweep (leading run axis), else None.
    gates: Interventions | None = None

    def seed_params(self, i: int):
        return jax.tree.map(lambda leaf: leaf[i], self.result.params)

    def run_gates(self, i: int) -> Interventions | None:
        return None if self.gates is None else jax.tree.map(lambda leaf: leaf[i], self.gates)

    def final_metric(self, name: str) -> np.ndarray:
        """(S, ...) the metric at the last evaluation step."""
        return self.result.metrics[name][:, -1]


def load_task(ctx: RunContext) -> BBTask:
    """The BB task from the shipped tiny-Shakespeare counts, or from the `--corpus` file
    (`ctx.corpus`) if given; the data it read is noted in `ctx.corpora`."""
    if ctx.corpus is None:
        data = shipped_counts_path().read_bytes()
        source = f"shipped bigram counts ({SHIPPED_COUNTS}, derived from tiny Shakespeare)"
        task = default_bb_task()
    else:
        data = ctx.corpus.read_bytes()
        source, task = str(ctx.corpus), BBTask.from_counts(count_chars(ctx.corpus.read_text()))
    ctx.corpora["bigram counts"] = sources.describe(sources.Text(data, source))
    return task


def train_bb(
    cfg: BBRunConfig,
    ctx: RunContext,
    label: str,
    architectures: Architectures | None = None,
) -> TrainedBB:
    """Train `cfg.n_seeds` models together, or resume / restore them from their checkpoint.

    The checkpoint is checkpoint/<label> in the run folder, or the run store's folder of this
    run when the context has one (see `RunContext.checkpoint_path`).

    Args:
        architectures: for a sweep, name -> (no_attn, no_ffn) of each variant of the
            `cfg.n_layers`-block model; every variant is trained with every seed, all in one
            compiled program (the variants are sub-layer gates, see `Interventions.architecture`).
    """
    task = load_task(ctx)
    model_cfg = cfg.model_config(task.vocab_size)
    eval_batch = make_eval_batch(task, cfg.eval_batch_size, cfg.seq_len, with_bos=cfg.with_bos)
    seeds, gates = cfg.seeds, None
    if architectures is not None:
        per_variant = [
            Interventions.architecture(cfg.n_layers, model_cfg.n_heads, no_attn, no_ffn)
            for no_attn, no_ffn in architectures.values()
        ]
        per_run = [g for g in per_variant for _ in cfg.seeds]
        gates = jax.tree.map(lambda *leaves: jnp.stack(leaves), *per_run)
        seeds = cfg.seeds * len(architectures)
    train_task, graphdef = bb_train_task(
        model_cfg,
        task,
        cfg.batch_size,
        cfg.seq_len,
        eval_batch,
        with_bos=cfg.with_bos,
        architectures=gates,
        initial_params=official_inits(model_cfg, seeds) if cfg.init == "official" else None,
    )
    train_cfg = training_schedule(cfg, seeds, n_checkpoints=20, eval_at=cfg.eval_at)
    fingerprint = {**bb_run_key(cfg, architectures), "corpus": str(ctx.corpus)}
    optimizer = cfg.optimizer_config()
    result = train_stored(train_task, optimizer, train_cfg, fingerprint, ctx, label, BB_KIND)
    return TrainedBB(cfg, task, model_cfg, graphdef, eval_batch, result, gates)


def bb_run_key(cfg: BBRunConfig, architectures: Architectures | None = None) -> dict:
    """What defines a `train_bb` run besides the corpus: the BBRunConfig fields only (an
    experiment's own fields do not change the run, so experiments that train the same run
    share it through the run store) and the architecture sweep."""
    return {"run": run_settings(cfg), "architectures": architectures}


@functools.cache
def default_bb_vocab_size() -> int:
    """The vocabulary of the shipped BB task (a `--corpus` task may differ; plans use this)."""
    return default_bb_task().vocab_size


def bb_planned_run(
    cfg: BBRunConfig, label: str, architectures: Architectures | None = None
) -> PlannedRun:
    """The run `train_bb(cfg, ctx, label, architectures)` opens, as the plan sees it."""
    variants = 1 if architectures is None else len(architectures)
    settings = bb_run_key(cfg, architectures)
    return PlannedRun.of_transformer_run(
        cfg, label, BB_KIND, default_bb_vocab_size(), settings, variants
    )


def official_inits(model_cfg: TransformerConfig, seeds: tuple[int, ...]):
    """The official code's initial parameters of every run, stacked on a leading run axis."""
    template = nnx.state(Transformer(model_cfg, rngs=nnx.Rngs(0)))
    inits = [with_official_init(template, model_cfg, seed) for seed in seeds]
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *inits)


def final_trace(run: TrainedBB, seed_index: int = 0, n_sequences: int = 4):
    """(logits, ModelTrace) of one seed's final model on the first evaluation sequences."""
    model = nnx.merge(run.graphdef, run.seed_params(seed_index))
    inputs = run.eval_batch.inputs[:n_sequences]
    logits, trace = model(inputs, run.run_gates(seed_index), trace=True)
    return logits, trace


# "Reaches the Bayes risk" / "excess risk ~0" (spec E3-E5) made numeric: below 0.05 nats.
BAYES_EXCESS_BOUND = 0.05


def task_learned_specs(prefix: str, model: str, source: str) -> list[ClaimSpec]:
    """`<prefix>-backcopy` and `<prefix>-bigram`: `model` reaches both Bayes risks (final
    excess risk below 0.05 nats, every seed); `source` names the paper and spec lines."""
    return [
        ClaimSpec(
            f"{prefix}-{kind}",
            f"{model} reaches the {kind} Bayes risk: final excess risk below "
            f"{BAYES_EXCESS_BOUND:g} nats ('~0'), every seed",
            source,
            Below(BAYES_EXCESS_BOUND),
        )
        for kind in ("backcopy", "bigram")
    ]


def task_learned_measured(bb: TrainedBB, prefix: str) -> dict[str, np.ndarray]:
    """The measured values of `task_learned_specs(prefix, ...)`: final excess risks, (S,)."""
    return {
        f"{prefix}-{kind}": bb.final_metric(f"{kind}_excess") for kind in ("backcopy", "bigram")
    }
