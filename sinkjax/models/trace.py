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
    """What an attention sub-layer computed (float32), over the N token positions.

    Variants with an extra key slot (`attention="softmax_kbias"`: the learnable key k* with value
    0; `sink_token=True`: the prepended sink token) keep the N x N layout below for the token
    keys and report the slot separately, so a softmax row satisfies
    `weights.sum(-1) + slot_weights == 1`. The sink token's own query row, value and residual
    stream are not traced.

    Attributes:
        logits: (B, H, N, N) scores fed to the weight function, before the causal mask:
            q.k / sqrt(d_head) (q and k rotated under RoPE), plus the ALiBi bias under ALiBi.
        weights: (B, H, N, N) attention weights on the token keys; zero above the diagonal.
        values: (B, N, H, d_head) value states v = W_V LN(x) (+ b_V), before W_O.
        value_out: (B, N, H, d) each head's value pushed through its slice of W_O (no bias).
        slot_logits: (B, H, N) score of each query on the extra key slot, or None without one.
        slot_weights: (B, H, N) weight of each query on the extra key slot, or None without one.
    """

    logits: Float[Array, "B H N N"]
    weights: Float[Array, "B H N N"]
    values: Float[Array, "B N H dh"]
    value_out: Float[Array, "B N H d"]
    slot_logits: Float[Array, "B H N"] | None = None
    slot_weights: Float[Array, "B H N"] | None = None

    def without_first_position(self) -> "AttentionTrace":
        """Re-express a trace over a stream whose position 0 is a slot (the sink token).

        Queries and keys at stream position 0 are dropped; the keys' column 0 becomes the slot.
        """
        return AttentionTrace(
            logits=self.logits[..., 1:, 1:],
            weights=self.weights[..., 1:, 1:],
            values=self.values[:, 1:],
            value_out=self.value_out[:, 1:],
            slot_logits=self.logits[..., 1:, 0],
            slot_weights=self.weights[..., 1:, 0],
        )


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

    def without_first_position(self) -> "LayerTrace":
        """Drop stream position 0 (the sink token) from every field, see `AttentionTrace`."""
        return LayerTrace(
            None if self.attn is None else self.attn.without_first_position(),
            self.resid_mid[:, 1:],
            self.resid_post[:, 1:],
        )


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ModelTrace:
    """Activations of a whole forward pass.

    Attributes:
        embed: (B, N, d) token plus position embedding (the residual stream entering block 0);
            zero position embedding under RoPE, ALiBi and NoPE.
        layers: one `LayerTrace` per block.
    """

    embed: Float[Array, "B N d"]
    layers: tuple[LayerTrace, ...]
