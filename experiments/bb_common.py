"""Shared set-up of the Bigram-Backcopy experiments: config, task, training, final trace."""

import dataclasses
import pathlib

import jax
import numpy as np
from flax import nnx

from sinkjax.bb_training import BBEvalBatch, bb_train_task, make_eval_batch
from sinkjax.models import TransformerConfig
from sinkjax.optim import OptimizerConfig
from sinkjax.tasks.bb import BBTask, default_bb_task
from sinkjax.tasks.corpus_stats import count_chars
from sinkjax.train import TrainConfig, TrainResult, train

from .claims import Claim, claim_below
from .registry import RunContext


@dataclasses.dataclass(frozen=True)
class BBRunConfig:
    """A Bigram-Backcopy training run of a 1-head transformer (spec B.1 defaults = `paper`)."""

    # Optimiser steps.
    steps: int = 10_000
    # Constant AdamW learning rate.
    learning_rate: float = 3e-4
    # AdamW decoupled weight decay.
    weight_decay: float = 1e-4
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
    # Sequences in the fixed evaluation batch.
    eval_batch_size: int = 512
    # Steps per compiled chunk; evaluation points (log-spaced and evenly spaced).
    chunk_size: int = 250
    n_log_evals: int = 40
    n_linear_evals: int = 40

    def __post_init__(self):
        for name in ("steps", "n_seeds", "batch_size", "seq_len", "d_model", "n_layers"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning rate must be positive, got {self.learning_rate}")
        if self.eval_batch_size <= 0 or self.chunk_size <= 0:
            raise ValueError("eval_batch_size and chunk_size must be positive")

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
        )


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


@dataclasses.dataclass
class TrainedBB:
    """A finished BB training run and what is needed to probe it."""

    cfg: BBRunConfig
    task: BBTask
    model_cfg: TransformerConfig
    graphdef: nnx.GraphDef
    eval_batch: BBEvalBatch
    result: TrainResult

    def seed_params(self, i: int):
        return jax.tree.map(lambda leaf: leaf[i], self.result.params)

    def final_metric(self, name: str) -> np.ndarray:
        """(S, ...) the metric at the last evaluation step."""
        return self.result.metrics[name][:, -1]


def load_task(corpus: pathlib.Path | None) -> BBTask:
    """The BB task from the shipped tiny-Shakespeare counts, or from `corpus` if given."""
    if corpus is None:
        return default_bb_task()
    return BBTask.from_counts(count_chars(corpus.read_text()))


def train_bb(cfg: BBRunConfig, ctx: RunContext, label: str) -> TrainedBB:
    """Train `cfg.n_seeds` models together, resuming from checkpoint/<label> in the run folder."""
    task = load_task(ctx.corpus)
    model_cfg = cfg.model_config(task.vocab_size)
    eval_batch = make_eval_batch(task, cfg.eval_batch_size, cfg.seq_len, with_bos=cfg.with_bos)
    train_task, graphdef = bb_train_task(
        model_cfg, task, cfg.batch_size, cfg.seq_len, eval_batch, with_bos=cfg.with_bos
    )
    train_cfg = TrainConfig(
        steps=cfg.steps,
        seeds=cfg.seeds,
        chunk_size=min(cfg.chunk_size, cfg.steps),
        n_log_evals=cfg.n_log_evals,
        n_linear_evals=cfg.n_linear_evals,
        checkpoint_every=max(cfg.steps // 20, 1),
    )
    optimizer = OptimizerConfig(learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay)
    fingerprint = {"run": dataclasses.asdict(cfg), "corpus": str(ctx.corpus)}
    result = train(
        train_task,
        optimizer,
        train_cfg,
        checkpoint_dir=str(ctx.checkpoint_dir / label),
        fingerprint=fingerprint,
        progress=ctx.progress,
        description=label,
    )
    return TrainedBB(cfg, task, model_cfg, graphdef, eval_batch, result)


def final_trace(run: TrainedBB, seed_index: int = 0, n_sequences: int = 4):
    """(logits, ModelTrace) of one seed's final model on the first evaluation sequences."""
    model = nnx.merge(run.graphdef, run.seed_params(seed_index))
    logits, trace = model(run.eval_batch.inputs[:n_sequences], trace=True)
    return logits, trace


def task_learned_claims(bb: TrainedBB, prefix: str, model: str) -> list[Claim]:
    """`<prefix>-backcopy` and `<prefix>-bigram`: final excess risks below 0.05 (worst seed)."""
    return [
        claim_below(
            f"{prefix}-{kind}",
            f"{model} reaches the {kind} Bayes risk (final excess risk, worst seed)",
            float(bb.final_metric(f"{kind}_excess").max()),
            0.05,
        )
        for kind in ("backcopy", "bigram")
    ]
