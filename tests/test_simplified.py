"""The simplified attention models: the D.1 forward pass against the theory, the D.5 code model."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import theory
from sinkjax.active_dormant.bb import default_bb_task, sample_bb
from sinkjax.active_dormant.simplified_model import CodeSimpleModel, SinkAttentionModel
from sinkjax.active_dormant.simplified_training import exact_loss_trajectory


def sparse_problem(seed: int) -> theory.SimplifiedProblem:
    """A D.4 problem with zeros in P and a trigger-like token 0 (pi_0 = 0, xi_0 = 0)."""
    problem = theory.random_problem(seed)
    rng = np.random.default_rng(seed + 100)
    P = np.where(rng.uniform(size=problem.P.shape) < 0.3, 0.0, problem.P)
    P[np.arange(len(P)), rng.integers(0, len(P), len(P))] += 0.1  # keep every row non-empty
    pi = problem.pi.copy()
    pi[0] = 0.0
    xi = problem.xi.copy()
    xi[0] = 0.0
    return theory.SimplifiedProblem(P / P.sum(1, keepdims=True), pi / pi.sum(), problem.W, xi)


PROBLEMS = [theory.random_problem(0), theory.random_problem(7), sparse_problem(3)]


def make_model(problem, alpha, beta):
    return SinkAttentionModel(problem.P, problem.pi, problem.W, problem.xi, alpha, beta)


def random_params(seed, n, scale=2.0):
    rng = np.random.default_rng(seed)
    return scale * rng.normal(size=n), scale * rng.normal(size=n)


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("seed", [0, 1])
def test_d1_loss_and_gradient_match_the_theory_in_float64(problem, seed):
    alpha, beta = random_params(seed, problem.P.shape[0])
    alpha[0] = 12.0  # a saturated sink as well
    with jax.enable_x64(True):
        p64 = problem.astype(jnp.float64)
        model = make_model(p64, jnp.asarray(alpha), jnp.asarray(beta))
        assert model.loss().dtype == jnp.float64
        expected = theory.loss(jnp.asarray(alpha), jnp.asarray(beta), p64)
        np.testing.assert_allclose(model.loss(), expected, rtol=0, atol=1e-10)

        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        grads = jax.grad(lambda p: nnx.merge(graphdef, p, rest).loss())(params)
        alpha_dot = theory.alpha_dot(jnp.asarray(alpha), jnp.asarray(beta), p64)
        beta_dot = theory.beta_dot(jnp.asarray(alpha), jnp.asarray(beta), p64)
        np.testing.assert_allclose(grads["alpha"][...], -alpha_dot, rtol=1e-9, atol=1e-13)
        np.testing.assert_allclose(grads["beta"][...], -beta_dot, rtol=1e-9, atol=1e-13)


def test_d1_excluded_tokens_do_not_enter_the_loss():
    problem = sparse_problem(3)  # token 0: pi = 0, xi = 0
    alpha, beta = random_params(0, 6)
    with jax.enable_x64(True):
        p64 = problem.astype(jnp.float64)
        loss = make_model(p64, alpha, beta).loss()
        moved = alpha.copy()
        moved[0] += 5.0  # alpha of a token with pi = 0
        np.testing.assert_allclose(make_model(p64, moved, beta).loss(), loss, rtol=1e-14)


def test_d1_forward_pass_is_attention_over_the_bag():
    problem = theory.random_problem(1)
    alpha, beta = random_params(2, 6)
    model = make_model(problem, alpha, beta)
    logits = np.asarray(model(), np.float64)
    assert logits.shape == (6, 6) and model().dtype == jnp.float32  # float32 by default
    # Query 2 by hand: softmax over [<s>, bag] of [alpha_2, 0, ..., 0].
    W = problem.W.sum()
    share = np.exp(alpha[2]) / (np.exp(alpha[2]) + W)
    by_hand = np.log(problem.P[2]) + share * beta + problem.W * problem.xi / (np.exp(alpha[2]) + W)
    np.testing.assert_allclose(logits[2], by_hand, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "counts, xi, message",
    [([1, 2, -1], [1.0, 1.0, 1.0], "counts"), ([1, 2.5, 1], [1.0, 1.0, 1.0], "counts")]
    + [([1, 2, 1], [1.0, -0.1, 1.0], "xi")],
)
def test_d1_rejects_bad_counts_and_values(counts, xi, message):
    P = np.full((3, 3), 1 / 3)
    with pytest.raises(ValueError, match=message):
        SinkAttentionModel(
            P, np.full(3, 1 / 3), np.asarray(counts), np.asarray(xi), np.zeros(3), np.zeros(3)
        )


def test_gradient_descent_steps_are_euler_steps_of_the_flow():
    problem = theory.random_problem(4)
    alpha0, beta0 = random_params(5, 6, scale=1.0)
    eta, steps = 0.5, 50
    with jax.enable_x64(True):
        p64 = problem.astype(jnp.float64)
        model = make_model(p64, alpha0, beta0)
        alphas, betas = exact_loss_trajectory(model, optax.sgd(eta), steps)
        assert alphas.shape == betas.shape == (steps + 1, 6) and alphas.dtype == np.float64
        np.testing.assert_array_equal(alphas[0], alpha0)
        np.testing.assert_array_equal(model.alpha[...], alpha0)  # the model is left unchanged
        for k in (0, 17, steps - 1):
            a, b = jnp.asarray(alphas[k]), jnp.asarray(betas[k])
            np.testing.assert_allclose(
                alphas[k + 1], a + eta * theory.alpha_dot(a, b, p64), rtol=1e-12, atol=1e-14
            )
            np.testing.assert_allclose(
                betas[k + 1], b + eta * theory.beta_dot(a, b, p64), rtol=1e-12, atol=1e-14
            )
        losses = [float(theory.loss(a, b, p64)) for a, b in zip(alphas, betas, strict=True)]
    assert np.all(np.diff(losses) < 0)


def test_exact_loss_trajectory_rejects_zero_steps():
    problem = theory.random_problem(0)
    with pytest.raises(ValueError, match="steps"):
        exact_loss_trajectory(make_model(problem, np.zeros(6), np.zeros(6)), optax.sgd(0.1), 0)


@pytest.fixture(scope="module")
def bb():
    task = default_bb_task()
    inputs, targets = sample_bb(jax.random.key(0), task, 8, 24)
    return task, inputs, targets


def test_code_model_shapes_and_attention_pattern(bb):
    task, inputs, _ = bb
    model = CodeSimpleModel(task.vocab_size, task.trigger_mask, rngs=nnx.Rngs(0))
    assert model(inputs).shape == (8, 24, task.vocab_size)
    logits = np.asarray(model.attention_logits(inputs))
    assert np.all(np.isneginf(logits[:, np.triu_indices(24, 1)[0], np.triu_indices(24, 1)[1]]))
    tokens = np.asarray(inputs)
    trigger = np.asarray(task.trigger_mask)[tokens]
    alpha, lam = np.asarray(model.alpha[...]), np.asarray(model.lam[...])
    b, n = np.nonzero(trigger)
    assert len(b) > 0
    np.testing.assert_allclose(logits[b, n, n - 1], lam[tokens[b, n]])
    np.testing.assert_array_equal(logits[b, n, 0], 0.0)
    b, n = np.nonzero(~trigger)
    np.testing.assert_allclose(logits[b, n, 0], alpha[tokens[b, n]])
    visible_rest = np.tril(np.ones((24, 24), bool), -1) & ~np.eye(24, k=-1, dtype=bool)
    visible_rest[:, 0] = False
    assert np.all(logits[:, visible_rest] == 0)


def test_code_model_sink_returns_wo_beta(bb):
    """With every sink logit huge, a non-trigger query outputs W_O beta + MLP(x_n)."""
    task, inputs, _ = bb
    model = CodeSimpleModel(task.vocab_size, task.trigger_mask, rngs=nnx.Rngs(1))
    model.alpha[...] = jnp.full(task.vocab_size, 50.0)
    one_hot = jax.nn.one_hot(inputs, task.vocab_size)
    expected = model.w_o(model.beta[...]) + model.mlp_down(jax.nn.relu(model.mlp_up(one_hot)))
    non_trigger = ~np.asarray(task.trigger_mask)[np.asarray(inputs)]
    np.testing.assert_allclose(
        np.asarray(model(inputs))[non_trigger], np.asarray(expected)[non_trigger], atol=1e-5
    )


def test_code_model_adamw_steps_reduce_the_loss(bb):
    task, inputs, targets = bb
    model = CodeSimpleModel(task.vocab_size, task.trigger_mask, rngs=nnx.Rngs(2))
    graphdef, params = nnx.split(model)
    tx = optax.adamw(0.03, b1=0.9, b2=0.99, weight_decay=1e-4)

    def loss(params):
        logits = nnx.merge(graphdef, params)(inputs)
        return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()

    def step(carry, _):
        params, opt_state = carry
        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), value

    (params, _), losses = jax.jit(lambda p: jax.lax.scan(step, (p, tx.init(p)), None, length=30))(
        params
    )
    assert float(loss(params)) < 0.7 * float(losses[0])
