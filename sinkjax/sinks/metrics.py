"""Attention-sink metrics of the unified toolkit (spec `sinks_gpt2_p0.md` §4, M1–M13, M15).

Every metric is a pure float32 function of arrays, so it runs under `jit` and `vmap`. Each is
computed first per (sample, layer, head) and aggregated by a separate function. Conventions:

- positions are 0-indexed; attention maps are `A[n, l, h, i, j]` (query i, key j), causal, so
  zero above the diagonal;
- kernels are `[in, out]` (`x @ W`); the fused QKV kernel `(d, 3d)` splits on its output axis
  into Q | K | V, and head h owns output columns `h*d_h:(h+1)*d_h` of each part;
- `*B` is any stack of leading axes (samples, layers, heads), left untouched.

Uniform-attention nulls (A_ij = 1/(i+1) for j <= i; H_k the k-th harmonic number):

- M2/M5 importance: alpha_j = (H_T - H_j) / (T - j); alpha_0 = H_T / T = 0.0741 at T = 64.
- M3 sink rate: 1[alpha_j > eps]. At eps = 0.3 and j = 0 it is 1 for T <= 9, 0 for T >= 10.
- M4 BOS attention and the M5 head map: (H_T - H_{T//2}) / (T - T//2) = 0.0340 at T = 40.
- M12 mixing concentration: C_i = 1/(i+1).
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from sinkjax.models.trace import ModelTrace

# ---------------------------------------------------------------------------------------------
# M1: attention maps


def attention_maps(trace: ModelTrace, normalise: bool = False) -> Float[Array, "N L H T T"]:
    """Stack the attention weights of a traced forward pass: (N, L, H, T, T) A[n, l, h, i, j].

    Args:
        normalise: replace the weights by Gu's `proxy_attention` (rows summing to 1), for
            attention whose rows are not normalised (sigmoid, ReLU), so that every sink metric
            reads a distribution over the keys.
    """
    maps = jnp.stack([attn.weights for attn in _attention_layers(trace)], axis=1)
    return proxy_attention(maps) if normalise else maps


def slot_attention(trace: ModelTrace) -> Float[Array, "N L H"] | None:
    """Mean weight of the late queries i in [T//2, T) on the extra key slot (the key-bias slot
    or the sink token; the weight that leaves the tokens), or None for a model without one."""
    layers = _attention_layers(trace)
    if layers[0].slot_weights is None:
        return None
    slots = jnp.stack([attn.slot_weights for attn in layers], axis=1)
    return slots[..., slots.shape[-1] // 2 :].mean(-1)


def _attention_layers(trace: ModelTrace) -> list:
    """Every layer's attention trace; raises if a layer has none (`no_attn`)."""
    if any(layer.attn is None for layer in trace.layers):
        raise ValueError("a layer has no attention; drop no_attn layers before stacking maps")
    return [layer.attn for layer in trace.layers]


def causal_softmax(scores: Float[Array, "*B T T"]) -> Float[Array, "*B T T"]:
    """A = softmax_j(S) with an explicit -inf mask above the diagonal (S: pre-softmax scores)."""
    n_pos = scores.shape[-1]
    causal = jnp.tril(jnp.ones((n_pos, n_pos), bool))
    return jax.nn.softmax(jnp.where(causal, scores, -jnp.inf), axis=-1)


def proxy_attention(sim: Float[Array, "*B T T"], signed: bool = False) -> Float[Array, "*B T T"]:
    """Gu's proxy map for non-normalised attention: A_ij = sim_ij / sum_{j' <= i} sim_ij'.

    Args:
        sim: (*B, T, T) unnormalised similarities (e.g. sigmoid or elu+1 of the scores); only the
            causal part j <= i is read.
        signed: use |sim| (for kernels whose similarities can be negative).

    Returns:
        (*B, T, T) rows summing to 1 (an all-zero row stays zero).
    """
    n_pos = sim.shape[-1]
    causal = jnp.tril(jnp.ones((n_pos, n_pos), bool))
    sim = jnp.where(causal, jnp.abs(sim) if signed else sim, 0.0)
    total = sim.sum(-1, keepdims=True)
    return jnp.where(total != 0, sim / jnp.where(total != 0, total, 1.0), 0.0)


# ---------------------------------------------------------------------------------------------
# M2, M3: Gu importance and sink rate


def importance(attn: Float[Array, "*B T T"]) -> Float[Array, "*B T"]:
    """Gu importance alpha_j = (1/(T-j)) sum_{i >= j} A[i, j]: mean attention key j receives."""
    n_pos = attn.shape[-1]
    lower = jnp.tril(jnp.ones((n_pos, n_pos), bool))
    received = jnp.where(lower, attn, 0.0).sum(-2)  # (*B, T): sum over queries i >= j
    return received / jnp.arange(n_pos, 0, -1, dtype=received.dtype)


def _check_index(name: str, value: int, size: int, what: str) -> None:
    if not 0 <= value < size:
        raise ValueError(f"{name}={value} is outside the {size} {what}; pass 0 <= {name} < {size}")


def sink_rate_by_layer(
    alpha: Float[Array, "N L H T"], eps: float | Float[Array, ""] = 0.3, position: int = 0
) -> Float[Array, " L"]:
    """Per-layer Gu sink rate: mean over samples and heads of 1[alpha[n, l, h, position] > eps]."""
    _check_index("position", position, alpha.shape[-1], "positions")
    return jnp.mean(alpha[..., position] > eps, axis=(0, 2))


def sink_rate(
    alpha: Float[Array, "N L H T"],
    eps: float | Float[Array, ""] = 0.3,
    position: int = 0,
    first_layer: int = 0,
) -> Float[Array, ""]:
    """Gu sink rate Sink_j^eps[l_s:]: the fraction of (sample, layer >= l_s, head) with
    alpha_j > eps.

    Args:
        alpha: (N, L, H, T) importance scores from `importance`.
        eps: threshold (Gu's default 0.3; traced values are fine).
        position: key position j (0 = the first token).
        first_layer: l_s, the first layer counted (P2 uses 2 to skip the shallow layers).
    """
    _check_index("first_layer", first_layer, alpha.shape[1], "layers")
    return sink_rate_by_layer(alpha, eps, position)[first_layer:].mean()


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SinkRates:
    """Gu sink rates at several thresholds plus the continuous score.

    Attributes:
        thresholds: (K,) the thresholds eps.
        rates: (K,) Sink_j^eps[l_s:] at each threshold, in [0, 1].
        mean_alpha: mean of alpha_j over samples, layers >= l_s and heads.
    """

    thresholds: Float[Array, " K"]
    rates: Float[Array, " K"]
    mean_alpha: Float[Array, ""]


def sink_rates(
    alpha: Float[Array, "N L H T"],
    thresholds: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5),
    position: int = 0,
    first_layer: int = 0,
) -> SinkRates:
    """`sink_rate` at each threshold of Gu's sweep, and the mean importance (see `sink_rate`)."""
    eps = jnp.asarray(thresholds, jnp.float32)
    rates = jax.vmap(lambda e: sink_rate(alpha, e, position, first_layer))(eps)
    return SinkRates(eps, rates, alpha[:, first_layer:, :, position].mean())


# ---------------------------------------------------------------------------------------------
# M4, M5: P1 BOS attention, sink profile and head map


def bos_attention_per_head(attn: Float[Array, "*B T T"]) -> Float[Array, "*B"]:
    """Mean attention to key 0 over the late queries i in [T//2, T): the P1 score of one head."""
    return attn[..., attn.shape[-1] // 2 :, 0].mean(-1)


def default_band(n_layers: int) -> tuple[int, int]:
    """The default P1 layer band [floor(L/4), L-1) ([3, 11) for GPT-2 small's 12 layers)."""
    return n_layers // 4, n_layers - 1


def band_mean(
    per_head: Float[Array, "N L H"], band: tuple[int, int] | None = None
) -> Float[Array, " N"]:
    """Mean of a per-(example, layer, head) score over layers l in [l0, l1) and heads.

    Args:
        per_head: (N, L, H) scores, e.g. `bos_attention_per_head` of the maps.
        band: (l0, l1) half-open layer range; None gives `default_band(L)`.
    """
    n_layers = per_head.shape[1]
    start, stop = default_band(n_layers) if band is None else band
    if not 0 <= start < stop <= n_layers:
        raise ValueError(
            f"band ({start}, {stop}) is empty or outside the {n_layers} layers; "
            f"pass band=(l0, l1) with 0 <= l0 < l1 <= {n_layers}"
        )
    return per_head[:, start:stop].mean((1, 2))


def bos_attention(
    attn: Float[Array, "N L H T T"], band: tuple[int, int] | None = None
) -> Float[Array, " N"]:
    """P1 BOS attention of each example: the `band_mean` of `bos_attention_per_head` (P1
    code: T = 40, band [3, 11) for GPT-2 small).

    Args:
        attn: (N, L, H, T, T) attention maps.
        band: (l0, l1) half-open layer range; None gives `default_band(L)`.

    Returns:
        (N,) one score per example; aggregate with `mean_and_se` and `percent_of_baseline`.
    """
    return band_mean(bos_attention_per_head(attn), band)


def bos_head_map(attn: Float[Array, "N L H T T"]) -> Float[Array, "L H"]:
    """Per-head sink map mean_{n, i >= T//2} A[n, l, h, i, 0] (the M5 heatmap over (l, h))."""
    return bos_attention_per_head(attn).mean(0)


def sink_profile(alpha: Float[Array, "N L H T"]) -> Float[Array, " T"]:
    """Sink profile s_j = mean_{n, l, h, i >= j} A[n, l, h, i, j], from `importance` scores.

    Every (n, l, h) holds the same T - j entries for key j, so s_j is the mean of alpha_j.
    """
    return alpha.mean((0, 1, 2))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class MeanSE:
    """Mean over examples and its standard error std(ddof=1) / sqrt(n)."""

    mean: Float[Array, ""]
    se: Float[Array, ""]


def mean_and_se(per_example: Float[Array, " N"]) -> MeanSE:
    """Mean and standard error of per-example scores (P1's "± SE")."""
    n = per_example.shape[0]
    if n < 2:
        raise ValueError(f"the standard error needs at least 2 examples, got {n}; pass more")
    return MeanSE(per_example.mean(), per_example.std(ddof=1) / jnp.sqrt(jnp.float32(n)))


def percent_of_baseline(
    per_example: Float[Array, " N"], baseline: Float[Array, " M"]
) -> Float[Array, ""]:
    """Relative effect 100 * mean(per_example) / mean(baseline), in percent."""
    return 100.0 * per_example.mean() / baseline.mean()


# ---------------------------------------------------------------------------------------------
# Uniform-attention nulls


def uniform_attention(n_pos: int) -> Float[Array, "T T"]:
    """The causal uniform map A_ij = 1/(i+1) for j <= i (zero above the diagonal)."""
    rows = 1.0 / np.arange(1, n_pos + 1)[:, None]
    return jnp.asarray(np.tril(np.broadcast_to(rows, (n_pos, n_pos))), jnp.float32)


def _harmonic(n: int) -> np.ndarray:
    """H_0 .. H_n in float64."""
    return np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, n + 1))])


def _uniform_importance(n_pos: int) -> np.ndarray:
    harmonic = _harmonic(n_pos)
    j = np.arange(n_pos)
    return (harmonic[n_pos] - harmonic[j]) / (n_pos - j)


def uniform_importance(n_pos: int) -> Float[Array, " T"]:
    """Null of alpha_j (M2), s_j (M5) and mean alpha (M3): (H_T - H_j) / (T - j)."""
    return jnp.asarray(_uniform_importance(n_pos), jnp.float32)


def uniform_sink_rate(n_pos: int, eps: float = 0.3, position: int = 0) -> Float[Array, ""]:
    """Null of the M3 sink rate: 1 if the uniform map's alpha_j exceeds eps, else 0."""
    _check_index("position", position, n_pos, "positions")
    return jnp.float32(_uniform_importance(n_pos)[position] > eps)


def uniform_bos_attention(n_pos: int) -> Float[Array, ""]:
    """Null of M4 and the M5 head map: (H_T - H_{T//2}) / (T - T//2)."""
    harmonic = _harmonic(n_pos)
    half = n_pos // 2
    return jnp.float32((harmonic[n_pos] - harmonic[half]) / (n_pos - half))


def uniform_concentration(n_pos: int) -> Float[Array, " T"]:
    """Null of the M12 mixing concentration: C_i = 1/(i+1)."""
    return jnp.asarray(1.0 / np.arange(1, n_pos + 1), jnp.float32)


# ---------------------------------------------------------------------------------------------
# M6: the four-term logit decomposition (models with a query bias)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class HeadKernels:
    """The fused QKV kernel split per head, each (H, d, d_h) in the [in, out] layout."""

    query: Float[Array, "H d dh"]
    key: Float[Array, "H d dh"]
    value: Float[Array, "H d dh"]


def split_heads(weight: Float[Array, "*X D"], n_heads: int) -> Float[Array, "H *X dh"]:
    """Split the output axis D = H * d_h into heads: (*X, D) -> (H, *X, d_h).

    Use it on a (d, d) kernel slice or a (d,) bias (e.g. b_Q -> (H, d_h)).
    """
    size = weight.shape[-1]
    if size % n_heads:
        raise ValueError(f"{size} output columns do not split into {n_heads} heads; fix n_heads")
    heads = weight.reshape(*weight.shape[:-1], n_heads, size // n_heads)
    return jnp.moveaxis(heads, -2, 0)


def head_kernels(qkv: Float[Array, "d D3"], n_heads: int) -> HeadKernels:
    """Split a fused (d, 3d) QKV kernel into per-head Q, K, V kernels (H, d, d_h)."""
    query, key, value = jnp.split(qkv, 3, axis=-1)
    return HeadKernels(*(split_heads(w, n_heads) for w in (query, key, value)))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LogitTerms:
    """q_i . k_j = T1_ij + T2_i + T3_j + T4, per head, without the 1/sqrt(d_h) scale.

    Attributes:
        t1: (*B, H, T, T) content term x_i W_Q,h (x_j W_K,h)^T.
        t2: (*B, H, T) x_i W_Q,h . b_K,h (query only: cancels in the softmax over j).
        t3: (*B, H, T) Delta_j = b_Q,h . (x_j W_K,h) (target only; no key bias).
        t4: (H,) b_Q,h . b_K,h (constant: cancels).
    """

    t1: Float[Array, "*B H T T"]
    t2: Float[Array, "*B H T"]
    t3: Float[Array, "*B H T"]
    t4: Float[Array, " H"]


def logit_terms(
    x: Float[Array, "*B T d"],
    kernels: HeadKernels,
    query_bias: Float[Array, "H dh"],
    key_bias: Float[Array, "H dh"] | None = None,
) -> LogitTerms:
    """P1's four-term decomposition of one layer's attention scores.

    Args:
        x: (*B, T, d) the attention input LN1(h) of that layer.
        kernels: per-head kernels of that layer (`head_kernels`).
        query_bias: (H, d_h) b_Q per head (`split_heads(b_Q, H)`).
        key_bias: (H, d_h) b_K per head; None for a model without one (T2 = T4 = 0).

    Returns:
        `LogitTerms`; the causal scores are s_ij = (T1 + T2 + T3 + T4) / sqrt(d_h).
    """
    if key_bias is None:
        key_bias = jnp.zeros_like(query_bias)
    q = jnp.einsum("...td,hde->...hte", x, kernels.query)  # (*B, H, T, dh), no bias
    k = jnp.einsum("...td,hde->...hte", x, kernels.key)
    return LogitTerms(
        t1=jnp.einsum("...hie,...hje->...hij", q, k),
        t2=jnp.einsum("...hte,he->...ht", q, key_bias),
        t3=jnp.einsum("...hte,he->...ht", k, query_bias),
        t4=jnp.einsum("he,he->h", query_bias, key_bias),
    )


def min_subtracted(delta: Float[Array, "*B T"]) -> Float[Array, "*B T"]:
    """Delta~ = Delta - min_j Delta per sequence, layer and head (softmax-invariant)."""
    return delta - delta.min(-1, keepdims=True)


def _zero_vs_rest(values: Float[Array, "*B T"]) -> Float[Array, "*B"]:
    return values[..., 0] - values[..., 1:].mean(-1)


def delta_dominance(delta: Float[Array, "*B T"]) -> Float[Array, "*B"]:
    """Delta-dominance D = Delta_0 - mean_{j > 0} Delta_j per sequence, layer and head."""
    return _zero_vs_rest(delta)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LogitAdvantage:
    """The position-0 score advantage a_i = s_i0 - mean_{j <= i} s_ij and its two parts.

    All in score units (divided by sqrt(d_h)); `total = content + delta` since T2 and T4 do
    not depend on j and cancel.

    Attributes:
        total: (*B, H, T) a_i per query i (a_0 = 0).
        content: (*B, H, T) the T1 part, T1_i0 - mean_{j <= i} T1_ij, over sqrt(d_h).
        delta: (*B, H, T) the T3 part, Delta_0 - mean_{j <= i} Delta_j, over sqrt(d_h).
    """

    total: Float[Array, "*B H T"]
    content: Float[Array, "*B H T"]
    delta: Float[Array, "*B H T"]


def logit_advantage(terms: LogitTerms, d_head: int) -> LogitAdvantage:
    """Attribute the position-0 score advantage of each query to T1 (content) and T3 (Delta)."""
    n_pos = terms.t3.shape[-1]
    causal = jnp.tril(jnp.ones((n_pos, n_pos), bool))
    n_visible = jnp.arange(1, n_pos + 1, dtype=terms.t3.dtype)
    content_mean = jnp.where(causal, terms.t1, 0.0).sum(-1) / n_visible
    delta_mean = jnp.cumsum(terms.t3, axis=-1) / n_visible  # mean_{j <= i} Delta_j
    scale = jnp.sqrt(jnp.float32(d_head))
    content = (terms.t1[..., 0] - content_mean) / scale
    delta = (terms.t3[..., :1] - delta_mean) / scale
    return LogitAdvantage(content + delta, content, delta)


# ---------------------------------------------------------------------------------------------
# M7–M10: effective positional embedding, massive coordinates, alignment


def effective_positional_embedding(
    pos_embed: Float[Array, "T d"], mlp0: Callable[[Float[Array, "T d"]], Float[Array, "T d"]]
) -> Float[Array, "T d"]:
    """EPE_j = p_j + MLP0(p_j): the layer-0 MLP applied to the raw PE (no LN, P1-exact).

    For the LN2 variant pass `mlp0 = lambda u: mlp(ln2(u))`.
    """
    return pos_embed + mlp0(pos_embed)


def massive_coordinates(
    vector: Float[Array, " d"], n_sigma: float = 3.0, fallback_k: int = 2
) -> Bool[Array, " d"]:
    """Massive coordinates S = {d : |v[d]| > mean_d |v| + n_sigma * std_d |v|} as a mask.

    Args:
        vector: (d,) usually EPE_0; for RoPE/NoPE models the layer-0 output at position 0.
        n_sigma: threshold in (population) standard deviations of |v|.
        fallback_k: if no coordinate passes, the top-k of |v| (P1's alignment analysis: 2).
    """
    if not 0 < fallback_k <= vector.shape[0]:
        raise ValueError(f"fallback_k={fallback_k} must be in 1..{vector.shape[0]}; fix it")
    magnitude = jnp.abs(vector)
    passed = magnitude > magnitude.mean() + n_sigma * magnitude.std()
    _, top = jax.lax.top_k(magnitude, fallback_k)
    top_mask = jnp.zeros(vector.shape, bool).at[top].set(True)
    return jnp.where(passed.any(), passed, top_mask)


def _cosine(a: Float[Array, "*B e"], b: Float[Array, "*B e"]) -> Float[Array, "*B"]:
    norms = jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(b, axis=-1)
    return jnp.sum(a * b, axis=-1) / norms


def bias_epe_alignment(
    query_bias: Float[Array, "H dh"], key_kernel: Float[Array, "H d dh"], epe: Float[Array, "T d"]
) -> Float[Array, "H T"]:
    """c_j = cos(b_Q,h, EPE_j W_K,h) per head (no LN, no key bias): P1 Fig 2."""
    keys = jnp.einsum("td,hde->hte", epe, key_kernel)
    return _cosine(query_bias[:, None, :], keys)


def alignment_gap(cosines: Float[Array, "*B T"]) -> Float[Array, "*B"]:
    """cos at j = 0 minus the mean over j > 0 (of `bias_epe_alignment`)."""
    return _zero_vs_rest(cosines)


def coordinate_contributions(
    query_bias: Float[Array, "H dh"], key_kernel: Float[Array, "H d dh"]
) -> Float[Array, "H d"]:
    """gamma[h, d] = b_Q,h . W_K,h[d, :], so that Delta_j = sum_d x_j[d] gamma[h, d]."""
    return jnp.einsum("hde,he->hd", key_kernel, query_bias)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class CoordinateContrast:
    """Mean |gamma| per head over the massive coordinates S and over the others."""

    massive: Float[Array, "*B"]
    other: Float[Array, "*B"]


def coordinate_contrast(
    gamma: Float[Array, "*B d"], massive: Bool[Array, " d"]
) -> CoordinateContrast:
    """Per-head mean |gamma| over d in S and d not in S (NaN if either set is empty)."""
    magnitude = jnp.abs(gamma)
    return CoordinateContrast(
        jnp.sum(jnp.where(massive, magnitude, 0.0), -1) / massive.sum(),
        jnp.sum(jnp.where(massive, 0.0, magnitude), -1) / (~massive).sum(),
    )


def coordinate_ratio(contrast: CoordinateContrast) -> Float[Array, ""]:
    """Pooled ratio mean_{(l,h), d in S} |gamma| / mean_{(l,h), d not in S} |gamma| (P1 ~8x)."""
    return contrast.massive.mean() / contrast.other.mean()


def epe_validation(
    token_embed: Float[Array, "*B T d"],
    pos_embed: Float[Array, "T d"],
    mlp0: Callable[[Float[Array, "*B T d"]], Float[Array, "*B T d"]],
    block0: Callable[[Float[Array, "*B T d"]], Float[Array, "*B T d"]] | None = None,
) -> Float[Array, "*B T"]:
    """cos(EPE_i, R_i - O_i): how much of the positional signal EPE captures (P1 Fig 3).

    Args:
        token_embed: (*B, T, d) token embeddings e of the inputs.
        pos_embed: (T, d) raw positional embeddings p.
        mlp0: the layer-0 MLP (position-wise, no LN), used for EPE.
        block0: None for the MLP-only variant R = x + MLP0(x), O = e + MLP0(e) with x = e + p;
            else the whole block 0 as a sequence map, R = block0(x), O = block0(e).
    """
    transform = block0 if block0 is not None else (lambda u: u + mlp0(u))
    signal = transform(token_embed + pos_embed) - transform(token_embed)
    return _cosine(effective_positional_embedding(pos_embed, mlp0), signal)


# ---------------------------------------------------------------------------------------------
# M11: massive activations and the key-bias picture


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class PositionNorms:
    """Norm at position 0 and mean norm over positions t > 0.

    Attributes:
        first: (*B,) ||x_0||.
        rest: (*B,) mean_{t > 0} ||x_t||.
    """

    first: Float[Array, "*B"]
    rest: Float[Array, "*B"]

    @property
    def ratio(self) -> Float[Array, "*B"]:
        """||x_0|| / mean_{t > 0} ||x_t||; for hidden states this is rho^l."""
        return self.first / self.rest


def position_norms(states: Float[Array, "*B T e"]) -> PositionNorms:
    """Position 0 against the others for any per-position states (position axis -2).

    Hidden states h^l (N, L, T, d) give rho^l; keys, values (N, L, H, T, d_h) or W_O v
    (N, L, H, T, d) give the norms of k_0, v_0, W_O v_0 against the other positions
    (`AttentionTrace` stores them as (B, T, H, .): swap axes 1 and 2 first).
    """
    norms = jnp.linalg.norm(states, axis=-1)
    return PositionNorms(norms[..., 0], norms[..., 1:].mean(-1))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class KeyZeroFactors:
    """q_t . k_0 = cosine * norm_product, per query t.

    Attributes:
        cosine: (*B, T) cos(q_t, k_0).
        norm_product: (*B, T) ||q_t|| ||k_0||.
    """

    cosine: Float[Array, "*B T"]
    norm_product: Float[Array, "*B T"]


def key_zero_factors(
    queries: Float[Array, "*B T dh"], keys: Float[Array, "*B T dh"]
) -> KeyZeroFactors:
    """Split each query's score on key 0 into direction and magnitude (Gu's LLaMA observation)."""
    key0 = keys[..., :1, :]
    norm_product = jnp.linalg.norm(queries, axis=-1) * jnp.linalg.norm(key0, axis=-1)
    return KeyZeroFactors(jnp.sum(queries * key0, axis=-1) / norm_product, norm_product)


# ---------------------------------------------------------------------------------------------
# M12: P0-circuit signals


def mixing_concentration(attn: Float[Array, "*B T T"]) -> Float[Array, "*B T"]:
    """C_i = sum_j A_ij^2 (1 for a query that sees one key, so C_0 = 1 always)."""
    return jnp.sum(attn**2, axis=-1)


def output_norm(outputs: Float[Array, "*B T d"]) -> Float[Array, "*B T"]:
    """||o_i||: the norm of each position's attention output."""
    return jnp.linalg.norm(outputs, axis=-1)


def cross_sample_cosine(first_states: Float[Array, "N *B d"]) -> Float[Array, "*B"]:
    """Direction stability mean_{n != n'} cos(h_{n,0}, h_{n',0}); samples on axis 0.

    Args:
        first_states: (N, *B, d) position-0 states of N samples (e.g. (N, L, d) for all layers).
    """
    n = first_states.shape[0]
    if n < 2:
        raise ValueError(f"the cross-sample cosine needs at least 2 samples, got {n}; pass more")
    unit = first_states / jnp.linalg.norm(first_states, axis=-1, keepdims=True)
    gram = jnp.einsum("n...d,m...d->...nm", unit, unit)  # (*B, N, N)
    off_diagonal = ~jnp.eye(n, dtype=bool)
    return jnp.sum(jnp.where(off_diagonal, gram, 0.0), axis=(-2, -1)) / (n * (n - 1))


def rank_auc(positive: Float[Array, " P"], negative: Float[Array, " Q"]) -> Float[Array, ""]:
    """AUC as the Mann-Whitney statistic: P(s+ > s-) + P(s+ = s-) / 2 over all pairs."""
    diff = positive[:, None] - negative[None, :]
    return jnp.mean(jnp.where(diff > 0, 1.0, jnp.where(diff == 0, 0.5, 0.0)))


def position_zero_probe_auc(states: Float[Array, "N T d"], ridge: float = 1e-3) -> Float[Array, ""]:
    """Held-out AUC of a linear probe for "is position 0" on one layer's states.

    The probe is deterministic: a ridge least-squares fit of the 0/1 label (1 at position 0)
    on the first N//2 samples, centred features, ridge = `ridge` * trace(X^T X) / d (on
    binary labels least squares gives Fisher's discriminant direction up to scale). Its
    scores on the remaining samples are ranked by `rank_auc`: position 0 of every held-out
    sample against all its other positions. 0.5 = no separation, 1 = perfect.

    Args:
        states: (N, T, d) hidden states of N >= 2 samples.
        ridge: relative ridge strength (keeps the solve defined for rank-deficient X).
    """
    n, n_pos, dim = states.shape
    if n < 2:
        raise ValueError(f"the probe needs at least 2 samples (train and test), got {n}")
    half = n // 2
    x = states[:half].reshape(half * n_pos, dim)
    y = jnp.tile((jnp.arange(n_pos) == 0).astype(x.dtype), half)
    x = x - x.mean(0)
    gram = x.T @ x
    strength = ridge * jnp.trace(gram) / dim + jnp.finfo(x.dtype).tiny
    weights = jnp.linalg.solve(gram + strength * jnp.eye(dim), x.T @ (y - y.mean()))
    scores = states[half:] @ weights  # (N - half, T); a shared offset leaves ranks unchanged
    return rank_auc(scores[:, 0], scores[:, 1:].reshape(-1))


# ---------------------------------------------------------------------------------------------
# M13: functional cost


def next_token_cross_entropy(
    logits: Float[Array, "*B T V"], tokens: Int[Array, "*B T"]
) -> Float[Array, "*B T1"]:
    """CE_i = -log softmax(logits_i)[tokens_{i+1}] for i < T-1 (nats; index i predicts i+1)."""
    log_probs = jax.nn.log_softmax(logits[..., :-1, :], axis=-1)
    picked = jnp.take_along_axis(log_probs, tokens[..., 1:, None], axis=-1)
    return -picked[..., 0]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class CrossEntropySummary:
    """Next-token CE aggregated over samples.

    Attributes:
        per_position: (T-1,) mean over samples at each predicting position.
        mean: mean over samples and positions.
        se: standard error over samples of the per-sample mean.
    """

    per_position: Float[Array, " T1"]
    mean: Float[Array, ""]
    se: Float[Array, ""]


def summarize_cross_entropy(ce: Float[Array, "N T1"]) -> CrossEntropySummary:
    """Aggregate `next_token_cross_entropy`. For Delta CE vs a baseline on the same inputs,
    summarise the paired difference `ce - baseline_ce`."""
    per_sample = mean_and_se(ce.mean(-1))
    return CrossEntropySummary(ce.mean(0), per_sample.mean, per_sample.se)


# ---------------------------------------------------------------------------------------------
# M15: dynamics


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Onset:
    """When a metric rises over training (NaN for a flat curve).

    Attributes:
        half_step: first checkpoint step where the min-max normalised value reaches 50% of
            its final normalised value, i.e. v >= min + (v_final - min) / 2.
        max_slope_step: midpoint of the checkpoint interval with the largest increase per step.
    """

    half_step: Float[Array, ""]
    max_slope_step: Float[Array, ""]


def onset(steps: Float[Array, " S"], values: Float[Array, " S"]) -> Onset:
    """Onset of a rising metric from its checkpoints (for a falling one pass -values).

    Args:
        steps: (S,) increasing training steps of the checkpoints (S >= 2).
        values: (S,) the metric (any of M3/M4/M6–M12) at those steps.
    """
    if steps.shape != values.shape or steps.shape[0] < 2:
        raise ValueError("onset needs steps and values of the same length >= 2; fix the inputs")
    steps = jnp.asarray(steps, jnp.float32)
    low, span = values.min(), values.max() - values.min()
    normalised = (values - low) / jnp.where(span > 0, span, 1.0)
    half = steps[jnp.argmax(normalised >= 0.5 * normalised[-1])]  # the last entry always passes
    steepest = jnp.argmax(jnp.diff(values) / jnp.diff(steps))
    midpoint = (steps[steepest] + steps[steepest + 1]) / 2
    flat = span == 0
    return Onset(jnp.where(flat, jnp.nan, half), jnp.where(flat, jnp.nan, midpoint))
