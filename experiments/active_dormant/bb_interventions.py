"""E3: interventions on the trained 1-layer model (Fig. 3a).

Zeroing the attention destroys backcopy and leaves bigram alone; removing the MLP destroys
bigram and hurts backcopy. All three variants run in one compiled, vmapped forward pass over
`Interventions`.
"""

import math

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from flax import nnx

from experiments.active_dormant.bb_common import (
    BAYES_EXCESS_BOUND,
    CI_RUN,
    QUICK_RUN,
    BBRunConfig,
    TrainedBB,
    bb_planned_run,
    task_learned_measured,
    task_learned_specs,
    train_bb,
)
from experiments.framework.claims import (
    Above,
    Below,
    ClaimSpec,
    Near,
    Observation,
    check_specs,
    judge,
)
from experiments.framework.experiment import Experiment, Outcome, RunContext
from experiments.framework.planning import PlannedRun
from sinkjax import plotting, probes
from sinkjax.interventions import Interventions

# The label of the 1-layer run, in `run` and in its plan.
RUN_LABEL = "bb-interventions"
PRESETS = {"ci": CI_RUN, "quick": QUICK_RUN, "paper": BBRunConfig(steps=10_000, chunk_size=1000)}
VARIANTS = ("full", "no MLP", "no attn")
# The random-guess line of the official figures (spec A.3): log(66) = 4.190 nats. The uniform
# guess over the whole 67-token vocabulary, ln 67 = 4.205, lies 0.015 above it.
RANDOM_GUESS = math.log(66)
# "About random level" read as within 20% of the random-guess risk.
ABOUT_RANDOM = 0.2
# "Hurts backcopy badly" read as a backcopy excess above 1 nat.
BADLY_HURT = 1.0

AD = "active_dormant.md"
CLAIMS = check_specs(
    [
        *task_learned_specs("full", "E3: the full model", f"{AD} E3; paper Fig. 3a"),
        ClaimSpec(
            "no-attn-backcopy",
            "E3: 'zeroing attention destroys backcopy, pushing its excess risk above the "
            f"random-guess level': backcopy excess (= risk, the Bayes risk is 0) above log(66) "
            f"= {RANDOM_GUESS:.3f} nats, the figures' random-guess line (a uniform guess over "
            "all 67 tokens, ln 67 = 4.205, is 0.015 higher), every seed",
            f"{AD} E3 and A.3 (random-guess line log 66); paper Fig. 3a",
            Above(RANDOM_GUESS),
        ),
        ClaimSpec(
            "no-attn-bigram",
            "E3: zeroing attention 'leaves bigram unchanged': |bigram excess without attention "
            f"- bigram excess of the full model| below {BAYES_EXCESS_BOUND:g} nats (the bound of "
            "'~0'), every seed",
            f"{AD} E3; paper Fig. 3a",
            Below(BAYES_EXCESS_BOUND),
        ),
        ClaimSpec(
            "no-mlp-bigram",
            "E3: 'zeroing the MLP destroys bigram, sending it to about random level': bigram "
            f"risk without the MLP within {100 * ABOUT_RANDOM:g}% ('about') of the random-guess "
            f"level log(66) = {RANDOM_GUESS:.3f} nats, every seed",
            f"{AD} E3 and A.3 (random-guess line log 66); paper Fig. 3a",
            Near(RANDOM_GUESS, ABOUT_RANDOM, relative=True),
        ),
        ClaimSpec(
            "no-mlp-backcopy",
            "E3: zeroing the MLP 'hurts backcopy badly': backcopy excess without the MLP above "
            f"{BADLY_HURT:g} nat (the copied token's geometric-mean probability below "
            "e^-1 = 0.37; the full model's excess is ~0), every seed",
            f"{AD} E3; paper Fig. 3a",
            Above(BADLY_HURT),
        ),
    ]
)


def excess_risks(bb: TrainedBB, seed_index: int) -> dict[str, np.ndarray]:
    """(3,) backcopy and bigram excess risks (nats) of one seed for `VARIANTS`, in one
    vmapped call."""
    none = Interventions.none(bb.model_cfg.n_layers, bb.model_cfg.n_heads)
    stacked = jax.tree.map(
        lambda *xs: jnp.stack(xs), none, none.remove_mlp(0), none.zero_attention(0)
    )
    batch = bb.eval_batch
    params = bb.seed_params(seed_index)

    @jax.jit
    @jax.vmap
    def risks(iv):
        logits = nnx.merge(bb.graphdef, params)(batch.inputs, iv)
        risk = probes.oracle_cross_entropy(logits, batch.oracle)
        return (
            probes.masked_mean(risk, batch.trigger),
            probes.masked_mean(risk, ~batch.trigger) - batch.bayes_bigram,
        )

    backcopy, bigram = risks(stacked)
    return {"backcopy": np.asarray(backcopy), "bigram": np.asarray(bigram)}


def measure(bb: TrainedBB, backcopy: np.ndarray, bigram: np.ndarray) -> dict[str, np.ndarray]:
    """Claim id -> measured value (S,), from the (S, 3) excess risks of `VARIANTS`."""
    full, no_mlp, no_attn = 0, 1, 2
    return {
        **task_learned_measured(bb, "full"),
        "no-attn-backcopy": backcopy[:, no_attn],
        "no-attn-bigram": np.abs(bigram[:, no_attn] - bigram[:, full]),
        "no-mlp-bigram": bigram[:, no_mlp] + float(bb.eval_batch.bayes_bigram),
        "no-mlp-backcopy": backcopy[:, no_mlp],
    }


def _figure(bb: TrainedBB, backcopy: np.ndarray, bigram: np.ndarray, ctx: RunContext) -> str:
    fig, ax = plt.subplots(figsize=(7, 4))
    plotting.bar_chart(
        ax,
        VARIANTS,
        {"backcopy excess": backcopy.mean(0), "bigram excess": bigram.mean(0)},
        hlines={
            "random guess: backcopy excess": RANDOM_GUESS,
            "random guess: bigram excess": RANDOM_GUESS - float(bb.eval_batch.bayes_bigram),
        },
        ylabel="excess risk (nats)",
    )
    ax.set_title(f"E3: interventions on the 1-layer model ({bb.cfg.n_seeds} seed(s), mean)")
    return ctx.save_figure(fig, "interventions")


def run(cfg: BBRunConfig, ctx: RunContext) -> Outcome:
    bb = train_bb(cfg, ctx, RUN_LABEL)
    per_seed = [excess_risks(bb, i) for i in range(cfg.n_seeds)]
    backcopy = np.stack([r["backcopy"] for r in per_seed])  # (S, 3)
    bigram = np.stack([r["bigram"] for r in per_seed])
    summary = {
        "variants": VARIANTS,
        "backcopy_excess": backcopy,
        "bigram_excess": bigram,
        "random_guess": RANDOM_GUESS,
        "bayes_bigram": float(bb.eval_batch.bayes_bigram),
        "train_wall_time_s": bb.result.wall_time,
        "resumed_from": bb.result.resumed_from,
    }
    observations = [
        Observation(
            "no-mlp-bigram-excess-over-random",
            "bigram excess without the MLP over the random guess's bigram excess "
            "(log(66) - the bigram Bayes risk), per seed",
            bigram[:, 1] / (RANDOM_GUESS - float(bb.eval_batch.bayes_bigram)),
        ),
    ]
    claims = judge(CLAIMS, measure(bb, backcopy, bigram))
    return Outcome(
        claims, [_figure(bb, backcopy, bigram, ctx)], list(cfg.seeds), summary, observations
    )


def training_plan(cfg: BBRunConfig) -> tuple[PlannedRun, ...]:
    """The one run of `run`: the 1-layer model of `cfg`."""
    return (bb_planned_run(cfg, RUN_LABEL),)


EXPERIMENT = Experiment(
    name="bb-interventions",
    title="1-layer BB: zeroing attention or MLP (E3, Fig. 3a)",
    presets=PRESETS,
    run=run,
    claims=CLAIMS,
    training_plan=training_plan,
)
