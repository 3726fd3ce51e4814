"""Typed configuration of the decoder-only transformer zoo."""

import dataclasses
from typing import Literal, get_args

AttentionKind = Literal["softmax", "relu", "sigmoid", "softmax_kbias"]
PositionKind = Literal["learned", "sinusoidal", "rope", "alibi", "none"]
MLPActivation = Literal["relu", "gelu_new"]
InitScheme = Literal["torch", "flax"]
MatmulPrecision = Literal["float32", "tf32"]


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """Static description of a pre-LN decoder (everything here changes the compiled graph).

    The defaults are the 1-layer model of the active-dormant paper (spec B.1): d=256, one head,
    no biases, MLP width 4d, learned absolute positions, final LayerNorm and an untied head.
    Every other option (training-time variants T1-T3 of the sinks spec) creates its parameters
    only when switched on, so the default model's parameters and init RNG stream never change.
    GPT-2 is `use_bias=True, mlp_activation="gelu_new", tie_embeddings=True` (see `gpt2.py`).
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
    # Hidden width of the two-layer MLP.
    d_mlp: int = 1024
    # Blocks whose attention sub-layer is removed from the architecture (h = x).
    no_attn: tuple[int, ...] = ()
    # Blocks whose MLP sub-layer is removed from the architecture (out = h).
    no_ffn: tuple[int, ...] = ()
    # How scores s_ij = q_i.k_j / sqrt(d_head) become weights w_ij (j <= i):
    # "softmax"; "relu": w_ij = ReLU(s_ij) / (i + 1), rows not normalised (spec B.2);
    # "sigmoid": w_ij = sigmoid(s_ij), no normalisation (Gu et al.'s "sigmoid w/o norm");
    # "softmax_kbias": softmax over an extra key slot with a learnable per-head key k* and value 0
    # (Gu et al.'s "K bias"; not the key projection's bias b_K, see `key_bias`).
    attention: AttentionKind = "softmax"
    # Positional encoding: "learned" absolute table, fixed "sinusoidal" (added to the embedding),
    # "rope" (rotary, on q and k), "alibi" (linear bias on the scores), or "none" (NoPE).
    positions: PositionKind = "learned"
    # Base of the rotary frequencies theta_i = rope_base^(-2i / d_head) (only for "rope").
    rope_base: float = 10000.0
    # A learnable sink token: a learned embedding prepended to every sequence as an extra stream
    # position before token 0; it is processed by every block (ReLU attention counts it as a
    # visible key) and dropped from the logits. Traces show it as the extra key slot.
    sink_token: bool = False
    # Activation of the MLP: "relu", or "gelu_new" (GPT-2's tanh approximation of GELU).
    mlp_activation: MLPActivation = "relu"
    # Tie the output head to the token embedding (logits = LN(x) E^T, no head bias).
    tie_embeddings: bool = False
    # Biases on every Linear layer (Q, K, V, O, MLP, untied head).
    use_bias: bool = False
    # Bias b_Q on the query projection; None follows `use_bias`.
    query_bias: bool | None = None
    # Bias b_K on the key projection; None follows `use_bias`.
    key_bias: bool | None = None
    # Bias b_V on the value projection; None follows `use_bias`.
    value_bias: bool | None = None
    # "torch": PyTorch defaults (N(0,1) embeddings, U(+-1/sqrt(fan_in)) linears); "flax": Flax's.
    init: InitScheme = "torch"
    # LayerNorm epsilon (PyTorch default).
    ln_eps: float = 1e-5
    # Float32 matrix products (forward and backward) in full "float32" or in "tf32" (10-bit
    # mantissa inputs, float32 accumulation: native on a GPU, emulated elsewhere; see
    # `sinkjax.precision`). The experiments use float32 (spec G).
    matmul_precision: MatmulPrecision = "float32"

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
        for name, kind in (
            ("attention", AttentionKind),
            ("positions", PositionKind),
            ("mlp_activation", MLPActivation),
            ("init", InitScheme),
            ("matmul_precision", MatmulPrecision),
        ):
            if getattr(self, name) not in get_args(kind):
                raise ValueError(
                    f"{name} must be one of {get_args(kind)}, got {getattr(self, name)!r}"
                )
        if self.positions == "sinusoidal" and self.d_model % 2:
            raise ValueError(f"sinusoidal positions need an even d_model, got {self.d_model}")
        if self.positions == "rope" and self.d_head % 2:
            raise ValueError(f"rope needs an even d_head = d_model // n_heads, got {self.d_head}")
        if self.positions == "rope" and self.rope_base <= 1:
            raise ValueError(f"rope_base must be > 1, got {self.rope_base}")
        if self.sink_token and self.attention == "softmax_kbias":
            raise ValueError(
                "sink_token and attention='softmax_kbias' both add an extra key slot; pick one"
            )

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def normalised_attention(self) -> bool:
        """Whether each query's weights on the keys (and any extra slot) sum to 1."""
        return self.attention in ("softmax", "softmax_kbias")

    @property
    def has_query_bias(self) -> bool:
        return self.use_bias if self.query_bias is None else self.query_bias

    @property
    def has_key_bias(self) -> bool:
        return self.use_bias if self.key_bias is None else self.key_bias

    @property
    def has_value_bias(self) -> bool:
        return self.use_bias if self.value_bias is None else self.value_bias

    def has_attn(self, layer: int) -> bool:
        return layer not in self.no_attn

    def has_ffn(self, layer: int) -> bool:
        return layer not in self.no_ffn
