"""Next-token language modelling on windows of text, shared by the studies' text LMs.

`lm_train_task` turns a window sampler and a metrics function into a `TrainTask` of a zoo
`Transformer`; `domain_forward` and `domain_cross_entropy` evaluate a (D, B, N) batch of D
domains in one traced pass. The byte-level LM (`sinkjax.active_dormant.charlm_training`) and the
GPT-2-style toy (`sinkjax.sinks.toy_lm`) are both built on it.
"""

from collections.abc import Callable

import optax
from flax import nnx
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from sinkjax.models import ModelTrace, Transformer, TransformerConfig
from sinkjax.sharding import shard_batch
from sinkjax.train import TrainTask

# key -> (inputs, targets), both (B, N) int32 next-token pairs.
WindowSampler = Callable[[PRNGKeyArray], tuple[Int[Array, "B N"], Int[Array, "B N"]]]
# (graphdef, params) -> dict of metric arrays with fixed shapes.
ModelMetrics = Callable[[nnx.GraphDef, PyTree], dict[str, Array]]


def transformer_init(
    model_cfg: TransformerConfig,
) -> tuple[nnx.GraphDef, Callable[[PRNGKeyArray], PyTree]]:
    """(graphdef, init_params): the model's static structure and key -> its parameter state."""
    graphdef = nnx.graphdef(nnx.eval_shape(lambda: Transformer(model_cfg, rngs=nnx.Rngs(0))))

    def init_params(key: PRNGKeyArray) -> PyTree:
        return nnx.state(Transformer(model_cfg, rngs=nnx.Rngs(params=key)))

    return graphdef, init_params


def window_loss(
    graphdef: nnx.GraphDef,
    params: PyTree,
    inputs: Int[Array, "B N"],
    targets: Int[Array, "B N"],
) -> Float[Array, ""]:
    """Mean next-token cross-entropy (nats) over all B x N positions."""
    logits = nnx.merge(graphdef, params)(inputs)
    return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()


def domain_forward(
    graphdef: nnx.GraphDef, params: PyTree, inputs: Int[Array, "D B N"]
) -> tuple[Float[Array, "D B N V"], ModelTrace]:
    """(logits (D, B, N, V), trace over the D * B sequences, domain-major) in one pass."""
    n_domains, batch_size, seq_len = inputs.shape
    logits, trace = nnx.merge(graphdef, params)(inputs.reshape(-1, seq_len), trace=True)
    return logits.reshape(n_domains, batch_size, seq_len, -1), trace


def domain_cross_entropy(
    logits: Float[Array, "D B N V"], targets: Int[Array, "D B N"]
) -> Float[Array, " D"]:
    """Mean next-token cross-entropy (nats) per domain."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean(axis=(1, 2))


def lm_train_task(
    model_cfg: TransformerConfig, sample: WindowSampler, batch_size: int, metrics: ModelMetrics
) -> tuple[TrainTask, nnx.GraphDef]:
    """The `TrainTask` of next-token prediction on windows from `sample`, and the graphdef.

    Args:
        model_cfg: the `Transformer` to train.
        sample: key -> (inputs, targets) (B, N) of one training batch, jit-able.
        batch_size: B (the batch is sharded over the devices to spare, `shard_batch`).
        metrics: (graphdef, params) -> dict of metric arrays, the task's `evaluate`.

    The loss is `window_loss`: the mean cross-entropy over all B x N positions.
    """
    graphdef, init_params = transformer_init(model_cfg)

    def loss(params: PyTree, key: PRNGKeyArray) -> Float[Array, ""]:
        inputs, targets = sample(key)
        return window_loss(graphdef, params, shard_batch(inputs), shard_batch(targets))

    def evaluate(params: PyTree) -> dict[str, Array]:
        return metrics(graphdef, params)

    return TrainTask(init_params, loss, evaluate, batch_size=batch_size), graphdef
