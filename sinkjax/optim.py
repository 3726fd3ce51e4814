"""Optimisers of the official code, as optax transformations (spec B.1)."""

import dataclasses
from typing import Literal

import optax


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """AdamW with decoupled weight decay, or SGD with momentum and coupled (L2) weight decay.

    The defaults are the paper's AdamW: lr 3e-4 constant, betas (0.9, 0.99), eps 1e-8,
    weight decay 1e-4 on every parameter (embeddings and LayerNorm included), no schedule.
    """

    # "adamw" (torch.optim.AdamW) or "sgd" (torch.optim.SGD with momentum).
    name: Literal["adamw", "sgd"] = "adamw"
    # Constant learning rate.
    learning_rate: float = 3e-4
    # Adam first/second moment decay rates.
    b1: float = 0.9
    b2: float = 0.99
    # Adam denominator epsilon.
    eps: float = 1e-8
    # Weight decay: decoupled (scaled by lr) for AdamW, added to the gradient for SGD.
    weight_decay: float = 1e-4
    # SGD momentum (heavy ball, torch convention).
    momentum: float = 0.9

    def __post_init__(self):
        if self.name not in ("adamw", "sgd"):
            raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {self.name!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not (0 <= self.b1 < 1 and 0 <= self.b2 < 1 and 0 <= self.momentum < 1):
            raise ValueError("b1, b2 and momentum must lie in [0, 1)")


def make_optimizer(cfg: OptimizerConfig) -> optax.GradientTransformation:
    """The optax transformation equivalent to the torch optimiser named by `cfg`."""
    if cfg.name == "adamw":
        return optax.adamw(
            cfg.learning_rate, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay
        )
    return optax.chain(
        optax.add_decayed_weights(cfg.weight_decay),
        optax.sgd(cfg.learning_rate, momentum=cfg.momentum),
    )
