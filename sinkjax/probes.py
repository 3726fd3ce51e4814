"""Probes of spec C: risks against an oracle, attention sinks, value drains, residual peaks.

Every probe is a pure function of arrays (a model's logits, its `ModelTrace`, the input tokens
and an oracle), so it runs inside `jit`/`vmap` and inside the training program. Position 0
holds the sink token `<s>` whenever the sequence starts with it.
"""

import dataclasses

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from sinkjax.models.trace import AttentionTrace


def oracle_cross_entropy(
    logits: Float[Array, "B N V"], oracle: Float[Array, "B N V"]
) -> Float[Array, "B N"]:
    """r_n = -sum_k p_nk log q_nk, dropping the terms with p_nk = 0 (q = softmax(logits))."""
    log_q = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.sum(jnp.where(oracle > 0, oracle * log_q, 0.0), axis=-1)


def oracle_entropy(oracle: Float[Array, "B N V"]) -> Float[Array, "B N"]:
    """H(p_n): the Bayes risk at each position."""
    return -jnp.sum(
        jnp.where(oracle > 0, oracle * jnp.log(jnp.where(oracle > 0, oracle, 1)), 0), -1
    )


def masked_mean(x: Float[Array, "..."], mask: Bool[Array, "..."]) -> Float[Array, ""]:
    """Mean of `x` over the entries where `mask` holds (NaN if none)."""
    return jnp.sum(jnp.where(mask, x, 0.0)) / jnp.sum(mask)


def attention_to_first(
    weights: Float[Array, "B H N N"], query_mask: Bool[Array, "B N"]
) -> Float[Array, " H"]:
    """Attn_<s>: mean attention weight A[n, 0] over the query positions in `query_mask`."""
    to_first = weights[:, :, :, 0]  # (B, H, N)
    mask = query_mask[:, None, :]
    return jnp.sum(jnp.where(mask, to_first, 0.0), axis=(0, 2)) / jnp.sum(mask, axis=(0, 2))


def attention_to_previous(
    weights: Float[Array, "B H N N"], query_mask: Bool[Array, "B N"]
) -> Float[Array, " H"]:
    """Mean attention weight A[n, n-1] over the query positions n >= 1 in `query_mask`."""
    to_previous = jnp.diagonal(weights, offset=-1, axis1=-2, axis2=-1)  # (B, H, N-1)
    mask = query_mask[:, None, 1:]
    return jnp.sum(jnp.where(mask, to_previous, 0.0), axis=(0, 2)) / jnp.sum(mask, axis=(0, 2))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SinkLogit:
    """logit_<s> summary per head (spec C, code definition).

    Attributes:
        per_type: (H, V) Delta(v): the mean over positions holding token v of
            Delta_n = s[n, 0] - mean_{1 <= j <= n-1} s[n, j] (n >= 2; NaN for absent tokens).
        mean: (H,) mean of Delta(v) over the selected token types.
        q10, q90: (H,) 10% and 90% quantiles of Delta(v) over the selected token types.
    """

    per_type: Float[Array, "H V"]
    mean: Float[Array, " H"]
    q10: Float[Array, " H"]
    q90: Float[Array, " H"]


def sink_logit(
    logits: Float[Array, "B H N N"], tokens: Int[Array, "B N"], type_mask: Bool[Array, " V"]
) -> SinkLogit:
    """logit_<s> from scaled attention scores (the official `summarise_logits_difference`).

    Args:
        logits: (B, H, N, N) scaled scores s = q.k / sqrt(d_head), unmasked.
        tokens: (B, N) input tokens; token types are averaged separately.
        type_mask: (V,) token types entering the mean and quantiles (the code: non-trigger,
            non-`<s>` types); types absent from the batch are skipped.
    """
    n_pos = logits.shape[-1]
    n = jnp.arange(n_pos)[:, None]
    j = jnp.arange(n_pos)[None, :]
    others = (j >= 1) & (j <= n - 1)  # (N, N): keys 1..n-1, excluding <s> and the diagonal
    mean_others = jnp.sum(jnp.where(others, logits, 0.0), -1) / jnp.maximum(n[:, 0] - 1, 1)
    delta = logits[..., 0] - mean_others  # (B, H, N)
    valid = (jnp.arange(n_pos) >= 2)[None, :]  # n = 0, 1 have no "other" keys
    one_hot = jax.nn.one_hot(tokens, type_mask.shape[0]) * valid[..., None]  # (B, N, V)
    counts = one_hot.sum((0, 1))  # (V,)
    sums = jnp.einsum("bhn,bnv->hv", delta, one_hot)
    per_type = jnp.where(counts > 0, sums / jnp.maximum(counts, 1), jnp.nan)
    selected = jnp.where(type_mask & (counts > 0), per_type, jnp.nan)
    return SinkLogit(
        per_type=per_type,
        mean=jnp.nanmean(selected, axis=-1),
        q10=jnp.nanquantile(selected, 0.1, axis=-1),
        q90=jnp.nanquantile(selected, 0.9, axis=-1),
    )


def first_value_norms(attn: AttentionTrace) -> tuple[Float[Array, " H"], Float[Array, " H"]]:
    """(||W_O v_<s>||, ||v_<s>||) per head at position 0, averaged over the batch.

    Position 0 sees only itself, so v_<s> is the same in every sequence that starts with <s>.
    """
    return (
        jnp.linalg.norm(attn.value_out[:, 0], axis=-1).mean(0),
        jnp.linalg.norm(attn.values[:, 0], axis=-1).mean(0),
    )


def value_norms_by_type(attn: AttentionTrace, tokens: Int[Array, "B N"], vocab_size: int):
    """(H, V) mean ||W_O v|| over the positions holding each token type (NaN if absent)."""
    norms = jnp.linalg.norm(attn.value_out, axis=-1)  # (B, N, H)
    one_hot = jax.nn.one_hot(tokens, vocab_size)
    counts = one_hot.sum((0, 1))
    sums = jnp.einsum("bnh,bnv->hv", norms, one_hot)
    return jnp.where(counts > 0, sums / jnp.maximum(counts, 1), jnp.nan)


def first_residual_norm(resid: Float[Array, "B N d"]) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """(||Res_<s>||, recentred ||Res_<s>||) of a residual stream.

    ||Res_<s>|| is averaged over the batch; the recentred norm subtracts the mean norm over
    every sequence and position n >= 1.
    """
    norms = jnp.linalg.norm(resid, axis=-1)  # (B, N)
    first = norms[:, 0].mean()
    return first, first - norms[:, 1:].mean()
