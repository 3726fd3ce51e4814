"""An independent float64 numpy forward pass of the zoo `Transformer`, for known-answer tests.

Every variant of the zoo (sinks spec T1-T3) and every intervention (I1-I9) is written out
here from its definition, one sequence and one head at a time, without sharing code with
`sinkjax.models`.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sinkjax.models import Transformer, TransformerConfig


def randomized(cfg: TransformerConfig, seed: int = 0) -> Transformer:
    """A model of `cfg` whose every parameter is N(0, 0.3^2) (drawn by numpy: no compiles)."""
    graphdef, state = nnx.split(nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(0))))
    rng = np.random.default_rng(seed)
    state = jax.tree.map(lambda a: jnp.asarray(0.3 * rng.standard_normal(a.shape), a.dtype), state)
    return nnx.merge(graphdef, state)


def arr(param) -> np.ndarray:
    return np.asarray(param[...], np.float64)


def layer_norm(x, ln, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * arr(ln.scale) + arr(ln.bias)


def rope(x, positions, base):
    """Rotate pairs (i, i + dh/2) of x (S, dh) by positions * base^(-2i/dh)."""
    half = x.shape[-1] // 2
    out = np.empty_like(x)
    for i in range(half):
        angle = positions * base ** (-2.0 * i / x.shape[-1])
        c, s = np.cos(angle), np.sin(angle)
        out[:, i] = x[:, i] * c - x[:, i + half] * s
        out[:, i + half] = x[:, i] * s + x[:, i + half] * c
    return out


def sinusoids(n, d):
    pe = np.zeros((n, d))
    for p in range(n):
        for i in range(0, d, 2):
            pe[p, i] = np.sin(p / 10000 ** (i / d))
            pe[p, i + 1] = np.cos(p / 10000 ** (i / d))
    return pe


def projection_biases(attn, d):
    zero = np.zeros(d)
    b_q = arr(attn.q_bias) if attn.q_bias is not None else zero
    if attn.kv_bias is not None:
        return b_q, arr(attn.kv_bias)[:d], arr(attn.kv_bias)[d:]
    b_k = arr(attn.k_bias) if attn.k_bias is not None else zero
    b_v = arr(attn.v_bias) if attn.v_bias is not None else zero
    return b_q, b_k, b_v


def attention(cfg, attn, x, positions, head_scale=None, query_bias_scale=None, key_rows=None):
    """One sequence x (S, d). Returns (out (S, d), weights (H, S, S), slot_weights (H, S)).

    Edits: head_scale (H,) scales each head's z (I8); query_bias_scale (H,) scales b_Q per
    head (I1); key_rows (d,) scales the input rows of W_K (I7).
    """
    S, d = x.shape
    H, dh = cfg.n_heads, cfg.d_head
    b_q, b_k, b_v = projection_biases(attn, d)
    if query_bias_scale is not None:
        b_q = b_q * np.repeat(query_bias_scale, dh)
    w = arr(attn.qkv)
    w_k = w[:, d : 2 * d] if key_rows is None else key_rows[:, None] * w[:, d : 2 * d]
    q, k, v = x @ w[:, :d] + b_q, x @ w_k + b_k, x @ w[:, 2 * d :] + b_v
    slopes = {1: [2**-8], 2: [2**-4, 2**-8], 4: [2**-2, 2**-4, 2**-6, 2**-8]}.get(H)
    z = np.zeros((S, d))
    weights, slot_weights = np.zeros((H, S, S)), np.zeros((H, S))
    for h in range(H):
        cols = slice(h * dh, (h + 1) * dh)
        qh, kh, vh = q[:, cols], k[:, cols], v[:, cols]
        if cfg.positions == "rope":
            qh, kh = rope(qh, positions, cfg.rope_base), rope(kh, positions, cfg.rope_base)
        for i in range(S):
            s = np.array([qh[i] @ kh[j] for j in range(i + 1)]) / np.sqrt(dh)
            if cfg.positions == "alibi":
                s = s - slopes[h] * (positions[i] - positions[: i + 1])
            if cfg.attention == "softmax":
                p = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
            elif cfg.attention == "relu":
                p = np.maximum(s, 0) / (i + 1)
            elif cfg.attention == "sigmoid":
                p = 1 / (1 + np.exp(-s))
            else:  # softmax_kbias: an extra key k* with value 0
                s_all = np.concatenate([[qh[i] @ arr(attn.slot_key)[h] / np.sqrt(dh)], s])
                p_all = np.exp(s_all - s_all.max()) / np.exp(s_all - s_all.max()).sum()
                slot_weights[h, i], p = p_all[0], p_all[1:]
            weights[h, i, : i + 1] = p
            z[i, cols] = p @ vh[: i + 1] * (1.0 if head_scale is None else head_scale[h])
    out = z @ arr(attn.o.kernel) + (arr(attn.o.bias) if attn.o.bias is not None else 0)
    return out, weights, slot_weights


def mlp(cfg, m, x):
    u = x @ arr(m.up.kernel) + (arr(m.up.bias) if m.up.bias is not None else 0)
    if cfg.mlp_activation == "relu":
        u = np.maximum(u, 0)
    else:
        u = 0.5 * u * (1 + np.tanh(np.sqrt(2 / np.pi) * (u + 0.044715 * u**3)))
    return u @ arr(m.down.kernel) + (arr(m.down.bias) if m.down.bias is not None else 0)


def reference(model: Transformer, tokens: np.ndarray, edits: dict | None = None):
    """Logits (B, N, V) and per-layer (weights, slot weights) over the token positions.

    With a sink token the stream is [s, tok_0..tok_{N-1}] at positions -1, 0, ..., N-1.
    `edits` (the sinks spec's I1-I9, written out here from their definitions): "attn_scale"
    (L, H), "mlp_scale" (L,), "query_bias_scale" (L, H), "key_rows" (L, d), "token_scale"
    (N,), "pos_mix" (N, N) applied to the position table, "swap" (u0, u1, layer) on the MLP
    output at positions 0, 1, "patch" (layer, (d,) values) on h_0 after that block.
    """
    cfg = model.cfg
    edits = edits or {}
    N = tokens.shape[1]
    L = cfg.n_layers
    embed = arr(model.token_embed.embedding)
    logits, attn_maps = [], []
    for seq in np.asarray(tokens):
        x = embed[seq] * edits.get("token_scale", np.ones(N))[:, None]
        table = None
        if cfg.positions == "learned":
            table = arr(model.pos_embed.embedding)[:N]
        elif cfg.positions == "sinusoidal":
            table = sinusoids(N, cfg.d_model)
        if table is not None:
            x = x + edits.get("pos_mix", np.eye(N)) @ table
        positions = np.arange(N, dtype=np.float64)
        first = 0
        if cfg.sink_token:
            x = np.concatenate([arr(model.sink_embed), x])
            positions = np.arange(-1, N, dtype=np.float64)
            first = 1
        maps = []
        for layer, block in enumerate(model.blocks):
            a, w, slot = attention(
                cfg,
                block.attn,
                layer_norm(x, block.ln_attn, cfg.ln_eps),
                positions,
                edits.get("attn_scale", np.ones((L, cfg.n_heads)))[layer],
                edits.get("query_bias_scale", np.ones((L, cfg.n_heads)))[layer],
                edits.get("key_rows", np.ones((L, cfg.d_model)))[layer],
            )
            x = x + a
            m = mlp(cfg, block.mlp, layer_norm(x, block.ln_ffn, cfg.ln_eps))
            if "swap" in edits and edits["swap"][2] == layer:
                u0, u1 = (u / np.linalg.norm(u) for u in edits["swap"][:2])
                amount = m[first] @ u0
                m[first] = m[first] - amount * u0 + amount * u1
                m[first + 1] = m[first + 1] + amount * u0 - amount * u1
            x = x + edits.get("mlp_scale", np.ones(L))[layer] * m
            if "patch" in edits and edits["patch"][0] == layer:
                x[first] = edits["patch"][1]
            if cfg.sink_token:  # the sink's key column becomes the slot
                w, slot = w[:, 1:, 1:], w[:, 1:, 0]
            maps.append((w, slot))
        x = layer_norm(x[1:] if cfg.sink_token else x, model.ln_final, cfg.ln_eps)
        if model.head is None:
            logits.append(x @ embed.T)
        else:
            bias = arr(model.head.bias) if model.head.bias is not None else 0
            logits.append(x @ arr(model.head.kernel) + bias)
        attn_maps.append(maps)
    return np.stack(logits), attn_maps
