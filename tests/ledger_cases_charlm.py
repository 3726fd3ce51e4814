"""Synthetic measurements for the claims of the char-LM stand-in (active_dormant.md, Sec. 3).

For each experiment: `pass`, one measured value per claim as the paper predicts it, and
`fail`, one per claim that contradicts the paper. `tests/test_ledger.py` judges them; no
training runs. Values are written from the claims' words, not from any run.
"""

CASES = {
    "char-lm-dynamics": {
        "pass": {
            # Attn_<s> of the 6 heads of layers >= 1: 4 of 6 above eps = 0.3.
            "sink-on-bos-in-most-heads": [0.85, 0.62, 0.41, 0.93, 0.12, 0.07],
            # A head that sits on <s> on prose and works on code; zeroing it costs code only.
            "domain-active-dormant-head": {
                "attn_dormant_domain": [0.91],
                "attn_active_domain": [0.08],
                "ablation_delta_ce": {"dormant_domain": [0.004], "active_domain": [0.15]},
            },
            # ||W_O v_<s>|| over the smallest other value norm: 4 of 6 heads below 0.1.
            "value-drain-in-most-heads": [0.02, 0.05, 0.4, 0.08, 0.03, 1.1],
            # ||Res_0|| over the median other residual norm, largest over blocks, per seed.
            "residual-peak-on-bos": [35.0, 18.0],
        },
        "fail": {
            # Half the heads sink: not more than half.
            "sink-on-bos-in-most-heads": [0.85, 0.62, 0.41, 0.2, 0.12, 0.07],
            # Dormant and active as predicted, but zeroing the head costs both domains alike.
            "domain-active-dormant-head": {
                "attn_dormant_domain": [0.91],
                "attn_active_domain": [0.08],
                "ablation_delta_ce": {"dormant_domain": [0.05], "active_domain": [0.15]},
            },
            # The value of <s> is small only in 2 of 6 heads.
            "value-drain-in-most-heads": [0.02, 0.5, 0.4, 0.8, 0.03, 1.1],
            # A mild peak (1.5x), not a much larger norm, in one seed.
            "residual-peak-on-bos": [35.0, 1.5],
        },
    },
}
