"""Full-batch training of the spec D.1 model on its exact loss, recorded at every step.

The exact (population) loss has no data noise, so plain gradient descent with step size eta is
the explicit Euler discretisation of the gradient flow: after k steps it should sit at the flow's
t = k * eta. `exact_loss_trajectory` runs any optax optimiser for a fixed number of steps in one
compiled `lax.scan` and returns the whole (alpha, beta) path. Run it inside
`jax.enable_x64(True)` on a float64 model for a comparison limited by discretisation only.
"""

import jax
import numpy as np
import optax
from flax import nnx

from sinkjax.active_dormant.simplified_model import SinkAttentionModel


def exact_loss_trajectory(
    model: SinkAttentionModel, tx: optax.GradientTransformation, steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """Optimise `model.loss()` with `tx` for `steps` steps; the model itself is left unchanged.

    Args:
        model: the D.1 model at its initial (alpha, beta); its dtype sets the arithmetic.
        tx: the optimiser, e.g. `optax.sgd(eta)` (gradient descent) or `optax.adam(lr)`.
        steps: number of optimiser steps (> 0).

    Returns:
        alphas, betas: (steps + 1, V) numpy arrays; row k holds the parameters after k steps
        (row 0 is the initialisation).
    """
    if steps <= 0:
        raise ValueError(f"steps must be positive, got {steps}")
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss(params):
        return nnx.merge(graphdef, params, rest).loss()

    def step(carry, _):
        params, opt_state = carry
        updates, opt_state = tx.update(jax.grad(loss)(params), opt_state, params)
        params = optax.apply_updates(params, updates)
        return (params, opt_state), (params["alpha"][...], params["beta"][...])

    @jax.jit
    def run(params):
        _, path = jax.lax.scan(step, (params, tx.init(params)), None, length=steps)
        return path

    alphas, betas = run(params)
    return (
        np.concatenate([np.asarray(params["alpha"][...])[None], np.asarray(alphas)]),
        np.concatenate([np.asarray(params["beta"][...])[None], np.asarray(betas)]),
    )
