"""Interventions as data: one compiled forward pass serves every ablation.

An `Interventions` value is a pytree of float arrays passed to the model call, so new
ablations never retrace and a grid of them can be `vmap`ped (the penzai knock-out idiom).

Two gates are always present: `attn_scale` (heads) and `mlp_scale` (MLPs). The edits of the
sink-circuit toolkit (spec sinks_gpt2_p0.md §4, I1–I9) are optional fields: None means "not
applied" and leaves the compiled graph of the model exactly as without them. To `vmap` a grid
of interventions that set different fields, `complete` each one (every None field becomes its
identity value) and `stack` them.

- I1 b_Q <- s b_Q per layer and head: `query_bias_scale` (`scale_query_bias`);
- I2 p_0 <- p_1, interpolate, scale, zero, swap p_0/p_t: `position_mix` (`position_edit`);
- I3 swap the EPE/PE directions in an MLP output: `mlp_swap` (`swap_mlp_output`);
- I4 zero e_0 (the token embedding at a position): `token_embed_scale`;
- I5 skip MLPs (all, layer 0, layers < k): `mlp_scale` (`remove_mlp`);
- I6 no positional embedding, h^0 = e: `position_mix` = 0 (`position_edit(..., "none")`);
- I7 zero/scale input rows D of W_K: `key_input_scale` (`key_coordinate_scale`);
- I8 remove head h's contribution A_h V_h W_O[h]: `attn_scale` (`zero_attention`);
- I9 patch h^l_0 with a cached value: `resid0_patch` (`patch_first_residual`).

Token-level edits of I4 (replace or drop the first token, random first tokens) change the
input ids and need no model support.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class MLPSwap:
    """I3: exchange the component of an MLP output along two unit directions at positions 0, 1.

    With m the MLP output (before the residual add) and a = <m_0, u0> * gate[l]:
    m_0 <- m_0 - a u0 + a u1 and m_1 <- m_1 + a u0 - a u1 (P1's "Swap EPE" with u = EPE_0,
    EPE_1 normalised, "Swap PE" with the raw position embeddings).

    Attributes:
        directions: (2, d) the unit directions u0, u1.
        gate: (L,) 1 where the edit applies (P1: block 0 only), 0 elsewhere.
    """

    directions: Float[Array, "2 d"]
    gate: Float[Array, " L"]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ResidualPatch:
    """I9: after block l, h_0 <- gate[l] * values[l] + (1 - gate[l]) * h_0 (token position 0).

    Attributes:
        values: (L, d), or (L, B, d) per sequence, the cached states (e.g. from another input).
        gate: (L,) 1 where position 0 is patched.
    """

    values: Float[Array, "L *B d"]
    gate: Float[Array, " L"]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LayerInterventions:
    """The slice of an `Interventions` that one block reads (shapes without the layer axis)."""

    head_scale: Float[Array, " H"]
    mlp_scale: Float[Array, ""]
    query_bias_scale: Float[Array, " H"] | None
    key_input_scale: Float[Array, " d"] | None
    swap: tuple[Float[Array, "2 d"], Float[Array, ""]] | None
    patch: tuple[Float[Array, "*B d"], Float[Array, ""]] | None


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Interventions:
    """Gates and edits on the sub-layers of an L-layer, H-head, width-d model on N tokens.

    Attributes:
        attn_scale: (L, H). Scales each head's mixed values `z = A v` before W_O. 0 zeroes the
            head's attention weights (the "No Attn" hook of the official code; I8); the output
            bias of W_O, if any, is kept.
        mlp_scale: (L,). Scales the MLP output before it is added to the residual; 0 removes it.
        query_bias_scale: (L, H) or None. I1: head h of layer l uses s b_Q,h.
        key_input_scale: (L, d) or None. I7: k = (x * s) W_K + b_K, i.e. row c of W_K scaled
            by s[l, c] (0 zeroes input coordinate c of the keys; queries and values untouched).
        token_embed_scale: (N,) or None. I4: the token embedding at position n is scaled.
        position_mix: (N, N) or None. I2/I6: the absolute position embeddings become P' = M P
            (row n of M says what position n receives); only for learned or sinusoidal tables.
        mlp_swap: I3, see `MLPSwap`, or None.
        resid0_patch: I9, see `ResidualPatch`, or None.
    """

    attn_scale: Float[Array, "L H"]
    mlp_scale: Float[Array, " L"]
    query_bias_scale: Float[Array, "L H"] | None = None
    key_input_scale: Float[Array, "L d"] | None = None
    token_embed_scale: Float[Array, " N"] | None = None
    position_mix: Float[Array, "N N"] | None = None
    mlp_swap: MLPSwap | None = None
    resid0_patch: ResidualPatch | None = None

    @classmethod
    def none(cls, n_layers: int, n_heads: int) -> "Interventions":
        """The identity intervention (all gates open, no edits)."""
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

    @property
    def n_layers(self) -> int:
        return self.attn_scale.shape[0]

    @property
    def n_heads(self) -> int:
        return self.attn_scale.shape[1]

    def layer(self, i: int) -> LayerInterventions:
        """What block `i` reads."""

        def row(field):
            return None if field is None else field[i]

        return LayerInterventions(
            self.attn_scale[i],
            self.mlp_scale[i],
            row(self.query_bias_scale),
            row(self.key_input_scale),
            None if self.mlp_swap is None else (self.mlp_swap.directions, self.mlp_swap.gate[i]),
            None
            if self.resid0_patch is None
            else (self.resid0_patch.values[i], self.resid0_patch.gate[i]),
        )

    # --- gates (I5, I8) ------------------------------------------------------------------

    def zero_attention(self, layer: int, head: int | None = None) -> "Interventions":
        """Zero the attention output of `layer` (every head, or only `head`)."""
        index = (layer, slice(None)) if head is None else (layer, head)
        return dataclasses.replace(self, attn_scale=self.attn_scale.at[index].set(0.0))

    def remove_mlp(self, layer: int | slice) -> "Interventions":
        """Remove the MLP of `layer` (an index or a slice, e.g. `slice(None)` for all; the
        residual stream is kept)."""
        return dataclasses.replace(self, mlp_scale=self.mlp_scale.at[layer].set(0.0))

    def zero_layer(self, layer: int) -> "Interventions":
        """Remove both the attention and the MLP of `layer`."""
        return self.zero_attention(layer).remove_mlp(layer)

    # --- edits (I1-I4, I6, I7, I9) ---------------------------------------------------------

    def scale_query_bias(
        self, scale: float, layer: int | slice = slice(None), head: int | slice = slice(None)
    ) -> "Interventions":
        """I1: b_Q <- scale * b_Q in the given layers and heads (default: all; 0 is P1-b)."""
        current = self.query_bias_scale
        if current is None:
            current = jnp.ones((self.n_layers, self.n_heads))
        return dataclasses.replace(self, query_bias_scale=current.at[layer, head].set(scale))

    def scale_key_coordinates(self, scale: Float[Array, "L d"]) -> "Interventions":
        """I7: multiply input row c of W_K in layer l by scale[l, c] (`key_coordinate_scale`)."""
        return dataclasses.replace(self, key_input_scale=jnp.asarray(scale, jnp.float32))

    def scale_token_embedding(self, scale: Float[Array, " N"]) -> "Interventions":
        """I4: scale the token embedding at each position (e.g. 0 at position 0: zero e_0)."""
        return dataclasses.replace(self, token_embed_scale=jnp.asarray(scale, jnp.float32))

    def mix_positions(self, matrix: Float[Array, "N N"]) -> "Interventions":
        """I2/I6: replace the position table P by matrix @ P (see `position_edit`)."""
        return dataclasses.replace(self, position_mix=jnp.asarray(matrix, jnp.float32))

    def swap_mlp_output(
        self, u0: Float[Array, " d"], u1: Float[Array, " d"], layer: int = 0
    ) -> "Interventions":
        """I3: swap the MLP output of `layer` along u0/u1 at positions 0 and 1 (normalised here)."""
        directions = jnp.stack([u0 / jnp.linalg.norm(u0), u1 / jnp.linalg.norm(u1)])
        gate = jnp.zeros((self.n_layers,)).at[layer].set(1.0)
        return dataclasses.replace(self, mlp_swap=MLPSwap(directions, gate))

    def patch_first_residual(self, layer: int, values: Float[Array, "*B d"]) -> "Interventions":
        """I9: after block `layer`, set the residual state at token position 0 to `values`
        ((d,) for every sequence or (B, d) per sequence)."""
        values = jnp.asarray(values, jnp.float32)
        stacked = jnp.zeros((self.n_layers, *values.shape)).at[layer].set(values)
        gate = jnp.zeros((self.n_layers,)).at[layer].set(1.0)
        return dataclasses.replace(self, resid0_patch=ResidualPatch(stacked, gate))

    # --- grids -------------------------------------------------------------------------------

    def complete(
        self,
        d_model: int,
        seq_len: int,
        patch_shape: tuple[int, ...] = (),
        fields: frozenset[str] | None = None,
    ):
        """The same intervention with None fields set to their identity value, so that
        interventions setting different fields share one pytree structure (see `stack`).

        Args:
            d_model: residual width d.
            seq_len: number of token positions N.
            patch_shape: the batch shape of `resid0_patch` values, () or (B,).
            fields: the edit fields to fill (None: all of them); the others stay as they are,
                so a model without the part an edit needs (e.g. a position table) never sees it.
        """
        L, H = self.n_layers, self.n_heads
        identities = {
            "query_bias_scale": lambda: jnp.ones((L, H)),
            "key_input_scale": lambda: jnp.ones((L, d_model)),
            "token_embed_scale": lambda: jnp.ones((seq_len,)),
            "position_mix": lambda: jnp.eye(seq_len),
            "mlp_swap": lambda: MLPSwap(jnp.zeros((2, d_model)), jnp.zeros((L,))),
            "resid0_patch": lambda: ResidualPatch(
                jnp.zeros((L, *patch_shape, d_model)), jnp.zeros((L,))
            ),
        }
        return dataclasses.replace(
            self,
            **{
                name: identity()
                for name, identity in identities.items()
                if getattr(self, name) is None and (fields is None or name in fields)
            },
        )


# The optional edit fields of `Interventions` (None: no edit).
_EDIT_FIELDS = tuple(f.name for f in dataclasses.fields(Interventions) if f.default is None)


def stack(
    interventions: list[Interventions], d_model: int, seq_len: int, patch_shape=()
) -> Interventions:
    """Stack interventions along a new leading axis, ready for `jax.vmap`: every edit field
    that one of them sets is completed with identities in the others; fields that none sets
    stay None."""
    used = frozenset(
        name for iv in interventions for name in _EDIT_FIELDS if getattr(iv, name) is not None
    )
    done = [iv.complete(d_model, seq_len, patch_shape, used) for iv in interventions]
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *done)


def position_edit(seq_len: int, kind: str, *, source: int = 1, alpha: float = 0.0) -> np.ndarray:
    """(N, N) position-mixing matrices of I2 and I6 for `Interventions.mix_positions`.

    Kinds: "replace" p_0 <- p_source (P1-c with source 1); "interpolate"
    p_0 <- alpha p_0 + (1 - alpha) p_source; "scale" p_0 <- alpha p_0 ("zero" is alpha = 0);
    "swap" p_0 <-> p_source (Gu T7); "none" every position gets 0 (I6: h^0 = e).
    """
    if not 0 < source < seq_len:
        raise ValueError(f"source position must lie in 1..{seq_len - 1}, got {source}")
    matrix = np.eye(seq_len, dtype=np.float32)
    if kind == "replace":
        matrix[0] = 0.0
        matrix[0, source] = 1.0
    elif kind == "interpolate":
        matrix[0, 0], matrix[0, source] = alpha, 1.0 - alpha
    elif kind == "scale":
        matrix[0, 0] = alpha
    elif kind == "swap":
        matrix[[0, source]] = matrix[[source, 0]]
    elif kind == "none":
        matrix[:] = 0.0
    else:
        raise ValueError(
            f"unknown position edit {kind!r}; use replace, interpolate, scale, swap or none"
        )
    return matrix


def key_coordinate_scale(
    n_layers: int, d_model: int, coordinates, scale: float = 0.0
) -> np.ndarray:
    """(L, d) for `Interventions.scale_key_coordinates`: `coordinates` is (k,) the same input
    coordinates in every layer (P1-i: the massive coordinates of EPE_0) or (L, k) one set per
    layer (P1-j: a random control redrawn per layer)."""
    coordinates = np.asarray(coordinates)
    per_layer = np.broadcast_to(coordinates, (n_layers, coordinates.shape[-1]))
    if per_layer.size and not (0 <= per_layer.min() and per_layer.max() < d_model):
        raise ValueError(f"key coordinates must lie in 0..{d_model - 1}")
    matrix = np.ones((n_layers, d_model), np.float32)
    matrix[np.arange(n_layers)[:, None], per_layer] = scale
    return matrix
