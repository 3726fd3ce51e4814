"""The configurable pre-LN decoder used by every experiment (spec B.1).

x_0 = E[tok] + P[pos]           (P: learned or sinusoidal table; 0 under RoPE, ALiBi, NoPE)
h   = x + Attn(LN_attn(x))      (h = x when the block is in `no_attn`)
out = h + MLP(LN_ffn(h))        (out = h when the block is in `no_ffn`)
logits = Head(LN_final(out_L))  (Head = E^T with tied embeddings)

This is exactly GPT-2's block (h' = h + Attn(LN1(h)), out = h' + MLP(LN2(h'))), so the MLP of
block 0 reads the residual stream after block 0's attention, as in GPT-2.

With `sink_token` a learned embedding s is prepended to the stream, x = [s; x_0] (N + 1
positions). It receives no absolute position embedding, tokens keep positions 0..N-1, and
under RoPE/ALiBi (relative) it sits one step before token 0. Every block processes it; its
row is dropped before the final LN, and traces report it as the extra key slot.
"""

import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float, Int

from sinkjax.interventions import Interventions, LayerInterventions
from sinkjax.models.config import TransformerConfig
from sinkjax.models.layers import MLP, CausalSelfAttention, dense, embed_init, sinusoidal_positions
from sinkjax.models.trace import LayerTrace, ModelTrace
from sinkjax.precision import dot_general_for


def layer_norm(cfg: TransformerConfig, rngs: nnx.Rngs) -> nnx.LayerNorm:
    """LayerNorm with affine gamma=1, beta=0 and PyTorch's eps."""
    return nnx.LayerNorm(cfg.d_model, epsilon=cfg.ln_eps, use_fast_variance=False, rngs=rngs)


class Block(nnx.Module):
    """One pre-LN transformer block; absent sub-layers are not even created."""

    def __init__(self, cfg: TransformerConfig, layer: int, *, rngs: nnx.Rngs):
        self.ln_attn = layer_norm(cfg, rngs) if cfg.has_attn(layer) else None
        self.attn = CausalSelfAttention(cfg, rngs=rngs) if cfg.has_attn(layer) else None
        self.ln_ffn = layer_norm(cfg, rngs) if cfg.has_ffn(layer) else None
        self.mlp = MLP(cfg, rngs=rngs) if cfg.has_ffn(layer) else None

    def __call__(
        self,
        x: Float[Array, "B N d"],
        interventions: LayerInterventions,
        *,
        first: int = 0,
        trace: bool,
    ) -> tuple[Float[Array, "B N d"], LayerTrace | None]:
        """One block on the (B, N, d) stream under this block's gates and edits.

        Args:
            first: stream index of token position 0 (1 when a sink token is prepended); the
                I3 swap and the I9 patch act there.
        """
        iv = interventions
        attn_trace = None
        h = x
        if self.attn is not None:
            attn_out, attn_trace = self.attn(
                self.ln_attn(x), iv.head_scale, iv.query_bias_scale, iv.key_input_scale, trace=trace
            )
            h = x + attn_out
        out = h
        if self.mlp is not None:
            mlp_out = self.mlp(self.ln_ffn(h))
            if iv.swap is not None:
                mlp_out = swap_first_positions(mlp_out, *iv.swap, first)
            out = h + iv.mlp_scale * mlp_out
        if iv.patch is not None:
            values, gate = iv.patch
            out = out.at[:, first].set(gate * values + (1 - gate) * out[:, first])
        return out, LayerTrace(attn_trace, h, out) if trace else None


def swap_first_positions(
    mlp_out: Float[Array, "B N d"], directions: Float[Array, "2 d"], gate, first: int
) -> Float[Array, "B N d"]:
    """I3 on an MLP output m: with a = gate <m_0, u0>, m_0 += a (u1 - u0), m_1 -= a (u1 - u0)
    (positions 0, 1 at stream indices first, first + 1); gate 0 returns m unchanged."""
    u0, u1 = directions
    amount = gate * (mlp_out[:, first] @ u0)  # (B,)
    delta = amount[:, None] * (u1 - u0)  # (B, d)
    return mlp_out.at[:, first].add(delta).at[:, first + 1].add(-delta)


class Transformer(nnx.Module):
    """Decoder-only transformer: token (+ position) embeddings, blocks, final LN, head.

    Call it as `model(tokens)` for logits, or `model(tokens, interventions, trace=True)` for
    `(logits, ModelTrace)`: one forward pass gives every probe, and interventions are data.
    Optional parts are None when switched off: `pos_embed` (learned positions only), `head`
    (None with tied embeddings), `sink_embed` ((1, d), with `sink_token` only).
    """

    def __init__(self, cfg: TransformerConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        self.token_embed = nnx.Embed(
            cfg.vocab_size, cfg.d_model, embedding_init=embed_init(cfg), rngs=rngs
        )
        self.pos_embed = (
            nnx.Embed(cfg.max_len, cfg.d_model, embedding_init=embed_init(cfg), rngs=rngs)
            if cfg.positions == "learned"
            else None
        )
        self.blocks = nnx.List([Block(cfg, i, rngs=rngs) for i in range(cfg.n_layers)])
        self.ln_final = layer_norm(cfg, rngs)
        self.head = (
            None
            if cfg.tie_embeddings
            else dense(cfg, cfg.d_model, cfg.vocab_size, cfg.use_bias, rngs)
        )
        self.sink_embed = (
            nnx.Param(embed_init(cfg)(rngs.params(), (1, cfg.d_model))) if cfg.sink_token else None
        )

    def embed(
        self, tokens: Int[Array, "B N"], interventions: Interventions | None = None
    ) -> Float[Array, "B N d"]:
        """Token plus absolute position embedding (learned or sinusoidal) of `tokens`, under
        the I4 token-embedding scale and the I2/I6 position mix when `interventions` set them.
        """
        x = self.token_embed(tokens)
        n = tokens.shape[-1]
        if interventions is not None and interventions.token_embed_scale is not None:
            x = x * interventions.token_embed_scale[:, None]
        # Positions are a slice of the table, so their gradient is a sum, not a scatter-add.
        positions = None
        if self.pos_embed is not None:
            positions = self.pos_embed.embedding[:n]
        elif self.cfg.positions == "sinusoidal":
            positions = sinusoidal_positions(n, self.cfg.d_model)
        if interventions is not None and interventions.position_mix is not None:
            if positions is None:
                raise ValueError(
                    "position edits (I2/I6) need learned or sinusoidal positions, this model "
                    f"uses positions={self.cfg.positions!r}"
                )
            positions = interventions.position_mix @ positions
        return x if positions is None else x + positions

    def unembed(self, x: Float[Array, "B N d"]) -> Float[Array, "B N V"]:
        """Logits of the final residual stream: Head(LN_final(x)), or LN_final(x) E^T if tied."""
        B, N, d = x.shape
        flat = self.ln_final(x).reshape(B * N, d)
        if self.head is None:  # flat E^T, as nnx.Embed.attend, at the model's matmul precision
            embedding = self.token_embed.embedding[...]
            dot_general = dot_general_for(self.cfg.matmul_precision)
            return dot_general(flat, embedding, (((1,), (1,)), ((), ()))).reshape(B, N, -1)
        return self.head(flat).reshape(B, N, -1)

    def __call__(
        self,
        tokens: Int[Array, "B N"],
        interventions: Interventions | None = None,
        *,
        trace: bool = False,
    ) -> Float[Array, "B N V"] | tuple[Float[Array, "B N V"], ModelTrace]:
        """Next-token logits for `tokens`.

        Args:
            tokens: (B, N) int token ids, N <= max_len.
            interventions: gates and edits (`Interventions`); None means no intervention.
            trace: static flag; when True also return the `ModelTrace` of this pass.

        Returns:
            logits (B, N, V) in float32, and the trace when requested.
        """
        cfg = self.cfg
        if interventions is None:
            interventions = Interventions.none(cfg.n_layers, cfg.n_heads)
        x = embed = self.embed(tokens, interventions)
        first = 0
        if self.sink_embed is not None:
            sink = jnp.broadcast_to(self.sink_embed[...], (x.shape[0], 1, x.shape[-1]))
            x = jnp.concatenate([sink, x], axis=1)  # (B, N + 1, d)
            first = 1
        layer_traces = []
        for i, block in enumerate(self.blocks):
            x, layer_trace = block(x, interventions.layer(i), first=first, trace=trace)
            if trace and self.sink_embed is not None:
                layer_trace = layer_trace.without_first_position()
            layer_traces.append(layer_trace)
        if self.sink_embed is not None:
            x = x[:, 1:]
        logits = self.unembed(x)
        if not trace:
            return logits
        return logits, ModelTrace(embed, tuple(layer_traces))
