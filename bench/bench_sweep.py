"""Speed of the residual-peaks architecture sweep: one vmapped program against one run per
architecture, measured in one run.

    python bench/bench_sweep.py [--d-model 64] [--seq-len 64] [--batch 16] [--seeds 1]

The sweep trains the five 3-block architectures of spec B.3. "Vmapped" is what the
`residual-peaks` experiment runs: every architecture is the full 3-block model under fixed
sub-layer gates, so all of them (times the seeds) advance in one compiled `lax.scan`.
"Sequential" builds each architecture without its removed sub-layers (less arithmetic per
step) and trains them one after another, each with its own compiled program. Both use the real
training program (`sinkjax.train.chunk_program`: on-device BB sampling, forward, backward,
AdamW) with no evaluation in the timed chunks. Prints ms per step of each, compile times, and
the speed-up of the vmapped sweep.
"""

import argparse
import dataclasses
import platform

import jax
import jax.numpy as jnp
from program_timer import time_training_program

from experiments.active_dormant.residual_peaks import ARCHITECTURES
from sinkjax.active_dormant.bb import default_bb_task
from sinkjax.active_dormant.bb_training import bb_train_task, make_eval_batch
from sinkjax.interventions import Interventions
from sinkjax.models import TransformerConfig
from sinkjax.optim import OptimizerConfig


def program_timer(model_cfg: TransformerConfig, gates, n_runs: int, args, chunk: int):
    """(compile seconds, seconds per step) of the training program for `n_runs` runs."""
    task = default_bb_task()
    eval_batch = make_eval_batch(task, 2, args.seq_len)
    train_task, _ = bb_train_task(
        model_cfg, task, args.batch, args.seq_len, eval_batch, architectures=gates
    )
    return time_training_program(train_task, OptimizerConfig(learning_rate=3e-3), n_runs, chunk)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=50)
    args = parser.parse_args()
    full = TransformerConfig(
        max_len=args.seq_len, d_model=args.d_model, d_mlp=4 * args.d_model, n_layers=3
    )
    print(f"jax {jax.__version__} on {jax.devices()[0].platform} ({platform.processor()})")
    print(
        f"sweep: {len(ARCHITECTURES)} architectures x {args.seeds} seed(s), d={args.d_model}, "
        f"N={args.seq_len}, B={args.batch}, {args.chunk} steps per timed chunk"
    )

    per_arch = [Interventions.architecture(3, 1, *removed) for removed in ARCHITECTURES.values()]
    per_run = [g for g in per_arch for _ in range(args.seeds)]
    gates = jax.tree.map(lambda *leaves: jnp.stack(leaves), *per_run)
    vmapped_compile, vmapped_step = program_timer(full, gates, len(per_run), args, args.chunk)

    sequential_compile, sequential_step = 0.0, 0.0
    for name, (no_attn, no_ffn) in ARCHITECTURES.items():
        cfg = dataclasses.replace(full, no_attn=no_attn, no_ffn=no_ffn)
        compile_s, step_s = program_timer(cfg, None, args.seeds, args, args.chunk)
        print(f"  {name:12s} alone: {1e3 * step_s:7.2f} ms/step, compile {compile_s:.1f} s")
        sequential_compile += compile_s
        sequential_step += step_s

    for label, step_s, compile_s in (
        ("sequential", sequential_step, sequential_compile),
        ("vmapped", vmapped_step, vmapped_compile),
    ):
        print(f"{label:10s}: {1e3 * step_s:7.2f} ms per sweep step, compile {compile_s:.1f} s")
    print(f"speed-up of the vmapped sweep: {sequential_step / vmapped_step:.2f}x per step")
    for steps in (3000, 10_000):
        seq = sequential_compile + steps * sequential_step
        vm = vmapped_compile + steps * vmapped_step
        print(f"  {steps} steps incl. compile: sequential {seq:.0f} s, vmapped {vm:.0f} s", end="")
        print(f" ({seq / vm:.2f}x)")


if __name__ == "__main__":
    main()
