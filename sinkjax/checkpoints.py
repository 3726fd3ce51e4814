"""Atomic, resumable checkpoints of training state (orbax).

Orbax writes each checkpoint into a temporary directory and renames it when complete, so a
crash or Ctrl-C never leaves a half-written checkpoint behind. A JSON fingerprint of the run's
configuration is stored beside the arrays: resuming a different run from it is refused.
"""

import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp


class CheckpointMismatch(ValueError):
    """The checkpoint directory holds a run with another configuration."""


class Checkpointer:
    """Keeps the latest checkpoint of one run in `directory`.

    Args:
        directory: where checkpoints live (created if missing).
        fingerprint: JSON-serialisable description of the run; must match to resume.
    """

    def __init__(self, directory: str | pathlib.Path, fingerprint: dict[str, Any]):
        self.directory = pathlib.Path(directory).absolute()
        self.fingerprint = fingerprint
        options = ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state: Any) -> None:
        """Write `state` (a pytree of arrays) as the checkpoint of `step`, atomically."""
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(self.fingerprint)
            ),
        )
        self._manager.wait_until_finished()

    def restore(self, like: Any) -> tuple[int, Any]:
        """Restore the latest checkpoint into the structure, shapes and dtypes of `like`.

        Raises:
            CheckpointMismatch: when the stored fingerprint differs from this run's.
        """
        step = self._manager.latest_step()
        meta = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        if meta["meta"] != self.fingerprint:
            raise CheckpointMismatch(
                f"{self.directory} holds a checkpoint of a different run; "
                "delete it or choose another output directory"
            )
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        restored = self._manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
        )
        return step, restored["state"]

    def close(self) -> None:
        self._manager.close()
