"""Time the real training program (`sinkjax.train.chunk_program`) without its evaluation."""

import time

import jax
import numpy as np

from sinkjax.optim import OptimizerConfig, make_optimizer
from sinkjax.train import TrainTask, chunk_program


def time_training_program(
    train_task: TrainTask, optimizer: OptimizerConfig, n_runs: int, chunk: int
) -> tuple[float, float]:
    """(compile seconds, seconds per step) of `n_runs` vmapped runs of `train_task`.

    Metrics are never recorded in the timed chunks (the evaluation is replaced by an empty one
    and every eval slot is -1). The step time is the best of three chunks of `chunk` steps,
    after one warm-up chunk.
    """
    no_eval = TrainTask(
        train_task.init_params, train_task.loss, lambda *_: {}, run_args=train_task.run_args
    )
    task, run_args = no_eval.per_run(n_runs)
    tx = make_optimizer(optimizer)
    keys = jax.random.split(jax.random.key(0), n_runs)
    params = jax.vmap(task.init_params)(keys, run_args)
    opt_state = jax.vmap(tx.init)(params)
    total = 10**6
    eval_slot = np.full(total + 1, -1, np.int32)
    run = chunk_program(task, tx, total, chunk)
    t0 = time.perf_counter()
    compiled = run.lower(params, opt_state, {}, 0, keys, run_args, eval_slot).compile()
    compile_s = time.perf_counter() - t0
    state = compiled(params, opt_state, {}, 0, keys, run_args, eval_slot)  # warm-up
    jax.block_until_ready(state)
    times = []
    for i in range(3):
        t0 = time.perf_counter()
        state = compiled(*state[:3], (i + 1) * chunk, keys, run_args, eval_slot)
        jax.block_until_ready(state)
        times.append((time.perf_counter() - t0) / chunk)
    return compile_s, min(times)
