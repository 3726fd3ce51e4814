"""Rollouts per second of the chain policy: the O(1) scan sampler against full-prefix recompute.

    python bench/bench_rollouts.py [--batch 1024] [--repeats 5] [--no-official]

Task: n = 12, two chains, N = 24 vertex labels (prompt: 22 edge tokens and the start), horizon
H = n + 1 = 13, so the padded buffer has T = 36 tokens. For both attentions and three modes
(sampling, greedy decoding, and the REINFORCE gradient of one micro-batch: sampling, then the
gradient of the surrogate), it times, in one process:
  * O(1): `rollouts.rollout` (per-prompt query tables and vertex counts, O(N^2) per step);
  * naive: `rollouts.rollout_naive`, a full causal forward over the padded buffer at every
    step with an explicit (T, T) score matrix (O(T^2 N) per step), log-probs taken in the loop;
  * official ops (unless --no-official, sampling only): the same loop with the official
    forward's operations: one-hot tokens, prefix counts (T, C) times the gathered A rows for
    linear, one-hot matmuls for the (T, T) scores and the attention output for softmax.
Every program is compiled and run once before timing; a time is the best of `--repeats` runs,
O(1) and naive interleaved so they see the same load (official ops: best of 2, on its own).
Also prints the compile time of the O(1) gradient program at H and 2H (one compiled scan: no
per-step compile) and XLA's temporary memory of the gradient programs at the paper's
micro-batch and (O(1)) full batch sizes.
"""

import argparse
import platform
import time

import jax
import jax.numpy as jnp

from sinkjax.cot_rl.chains import ChainTask, sample_chains
from sinkjax.cot_rl.policy import ChainPolicyConfig, init_policy_params
from sinkjax.cot_rl.rollouts import rollout, rollout_naive

CHAIN = 12
TEMPERATURE = {"linear": 1 / 5, "softmax": 1 / 20}  # the code's train-on-D values
# The paper's batches and their sub-batches (spec §3.6): micro-batches of 2,500 and 1,666.
PAPER_BATCH = {"linear": (200_000, 80), "softmax": (50_000, 30)}


def official_logits(weights, context, cfg):
    """(T, N) logits of one buffer, computed with the official forward's operations."""
    n, c = cfg.n_vertices, cfg.n_context
    x = jax.nn.one_hot(context, c)  # (T, C) one-hot context tokens
    is_vertex = context < n
    queries = jnp.where(is_vertex[:, None], weights.A[jnp.minimum(context, n - 1)], 0.0)
    if cfg.attention == "linear":
        attended = jnp.cumsum(x, axis=0) * queries  # prefix counts times the gathered A rows
    else:
        scores = queries @ x.T  # (T, T)
        scores = jnp.where(jnp.tril(jnp.ones(scores.shape, bool)), scores, -1e9)
        attention = jax.nn.softmax(scores, axis=-1)
        attended = attention @ x  # (T, C)
    return attended @ weights.V / cfg.temperature


def rollout_official(params, batch, cfg, max_new_tokens, *, key=None):
    """`rollout_naive` with `official_logits` as the forward."""
    return rollout_naive(params, batch, cfg, max_new_tokens, key=key, forward=official_logits)


def program(sampler, cfg, max_new_tokens, mode):
    """A jitted (params, batch, key) -> outputs for one sampler and mode."""
    if mode == "greedy":
        return jax.jit(lambda params, batch, key: sampler(params, batch, cfg, max_new_tokens))
    if mode == "sample":
        return jax.jit(
            lambda params, batch, key: sampler(params, batch, cfg, max_new_tokens, key=key)
        )

    def surrogate(params, batch, key):  # REINFORCE with the batch-mean baseline (sinkjax.cot_rl.rl)
        result = sampler(params, batch, cfg, max_new_tokens, key=key)
        advantage = jax.lax.stop_gradient(result.reward - jnp.mean(result.reward))
        return -jnp.mean(jnp.sum(result.log_probs, axis=1) * advantage)

    return jax.jit(jax.value_and_grad(surrogate))


def best_times(programs, args, repeats):
    """Best wall time of each program over `repeats` interleaved runs (after one warm-up)."""
    for f in programs:
        jax.block_until_ready(f(*args))
    best = [float("inf")] * len(programs)
    for _ in range(repeats):
        for i, f in enumerate(programs):
            t0 = time.perf_counter()
            jax.block_until_ready(f(*args))
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def compile_seconds(fn, *args):
    t0 = time.perf_counter()
    fn.lower(*args).compile()
    return time.perf_counter() - t0


def temp_mib(sampler, cfg, max_new_tokens, task, batch_size, params, key) -> float:
    """XLA's temporary memory (MiB) of the gradient program at `batch_size` (compiled only)."""
    batch = jax.eval_shape(lambda: sample_chains(jax.random.key(0), task, batch_size))
    compiled = program(sampler, cfg, max_new_tokens, "gradient").lower(params, batch, key)
    return compiled.compile().memory_analysis().temp_size_in_bytes / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-official", action="store_true", help="skip the official-ops rows")
    args = parser.parse_args()
    task = ChainTask.uniform(CHAIN)
    n_vertices, horizon, batch_size = task.n_vertices, task.default_max_new_tokens, args.batch
    print(
        f"device: {jax.devices()[0].device_kind} ({platform.processor() or platform.machine()}), "
        f"jax {jax.__version__}; n={CHAIN}, N={n_vertices}, L={task.prompt_length}, H={horizon}, "
        f"T={task.prompt_length + horizon}, B={batch_size}; best of {args.repeats}"
    )
    batch = sample_chains(jax.random.key(0), task, batch_size)
    key = jax.random.key(1)
    header = f"{'attention':9s} {'mode':8s} {'O(1) /s':>10s} {'naive /s':>10s} {'ratio':>7s}"
    if not args.no_official:
        header += f" {'official ops /s':>16s} {'ratio':>7s}"
    print(header)
    for attention in ("linear", "softmax"):
        cfg = ChainPolicyConfig(n_vertices, attention, TEMPERATURE[attention], init_std=1.0)
        params = init_policy_params(jax.random.key(2), cfg)  # scale 1: diverse rollouts
        for mode in ("sample", "greedy", "gradient"):
            programs = [program(s, cfg, horizon, mode) for s in (rollout, rollout_naive)]
            times = best_times(programs, (params, batch, key), args.repeats)
            rates = [batch_size / t for t in times]
            line = f"{attention:9s} {mode:8s} {rates[0]:10.0f} {rates[1]:10.0f} "
            line += f"{rates[0] / rates[1]:6.1f}x"
            if mode == "sample" and not args.no_official:
                # Timed on its own: its (B, T, C) buffers would disturb the interleaved runs.
                official = program(rollout_official, cfg, horizon, mode)
                rate = batch_size / best_times([official], (params, batch, key), 2)[0]
                line += f" {rate:16.0f} {rates[0] / rate:6.0f}x"
            print(line, flush=True)

    for attention in ("linear", "softmax"):
        cfg = ChainPolicyConfig(n_vertices, attention, TEMPERATURE[attention])
        params = init_policy_params(jax.random.key(2), cfg)
        seconds = [
            compile_seconds(program(rollout, cfg, h, "gradient"), params, batch, key)
            for h in (horizon, 2 * horizon)
        ]
        full, n_micro = PAPER_BATCH[attention]
        micro = full // n_micro
        memory = {
            f"O(1) B={micro}": temp_mib(rollout, cfg, horizon, task, micro, params, key),
            f"O(1) B={full}": temp_mib(rollout, cfg, horizon, task, full, params, key),
            f"naive B={micro}": temp_mib(rollout_naive, cfg, horizon, task, micro, params, key),
        }
        print(
            f"{attention}: O(1) gradient program compiles in {seconds[0]:.1f} s at H={horizon}, "
            f"{seconds[1]:.1f} s at H={2 * horizon}; XLA temp memory of the gradient program: "
            + ", ".join(f"{k} {v:.0f} MiB" for k, v in memory.items())
        )


if __name__ == "__main__":
    main()
