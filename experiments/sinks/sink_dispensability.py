"""P1's "every part is dispensable" claim and Gu's attention variants, on trained toys.

P1 explains GPT-2's sink by the query bias b_Q, the layer-0 MLP on position 0's embedding and a
few key coordinates, and says that models without one of these parts still sink, through
another circuit. Gu et al. (P3) find that the sink forms under every position code with
softmax attention, but leaves token 0 when attention need not sum to one (sigmoid without
normalisation) or has a learnable key-bias slot to park its weight on.

We train the GPT-2-style toy of `gpt2-circuit` in each variant of
`sinkjax.sinks.toy_lm.ARCHITECTURES` and, on held-out prose, code and math, measure the sink
(P1's BOS attention, M4; Gu's proxy rows for sigmoid) and the effect of the Table 1
interventions that remove GPT-2's sink (`sink_circuit.circuit_breakers`: b no query bias,
c remove first PE, g no MLP, h no PE), wherever the variant has the part they edit.

The claims are the papers' predictions for every variant, whatever a run shows: every softmax
variant sinks on token 0 (the sink of `gpt2-circuit`); in the variants that lack part of the
GPT-2 circuit, the breakers spec §5 names ((b), (c); (i) is not scored here) leave the sink in
place; sigmoid attention without normalisation has no sink (Gu's rate); the key-bias slot
takes the sink off token 0. The `ci` preset trains three variants and skips the claims of the
others.
"""

import dataclasses

import matplotlib.pyplot as plt
import numpy as np

from experiments.framework.claims import (
    AllOf,
    Below,
    ClaimSpec,
    Observation,
    Separated,
    check_specs,
    judge,
)
from experiments.framework.experiment import Experiment, Outcome, RunContext
from experiments.framework.planning import PlannedRun
from experiments.sinks.gpt2_circuit import BASELINE, pooled_percent
from experiments.sinks.text_common import (
    CI_TEXT_RUN,
    QUICK_TEXT_RUN,
    QUICK_VARIANT_STEPS,
    SINK_READING,
    SINK_RULE,
    SINK_SOURCE,
    SPEC,
    AnalysedTextRunConfig,
    TextRunConfig,
    domain_scores,
    table_rows,
    text_planned_run,
    text_run_settings,
    train_text_lm,
)
from sinkjax import plotting
from sinkjax.sinks import circuit as sink_circuit
from sinkjax.sinks import metrics as sinks
from sinkjax.sinks.toy_lm import ARCHITECTURES, SINK_EPS
from sinkjax.text.domains import TEXT_DOMAINS

# Variants whose attention must sum to one over the tokens: the sink should stay on token 0.
SOFTMAX_VARIANTS = ("gpt2", "no-query-bias", "rope", "alibi", "nope")
# Variants that lack part of P1's circuit, and the breaker of spec §5's "(b)/(c)/(i) stop
# working" that applies to each ((c) needs learned positions, (b) a query bias).
DISPENSABLE_BREAKER = {
    "no-query-bias": "c remove first PE",
    "rope": "b no query bias",
    "alibi": "b no query bias",
    "nope": "b no query bias",
}


@dataclasses.dataclass(frozen=True)
class SinkDispensabilityConfig(AnalysedTextRunConfig):
    """The run of every variant (the base fields, `architecture` set per variant) and the
    analysis, as in `gpt2-circuit`."""

    variants: tuple[str, ...] = tuple(ARCHITECTURES)

    def __post_init__(self):
        super().__post_init__()
        unknown = set(self.variants) - set(ARCHITECTURES)
        if unknown or not self.variants:
            raise ValueError(
                f"variants must be a non-empty subset of {', '.join(ARCHITECTURES)}; "
                f"unknown: {sorted(unknown)}"
            )


def _from(run: TextRunConfig, **changes) -> SinkDispensabilityConfig:
    return SinkDispensabilityConfig(**{**text_run_settings(run), **changes})


PRESETS = {
    "ci": _from(
        CI_TEXT_RUN, variants=("gpt2", "rope", "key-bias-slot"), analysis_len=16, n_examples=6
    ),
    "quick": _from(QUICK_TEXT_RUN, steps=QUICK_VARIANT_STEPS),
    "paper": _from(TextRunConfig()),
}

DISPENSABLE_SOURCE = f"{SPEC} §1(c), §5 ('components dispensable' row), {SINK_SOURCE}"
CLAIMS = check_specs(
    [
        *(
            ClaimSpec(
                f"sink-forms-{variant}",
                f"P1/P3: the {variant} toy sinks on token 0 (softmax attention sinks with or "
                f"without a query bias, under every position code); {SINK_READING}, baseline, "
                "every domain",
                f"{DISPENSABLE_SOURCE}, §3(d) PE sweep; paper P1 abstract, P3 PE table",
                SINK_RULE,
            )
            for variant in SOFTMAX_VARIANTS
        ),
        *(
            ClaimSpec(
                f"circuit-dispensable-{variant}",
                f"P1 (spec §5): the {variant} toy sinks through another circuit, so the GPT-2 "
                f"breakers 'stop working': it sinks, and after '{breaker}' it still sinks "
                f"({SINK_READING}), every domain",
                f"{DISPENSABLE_SOURCE}; paper P1 abstract",
                AllOf({BASELINE: SINK_RULE, breaker: SINK_RULE}),
            )
            for variant, breaker in DISPENSABLE_BREAKER.items()
        ),
        ClaimSpec(
            "no-token0-sink-sigmoid",
            "P3: sigmoid attention without normalisation has no sink (Sink 0.44% on proxy "
            "maps; 'stays below 1% for every LR and wd tested'): Gu's sink rate Sink_0 (M3: "
            f"eps = {SINK_EPS:g}, every layer and head, proxy maps, held-out windows of the "
            "training length) below 0.01 at the end of training, every seed",
            f"{SPEC} §3(d) attention operations, M3; paper P3 Table (attention operations)",
            Below(0.01),
        ),
        ClaimSpec(
            "sink-on-slot-key-bias",
            "P3: with a learnable key bias (v* = 0) the sink leaves token 0 for the slot "
            "(Sink* 73.34% on the slot, Sink_1 0.00%; spec §5: 'expect ... K-bias to move the "
            "sink off token 0'): the smallest weight of the late queries on the slot (P1 band) "
            "over the domains exceeds the largest weight on token 0",
            f"{SPEC} §3(d) attention biases, §5 (Gu training sweeps row); paper P3 Table "
            "(attention biases)",
            Separated(low=("token0",), high=("slot",)),
        ),
    ]
)


def variant_run(cfg: SinkDispensabilityConfig, variant: str) -> tuple[str, TextRunConfig]:
    """The label and training run of `variant`: the config's run with that architecture."""
    return f"toy-{variant}", dataclasses.replace(cfg.training_run(), architecture=variant)


def variant_table(cfg: SinkDispensabilityConfig, variant: str, ctx: RunContext) -> dict:
    """Train `variant` and score its applicable circuit breakers on held-out inputs.

    Returns:
        `rows` (`table_rows`: per breaker, (D,) BOS attention mean/SE, % of baseline, ΔCE),
        `slot` (D,) the baseline's mean weight on the extra key slot, `final_ce` (D,), and
        `sink_rate` (S,) Gu's sink rate (M3, mean over layers) at the last checkpoint.
    """
    label, run = variant_run(cfg, variant)
    trained = train_text_lm(run, ctx, label)
    model = trained.model()
    batch = cfg.analysis_batch(trained.corpus)
    breakers = sink_circuit.circuit_breakers(model, cfg.analysis_len)
    scores = domain_scores(model, np.asarray(batch.inputs), np.asarray(batch.targets), breakers)
    return {
        "rows": table_rows(scores),
        "slot": scores["slot"][0].mean(-1),
        "final_ce": trained.result.metrics["ce"][0, -1],
        "sink_rate": np.asarray(trained.result.metrics["sink_rate"])[:, -1].mean(-1),
    }


def measure(tables: dict) -> tuple[dict, dict]:
    """(claim id -> measured value, claim id -> why it has no data) from `variant_table`s."""
    measured = {}
    for variant in SOFTMAX_VARIANTS:
        if variant in tables:
            measured[f"sink-forms-{variant}"] = tables[variant]["rows"][BASELINE]["bos_mean"]
    for variant, breaker in DISPENSABLE_BREAKER.items():
        if variant in tables:
            rows = tables[variant]["rows"]
            measured[f"circuit-dispensable-{variant}"] = {
                name: rows[name]["bos_mean"] for name in (BASELINE, breaker)
            }
    if "sigmoid" in tables:
        measured["no-token0-sink-sigmoid"] = tables["sigmoid"]["sink_rate"]
    if "key-bias-slot" in tables:
        table = tables["key-bias-slot"]
        measured["sink-on-slot-key-bias"] = {
            "slot": table["slot"],
            "token0": table["rows"][BASELINE]["bos_mean"],
        }
    skipped = {
        spec.id: f"the variants run here are {', '.join(tables)}"
        for spec in CLAIMS
        if spec.id not in measured
    }
    return measured, skipped


def observations(tables: dict, null: float) -> list[Observation]:
    """Per variant: the sink over the null, Gu's rate, the breakers' effect, the slot's weight."""
    return [
        Observation(
            "baseline-over-uniform-null",
            "baseline BOS attention over the uniform null, per variant and domain",
            {v: t["rows"][BASELINE]["bos_mean"] / null for v, t in tables.items()},
        ),
        Observation(
            "sink-rate",
            f"Gu's sink rate (M3, eps = {SINK_EPS:g}, mean over layers) at the last checkpoint, "
            "per variant and seed",
            {v: t["sink_rate"] for v, t in tables.items()},
        ),
        Observation(
            "breakers-percent-of-baseline",
            "pooled BOS attention under every applicable breaker (b, c, g, h) as % of the "
            "baseline, per variant",
            {v: pooled_percent(t["rows"]) for v, t in tables.items()},
        ),
        Observation(
            "slot-weight",
            "weight of the late queries on the extra key slot (P1 band), per domain, for the "
            "variants that have one",
            {v: t["slot"] for v, t in tables.items() if t["slot"].any()},
        ),
    ]


def _figure(cfg, tables: dict, null: float, ctx: RunContext) -> str:
    fig, axes = plt.subplots(2, 1, figsize=(13, 9))
    variants = list(tables)
    plotting.bar_chart(
        axes[0],
        variants,
        {
            d: [tables[v]["rows"][BASELINE]["bos_mean"][i] for v in variants]
            for i, d in enumerate(TEXT_DOMAINS)
        },
        hlines={"uniform null": null, "sink threshold": SINK_RULE.bound},
        ylabel="BOS attention (M4)",
        fmt="%.3f",
    )
    slots = [v for v in variants if tables[v]["slot"].any()]
    for v in slots:
        x = variants.index(v)
        axes[0].scatter([x], [tables[v]["slot"].mean()], marker="*", s=150, color="black")
    axes[0].set_title(
        f"baseline sink per variant, T = {cfg.analysis_len} (star: weight on the key-bias slot)",
        fontsize=10,
    )
    breakers = [n for n in sink_circuit.TABLE1 if any(n in tables[v]["rows"] for v in variants)]
    breakers = [n for n in breakers if n != BASELINE]
    plotting.bar_chart(
        axes[1],
        variants,
        {
            name: [
                tables[v]["rows"][name]["bos_mean"].mean() if name in tables[v]["rows"] else np.nan
                for v in variants
            ]
            for name in breakers
        },
        hlines={"uniform null": null, "sink threshold": SINK_RULE.bound},
        ylabel="BOS attention (M4) under the breaker, mean over domains",
        fmt="%.3f",
    )
    axes[1].set_title("P1's circuit breakers, where the variant has the part", fontsize=10)
    fig.tight_layout()
    return ctx.save_figure(fig, "dispensability")


def run(cfg: SinkDispensabilityConfig, ctx: RunContext) -> Outcome:
    tables = {variant: variant_table(cfg, variant, ctx) for variant in cfg.variants}
    null = float(sinks.uniform_bos_attention(cfg.analysis_len))
    measured, skipped = measure(tables)
    figure = _figure(cfg, tables, null, ctx)
    summary = {"domains": TEXT_DOMAINS, "variants": tables, "uniform_null": null}
    claims = judge(CLAIMS, measured, skipped)
    return Outcome(claims, [figure], list(cfg.seeds), summary, observations(tables, null))


def training_plan(cfg: SinkDispensabilityConfig) -> tuple[PlannedRun, ...]:
    """One run per variant of `cfg.variants`, in that order."""
    runs = (variant_run(cfg, variant) for variant in cfg.variants)
    return tuple(text_planned_run(run, label) for label, run in runs)


EXPERIMENT = Experiment(
    name="sink-dispensability",
    title="P1's dispensable circuit and P3's attention variants: which toys sink, and where",
    presets=PRESETS,
    run=run,
    claims=CLAIMS,
    training_plan=training_plan,
)
