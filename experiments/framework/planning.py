"""What an experiment trains at a preset, declared before it runs: the plan of a main job.

Every experiment declares its training runs (`Experiment.training_plan`): one `PlannedRun` per
call of `RunContext.training_run`, with the label and kind it passes there. The runner checks
the declaration against what each run actually opened, so a plan cannot drift from the code.

From the plan, `sinkjax reproduce --plan` prints steps and expected times, and `reproduce`
groups the experiments that share a run (equal `PlannedRun.share_key`) into one lane.
"""

import dataclasses
import hashlib
import json
from typing import Any


@dataclasses.dataclass(frozen=True)
class PlannedRun:
    """One training run of an experiment, as the plan sees it.

    Attributes:
        label: the label the experiment passes to `RunContext.training_run`.
        kind: what is trained: "bb-transformer", "text-lm", "char-lm", "chain-policy" or
            "d5-model" (the kind passed to `RunContext.training_run`).
        steps: optimiser steps (chain RL: epochs x steps per epoch, an upper bound where the
            run stops early).
        runs: runs trained together under vmap (seeds x architecture variants).
        batch_size: sequences per step and run.
        seq_len: tokens per sequence (chain RL: prompt and rollout tokens).
        n_layers: transformer blocks.
        d_model: residual width.
        vocab_size: output classes (an estimate of the unembedding's cost).
        settings: JSON text of everything that defines the run; experiments that declare
            equal (kind, settings) train it once and share it.
    """

    label: str
    kind: str
    steps: int
    runs: int
    batch_size: int
    seq_len: int
    n_layers: int
    d_model: int
    vocab_size: int
    settings: str

    @classmethod
    def of_transformer_run(
        cls,
        run: Any,
        label: str,
        kind: str,
        vocab_size: int,
        settings: dict[str, Any],
        variants: int = 1,
    ) -> "PlannedRun":
        """The plan of a transformer run config (`BBRunConfig`, `TextRunConfig`, ...: its
        steps, n_seeds, batch_size, seq_len, n_layers and d_model), trained for `variants`
        architectures at once."""
        return cls(
            label=label,
            kind=kind,
            steps=run.steps,
            runs=run.n_seeds * variants,
            batch_size=run.batch_size,
            seq_len=run.seq_len,
            n_layers=run.n_layers,
            d_model=run.d_model,
            vocab_size=vocab_size,
            settings=cls.settings_text(settings),
        )

    @staticmethod
    def settings_text(settings: dict[str, Any]) -> str:
        """`settings` as the canonical JSON text of `PlannedRun.settings`."""
        return json.dumps(settings, sort_keys=True, default=str)

    @property
    def share_key(self) -> str:
        """Equal for the runs of two experiments that are one shared training run."""
        text = json.dumps({"kind": self.kind, "settings": self.settings}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def flops_per_step(self) -> float:
        """Estimated float operations of one optimiser step of every run (forward and
        backward: 3 x the forward's 2 x parameters x tokens, plus attention's N^2 terms)."""
        weights = 12 * self.n_layers * self.d_model**2 + 2 * self.vocab_size * self.d_model
        tokens = self.batch_size * self.seq_len
        attention = 2 * 2 * self.n_layers * self.seq_len * self.d_model * tokens
        return 3.0 * (2 * weights * tokens + attention) * self.runs
