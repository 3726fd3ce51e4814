"""Sub-layers of the decoder: causal attention (softmax or ReLU) and the ReLU MLP.

Every Linear weight is stored (fan_in, fan_out) and multiplied on the right, as in Flax.

Layout note (measured on XLA:CPU, see docs/benchmarks.md): Linear layers are applied to the
stream flattened to (B*N, d), and the heads are folded into the batch axis, (B*H, N, d_head),
for the two attention products. With a (B, N, ...) layout the weight gradients contract over two
axes and the attention products carry a head axis: a plain `jax.grad` of the loss took 472 ms
instead of 401 ms at d=256, B=32, N=256.
"""

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float

from .config import TransformerConfig
from .trace import AttentionTrace


def linear_init(cfg: TransformerConfig, fan_in: int) -> nnx.Initializer:
    """Weight and bias initialiser for a Linear layer with `fan_in` inputs.

    "torch" draws U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases (nn.Linear's default);
    "flax" uses LeCun-normal weights (biases are then zero, see `bias_init`).
    """
    if cfg.init == "torch":
        bound = fan_in**-0.5
        return lambda key, shape, dtype=jnp.float32: jax.random.uniform(
            key, shape, dtype, -bound, bound
        )
    return nnx.initializers.lecun_normal()


def bias_init(cfg: TransformerConfig, fan_in: int) -> nnx.Initializer:
    return linear_init(cfg, fan_in) if cfg.init == "torch" else nnx.initializers.zeros_init()


def embed_init(cfg: TransformerConfig) -> nnx.Initializer:
    """N(0, 1) as in torch.nn.Embedding, or Flax's default embedding init."""
    if cfg.init == "torch":
        return nnx.initializers.normal(1.0)
    return nnx.initializers.variance_scaling(1.0, "fan_in", "normal", out_axis=0)


def dense(cfg: TransformerConfig, fan_in: int, fan_out: int, use_bias: bool, rngs: nnx.Rngs):
    return nnx.Linear(
        fan_in,
        fan_out,
        use_bias=use_bias,
        kernel_init=linear_init(cfg, fan_in),
        bias_init=bias_init(cfg, fan_in),
        rngs=rngs,
    )


class CausalSelfAttention(nnx.Module):
    """Multi-head causal self-attention with a fused QKV projection.

    The fused (d, 3d) kernel is initialised block-wise exactly like three separate
    Linear(d, d) layers (same fan-in), so it matches the PyTorch reference model in law.
    """

    def __init__(self, cfg: TransformerConfig, *, rngs: nnx.Rngs):
        d = cfg.d_model
        self.n_heads = cfg.n_heads
        self.d_head = cfg.d_head
        self.kind = cfg.attention
        self.qkv = nnx.Param(linear_init(cfg, d)(rngs.params(), (d, 3 * d)))
        self.q_bias = (
            nnx.Param(bias_init(cfg, d)(rngs.params(), (d,))) if cfg.has_query_bias else None
        )
        self.kv_bias = (
            nnx.Param(bias_init(cfg, d)(rngs.params(), (2 * d,))) if cfg.use_bias else None
        )
        self.o = dense(cfg, d, d, cfg.use_bias, rngs)

    def __call__(
        self, x: Float[Array, "B N d"], head_scale: Float[Array, " H"], *, trace: bool = False
    ) -> tuple[Float[Array, "B N d"], AttentionTrace | None]:
        """Attend causally over `x`.

        Args:
            x: (B, N, d) the layer-normalised residual stream.
            head_scale: (H,) gate on each head's z = A v before W_O (see `Interventions`).
            trace: also return the `AttentionTrace` (static: a different compiled graph).

        Returns:
            (out, trace): out is (B, N, d); trace is None unless requested.
        """
        B, N, d = x.shape
        H, dh = self.n_heads, self.d_head
        q, k, v = jnp.split(x.reshape(B * N, d) @ self.qkv[...], 3, axis=-1)  # 3 x (B*N, d)
        if self.q_bias is not None:
            q = q + self.q_bias[...]
        if self.kv_bias is not None:
            k_bias, v_bias = jnp.split(self.kv_bias[...], 2)
            k, v = k + k_bias, v + v_bias
        # (B*N, d) -> (B*H, N, dh): heads folded into the batch of the attention products.
        q, k, v = (
            a.reshape(B, N, H, dh).transpose(0, 2, 1, 3).reshape(B * H, N, dh) for a in (q, k, v)
        )
        logits = jnp.einsum("bqd,bkd->bqk", q, k) / jnp.sqrt(jnp.float32(dh))  # (B*H, N, N)
        causal = jnp.tril(jnp.ones((N, N), bool))
        if self.kind == "softmax":
            weights = jax.nn.softmax(jnp.where(causal, logits, -jnp.inf), axis=-1)
        else:  # ReLU attention: divide by the number of visible keys, i + 1.
            n_visible = jnp.arange(1, N + 1, dtype=logits.dtype)[:, None]
            weights = jnp.where(causal, jax.nn.relu(logits), 0.0) / n_visible
        z = jnp.einsum("bqk,bkd->bqd", weights, v).reshape(B, H, N, dh)
        z = z * head_scale[None, :, None, None]
        out = self.o(z.transpose(0, 2, 1, 3).reshape(B * N, d)).reshape(B, N, d)
        if not trace:
            return out, None
        values = v.reshape(B, H, N, dh).transpose(0, 2, 1, 3)  # (B, N, H, dh)
        w_o = self.o.kernel[...].reshape(H, dh, d)
        value_out = jnp.einsum("bkhd,hde->bkhe", values, w_o)  # (B, N, H, d)
        trace_out = AttentionTrace(
            logits.reshape(B, H, N, N), weights.reshape(B, H, N, N), values, value_out
        )
        return out, trace_out


class MLP(nnx.Module):
    """W2 ReLU(W1 x): d -> d_mlp -> d."""

    def __init__(self, cfg: TransformerConfig, *, rngs: nnx.Rngs):
        self.up = dense(cfg, cfg.d_model, cfg.d_mlp, cfg.use_bias, rngs)
        self.down = dense(cfg, cfg.d_mlp, cfg.d_model, cfg.use_bias, rngs)

    def __call__(self, x: Float[Array, "B N d"]) -> Float[Array, "B N d"]:
        flat = x.reshape(-1, x.shape[-1])  # (B*N, d): see the layout note above
        return self.down(jax.nn.relu(self.up(flat))).reshape(x.shape)
