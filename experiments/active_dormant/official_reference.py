"""The official Active-Dormant code's saved dynamics of its 1-layer BB run (issue 18).

`GuoTianYu2000/Active-Dormant-Attention`, `BBM/`: the 1-layer, 1-head model (d = N = 256,
B = 512, AdamW 3e-4, betas (0.9, 0.99), wd 1e-4, seed 42, float32 on a GPU) probed with the
definitions of spec C (the same as `sinkjax.probes`). Numbers read from its saved dynamics, as
quoted in issue 18; `bb-dynamics` at the `paper` preset evaluates exactly these steps.
"""

OFFICIAL_SOURCE = (
    "active_dormant.md F (the official code, ground truth for settings) and B.1 (seed 42); its "
    "saved 1-layer dynamics (BBM/, float32) as quoted in issue 18"
)
# step -> Attn_<s>, logit_<s>, ||W_O v_<s>|| of the official run.
OFFICIAL_DYNAMICS: dict[int, dict[str, float]] = {
    200: {"attn_sink": 0.22, "sink_logit": 0.89, "value_norm_sink": 8.74},
    400: {"attn_sink": 0.63, "sink_logit": 4.7, "value_norm_sink": 5.03},
    1_000: {"attn_sink": 0.78, "sink_logit": 9.7, "value_norm_sink": 3.51},
    2_000: {"attn_sink": 0.80, "sink_logit": 11.6, "value_norm_sink": 2.65},
    10_000: {"attn_sink": 0.81, "sink_logit": 16.8, "value_norm_sink": 1.42},
}
OFFICIAL_PROBE_STEPS = tuple(OFFICIAL_DYNAMICS)
