"""Next-token training of a small GPT-2-style character LM on prose, code and math, and its probes.

The toy model (spec `sinks_gpt2_p0.md` §5) is the zoo `Transformer` as GPT-2: pre-LN, learned
absolute positions, biases on every Linear (so a query bias b_Q), tanh-GELU and an output head
tied to the token embedding. It learns next-token prediction on fresh windows of the three
corpora of `tasks.text`, drawn on device with or without a `<s>` (BOS) token at position 0.

Along training, `text_lm_metrics` takes every probe of §4 that the toy supports on a fixed
held-out batch (D domains x B sequences of N tokens), in the same compiled program: the
cross-entropy per domain (M13), Gu's importance and sink rate (M2/M3), P1's BOS attention
(M4), the massive-activation ratio (M11), the P0-circuit signals (M12) and, with a query
bias, Delta-dominance (M6). Every metric comes from `sinkjax.sinks.metrics`; this module only
feeds it the traced activations.

The language-model plumbing (initialisation, the windowed loss, the per-domain forward pass)
is `sinkjax.text.lm`, shared with the byte-level LM of the active-dormant study.
"""

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from sinkjax.models import ModelTrace, Transformer, TransformerConfig
from sinkjax.models.config import InitScheme
from sinkjax.sinks import metrics as sinks
from sinkjax.text.domains import TEXT_DOMAINS, TextBatch, TextStream, sample_text, vocab_size
from sinkjax.text.lm import domain_cross_entropy, domain_forward, lm_train_task
from sinkjax.train import TrainTask

# Gu's sink-rate threshold (M3 default).
SINK_EPS = 0.3
# Training-time variants of the toy (spec §4 T1-T3), as `TransformerConfig` changes to the
# GPT-2 baseline: without the query bias b_Q, with other position codes, and with attention
# that can park its weight off token 0 (unnormalised sigmoid, Gu's learnable key-bias slot).
ARCHITECTURES = {
    "gpt2": {},
    "no-query-bias": {"query_bias": False},
    "rope": {"positions": "rope"},
    "alibi": {"positions": "alibi"},
    "nope": {"positions": "none"},
    "sigmoid": {"attention": "sigmoid"},
    "key-bias-slot": {"attention": "softmax_kbias"},
}


def toy_gpt2_config(
    vocab: int,
    *,
    n_layers: int = 4,
    d_model: int = 128,
    n_heads: int = 4,
    max_len: int = 64,
    init: InitScheme = "flax",
    architecture: str = "gpt2",
) -> TransformerConfig:
    """The GPT-2-style toy: pre-LN, learned absolute positions, biases on (b_Q, b_K, b_V
    included), `gelu_new`, tied embeddings, MLP width 4d, LayerNorm eps 1e-5.

    Args:
        vocab: vocabulary size V (`tasks.text.vocab_size(with_bos)`).
        n_layers, d_model, n_heads: blocks, residual width d and heads per block.
        max_len: positions of the learned table (at least the window length N).
        init: "flax" (default) draws the embedding N(0, 1/d), so the tied logits start at
            unit scale; "torch" draws it N(0, 1), which makes the tied logits ~sqrt(d) at
            initialisation and slows the first steps.
        architecture: a name in `ARCHITECTURES`: the GPT-2 baseline or one of its variants.

    Raises:
        ValueError: `architecture` is not in `ARCHITECTURES`.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"unknown architecture {architecture!r}; pick one of {', '.join(ARCHITECTURES)}"
        )
    gpt2 = dict(
        vocab_size=vocab,
        max_len=max_len,
        d_model=d_model,
        n_layers=n_layers,
        n_heads=n_heads,
        d_mlp=4 * d_model,
        positions="learned",
        mlp_activation="gelu_new",
        tie_embeddings=True,
        use_bias=True,
        init=init,
    )
    return TransformerConfig(**{**gpt2, **ARCHITECTURES[architecture]})


# ---------------------------------------------------------------------------------------------
# The text task


def text_lm_train_task(
    model_cfg: TransformerConfig,
    stream: TextStream,
    batch_size: int,
    seq_len: int,
    domain_weights: Float[Array, " D"],
    eval_batch: TextBatch,
    *,
    with_bos: bool,
) -> tuple[TrainTask, nnx.GraphDef]:
    """The `TrainTask` of next-token prediction on fresh text windows, and the graphdef.

    Args:
        model_cfg: the model (e.g. `toy_gpt2_config`); its vocabulary must hold every id of
            the training windows and of `eval_batch`, its position table both window lengths.
        stream: the training text of every domain (`TextStream.from_parts(corpus.train)`).
        batch_size, seq_len: B windows of N tokens per step (`sample_text`).
        domain_weights: (D,) sampling weights of `TEXT_DOMAINS` (non-negative, not all zero).
        eval_batch: fixed held-out windows (`make_text_eval_batch`); it may differ from the
            training data in BOS (e.g. evaluate a BOS-trained model without BOS).
        with_bos: training inputs start with `<s>`.

    The loss is the mean cross-entropy over all B x N positions (`window_loss`); `evaluate` is
    `text_lm_metrics` on `eval_batch`.

    Raises:
        ValueError: the vocabulary or position table is too small, or `domain_weights` does
            not have one entry per domain.
    """
    needed = max(vocab_size(with_bos), int(eval_batch.inputs.max()) + 1)
    if model_cfg.vocab_size < needed:
        raise ValueError(
            f"vocab_size={model_cfg.vocab_size} cannot hold the {needed} ids of the training "
            f"windows (with_bos={with_bos}) and the eval batch; use vocab_size(True) when "
            "either holds <s>"
        )
    longest = max(seq_len, eval_batch.inputs.shape[-1])
    if model_cfg.max_len < longest:
        raise ValueError(f"max_len={model_cfg.max_len} is shorter than the {longest}-token windows")
    weights = jnp.asarray(domain_weights, jnp.float32)
    if weights.shape != (len(TEXT_DOMAINS),):
        raise ValueError(
            f"domain_weights has shape {weights.shape}; give one weight per domain {TEXT_DOMAINS}"
        )

    def sample(key: PRNGKeyArray) -> tuple[Int[Array, "B N"], Int[Array, "B N"]]:
        inputs, targets, _ = sample_text(
            key, stream, batch_size, seq_len, weights, with_bos=with_bos
        )
        return inputs, targets

    def metrics(graphdef: nnx.GraphDef, params: PyTree) -> dict[str, Array]:
        return text_lm_metrics(graphdef, params, eval_batch)

    return lm_train_task(model_cfg, sample, batch_size, metrics)


# ---------------------------------------------------------------------------------------------
# Probes


def attention_inputs(model: Transformer, trace: ModelTrace) -> list[Float[Array, "S N d"]]:
    """x = LN1(h) of every block: its LayerNorm applied to the residual stream entering it.

    The stream entering block l is `trace.embed` for l = 0 and block l - 1's `resid_post` for
    l >= 1; the block's own `ln_attn` recomputes exactly the input its attention saw.
    """
    entering = (trace.embed, *(layer.resid_post for layer in trace.layers[:-1]))
    return [block.ln_attn(h) for block, h in zip(model.blocks, entering, strict=True)]


def attention_outputs(trace: ModelTrace) -> Float[Array, "S L N d"]:
    """o_i = sum_h sum_j A[h, i, j] (W_O v_j)_h: each block's attention output before b_O.

    Exact from the trace: `value_out` already holds each head's v pushed through its slice of
    W_O, so mixing it with the weights gives sum_h W_O,h z_h. The output bias b_O is left
    out: it is the same at every position.
    """
    return jnp.stack(
        [
            jnp.einsum("shij,sjhe->sie", layer.attn.weights, layer.attn.value_out)
            for layer in trace.layers
        ],
        axis=1,
    )


def delta_dominance_by_layer(model: Transformer, trace: ModelTrace) -> Float[Array, "L H"]:
    """M6 Delta-dominance D = Delta_0 - mean_{j > 0} Delta_j per layer and head, mean over
    sequences; Delta_j = b_Q,h . (x_j W_K,h) with x = LN1(h), without the 1/sqrt(d_h) scale.

    Needs a query bias in every block (`cfg.has_query_bias`).
    """
    n_heads = model.cfg.n_heads
    dominance = []
    for block, x in zip(model.blocks, attention_inputs(model, trace), strict=True):
        kernels = sinks.head_kernels(block.attn.qkv[...], n_heads)
        query_bias = sinks.split_heads(block.attn.q_bias[...], n_heads)
        delta = sinks.logit_terms(x, kernels, query_bias).t3  # (S, H, N)
        dominance.append(sinks.delta_dominance(delta).mean(0))
    return jnp.stack(dominance)


def _attention_metrics(attn: Float[Array, "S L H N N"]) -> dict[str, Array]:
    """M2/M3, M4 and M12 concentration from the stacked attention maps (see `text_lm_metrics`)."""
    alpha = sinks.importance(attn)  # (S, L, H, N)
    n_pos = attn.shape[-1]
    return {
        "sink_rate": sinks.sink_rate_by_layer(alpha, SINK_EPS),
        "alpha0": alpha[..., 0].mean(0),
        "bos_attention": sinks.bos_head_map(attn).mean(-1),
        "bos_attention_band": sinks.bos_attention(attn).mean(),
        "concentration": sinks.mixing_concentration(attn)[..., 1:].mean((0, 2, 3)),
        "concentration_null": sinks.uniform_concentration(n_pos)[1:].mean(),
    }


def _stream_metrics(
    resid: Float[Array, "S L N d"], attn_out: Float[Array, "S L N d"], n_domains: int
) -> dict[str, Array]:
    """M11 rho and the M12 signals of the residual streams (see `text_lm_metrics`).

    The probe's train/test split is by sample halves, so the samples are reordered
    sequence-major, (B, D) instead of (D, B): both halves then hold every domain.
    """
    interleaved = resid.reshape(n_domains, -1, *resid.shape[1:]).swapaxes(0, 1)
    per_layer = interleaved.reshape(-1, *resid.shape[1:]).swapaxes(0, 1)  # (L, S, N, d)
    out_norms = sinks.position_norms(attn_out)
    return {
        "rho": sinks.position_norms(resid).ratio.mean(0),
        "attn_out_first": out_norms.first.mean(0),
        "attn_out_rest": out_norms.rest.mean(0),
        "cross_sample_cosine": sinks.cross_sample_cosine(resid[:, :, 0]),
        "p0_probe_auc": jax.vmap(sinks.position_zero_probe_auc)(per_layer),
    }


def text_lm_metrics(graphdef: nnx.GraphDef, params: PyTree, batch: TextBatch) -> dict[str, Array]:
    """Every probe of one model on the evaluation batch, from one traced forward pass.

    S = D * B sequences (D domains in `TEXT_DOMAINS` order, B each) of N tokens; L layers, H
    heads. Position 0 is `<s>` when the batch has BOS, else the first character. Every block
    must have an attention sub-layer (no `no_attn`).

    Returns:
        A flat dict of float32 arrays:

        - `ce` (D,): mean next-token cross-entropy per domain (M13, nats), and
          `ce_by_position` (D, N) its mean over sequences at each position (position i
          predicts target i; `sinks.next_token_cross_entropy` is the same quantity for one
          token array, where the last position has no target).
        - `sink_rate` (L,): Gu's sink rate at eps = `SINK_EPS` on position 0 per layer, over
          sequences and heads (M3, in [0, 1]); `alpha0` (L, H): the importance alpha_0
          (M2), mean over sequences (uniform null: H_N / N).
        - `bos_attention` (L,): P1's per-head BOS attention (mean attention of queries
          i >= N//2 on key 0), mean over sequences and heads (M4); `bos_attention_band` ():
          the banded scalar over the default band [L//4, L-1), mean over sequences (needs
          L >= 2).
        - `rho` (L,): rho^l = ||h_0|| / mean_{t > 0} ||h_t|| of the residual after each block,
          mean over sequences (M11).
        - `concentration` (L,): mixing concentration sum_j A_ij^2 of queries i >= 1, mean over
          sequences, heads and queries (M12); `concentration_null` (): the same for uniform
          causal attention, mean_{i >= 1} 1/(i+1).
        - `attn_out_first`, `attn_out_rest` (L,): ||o_0|| and mean_{t > 0} ||o_t|| of the
          attention output before b_O (`attention_outputs`), mean over sequences (M12).
        - `cross_sample_cosine` (L,): mean_{n != n'} cos(h_{n,0}, h_{n',0}) of the residual
          after each block over all S sequences (M12; exactly 1 with BOS, since position 0
          then sees the same token in every sequence).
        - `p0_probe_auc` (L,): held-out AUC of the linear "is position 0" probe on the residual
          after each block (M12, `sinks.position_zero_probe_auc`; 0.5 = chance).
        - `delta_dominance` (L, H), only with a query bias and without RoPE: mean over
          sequences of Delta_0 - mean_{j > 0} Delta_j (M6, `delta_dominance_by_layer`).
        - `slot_attention` (L,), only with an extra key slot (key-bias slot, sink token): the
          weight of queries i >= N//2 on the slot, mean over sequences and heads.

    Sigmoid and ReLU attention maps are row-normalised first (Gu's proxy).
    """
    logits, trace = domain_forward(graphdef, params, batch.inputs)
    model = nnx.merge(graphdef, params)
    resid = jnp.stack([layer.resid_post for layer in trace.layers], axis=1)  # (S, L, N, d)
    metrics = {
        "ce": domain_cross_entropy(logits, batch.targets),
        "ce_by_position": optax.softmax_cross_entropy_with_integer_labels(
            logits, batch.targets
        ).mean(1),
        **_attention_metrics(sinks.attention_maps(trace, not model.cfg.normalised_attention)),
        **_stream_metrics(resid, attention_outputs(trace), batch.inputs.shape[0]),
    }
    slot = sinks.slot_attention(trace)
    if slot is not None:
        metrics["slot_attention"] = slot.mean((0, 2))
    if model.cfg.has_query_bias and model.cfg.positions != "rope":
        metrics["delta_dominance"] = delta_dominance_by_layer(model, trace)
    return metrics
