"""Outcome-based RL on the chain task: REINFORCE with a batch-mean baseline (spec §3.6).

Per optimiser step and seed, the batch of B prompts is drawn on device from
`fold_in(data_key[seed], step)` and split into M micro-batches (gradient accumulation, as the
code's sub-batches). On micro-batch m of b = B/M rollouts, one per prompt, the surrogate is

    loss_m = -(1/b) sum_i (sum_t log pi(x_t^i)) (r_i - mean_m r),

the log-prob sum running up to and including the stopping token, and the step's gradient is the
mean over m of grad loss_m. The baseline is the micro-batch mean, as in the code, so the
estimator's expectation is (1 - 1/b) grad L with L = 1 - E[r] (the reward of a rollout is
independent of the others'; its own reward in the mean gives the factor). With plain SGD of
learning rate eta on the symmetric (theory) policy this is a stochastic Euler step of the
gradient flow d theta / dt = -grad L at t = eta * steps (times 1 - 1/b), with the finite horizon
H = `max_new_tokens`.

Training follows `sinkjax.train`: seeds are vmapped, a compiled `lax.scan` advances every seed by
`epochs_per_chunk` epochs of `epoch_steps` optimiser steps, the host checks for NaN/inf, saves an
orbax checkpoint and updates the progress bar between chunks. After every epoch (the code: one
pass over its pre-generated train set, 10 or 20 steps) each seed is evaluated greedily on a fixed
validation set; early stopping freezes a seed once its train accuracy over the epoch's sampled
rollouts and its greedy validation accuracy both reach 100% (by default in the code's quirk form
that ignores rollouts that emitted no sink). Training ends when every seed has stopped.
"""

import dataclasses
import functools
import json
import time
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, PyTree
from tqdm.auto import tqdm

from sinkjax.checkpoints import Checkpointer
from sinkjax.cot_rl.chains import ChainTask, sample_chains
from sinkjax.cot_rl.policy import ChainPolicyConfig, Params, init_policy_params
from sinkjax.cot_rl.rollouts import Rollout, rollout, rollout_metrics
from sinkjax.optim import OptimizerConfig, make_optimizer
from sinkjax.sharding import ONE_DEVICE, Placement, shard_batch, to_default_device, to_host
from sinkjax.train import chunk_progress, raise_if_diverged, restore_latest, seed_streams

VAL_METRICS = ("accuracy", "accuracy_code_quirk", "chain_traverse", "chain_traverse_code_quirk")
TRAIN_METRICS = ("loss", "reward", "accuracy_code_quirk")


@dataclasses.dataclass(frozen=True)
class RLConfig:
    """How to train; the defaults are the code's linear-attention runs (spec §3.6)."""

    # Number of epochs at most; an epoch is `epoch_steps` optimiser steps.
    epochs: int
    # Optimiser steps per epoch (code: 10 linear, 20 softmax); metrics and early stop per epoch.
    epoch_steps: int = 10
    # Rollouts (prompts) per optimiser step.
    batch_size: int = 200_000
    # Gradient-accumulation micro-batches per step (must divide batch_size).
    n_microbatches: int = 80
    # H of the training rollouts; None: n + 1 of the training task.
    max_new_tokens: int | None = None
    # H of the greedy validation rollouts; None: the training H.
    val_max_new_tokens: int | None = None
    # "adam" (torch Adam defaults, no weight decay, no clipping) or "sgd" (plain, no momentum).
    optimizer: Literal["adam", "sgd"] = "adam"
    # Constant learning rate.
    learning_rate: float = 1e-2
    # One independent run (init, data, validation set) per seed, trained together under vmap.
    seeds: tuple[int, ...] = (42, 43, 44)
    # Validation prompts (fixed per seed).
    val_size: int = 1000
    # Freeze a seed once its train and validation accuracy are both 100%: "code_quirk" (the
    # code's rule: rollouts that emitted no sink are ignored, so it can fire below 100% true
    # accuracy), "strict" (every rollout's first sink is the target), or "off".
    early_stop: Literal["code_quirk", "strict", "off"] = "code_quirk"
    # Epochs per compiled call; checkpoints and NaN checks happen between chunks.
    epochs_per_chunk: int = 10

    def __post_init__(self):
        for name in ("epochs", "epoch_steps", "batch_size", "n_microbatches", "val_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.epochs_per_chunk <= 0:
            raise ValueError(f"epochs_per_chunk must be positive, got {self.epochs_per_chunk}")
        if self.batch_size % self.n_microbatches:
            raise ValueError(
                f"batch_size {self.batch_size} is not a multiple of n_microbatches "
                f"{self.n_microbatches}; choose a divisor"
            )
        for name in ("max_new_tokens", "val_max_new_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {value}")
        if self.early_stop not in ("code_quirk", "strict", "off"):
            raise ValueError(
                f"early_stop must be 'code_quirk', 'strict' or 'off', got {self.early_stop!r}"
            )
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if not self.seeds:
            raise ValueError("give at least one seed")

    def optimizer_config(self) -> OptimizerConfig:
        """The `sinkjax.optim` config of `optimizer` (Adam = AdamW without weight decay)."""
        if self.optimizer == "adam":
            return OptimizerConfig(
                "adamw", self.learning_rate, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0
            )
        return OptimizerConfig("sgd", self.learning_rate, weight_decay=0.0, momentum=0.0)


@dataclasses.dataclass
class RLResult:
    """Outcome of `train_rl`; arrays are numpy with a leading seed axis S (E = cfg.epochs).

    Attributes:
        params: final parameters, every leaf with a leading (S,) axis (device arrays); a seed
            that stopped early keeps its parameters of the stopping epoch.
        history: name -> (S, E + 1) float32; column e is after epoch e (0: initialisation),
            NaN after a seed stopped, after an interrupted run's last epoch, and for the train
            metrics at column 0. Names: "val_<m>" for m in `VAL_METRICS` (greedy, fixed
            validation set) and "train_<m>" for m in `TRAIN_METRICS` over the epoch's sampled
            rollouts (loss: the mean surrogate; reward: the mean reward). The symmetric policy
            also records "theta": (S, E + 1, 3) (alpha, beta, gamma) after each epoch, i.e. at
            gradient-flow time t = learning_rate * epoch_steps * e for plain SGD.
        losses: (S, E * epoch_steps) surrogate loss of every step, NaN after a seed stopped.
        stop_epoch: (S,) int, the epoch after which a seed stopped early, -1 if it did not.
        epochs_run: epochs completed (the last column of `history` that may hold values).
        resumed_from: the epoch a checkpoint was restored from, or None.
        wall_time: seconds spent in this call.
        placement: the program's devices and mesh (`Placement.describe`).
    """

    params: PyTree
    history: dict[str, np.ndarray]
    losses: np.ndarray
    stop_epoch: np.ndarray
    epochs_run: int
    resumed_from: int | None
    wall_time: float
    placement: dict[str, Any] = dataclasses.field(default_factory=dict)


def reinforce_surrogate(
    params: Params,
    key: PRNGKeyArray,
    task: ChainTask,
    policy: ChainPolicyConfig,
    batch_size: int,
    max_new_tokens: int,
) -> tuple[Float[Array, ""], Rollout]:
    """REINFORCE surrogate on b = `batch_size` fresh prompts, one sampled rollout each.

    Returns:
        (loss, rollouts): loss = -(1/b) sum_i log pi(traj_i) (r_i - mean r), whose gradient is
        the batch-mean-baseline estimate of (1 - 1/b) grad (1 - E r); the sampled rollouts.
    """
    k_data, k_sample = jax.random.split(key)
    batch = jax.tree.map(shard_batch, sample_chains(k_data, task, batch_size))
    result = rollout(params, batch, policy, max_new_tokens, key=k_sample)
    advantage = jax.lax.stop_gradient(result.reward - jnp.mean(result.reward))
    return -jnp.mean(jnp.sum(result.log_probs, axis=1) * advantage), result


def reinforce_gradient(
    params: Params,
    key: PRNGKeyArray,
    task: ChainTask,
    policy: ChainPolicyConfig,
    batch_size: int,
    n_microbatches: int,
    max_new_tokens: int,
) -> tuple[Params, dict[str, Array]]:
    """One step's gradient, accumulated over `n_microbatches` micro-batches (keys fold_in(key, m)).

    Returns:
        grads: mean over micro-batches of the surrogate gradients (same pytree as params).
        stats: "loss" (mean surrogate, float32), "correct" and "with_sink" (int32 counts of
            rollouts whose first sink is the target / that emitted a sink).
    """
    micro = batch_size // n_microbatches
    grad_fn = jax.value_and_grad(reinforce_surrogate, has_aux=True)

    def body(total, m):
        (loss, result), grads = grad_fn(
            params, jax.random.fold_in(key, m), task, policy, micro, max_new_tokens
        )
        counts = (jnp.sum(result.reward > 0), jnp.sum(result.first_sink >= 0))
        return jax.tree.map(jnp.add, total, grads), (loss, *counts)

    zeros = jax.tree.map(jnp.zeros_like, params)
    total, (losses, correct, with_sink) = jax.lax.scan(body, zeros, jnp.arange(n_microbatches))
    grads = jax.tree.map(lambda g: g / n_microbatches, total)
    stats = {"loss": jnp.mean(losses), "correct": jnp.sum(correct), "with_sink": jnp.sum(with_sink)}
    return grads, stats


def evaluate_greedy(
    params: Params,
    key: PRNGKeyArray,
    task: ChainTask,
    policy: ChainPolicyConfig,
    size: int,
    max_new_tokens: int,
) -> dict[str, Float[Array, ""]]:
    """`rollout_metrics` of greedy rollouts on `size` prompts drawn from `key` (jit-able)."""
    batch = sample_chains(key, task, size)
    return rollout_metrics(rollout(params, batch, policy, max_new_tokens))


_init_seeds = jax.jit(jax.vmap(init_policy_params, (0, None)), static_argnums=1)
_evaluate_seeds = jax.jit(
    jax.vmap(evaluate_greedy, (0, 0, None, None, None, None)), static_argnums=(2, 3, 4, 5)
)


def _check_setup(policy: ChainPolicyConfig, train_task: ChainTask, val_task: ChainTask) -> None:
    for name, task in (("train_task", train_task), ("val_task", val_task)):
        if task.n_vertices != policy.n_vertices:
            raise ValueError(
                f"{name} has {task.n_vertices} vertex labels but the policy {policy.n_vertices}; "
                "give every task the policy's n_vertices (add isolated vertices)"
            )


def _train_epoch(
    params: Params,
    opt_state: optax.OptState,
    stopped: Bool[Array, ""],
    data_key: PRNGKeyArray,
    epoch: Int[Array, ""],
    tx: optax.GradientTransformation,
    policy: ChainPolicyConfig,
    task: ChainTask,
    cfg: RLConfig,
    horizon: int,
) -> tuple[Params, optax.OptState, dict[str, Array]]:
    """The `cfg.epoch_steps` REINFORCE steps of epoch `epoch` of one seed, by `lax.scan`.

    Args:
        params, opt_state: the seed's parameters and optimiser state.
        stopped: the seed has stopped early: its state is left unchanged.
        data_key: the seed's data key; global step s draws from fold_in(data_key, s).
        epoch: the epoch (0-based); its steps are epoch * epoch_steps + i.
        tx: the optimiser; task, policy: the training rollouts'; horizon: their H.

    Returns:
        (params, opt_state, stats): `reinforce_gradient`'s stats with a leading
        (epoch_steps,) axis.
    """

    def step(carry, i):
        params, opt_state = carry
        key = jax.random.fold_in(data_key, epoch * cfg.epoch_steps + i)
        grads, stats = reinforce_gradient(
            params, key, task, policy, cfg.batch_size, cfg.n_microbatches, horizon
        )
        updates, new_opt_state = tx.update(grads, opt_state, params)
        new = (optax.apply_updates(params, updates), new_opt_state)
        carry = jax.tree.map(lambda old, upd: jnp.where(stopped, old, upd), carry, new)
        return carry, stats

    (params, opt_state), stats = jax.lax.scan(
        step, (params, opt_state), jnp.arange(cfg.epoch_steps)
    )
    return params, opt_state, stats


def _epoch_metrics(
    params: Params,
    stats: dict[str, Array],
    val: dict[str, Float[Array, ""]],
    policy: ChainPolicyConfig,
    cfg: RLConfig,
) -> tuple[dict[str, Array], Bool[Array, ""]]:
    """One seed's history entries of an epoch, and whether it stops early after it.

    Args:
        params: the seed's parameters after the epoch.
        stats: `reinforce_gradient`'s stats of the epoch's steps, each (epoch_steps,).
        val: `evaluate_greedy`'s metrics on the validation set after the epoch.

    Returns:
        (metrics, done): the column of every history entry ("val_<m>", "train_<m>", and
        "theta" (3,) for the symmetric policy); whether `cfg.early_stop`'s criterion holds.
    """
    correct, with_sink = jnp.sum(stats["correct"]), jnp.sum(stats["with_sink"])
    n_rollouts = cfg.epoch_steps * cfg.batch_size
    metrics = {f"val_{m}": val[m] for m in VAL_METRICS}
    metrics["train_loss"] = jnp.mean(stats["loss"])
    metrics["train_reward"] = correct / n_rollouts
    metrics["train_accuracy_code_quirk"] = correct / jnp.maximum(with_sink, 1)
    if policy.parameterization == "symmetric":
        metrics["theta"] = params["theta"]
    if cfg.early_stop == "code_quirk":  # the quirk accuracies are 0 when no sink is emitted
        train_ok = (correct == with_sink) & (with_sink > 0)
        val_ok = (val["accuracy_code_quirk"] >= 1.0) & (val["no_sink_rate"] < 1.0)
    else:
        train_ok, val_ok = correct == n_rollouts, val["accuracy"] >= 1.0
    done = train_ok & val_ok & (cfg.early_stop != "off")
    return metrics, done


def _run_epoch(
    seed_epoch: Callable[..., tuple],
    state: tuple,
    epoch: Int[Array, ""],
    data_keys: PRNGKeyArray,
    val_keys: PRNGKeyArray,
    run_axis_name: str | None,
) -> tuple[tuple, Float[Array, "S steps"]]:
    """One epoch of every seed (`seed_epoch` vmapped over the seed axis), folded into the
    chunk's state; seeds that stopped before it keep their state.

    Args:
        seed_epoch: (params, opt_state, stopped, data_key, val_key, epoch) -> (params,
            opt_state, losses (epoch_steps,), metrics, done) of one seed.
        state: (params, opt_state, stop_epoch (S,), history) before the epoch.
        epoch: the epoch (0-based); its history column is epoch + 1.
        data_keys, val_keys: (S,) keys; run_axis_name: the vmap's `spmd_axis_name`.

    Returns:
        ((params, opt_state, stop_epoch, history), losses (S, epoch_steps)): NaN history
        entries and losses for the stopped seeds; stop_epoch = epoch + 1 for seeds done now.
    """
    params, opt_state, stop_epoch, history = state
    stopped = stop_epoch >= 0
    params, opt_state, losses, metrics, done = jax.vmap(
        seed_epoch, in_axes=(0, 0, 0, 0, 0, None), spmd_axis_name=run_axis_name
    )(params, opt_state, stopped, data_keys, val_keys, epoch)
    history = {
        k: v.at[:, epoch + 1].set(
            jnp.where(stopped.reshape(-1, *[1] * (v.ndim - 2)), jnp.nan, metrics[k])
        )
        for k, v in history.items()
    }
    stop_epoch = jnp.where(~stopped & done, epoch + 1, stop_epoch)
    losses = jnp.where(stopped[:, None], jnp.nan, losses)
    return (params, opt_state, stop_epoch, history), losses


def _scan_epochs(
    run_epoch: Callable[[tuple, Int[Array, ""]], tuple],
    state: tuple,
    epoch0: Int[Array, ""],
    cfg: RLConfig,
) -> tuple[tuple, Float[Array, "S steps"]]:
    """`cfg.epochs_per_chunk` epochs from `epoch0` by `lax.scan`; an epoch at or beyond
    `cfg.epochs`, or after every seed stopped, leaves the state unchanged (NaN losses).

    Args:
        run_epoch: (state, epoch) -> (state, losses (S, epoch_steps)).
        state: (params, opt_state, stop_epoch (S,), history).

    Returns:
        (state, losses (S, epochs_per_chunk * epoch_steps)).
    """
    n_seeds = len(cfg.seeds)

    def body(state, j):
        epoch = epoch0 + j
        live = (epoch < cfg.epochs) & jnp.any(state[2] < 0)
        skip_losses = jnp.full((n_seeds, cfg.epoch_steps), jnp.nan, jnp.float32)
        return jax.lax.cond(live, lambda s: run_epoch(s, epoch), lambda s: (s, skip_losses), state)

    state, losses = jax.lax.scan(body, state, jnp.arange(cfg.epochs_per_chunk))
    return state, jnp.moveaxis(losses, 0, 1).reshape(n_seeds, -1)


@functools.lru_cache(maxsize=8)
def chunk_program(
    policy: ChainPolicyConfig,
    train_task: ChainTask,
    val_task: ChainTask,
    cfg: RLConfig,
    placement: Placement = ONE_DEVICE,
):
    """The compiled program that advances every seed by `cfg.epochs_per_chunk` epochs.

    Cached on the (hashable) configs, so repeated or resumed runs do not recompile. With a
    mesh in `placement` the seed axis is sharded over it; call under `placement.active()`.

    Returns `run_chunk(params, opt_state, stop_epoch, history, epoch0, data_keys, val_keys)` ->
    `(params, opt_state, stop_epoch, history, losses (S, epochs_per_chunk * epoch_steps))`:
    leaves carry a leading seed axis S, `stop_epoch` is -1 for running seeds, and epochs at or
    beyond `cfg.epochs` (or once every seed stopped) change nothing and have NaN losses.
    """
    tx = make_optimizer(cfg.optimizer_config())
    horizon = cfg.max_new_tokens or train_task.default_max_new_tokens
    val_horizon = cfg.val_max_new_tokens or horizon

    def seed_epoch(params, opt_state, stopped, data_key, val_key, epoch):
        params, opt_state, stats = _train_epoch(
            params, opt_state, stopped, data_key, epoch, tx, policy, train_task, cfg, horizon
        )
        val = evaluate_greedy(params, val_key, val_task, policy, cfg.val_size, val_horizon)
        metrics, done = _epoch_metrics(params, stats, val, policy, cfg)
        return params, opt_state, stats["loss"], metrics, done

    def run_chunk(params, opt_state, stop_epoch, history, epoch0, data_keys, val_keys):
        def run_epoch(state, epoch):
            axis = placement.run_axis_name
            return _run_epoch(seed_epoch, state, epoch, data_keys, val_keys, axis)

        state, losses = _scan_epochs(
            run_epoch, (params, opt_state, stop_epoch, history), epoch0, cfg
        )
        return (*state, losses)

    return placement.jit(run_chunk)


def rl_fingerprint(
    policy: ChainPolicyConfig, train_task: ChainTask, val_task: ChainTask, cfg: RLConfig
) -> dict[str, Any]:
    """The JSON description of an RL run that guards its checkpoint (every config of it)."""
    fingerprint = {
        "rl": dataclasses.asdict(cfg),
        "policy": dataclasses.asdict(policy),
        "train_task": dataclasses.asdict(train_task),
        "val_task": dataclasses.asdict(val_task),
    }
    return json.loads(json.dumps(fingerprint))


# The entries of the training state (and checkpoint) that live on device, in `chunk_program`'s
# argument order; the state's last entry is "losses" (numpy).
_ON_DEVICE = ("params", "opt_state", "stop_epoch", "history")


def _initial_history(
    first: dict[str, Array], params: Params, policy: ChainPolicyConfig, cfg: RLConfig
) -> dict[str, Array]:
    """`RLResult.history` before training (S seeds, E = cfg.epochs): every entry (S, E + 1)
    NaN float32 but column 0 of the "val_<m>" entries (from `first`, the greedy validation
    metrics at initialisation) and, for the symmetric policy, "theta" (S, E + 1, 3) with
    column 0 from `params`."""
    n_seeds = len(cfg.seeds)
    names = [f"val_{m}" for m in VAL_METRICS] + [f"train_{m}" for m in TRAIN_METRICS]
    history = {k: jnp.full((n_seeds, cfg.epochs + 1), jnp.nan, jnp.float32) for k in names}
    history = {
        k: v.at[:, 0].set(first[k[4:]]) if k.startswith("val_") else v for k, v in history.items()
    }
    if policy.parameterization == "symmetric":  # the theta path, for gradient-flow comparisons
        history["theta"] = jnp.full((n_seeds, cfg.epochs + 1, 3), jnp.nan, jnp.float32)
        history["theta"] = history["theta"].at[:, 0].set(params["theta"])
    return history


def _initial_state(
    policy: ChainPolicyConfig,
    train_task: ChainTask,
    val_task: ChainTask,
    cfg: RLConfig,
    placement: Placement,
    init_keys: PRNGKeyArray,
    val_keys: PRNGKeyArray,
) -> dict[str, Any]:
    """The state of every seed at epoch 0, in the checkpoint's format.

    Args:
        init_keys, val_keys: (S,) parameter-init and validation keys, placed.

    Returns:
        "params", "opt_state": leading (S,) axis; "stop_epoch": (S,) int32 -1; "history":
        `_initial_history`; "losses": (S, epochs * epoch_steps) NaN float32 (numpy).
    """
    n_seeds = len(cfg.seeds)
    tx = make_optimizer(cfg.optimizer_config())
    with placement.active():
        params = placement.put(_init_seeds(init_keys, policy))
        opt_state = placement.put(jax.vmap(tx.init)(params))
    val_horizon = cfg.val_max_new_tokens or cfg.max_new_tokens or train_task.default_max_new_tokens
    first = _evaluate_seeds(params, val_keys, val_task, policy, cfg.val_size, val_horizon)
    history = _initial_history(first, params, policy, cfg)
    stop_epoch = jnp.full((n_seeds,), -1, jnp.int32)
    history, stop_epoch = placement.put((history, stop_epoch))
    losses = np.full((n_seeds, cfg.epochs * cfg.epoch_steps), np.nan, np.float32)
    return {
        "params": params,
        "opt_state": opt_state,
        "stop_epoch": stop_epoch,
        "history": history,
        "losses": losses,
    }


def _resume(
    checkpointer: Checkpointer | None, state: dict[str, Any], placement: Placement
) -> tuple[int, dict[str, Any], int | None]:
    """(epoch, state, resumed_from) from the latest checkpoint, or (0, `state`, None) without.

    Restored arrays are committed to a device, which would change the jit cache key (a
    recompile); through the host they are plain uncommitted arrays again, placed like the
    fresh ones.
    """
    restored = restore_latest(checkpointer, state)
    if restored is None:
        return 0, state, None
    epoch, saved = restored
    saved = to_host(saved)
    on_device = placement.put(jax.tree.map(jnp.asarray, tuple(saved[k] for k in _ON_DEVICE)))
    state = dict(zip(_ON_DEVICE, on_device, strict=True))
    return epoch, {**state, "losses": saved["losses"]}, epoch


def _diverged(
    chunk_losses: np.ndarray, new_stop: np.ndarray, epoch: int, n: int, cfg: RLConfig
) -> np.ndarray:
    """(S, n * epoch_steps) bool: the NaN/inf losses of a chunk of `n` epochs from `epoch` among
    the steps each seed ran (before it stopped, before this chunk or inside it; `new_stop`:
    (S,) stop epochs after the chunk)."""
    ran = np.where(new_stop >= 0, new_stop - epoch, n).clip(0, n) * cfg.epoch_steps
    return ~np.isfinite(chunk_losses) & (np.arange(n * cfg.epoch_steps)[None, :] < ran[:, None])


def _run_chunks(
    advance: Callable[[dict[str, Any], int], tuple],
    state: dict[str, Any],
    epoch: int,
    cfg: RLConfig,
    checkpointer: Checkpointer | None,
    bar: tqdm,
) -> tuple[dict[str, Any], int]:
    """Advance `state` (`_initial_state`'s format) chunk by chunk from `epoch` until
    `cfg.epochs` or until every seed stopped.

    After each chunk: raise `TrainingDiverged` on a NaN/inf loss of a running seed (before
    keeping the chunk), store the chunk's losses, update `bar` (epochs, mean validation accuracy
    at each seed's last epoch, seeds stopped) and save a checkpoint.

    Args:
        advance: (state, epoch) -> `chunk_program`'s (params, opt_state, stop_epoch, history,
            losses (S, epochs_per_chunk * epoch_steps)) after the chunk starting at `epoch`.

    Returns:
        (state, epochs run); the state's "losses" array is filled in place.
    """
    while epoch < cfg.epochs and np.any(to_host(state["stop_epoch"]) < 0):
        new = advance(state, epoch)
        n = min(cfg.epochs_per_chunk, cfg.epochs - epoch)
        chunk_losses = to_host(new[4])[:, : n * cfg.epoch_steps]
        new_stop = to_host(new[2])
        bad = _diverged(chunk_losses, new_stop, epoch, n, cfg)
        raise_if_diverged(bad, epoch * cfg.epoch_steps, cfg.seeds, checkpointer, "epoch")
        losses = state["losses"]
        losses[:, epoch * cfg.epoch_steps : (epoch + n) * cfg.epoch_steps] = chunk_losses
        state = {**dict(zip(_ON_DEVICE, new[:4], strict=True)), "losses": losses}
        if np.all(new_stop >= 0):  # the chunk skipped the epochs after the last stop
            n = int(new_stop.max()) - epoch
        epoch += n
        bar.update(n)
        last = np.where(new_stop >= 0, new_stop, epoch)
        val_accuracy = to_host(state["history"]["val_accuracy"])[np.arange(len(cfg.seeds)), last]
        bar.set_postfix(val_acc=f"{val_accuracy.mean():.3f}", stopped=int(np.sum(new_stop >= 0)))
        if checkpointer is not None:
            checkpointer.save(epoch, state)
    return state, epoch


def train_rl(
    policy: ChainPolicyConfig,
    train_task: ChainTask,
    val_task: ChainTask,
    cfg: RLConfig,
    *,
    checkpoint_dir: str | None = None,
    progress: bool = True,
    description: str = "rl",
) -> RLResult:
    """Train one policy per seed in `cfg.seeds` with REINFORCE, all in one compiled program.

    Args:
        policy: the policy (its n_vertices must match both tasks').
        train_task: prompts and step law of the training rollouts.
        val_task: prompts and step law of the greedy validation set.
        cfg: epochs, batch, optimiser, seeds, early stopping.
        checkpoint_dir: if given, resume from its latest checkpoint and save one after every
            chunk; the configs are the fingerprint that guards resuming.
        progress: show a progress bar (in epochs).
        description: label of the progress bar.

    Raises:
        TrainingDiverged: a running seed's loss became NaN/inf; the last good checkpoint is kept.
    """
    start_time = time.perf_counter()
    _check_setup(policy, train_task, val_task)
    placement = Placement.for_program(len(cfg.seeds), cfg.batch_size // cfg.n_microbatches)
    init_keys, data_keys, val_keys = placement.put(seed_streams(cfg.seeds, 3))
    state = _initial_state(policy, train_task, val_task, cfg, placement, init_keys, val_keys)
    checkpointer = None
    if checkpoint_dir is not None:
        fingerprint = rl_fingerprint(policy, train_task, val_task, cfg)
        checkpointer = Checkpointer(checkpoint_dir, fingerprint)
    epoch, state, resumed_from = _resume(checkpointer, state, placement)
    run_chunk = chunk_program(policy, train_task, val_task, cfg, placement)

    def advance(state, epoch):
        with placement.active():
            carry = (state["params"], state["opt_state"], state["stop_epoch"], state["history"])
            return run_chunk(*carry, epoch, data_keys, val_keys)

    with chunk_progress(cfg.epochs, epoch, description, progress, checkpointer) as bar:
        state, epoch = _run_chunks(advance, state, epoch, cfg, checkpointer, bar)
    return RLResult(
        params=to_default_device(state["params"]),
        history=to_host(state["history"]),
        losses=state["losses"],
        stop_epoch=to_host(state["stop_epoch"]),
        epochs_run=epoch,
        resumed_from=resumed_from,
        wall_time=time.perf_counter() - start_time,
        placement=placement.describe(),
    )
