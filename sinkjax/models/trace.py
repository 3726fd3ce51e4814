"""Per-layer activations returned by one traced forward pass (no second pass for probes).

Traces are plain pytrees, so they pass through `jit`, `vmap` and `lax.cond` unchanged. Inside
a jitted probe function XLA drops every field the probe does not read.
"""

import dataclasses

import jax
from jaxtyping import Array, Float


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class AttentionTrace:
    """What an attention sub-layer computed (float32).

    Attributes:
        logits: (B, H, N, N) scaled scores q.k / sqrt(d_head), before the causal mask.
        weights: (B, H, N, N) attention weights; zero above the diagonal.
        values: (B, N, H, d_head) value states v = W_V LN(x) (+ b_V), before W_O.
        value_out: (B, N, H, d) each head's value pushed through its slice of W_O (no bias).
    """

    logits: Float[Array, "B H N N"]
    weights: Float[Array, "B H N N"]
    values: Float[Array, "B N H dh"]
    value_out: Float[Array, "B N H d"]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LayerTrace:
    """One block's activations.

    Attributes:
        attn: the attention trace, or None for a block without attention (`no_attn`).
        resid_mid: (B, N, d) residual stream after the attention sub-layer.
        resid_post: (B, N, d) residual stream after the whole block (before the final LN).
    """

    attn: AttentionTrace | None
    resid_mid: Float[Array, "B N d"]
    resid_post: Float[Array, "B N d"]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ModelTrace:
    """Activations of a whole forward pass.

    Attributes:
        embed: (B, N, d) token plus position embedding (the residual stream entering block 0).
        layers: one `LayerTrace` per block.
    """

    embed: Float[Array, "B N d"]
    layers: tuple[LayerTrace, ...]
