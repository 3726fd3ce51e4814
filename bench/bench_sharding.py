"""Sharded training speed: forced CPU devices, one device before/after, and a GPU's step.

    python bench/bench_sharding.py sweep [--seeds 4] [--steps 20]
        the quick 1-layer BB step, 4 seeds under vmap, on 1, 2 and 4 forced CPU devices
        (`--xla_force_host_platform_device_count`); ratios to 1 device, one run
    python bench/bench_sharding.py one-device --before REV [--repeats 3]
        the same step on one device with this tree and with git revision REV (e.g. the commit
        before sharding), interleaved in one run: the one-device path must not be slower
    python bench/bench_sharding.py gpu
        on a GPU: ms per step of the 1-layer `paper` step (float32), tokens/s, the fraction of
        the device's float32 peak (the step's FLOPs, counted from the shapes, / time /
        `--peak-tflops`), and
        8 vmapped seeds vs 1

Each measurement runs in a fresh subprocess (the device count is fixed when JAX starts) and
times a second, identical training call whose programs come from JAX's compilation cache, so
compilation is excluded (the set-up and one evaluation are included). Forced CPU devices share the
machine's cores: on a 2-core CPU the sweep measures sharding's overhead, not a speed-up.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Runs inside the subprocess: only APIs older than sharding, so `--before` can time old code.
WORKER = r"""
import json, sys, tempfile
import jax
from sinkjax.active_dormant.bb_training import bb_train_task, make_eval_batch
from sinkjax.models import TransformerConfig
from sinkjax.optim import OptimizerConfig
from sinkjax.active_dormant.bb import default_bb_task
from sinkjax.train import TrainConfig, train

# The second, identical call loads its programs from this cache: it times the steps alone.
jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp())
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
d, n, b, seeds, steps = map(int, sys.argv[1:6])
task = default_bb_task()
model = TransformerConfig(vocab_size=task.vocab_size, max_len=n, d_model=d, n_layers=1, d_mlp=4 * d)
train_task, _ = bb_train_task(model, task, b, n, make_eval_batch(task, 8, n))
cfg = TrainConfig(steps=steps, seeds=tuple(range(seeds)), chunk_size=steps,
                  n_log_evals=0, n_linear_evals=0, checkpoint_every=0)
with jax.default_matmul_precision("float32"):
    for _ in range(2):
        result = train(train_task, OptimizerConfig(learning_rate=1e-3), cfg, progress=False)
print(json.dumps({"seconds_per_step": result.wall_time / steps,
                  "placement": getattr(result, "placement", None),
                  "device_kind": jax.devices()[0].device_kind}))
"""
QUICK = (128, 128, 32)  # d_model, seq_len, batch of the quick 1-layer run
PAPER = (256, 256, 512)


def measure(shape, seeds, steps, devices=1, pythonpath=None) -> dict:
    """Seconds per step of `seeds` vmapped runs of `shape` in a fresh process."""
    env = dict(os.environ)
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["PYTHONPATH"] = str(pythonpath or ROOT)
    args = [sys.executable, "-c", WORKER, *map(str, (*shape, seeds, steps))]
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def sweep(args) -> None:
    base = None
    for devices in (1, 2, 4):
        found = measure(QUICK, args.seeds, args.steps, devices)
        base = base or found["seconds_per_step"]
        print(
            f"{devices} device(s): {1e3 * found['seconds_per_step']:.1f} ms/step, "
            f"x{base / found['seconds_per_step']:.2f} vs 1, mesh {found['placement']['mesh']}"
        )


def one_device(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["git", "worktree", "add", "-f", tmp, args.before],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        try:
            times = {"before": [], "after": []}
            for _ in range(args.repeats):  # interleaved: drifts of a busy machine hit both
                times["before"].append(measure(QUICK, 1, args.steps, pythonpath=tmp))
                times["after"].append(measure(QUICK, 1, args.steps))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", tmp], cwd=ROOT, check=True)
    best = {k: min(t["seconds_per_step"] for t in v) for k, v in times.items()}
    print(
        f"one device, quick step: before ({args.before}) {1e3 * best['before']:.1f} ms, "
        f"after {1e3 * best['after']:.1f} ms, after/before {best['after'] / best['before']:.3f} "
        f"(best of {args.repeats})"
    )


def gpu(args) -> None:
    one = measure(PAPER, 1, args.steps)
    eight = measure(PAPER, 8, args.steps)
    tokens = PAPER[1] * PAPER[2]
    flops = FLOPS_PER_TOKEN_1L * tokens
    seconds = one["seconds_per_step"]
    print(f"{one['device_kind']}: paper 1-layer step {1e3 * seconds:.1f} ms (float32)")
    print(
        f"  {tokens / seconds:,.0f} tokens/s; {flops / seconds / 1e12:.1f} TFLOP/s, "
        f"{flops / seconds / 1e12 / args.peak_tflops:.1%} of {args.peak_tflops} TFLOP/s"
    )
    print(
        f"  8 seeds: {1e3 * eight['seconds_per_step']:.1f} ms/step, "
        f"{8 * seconds / eight['seconds_per_step']:.2f}x the throughput of 1 seed"
    )


# Forward + backward FLOPs per token of the 1-layer paper model (d = 256, N = 256, V = 67):
# 6 x (12 d^2 + 2 V d) for the weights plus 12 N d for attention's scores and mixing.
FLOPS_PER_TOKEN_1L = 6 * (12 * 256**2 + 2 * 67 * 256) + 12 * 256 * 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("sweep", "one-device", "gpu"))
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--before", default="HEAD")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, default=67.0, help="H100 SXM float32: 67")
    args = parser.parse_args()
    {"sweep": sweep, "one-device": one_device, "gpu": gpu}[args.mode](args)


if __name__ == "__main__":
    main()
