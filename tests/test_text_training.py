"""The GPT-2-style character LM task: training, its probes, a planted sink, with and without BOS.

Nothing here reads ../shared: the prose is the Zen of Python, written into tmp_path. Every
probe runs through one jitted `text_lm_metrics` (one compile for the tests that share its
graphdef and shapes).
"""

import codecs
import functools
import this

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from sinkjax.optim import OptimizerConfig
from sinkjax.sinks import metrics as sinks
from sinkjax.sinks.toy_lm import (
    attention_inputs,
    attention_outputs,
    text_lm_metrics,
    text_lm_train_task,
    toy_gpt2_config,
)
from sinkjax.text.domains import (
    BOS,
    TextConfig,
    TextStream,
    load_text_corpus,
    make_text_eval_batch,
    vocab_size,
)
from sinkjax.train import TrainConfig, train

ZEN = codecs.decode(this.s, "rot13")
N_LAYERS, N_HEADS, D_MODEL, SEQ_LEN, EVAL_B = 2, 2, 32, 32, 4
N_DOMAINS = 3
WEIGHTS = jnp.ones(N_DOMAINS)
METRICS = jax.jit(text_lm_metrics, static_argnums=0)


def metric_shapes(with_delta: bool = True) -> dict[str, tuple[int, ...]]:
    """The documented shape of every metric of the tiny model."""
    L, H, D, N = N_LAYERS, N_HEADS, N_DOMAINS, SEQ_LEN
    shapes = {"ce": (D,), "ce_by_position": (D, N), "alpha0": (L, H)}
    shapes |= {"bos_attention_band": (), "concentration_null": ()}
    for name in ("sink_rate", "bos_attention", "rho", "concentration", "attn_out_first"):
        shapes[name] = (L,)
    for name in ("attn_out_rest", "cross_sample_cosine", "p0_probe_auc"):
        shapes[name] = (L,)
    if with_delta:
        shapes["delta_dominance"] = (L, H)
    return shapes


def tiny_config(with_bos: bool):
    return toy_gpt2_config(
        vocab_size(with_bos), n_layers=N_LAYERS, d_model=D_MODEL, n_heads=N_HEADS, max_len=SEQ_LEN
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("prose") / "zen.txt"
    path.write_text(ZEN * 10)
    budgets = dict(max_prose_bytes=6_000, max_code_bytes=8_000, max_math_bytes=5_000)
    return load_text_corpus(TextConfig(prose_path=path, **budgets))


@pytest.fixture(scope="module")
def stream(corpus):
    return TextStream.from_parts(corpus.train)


@pytest.fixture(scope="module")
def eval_batches(corpus):
    """with_bos -> the fixed (3, 4, 32) held-out batch."""
    return {
        bos: make_text_eval_batch(corpus, EVAL_B, SEQ_LEN, with_bos=bos) for bos in (True, False)
    }


@pytest.fixture(scope="module")
def no_bos_task(stream, eval_batches):
    """(task, graphdef, init params) of the tiny model trained without BOS."""
    task, graphdef = text_lm_train_task(
        tiny_config(False), stream, 8, SEQ_LEN, WEIGHTS, eval_batches[False], with_bos=False
    )
    return task, graphdef, jax.jit(task.init_params)(jax.random.key(0))


def test_toy_config_is_gpt2_style():
    cfg = toy_gpt2_config(98)
    assert (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.max_len, cfg.d_mlp) == (4, 128, 4, 64, 512)
    assert cfg.positions == "learned" and cfg.mlp_activation == "gelu_new"
    assert cfg.tie_embeddings and cfg.has_query_bias and cfg.has_key_bias and cfg.has_value_bias
    assert cfg.attention == "softmax" and cfg.ln_eps == 1e-5


def test_task_rejects_a_mismatched_model(stream, eval_batches):
    batch = eval_batches[True]
    with pytest.raises(ValueError, match="cannot hold the 98 ids"):
        text_lm_train_task(tiny_config(False), stream, 8, SEQ_LEN, WEIGHTS, batch, with_bos=True)
    with pytest.raises(ValueError, match="cannot hold the 98 ids"):  # <s> in the eval batch
        text_lm_train_task(tiny_config(False), stream, 8, SEQ_LEN, WEIGHTS, batch, with_bos=False)
    with pytest.raises(ValueError, match="shorter than the 40-token windows"):
        text_lm_train_task(tiny_config(True), stream, 8, 40, WEIGHTS, batch, with_bos=True)
    with pytest.raises(ValueError, match="one weight per domain"):
        text_lm_train_task(tiny_config(True), stream, 8, SEQ_LEN, jnp.ones(2), batch, with_bos=True)


def test_training_with_bos_lowers_the_loss_and_records_every_metric(stream, eval_batches):
    task, _ = text_lm_train_task(
        tiny_config(True), stream, 8, SEQ_LEN, WEIGHTS, eval_batches[True], with_bos=True
    )
    cfg = TrainConfig(steps=50, seeds=(0,), chunk_size=50, n_log_evals=2, n_linear_evals=2)
    result = train(task, OptimizerConfig(learning_rate=3e-3), cfg, progress=False)
    losses = result.losses[0]
    assert np.isfinite(losses).all() and losses[-10:].mean() < losses[:10].mean() - 0.5
    m = result.metrics
    n_evals = len(result.eval_steps)
    assert {k: v.shape[2:] for k, v in m.items()} == metric_shapes()
    assert all(v.shape[:2] == (1, n_evals) for v in m.values())
    assert np.all(np.isfinite(np.concatenate([v.ravel() for v in m.values()])))
    ce = m["ce"][0]
    assert np.all((ce[0] > 4) & (ce[0] < 6)) and np.all(ce[-1] < ce[0] - 0.3)
    np.testing.assert_allclose(m["ce_by_position"].mean(-1), m["ce"], rtol=1e-5)
    for name in ("sink_rate", "alpha0", "bos_attention", "bos_attention_band", "p0_probe_auc"):
        assert np.all((m[name] >= 0) & (m[name] <= 1)), name
    # sum_j A_ij^2 >= 1/(i+1) (Cauchy-Schwarz), so no layer is below the uniform null.
    assert np.all(m["concentration"] >= m["concentration_null"][..., None] - 1e-6)
    assert np.all(m["concentration"] <= 1) and np.all(m["rho"] > 0)
    # With BOS every sequence's position 0 is the same token, so its states coincide.
    np.testing.assert_allclose(m["cross_sample_cosine"], 1.0, atol=1e-5)


def test_no_bos_task_and_its_metrics(no_bos_task, eval_batches):
    task, graphdef, params = no_bos_task
    loss = jax.jit(task.loss)(params, jax.random.key(1))
    assert 4 < loss < 6  # about ln(97) at initialisation
    batch = eval_batches[False]
    assert not np.any(np.asarray(batch.inputs) == BOS)
    m = METRICS(graphdef, params, batch)
    assert {k: v.shape for k, v in m.items()} == metric_shapes()
    # Position 0 now holds different characters: its states point in different directions.
    assert np.all(np.asarray(m["cross_sample_cosine"]) < 0.95)
    uniform = sinks.uniform_importance(SEQ_LEN)[0]
    assert np.all(np.abs(np.asarray(m["alpha0"]) - uniform) < 0.1)  # near-uniform at init


def plant_sink(graphdef, params, layer: int, scale: float = 100.0):
    """Params whose block `layer` sends every query's attention to key 0.

    p_0 gets a large component along a zero-mean unit vector u, so LN1 maps position 0 near
    sqrt(d) u and every other position far from it. In block `layer`, W_Q = 0, W_K = u 1^T and
    b_Q = scale / d_h: every head's score is q . k_j = scale (x_j . u) + const.
    """
    model = nnx.merge(graphdef, params)
    d, d_head = D_MODEL, D_MODEL // N_HEADS
    u = jnp.zeros(d).at[0].set(1.0).at[1].set(-1.0) / jnp.sqrt(2.0)
    model.pos_embed.embedding[...] = model.pos_embed.embedding[...].at[0].set(scale * u)
    attn = model.blocks[layer].attn
    qkv = attn.qkv[...].at[:, :d].set(0.0).at[:, d : 2 * d].set(jnp.outer(u, jnp.ones(d)))
    attn.qkv[...] = qkv
    attn.q_bias[...] = jnp.full(d, scale / d_head, jnp.float32)
    return nnx.state(model)


def test_planted_sink_gives_sink_rate_one_in_that_layer_only(no_bos_task, eval_batches):
    _, graphdef, params = no_bos_task
    m = METRICS(graphdef, plant_sink(graphdef, params, layer=1), eval_batches[False])
    assert m["sink_rate"][1] == 1.0 and m["sink_rate"][0] < 0.5
    assert np.all(np.asarray(m["alpha0"][1]) > 0.99) and np.all(np.asarray(m["alpha0"][0]) < 0.5)
    assert m["bos_attention"][1] > 0.99 and m["concentration"][1] > 0.99
    # Delta_0 - mean_{j>0} Delta_j = scale (x_0 . u - mean x_j . u), x_0 . u ~ sqrt(32).
    assert np.all(np.asarray(m["delta_dominance"][1]) > 200)
    assert np.all(np.abs(np.asarray(m["delta_dominance"][0])) < 20)


@functools.partial(jax.jit, static_argnums=0)
def exactness_gaps(graphdef, params, key, tokens):
    """Max |error| per layer of `attention_outputs` against the residual update minus b_O, and
    of the scores rebuilt by `sinks.logit_terms` on `attention_inputs` against the traced ones.

    Every parameter (LayerNorm gains and biases included) first gets N(0, 0.3^2) noise, so
    that no bias or LayerNorm affine is at its trivial initial value.
    """
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    noise = [0.3 * jax.random.normal(k, leaf.shape) for leaf, k in zip(leaves, keys, strict=True)]
    model = nnx.merge(graphdef, jax.tree.map(jnp.add, params, jax.tree.unflatten(treedef, noise)))
    _, trace = model(tokens, trace=True)
    entering = (trace.embed, *(layer.resid_post for layer in trace.layers[:-1]))
    outputs = attention_outputs(trace)
    out_gaps, score_gaps = [], []
    for i, (block, x) in enumerate(zip(model.blocks, attention_inputs(model, trace), strict=True)):
        expected = trace.layers[i].resid_mid - entering[i] - block.attn.o.bias[...]
        out_gaps.append(jnp.abs(outputs[:, i] - expected).max())
        key_bias = jnp.split(block.attn.kv_bias[...], 2)[0]
        terms = sinks.logit_terms(
            x,
            sinks.head_kernels(block.attn.qkv[...], N_HEADS),
            sinks.split_heads(block.attn.q_bias[...], N_HEADS),
            sinks.split_heads(key_bias, N_HEADS),
        )
        total = terms.t1 + terms.t2[..., None] + terms.t3[..., None, :] + terms.t4[:, None, None]
        scores = total / jnp.sqrt(jnp.float32(D_MODEL // N_HEADS))
        score_gaps.append(jnp.abs(scores - trace.layers[i].attn.logits).max())
    return jnp.stack(out_gaps), jnp.stack(score_gaps)


def test_attention_outputs_and_ln1_inputs_are_exact(no_bos_task, eval_batches):
    _, graphdef, params = no_bos_task
    tokens = eval_batches[False].inputs.reshape(-1, SEQ_LEN)
    out_gaps, score_gaps = exactness_gaps(graphdef, params, jax.random.key(6), tokens)
    assert np.all(np.asarray(out_gaps) < 1e-4) and np.all(np.asarray(score_gaps) < 1e-3)
