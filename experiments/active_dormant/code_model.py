"""The official code's simplified model (spec D.5) trained with AdamW on BB batches, and the
spec D.1 instance of the BB statistics: shared by `theorem3` (observations) and
`simplified-adam` (its E10 claims), which restore the same stored run.
"""

import dataclasses

import numpy as np

import theory
from experiments.active_dormant.bb_common import default_bb_vocab_size
from experiments.framework.experiment import RunContext
from experiments.framework.planning import PlannedRun
from experiments.framework.stored_training import train_stored
from sinkjax.active_dormant.bb import BBTask
from sinkjax.active_dormant.bb_training import code_simple_train_task, make_eval_batch
from sinkjax.optim import OptimizerConfig
from sinkjax.train import TrainConfig, TrainResult, run_fingerprint

# The D.5 run's label and the run store's kind.
CODE_MODEL_LABEL, CODE_MODEL_KIND = "code-model", "d5-model"


@dataclasses.dataclass(frozen=True)
class CodeModelRun:
    """One D.5 training run: AdamW steps and learning rate, and the batch shapes."""

    steps: int
    learning_rate: float
    batch_size: int
    seq_len: int
    eval_batch_size: int


def code_model_schedule(run: CodeModelRun) -> tuple[OptimizerConfig, TrainConfig]:
    """The optimiser (AdamW, wd 1e-4) and schedule of the spec D.5 run."""
    optimizer = OptimizerConfig(learning_rate=run.learning_rate, weight_decay=1e-4)
    train_cfg = TrainConfig(
        steps=run.steps,
        chunk_size=min(250, run.steps),
        n_log_evals=40,
        n_linear_evals=20,
        checkpoint_every=max(run.steps // 10, 1),
    )
    return optimizer, train_cfg


def code_model_key(run: CodeModelRun) -> dict:
    """What shapes the D.5 run besides its schedule and optimiser (which `train` adds) and the
    corpus: the batch shape only, so theorem3's GD settings (--steps, --lr) leave the code
    model's run alone, and simplified-adam shares it."""
    return {
        "batch": [run.batch_size, run.seq_len],
        "eval_batch_size": run.eval_batch_size,
    }


def train_code_model(run: CodeModelRun, task: BBTask, ctx: RunContext) -> TrainResult:
    """The spec D.5 model under AdamW (wd 1e-4) on fresh BB batches, resumable from ctx."""
    eval_batch = make_eval_batch(task, run.eval_batch_size, run.seq_len)
    train_task, _ = code_simple_train_task(task, run.batch_size, run.seq_len, eval_batch)
    optimizer, train_cfg = code_model_schedule(run)
    fingerprint = {**code_model_key(run), "corpus": str(ctx.corpus)}
    return train_stored(
        train_task, optimizer, train_cfg, fingerprint, ctx, CODE_MODEL_LABEL, CODE_MODEL_KIND
    )


def code_model_planned_run(run: CodeModelRun) -> PlannedRun:
    """The run `train_code_model(run, ...)` opens, as the plan sees it: one 1-block model whose
    residual width is the vocabulary (one-hot tokens); its settings are the run's fingerprint
    (schedule, optimiser and batch shape) without the corpus."""
    optimizer, train_cfg = code_model_schedule(run)
    vocab = default_bb_vocab_size()
    return PlannedRun(
        label=CODE_MODEL_LABEL,
        kind=CODE_MODEL_KIND,
        steps=train_cfg.steps,
        runs=len(train_cfg.seeds),
        batch_size=run.batch_size,
        seq_len=run.seq_len,
        n_layers=1,
        d_model=vocab,
        vocab_size=vocab,
        settings=PlannedRun.settings_text(
            run_fingerprint(train_cfg, optimizer, code_model_key(run))
        ),
    )


def bb_problem(task: BBTask, context_len: int) -> theory.SimplifiedProblem:
    """The spec D.1 instance of the BB statistics, over the characters (no `<s>`, `<d>`).

    P = the bigram rows (renormalised in float64), pi = pi0 (the non-trigger unigram, so the
    triggers are out of the loss), xi = 1 on non-triggers and 0 on triggers, and W_k = the
    unigram count of token k in a context of `context_len` tokens, rounded (rare tokens get 0).
    """
    n = task.bos
    transition = np.asarray(task.transition, np.float64)[:n, :n]
    trigger = np.asarray(task.trigger_mask)[:n]
    pi = np.asarray(task.pi0, np.float64)[:n]
    return theory.SimplifiedProblem(
        P=transition / transition.sum(axis=1, keepdims=True),
        pi=pi / pi.sum(),
        W=np.round(context_len * np.asarray(task.unigram, np.float64)[:n]),
        xi=np.where(trigger, 0.0, 1.0),
    )
