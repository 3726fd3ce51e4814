"""The configurable pre-LN decoder used by every experiment (spec B.1).

h   = x + Attn(LN_attn(x))      (h = x when the block is in `no_attn`)
out = h + MLP(LN_ffn(h))        (out = h when the block is in `no_ffn`)
logits = Head(LN_final(out_L))
"""

from flax import nnx
from jaxtyping import Array, Float, Int

from ..interventions import Interventions
from .config import TransformerConfig
from .layers import MLP, CausalSelfAttention, dense, embed_init
from .trace import LayerTrace, ModelTrace


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
        head_scale: Float[Array, " H"],
        mlp_scale: Float[Array, ""],
        *,
        trace: bool,
    ) -> tuple[Float[Array, "B N d"], LayerTrace | None]:
        attn_trace = None
        h = x
        if self.attn is not None:
            attn_out, attn_trace = self.attn(self.ln_attn(x), head_scale, trace=trace)
            h = x + attn_out
        out = h
        if self.mlp is not None:
            out = h + mlp_scale * self.mlp(self.ln_ffn(h))
        return out, LayerTrace(attn_trace, h, out) if trace else None


class Transformer(nnx.Module):
    """Decoder-only transformer: token + learned position embeddings, blocks, final LN, head.

    Call it as `model(tokens)` for logits, or `model(tokens, interventions, trace=True)` for
    `(logits, ModelTrace)`: one forward pass gives every probe, and interventions are data.
    """

    def __init__(self, cfg: TransformerConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        self.token_embed = nnx.Embed(
            cfg.vocab_size, cfg.d_model, embedding_init=embed_init(cfg), rngs=rngs
        )
        self.pos_embed = nnx.Embed(
            cfg.max_len, cfg.d_model, embedding_init=embed_init(cfg), rngs=rngs
        )
        self.blocks = nnx.List([Block(cfg, i, rngs=rngs) for i in range(cfg.n_layers)])
        self.ln_final = layer_norm(cfg, rngs)
        self.head = dense(cfg, cfg.d_model, cfg.vocab_size, cfg.use_bias, rngs)

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
            interventions: gates on sub-layers; None means no intervention.
            trace: static flag; when True also return the `ModelTrace` of this pass.

        Returns:
            logits (B, N, V) in float32, and the trace when requested.
        """
        cfg = self.cfg
        if interventions is None:
            interventions = Interventions.none(cfg.n_layers, cfg.n_heads)
        n = tokens.shape[-1]
        # Positions are a slice of the table, so their gradient is a sum, not a scatter-add.
        x = self.token_embed(tokens) + self.pos_embed.embedding[:n]
        embed = x
        layer_traces = []
        for i, block in enumerate(self.blocks):
            x, layer_trace = block(
                x, interventions.attn_scale[i], interventions.mlp_scale[i], trace=trace
            )
            layer_traces.append(layer_trace)
        B, N, d = x.shape
        logits = self.head(self.ln_final(x).reshape(B * N, d)).reshape(B, N, -1)
        if not trace:
            return logits
        return logits, ModelTrace(embed, tuple(layer_traces))
