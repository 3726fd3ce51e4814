"""Typed configuration of the decoder-only transformer zoo."""

import dataclasses
from typing import Literal

AttentionKind = Literal["softmax", "relu"]
InitScheme = Literal["torch", "flax"]


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """Static description of a pre-LN decoder (everything here changes the compiled graph).

    The defaults are the 1-layer model of the active-dormant paper (spec B.1): d=256, one head,
    no biases, MLP width 4d, learned absolute positions, final LayerNorm and an untied head.
    """

    # Token vocabulary size V (65 characters + <s> + <d> for Bigram-Backcopy).
    vocab_size: int = 67
    # Longest sequence the learned position table covers (tokens).
    max_len: int = 256
    # Residual-stream width d.
    d_model: int = 256
    # Number of transformer blocks.
    n_layers: int = 1
    # Attention heads per block; each has width d_model // n_heads.
    n_heads: int = 1
    # Hidden width of the two-layer ReLU MLP.
    d_mlp: int = 1024
    # Blocks whose attention sub-layer is removed from the architecture (h = x).
    no_attn: tuple[int, ...] = ()
    # Blocks whose MLP sub-layer is removed from the architecture (out = h).
    no_ffn: tuple[int, ...] = ()
    # "softmax" attention, or "relu": w_ij = ReLU(s_ij) / (i + 1), rows not normalised (spec B.2).
    attention: AttentionKind = "softmax"
    # Biases on every Linear layer (Q, K, V, O, MLP, head).
    use_bias: bool = False
    # Bias on the query projection alone; None follows `use_bias`.
    query_bias: bool | None = None
    # "torch": PyTorch defaults (N(0,1) embeddings, U(+-1/sqrt(fan_in)) linears); "flax": Flax's.
    init: InitScheme = "torch"
    # LayerNorm epsilon (PyTorch default).
    ln_eps: float = 1e-5

    def __post_init__(self):
        for name in ("vocab_size", "max_len", "d_model", "n_layers", "n_heads", "d_mlp"):
            if getattr(self, name) <= 0:
                raise ValueError(
                    f"TransformerConfig.{name} must be positive, got {getattr(self, name)}"
                )
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}; "
                "pick n_heads dividing d_model"
            )
        for name in ("no_attn", "no_ffn"):
            bad = [i for i in getattr(self, name) if not 0 <= i < self.n_layers]
            if bad:
                raise ValueError(f"{name} has layer indices {bad} outside 0..{self.n_layers - 1}")
        if self.attention not in ("softmax", "relu"):
            raise ValueError(f"attention must be 'softmax' or 'relu', got {self.attention!r}")
        if self.init not in ("torch", "flax"):
            raise ValueError(f"init must be 'torch' or 'flax', got {self.init!r}")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def has_query_bias(self) -> bool:
        return self.use_bias if self.query_bias is None else self.query_bias

    def has_attn(self, layer: int) -> bool:
        return layer not in self.no_attn

    def has_ffn(self, layer: int) -> bool:
        return layer not in self.no_ffn
