"""Synthetic measurements for the claims of the bb_deep experiments (see ledger_cases_bb.py).

The multi-layer BB experiments: residual-peaks (E6), peak-intervention (E7),
optimizer-ablation (E8) and layerwise-maps (E9). Values are written from the spec's words and
the figure values it quotes (Fig. 10: 2xTF+MLP ~106, 2xTF ~14.7; B.1: ||Res_<s>|| ~24.3 at
step 0), not from any run.
"""

CASES = {
    "residual-peaks": {
        "pass": {
            # Fig. 10: only 3xTF and 2xTF+MLP are large.
            "peak-needs-depth": {
                "3xTF": [120.0, 130.0],
                "2xTF+MLP": [106.0, 98.0],
                "2xTF": [14.7, 12.0],
                "MLP+TF+MLP": [9.0, 11.0],
                "Attn+TF+MLP": [-0.5, 3.0],
            },
        },
        "fail": {
            # 2xTF grows a peak of the same order as 2xTF+MLP's.
            "peak-needs-depth": {
                "3xTF": [120.0, 130.0],
                "2xTF+MLP": [106.0, 98.0],
                "2xTF": [60.0, 55.0],
                "MLP+TF+MLP": [9.0, 11.0],
                "Attn+TF+MLP": [-0.5, 3.0],
            },
        },
    },
    "peak-intervention": {
        "pass": {
            "peak-collapses": [0.01, -0.02],
            "logit-collapses": [0.03, -0.1],
            "value-norm-restored": {
                "zeroed_over_trained": [8.0, 6.5],
                "zeroed_over_other_positions": [1.0, 0.9],
            },
        },
        "fail": {
            # Half of the peak is left.
            "peak-collapses": [0.01, 0.5],
            # The logit only falls by a third.
            "logit-collapses": [0.67],
            # The value norm of <s> rises but stays drained, a fifth of the other tokens'.
            "value-norm-restored": {
                "zeroed_over_trained": [1.5, 1.4],
                "zeroed_over_other_positions": [0.2, 0.25],
            },
        },
    },
    "optimizer-ablation": {
        "pass": {
            # From ~24.3 at step 0 (B.1), growing on a line to ~4x by 10k steps.
            "adam-linear-growth": {
                "x": [0, 2500, 5000, 7500, 10000],
                "y": [24.3, 40.0, 62.0, 80.0, 101.0],
            },
            "adam-growth-factor": [4.2, 3.6],
            # Flat, then slowly decreasing.
            "sgd-flat": {"largest_ratio_to_initial": [1.05], "smallest_ratio_to_initial": [0.8]},
            "relu-flat": {"largest_ratio_to_initial": [1.1], "smallest_ratio_to_initial": [0.95]},
            "sgd-sinks-persist": [0.9, 0.85],
        },
        "fail": {
            # A fast rise then a plateau: not a line (R^2 0.61).
            "adam-linear-growth": {
                "x": [0, 2500, 5000, 7500, 10000],
                "y": [24.3, 90.0, 100.0, 101.0, 101.0],
            },
            "adam-growth-factor": [4.2, 1.3],
            # SGD grows the peak several-fold.
            "sgd-flat": {"largest_ratio_to_initial": [3.5], "smallest_ratio_to_initial": [1.0]},
            "relu-flat": {"largest_ratio_to_initial": [4.0], "smallest_ratio_to_initial": [1.0]},
            # No layer keeps a sink under SGD.
            "sgd-sinks-persist": [0.9, 0.3],
        },
    },
    "layerwise-maps": {
        "pass": {
            "residual-huge-layers-0-1": {"layer 0": [5.5, 6.0], "layer 1": [4.0, 3.5]},
            "residual-matches-last-layer": [1.1, 0.9],
        },
        "fail": {
            # Layer 1's residual of <s> is like the other tokens'.
            "residual-huge-layers-0-1": {"layer 0": [5.5, 6.0], "layer 1": [1.1, 3.5]},
            # <s> keeps its peak to the last layer.
            "residual-matches-last-layer": [1.1, 4.5],
        },
    },
}
