"""Shared set-up of the chain RL experiments (spec §1.3, §2.1, §3.6): settings, training, curves.

Every run trains the code's one-layer policy (A and V both trained from N(0, 1e-16), no self-mask)
with REINFORCE, a batch-mean baseline and Adam (`sinkjax.cot_rl.rl.train_rl`), one run per seed,
vmapped. A run setting fixes how one attention kind is trained (the code's values differ between
linear and softmax); the experiment configs subclass `ChainExperimentConfig`. Every field, those
of the run settings too (`--linear.steps`), is a command-line flag.
"""

import dataclasses
from typing import Any, Literal

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from experiments.framework.experiment import RunContext
from experiments.framework.planning import PlannedRun
from sinkjax.cot_rl.chains import ChainTask
from sinkjax.cot_rl.policy import ChainPolicyConfig
from sinkjax.cot_rl.rl import RLConfig, RLResult, evaluate_greedy, rl_fingerprint, train_rl

# PRNG stream of the fresh test prompts: `sinkjax.cot_rl.rl` uses fold_in(key(seed), 0..2) for the
# initialisation, the training data and the validation set.
TEST_STREAM = 3
# What the chain RL runs train: the run store's folder kind and the plan's.
CHAIN_KIND = "chain-policy"


@dataclasses.dataclass(frozen=True)
class ChainRunSetting:
    """How one attention kind is trained (defaults: the code's linear runs, spec §3.6)."""

    # "linear" or "softmax" attention.
    attention: Literal["linear", "softmax"] = "linear"
    # tau, the code's `tmp`: logits are divided by it.
    temperature: float = 0.2
    # Rollouts per optimiser step, split into this many gradient-accumulation micro-batches.
    batch_size: int = 200_000
    n_microbatches: int = 80
    # Epochs at most, of `epoch_steps` optimiser steps each (the code: one pass over its
    # pre-generated train set); validation, early stopping and the curves are per epoch.
    epochs: int = 200
    epoch_steps: int = 10
    # Epochs per compiled call; the run folder's checkpoint is saved after each.
    epochs_per_chunk: int = 10

    def __post_init__(self):
        self.policy(n_vertices=2)  # validates the attention kind and the temperature
        self.rl_config(learning_rate=1e-2, seeds=(0,), val_size=1)  # validates the rest

    def policy(self, n_vertices: int) -> ChainPolicyConfig:
        """The code's policy over `n_vertices` labels (A, V trained, init std 1e-8, no mask)."""
        return ChainPolicyConfig(n_vertices, self.attention, self.temperature)

    def rl_config(
        self, learning_rate: float, seeds: tuple[int, ...], val_size: int, **kwargs
    ) -> RLConfig:
        """The `RLConfig` of this setting; `kwargs` are further `RLConfig` fields."""
        return RLConfig(
            epochs=self.epochs,
            epoch_steps=self.epoch_steps,
            batch_size=self.batch_size,
            n_microbatches=self.n_microbatches,
            learning_rate=learning_rate,
            seeds=seeds,
            val_size=val_size,
            epochs_per_chunk=min(self.epochs_per_chunk, self.epochs),
            **kwargs,
        )


# The code's settings (spec §3.6): linear batch 200k in 80 sub-batches, 200 epochs of 10 steps,
# tau = 1/5; softmax 50k in 30 sub-batches, 300 epochs of 20 steps, tau = 1/20. 30 does not
# divide 50,000, so the softmax batch is 30 sub-batches of 1667 (50,010 rollouts).
PAPER_LINEAR = ChainRunSetting("linear", 1 / 5, 200_000, 80, 200, 10)
PAPER_SOFTMAX = ChainRunSetting("softmax", 1 / 20, 50_010, 30, 300, 20)


# The greedy test rates the claims read: claim-id suffix -> `rollout_metrics` key.
TEST_RATES = {"accuracy": "accuracy", "traverse": "chain_traverse"}


def reported_bound(mean: float, std: float = 0.0) -> float:
    """The bound that reads a rate the code reports over its 3 seeds, mean +- std (fractions),
    as a claim: at least mean - 2 std (a replicate inside the code's own seed spread passes),
    and at most 0.99, a printed 100% with no spread read as >= 99% (spec §5.1-5.2)."""
    return min(0.99, round(mean - 2 * std, 6))


@dataclasses.dataclass(frozen=True)
class ChainExperimentConfig:
    """What every chain RL experiment shares (defaults: the code's train-on-D runs)."""

    # Adam learning rate (no weight decay, no clipping).
    learning_rate: float = 1e-2
    # Seeds base_seed, base_seed + 1, ... trained together (the code: 42, 43, 44).
    n_seeds: int = 3
    base_seed: int = 42
    # Greedy validation prompts per seed, evaluated after every epoch.
    val_size: int = 1000
    # The attention kinds that are trained and how (None: not trained).
    linear: ChainRunSetting | None = PAPER_LINEAR
    softmax: ChainRunSetting | None = PAPER_SOFTMAX

    def __post_init__(self):
        for name in ("n_seeds", "val_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        for name in ("linear", "softmax"):
            setting = getattr(self, name)
            if setting is not None and setting.attention != name:
                raise ValueError(f"the {name} setting has attention {setting.attention!r}")
        if not self.settings:
            raise ValueError("train at least one attention kind: give linear or softmax")

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(range(self.base_seed, self.base_seed + self.n_seeds))

    @property
    def settings(self) -> tuple[ChainRunSetting, ...]:
        """The run settings of the attention kinds that are trained, linear first."""
        return tuple(s for s in (self.linear, self.softmax) if s is not None)


@dataclasses.dataclass
class TrainedChain:
    """A finished run: one policy per seed (leading axis S of `result`'s arrays)."""

    policy: ChainPolicyConfig
    seeds: tuple[int, ...]
    result: RLResult

    def final(self, name: str) -> np.ndarray:
        """(S,) the history metric `name` at each seed's last epoch (its stopping epoch)."""
        last = np.where(self.result.stop_epoch >= 0, self.result.stop_epoch, self.result.epochs_run)
        return self.result.history[name][np.arange(len(self.seeds)), last]

    def summary(self) -> dict[str, Any]:
        """The record's per-run fields: final validation metrics per seed, stopping epochs,
        epochs run and training wall time."""
        return {
            "final_val_accuracy": self.final("val_accuracy").tolist(),
            "final_val_chain_traverse": self.final("val_chain_traverse").tolist(),
            "stop_epoch": self.result.stop_epoch.tolist(),
            "epochs_run": self.result.epochs_run,
            "train_wall_time_s": self.result.wall_time,
        }

    def test(
        self, task: ChainTask, size: int, max_new_tokens: int, stream: int = 0
    ) -> dict[str, np.ndarray]:
        """Greedy metrics (`rollout_metrics`, each (S,)) on `size` fresh prompts of `task`.

        Seed s draws its prompts from fold_in(fold_in(key(s), TEST_STREAM), stream), unseen in
        training and validation; give every test task of a run its own `stream`.
        """
        keys = jnp.stack(
            [
                jax.random.fold_in(jax.random.fold_in(jax.random.key(s), TEST_STREAM), stream)
                for s in self.seeds
            ]
        )
        metrics = _test_seeds(self.result.params, keys, task, self.policy, size, max_new_tokens)
        return {k: np.asarray(v) for k, v in metrics.items()}


_test_seeds = jax.jit(
    jax.vmap(evaluate_greedy, (0, 0, None, None, None, None)), static_argnums=(2, 3, 4, 5)
)


def chain_configs(
    cfg: ChainExperimentConfig, setting: ChainRunSetting, train_task: ChainTask, **rl_kwargs
) -> tuple[ChainPolicyConfig, RLConfig]:
    """The policy and `RLConfig` that `train_chain` trains with (`rl_kwargs`: further
    `RLConfig` fields)."""
    policy = setting.policy(train_task.n_vertices)
    return policy, setting.rl_config(cfg.learning_rate, cfg.seeds, cfg.val_size, **rl_kwargs)


def train_chain(
    cfg: ChainExperimentConfig,
    setting: ChainRunSetting,
    train_task: ChainTask,
    val_task: ChainTask,
    ctx: RunContext,
    label: str,
    **rl_kwargs,
) -> TrainedChain:
    """Train every seed of `cfg` with `setting`, resuming from its checkpoint (checkpoint/<label>
    in the run folder, or the context's run store); a finished run is loaded, not retrained.
    `rl_kwargs` are further `RLConfig` fields (horizons, early stopping)."""
    policy, rl_cfg = chain_configs(cfg, setting, train_task, **rl_kwargs)
    run_key = rl_fingerprint(policy, train_task, val_task, rl_cfg)
    with ctx.training_run(label, CHAIN_KIND, run_key) as checkpoint_dir:
        result = train_rl(
            policy,
            train_task,
            val_task,
            rl_cfg,
            checkpoint_dir=str(checkpoint_dir),
            progress=ctx.progress,
            description=label,
        )
    ctx.placements[label] = result.placement
    return TrainedChain(policy, cfg.seeds, result)


def rl_planned_run(
    label: str,
    policy: ChainPolicyConfig,
    train_task: ChainTask,
    val_task: ChainTask,
    rl_cfg: RLConfig,
) -> PlannedRun:
    """An RL run of `policy` as the plan sees it: at most epochs x epoch_steps steps of
    `batch_size` rollouts of prompt + horizon tokens, one 1-layer policy per seed. The O(1)
    decoder costs about one N x N product per token, so width and output classes are the N
    vertex labels. Its settings are the run's `rl_fingerprint` (the run store's key)."""
    horizon = rl_cfg.max_new_tokens or train_task.default_max_new_tokens
    return PlannedRun(
        label=label,
        kind=CHAIN_KIND,
        steps=rl_cfg.epochs * rl_cfg.epoch_steps,
        runs=len(rl_cfg.seeds),
        batch_size=rl_cfg.batch_size,
        seq_len=train_task.prompt_length + horizon,
        n_layers=1,
        d_model=policy.n_vertices,
        vocab_size=policy.n_vertices,
        settings=PlannedRun.settings_text(rl_fingerprint(policy, train_task, val_task, rl_cfg)),
    )


@dataclasses.dataclass(frozen=True)
class ChainRun:
    """One `train_chain` call of an experiment: its label, setting, tasks and further
    `RLConfig` fields; `train` runs it and `planned` declares it, from the same arguments."""

    label: str
    setting: ChainRunSetting
    train_task: ChainTask
    val_task: ChainTask
    rl_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def train(self, cfg: ChainExperimentConfig, ctx: RunContext) -> TrainedChain:
        """`train_chain` with this run's arguments."""
        return train_chain(
            cfg, self.setting, self.train_task, self.val_task, ctx, self.label, **self.rl_kwargs
        )

    def planned(self, cfg: ChainExperimentConfig) -> PlannedRun:
        """The run `train` opens, as the plan sees it."""
        policy, rl_cfg = chain_configs(cfg, self.setting, self.train_task, **self.rl_kwargs)
        return rl_planned_run(self.label, policy, self.train_task, self.val_task, rl_cfg)


@dataclasses.dataclass(frozen=True)
class CurvePanel:
    """One column of `curve_grid`: a history of `sinkjax.cot_rl.rl.train_rl`, scaled for display."""

    metric: str
    title: str
    ylabel: str = "%"
    scale: float = 100.0


def curve_grid(
    settings: tuple[ChainRunSetting, ...],
    runs: dict[tuple[str, Any], TrainedChain],
    labels: dict[Any, str],
    panels: tuple[CurvePanel, ...],
    colormap: str,
) -> tuple[plt.Figure, np.ndarray]:
    """Per-epoch curves: a row per attention setting, a column per panel, and in every panel
    one colour per run key of `labels` (the run is `runs[attention, key]`), a line per seed.

    Returns the figure and its (rows, columns) axes, for reference lines.
    """
    fig, axes = plt.subplots(
        len(settings),
        len(panels),
        figsize=(5.3 * len(panels), 4 * len(settings)),
        squeeze=False,
        layout="constrained",
    )
    colors = plt.get_cmap(colormap)
    for row, setting in zip(axes, settings, strict=True):
        for i, (key, label) in enumerate(labels.items()):
            history = runs[setting.attention, key].result.history
            color = colors(i / max(len(labels) - 1, 1) * 0.85)
            for ax, panel in zip(row, panels, strict=True):
                plot_seeds(ax, history[panel.metric], label, color, scale=panel.scale)
        name = f"{setting.attention}, tau = {setting.temperature:g}"
        for ax, panel in zip(row, panels, strict=True):
            style_panel(ax, f"{name}: {panel.title}", panel.ylabel)
    return fig, axes


def plot_seeds(ax: plt.Axes, curves: np.ndarray, label: str, color, *, scale: float = 1.0):
    """One thin line per seed of `curves` (S, E + 1) against epoch 0..E, labelled once.

    A curve ends where its seed stopped early (its later entries are NaN)."""
    epochs = np.arange(curves.shape[1])
    for i, curve in enumerate(curves):
        ax.plot(epochs, scale * curve, color=color, lw=1.2, label=label if i == 0 else None)


def style_panel(ax: plt.Axes, title: str, ylabel: str):
    """Epoch x-axis, grid, legend and title of a curves panel."""
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
