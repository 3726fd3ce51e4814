"""Speed of the 1-layer Bigram-Backcopy train step on this machine, measured in one run.

    python bench/bench_train.py [--quick]

Prints: the measured float32 matmul peak (jitted, best of several shapes), ms per train step and
tokens/s at d=256, N=256 for B=32 and B=128, achieved GFLOP/s and its fraction of the measured
peak, the jit compile time, and the cost of 8 vmapped seeds against 1 seed. The step is the real
training program (`sinkjax.train.chunk_program`): on-device BB sampling, forward, backward and
AdamW inside a `lax.scan`, with no evaluation in the timed chunks.
"""

import argparse
import platform
import time

import jax
import jax.numpy as jnp
from program_timer import time_training_program

from sinkjax.active_dormant.bb import default_bb_task
from sinkjax.active_dormant.bb_training import bb_train_task, make_eval_batch
from sinkjax.models import TransformerConfig
from sinkjax.optim import OptimizerConfig

D_MODEL, SEQ_LEN, VOCAB = 256, 256, 67
# The lead's reference count for B=32 (forward + backward + AdamW), in FLOP.
REFERENCE_GFLOP_B32 = 47.0


def train_step_flops(batch: int, d: int = D_MODEL, n: int = SEQ_LEN, vocab: int = VOCAB) -> float:
    """Matmul FLOPs of one step: 3x (forward + 2x backward) the forward multiply-adds."""
    per_token = 4 * d * d + 2 * d * 4 * d + d * vocab  # QKV, O, MLP up/down, head (MACs)
    attention = 2 * n * d  # q.k and A.v per query token (MACs, causal mask not exploited)
    return 3 * 2 * batch * n * (per_token + attention)


def matmul_peak(repeats: int = 5) -> float:
    """Best jitted float32 matmul throughput (GFLOP/s) over square and model-like shapes."""
    best = 0.0
    for m, k, n in [(2048, 2048, 2048), (3072, 3072, 3072), (8192, 1024, 256), (8192, 256, 768)]:
        a = jnp.ones((m, k), jnp.float32)
        b = jnp.ones((k, n), jnp.float32)
        f = jax.jit(jnp.matmul)
        f(a, b).block_until_ready()
        for _ in range(repeats):
            t0 = time.perf_counter()
            f(a, b).block_until_ready()
            best = max(best, 2 * m * k * n / (time.perf_counter() - t0) / 1e9)
    return best


def step_timer(batch: int, n_seeds: int, chunk: int):
    """(compile seconds, seconds per step) of the training program for `n_seeds` seeds."""
    task = default_bb_task()
    model_cfg = TransformerConfig()
    eval_batch = make_eval_batch(task, 2, SEQ_LEN)
    train_task, _ = bb_train_task(model_cfg, task, batch, SEQ_LEN, eval_batch)
    return time_training_program(train_task, OptimizerConfig(), n_seeds, chunk)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps per timing")
    args = parser.parse_args()
    chunk = 3 if args.quick else 8
    print(
        f"device: {jax.devices()[0].device_kind} ({platform.processor() or platform.machine()}), "
        f"jax {jax.__version__}"
    )
    peak = matmul_peak()
    print(f"measured float32 matmul peak: {peak:.0f} GFLOP/s")

    results = {}
    for batch in (32, 128):
        compile_s, step_s = step_timer(batch, 1, chunk)
        flops = train_step_flops(batch)
        results[batch] = step_s
        print(
            f"B={batch:4d} N={SEQ_LEN} d={D_MODEL}: {step_s * 1e3:7.1f} ms/step, "
            f"{batch * SEQ_LEN / step_s:9.0f} tokens/s, {flops / step_s / 1e9:6.1f} GFLOP/s "
            f"({flops / 1e9:.1f} GFLOP/step counted) = {flops / step_s / 1e9 / peak:.0%} of the "
            f"measured peak; compile {compile_s:.1f} s"
        )
    reference = REFERENCE_GFLOP_B32 / results[32]
    print(
        f"with the reference count of {REFERENCE_GFLOP_B32:.0f} GFLOP/step at B=32: "
        f"{reference:.1f} GFLOP/s = {reference / peak:.0%} of the measured peak; "
        f"floor at that peak {REFERENCE_GFLOP_B32 / peak * 1e3:.0f} ms"
    )
    _, one = step_timer(32, 1, chunk)
    _, eight = step_timer(32, 8, chunk)
    print(
        f"8 vmapped seeds vs 1 seed (B=32): {eight / one:.2f}x the time for 8x the work "
        f"({one * 1e3:.0f} ms vs {eight * 1e3:.0f} ms per step)"
    )


if __name__ == "__main__":
    main()
