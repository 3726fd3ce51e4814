"""chains-theory: the reduced chain model's predictions on data mixtures (cot_rl spec §4, 5-7).

Everything here is the Markov-chain reduction of `theory.chains_model` / `theory.chains_flow`
(float64, diffrax): linear attention, fixed V, symmetric A = theta = (alpha, beta, gamma),
temperature tau, the current vertex masked as an output and no horizon (without a horizon the
mask changes neither L nor the flow, only the policy read off theta; see
docs/theory-notes.md, Part II §1.1). Every flow starts at the proficient base model theta0
(default (1, 0, 0) at tau = 1: p_fwd > 0.1 and p_fwd > p_bwd + 0.05 at every vertex for
n <= 12).

(a) T_reach(n), the flow time until the loss on the hardest start (s = n - 1) is <= 0.1, for
    hard-only data (delta_{n-1}) and mixed data (Unif{1..n-1}), under (G1) (theta flows) and
    (G2) (the full matrix A flows; class sizes N(N-1), N(N-1), N(N-1)(N-2) slow it down).
    Thm 3 and check 6: hard-only T_reach = 2^{Omega(n)}, "grows exponentially": ln T_reach is
    fitted linearly in n over n >= 7 (spec §5.3: from n ~ 7 the gap is exponential; at n = 5 it
    is ~4x). Thm 2: with mass c on examples of <= k steps, T_reach = O(n^2 / (c0^{k+2} d0 c
    eps^2)). For Unif, k = 1 and c = 1/(n-1); c0 = min_u p_fwd(theta0), d0 read as b0 = min_u
    (p_fwd - p_bwd)(theta0). The spec reads the n^2 as the 1/N^2 time scale of (G2), so the
    bound's shape is B(n) = n^2 / (c0^3 b0 c) for (G2) and B(n) / n^2 for (G1); the fitted power
    of T_reach must not exceed the fitted power of the bound over the same n.
(b) L_test(n), hard-only, for n = 5..test_max_n along the flow trained on Unif{1..4} at n = 5
    (check 5, "5 -> 12": length generalisation). The training loss falls like 1/t; with a
    per-move failure rate L_train / E[s], L_test(n) ~ (n - 1) L_train / E[s], so at t = 1e5 it
    should be ~1e-4.
(c) T_reach(c) for D_c = c delta_1 + (1 - c) delta_{n-1} at n = mass_n (check 7): Thm 2 gives
    T_reach = O(1/c), i.e. c T_reach bounded as c -> 0; c = 1 (only simple data) need not be the
    fastest, since the s = 1 gradient saturates once s = 1 is solved (an observation).
(d) ||grad L(theta0)|| against n (check 6): hard-only it is 2^{-Omega(n)}; for Unif it scales
    as c(n) c0(n)^k, the scale of the simple examples' gradient in spec §3.4 (k = 1,
    c = 1/(n - 1)).

Where the spec's words are asymptotic (2^{Omega(n)}, "falls at least linearly", "bounded",
"-> 0", "proportional"), each claim's statement says how they were made numeric.
"""

import dataclasses

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import theory
from experiments.framework.claims import (
    Above,
    AtMost,
    Below,
    ClaimSpec,
    LinearFit,
    Observation,
    Separated,
    check_specs,
    judge,
)
from experiments.framework.experiment import Experiment, Outcome, RunContext
from experiments.framework.planning import PlannedRun

FLOWS = ("G1", "G2")
DATA = {"hard": theory.hard_steps, "mixed": theory.uniform_steps}
# Thm 2 with k = 1: the simple examples are the one-step starts.
SIMPLE_STEPS = 1
# The exponential fit of hard-only T_reach uses n >= 7 (spec §5.3: "use larger n (>= 7) in the
# ODE to show the exponential gap"; at n = 5 the slowdown is only ~4x).
EXP_FIT_FROM = 7
# Check 5's example: trained at n = 5, tested up to n = 12.
TRAIN_N, CLAIMED_TEST_N = 5, 12
# "L_test -> 0" read as below 1e-3 at the end of the training flow.
EXTRAPOLATION_LOSS = 1e-3
C = "cot_rl.md"
CLAIMS = check_specs(
    [
        *(
            ClaimSpec(
                f"hard-exp-slope-{flow.lower()}",
                f"Thm 3 and check 6: with hard-only data T_reach = 2^Omega(n), 'grows "
                f"exponentially in n', under ({flow}): least squares of ln T_reach on n over "
                f"the sizes n >= {EXP_FIT_FROM}, R^2 >= 0.9 (ln T_reach linear in n) and a "
                "slope above ln 2 (Omega(n) read with unit constant: T_reach at least doubles "
                "per vertex)",
                f"{C} §4 Thm 3 and check 6, §5.3 (n >= 7); paper Thm 3",
                LinearFit(min_r2=0.9, slope=Above(float(np.log(2)))),
            )
            for flow in FLOWS
        ),
        *(
            ClaimSpec(
                f"mixed-poly-{flow.lower()}",
                f"Thm 2 and checks 6-7: with Unif{{1..n-1}} T_reach grows at most polynomially, "
                f"within Thm 2's envelope, under ({flow}): the fitted power of n of T_reach "
                "below the fitted power of the bound n^2 / (c0^3 b0 c)"
                + (" / n^2" if flow == "G1" else "")
                + " over the same n (k = 1, c = 1/(n-1), c0 and b0 at theta0)",
                f"{C} §4 Thm 2, checks 6 and 7, §3.3 (G2's 1/N^2 time scale); paper Thm 2",
                Separated(low=("reach_power",), high=("bound_power",)),
            )
            for flow in FLOWS
        ),
        ClaimSpec(
            "extrapolation",
            f"Check 5: theta learned on Unif{{1..{TRAIN_N - 1}}} at n = {TRAIN_N} gives "
            f"L_test -> 0 at every n = {TRAIN_N + 1}..{CLAIMED_TEST_N} (hardest start): "
            f"'-> 0' read as below {EXTRAPOLATION_LOSS:g} at the end of the training flow, "
            "every n",
            f"{C} §4 check 5 ('e.g. 5 -> 12') and Thm 2 ('extends to any test distribution')",
            Below(EXTRAPOLATION_LOSS),
        ),
        ClaimSpec(
            "mass-inverse",
            "Check 7: T_reach = O(1/c) for D_c = c delta_1 + (1 - c) delta_{n-1}: 'c T_reach "
            "stays bounded as c -> 0', read as c T(c) at most its value at c_ref, the largest "
            "mass < 1, for every smaller c (c T(c) / (c_ref T(c_ref)) <= 1)",
            f"{C} §4 check 7 and Thm 2",
            AtMost(1.0),
        ),
        ClaimSpec(
            "hard-gradient-vanishes",
            "Check 6: at theta0, log ||grad L(hard)|| 'falls at least linearly in n' "
            "(||grad L|| = 2^{-Omega(n)}, Omega read with unit constant): every ratio "
            "||grad L(n + 1)|| / ||grad L(n)|| over the swept n below 1/2",
            f"{C} §4 check 6 and §3.4",
            Below(0.5),
        ),
        ClaimSpec(
            "mixed-gradient-scale",
            "Spec §3.4: simple examples (s <= k, mass c) give a gradient 'proportional to "
            "c c0^k': for Unif{1..n-1} (k = 1, c = 1/(n-1)), ||grad L(theta0)|| / (c c0) is "
            "constant over n within a factor 2 (max / min over the swept n below 2)",
            f"{C} §3.4 [RECON]",
            Below(2.0),
        ),
    ]
)


@dataclasses.dataclass(frozen=True)
class ChainsTheoryConfig:
    """The sweeps of the four panels; all of it is float64 theory on the CPU."""

    # Chain sizes of the T_reach and gradient sweeps (N = 2n labels), increasing; >= 3 of
    # them >= EXP_FIT_FROM.
    ns: tuple[int, ...] = tuple(range(4, 11))
    # Initial (alpha, beta, gamma) of every flow.
    theta0: tuple[float, float, float] = (1.0, 0.0, 0.0)
    # Temperature tau of the reduced policy.
    tau: float = 1.0
    # T_reach: first t with L(hardest start) <= threshold; not reached by t_max counts as inf.
    threshold: float = 0.1
    t_max: float = 1e16
    # (b): flow time of the training at n = TRAIN_N, and the largest test chain size
    # (>= CLAIMED_TEST_N; the sizes beyond it are an observation).
    train_time: float = 1e5
    test_max_n: int = CLAIMED_TEST_N
    # (c): chain size and masses c of simple (s = 1) examples; must contain 1 and >= 2 masses < 1.
    mass_n: int = 10
    masses: tuple[float, ...] = (1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001)

    def __post_init__(self):
        ns = self.ns
        if min(ns, default=0) < 3 or list(ns) != sorted(set(ns)):
            raise ValueError(f"ns must be increasing chain sizes >= 3, got {ns}")
        if sum(n >= EXP_FIT_FROM for n in ns) < 3:
            raise ValueError(f"ns must hold >= 3 sizes >= {EXP_FIT_FROM}, got {ns}")
        if len(self.theta0) != 3:
            raise ValueError(f"theta0 must be (alpha, beta, gamma), got {self.theta0}")
        if not self.tau > 0:
            raise ValueError(f"tau must be positive, got {self.tau}")
        if not 0 < self.threshold < 0.5:
            raise ValueError(f"threshold must lie in (0, 0.5), got {self.threshold}")
        if not self.t_max > 0 or not self.train_time >= 10:
            raise ValueError("t_max must be positive and train_time >= 10")
        if self.test_max_n < CLAIMED_TEST_N:
            raise ValueError(f"test_max_n must be >= {CLAIMED_TEST_N}, got {self.test_max_n}")
        if self.mass_n < 3:
            raise ValueError(f"mass_n must be >= 3, got {self.mass_n}")
        masses = np.asarray(self.masses)
        if 1.0 not in self.masses or np.sum(masses < 1) < 2 or np.any(masses <= 0):
            raise ValueError(f"masses must lie in (0, 1], contain 1 and >= 2 values < 1: {masses}")

    @property
    def model(self) -> theory.ChainModel:
        """Linear attention at temperature tau, self-masked, no horizon."""
        return theory.ChainModel(tau=self.tau, mask_self=True)

    @property
    def size(self) -> int:
        """Indices every T_reach and gradient problem is padded to (one compilation)."""
        return 2 * max(max(self.ns), self.mass_n)


PRESETS = {
    "ci": ChainsTheoryConfig(
        ns=tuple(range(4, 10)),
        mass_n=7,
        masses=(1.0, 0.5, 0.1, 0.02),
    ),
    "quick": ChainsTheoryConfig(),
    "paper": ChainsTheoryConfig(
        ns=tuple(range(4, 13)),
        test_max_n=16,
        train_time=1e6,
        mass_n=12,
        masses=tuple(float(c) for c in np.round(np.geomspace(1e-4, 1.0, 21), 8)),
    ),
}


@dataclasses.dataclass(frozen=True)
class LineFit:
    """Least squares y = slope x + intercept; nan everywhere if some y is not finite."""

    slope: float
    intercept: float
    r2: float


def line_fit(x: np.ndarray, y: np.ndarray) -> LineFit:
    """Fit y (K,) against x (K,), K >= 2."""
    if not np.all(np.isfinite(y)):
        return LineFit(np.nan, np.nan, np.nan)
    slope, intercept = np.polyfit(x, y, 1)
    total = np.sum((y - y.mean()) ** 2)
    r2 = 1 - np.sum((y - slope * x - intercept) ** 2) / total if total > 0 else 1.0
    return LineFit(float(slope), float(intercept), float(r2))


# (3,), batched problem (B, ...), model -> (B, 3, N) p_fwd, p_bwd, p_self from every vertex.
_moves = jax.jit(
    jax.vmap(theory.chain_move_probabilities, in_axes=(None, 0, None)), static_argnums=2
)


def assumption_constants(cfg: ChainsTheoryConfig) -> tuple[np.ndarray, np.ndarray]:
    """c0(n) = min_u p_fwd(u) and b0(n) = min_u (p_fwd(u) - p_bwd(u)) over the transient
    vertices at theta0 (assumption 1 of the dynamics theorems); each (len(ns),)."""
    problems = theory.chain_problems(cfg.ns, theory.uniform_steps, size=cfg.size)
    with jax.enable_x64(True):
        theta = jnp.asarray(cfg.theta0, jnp.float64)
        moves = np.asarray(_moves(theta, jax.tree.map(jnp.asarray, problems), cfg.model))
    transient = np.asarray(problems.transient)
    p_fwd = np.where(transient, moves[:, 0], np.inf)
    gap = np.where(transient, moves[:, 0] - moves[:, 1], np.inf)
    return p_fwd.min(axis=1), gap.min(axis=1)


def simple_mass(ns) -> np.ndarray:
    """(len(ns),) c = D(s <= k) of Unif{1..n-1}: the mass on simple examples."""
    return SIMPLE_STEPS / (np.asarray(ns, np.float64) - 1)


def theorem2_bound(ns, c0: np.ndarray, b0: np.ndarray) -> np.ndarray:
    """(len(ns),) the n-dependence n^2 / (c0^{k+2} b0 c) of Thm 2 for Unif{1..n-1}
    (`simple_mass` c), up to the constant and eps^-2."""
    ns = np.asarray(ns, np.float64)
    return ns**2 / (c0 ** (SIMPLE_STEPS + 2) * b0 * simple_mass(ns))


def reach_sweeps(cfg: ChainsTheoryConfig) -> dict[str, np.ndarray]:
    """T_reach: "<data>_<flow>" -> (len(ns),) for data in hard/mixed and flow in G1/G2;
    "mass" -> (len(masses),) under (G1) at mass_n; "mass_hard" -> (1,), c = 0 at mass_n."""
    kwargs = dict(threshold=cfg.threshold, t_max=cfg.t_max, size=cfg.size)
    out = {
        f"{name}_{flow}": theory.reach_time_vs_n(
            cfg.theta0, cfg.ns, steps, cfg.model, flow=flow, **kwargs
        )
        for name, steps in DATA.items()
        for flow in FLOWS
    }
    out["mass"] = theory.reach_time_vs_mass(cfg.theta0, cfg.mass_n, cfg.masses, cfg.model, **kwargs)
    out["mass_hard"] = theory.reach_time_vs_n(
        cfg.theta0, [cfg.mass_n], theory.hard_steps, cfg.model, **kwargs
    )
    return out


@dataclasses.dataclass(frozen=True)
class Extrapolation:
    """The (G1) flow trained at n = TRAIN_N on Unif{1..n-1}, tested on longer chains.

    Attributes:
        ts: (T,) flow times (0, then log-spaced up to train_time).
        test_ns: (B,) test chain sizes TRAIN_N..test_max_n.
        hard, mixed: (T, B) L_test on the hardest start / on Unif{1..n-1} along the flow.
        train_loss: (T,) the training loss.
    """

    ts: np.ndarray
    test_ns: np.ndarray
    hard: np.ndarray
    mixed: np.ndarray
    train_loss: np.ndarray


def extrapolation(cfg: ChainsTheoryConfig) -> Extrapolation:
    decades = int(np.ceil(np.log10(cfg.train_time)))
    ts = np.concatenate([[0.0], np.geomspace(1.0, cfg.train_time, 4 * decades + 1)])
    train = theory.chain_problem(TRAIN_N, theory.uniform_steps(TRAIN_N))
    test_ns = np.arange(TRAIN_N, cfg.test_max_n + 1)
    flow = theory.solve_chain_flow(cfg.theta0, train, ts, cfg.model)
    if not flow.ok:
        raise RuntimeError("the training flow of the extrapolation panel did not finish")
    tests = {name: theory.chain_problems(test_ns, steps) for name, steps in DATA.items()}
    losses = {
        name: np.stack([theory.chain_losses(theta, problems, cfg.model) for theta in flow.theta])
        for name, problems in tests.items()
    }
    return Extrapolation(ts, test_ns, losses["hard"], losses["mixed"], flow.loss)


def gradient_norms(cfg: ChainsTheoryConfig) -> dict[str, np.ndarray]:
    """ "hard", "mixed" -> (len(ns),) ||grad L(theta0)|| (the (G1) field)."""
    return {
        name: theory.chain_gradient_norms(
            cfg.theta0, theory.chain_problems(cfg.ns, steps, size=cfg.size), cfg.model
        )
        for name, steps in DATA.items()
    }


@dataclasses.dataclass(frozen=True)
class Analysis:
    """Fits and derived numbers of the four panels.

    Attributes:
        exp_fits: flow -> ln T_reach(hard) against n over n >= EXP_FIT_FROM.
        power_fits: flow -> ln T_reach(mixed) against ln n over ns.
        bound: (len(ns),) Thm 2's B(n) (the (G2) shape; (G1) is B / n^2).
        bound_power: flow -> fitted power of the bound over ns.
        c0, b0: (len(ns),) assumption constants at theta0.
        mass_ratio: (M',) c T(c) / (c_ref T(c_ref)) for the masses c < c_ref, c_ref = the largest
            mass < 1.
        only_simple_ratio: T(c = 1) / min_c T(c).
        gradient_ratios: (len(ns) - 1,) ||grad L_hard(n + 1)|| / ||grad L_hard(n)||.
        gradient_scale: (len(ns),) ||grad L_mixed|| / (c(n) c0(n)^k).
    """

    exp_fits: dict[str, LineFit]
    power_fits: dict[str, LineFit]
    bound: np.ndarray
    bound_power: dict[str, float]
    c0: np.ndarray
    b0: np.ndarray
    mass_ratio: np.ndarray
    only_simple_ratio: float
    gradient_ratios: np.ndarray
    gradient_scale: np.ndarray


def analyse(cfg: ChainsTheoryConfig, reach: dict, grads: dict) -> Analysis:
    ns = np.asarray(cfg.ns, np.float64)
    tail = ns >= EXP_FIT_FROM
    c0, b0 = assumption_constants(cfg)
    bound = theorem2_bound(cfg.ns, c0, b0)
    bound_power = line_fit(np.log(ns), np.log(bound)).slope
    masses, t_mass = np.asarray(cfg.masses), reach["mass"]
    c_ref = masses[masses < 1].max()
    below = masses < c_ref
    ref = c_ref * t_mass[masses == c_ref][0]
    return Analysis(
        exp_fits={f: line_fit(ns[tail], np.log(reach[f"hard_{f}"][tail])) for f in FLOWS},
        power_fits={f: line_fit(np.log(ns), np.log(reach[f"mixed_{f}"])) for f in FLOWS},
        bound=bound,
        bound_power={"G1": bound_power - 2, "G2": bound_power},
        c0=c0,
        b0=b0,
        mass_ratio=masses[below] * t_mass[below] / ref,
        only_simple_ratio=float(t_mass[masses == 1.0][0] / t_mass.min()),
        gradient_ratios=grads["hard"][1:] / grads["hard"][:-1],
        gradient_scale=grads["mixed"] / (simple_mass(ns) * c0**SIMPLE_STEPS),
    )


def measure(cfg: ChainsTheoryConfig, reach: dict, a: Analysis, ext: Extrapolation) -> dict:
    """Claim id -> measured value: the fits' points, the fitted powers, the per-n losses and
    ratios (see `CLAIMS`)."""
    ns = np.asarray(cfg.ns, np.float64)
    tail = ns >= EXP_FIT_FROM
    claimed_test = (ext.test_ns > TRAIN_N) & (ext.test_ns <= CLAIMED_TEST_N)
    return {
        **{
            f"hard-exp-slope-{flow.lower()}": {
                "x": ns[tail],
                "y": np.log(reach[f"hard_{flow}"][tail]),
            }
            for flow in FLOWS
        },
        **{
            f"mixed-poly-{flow.lower()}": {
                "reach_power": a.power_fits[flow].slope,
                "bound_power": a.bound_power[flow],
            }
            for flow in FLOWS
        },
        "extrapolation": ext.hard[-1, claimed_test],
        "mass-inverse": a.mass_ratio,
        "hard-gradient-vanishes": a.gradient_ratios,
        "mixed-gradient-scale": a.gradient_scale.max() / a.gradient_scale.min(),
    }


def _observations(cfg: ChainsTheoryConfig, reach: dict, a: Analysis, ext: Extrapolation):
    beyond = ext.test_ns > CLAIMED_TEST_N
    return [
        Observation(
            "hard-reach-growth",
            "hard-only T_reach(n + 1) / T_reach(n) per flow over the swept n: a ratio that rises "
            "with n means faster than exponential growth",
            {f: reach[f"hard_{f}"][1:] / reach[f"hard_{f}"][:-1] for f in FLOWS},
        ),
        Observation(
            "only-simple-data-slowdown",
            f"T_reach(c = 1) / min_c T_reach(c) at n = {cfg.mass_n}: check 7 says only simple "
            "data 'need not be the fastest'",
            a.only_simple_ratio,
        ),
        Observation(
            "extrapolation-beyond-12",
            f"L_test on the hardest start at n = {CLAIMED_TEST_N + 1}..{cfg.test_max_n} after "
            f"training at n = {TRAIN_N} (none when the preset tests up to {CLAIMED_TEST_N})",
            ext.hard[-1, beyond],
        ),
        Observation(
            "assumption-constants",
            "c0 = min_u p_fwd and b0 = min_u (p_fwd - p_bwd) at theta0, per swept n",
            {"c0": a.c0, "b0": a.b0},
        ),
    ]


def _figure(cfg, reach, a: Analysis, ext: Extrapolation, grads, ctx: RunContext) -> str:
    ns = np.asarray(cfg.ns)
    fig, axes = plt.subplots(2, 2, figsize=(13, 10))
    ax = axes[0, 0]
    for flow, marker in zip(FLOWS, "os", strict=True):
        (line,) = ax.plot(ns, reach[f"hard_{flow}"], marker, label=f"hard-only ({flow})")
        fit = a.exp_fits[flow]
        x = ns[ns >= EXP_FIT_FROM]
        ax.plot(x, np.exp(fit.intercept + fit.slope * x), "-", color=line.get_color(), lw=1)
        (line,) = ax.plot(ns, reach[f"mixed_{flow}"], marker, mfc="none", label=f"Unif ({flow})")
        fit = a.power_fits[flow]
        ax.plot(ns, np.exp(fit.intercept) * ns**fit.slope, "--", color=line.get_color(), lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("chain size n")
    ax.set_ylabel(f"T_reach (L_hard <= {cfg.threshold:g})")
    ax.set_title(
        "(a) T_reach: exp fits (solid, hard-only), power fits (dashed, Unif)\n"
        + ", ".join(
            f"{f}: slope {a.exp_fits[f].slope:.2f}/vertex, power {a.power_fits[f].slope:.2f}"
            for f in FLOWS
        ),
        fontsize=9,
    )
    ax.legend(fontsize=8)

    ax = axes[0, 1]
    shown = sorted({*range(5, len(ext.ts), 4), len(ext.ts) - 1})  # every decade from t = 10
    for i in shown:
        ax.plot(ext.test_ns, ext.hard[i], "o-", ms=3, label=f"t = {ext.ts[i]:g}")
    ax.axvline(TRAIN_N, color="gray", ls=":", lw=1)
    ax.axhline(EXTRAPOLATION_LOSS, color="gray", ls="--", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("test chain size n (hardest start)")
    ax.set_ylabel("L_test")
    ax.set_title(f"(b) length generalisation: trained on Unif at n = {TRAIN_N}", fontsize=9)
    ax.legend(fontsize=8)

    ax = axes[1, 0]
    masses = np.asarray(cfg.masses)
    ax.plot(masses, reach["mass"], "o-", label="T_reach(c)")
    ax.plot(masses, masses * reach["mass"], "s-", label="c T_reach(c)")
    ax.axhline(reach["mass_hard"][0], color="gray", ls="--", lw=1, label="hard-only (c = 0)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("mass c on s = 1")
    ax.set_title(f"(c) D_c = c delta_1 + (1 - c) delta_{cfg.mass_n - 1}, (G1)", fontsize=9)
    ax.legend(fontsize=8)

    ax = axes[1, 1]
    ax.plot(ns, grads["hard"], "o-", label="hard-only")
    ax.plot(ns, grads["mixed"], "s-", label="Unif{1..n-1}")
    ax.plot(ns, a.c0 / (ns - 1), "k--", lw=1, label="c c0 = c0(n) / (n - 1)")
    ax.set_yscale("log")
    ax.set_xlabel("chain size n")
    ax.set_ylabel("||grad L(theta0)||")
    ax.set_title(f"(d) gradient at theta0 = {cfg.theta0}", fontsize=9)
    ax.legend(fontsize=8)
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    return ctx.save_figure(fig, "chains_theory")


def run(cfg: ChainsTheoryConfig, ctx: RunContext) -> Outcome:
    reach = reach_sweeps(cfg)
    ext = extrapolation(cfg)
    grads = gradient_norms(cfg)
    a = analyse(cfg, reach, grads)
    summary = {
        "ns": cfg.ns,
        "reach": reach,
        "exp_fits": {f: dataclasses.asdict(fit) for f, fit in a.exp_fits.items()},
        "power_fits": {f: dataclasses.asdict(fit) for f, fit in a.power_fits.items()},
        "hard_ratios": {f: reach[f"hard_{f}"][1:] / reach[f"hard_{f}"][:-1] for f in FLOWS},
        "theorem2_bound": a.bound,
        "bound_power": a.bound_power,
        "c0": a.c0,
        "b0": a.b0,
        "mass_times_reach": np.asarray(cfg.masses) * reach["mass"],
        "extrapolation_ts": ext.ts,
        "extrapolation_hard": ext.hard[-1],
        "extrapolation_mixed": ext.mixed[-1],
        "extrapolation_train_loss": ext.train_loss[-1],
        "gradient_norms": grads,
        "gradient_scale": a.gradient_scale,
    }
    figures = [_figure(cfg, reach, a, ext, grads, ctx)]
    claims = judge(CLAIMS, measure(cfg, reach, a, ext))
    return Outcome(claims, figures, [], summary, _observations(cfg, reach, a, ext))


def training_plan(cfg: ChainsTheoryConfig) -> tuple[PlannedRun, ...]:
    """None: the reduced model's flows are solved, not trained through the run store."""
    return ()


EXPERIMENT = Experiment(
    name="chains-theory",
    title="Reduced chain model: exponential T_reach without simple examples, polynomial with "
    "them, length generalisation, T_reach = O(1/c), vanishing gradients (cot_rl checks 5-7)",
    presets=PRESETS,
    run=run,
    claims=CLAIMS,
    training_plan=training_plan,
)
