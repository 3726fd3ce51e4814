"""Next-byte training of a small LM on prose and code, its probes and its head ablations.

Probes are taken on fixed held-out batches of each domain (every sequence starts with `<s>` at
position 0): the attention on position 0 per layer and head, the sink logit, ||W_O v|| of
position 0 against the median of the other positions, and the same for the residual norm.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float, Int, PyTree

from sinkjax import probes
from sinkjax.interventions import Interventions
from sinkjax.models import ModelTrace, TransformerConfig
from sinkjax.text.char_corpus import (
    BOS,
    DOMAINS,
    VOCAB_SIZE,
    CharCorpus,
    TokenStream,
    sample_windows,
)
from sinkjax.text.lm import domain_cross_entropy, domain_forward, lm_train_task
from sinkjax.train import TrainTask

# Seed of the fixed held-out evaluation windows.
EVAL_SEED = 27


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class CharEvalBatch:
    """Fixed held-out windows of each domain (D = 2: prose, code).

    Attributes:
        inputs: (D, B, N) int32, `<s>` then the first N - 1 bytes of each window.
        targets: (D, B, N) int32, the windows.
    """

    inputs: Int[Array, "D B N"]
    targets: Int[Array, "D B N"]


def make_eval_batch(
    corpus: CharCorpus, batch_size: int, seq_len: int, seed: int = EVAL_SEED
) -> CharEvalBatch:
    """B held-out windows per domain, drawn from `seed`."""
    return _eval_windows(
        jax.random.key(seed), TokenStream.from_parts(corpus.heldout), batch_size, seq_len
    )


@functools.partial(jax.jit, static_argnums=(2, 3))
def _eval_windows(key, stream: TokenStream, batch_size: int, seq_len: int) -> CharEvalBatch:
    keys = jax.random.split(key, len(DOMAINS))
    batches = [
        sample_windows(k, stream, batch_size, seq_len, float(domain == "code"))[:2]
        for k, domain in zip(keys, DOMAINS, strict=True)
    ]
    inputs, targets = (jnp.stack(parts) for parts in zip(*batches, strict=True))
    return CharEvalBatch(inputs, targets)


def _first_vs_others(norms: Float[Array, "B N ..."]) -> tuple[Array, Array]:
    """(mean over the batch at position 0, median over the batch and positions n >= 1)."""
    return norms[:, 0].mean(0), jnp.median(norms[:, 1:].reshape(-1, *norms.shape[2:]), axis=0)


def charlm_metrics(
    logits: Float[Array, "D B N V"], trace: ModelTrace, batch: CharEvalBatch
) -> dict[str, Array]:
    """Every probe of one model on the evaluation batch (both domains; L layers, H heads).

    Returns:
        `ce` (D,): cross-entropy per domain; `attn_sink` (D, L, H): mean attention on position 0
        over queries n >= 1, per domain; `sink_logit` (L, H): mean over byte types of
        s[n, 0] - mean_{1 <= j < n} s[n, j] (`probes.sink_logit`); `value_norm_first` and
        `value_norm_others` (L, H): ||W_O v|| at position 0 and its median over positions
        n >= 1; `resid_norm_first` and `resid_norm_others` (L,): the same for the residual
        stream after each block.
    """
    n_domains, batch_size, seq_len = batch.inputs.shape
    inputs = batch.inputs.reshape(-1, seq_len)
    later = jnp.broadcast_to(jnp.arange(seq_len) >= 1, inputs.shape)
    byte_types = jnp.arange(VOCAB_SIZE) != BOS
    per_layer = {k: [] for k in ("attn_sink", "sink_logit", "value_norm_first")}
    per_layer |= {"value_norm_others": [], "resid_norm_first": [], "resid_norm_others": []}
    for layer in trace.layers:
        weights = layer.attn.weights.reshape(n_domains, batch_size, *layer.attn.weights.shape[1:])
        per_layer["attn_sink"].append(
            jax.vmap(probes.attention_to_first, (0, None))(weights, later[:batch_size])
        )
        per_layer["sink_logit"].append(
            probes.sink_logit(layer.attn.logits, inputs, byte_types).mean
        )
        first, others = _first_vs_others(jnp.linalg.norm(layer.attn.value_out, axis=-1))
        per_layer["value_norm_first"].append(first)
        per_layer["value_norm_others"].append(others)
        first, others = _first_vs_others(jnp.linalg.norm(layer.resid_post, axis=-1))
        per_layer["resid_norm_first"].append(first)
        per_layer["resid_norm_others"].append(others)
    metrics = {k: jnp.stack(v) for k, v in per_layer.items()}
    metrics["attn_sink"] = metrics["attn_sink"].transpose(1, 0, 2)  # (L, D, H) -> (D, L, H)
    metrics["ce"] = domain_cross_entropy(logits, batch.targets)
    return metrics


def forward(
    graphdef: nnx.GraphDef, params: PyTree, batch: CharEvalBatch
) -> tuple[Float[Array, "D B N V"], ModelTrace]:
    """(logits (D, B, N, V), trace over the D * B sequences) of one model in one pass."""
    return domain_forward(graphdef, params, batch.inputs)


def charlm_train_task(
    model_cfg: TransformerConfig,
    stream: TokenStream,
    batch_size: int,
    seq_len: int,
    code_fraction: float,
    eval_batch: CharEvalBatch,
) -> tuple[TrainTask, nnx.GraphDef]:
    """The `TrainTask` of next-byte prediction on fresh windows, and the model's graphdef.

    The loss is the mean cross-entropy over all B x N positions, the first byte (predicted
    from `<s>` alone) included.
    """

    def sample(key):
        return sample_windows(key, stream, batch_size, seq_len, code_fraction)[:2]

    def metrics(graphdef, params):
        logits, trace = forward(graphdef, params, eval_batch)
        return charlm_metrics(logits, trace, eval_batch)

    return lm_train_task(model_cfg, sample, batch_size, metrics)


@functools.partial(jax.jit, static_argnums=0)
def head_ablation_cross_entropy(
    graphdef: nnx.GraphDef, params: PyTree, batch: CharEvalBatch
) -> tuple[Float[Array, " D"], Float[Array, "L H D"]]:
    """Cross-entropy per domain of the intact model and with each head zero-ablated.

    All L x H ablations (`Interventions.zero_attention(layer, head)`) run in one compiled,
    vmapped forward pass.

    Returns:
        (base (D,), ablated (L, H, D)) in nats.
    """
    model_cfg = nnx.merge(graphdef, params).cfg
    n_layers, n_heads = model_cfg.n_layers, model_cfg.n_heads
    none = Interventions.none(n_layers, n_heads)

    def cross_entropy(interventions):
        model = nnx.merge(graphdef, params)
        logits = model(batch.inputs.reshape(-1, batch.inputs.shape[-1]), interventions)
        return domain_cross_entropy(logits.reshape(*batch.targets.shape, -1), batch.targets)

    heads = jnp.arange(n_layers * n_heads)
    ablations = jax.vmap(lambda i: none.zero_attention(i // n_heads, i % n_heads))(heads)
    ablated = jax.vmap(cross_entropy)(ablations)  # (L * H, D)
    return cross_entropy(none), ablated.reshape(n_layers, n_heads, -1)
