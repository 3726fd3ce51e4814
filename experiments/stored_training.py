"""`sinkjax.train.train` with its checkpoint where the run context keeps the run."""

from typing import Any

from sinkjax.optim import OptimizerConfig
from sinkjax.train import TrainConfig, TrainResult, TrainTask, run_fingerprint, train

from .registry import RunContext


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
    checkpoint_dir = ctx.checkpoint_path(
        label, kind, run_fingerprint(train_cfg, optimizer, fingerprint)
    )
    return train(
        task,
        optimizer,
        train_cfg,
        checkpoint_dir=str(checkpoint_dir),
        fingerprint=fingerprint,
        progress=ctx.progress,
        description=label,
    )
