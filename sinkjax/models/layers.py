"""Sub-layers of the decoder: causal attention (its weight functions and positional encodings)
and the two-layer MLP.

Every Linear weight is stored (fan_in, fan_out) and multiplied on the right, as in Flax.

Layout note (measured on XLA:CPU, see docs/benchmarks.md): Linear layers are applied to the
stream flattened to (B*N, d), and the heads are folded into the batch axis, (B*H, N, d_head),
for the two attention products. With a (B, N, ...) layout the weight gradients contract over two
axes and the attention products carry a head axis: a plain `jax.grad` of the loss took 472 ms
instead of 401 ms at d=256, B=32, N=256.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, Float

from sinkjax.models.config import TransformerConfig
from sinkjax.models.trace import AttentionTrace
from sinkjax.precision import dot_general_for


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
        dot_general=dot_general_for(cfg.matmul_precision),
        rngs=rngs,
    )


def sinusoidal_positions(n: int, d: int) -> Float[Array, "n d"]:
    """Fixed sinusoidal encoding of positions 0..n-1 (Vaswani et al.), interleaved:
    PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(p / 10000^(2i/d)); d even."""
    angles = jnp.arange(n, dtype=jnp.float32)[:, None] * 10000.0 ** (
        -jnp.arange(0, d, 2, dtype=jnp.float32) / d
    )  # (n, d/2)
    return jnp.stack([jnp.sin(angles), jnp.cos(angles)], axis=-1).reshape(n, d)


def rotary(x: Float[Array, "... N dh"], base: float) -> Float[Array, "... N dh"]:
    """Rotary position embedding of positions 0..N-1, "rotate-half" (GPT-NeoX/LLaMA) convention.

    Dimension i is paired with i + dh/2 and the pair is rotated by angle p * base^(-2i/dh) at
    position p, i < dh/2. The score of a rotated query and key depends on their positions
    only through the offset between them.
    """
    n, dh = x.shape[-2:]
    half = dh // 2
    inv_freq = base ** (-jnp.arange(half, dtype=jnp.float32) * 2 / dh)  # (dh/2,)
    angles = jnp.arange(n, dtype=jnp.float32)[:, None] * inv_freq  # (N, dh/2)
    cos, sin = jnp.cos(angles), jnp.sin(angles)
    x1, x2 = x[..., :half], x[..., half:]
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def alibi_slopes(n_heads: int) -> np.ndarray:
    """ALiBi head slopes m_h (Press et al.): 2^(-8h/H) for h = 1..H when H is a power of two;
    otherwise the slopes of the nearest lower power of two P, then every other slope of 2P."""
    p = 2 ** math.floor(math.log2(n_heads))
    slopes = [2.0 ** (-8.0 * h / p) for h in range(1, p + 1)]
    if p < n_heads:
        slopes += [2.0 ** (-4.0 * h / p) for h in range(1, 2 * p + 1, 2)][: n_heads - p]
    return np.asarray(slopes, np.float32)


def alibi_bias(n_heads: int, n: int) -> Float[Array, "H N N"]:
    """ALiBi score bias -m_h (i - j) for query i and key j (the causal mask hides j > i)."""
    distance = jnp.arange(n)[:, None] - jnp.arange(n)[None, :]
    return -jnp.asarray(alibi_slopes(n_heads))[:, None, None] * distance


class CausalSelfAttention(nnx.Module):
    """Multi-head causal self-attention with a fused QKV projection.

    The fused (d, 3d) kernel is initialised block-wise exactly like three separate
    Linear(d, d) layers (same fan-in), so it matches the PyTorch reference model in law. Its
    columns are [W_Q | W_K | W_V] and head h owns columns h*d_head:(h+1)*d_head of each block,
    which is the layout of Hugging Face GPT-2's `c_attn.weight` ([in, out]).

    Projection biases: `q_bias` (d,) is b_Q; b_K and b_V live fused in `kv_bias` (2d,) =
    [b_K | b_V] when both are on (GPT-2's `c_attn.bias[d:]`), else alone in `k_bias` or `v_bias`.
    Under `attention="softmax_kbias"`, `slot_key` (H, d_head) is the learnable key k* of the
    extra slot (value 0, init N(0, 0.02) as in Gu et al.); it is not rotated by RoPE and gets
    no ALiBi bias.
    """

    def __init__(self, cfg: TransformerConfig, *, rngs: nnx.Rngs):
        d = cfg.d_model
        self.n_heads = cfg.n_heads
        self.d_head = cfg.d_head
        self.kind = cfg.attention
        self.positions = cfg.positions
        self.rope_base = cfg.rope_base
        self.dot_general = dot_general_for(cfg.matmul_precision)
        self.qkv = nnx.Param(linear_init(cfg, d)(rngs.params(), (d, 3 * d)))
        self.q_bias = (
            nnx.Param(bias_init(cfg, d)(rngs.params(), (d,))) if cfg.has_query_bias else None
        )
        fused = cfg.has_key_bias and cfg.has_value_bias
        self.kv_bias = nnx.Param(bias_init(cfg, d)(rngs.params(), (2 * d,))) if fused else None
        self.k_bias = (
            nnx.Param(bias_init(cfg, d)(rngs.params(), (d,)))
            if cfg.has_key_bias and not fused
            else None
        )
        self.v_bias = (
            nnx.Param(bias_init(cfg, d)(rngs.params(), (d,)))
            if cfg.has_value_bias and not fused
            else None
        )
        self.o = dense(cfg, d, d, cfg.use_bias, rngs)
        self.slot_key = (
            nnx.Param(nnx.initializers.normal(0.02)(rngs.params(), (cfg.n_heads, cfg.d_head)))
            if cfg.attention == "softmax_kbias"
            else None
        )

    def project(
        self,
        x: Float[Array, "M d"],
        query_bias_scale: Float[Array, " H"] | None = None,
        key_input_scale: Float[Array, " d"] | None = None,
    ) -> tuple[Float[Array, "M d"], ...]:
        """q, k, v = x W_Q + b_Q, x W_K + b_K, x W_V + b_V for flattened tokens x (M = B*N).

        Args:
            query_bias_scale: (H,) I1, head h uses s_h b_Q,h; None leaves b_Q as it is.
            key_input_scale: (d,) I7, row c of W_K is scaled by s_c; None leaves W_K.
        """
        kernel = self.qkv[...]
        if key_input_scale is not None:
            d = kernel.shape[0]
            kernel = kernel.at[:, d : 2 * d].multiply(key_input_scale[:, None])
        qkv = self.dot_general(x, kernel, (((1,), (0,)), ((), ())))  # x @ kernel
        q, k, v = jnp.split(qkv, 3, axis=-1)  # 3 x (B*N, d)
        if self.q_bias is not None:
            b_q = self.q_bias[...]
            if query_bias_scale is not None:
                b_q = (b_q.reshape(self.n_heads, -1) * query_bias_scale[:, None]).reshape(-1)
            q = q + b_q
        if self.kv_bias is not None:
            k_bias, v_bias = jnp.split(self.kv_bias[...], 2)
            k, v = k + k_bias, v + v_bias
        if self.k_bias is not None:
            k = k + self.k_bias[...]
        if self.v_bias is not None:
            v = v + self.v_bias[...]
        return q, k, v

    def weigh(
        self, logits: Float[Array, "BH N N"], q: Float[Array, "BH N dh"]
    ) -> tuple[Float[Array, "BH N N"], Float[Array, "BH N"] | None, Float[Array, "BH N"] | None]:
        """Causal attention weights from scores (heads folded into the batch axis).

        Returns:
            (weights, slot_logits, slot_weights): weights on the N keys (zero above the
            diagonal), and the extra K-bias slot's score and weight (None without the slot).
        """
        N = logits.shape[-1]
        causal = jnp.tril(jnp.ones((N, N), bool))
        if self.kind == "softmax":
            return jax.nn.softmax(jnp.where(causal, logits, -jnp.inf), axis=-1), None, None
        if self.kind == "relu":  # divide by the number of visible keys, i + 1.
            n_visible = jnp.arange(1, N + 1, dtype=logits.dtype)[:, None]
            return jnp.where(causal, jax.nn.relu(logits), 0.0) / n_visible, None, None
        if self.kind == "sigmoid":
            return jnp.where(causal, jax.nn.sigmoid(logits), 0.0), None, None
        # softmax_kbias: softmax over [k*, k_0..k_i]; the slot's value is 0.
        H, dh = self.n_heads, self.d_head
        q_heads = q.reshape(-1, H, N, dh)
        slot_logits = jnp.einsum("bhqd,hd->bhq", q_heads, self.slot_key[...]).reshape(-1, N)
        slot_logits = slot_logits / jnp.sqrt(jnp.float32(dh))
        masked = jnp.where(causal, logits, -jnp.inf)
        both = jax.nn.softmax(jnp.concatenate([slot_logits[..., None], masked], -1), axis=-1)
        return both[..., 1:], slot_logits, both[..., 0]

    def __call__(
        self,
        x: Float[Array, "B N d"],
        head_scale: Float[Array, " H"],
        query_bias_scale: Float[Array, " H"] | None = None,
        key_input_scale: Float[Array, " d"] | None = None,
        *,
        trace: bool = False,
    ) -> tuple[Float[Array, "B N d"], AttentionTrace | None]:
        """Attend causally over `x`.

        Args:
            x: (B, N, d) the layer-normalised residual stream.
            head_scale: (H,) gate on each head's z = A v before W_O (see `Interventions`).
            query_bias_scale, key_input_scale: optional edits I1 and I7 (see `project`).
            trace: also return the `AttentionTrace` (static: a different compiled graph).

        Returns:
            (out, trace): out is (B, N, d); trace is None unless requested.
        """
        B, N, d = x.shape
        H, dh = self.n_heads, self.d_head
        q, k, v = self.project(x.reshape(B * N, d), query_bias_scale, key_input_scale)
        # (B*N, d) -> (B*H, N, dh): heads folded into the batch of the attention products.
        q, k, v = (
            a.reshape(B, N, H, dh).transpose(0, 2, 1, 3).reshape(B * H, N, dh) for a in (q, k, v)
        )
        if self.positions == "rope":
            q, k = rotary(q, self.rope_base), rotary(k, self.rope_base)
        logits = jnp.einsum("bqd,bkd->bqk", q, k, _dot_general=self.dot_general)  # (B*H, N, N)
        logits = logits / jnp.sqrt(jnp.float32(dh))
        if self.positions == "alibi":
            logits = (logits.reshape(B, H, N, N) + alibi_bias(H, N)).reshape(B * H, N, N)
        weights, slot_logits, slot_weights = self.weigh(logits, q)
        z = jnp.einsum("bqk,bkd->bqd", weights, v, _dot_general=self.dot_general)
        z = z.reshape(B, H, N, dh)
        z = z * head_scale[None, :, None, None]
        out = self.o(z.transpose(0, 2, 1, 3).reshape(B * N, d)).reshape(B, N, d)
        if not trace:
            return out, None
        values = v.reshape(B, H, N, dh).transpose(0, 2, 1, 3)  # (B, N, H, dh)
        w_o = self.o.kernel[...].reshape(H, dh, d)
        value_out = jnp.einsum("bkhd,hde->bkhe", values, w_o)  # (B, N, H, d)
        trace_out = AttentionTrace(
            logits.reshape(B, H, N, N),
            weights.reshape(B, H, N, N),
            values,
            value_out,
            None if slot_logits is None else slot_logits.reshape(B, H, N),
            None if slot_weights is None else slot_weights.reshape(B, H, N),
        )
        return out, trace_out


class MLP(nnx.Module):
    """W2 act(W1 x + b1) + b2: d -> d_mlp -> d, act = ReLU or tanh-GELU ("gelu_new")."""

    def __init__(self, cfg: TransformerConfig, *, rngs: nnx.Rngs):
        self.activation = cfg.mlp_activation
        self.up = dense(cfg, cfg.d_model, cfg.d_mlp, cfg.use_bias, rngs)
        self.down = dense(cfg, cfg.d_mlp, cfg.d_model, cfg.use_bias, rngs)

    def __call__(self, x: Float[Array, "B N d"]) -> Float[Array, "B N d"]:
        flat = x.reshape(-1, x.shape[-1])  # (B*N, d): see the layout note above
        hidden = self.up(flat)
        if self.activation == "relu":
            hidden = jax.nn.relu(hidden)
        else:  # gelu_new: 0.5 u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3)))
            hidden = jax.nn.gelu(hidden, approximate=True)
        return self.down(hidden).reshape(x.shape)
