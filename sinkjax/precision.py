"""Float32 matrix products in full float32 or in TF32, on any device.

TF32 is what an NVIDIA GPU uses for float32 matmuls unless told otherwise: each input is rounded
to a 10-bit mantissa (8-bit exponent kept) and the products are accumulated in float32. The
experiments run in full float32 (spec active_dormant.md G); `"tf32"` exists to measure what TF32
changes (issue 18: earlier GPU paper runs were TF32).

- On a GPU, `"tf32"` is native: the product is traced under `jax.default_matmul_precision(
  "tensorfloat32")`, which overrides the runner's float32 default for that product alone.
- Elsewhere (XLA:CPU computes float32 exactly whatever the precision flag), it is emulated: the
  inputs of every product, and in the backward pass the incoming cotangent and the saved inputs
  of the two gradient products, are rounded to TF32 (round to nearest, ties to even), and the
  product is computed in float32.

`dot_general_for(precision)` returns a drop-in `jax.lax.dot_general` for `nnx.Linear(...,
dot_general=...)` and `jnp.einsum(..., _dot_general=...)`; with `"float32"` it is
`jax.lax.dot_general` itself, so the float32 model is bit for bit the model without it.
"""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

PRECISIONS = ("float32", "tf32")
# float32 has 23 explicit mantissa bits; TF32 keeps 10 of them.
_DROPPED_BITS = 23 - 10


def round_to_tf32(x: jax.Array) -> jax.Array:
    """float32 `x` rounded to TF32's 10-bit mantissa (nearest, ties to even), as float32.

    Infinities and NaNs pass through; a finite value that rounds past the largest float32 becomes
    infinite, as in hardware.
    """
    bits = lax.bitcast_convert_type(x.astype(jnp.float32), jnp.uint32)
    lowest_kept = (bits >> _DROPPED_BITS) & 1
    half = jnp.uint32((1 << (_DROPPED_BITS - 1)) - 1)
    rounded = (bits + half + lowest_kept) & jnp.uint32(~((1 << _DROPPED_BITS) - 1) & 0xFFFFFFFF)
    finite = jnp.isfinite(x)
    return jnp.where(finite, lax.bitcast_convert_type(rounded, jnp.float32), x)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def emulated_tf32_dot_general(
    lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None, out_sharding=None
):
    """`lax.dot_general` of the TF32-rounded inputs (float32 accumulation)."""
    return _product(dimension_numbers, precision, preferred_element_type, out_sharding)(
        round_to_tf32(lhs), round_to_tf32(rhs)
    )


def _product(dimension_numbers, precision, preferred_element_type, out_sharding):
    return functools.partial(
        lax.dot_general,
        dimension_numbers=dimension_numbers,
        precision=precision,
        preferred_element_type=preferred_element_type,
        out_sharding=out_sharding,
    )


def _forward(lhs, rhs, *static):
    saved = (round_to_tf32(lhs), round_to_tf32(rhs))
    return _product(*static)(*saved), saved


def _backward(*static_saved_cotangent):
    *static, saved, cotangent = static_saved_cotangent
    _, pullback = jax.vjp(_product(*static), *saved)
    return pullback(round_to_tf32(cotangent))


emulated_tf32_dot_general.defvjp(_forward, _backward)


def native_tf32_dot_general(lhs, rhs, *static):
    """`lax.dot_general` traced under JAX's "tensorfloat32" default (a GPU's TF32 units)."""
    with jax.default_matmul_precision("tensorfloat32"):
        return _product(*static)(lhs, rhs)


def _tf32_dot_general(
    lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None, out_sharding=None
):
    tf32 = native_tf32_dot_general if jax.default_backend() == "gpu" else emulated_tf32_dot_general
    return tf32(lhs, rhs, dimension_numbers, precision, preferred_element_type, out_sharding)


def dot_general_for(precision: str) -> Callable:
    """The `dot_general` of float32 products at `precision` ("float32" or "tf32")."""
    if precision not in PRECISIONS:
        raise ValueError(f"matmul precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return lax.dot_general if precision == "float32" else _tf32_dot_general
