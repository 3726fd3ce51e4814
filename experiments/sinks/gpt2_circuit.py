"""P1 (Ran-Milo et al.): the GPT-2 sink circuit, on a GPT-2-style toy trained here.

P1 explains GPT-2's attention sink on the first token by one circuit: the learned query bias
b_Q, times the first-layer MLP applied to position 0's embedding (EPE_0 = p_0 + MLP0(p_0)),
times a few key-projection coordinates. Its Table 1 (spec sinks_gpt2_p0.md §1(b), (d)) removes
each part and measures P1's BOS attention (mean attention of the second half of the queries on
token 0, over a middle band of layers). We train the spec §5 toy (pre-LN, learned absolute
positions, q/k/v biases, tanh-GELU, tied embeddings, a fixed `<s>` at index 0) on prose, code
and arithmetic, run the ten interventions on held-out inputs of each domain in one vmapped
pass, and report per-domain rows: mean ± SE, % of baseline and the change in cross-entropy.
With `--checkpoint DIR` the same analysis runs on a real GPT-2.

The claims are P1's Table 1, the same on the toy and on a checkpoint: the sink forms in the
band, the three controls keep it within P1's reported range, and all six of P1's orderings.
"""

import dataclasses

import matplotlib.pyplot as plt
import numpy as np

from experiments.framework.claims import (
    AllOf,
    Between,
    ClaimSpec,
    Observation,
    Separated,
    check_specs,
    judge,
)
from experiments.framework.experiment import Experiment, Outcome, RunContext
from experiments.framework.planning import PlannedRun
from experiments.sinks.text_common import (
    CI_TEXT_RUN,
    QUICK_TEXT_RUN,
    SINK_READING,
    SINK_RULE,
    SINK_SOURCE,
    SPEC,
    AnalysedTextRunConfig,
    TextRunConfig,
    domain_scores,
    load_corpus,
    table_rows,
    text_planned_run,
    text_run_settings,
    train_text_lm,
)
from sinkjax import plotting
from sinkjax.models.gpt2 import load_gpt2, load_gpt2_tokenizer
from sinkjax.sinks import circuit as sink_circuit
from sinkjax.sinks import metrics as sinks
from sinkjax.text.domains import TEXT_DOMAINS, decode


@dataclasses.dataclass(frozen=True)
class GPT2CircuitConfig(AnalysedTextRunConfig):
    """The toy's training run (the base fields) and P1's analysis settings."""

    # A Hugging Face GPT-2 checkpoint directory to analyse instead of training the toy
    # (`sinkjax run gpt2-circuit --checkpoint DIR`). Its inputs are GPT-2 BPE windows of the
    # same held-out prose, code and math, whitespace-normalised, without special tokens (P1).
    checkpoint: str | None = None


# The label of the toy's run, in `run` and in its plan.
RUN_LABEL = "toy-gpt2"


def _from(run: TextRunConfig, **changes) -> GPT2CircuitConfig:
    return GPT2CircuitConfig(**{**text_run_settings(run), **changes})


PRESETS = {
    "ci": _from(CI_TEXT_RUN, analysis_len=16, n_examples=6),
    "quick": _from(QUICK_TEXT_RUN),
    # There is no toy setting in P1 (it analyses the released GPT-2 small): a GPU-sized toy.
    "paper": _from(TextRunConfig()),
}

BASELINE = "a baseline"
CONTROLS = ("e swap PE (ctrl)", "f nullify BOS token (ctrl)", "j zero random W_K (ctrl)")
# P1 Table 1, "% of a (mid)", pooled over its 300 inputs (spec §1(d)).
P1_PERCENT = {
    "a baseline": 100.0,
    "b no query bias": 44.7,
    "c remove first PE": 3.0,
    "d swap EPE": 6.2,
    "e swap PE (ctrl)": 99.0,
    "f nullify BOS token (ctrl)": 99.7,
    "g no MLP": 50.3,
    "h no PE": 17.5,
    "i zero top-3 W_K": 65.2,
    "j zero random W_K (ctrl)": 100.1,
}
# The controls' bound: P1's largest deviation from the baseline among them (e: 99.0%, 1.0
# percentage point), on either side.
CONTROL_RANGE = (99.0, 101.0)
# P1's six orderings of Table 1 (pooled % of baseline): (claim id, lower, higher).
ORDERINGS = (
    ("remove-first-pe-breaks", "c remove first PE", "b no query bias"),
    ("swap-epe-breaks", "d swap EPE", "i zero top-3 W_K"),
    ("no-pe-breaks", "h no PE", "g no MLP"),
    ("query-bias-matters", "b no query bias", "a baseline"),
    ("mlp-matters", "g no MLP", "a baseline"),
    ("top-coords-matter", "i zero top-3 W_K", "j zero random W_K (ctrl)"),
)


def _ordering_spec(claim_id: str, low: str, high: str) -> ClaimSpec:
    return ClaimSpec(
        claim_id,
        f"P1 Table 1: {low} ({P1_PERCENT[low]:g}%) sinks less than {high} "
        f"({P1_PERCENT[high]:g}%): pooled BOS attention (mid band, % of baseline) of "
        f"'{low}' below that of '{high}'",
        f"{SPEC} §1(d) Table 1; paper P1 Table 1",
        Separated(low=(low,), high=(high,)),
    )


CLAIMS = check_specs(
    [
        ClaimSpec(
            "sink-forms",
            "P1 Table 1 (a): GPT-2 sinks on its first token in the middle band (BOS attention "
            f"0.563; 0.539-0.599 per dataset); {SINK_READING}, for the baseline on every domain",
            f"{SPEC} §1(d) Table 1 (a), {SINK_SOURCE}; paper P1 Table 1",
            SINK_RULE,
        ),
        ClaimSpec(
            "controls-intact",
            "P1 Table 1: the controls (e swap PE, f nullify the BOS token embedding, j zero 3 "
            "random W_K coordinates per layer) keep 99.0%, 99.7% and 100.1% of the baseline BOS "
            "attention; bound from those numbers: each control's pooled BOS attention within "
            "P1's largest deviation (1.0 percentage point) of the baseline, in "
            f"[{CONTROL_RANGE[0]:g}, {CONTROL_RANGE[1]:g}]% of it",
            f"{SPEC} §1(d) Table 1 (e, f, j); paper P1 Table 1",
            AllOf({name: Between(*CONTROL_RANGE) for name in CONTROLS}),
        ),
        *(_ordering_spec(*ordering) for ordering in ORDERINGS),
    ]
)
# Examples per compiled call on a real checkpoint (GPT-2 small: 25 x 40 x 50257 logits).
CHECKPOINT_CHUNK = 25


def checkpoint_inputs(
    tokenizer, corpus, n_examples: int, length: int, seed: int = 42
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets), both (D, n, T) GPT-2 token ids: `n_examples` windows of `length`
    tokens per domain at distinct random offsets of its held-out text, after P1's
    normalisation `" ".join(text.split())`; targets are the inputs shifted by one token."""
    rng = np.random.default_rng(seed)
    inputs, targets = [], []
    for domain in TEXT_DOMAINS:
        text = " ".join(decode(corpus.heldout[domain]).split())
        ids = np.asarray(tokenizer.encode(text).ids)
        if len(ids) < length + n_examples:
            raise ValueError(
                f"the held-out {domain} text has {len(ids)} GPT-2 tokens, too few for "
                f"{n_examples} windows of {length}; lower n_examples or analysis_len"
            )
        starts = rng.choice(len(ids) - length, n_examples, replace=False)
        windows = ids[starts[:, None] + np.arange(length + 1)]
        inputs.append(windows[:, :-1])
        targets.append(windows[:, 1:])
    return np.stack(inputs), np.stack(targets)


def pooled_percent(rows: dict) -> dict[str, float]:
    """P1's "% of a" per intervention: 100 x its BOS attention pooled over the domains (equal
    examples per domain, so the mean of the (D,) domain means) over the baseline's."""
    baseline = float(rows[BASELINE]["bos_mean"].mean())
    return {name: 100 * float(row["bos_mean"].mean()) / baseline for name, row in rows.items()}


def measure(rows: dict) -> dict:
    """Claim id -> measured value, from `table_rows` (per intervention, (D,) arrays)."""
    percent = pooled_percent(rows)
    return {
        "sink-forms": rows[BASELINE]["bos_mean"],
        "controls-intact": {name: percent[name] for name in CONTROLS},
        **{claim_id: {low: percent[low], high: percent[high]} for claim_id, low, high in ORDERINGS},
    }


def observations(rows: dict, null: float) -> list[Observation]:
    """What the run shows beyond P1's Table 1: per-domain rows, the null ratio, ΔCE."""
    return [
        Observation(
            "baseline-over-uniform-null",
            "baseline BOS attention over the uniform-attention null at the analysis length, "
            "per domain (prose, code, math)",
            rows[BASELINE]["bos_mean"] / null,
        ),
        Observation(
            "percent-of-baseline-by-domain",
            "BOS attention as % of the baseline, per intervention and domain (prose, code, "
            "math); P1's claims are on the pooled values",
            {name: row["percent_of_baseline"] for name, row in rows.items()},
        ),
        Observation(
            "delta-ce",
            "change in next-token cross-entropy (nats) under each intervention, per domain "
            "(M13; not in P1's Table 1)",
            {name: row["delta_ce"] for name, row in rows.items()},
        ),
    ]


def _figure(cfg, rows, top, model, null: float, ctx: RunContext) -> str:
    fig, axes = plt.subplots(3, 1, figsize=(12, 12))
    names = [name.split()[0] for name in sink_circuit.TABLE1]
    plotting.bar_chart(
        axes[0],
        names,
        {d: [rows[n]["percent_of_baseline"][i] for n in rows] for i, d in enumerate(TEXT_DOMAINS)},
        errors={
            d: [100 * rows[n]["bos_se"][i] / rows[BASELINE]["bos_mean"][i] for n in rows]
            for i, d in enumerate(TEXT_DOMAINS)
        },
        hlines={"uniform null": 100 * null / float(rows[BASELINE]["bos_mean"].mean())},
        ylabel="BOS attention, % of baseline",
        fmt="%.0f",
    )
    axes[0].set_title(
        "P1 Table 1 on the toy: " + ", ".join(sink_circuit.TABLE1) + "\n"
        f"baseline BOS attention {rows[BASELINE]['bos_mean'].round(3).tolist()} "
        f"(prose, code, math), T = {cfg.analysis_len}",
        fontsize=8,
    )
    plotting.bar_chart(
        axes[1],
        names,
        {d: [rows[n]["delta_ce"][i] for n in rows] for i, d in enumerate(TEXT_DOMAINS)},
        ylabel="ΔCE vs baseline (nats)",
    )
    epe = np.asarray(sink_circuit.effective_positions(model, cfg.analysis_len))[0]
    axes[2].plot(epe, lw=0.8)
    axes[2].scatter(top, epe[top], color="red", zorder=3, label="top-3 |EPE_0|")
    axes[2].set_xlabel("coordinate d")
    axes[2].set_ylabel("EPE_0[d]")
    axes[2].legend(fontsize=8)
    axes[2].set_title("effective positional embedding of position 0 (M7)", fontsize=9)
    fig.tight_layout()
    return ctx.save_figure(fig, "table1")


def run(cfg: GPT2CircuitConfig, ctx: RunContext) -> Outcome:
    corpus = load_corpus(ctx)
    if cfg.checkpoint is not None:
        _, model = load_gpt2(cfg.checkpoint)
        tokenizer = load_gpt2_tokenizer(cfg.checkpoint)
        inputs, targets = checkpoint_inputs(tokenizer, corpus, cfg.n_examples, cfg.analysis_len)
        chunk = CHECKPOINT_CHUNK
        extra = {"checkpoint": cfg.checkpoint}
    else:
        trained = train_text_lm(cfg.training_run(), ctx, RUN_LABEL)
        model = trained.model()
        batch = cfg.analysis_batch(corpus)
        inputs, targets, chunk = np.asarray(batch.inputs), np.asarray(batch.targets), None
        extra = {
            "final_ce": trained.result.metrics["ce"][:, -1],
            "train_wall_time_s": trained.result.wall_time,
        }
    interventions, top, random = sink_circuit.table1_interventions(model, cfg.analysis_len)
    scores = domain_scores(model, inputs, targets, interventions, chunk)
    rows = table_rows(scores)
    null = float(sinks.uniform_bos_attention(cfg.analysis_len))
    claims = judge(CLAIMS, measure(rows))
    figure = _figure(cfg, rows, top, model, null, ctx)
    summary = {
        "domains": TEXT_DOMAINS,
        "table1": rows,
        "pooled_percent_of_baseline": pooled_percent(rows),
        "uniform_null": null,
        "top_key_coordinates": top,
        "random_key_coordinates": random,
        **extra,
    }
    seeds = [] if cfg.checkpoint else list(cfg.seeds)
    return Outcome(claims, [figure], seeds, summary, observations(rows, null))


def training_plan(cfg: GPT2CircuitConfig) -> tuple[PlannedRun, ...]:
    """The toy's run, or none when a `checkpoint` is analysed instead."""
    return () if cfg.checkpoint is not None else (text_planned_run(cfg.training_run(), RUN_LABEL),)


EXPERIMENT = Experiment(
    name="gpt2-circuit",
    title="P1's GPT-2 sink circuit on a trained GPT-2-style toy: Table 1 interventions by domain",
    presets=PRESETS,
    run=run,
    claims=CLAIMS,
    training_plan=training_plan,
)
