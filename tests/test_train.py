"""The training loop: schedule, vmapped seeds, exact resume, NaN guard, no retracing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sinkjax import train as train_lib
from sinkjax.checkpoints import Checkpointer
from sinkjax.optim import OptimizerConfig
from sinkjax.train import TrainConfig, TrainingDiverged, TrainTask, eval_schedule, train

TRUE_W = jnp.array([1.0, -2.0, 0.5, 3.0])


def regression_task() -> TrainTask:
    """Noisy linear regression: fresh (x, y) every step from the step key."""

    def init_params(key):
        return {"w": jax.random.normal(key, (4,))}

    def loss(params, key):
        kx, kn = jax.random.split(key)
        x = jax.random.normal(kx, (16, 4))
        y = x @ TRUE_W + 0.1 * jax.random.normal(kn, (16,))
        return jnp.mean((x @ params["w"] - y) ** 2)

    def evaluate(params):
        return {"error": jnp.linalg.norm(params["w"] - TRUE_W), "w": params["w"]}

    return TrainTask(init_params, loss, evaluate)


SGD = OptimizerConfig(name="sgd", learning_rate=0.05, momentum=0.5, weight_decay=0.0)


def test_eval_schedule_is_log_and_linear():
    steps = eval_schedule(1000, n_log=10, n_linear=5)
    assert steps[0] == 0 and steps[-1] == 1000
    assert np.all(np.diff(steps) > 0)
    assert {1, 10, 100, 250, 500, 750}.issubset(set(steps.tolist()))


def test_eval_schedule_adds_the_requested_steps_up_to_the_end():
    plain = set(eval_schedule(1000, n_log=10, n_linear=5).tolist())
    steps = set(eval_schedule(1000, n_log=10, n_linear=5, extra=(200, 400, 2000)).tolist())
    assert {200, 400} - plain and steps == plain | {200, 400}
    with pytest.raises(ValueError, match="eval_at"):
        TrainConfig(steps=10, eval_at=(-1,))


def test_training_converges_and_records_metrics():
    cfg = TrainConfig(steps=120, seeds=(0, 1), chunk_size=50, n_log_evals=5, n_linear_evals=4)
    result = train(regression_task(), SGD, cfg, progress=False)
    assert result.losses.shape == (2, 120) and np.isfinite(result.losses).all()
    assert result.metrics["error"].shape == (2, len(result.eval_steps))
    assert result.metrics["w"].shape == (2, len(result.eval_steps), 4)
    assert np.all(result.metrics["error"][:, -1] < 0.1 * result.metrics["error"][:, 0])
    np.testing.assert_allclose(result.metrics["w"][:, -1], result.params["w"])


def test_vmapped_seeds_equal_separate_runs():
    cfg = TrainConfig(steps=30, seeds=(3, 7), chunk_size=30, n_log_evals=3, n_linear_evals=0)
    both = train(regression_task(), SGD, cfg, progress=False)
    for i, seed in enumerate(cfg.seeds):
        alone = train(
            regression_task(),
            SGD,
            TrainConfig(steps=30, seeds=(seed,), chunk_size=30, n_log_evals=3, n_linear_evals=0),
            progress=False,
        )
        np.testing.assert_allclose(both.losses[i], alone.losses[0], rtol=1e-6)
        np.testing.assert_allclose(both.params["w"][i], alone.params["w"][0], rtol=1e-6)


def test_resumed_run_equals_uninterrupted_run(tmp_path, monkeypatch):
    cfg = TrainConfig(steps=50, seeds=(0, 1), chunk_size=10, checkpoint_every=20, n_log_evals=6)
    adam = OptimizerConfig(learning_rate=0.05)
    full = train(regression_task(), adam, cfg, progress=False)

    original_save = Checkpointer.save

    def save_then_crash(self, step, state):
        original_save(self, step, state)
        if step == 20:
            raise KeyboardInterrupt

    monkeypatch.setattr(Checkpointer, "save", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train(regression_task(), adam, cfg, checkpoint_dir=str(tmp_path), progress=False)
    monkeypatch.undo()

    resumed = train(regression_task(), adam, cfg, checkpoint_dir=str(tmp_path), progress=False)
    assert resumed.resumed_from == 20
    np.testing.assert_array_equal(resumed.losses, full.losses)
    np.testing.assert_array_equal(resumed.params["w"], full.params["w"])
    for name in full.metrics:
        np.testing.assert_array_equal(resumed.metrics[name], full.metrics[name])


def test_resume_refuses_a_different_run(tmp_path):
    cfg = TrainConfig(steps=10, chunk_size=10)
    train(regression_task(), SGD, cfg, checkpoint_dir=str(tmp_path), progress=False)
    with pytest.raises(ValueError, match="different run"):
        train(
            regression_task(),
            OptimizerConfig(learning_rate=0.01),
            cfg,
            checkpoint_dir=str(tmp_path),
            progress=False,
        )


def test_nan_guard_stops_and_keeps_last_good_checkpoint(tmp_path):
    """sqrt(w) with a large step: w goes negative within a few steps and the loss is NaN."""

    def init_params(key):
        return {"w": jnp.ones(())}

    def loss(params, key):
        return jnp.sqrt(params["w"]) * (1 + 0 * jax.random.uniform(key))

    task = TrainTask(init_params, loss, lambda p: {"w": p["w"]})
    cfg = TrainConfig(steps=100, chunk_size=1, checkpoint_every=1)
    sgd = OptimizerConfig(name="sgd", learning_rate=1.0, momentum=0.0, weight_decay=0.0)
    with pytest.raises(TrainingDiverged, match="lower the learning rate") as err:
        train(task, sgd, cfg, checkpoint_dir=str(tmp_path), progress=False)
    assert "last good checkpoint: step" in str(err.value)
    kept = Checkpointer(tmp_path, {}).latest_step()
    assert kept is not None and f"step {kept + 1} " in str(err.value)


def test_no_retracing_across_chunks(monkeypatch):
    n_traces = 0
    task = regression_task()

    def counting_loss(params, key):
        nonlocal n_traces
        n_traces += 1
        return task.loss(params, key)

    counted = train_lib.TrainTask(task.init_params, counting_loss, task.evaluate)
    train(counted, SGD, TrainConfig(steps=95, chunk_size=10), progress=False)
    assert n_traces == 1  # traced once for 10 chunks, the last one partial


def test_invalid_config_is_rejected():
    with pytest.raises(ValueError, match="steps must be positive"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="learning_rate must be positive"):
        OptimizerConfig(learning_rate=-1.0)
