"""Interventions as data: one compiled forward pass serves every ablation.

An `Interventions` value is a pytree of float arrays passed to the model call, so new
ablations never retrace and a grid of them can be `vmap`ped (the penzai knock-out idiom).
"""

import dataclasses

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Interventions:
    """Multiplicative gates on the sub-layers of an L-layer, H-head model.

    Attributes:
        attn_scale: (L, H). Scales each head's mixed values `z = A v` before W_O. 0 zeroes the
            head's attention weights (the "No Attn" hook of the official code); the output
            bias of W_O, if any, is kept.
        mlp_scale: (L,). Scales the MLP output before it is added to the residual; 0 removes it.
    """

    attn_scale: Float[Array, "L H"]
    mlp_scale: Float[Array, " L"]

    @classmethod
    def none(cls, n_layers: int, n_heads: int) -> "Interventions":
        """The identity intervention (all gates open)."""
        return cls(jnp.ones((n_layers, n_heads)), jnp.ones((n_layers,)))

    @classmethod
    def architecture(
        cls,
        n_layers: int,
        n_heads: int,
        no_attn: tuple[int, ...] = (),
        no_ffn: tuple[int, ...] = (),
    ) -> "Interventions":
        """Gates that turn the full L-block model into the architecture without the given
        sub-layers (`no_attn`, `no_ffn`: block indices).

        For a model without a W_O bias, training under these gates is training that
        architecture: a closed gate passes no signal forward and no gradient back. Several
        architectures then share one parameter shape and train together in one `vmap`.
        """
        gates = cls.none(n_layers, n_heads)
        for layer in no_attn:
            gates = gates.zero_attention(layer)
        for layer in no_ffn:
            gates = gates.remove_mlp(layer)
        return gates

    def zero_attention(self, layer: int, head: int | None = None) -> "Interventions":
        """Zero the attention output of `layer` (every head, or only `head`)."""
        index = (layer, slice(None)) if head is None else (layer, head)
        return dataclasses.replace(self, attn_scale=self.attn_scale.at[index].set(0.0))

    def remove_mlp(self, layer: int) -> "Interventions":
        """Remove the MLP of `layer` (the residual stream is kept)."""
        return dataclasses.replace(self, mlp_scale=self.mlp_scale.at[layer].set(0.0))

    def zero_layer(self, layer: int) -> "Interventions":
        """Remove both the attention and the MLP of `layer`."""
        return self.zero_attention(layer).remove_mlp(layer)
