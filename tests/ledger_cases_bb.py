"""Synthetic measurements for the claims of the Bigram-Backcopy experiments (active_dormant.md).

For each experiment: `pass`, one measured value per claim as the paper predicts it, and
`fail`, one per claim that contradicts the paper. `tests/test_ledger.py` judges them; no
training runs. Values are written from the spec's words, not from any run.
"""

CASES = {
    "bb-dynamics": {
        "pass": {
            "backcopy-excess": [0.001, 0.002],
            "bigram-excess": [0.011],
            "attention-sink": [0.81, 0.78],
            "active-head": [0.97],
            "value-drain-vs-tokens": [0.05],
            "attention-rises-as-backcopy-falls": [-0.9, -0.8],
            # The official run's logit_<s>: 9.7 at 1k, 11.6 at 2k, 16.8 at 10k steps.
            "sink-logit-log-linear": {
                "x": [6.91, 7.60, 8.52, 9.21],
                "y": [9.7, 11.6, 14.5, 16.8],
            },
            "value-norm-rises-then-falls": {
                "peak_at_fraction_of_training": [0.02],
                "midpoint_over_peak": [0.3],
                "end_over_midpoint": [0.6],
            },
        },
        "fail": {
            "backcopy-excess": [0.001, 0.3],
            "bigram-excess": [0.2],
            "attention-sink": [0.70],
            "active-head": [0.6],
            "value-drain-vs-tokens": [0.85],
            "attention-rises-as-backcopy-falls": [0.2],
            "sink-logit-log-linear": {"x": [6.91, 7.60, 8.52, 9.21], "y": [5.5, 5.6, 5.4, 5.3]},
            "value-norm-rises-then-falls": {
                "peak_at_fraction_of_training": [0.02],
                "midpoint_over_peak": [0.3],
                "end_over_midpoint": [1.2],
            },
        },
    },
}
