"""Jit-compiled training of several seeds at once.

One compiled program runs `chunk_size` optimiser steps with `lax.scan`; every seed is a slice
of a `vmap`. Each step draws a fresh batch on device from `fold_in(data_key[seed], step)`, so a
run's randomness depends only on (seed, step): chunking, checkpointing and resuming do not
change a single bit. Metrics are computed on device, on a fixed evaluation batch, at the steps
of a log-and-linear schedule, inside the same program (a `lax.cond` that only fires there).

The host loop only moves between chunks: it checks the losses for NaN/inf, saves a checkpoint
and updates the progress bar.

With several devices the run axis, and where devices are to spare each run's batch, are sharded
over a mesh (`sinkjax.sharding`); the results come back as on one device.
"""

import contextlib
import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray, PyTree
from tqdm.auto import tqdm

from sinkjax.checkpoints import Checkpointer
from sinkjax.optim import OptimizerConfig, make_optimizer
from sinkjax.sharding import ONE_DEVICE, Placement, to_default_device, to_host


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How long and how to train; the model and data are given by a `TrainTask`."""

    # Number of optimiser steps.
    steps: int
    # One independent run (init and data) per seed, trained together under vmap.
    seeds: tuple[int, ...] = (42,)
    # Steps per compiled scan call; checkpoints and NaN checks happen between chunks.
    chunk_size: int = 250
    # Log-spaced evaluation points in [1, steps] (step 0 and the last step are always added).
    n_log_evals: int = 40
    # Evenly spaced evaluation points in [0, steps].
    n_linear_evals: int = 20
    # Further evaluation steps (e.g. a reference run's probe steps); those past `steps` are dropped.
    eval_at: tuple[int, ...] = ()
    # Save a checkpoint every this many steps (rounded up to whole chunks); 0: only at the end.
    checkpoint_every: int = 1000

    def __post_init__(self):
        if self.steps <= 0:
            raise ValueError(f"steps must be positive, got {self.steps}")
        if not self.seeds:
            raise ValueError("give at least one seed")
        if self.chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {self.chunk_size}")
        if self.n_log_evals < 0 or self.n_linear_evals < 0 or self.checkpoint_every < 0:
            raise ValueError("n_log_evals, n_linear_evals and checkpoint_every must be >= 0")
        if any(step < 0 for step in self.eval_at):
            raise ValueError(f"eval_at steps must be >= 0, got {self.eval_at}")


@dataclasses.dataclass(frozen=True)
class TrainTask:
    """What to train, as pure functions of one run's parameters (vmapped by `train`).

    Attributes:
        init_params: key -> parameter pytree.
        loss: (params, key) -> scalar loss on a batch sampled from `key`.
        evaluate: params -> dict of metric arrays (fixed shapes) on a fixed evaluation batch.
        run_args: None, or per-run data for a sweep trained in one program: a pytree whose
            leaves have a leading axis with one row per entry of `TrainConfig.seeds`. Each of
            the three functions then takes its run's row as an extra last argument (e.g. the
            sub-layer gates that make one parameter shape serve several architectures).
        batch_size: the sequences `loss` samples per step, which it passes through
            `sinkjax.sharding.shard_batch`; None: the batch is never sharded over devices.
    """

    init_params: Callable[..., PyTree]
    loss: Callable[..., Float[Array, ""]]
    evaluate: Callable[..., dict[str, Array]]
    run_args: PyTree | None = None
    batch_size: int | None = None

    def per_run(self, n_runs: int) -> tuple["TrainTask", PyTree]:
        """This task with a uniform trailing `run_arg` argument, and the (n_runs, ...) rows.

        A task without `run_args` gets placeholder rows its functions ignore.
        """
        if self.run_args is None:
            task = TrainTask(
                lambda key, _: self.init_params(key),
                lambda params, key, _: self.loss(params, key),
                lambda params, _: self.evaluate(params),
                batch_size=self.batch_size,
            )
            return task, jnp.zeros((n_runs,))
        leading = {leaf.shape[0] for leaf in jax.tree.leaves(self.run_args)}
        if leading != {n_runs}:
            raise ValueError(
                f"run_args have leading axes {sorted(leading)} but there are {n_runs} runs "
                "(one per entry of TrainConfig.seeds); give one row per run"
            )
        return self, self.run_args


@dataclasses.dataclass
class TrainResult:
    """Outcome of `train`; arrays are numpy, with a leading seed axis S.

    Attributes:
        params: the final parameters, every leaf with a leading (S,) axis (device arrays).
        eval_steps: (E,) the steps at which metrics were taken (0 = initialisation).
        metrics: name -> (S, E, ...) metric values at `eval_steps`.
        losses: (S, steps) the training loss of every step.
        resumed_from: the step a checkpoint was restored from, or None.
        wall_time: seconds spent in this call.
        placement: the program's devices and mesh (`Placement.describe`).
    """

    params: PyTree
    eval_steps: np.ndarray
    metrics: dict[str, np.ndarray]
    losses: np.ndarray
    resumed_from: int | None
    wall_time: float
    placement: dict[str, Any] = dataclasses.field(default_factory=dict)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def eval_schedule(steps: int, n_log: int, n_linear: int, extra: tuple[int, ...] = ()) -> np.ndarray:
    """Sorted unique steps in [0, steps]: 0, `steps`, n_log log-spaced and n_linear even ones,
    and the `extra` steps up to `steps`."""
    log_points = np.geomspace(1, steps, n_log) if n_log else np.zeros(0)
    lin_points = np.linspace(0, steps, n_linear) if n_linear else np.zeros(0)
    kept = np.asarray([step for step in extra if step <= steps], dtype=np.float64)
    points = np.concatenate([[0, steps], np.round(log_points), np.round(lin_points), kept])
    return np.unique(points.astype(np.int64))


def seed_streams(seeds: tuple[int, ...], count: int) -> tuple[PRNGKeyArray, ...]:
    """`count` (S,) key arrays, one key per seed: stream i of seed s is fold_in(key(s), i)."""
    roots = jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.uint32))
    fold = jax.vmap(jax.random.fold_in, (0, None))
    return tuple(fold(roots, stream) for stream in range(count))


def seed_keys(seeds: tuple[int, ...]) -> tuple[PRNGKeyArray, PRNGKeyArray]:
    """(S,) parameter-init keys and (S,) data keys, one pair per seed (the data key of step s
    is `fold_in(data_key, s)`): how `train` seeds every run."""
    return seed_streams(seeds, 2)


def chunk_program(
    task: TrainTask,
    tx: optax.GradientTransformation,
    steps: int,
    chunk: int,
    placement: Placement = ONE_DEVICE,
):
    """The compiled program that advances every run by `chunk` steps.

    `task` must take a trailing run argument (see `TrainTask.per_run`). With a mesh in
    `placement`, the run axis of every input and output is sharded over it; call the program
    under `placement.active()`. Returns
    `run_chunk(params, opt_state, history, step0, data_keys, run_args, eval_slot)` ->
    `(params, opt_state, history, losses (S, chunk))`: params/opt_state/run_args carry a leading
    run axis S, `eval_slot` (steps + 1,) maps a step to its row of `history` (or -1), and steps
    at or beyond `steps` leave the state unchanged (their losses are NaN).
    """

    def seed_update(params, opt_state, key, run_arg):
        loss, grads = jax.value_and_grad(task.loss)(params, key, run_arg)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    def body(carry, step, data_keys, run_args, eval_slot):
        params, opt_state, history = carry
        step_keys = jax.vmap(jax.random.fold_in, (0, None))(data_keys, step)

        def update(state):
            return jax.vmap(seed_update, spmd_axis_name=placement.run_axis_name)(
                *state, step_keys, run_args
            )

        def skip(state):  # past the last step (final partial chunk): leave state unchanged
            return *state, jnp.full((len(data_keys),), jnp.nan)

        params, opt_state, loss = jax.lax.cond(step < steps, update, skip, (params, opt_state))
        slot = eval_slot[jnp.minimum(step + 1, steps)]

        def record(history):
            metrics = jax.vmap(task.evaluate, spmd_axis_name=placement.run_axis_name)(
                params, run_args
            )
            return {k: v.at[:, slot].set(metrics[k]) for k, v in history.items()}

        history = jax.lax.cond((step < steps) & (slot >= 0), record, lambda h: h, history)
        return (params, opt_state, history), loss

    def run_chunk(params, opt_state, history, step0, data_keys, run_args, eval_slot):
        def scan_body(carry, i):
            return body(carry, step0 + i, data_keys, run_args, eval_slot)

        carry, losses = jax.lax.scan(scan_body, (params, opt_state, history), jnp.arange(chunk))
        return (*carry, losses.T)  # losses: (S, chunk)

    return placement.jit(run_chunk)


def run_fingerprint(
    cfg: TrainConfig, optimizer: OptimizerConfig, fingerprint: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON description of a run that guards its checkpoint: `cfg`, `optimizer` and the
    caller's `fingerprint` of everything else (model, data), normalised through JSON."""
    full = {
        "train": dataclasses.asdict(cfg),
        "optimizer": dataclasses.asdict(optimizer),
        "task": fingerprint or {},
    }
    return json.loads(json.dumps(full))


def restore_latest(checkpointer: Checkpointer | None, like: PyTree) -> tuple[int, PyTree] | None:
    """The latest checkpoint of `checkpointer` as (step, state), `state` in the structure, shapes
    and dtypes of `like`; None without a checkpointer or a checkpoint.

    Raises:
        CheckpointMismatch: the checkpoint belongs to a run with another fingerprint.
    """
    if checkpointer is None or checkpointer.latest_step() is None:
        return None
    return checkpointer.restore(like)


def raise_if_diverged(
    bad: np.ndarray,
    first_step: int,
    seeds: tuple[int, ...],
    checkpointer: Checkpointer | None,
    unit: str,
) -> None:
    """Raise `TrainingDiverged` at the first NaN/inf loss of a chunk, if there is one.

    Args:
        bad: (S, n) bool, the chunk's losses that are NaN/inf (of steps that ran).
        first_step: the optimiser step of column 0 (0-based; the message counts from 1).
        seeds: the S seeds, named in the message.
        checkpointer: where the last good checkpoint is, or None.
        unit: what the checkpointer's steps count ("step", "epoch").
    """
    if not bad.any():
        return
    bad_seed, bad_step = np.argwhere(bad)[0]
    kept = checkpointer.latest_step() if checkpointer else None
    where = f"; last good checkpoint: {unit} {kept}" if kept is not None else ""
    raise TrainingDiverged(
        f"loss became NaN/inf at step {first_step + bad_step + 1} "
        f"(seed {seeds[bad_seed]}){where}; lower the learning rate"
    )


@contextlib.contextmanager
def chunk_progress(
    total: int,
    initial: int,
    description: str,
    progress: bool,
    checkpointer: Checkpointer | None,
) -> Iterator[tqdm]:
    """The progress bar of a chunk loop, over `total` units (steps, epochs) from `initial`;
    on leaving (also by an error) the bar and then `checkpointer` (if any) are closed."""
    bar = tqdm(total=total, initial=initial, desc=description, disable=not progress, leave=False)
    try:
        yield bar
    finally:
        bar.close()
        if checkpointer is not None:
            checkpointer.close()


def _eval_slots(eval_steps: np.ndarray, steps: int) -> np.ndarray:
    """(steps + 1,) int32: the row of `history` that step s's metrics go to (its index in the
    (E,) `eval_steps`), or -1 where there is no evaluation (`chunk_program`'s `eval_slot`)."""
    eval_slot = np.full(steps + 1, -1, np.int32)
    eval_slot[eval_steps] = np.arange(len(eval_steps))
    return eval_slot


def _initial_state(
    task: TrainTask,
    tx: optax.GradientTransformation,
    cfg: TrainConfig,
    placement: Placement,
    init_keys: PRNGKeyArray,
    run_args: PyTree,
    n_evals: int,
) -> dict[str, Any]:
    """The state of every run at step 0, in the checkpoint's format.

    Args:
        task: the task with a trailing run argument (`TrainTask.per_run`).
        init_keys: (S,) parameter-init keys; `run_args`: the (S, ...) rows, both placed.
        n_evals: E, the number of evaluation steps.

    Returns:
        "params", "opt_state": leading (S,) axis; "history": name -> (S, E, ...) metrics, row 0
        those of the initialisation and zeros after; "losses": (S, steps) NaN float32 (numpy).
    """
    with placement.active():
        params = placement.jit(jax.vmap(task.init_params))(init_keys, run_args)
        opt_state = placement.jit(jax.vmap(tx.init))(params)
        first = placement.jit(jax.vmap(task.evaluate))(params, run_args)
    history = placement.put(
        {
            k: jnp.zeros((v.shape[0], n_evals, *v.shape[1:]), v.dtype).at[:, 0].set(v)
            for k, v in first.items()
        }
    )
    losses = np.full((len(cfg.seeds), cfg.steps), np.nan, np.float32)
    return {"params": params, "opt_state": opt_state, "history": history, "losses": losses}


def _resume(
    checkpointer: Checkpointer | None, state: dict[str, Any]
) -> tuple[int, dict[str, Any], int | None]:
    """(step, state, resumed_from) from the latest checkpoint, or (0, `state`, None) without
    one; `state` (`_initial_state`'s) gives the structure, shapes and dtypes to restore."""
    restored = restore_latest(checkpointer, state)
    if restored is None:
        return 0, state, None
    step, saved = restored
    return step, {**saved, "losses": to_host(saved["losses"])}, step


def _run_chunks(
    advance: Callable[[dict[str, Any], int], tuple],
    state: dict[str, Any],
    step: int,
    cfg: TrainConfig,
    checkpointer: Checkpointer | None,
    bar: tqdm,
) -> dict[str, Any]:
    """Advance `state` (`_initial_state`'s format) chunk by chunk from `step` to `cfg.steps`.

    After each chunk: raise `TrainingDiverged` on a NaN/inf loss (before keeping the chunk),
    store the chunk's losses, update `bar`, and save a checkpoint every `checkpoint_every`
    steps (rounded up to whole chunks) and at the end.

    Args:
        advance: (state, step) -> `chunk_program`'s (params, opt_state, history, losses
            (S, chunk_size)) after the chunk starting at `step`.

    Returns:
        The state after `cfg.steps` steps (its "losses" array is filled in place).
    """
    chunks_per_save = (
        max(1, -(-cfg.checkpoint_every // cfg.chunk_size)) if cfg.checkpoint_every else None
    )
    while step < cfg.steps:
        new = advance(state, step)
        chunk_losses = to_host(new[3])
        n = min(cfg.chunk_size, cfg.steps - step)
        raise_if_diverged(~np.isfinite(chunk_losses[:, :n]), step, cfg.seeds, checkpointer, "step")
        losses = state["losses"]
        losses[:, step : step + n] = chunk_losses[:, :n]
        state = {"params": new[0], "opt_state": new[1], "history": new[2], "losses": losses}
        step += n
        bar.update(n)
        bar.set_postfix(loss=f"{np.nanmean(chunk_losses[:, :n]):.4f}")
        periodic = chunks_per_save and (step // cfg.chunk_size) % chunks_per_save == 0
        if checkpointer is not None and (step == cfg.steps or periodic):
            checkpointer.save(step, state)
    return state


def train(
    task: TrainTask,
    optimizer: OptimizerConfig,
    cfg: TrainConfig,
    *,
    checkpoint_dir: str | None = None,
    fingerprint: dict[str, Any] | None = None,
    progress: bool = True,
    description: str = "train",
) -> TrainResult:
    """Train one model per seed in `cfg.seeds`, all in one compiled program.

    Args:
        task: model, data and metrics as pure functions.
        optimizer: the optimiser.
        cfg: steps, seeds, chunking, evaluation schedule and checkpoint period.
        checkpoint_dir: if given, resume from its latest checkpoint and save new ones there.
        fingerprint: JSON-able description of everything that defines the run besides `cfg`
            and `optimizer` (e.g. the model and data configs); guards resuming.
        progress: show a progress bar.
        description: label of the progress bar.

    Raises:
        TrainingDiverged: the loss became NaN/inf; the last good checkpoint is kept.
    """
    start_time = time.perf_counter()
    tx = make_optimizer(optimizer)
    task, run_args = task.per_run(len(cfg.seeds))
    placement = Placement.for_program(len(cfg.seeds), task.batch_size)
    init_keys, data_keys = placement.put(seed_keys(cfg.seeds))
    run_args = placement.put(run_args)
    eval_steps = eval_schedule(cfg.steps, cfg.n_log_evals, cfg.n_linear_evals, cfg.eval_at)
    eval_slot = _eval_slots(eval_steps, cfg.steps)
    state = _initial_state(task, tx, cfg, placement, init_keys, run_args, len(eval_steps))
    checkpointer = None
    if checkpoint_dir is not None:
        checkpointer = Checkpointer(checkpoint_dir, run_fingerprint(cfg, optimizer, fingerprint))
    step, state, resumed_from = _resume(checkpointer, state)
    run_chunk = chunk_program(task, tx, cfg.steps, cfg.chunk_size, placement)

    def advance(state, step):
        with placement.active():
            carry = (state["params"], state["opt_state"], state["history"])
            return run_chunk(*carry, step, data_keys, run_args, eval_slot)

    with chunk_progress(cfg.steps, step, description, progress, checkpointer) as bar:
        state = _run_chunks(advance, state, step, cfg, checkpointer, bar)
    return TrainResult(
        params=to_default_device(state["params"]),
        eval_steps=eval_steps,
        metrics=to_host(state["history"]),
        losses=state["losses"],
        resumed_from=resumed_from,
        wall_time=time.perf_counter() - start_time,
        placement=placement.describe(),
    )
