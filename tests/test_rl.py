"""REINFORCE on the chain task: the gradient estimator against the exact gradient, a tiny run
that learns and stops early, plain SGD on the symmetric (theory) policy, optimiser mapping."""

import dataclasses
import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sinkjax.checkpoints import Checkpointer, CheckpointMismatch
from sinkjax.cot_rl.chains import ChainTask, edge_token
from sinkjax.cot_rl.policy import (
    ChainPolicyConfig,
    init_policy_params,
    policy_weights,
    prefix_logits,
    symmetric_policy_params,
)
from sinkjax.cot_rl.rl import RLConfig, reinforce_surrogate, train_rl
from sinkjax.optim import make_optimizer

# ---------------------------------------------------------------------------------------------
# The estimator: E[grad surrogate] = -(1 - 1/b) grad J, J = P(first sink = target).

# Two chains of 2 vertices and 1 isolated vertex: start a1, target a2; the sinks are a2, b2 and
# the isolated vertex, the non-sinks a1 and b1. With H = 3 the successful trajectories are
# [a2], [x, a2], [x, y, a2] for x, y in {a1, b1}: 7 per permutation, 120 permutations.
SMALL = ChainTask.uniform(2, n_vertices=5)
H = SMALL.default_max_new_tokens
POLICY = ChainPolicyConfig(5, "linear", temperature=1.0, init_std=0.7)
PARAMS = init_policy_params(jax.random.key(0), POLICY)
BATCH_SIZE = 4  # small, so the baseline's factor 1 - 1/b = 0.75 is far from 1


def successful_trajectories() -> tuple[np.ndarray, np.ndarray]:
    """Context-id buffers (M, L + H) of every successful trajectory and their lengths (M,)."""
    n_vertices, buffers, lengths = 5, [], []
    for a1, a2, b1, b2, _ in itertools.permutations(range(n_vertices)):
        prompt = [edge_token(a1, a2, n_vertices) - 5, edge_token(b1, b2, n_vertices) - 5, a1]
        for k in range(H):
            for detour in itertools.product((a1, b1), repeat=k):
                moves = [*detour, a2]
                buffers.append(prompt + moves + [0] * (H - len(moves)))
                lengths.append(len(moves))
    return np.asarray(buffers, np.int32), np.asarray(lengths)


@jax.jit
def exact_success_probability(params):
    """J = E_perm sum over successful trajectories of pi(trajectory), by the full forward."""
    buffers, lengths = successful_trajectories()
    weights = policy_weights(params, POLICY)
    logits = jax.vmap(lambda b: prefix_logits(weights, b, POLICY))(buffers)[:, 2 : 2 + H]
    log_p = jnp.take_along_axis(jax.nn.log_softmax(logits), buffers[:, 3:, None], axis=2)[..., 0]
    log_p = jnp.where(np.arange(H)[None, :] < lengths[:, None], log_p, 0.0)
    return jnp.sum(jnp.exp(jnp.sum(log_p, axis=1))) / 120


@functools.partial(jax.jit, static_argnums=1)
def estimator_samples(params, n_replicates):
    """(R, ...) REINFORCE gradients, each from an independent batch of b rollouts."""

    def one(key):
        return jax.grad(lambda p: reinforce_surrogate(p, key, SMALL, POLICY, BATCH_SIZE, H)[0])(
            params
        )

    return jax.vmap(one)(jax.random.split(jax.random.key(1), n_replicates))


def test_reinforce_gradient_is_unbiased_against_the_exact_gradient():
    """Mean of R = 20k estimates vs -(1 - 1/b) grad J, per coordinate in standard errors.

    250 coordinates: under the null, max |z| < 4.5 fails with probability < 2e-3 and the mean
    z^2 is 1 +- 0.09. The same data must reject the estimator without the 1 - 1/b factor (and so
    a baseline that ignores the own reward), which shows the test has power."""
    j, grad_j = jax.value_and_grad(exact_success_probability)(PARAMS)
    assert 0.05 < float(j) < 0.95  # a non-degenerate policy
    samples = estimator_samples(PARAMS, 20_000)
    z_correct, z_wrong = [], []
    for name in ("A", "V"):
        g = np.asarray(samples[name], np.float64).reshape(20_000, -1)
        mean, se = g.mean(0), g.std(0, ddof=1) / np.sqrt(len(g))
        exact = np.asarray(grad_j[name], np.float64).reshape(-1)
        used = se > 0  # coordinates no trajectory touches have zero gradient and zero noise
        np.testing.assert_allclose(exact[~used], 0.0, atol=1e-7)
        z_correct.append((mean + (1 - 1 / BATCH_SIZE) * exact)[used] / se[used])
        z_wrong.append((mean + exact)[used] / se[used])
    z_correct, z_wrong = np.concatenate(z_correct), np.concatenate(z_wrong)
    assert len(z_correct) > 100
    assert np.max(np.abs(z_correct)) < 4.5
    assert np.mean(z_correct**2) < 1.4
    assert np.mean(z_wrong**2) > 3.0


# ---------------------------------------------------------------------------------------------
# Training runs


TINY_TASK = ChainTask.uniform(2)
TINY_POLICY = ChainPolicyConfig(4, "linear", 0.2)
TINY_CFG = RLConfig(
    epochs=30,
    epoch_steps=2,
    batch_size=64,
    n_microbatches=2,
    learning_rate=0.1,
    seeds=(0, 1),
    val_size=256,
    epochs_per_chunk=7,
)


@pytest.fixture(scope="module")
def tiny_run():
    """Code setup (A, V trained from 1e-8, Adam) on two chains of 2, two seeds, early stop."""
    return TINY_CFG, train_rl(TINY_POLICY, TINY_TASK, TINY_TASK, TINY_CFG, progress=False)


def test_tiny_rl_run_increases_reward(tiny_run):
    _, result = tiny_run
    history = result.history
    assert np.all(history["val_accuracy"][:, 0] < 0.6)  # ~uniform policy at init
    for seed in range(2):
        last = result.stop_epoch[seed] if result.stop_epoch[seed] > 0 else result.epochs_run
        assert history["val_accuracy"][seed, last] > history["val_accuracy"][seed, 0] + 0.3
        assert history["train_reward"][seed, last] > history["train_reward"][seed, 1] + 0.3
    assert not np.array_equal(history["val_accuracy"][0], history["val_accuracy"][1])
    assert result.params["A"].shape == (2, 4, 16) and result.params["V"].shape == (2, 16, 4)


def test_early_stop_freezes_each_seed_at_100_percent(tiny_run):
    cfg, result = tiny_run
    history = result.history
    assert np.all(result.stop_epoch > 0)  # both seeds reached the criterion
    assert result.epochs_run == result.stop_epoch.max() < cfg.epochs
    for seed, stop in enumerate(result.stop_epoch):
        # The code's criterion held at the stopping epoch, and not before.
        assert history["train_accuracy_code_quirk"][seed, stop] == 1.0
        assert history["val_accuracy_code_quirk"][seed, stop] == 1.0
        before = (history["train_accuracy_code_quirk"][seed, 1:stop] == 1.0) & (
            history["val_accuracy_code_quirk"][seed, 1:stop] == 1.0
        )
        assert not before.any()
        assert np.all(np.isfinite(history["val_accuracy"][seed, : stop + 1]))
        assert np.all(np.isnan(history["val_accuracy"][seed, stop + 1 :]))
        steps = stop * cfg.epoch_steps
        assert np.all(np.isfinite(result.losses[seed, :steps]))
        assert np.all(np.isnan(result.losses[seed, steps:]))


def test_an_interrupted_run_resumes_exactly(tiny_run, tmp_path, monkeypatch):
    """Stop the run after its first checkpoint (epoch 7), resume: bit-identical to one go.
    Same configs as `tiny_run`, so the compiled program is reused."""
    _, reference = tiny_run
    save = Checkpointer.save

    def save_then_crash(self, step, state):
        save(self, step, state)
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(Checkpointer, "save", save_then_crash)
        with pytest.raises(KeyboardInterrupt):
            train_rl(TINY_POLICY, TINY_TASK, TINY_TASK, TINY_CFG, checkpoint_dir=str(tmp_path))
    resumed = train_rl(
        TINY_POLICY, TINY_TASK, TINY_TASK, TINY_CFG, checkpoint_dir=str(tmp_path), progress=False
    )
    assert resumed.resumed_from == TINY_CFG.epochs_per_chunk
    np.testing.assert_array_equal(resumed.stop_epoch, reference.stop_epoch)
    assert resumed.epochs_run == reference.epochs_run
    np.testing.assert_array_equal(resumed.losses, reference.losses)
    for name, values in reference.history.items():
        np.testing.assert_array_equal(resumed.history[name], values)
    for name, values in reference.params.items():
        np.testing.assert_array_equal(resumed.params[name], values)
    with pytest.raises(CheckpointMismatch):
        other = dataclasses.replace(TINY_CFG, learning_rate=0.2)
        train_rl(TINY_POLICY, TINY_TASK, TINY_TASK, other, checkpoint_dir=str(tmp_path))


def test_sgd_on_the_symmetric_policy_learns_traversal():
    """Theory variant: V fixed, A(alpha, beta, gamma) from 0, self-mask, plain SGD. The reward
    rises and alpha (edge leaving the current vertex) grows relative to beta and gamma."""
    task = ChainTask.uniform(4)
    policy = ChainPolicyConfig(8, "linear", 1.0, mask_current=True, parameterization="symmetric")
    cfg = RLConfig(
        epochs=8,
        epoch_steps=5,
        batch_size=256,
        n_microbatches=1,
        optimizer="sgd",
        learning_rate=2.0,
        seeds=(0,),
        val_size=256,
        early_stop="off",
        epochs_per_chunk=8,
    )
    result = train_rl(policy, task, task, cfg, progress=False)
    alpha, beta, gamma = np.asarray(result.params["theta"][0])
    assert alpha > max(beta, gamma) + 0.5 and gamma < 0
    theta = result.history["theta"][0]  # (epochs + 1, 3): the path, from the ~0 init
    assert theta.shape == (9, 3) and np.all(np.abs(theta[0]) < 1e-6)
    np.testing.assert_array_equal(theta[-1], result.params["theta"][0])
    assert np.all(np.diff(theta[:, 0]) > 0)  # alpha rises every epoch
    reward = result.history["train_reward"][0]
    assert reward[-1] > reward[1] + 0.1
    assert np.all(np.isfinite(result.losses)) and result.stop_epoch[0] == -1


def test_optimizers_are_torch_adam_and_plain_sgd():
    params = {"w": jnp.array([1.0, -2.0, 3.0])}
    grads = [{"w": jnp.array([0.5, 0.1, -1.0])}, {"w": jnp.array([-0.2, 0.3, 0.4])}]
    for name, reference in (("adam", optax.adam(0.01)), ("sgd", optax.sgd(0.01))):
        tx = make_optimizer(RLConfig(epochs=1, optimizer=name).optimizer_config())
        state, ref_state = tx.init(params), reference.init(params)
        for g in grads:
            updates, state = tx.update(g, state, params)
            ref_updates, ref_state = reference.update(g, ref_state, params)
            np.testing.assert_allclose(updates["w"], ref_updates["w"], rtol=1e-6)
        if name == "sgd":
            np.testing.assert_allclose(updates["w"], -0.01 * grads[-1]["w"])


def test_validation():
    with pytest.raises(ValueError, match="multiple of n_microbatches"):
        RLConfig(epochs=1, batch_size=100, n_microbatches=3)
    with pytest.raises(ValueError, match="epochs"):
        RLConfig(epochs=0)
    with pytest.raises(ValueError, match="early_stop"):
        RLConfig(epochs=1, early_stop="yes")
    with pytest.raises(ValueError, match="optimizer"):
        RLConfig(epochs=1, optimizer="rmsprop")
    with pytest.raises(ValueError, match="max_new_tokens"):
        RLConfig(epochs=1, max_new_tokens=0)
    with pytest.raises(ValueError, match="n_vertices"):
        train_rl(
            ChainPolicyConfig(6),
            ChainTask.uniform(2),
            ChainTask.uniform(2),
            RLConfig(epochs=1),
            progress=False,
        )
    assert symmetric_policy_params(1.0, 2.0, 3.0)["theta"].dtype == jnp.float32
