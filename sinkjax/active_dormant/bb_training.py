"""Next-token training on Bigram-Backcopy, and the spec C metrics logged along the way."""

import dataclasses

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jaxtyping import Array, Bool, Float, Int

from sinkjax import probes
from sinkjax.active_dormant.bb import BBTask, is_trigger, oracle_distribution, sample_bb
from sinkjax.active_dormant.simplified_model import CodeSimpleModel
from sinkjax.interventions import Interventions
from sinkjax.models import AttentionTrace, ModelTrace, Transformer, TransformerConfig
from sinkjax.sharding import shard_batch
from sinkjax.train import TrainTask

# The official code's probe batch comes from its own seed; ours is fixed the same way.
EVAL_SEED = 27


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class BBEvalBatch:
    """A fixed evaluation batch with its oracles.

    Attributes:
        inputs: (B, N) int32 input tokens.
        oracle: (B, N, V) the code's oracle p_n (position 0 scored against P[<s>]).
        oracle_corrected: (B, N, V) the true oracle (position 0 scored against pi0).
        trigger: (B, N) bool, backcopy positions (input token is a trigger).
        bayes_bigram: () code-style Bayes risk at bigram positions.
        bayes_bigram_corrected: () the same with the corrected oracle.
    """

    inputs: Int[Array, "B N"]
    oracle: Float[Array, "B N V"]
    oracle_corrected: Float[Array, "B N V"]
    trigger: Bool[Array, "B N"]
    bayes_bigram: Float[Array, ""]
    bayes_bigram_corrected: Float[Array, ""]


def make_eval_batch(
    task: BBTask, batch_size: int, seq_len: int, *, with_bos: bool = True, seed: int = EVAL_SEED
) -> BBEvalBatch:
    """Sample the fixed evaluation batch and its oracles from `seed`."""
    inputs, _ = sample_bb(jax.random.key(seed), task, batch_size, seq_len, with_bos=with_bos)
    oracle = oracle_distribution(inputs, task, position0="code")
    corrected = oracle_distribution(inputs, task, position0="corrected")
    trigger = is_trigger(inputs, task)
    bigram = ~trigger
    return BBEvalBatch(
        inputs=inputs,
        oracle=oracle,
        oracle_corrected=corrected,
        trigger=trigger,
        bayes_bigram=probes.masked_mean(probes.oracle_entropy(oracle), bigram),
        bayes_bigram_corrected=probes.masked_mean(probes.oracle_entropy(corrected), bigram),
    )


def sink_type_mask(task: BBTask) -> Bool[Array, " V"]:
    """Token types averaged by logit_<s>: neither triggers nor `<s>` (nor `<d>`)."""
    types = jnp.arange(task.vocab_size)
    return ~task.trigger_mask & (types != task.bos) & (types < task.bos)


# The (L, H) attention metrics of `bb_metrics`, one row per block (NaN without attention).
_ATTENTION_METRICS = (
    "attn_sink",
    "attn_sink_later",
    "sink_logit",
    "sink_logit_q10",
    "sink_logit_q90",
    "value_norm_sink",
    "value_norm_sink_pre",
)


def _risk_metrics(
    logits: Float[Array, "B N V"], batch: BBEvalBatch, bigram: Bool[Array, "B N"]
) -> dict[str, Float[Array, ""]]:
    """Scalar risks (nats per token) against the oracles on the evaluation batch: the mean
    cross-entropy at backcopy (`backcopy_risk`) and bigram (`bigram_risk`, `bigram` the mask of
    its positions) positions, and their excess over the Bayes risk (`backcopy_excess`,
    `bigram_excess`, and `bigram_excess_corrected` against the true oracle)."""
    risk = probes.oracle_cross_entropy(logits, batch.oracle)
    risk_corrected = probes.oracle_cross_entropy(logits, batch.oracle_corrected)
    metrics = {
        "backcopy_risk": probes.masked_mean(risk, batch.trigger),
        "bigram_risk": probes.masked_mean(risk, bigram),
    }
    metrics["backcopy_excess"] = metrics["backcopy_risk"]  # the backcopy Bayes risk is 0
    metrics["bigram_excess"] = metrics["bigram_risk"] - batch.bayes_bigram
    metrics["bigram_excess_corrected"] = (
        probes.masked_mean(risk_corrected, bigram) - batch.bayes_bigram_corrected
    )
    return metrics


def _attention_metrics(
    attn: AttentionTrace,
    inputs: Int[Array, "B N"],
    type_mask: Bool[Array, " V"],
    bigram: Bool[Array, "B N"],
    later: Bool[Array, "B N"],
) -> dict[str, Float[Array, " H"]]:
    """The `_ATTENTION_METRICS` of one block's attention, each (H,): attention on <s> of the
    bigram queries (`later`: those at n >= 1), the sink logit's mean and 10%/90% quantiles
    over the `type_mask` token types of `inputs` (B, N), and the norms of <s>'s value after
    and before W_O."""
    logit = probes.sink_logit(attn.logits, inputs, type_mask)
    wov, v = probes.first_value_norms(attn)
    return {
        "attn_sink": probes.attention_to_first(attn.weights, bigram),
        "attn_sink_later": probes.attention_to_first(attn.weights, later),
        "sink_logit": logit.mean,
        "sink_logit_q10": logit.q10,
        "sink_logit_q90": logit.q90,
        "value_norm_sink": wov,
        "value_norm_sink_pre": v,
    }


def bb_metrics(
    logits: Float[Array, "B N V"],
    trace: ModelTrace,
    batch: BBEvalBatch,
    type_mask: Bool[Array, " V"],
) -> dict[str, Array]:
    """Every spec C metric of one model on the evaluation batch.

    Returns scalars `backcopy_risk`, `bigram_risk`, `backcopy_excess`, `bigram_excess`,
    `bigram_excess_corrected`; (L, H) arrays `attn_sink`, `attn_sink_later` (the same over query
    positions n >= 1: with ReLU attention the unnormalised A[0, 0] would dominate the mean),
    `sink_logit` (mean over token types),
    `sink_logit_q10`, `sink_logit_q90`, `value_norm_sink` (||W_O v_<s>||), `value_norm_sink_pre`
    (||v_<s>||) with NaN rows for blocks without attention; scalars `embed_norm_sink` and
    `embed_norm_sink_recentred` (the residual stream entering block 0); and (L,) arrays
    `resid_norm_sink` and `resid_norm_sink_recentred` (block outputs).
    """
    bigram = ~batch.trigger
    metrics = _risk_metrics(logits, batch, bigram)
    later = bigram.at[:, 0].set(False)  # queries n >= 1: A[0, 0] is not a choice of key
    per_layer = {k: [] for k in _ATTENTION_METRICS}
    resid, resid_recentred = [], []
    for layer in trace.layers:
        if layer.attn is None:
            n_heads = next(lt.attn for lt in trace.layers if lt.attn is not None).weights.shape[1]
            for values in per_layer.values():
                values.append(jnp.full((n_heads,), jnp.nan))
        else:
            layer_metrics = _attention_metrics(layer.attn, batch.inputs, type_mask, bigram, later)
            for k, value in layer_metrics.items():
                per_layer[k].append(value)
        raw, recentred = probes.first_residual_norm(layer.resid_post)
        resid.append(raw)
        resid_recentred.append(recentred)
    metrics |= {k: jnp.stack(v) for k, v in per_layer.items()}
    metrics["embed_norm_sink"], metrics["embed_norm_sink_recentred"] = probes.first_residual_norm(
        trace.embed
    )
    metrics["resid_norm_sink"] = jnp.stack(resid)
    metrics["resid_norm_sink_recentred"] = jnp.stack(resid_recentred)
    return metrics


def bb_train_task(
    model_cfg: TransformerConfig,
    task: BBTask,
    batch_size: int,
    seq_len: int,
    eval_batch: BBEvalBatch,
    *,
    with_bos: bool = True,
    architectures: Interventions | None = None,
    initial_params: nnx.State | None = None,
) -> tuple[TrainTask, nnx.GraphDef]:
    """The `TrainTask` of next-token prediction on fresh BB batches, and the model's graphdef.

    The loss is the mean token cross-entropy over all B x N positions (backcopy, bigram and
    position 0), as in the official code.

    Args:
        architectures: optional sub-layer gates with a leading run axis R (one row per entry
            of `TrainConfig.seeds`, see `Interventions.architecture`): run r trains the model
            under gates r, so an architecture sweep is one compiled program.
        initial_params: optional parameters with a leading run axis R to start from instead of
            drawing them from each run's key (e.g. the official code's, `sinkjax.torch_init`).
    """
    graphdef = nnx.graphdef(Transformer(model_cfg, rngs=nnx.Rngs(0)))
    type_mask = sink_type_mask(task)
    per_run = architectures is not None or initial_params is not None
    run_args = {"gates": architectures, "init": initial_params} if per_run else None

    def init_params(key, run=None):
        # Every architecture starts from the same full-shape initialisation.
        if run is not None and run["init"] is not None:
            return run["init"]
        return nnx.state(Transformer(model_cfg, rngs=nnx.Rngs(params=key)))

    def loss(params, key, run=None):
        inputs, targets = sample_bb(key, task, batch_size, seq_len, with_bos=with_bos)
        inputs, targets = shard_batch(inputs), shard_batch(targets)
        logits = nnx.merge(graphdef, params)(inputs, None if run is None else run["gates"])
        return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()

    def evaluate(params, run=None):
        gates = None if run is None else run["gates"]
        logits, trace = nnx.merge(graphdef, params)(eval_batch.inputs, gates, trace=True)
        return bb_metrics(logits, trace, eval_batch, type_mask)

    return TrainTask(init_params, loss, evaluate, run_args, batch_size), graphdef


def code_simple_train_task(
    task: BBTask, batch_size: int, seq_len: int, eval_batch: BBEvalBatch
) -> tuple[TrainTask, nnx.GraphDef]:
    """The `TrainTask` of the official code's simplified model (spec D.5) on fresh BB batches.

    Metrics: `alpha_mean` (mean sink logit alpha over non-trigger, non-`<s>` tokens),
    `wo_beta_norm` (||W_O beta||), `first_logit` (the logit of sequence 0, position 1 on <s>),
    `attn_sink` (mean attention on <s> of non-trigger queries) and the excess risks.
    """
    graphdef = nnx.graphdef(CodeSimpleModel(task.vocab_size, task.trigger_mask, rngs=nnx.Rngs(0)))
    type_mask = sink_type_mask(task)

    def init_params(key):
        return nnx.state(
            CodeSimpleModel(task.vocab_size, task.trigger_mask, rngs=nnx.Rngs(params=key))
        )

    def loss(params, key):
        inputs, targets = sample_bb(key, task, batch_size, seq_len)
        inputs, targets = shard_batch(inputs), shard_batch(targets)
        logits = nnx.merge(graphdef, params)(inputs)
        return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()

    def evaluate(params):
        model = nnx.merge(graphdef, params)
        logits = model(eval_batch.inputs)
        weights = jax.nn.softmax(model.attention_logits(eval_batch.inputs), axis=-1)
        risk = probes.oracle_cross_entropy(logits, eval_batch.oracle)
        bigram = ~eval_batch.trigger
        return {
            "alpha_mean": jnp.sum(jnp.where(type_mask, model.alpha[...], 0.0)) / type_mask.sum(),
            "wo_beta_norm": jnp.linalg.norm(model.w_o(model.beta[...])),
            "first_logit": model.attention_logits(eval_batch.inputs[:1])[0, 1, 0],
            "attn_sink": probes.attention_to_first(weights[:, None], bigram)[0],
            "backcopy_excess": probes.masked_mean(risk, eval_batch.trigger),
            "bigram_excess": probes.masked_mean(risk, bigram) - eval_batch.bayes_bigram,
        }

    return TrainTask(init_params, loss, evaluate, batch_size=batch_size), graphdef
