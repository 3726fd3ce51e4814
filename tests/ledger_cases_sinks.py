"""Synthetic measurements for the claims of the sinks experiments (sinks_gpt2_p0.md).

For each experiment: `pass`, one measured value per claim as the papers predict it, and
`fail`, one per claim that contradicts them (see ledger_cases_bb.py). Values are written from
the spec's numbers (P1 Table 1, P2 §2, P3 §3(d)), not from any run.
"""

# P1 Table 1, pooled "% of a (mid)".
P1_PERCENT = {
    "a baseline": 100.0,
    "b no query bias": 44.7,
    "c remove first PE": 3.0,
    "d swap EPE": 6.2,
    "g no MLP": 50.3,
    "h no PE": 17.5,
    "i zero top-3 W_K": 65.2,
    "j zero random W_K (ctrl)": 100.1,
}


def _order(low: str, high: str, **changes: float) -> dict[str, float]:
    return {name: changes.get(name, P1_PERCENT[name]) for name in (low, high)}


# GPT-2 small's BOS attention per dataset (SST-2, GSM8K, HumanEval), a sink.
P1_BASELINE = [0.599, 0.552, 0.539]
# No sink: the uniform-attention null at T = 40.
NO_SINK = [0.034, 0.034, 0.034]

CASES = {
    "gpt2-circuit": {
        "pass": {
            "sink-forms": P1_BASELINE,
            "controls-intact": {
                "e swap PE (ctrl)": 99.0,
                "f nullify BOS token (ctrl)": 99.7,
                "j zero random W_K (ctrl)": 100.1,
            },
            "remove-first-pe-breaks": _order("c remove first PE", "b no query bias"),
            "swap-epe-breaks": _order("d swap EPE", "i zero top-3 W_K"),
            "no-pe-breaks": _order("h no PE", "g no MLP"),
            "query-bias-matters": _order("b no query bias", "a baseline"),
            "mlp-matters": _order("g no MLP", "a baseline"),
            "top-coords-matter": _order("i zero top-3 W_K", "j zero random W_K (ctrl)"),
        },
        "fail": {
            "sink-forms": NO_SINK,
            # A control that moves the sink by 9.9%, far outside P1's 99.0-100.1%.
            "controls-intact": {
                "e swap PE (ctrl)": 90.1,
                "f nullify BOS token (ctrl)": 99.7,
                "j zero random W_K (ctrl)": 100.1,
            },
            "remove-first-pe-breaks": _order(
                "c remove first PE", "b no query bias", **{"c remove first PE": 60.0}
            ),
            "swap-epe-breaks": _order("d swap EPE", "i zero top-3 W_K", **{"d swap EPE": 92.0}),
            "no-pe-breaks": _order("h no PE", "g no MLP", **{"h no PE": 70.0}),
            "query-bias-matters": _order(
                "b no query bias", "a baseline", **{"b no query bias": 118.0}
            ),
            "mlp-matters": _order("g no MLP", "a baseline", **{"g no MLP": 104.0}),
            "top-coords-matter": _order(
                "i zero top-3 W_K", "j zero random W_K (ctrl)", **{"i zero top-3 W_K": 101.0}
            ),
        },
    },
    "sink-dynamics": {
        "pass": {
            "sink-forms": [0.56],
            "sink-early": {"band_bos_attention": [0.56], "onset_minus_convergence_step": [-800]},
        },
        "fail": {
            "sink-forms": [0.05],
            # The sink forms only after the loss has converged.
            "sink-early": {"band_bos_attention": [0.56], "onset_minus_convergence_step": [400]},
        },
    },
    "p0-circuit": {
        "pass": {
            "p0-recognised": 0.99,
            "p0-fixed-direction": 0.97,
            "p0-unmixed-output": 1.5,
            "deep-sink-survives-bos-removal": {"with_bos": 0.5, "without_over_with": 0.97},
        },
        "fail": {
            "p0-recognised": 0.6,
            "p0-fixed-direction": 0.2,
            "p0-unmixed-output": 0.8,
            # Mistral-7B's collapse (87% -> 2%), what P2 does not predict for LLaMA-like models.
            "deep-sink-survives-bos-removal": {"with_bos": 0.5, "without_over_with": 0.02},
        },
    },
    "sink-dispensability": {
        "pass": {
            **{
                f"sink-forms-{v}": P1_BASELINE
                for v in ("gpt2", "no-query-bias", "rope", "alibi", "nope")
            },
            "circuit-dispensable-no-query-bias": {
                "a baseline": P1_BASELINE,
                "c remove first PE": [0.55, 0.5, 0.52],
            },
            **{
                f"circuit-dispensable-{v}": {
                    "a baseline": P1_BASELINE,
                    "b no query bias": [0.5, 0.48, 0.51],
                }
                for v in ("rope", "alibi", "nope")
            },
            # P3: sigmoid without normalisation, Sink 0.44%.
            "no-token0-sink-sigmoid": [0.0044],
            # P3: K bias (v* = 0), Sink* 73.34% on the slot, Sink_1 0.00%.
            "sink-on-slot-key-bias": {"slot": [0.73, 0.74, 0.72], "token0": [0.0, 0.0, 0.0]},
        },
        "fail": {
            **{
                f"sink-forms-{v}": NO_SINK
                for v in ("gpt2", "no-query-bias", "rope", "alibi", "nope")
            },
            # The breaker removes the sink as (c) does in GPT-2 (3.0% of 0.563).
            "circuit-dispensable-no-query-bias": {
                "a baseline": P1_BASELINE,
                "c remove first PE": [0.017, 0.017, 0.017],
            },
            **{
                f"circuit-dispensable-{v}": {
                    "a baseline": P1_BASELINE,
                    "b no query bias": [0.04, 0.05, 0.03],
                }
                for v in ("rope", "alibi", "nope")
            },
            # Softmax's default Sink 18.18%.
            "no-token0-sink-sigmoid": [0.1818],
            "sink-on-slot-key-bias": {"slot": [0.0, 0.0, 0.0], "token0": [0.56, 0.55, 0.54]},
        },
    },
}
