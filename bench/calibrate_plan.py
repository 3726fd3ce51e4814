"""Time one training step of every planned run on this device kind, for `reproduce --plan`.

    python bench/calibrate_plan.py [--presets paper quick] [--steps 3] [--devices 1]

For every distinct training run of the presets' plans (`Experiment.training_plan`), it trains
a transformer of the run's shape (layers, width, vocabulary, runs x batch x tokens; AdamW, on
uniform random tokens) through `sinkjax.train` for `--steps` steps twice, and times the second
call, whose programs come from JAX's compilation cache: compilation excluded. That is the
cost of a BB, text or char LM step of the shape. Runs of other kinds are timed as the LM step
of the shape they declare: chain-policy runs (rollouts, then a REINFORCE step) get a lower
bound, the D.5 code model (one attention layer, no MLP) an upper one.

The result goes to experiments/calibration/<device kind>.json (one file per kind, e.g.
cpu.json, nvidia-h100-80gb-hbm3.json), keyed by each run's `share_key`. Runs already there are
kept (a calibration cut off mid-way resumes); `--redo` measures everything again.
"""

import argparse
import dataclasses
import datetime
import json
import os
import tempfile

import jax
import jax.numpy as jnp

from experiments.framework.plan import calibration_path
from experiments.framework.planning import PlannedRun
from experiments.registry import get_experiments
from sinkjax.models import TransformerConfig
from sinkjax.optim import OptimizerConfig
from sinkjax.sharding import use_devices
from sinkjax.text.lm import lm_train_task
from sinkjax.train import TrainConfig, train


def seconds_per_step(run: PlannedRun, steps: int) -> float:
    """Seconds of one optimiser step of every run of `run`'s shape (the second of two calls
    of `steps` steps; the first compiles)."""
    model_cfg = TransformerConfig(
        vocab_size=run.vocab_size,
        max_len=run.seq_len,
        d_model=run.d_model,
        n_layers=run.n_layers,
        d_mlp=4 * run.d_model,
    )

    def sample(key):
        tokens = jax.random.randint(key, (run.batch_size, run.seq_len + 1), 0, run.vocab_size)
        return tokens[:, :-1], tokens[:, 1:]

    task, _ = lm_train_task(model_cfg, sample, run.batch_size, lambda graphdef, params: {})
    optimizer = OptimizerConfig(learning_rate=1e-4)
    cfg = TrainConfig(
        steps=steps,
        seeds=tuple(range(run.runs)),
        chunk_size=steps,
        n_log_evals=0,
        n_linear_evals=0,
        checkpoint_every=0,
    )
    train(task, optimizer, cfg, progress=False)  # compiles, and fills the compilation cache
    return train(task, optimizer, cfg, progress=False).wall_time / steps


def planned_runs(presets: list[str]) -> dict[str, PlannedRun]:
    """share_key -> run, over every experiment's plan at each preset."""
    found = {}
    for preset in presets:
        for experiment in get_experiments().values():
            for run in experiment.training_plan(experiment.presets[preset]):
                found.setdefault(run.share_key, run)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["paper", "quick"])
    parser.add_argument("--steps", type=int, default=3, help="steps per timed chunk")
    parser.add_argument("--devices", type=int, default=1, help="devices (1: one-device times)")
    parser.add_argument("--redo", action="store_true", help="measure runs already calibrated")
    args = parser.parse_args()
    use_devices(args.devices)
    jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp())
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    kind = jax.devices()[0].device_kind
    path = calibration_path(kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    known = json.loads(path.read_text()) if path.is_file() and not args.redo else {}
    calibration = {
        "device_kind": kind,
        "jax": jax.__version__,
        "devices": args.devices,
        "how": "bench/calibrate_plan.py: the LM step of each run's shape, compilation excluded",
        "runs": known.get("runs", {}),
    }
    for key, run in sorted(planned_runs(args.presets).items(), key=lambda kv: kv[1].flops_per_step):
        if key in calibration["runs"]:
            continue
        with jax.default_matmul_precision("float32"):
            seconds = seconds_per_step(run, args.steps)
        calibration["runs"][key] = {
            "seconds_per_step": seconds,
            "flops_per_step": run.flops_per_step,
            "run": dataclasses.asdict(run) | {"settings": None},
            "measured": datetime.date.today().isoformat(),
        }
        print(
            f"{run.kind:15s} {run.label:20s} {run.steps:7d} steps  {seconds:.4g} s/step", flush=True
        )
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(calibration, indent=1))
        os.replace(tmp, path)  # after every run: an interrupted calibration resumes
    print(f"wrote {path}")


if __name__ == "__main__":
    jnp.zeros(())  # start the backend before timing
    main()
