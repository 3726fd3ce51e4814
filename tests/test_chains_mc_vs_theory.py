"""cot_rl spec §4 check 1: Monte-Carlo REINFORCE on the tokenized model against the reduced model.

The tokenized theory policy (`sinkjax`: a random labelling per prompt, edge tokens, linear
attention, V fixed to the incidence matrix, A = A(theta) over all N(N-1) edge tokens, no self-mask,
horizon H = n + 1 and tau = 0.2 as in the code's linear runs) is rolled out with the O(1) sampler,
and the project's REINFORCE surrogate (`sinkjax.cot_rl.rl.reinforce_surrogate`, batch-mean baseline)
is differentiated with respect to theta = (alpha, beta, gamma). Its expectation is (1 - 1/b)
dL/dtheta with L = 1 - P(first sink = target). K independent batches of b rollouts (2^20 in all)
give the mean and its standard error, compared per coordinate with the analytic gradient of
`theory.predict_chain` for the same n, tau, horizon, mask and start law, and the mean reward with 1
- L. The same statistics reject the reduced model with a wrong horizon, the self-mask, or a slightly
different theta, so the check can fail.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import theory
from sinkjax.cot_rl.chains import ChainTask
from sinkjax.cot_rl.policy import ChainPolicyConfig, symmetric_policy_params
from sinkjax.cot_rl.rl import reinforce_surrogate

N_CHAIN, TAU, MASK = 5, 0.2, False
TASK = ChainTask.uniform(N_CHAIN)
HORIZON = TASK.default_max_new_tokens
POLICY = ChainPolicyConfig(
    TASK.n_vertices, "linear", TAU, mask_current=MASK, parameterization="symmetric"
)
THETA = (0.2, -0.1, 0.0)  # success ~0.39: every coordinate of the gradient is far from 0
BATCH, N_BATCHES = 2**14, 64  # 2^20 rollouts
Z_MAX = 3.0


@functools.partial(jax.jit, static_argnums=2)
def _batch_estimates(params, key, n_batches: int):
    """(K, 3) surrogate gradients (expectation (1 - 1/b) dL/dtheta) and (K,) mean rewards."""

    def one(key):
        grad_fn = jax.grad(reinforce_surrogate, has_aux=True)
        grads, result = grad_fn(params, key, TASK, POLICY, BATCH, HORIZON)
        return grads["theta"], jnp.mean(result.reward)

    return jax.lax.map(one, jax.random.split(key, n_batches))


@pytest.fixture(scope="module")
def monte_carlo():
    """Mean and standard error of the gradient (3,) and of the success rate."""
    grads, rewards = _batch_estimates(symmetric_policy_params(*THETA), jax.random.key(0), N_BATCHES)
    grads = np.asarray(grads, np.float64) / (1 - 1 / BATCH)
    rewards = np.asarray(rewards, np.float64)
    return {
        "grad": grads.mean(axis=0),
        "grad_se": grads.std(axis=0, ddof=1) / np.sqrt(N_BATCHES),
        "success": rewards.mean(),
        "success_se": rewards.std(ddof=1) / np.sqrt(N_BATCHES),
    }


def z_scores(mc, theta=THETA, horizon=HORIZON, mask=MASK):
    """(4,) (MC - theory) / SE for dL/d(alpha, beta, gamma) and for the success probability."""
    model = theory.ChainModel(tau=TAU, mask_self=mask, horizon=horizon)
    pred = theory.predict_chain(theta, N_CHAIN, np.asarray(TASK.step_probs), model)
    z_grad = (mc["grad"] - pred.loss_grad) / mc["grad_se"]
    return np.append(z_grad, (mc["success"] - pred.success) / mc["success_se"])


def test_reinforce_gradient_and_success_match_the_reduced_model(monte_carlo):
    z = z_scores(monte_carlo)
    assert np.all(np.abs(z) < Z_MAX), z
    # The gradient is clearly non-zero: every coordinate is > 30 standard errors from 0.
    assert np.all(np.abs(monte_carlo["grad"]) > 30 * monte_carlo["grad_se"])


@pytest.mark.parametrize(
    "wrong",
    [
        {"horizon": HORIZON - 1},
        {"horizon": HORIZON + 1},
        {"mask": not MASK},
        {"theta": np.add(THETA, (0.0, 0.0, 0.03))},
    ],
    ids=["horizon-1", "horizon+1", "self-mask", "theta-perturbed"],
)
def test_a_mismatched_reduced_model_is_rejected(monte_carlo, wrong):
    """The check has power: the gradient alone rejects each mismatch (some |z| > 3), and the
    success probability rejects it decisively (|z| > 9; about 50 for the wrong horizons)."""
    z = z_scores(monte_carlo, **wrong)
    assert np.abs(z[:3]).max() > Z_MAX, z
    assert abs(z[3]) > 3 * Z_MAX, z
