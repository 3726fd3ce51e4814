"""`sinkjax.train.train` with its checkpoint where the run context keeps the run."""

from typing import Any, Protocol

from experiments.framework.experiment import RunContext
from sinkjax.optim import OptimizerConfig
from sinkjax.train import TrainConfig, TrainResult, TrainTask, run_fingerprint, train


class RunLength(Protocol):
    """The length fields every run config has (`BBRunConfig`, `TextRunConfig`, ...)."""

    steps: int
    chunk_size: int
    n_log_evals: int
    n_linear_evals: int


def training_schedule(
    run: RunLength, seeds: tuple[int, ...], n_checkpoints: int, eval_at: tuple[int, ...] = ()
) -> TrainConfig:
    """`run`'s `TrainConfig`: its steps and evaluations (with the further steps `eval_at`),
    chunks no longer than the run, and a checkpoint every steps / n_checkpoints steps."""
    return TrainConfig(
        steps=run.steps,
        seeds=seeds,
        chunk_size=min(run.chunk_size, run.steps),
        n_log_evals=run.n_log_evals,
        n_linear_evals=run.n_linear_evals,
        eval_at=eval_at,
        checkpoint_every=max(run.steps // n_checkpoints, 1),
    )


def train_stored(
    task: TrainTask,
    optimizer: OptimizerConfig,
    train_cfg: TrainConfig,
    fingerprint: dict[str, Any],
    ctx: RunContext,
    label: str,
    kind: str,
) -> TrainResult:
    """Train, resuming from (or restoring) the checkpoint of this run.

    Args:
        fingerprint: everything besides `train_cfg` and `optimizer` that defines the run.
        label: the run's name in the experiment (its folder without a run store, and the
            progress bar's label).
        kind: what is trained (e.g. "bb-transformer"); names the run store's folder.
    """
    run_key = run_fingerprint(train_cfg, optimizer, fingerprint)
    with ctx.training_run(label, kind, run_key) as checkpoint_dir:
        result = train(
            task,
            optimizer,
            train_cfg,
            checkpoint_dir=str(checkpoint_dir),
            fingerprint=fingerprint,
            progress=ctx.progress,
            description=label,
        )
    ctx.placements[label] = result.placement
    return result
