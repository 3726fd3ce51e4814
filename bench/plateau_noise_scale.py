"""Gradient noise of REINFORCE where the chain runs stall: why CPU batches stay on the plateau.

    python bench/plateau_noise_scale.py [--chain-length 8] [--attention linear] [--epochs 15]
                                        [--steps S ...]

Trains the code's one-layer policy on "train on D" (spec §1.3; `--steps` restricts the start to
those step counts, e.g. `--chain-length 5 --steps 2 3 4` is vanish_grad's k = 3) with the
`quick` batch of the chain experiments (Adam 1e-2, 2,000 rollouts per step), where n = 8 and 12
(and k = 3) end on the "jump to a terminal" plateau, then measures the REINFORCE gradient at the
final parameters on the training law:

- |G|^2, the squared norm of the expected gradient, estimated without bias as the dot product
  of two independent estimates from `--reference-batch` rollouts each (it can come out
  negative when noise dominates even those);
- tr(Sigma_b), the total variance of one `--batch`-rollout gradient, over `--draws` draws;
- the simple gradient noise scale B_simple = b tr(Sigma_b) / |G|^2 (McCandlish et al. 2018,
  "An empirical model of large-batch training"): the batch at which the gradient's noise
  energy equals its signal energy; training at a batch B << B_simple needs about B_simple / B
  times more steps than at a large batch;
- the mean cosine between a `--batch` gradient and the mean of the two reference gradients.

Nothing here is timed: it prints the noise measurements of one run.
"""

import argparse
import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments.cot_rl.chains_common import PAPER_LINEAR, PAPER_SOFTMAX
from sinkjax.cot_rl.chains import ChainTask
from sinkjax.cot_rl.rl import reinforce_gradient, train_rl

# The code's settings (temperature, steps per epoch), with the batch of the command line.
SETTINGS = {"linear": PAPER_LINEAR, "softmax": PAPER_SOFTMAX}


_gradient = jax.jit(reinforce_gradient, static_argnums=(2, 3, 4, 5, 6))


def flat_gradient(params, key, task, policy, batch, n_micro, horizon) -> jax.Array:
    """The REINFORCE gradient of one step (`batch` rollouts in `n_micro` micro-batches) as one
    flat (P,) vector."""
    grads, _ = _gradient(params, key, task, policy, batch, n_micro, horizon)
    return jnp.concatenate([g.ravel() for g in jax.tree.leaves(grads)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chain-length", type=int, default=8)
    parser.add_argument("--attention", choices=SETTINGS, default="linear")
    parser.add_argument(
        "--epochs", type=int, default=15, help="training epochs (linear 10, softmax 20 steps)"
    )
    parser.add_argument("--steps", type=int, nargs="+", help="start step counts (default: all)")
    parser.add_argument("--batch", type=int, default=2000, help="rollouts per training step")
    parser.add_argument("--reference-batch", type=int, default=200_000)
    parser.add_argument("--draws", type=int, default=30, help="--batch gradients drawn")
    args = parser.parse_args()

    t0 = time.perf_counter()
    task = ChainTask.uniform(args.chain_length, args.steps)
    setting = dataclasses.replace(
        SETTINGS[args.attention], batch_size=args.batch, n_microbatches=1, epochs=args.epochs
    )
    policy = setting.policy(task.n_vertices)
    result = train_rl(policy, task, task, setting.rl_config(1e-2, (42,), 1000), progress=False)
    print(
        f"n = {args.chain_length}, steps {args.steps or 'all'}, {args.attention}: "
        f"{args.epochs * setting.epoch_steps} Adam steps at "
        f"b = {args.batch}; greedy validation accuracy "
        f"{result.history['val_accuracy'][0, -1]:.3f}, chain traverse "
        f"{result.history['val_chain_traverse'][0, -1]:.3f}"
    )
    params = jax.tree.map(lambda leaf: leaf[0], result.params)
    horizon = task.default_max_new_tokens

    def gradient(seed: int, batch: int) -> jax.Array:  # micro-batches of the training batch
        key = jax.random.key(seed)
        return flat_gradient(params, key, task, policy, batch, batch // args.batch, horizon)

    reference = [gradient(10_000 + i, args.reference_batch) for i in range(2)]
    small = jnp.stack([gradient(i, args.batch) for i in range(args.draws)])
    signal = float(reference[0] @ reference[1])
    noise = float(jnp.sum(small.var(0, ddof=1)))
    mean_reference = (reference[0] + reference[1]) / 2

    def cosine(a, b):
        return float(a @ b / (jnp.linalg.norm(a) * jnp.linalg.norm(b)))

    print(f"|G|^2 (two independent b = {args.reference_batch:,} estimates): {signal:.3e}")
    print(f"tr Sigma at b = {args.batch:,} ({args.draws} draws): {noise:.3e}")
    if signal > 0:
        scale = args.batch * noise / signal
        print(f"simple noise scale B_simple = b tr Sigma / |G|^2: {scale:,.0f} rollouts")
    else:
        print("simple noise scale: |G|^2 estimate <= 0, noise dominates the reference batches")
    print(
        f"cosine of the two reference gradients: {cosine(*reference):.3f}; of a "
        f"b = {args.batch:,} gradient with their mean: "
        f"{np.nanmean([cosine(g, mean_reference) for g in small]):.3f} (a draw whose rewards "
        "are all equal has no gradient and no cosine)"
    )
    print(f"wall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
