"""The matmul-precision switch: TF32 rounding, emulated products and their gradients, the
model in float32 (bit for bit unchanged) and in TF32, and the CLI/record plumbing."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

from experiments import cli
from experiments.registry import get_experiments
from sinkjax.models import Transformer, TransformerConfig
from sinkjax.precision import dot_general_for, emulated_tf32_dot_general, round_to_tf32

MATMUL = (((1,), (0,)), ((), ()))


def test_rounding_keeps_ten_mantissa_bits_to_nearest_even():
    one = 1.0
    values = np.array(
        [one, one + 2**-10, one + 2**-11, one + 3 * 2**-11, one + 2**-11 + 2**-20, -3.14159265],
        np.float32,
    )
    expected = [one, one + 2**-10, one, one + 2**-9, one + 2**-10, -3.140625]
    np.testing.assert_array_equal(np.asarray(round_to_tf32(jnp.asarray(values))), expected)
    special = np.asarray(round_to_tf32(jnp.array([np.inf, -np.inf, np.nan], jnp.float32)))
    assert special[0] == np.inf and special[1] == -np.inf and np.isnan(special[2])

    x = jax.random.normal(jax.random.key(0), (10_000,)) * 100
    rounded = np.asarray(round_to_tf32(x))
    bits = rounded.view(np.uint32)
    assert np.all(bits & 0x1FFF == 0)  # the 13 dropped mantissa bits are zero
    relative = np.abs(rounded - np.asarray(x)) / np.abs(np.asarray(x))
    assert relative.max() <= 2**-11  # half a unit in the last kept place


def test_emulated_product_and_its_gradients_use_rounded_operands():
    a, b, g = (
        jax.random.normal(jax.random.key(i), shape)
        for i, shape in enumerate([(5, 7), (7, 3), (5, 3)])
    )
    ra, rb, rg = (np.asarray(round_to_tf32(v), np.float64) for v in (a, b, g))
    out, pullback = jax.vjp(lambda x, y: emulated_tf32_dot_general(x, y, MATMUL), a, b)
    np.testing.assert_allclose(out, ra @ rb, rtol=1e-6)
    da, db = pullback(g)
    np.testing.assert_allclose(da, rg @ rb.T, rtol=1e-5)
    np.testing.assert_allclose(db, ra.T @ rg, rtol=1e-5)
    # ... and differ from the float32 product by TF32's rounding, not by nothing.
    assert not np.allclose(out, np.asarray(a, np.float64) @ np.asarray(b, np.float64), rtol=1e-6)


def _loss_and_grads(precision: str, tied: bool):
    cfg = TransformerConfig(
        d_model=32, d_mlp=64, max_len=16, n_heads=2, tie_embeddings=tied, matmul_precision=precision
    )
    model = Transformer(cfg, rngs=nnx.Rngs(0))
    tokens = jax.random.randint(jax.random.key(1), (2, 16), 0, cfg.vocab_size)
    loss = lambda m: -jax.nn.log_softmax(m(tokens)).mean()  # noqa: E731
    value, grads = nnx.value_and_grad(loss)(model)
    return float(value), np.concatenate([np.ravel(g) for g in jax.tree.leaves(nnx.state(grads))])


@pytest.mark.parametrize("tied", [False, True])
def test_tf32_model_is_close_to_float32_but_not_equal(tied):
    loss32, grads32 = _loss_and_grads("float32", tied)
    loss_tf32, grads_tf32 = _loss_and_grads("tf32", tied)
    assert loss_tf32 != loss32 and abs(loss_tf32 - loss32) < 1e-3 * abs(loss32)
    assert np.linalg.norm(grads_tf32 - grads32) < 1e-2 * np.linalg.norm(grads32)


def test_float32_is_plain_dot_general_and_bad_names_are_refused():
    assert dot_general_for("float32") is lax.dot_general
    with pytest.raises(ValueError, match="choose one of float32, tf32"):
        dot_general_for("bf16")


def test_every_preset_runs_in_float32():
    for name, experiment in get_experiments().items():
        for preset, cfg in experiment.presets.items():
            assert getattr(cfg, "matmul_precision", "float32") == "float32", (name, preset)


def test_cli_runs_in_tf32_and_the_record_says_so(capsys, tmp_path):
    argv = ["run", "bb-interventions", "--preset", "ci", "--out", str(tmp_path), "--no-progress"]
    assert cli.main([*argv, "--matmul-precision", "tf32"]) in (0, 1)
    record = json.loads((tmp_path / "bb-interventions" / "record.json").read_text())
    assert record["matmul_precision"] == record["config"]["matmul_precision"] == "tf32"
    assert record["versions"]["matmul_precision"] == "float32"  # every other product
    capsys.readouterr()
    assert cli.main([*argv, "--matmul-precision", "fp16"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--matmul-precision" in err
