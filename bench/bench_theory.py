"""Speed of the alpha-flow solves (theory, float64), measured in one run.

    python bench/bench_theory.py [--n 256]

Prints the time of one alpha-flow solve from t = 1 to 1e8 (after compilation), the time of
`--n` initial conditions solved together under `vmap`, and the time of a loop of scipy
`solve_ivp` (DOP853, same tolerances, a numpy right-hand side) over the same initial conditions,
with the speed-up ratio. Both agree to the tolerance (the maximum difference is printed).
"""

import argparse
import time

import numpy as np
from scipy.integrate import solve_ivp

import theory
from theory.flows import ATOL, RTOL

TS = np.geomspace(1.0, 1e8, 81)


def numpy_alpha_field(problem: theory.SimplifiedProblem):
    """d alpha / d s in log-time with beta = 0, as plain numpy (the fair scipy baseline)."""
    P, pi, phi, W = problem.P, problem.pi, problem.W * problem.xi, problem.W.sum()
    log_p = np.log(P)

    def field(s, alpha):
        share = 1.0 / (1.0 + W * np.exp(-alpha))  # a / (a + W)
        u = (1 - share)[:, None] * (phi / W)[None, :]
        logits = log_p + u
        q = np.exp(logits - logits.max(axis=1, keepdims=True))
        q /= q.sum(axis=1, keepdims=True)
        drive = (P - q) @ (-phi)
        return np.exp(s) * pi * share * (1 - share) / W * drive

    return field


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="initial conditions in the batch")
    args = parser.parse_args()
    problem = theory.random_problem(0)
    alpha0s = np.random.default_rng(0).normal(size=(args.n, 6))

    theory.solve_alpha_flow(problem, alpha0s[0], 0.0, TS)  # compile
    t0 = time.perf_counter()
    single = theory.solve_alpha_flow(problem, alpha0s[0], 0.0, TS)
    single_s = time.perf_counter() - t0
    print(
        f"one alpha-flow solve, t in [1, 1e8]: {single_s * 1e3:.1f} ms "
        f"({single.num_steps} steps, rtol {RTOL:g})"
    )

    theory.solve_alpha_flow_batch(problem, alpha0s, 0.0, TS)  # compile
    t0 = time.perf_counter()
    batch = theory.solve_alpha_flow_batch(problem, alpha0s, 0.0, TS)
    batch_s = time.perf_counter() - t0
    print(
        f"{args.n} initial conditions under vmap: {batch_s:.2f} s "
        f"({batch_s / args.n * 1e3:.2f} ms each, {single_s * args.n / batch_s:.1f}x vs "
        f"{args.n} single solves)"
    )

    field = numpy_alpha_field(problem)
    t0 = time.perf_counter()
    reference = np.stack(
        [
            solve_ivp(
                field,
                (0.0, np.log(TS[-1])),
                a0,
                method="DOP853",
                t_eval=np.log(TS),
                rtol=RTOL,
                atol=ATOL,
            ).y.T
            for a0 in alpha0s
        ]
    )
    scipy_s = time.perf_counter() - t0
    difference = np.abs(reference - batch.alpha).max()
    print(
        f"scipy solve_ivp loop over {args.n}: {scipy_s:.2f} s -> vmapped diffrax is "
        f"{scipy_s / batch_s:.1f}x faster; max |difference| {difference:.1e}"
    )


if __name__ == "__main__":
    main()
