"""E1, E2, E4: the active-dormant head, the attention sink and the value drain of the 1-layer model.

Trains the 1-layer, 1-head transformer on Bigram-Backcopy and checks, on the fixed evaluation
batch, that (E4) both excess risks vanish, (E1) non-trigger tokens attend to <s>, (E4) the sink
logit keeps growing after the attention saturates, and (E2) the value of <s> drains.
"""

import jax
import matplotlib.pyplot as plt
import numpy as np
from flax import nnx

from experiments.active_dormant.bb_common import (
    CI_RUN,
    PAPER_LONG_RUN,
    QUICK_RUN,
    BBRunConfig,
    TrainedBB,
    bb_planned_run,
    final_trace,
    train_bb,
)
from experiments.active_dormant.official_reference import OFFICIAL_DYNAMICS, OFFICIAL_SOURCE
from experiments.framework.claims import (
    Above,
    AllOf,
    AtMost,
    Below,
    Between,
    ClaimSpec,
    LinearFit,
    Near,
    Observation,
    check_specs,
    judge,
)
from experiments.framework.experiment import Experiment, Outcome, RunContext
from experiments.framework.planning import PlannedRun
from sinkjax import plotting, probes

# The label of the 1-layer run, in `run` and in its plan.
RUN_LABEL = "bb-dynamics"
PRESETS = {
    "ci": CI_RUN,
    "quick": QUICK_RUN,
    "paper": PAPER_LONG_RUN,
}


def _official_reference_panel(ax, steps: np.ndarray, m: dict, official_settings: bool) -> None:
    """Seed 0's Attn_<s>, logit_<s> and ||W_O v_<s>|| with the official run's points overlaid."""
    x = np.maximum(steps, 1)
    for name, label in PROBE_LABELS.items():
        (line,) = ax.plot(x, m[name][:, 0, 0], lw=1.5, label=f"{label} (ours)")
        official = [(step, values[name]) for step, values in OFFICIAL_DYNAMICS.items()]
        ax.plot(*zip(*official, strict=True), "o", color=line.get_color(), mec="k", ms=6)
    ax.plot([], [], "o", color="w", mec="k", label="official code, seed 42")
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xlabel("step")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    settings = "same settings" if official_settings else "other settings: not comparable"
    ax.set_title(f"official-reference (d = N = 256, B = 512; this run: {settings})", fontsize=10)


def _figures(run, ctx: RunContext, official_settings: bool) -> list[str]:
    steps = run.result.eval_steps
    m = {k: v[0] for k, v in run.result.metrics.items()}  # seed 0
    _, trace = final_trace(run)
    tokens = np.asarray(run.eval_batch.inputs[0])
    attn = trace.layers[0].attn
    n_show = min(40, len(tokens))
    labels = plotting.token_labels(tokens[:n_show], run.task.chars, run.task.bos)
    triggers = np.flatnonzero(np.asarray(run.eval_batch.trigger[0, :n_show]))

    fig, axes = plt.subplots(1, 2, figsize=(14, 6.5), gridspec_kw={"width_ratios": [3, 2]})
    image = plotting.attention_heatmap(axes[0], np.asarray(attn.weights[0, 0]), labels, triggers)
    fig.colorbar(image, ax=axes[0], fraction=0.04)
    axes[0].set_title(
        "E1: attention (trigger rows in red attend to n-1; others to <s>)", fontsize=10
    )
    value_norms = np.linalg.norm(np.asarray(attn.value_out[0, :n_show, 0]), axis=-1)
    colors = ["tab:red" if t == run.task.bos else "tab:blue" for t in tokens[:n_show]]
    axes[1].barh(range(n_show), value_norms, color=colors)
    axes[1].set_yticks(range(n_show), labels, fontsize=6)
    axes[1].invert_yaxis()
    axes[1].set_xlabel("||W_O v||")
    axes[1].set_title("E2: value-state drain (<s> in red)", fontsize=10)
    figures = [ctx.save_figure(fig, "attention_and_values")]

    fig, axes = plt.subplots(1, 3, figsize=(19, 4.5))
    logit = m["sink_logit"][:, 0, 0]
    plotting.curves_panel(
        axes[0],
        steps,
        {
            "backcopy excess / max": plotting.rescaled(m["backcopy_excess"]),
            "bigram excess / max": plotting.rescaled(m["bigram_excess"]),
            "Attn_<s>": m["attn_sink"][:, 0, 0],
            "logit_<s> / max": plotting.rescaled(logit),
            "||W_O v_<s>|| / max": plotting.rescaled(m["value_norm_sink"][:, 0, 0]),
        },
        title="E4: dynamics (rescaled as in Fig. 3b)",
    )
    plotting.curves_panel(
        axes[1],
        steps,
        {
            "backcopy excess": m["backcopy_excess"],
            "bigram excess": m["bigram_excess"],
            "logit_<s>": logit,
            "||W_O v_<s>||": m["value_norm_sink"][:, 0, 0],
        },
        bands={"logit_<s>": (m["sink_logit_q10"][:, 0, 0], m["sink_logit_q90"][:, 0, 0])},
        title="raw values (logit band: 10-90% over token types)",
    )
    axes[1].set_yscale("symlog", linthresh=0.1)
    _official_reference_panel(axes[2], steps, m, official_settings)
    figures.append(ctx.save_figure(fig, "dynamics"))
    return figures


def final_head_probes(bb: TrainedBB) -> tuple[np.ndarray, np.ndarray]:
    """Per seed, on the whole evaluation batch at the end of training: the mean attention of
    trigger queries on n-1, (S,), and the mean ||W_O v|| of each token type, (S, V)."""
    batch = bb.eval_batch

    @jax.jit
    @jax.vmap
    def probe(params):
        _, trace = nnx.merge(bb.graphdef, params)(batch.inputs, trace=True)
        attn = trace.layers[0].attn
        return (
            probes.attention_to_previous(attn.weights, batch.trigger)[0],
            probes.value_norms_by_type(attn, batch.inputs, bb.task.vocab_size)[0],
        )

    to_previous, value_norms = probe(bb.result.params)
    return np.asarray(to_previous), np.asarray(value_norms)


AD = "active_dormant.md"
PROBE_LABELS = {
    "attn_sink": "Attn_<s>",
    "sink_logit": "logit_<s>",
    "value_norm_sink": "||W_O v_<s>||",
}
# Issue 18 item 5: (claim name, probe, step, rule) against the official run's dynamics.
OFFICIAL_CLAIMS = (
    ("attn", "attn_sink", 1_000, Near(OFFICIAL_DYNAMICS[1_000]["attn_sink"], 0.05)),
    ("attn", "attn_sink", 10_000, Near(OFFICIAL_DYNAMICS[10_000]["attn_sink"], 0.05)),
    ("logit", "sink_logit", 10_000, Near(OFFICIAL_DYNAMICS[10_000]["sink_logit"], 0.15, True)),
    (
        "value-norm",
        "value_norm_sink",
        10_000,
        Near(OFFICIAL_DYNAMICS[10_000]["value_norm_sink"], 0.25, True),
    ),
)
# The settings that make a run the official one (the rest only chunk, evaluate or cut it).
OFFICIAL_RUN_FIELDS = (
    "init",
    "learning_rate",
    "weight_decay",
    "optimizer",
    "base_seed",
    "batch_size",
    "seq_len",
    "with_bos",
    "d_model",
    "n_layers",
    "attention",
    "no_attn",
    "no_ffn",
)


def official_claim_id(name: str, step: int) -> str:
    return f"official-{name}-{step // 1000}k"


# E1's "well above 0.7 after ~1k steps, but below 1" ("well above": at least 0.05 above).
ATTENTION_SINK_RULE = Between(0.75, 0.999)
CLAIMS = check_specs(
    [
        ClaimSpec(
            "backcopy-excess",
            "E4: the backcopy excess risk reaches ~0 within ~1k steps: excess below 0.05 nats "
            "at the evaluation nearest step 1,500 (or the last, if training is shorter), "
            "every seed",
            f"{AD} E4; paper Fig. 3b",
            Below(0.05),
        ),
        ClaimSpec(
            "bigram-excess",
            "E4: the bigram excess risk (code-style oracle) reaches ~0 within ~1k steps: below "
            "0.05 nats at the evaluation nearest step 1,500 (or the last), every seed",
            f"{AD} E4 and A.3 (the 0.010 floor of the code's position-0 oracle); paper Fig. 3b",
            Below(0.05),
        ),
        ClaimSpec(
            "attention-sink",
            "E1: non-trigger queries attend to <s> 'well above 0.7 after ~1k steps, but below "
            "1': final Attn_<s> in [0.75, 0.999] ('well above' read as at least 0.05 above), "
            "every seed",
            f"{AD} E1 and C (Attn_<s>); paper Fig. 2b/9",
            ATTENTION_SINK_RULE,
        ),
        ClaimSpec(
            "active-head",
            "E1: trigger rows put 'almost all' of their attention on position n-1: final mean "
            "A[n, n-1] over trigger queries above 0.9, every seed",
            f"{AD} E1; paper Fig. 2b/9",
            Above(0.9),
        ),
        ClaimSpec(
            "value-drain-vs-tokens",
            "E2: ||W_O v_<s>|| ends 'far smaller than every other token's value norm, by more "
            "than 10x': final ratio to the smallest other token type's mean value norm below "
            "0.1, every seed",
            f"{AD} E2; paper Fig. 2c",
            Below(0.1),
        ),
        ClaimSpec(
            "attention-rises-as-backcopy-falls",
            "E4: Attn_<s> rises as the backcopy risk falls: Pearson correlation of Attn_<s> "
            "with the backcopy excess over the evaluations up to step 1,500 below -0.5, "
            "every seed",
            f"{AD} E4; paper Fig. 3b",
            Below(-0.5),
        ),
        ClaimSpec(
            "sink-logit-log-linear",
            "E4: logit_<s> keeps growing 'roughly linearly in log(step) over 1k-10k': least "
            "squares of logit_<s> on ln(step) over the evaluations in [1k, 10k] (seed 0), "
            "R^2 >= 0.9 and a positive slope",
            f"{AD} E4; paper Fig. 3b",
            LinearFit(min_r2=0.9, slope=Above(0.0)),
        ),
        ClaimSpec(
            "value-norm-rises-then-falls",
            "E4: ||W_O v_<s>|| 'rises briefly at the start, then decreases for the rest of "
            "training': its maximum lies in the first 10% of training, and it ends below its "
            "value at mid-training, which is below the maximum (worst seed)",
            f"{AD} E4; paper Fig. 3b",
            AllOf(
                {
                    "peak_at_fraction_of_training": AtMost(0.1),
                    "midpoint_over_peak": Below(1.0),
                    "end_over_midpoint": Below(1.0),
                }
            ),
        ),
        *(
            ClaimSpec(
                official_claim_id(name, step),
                f"at the official run's settings, seed {PAPER_LONG_RUN.base_seed}'s "
                f"{PROBE_LABELS[probe]} at step {step:,} is {rule.describe()} (the official run's "
                "value; tolerance from issue 18 item 5)",
                OFFICIAL_SOURCE,
                rule,
                only_at="paper",
            )
            for name, probe, step, rule in OFFICIAL_CLAIMS
        ),
    ]
)
# E4's windows: "within ~1k steps" is judged at step 1,500; the log-linear fit spans 1k-10k.
EXCESS_STEP = 1_500
LOG_FIT_WINDOW = (1_000, 10_000)


def rises_then_falls(steps: np.ndarray, value: np.ndarray) -> dict[str, np.ndarray]:
    """E4's "rises briefly at the start, then decreases" measured on `value`, (S, E) or (E,),
    at the evaluation steps (E,): per seed, where the maximum lies as a fraction of training,
    the mid-training value over the maximum and the final value over the mid-training one."""
    value = np.atleast_2d(value)
    midpoint = int(np.argmin(np.abs(steps - steps[-1] / 2)))
    return {
        "peak_at_fraction_of_training": steps[value.argmax(axis=1)] / steps[-1],
        "midpoint_over_peak": value[:, midpoint] / value.max(axis=1),
        "end_over_midpoint": value[:, -1] / value[:, midpoint],
    }


def is_official_run(cfg: BBRunConfig) -> bool:
    """Whether `cfg` trains the official run (whatever its length, chunking and evaluations)."""
    return all(getattr(cfg, f) == getattr(PAPER_LONG_RUN, f) for f in OFFICIAL_RUN_FIELDS)


def at_official_steps(bb: TrainedBB) -> dict[int, dict[str, float]]:
    """Seed 0's Attn_<s>, logit_<s> and ||W_O v_<s>|| at the evaluation nearest each official
    probe step up to the end of training: step -> {"eval_step": that evaluation, probe: value}."""
    steps = bb.result.eval_steps
    values = {}
    for step in OFFICIAL_DYNAMICS:
        if step <= steps[-1]:
            e = int(np.argmin(np.abs(steps - step)))
            probes_at = {k: float(bb.result.metrics[k][0, e, 0, 0]) for k in PROBE_LABELS}
            values[step] = {"eval_step": int(steps[e]), **probes_at}
    return values


def official_measured(bb: TrainedBB, ours: dict[int, dict[str, float]]) -> tuple[dict, dict]:
    """(claim id -> measured, claim id -> why skipped) of the official-reference claims."""
    measured, skipped = {}, {}
    for name, probe, step, _ in OFFICIAL_CLAIMS:
        claim_id = official_claim_id(name, step)
        if not is_official_run(bb.cfg):
            skipped[claim_id] = (
                "not the official run's settings (the paper preset's model, data, optimiser, "
                "seed and initial parameters); compared as an observation"
            )
        elif step not in ours or ours[step]["eval_step"] != step:
            skipped[claim_id] = f"no evaluation at step {step:,} (the run has {bb.cfg.steps:,})"
        else:
            measured[claim_id] = ours[step][probe]
    return measured, skipped


def measure(bb: TrainedBB) -> tuple[dict, dict, dict]:
    """(claim id -> measured value, claim id -> why it has no data, further numbers)."""
    to_previous, type_value_norms = final_head_probes(bb)
    sink_value = type_value_norms[:, bb.task.bos]
    other_values = np.delete(type_value_norms, bb.task.bos, axis=1)
    metrics, steps = bb.result.metrics, bb.result.eval_steps
    value_norm = metrics["value_norm_sink"][:, :, 0, 0]  # (S, E)
    attn = metrics["attn_sink"][:, :, 0, 0]
    logit = metrics["sink_logit"][:, :, 0, 0]
    at_excess = int(np.argmin(np.abs(steps - min(EXCESS_STEP, steps[-1]))))
    early = steps <= EXCESS_STEP
    backcopy = metrics["backcopy_excess"]
    correlation = [
        float(np.corrcoef(attn[s, early], backcopy[s, early])[0, 1]) for s in range(len(attn))
    ]
    window = (steps >= LOG_FIT_WINDOW[0]) & (steps <= LOG_FIT_WINDOW[1])
    skipped = {}
    if window.sum() < 3:  # at `ci`, or a run cut below 1k steps
        skipped["sink-logit-log-linear"] = "fewer than 3 evaluations in steps 1k-10k"
    measured = {
        "backcopy-excess": backcopy[:, at_excess],
        "bigram-excess": metrics["bigram_excess"][:, at_excess],
        "attention-sink": attn[:, -1],
        "active-head": to_previous,
        "value-drain-vs-tokens": sink_value / np.nanmin(other_values, axis=1),
        "attention-rises-as-backcopy-falls": correlation,
        "sink-logit-log-linear": {"x": np.log(steps[window]), "y": logit[0, window]},
        "value-norm-rises-then-falls": rises_then_falls(steps, value_norm),
    }
    details = {
        "value_norm_by_type_final": type_value_norms,
        "value_drain_ratio_to_median_token": sink_value / np.nanmedian(other_values, axis=1),
        "value_norm_sink_max": value_norm.max(axis=1),
    }
    if skipped:
        del measured["sink-logit-log-linear"]
    details["official_reference"] = at_official_steps(bb)
    official, official_skipped = official_measured(bb, details["official_reference"])
    return measured | official, skipped | official_skipped, details


def run(cfg: BBRunConfig, ctx: RunContext) -> Outcome:
    bb = train_bb(cfg, ctx, RUN_LABEL)
    measured, skipped, details = measure(bb)
    steps = bb.result.eval_steps
    summary = {
        "eval_steps": steps,
        "final": {
            k: bb.final_metric(k)
            for k in (
                "backcopy_excess",
                "bigram_excess",
                "bigram_excess_corrected",
                "attn_sink",
                "sink_logit",
                "value_norm_sink",
            )
        },
        **details,
        "train_wall_time_s": bb.result.wall_time,
        "resumed_from": bb.result.resumed_from,
    }
    observations = [
        Observation(
            "value-drain-vs-median-token",
            "final ||W_O v_<s>|| over the median token type's mean value norm, per seed",
            details["value_drain_ratio_to_median_token"],
        ),
        Observation("final-sink-logit", "final logit_<s>, per seed", bb.final_metric("sink_logit")),
    ]
    if not is_official_run(cfg):
        observations.append(
            Observation(
                "official-reference",
                "seed 0's Attn_<s>, logit_<s> and ||W_O v_<s>|| at the evaluations nearest the "
                "official run's probe steps; this run's settings are not the official ones",
                {"ours": details["official_reference"], "official": OFFICIAL_DYNAMICS},
            )
        )
    claims = judge(CLAIMS, measured, skipped)
    return Outcome(
        claims, _figures(bb, ctx, is_official_run(cfg)), list(cfg.seeds), summary, observations
    )


def training_plan(cfg: BBRunConfig) -> tuple[PlannedRun, ...]:
    """The one run of `run`: the 1-layer model of `cfg`."""
    return (bb_planned_run(cfg, RUN_LABEL),)


EXPERIMENT = Experiment(
    name="bb-dynamics",
    title="1-layer BB: active-dormant head, attention sink, value drain, dynamics (E1, E2, E4)",
    presets=PRESETS,
    run=run,
    claims=CLAIMS,
    training_plan=training_plan,
)
