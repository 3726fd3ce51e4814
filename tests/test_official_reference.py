"""bb-dynamics' comparison with the official code's saved 1-layer dynamics (issue 18 item 5)."""

import dataclasses
import types

from experiments import bb_dynamics
from experiments.bb_common import PAPER_LONG_RUN
from experiments.official_reference import OFFICIAL_DYNAMICS, OFFICIAL_PROBE_STEPS
from experiments.relu_attention import PRESETS as RELU_PRESETS
from sinkjax.train import eval_schedule

PAPER = bb_dynamics.PRESETS["paper"]


def ours_at(steps):
    """Fake seed-0 probes at the given official steps, evaluated exactly."""
    return {
        step: {"eval_step": step, "attn_sink": 0.5, "sink_logit": 4.0, "value_norm_sink": 3.0}
        for step in steps
    }


def test_the_paper_preset_is_the_official_run_and_evaluates_its_probe_steps():
    assert bb_dynamics.is_official_run(PAPER)
    cut = dataclasses.replace(PAPER, steps=1000, chunk_size=50, matmul_precision="tf32")
    assert bb_dynamics.is_official_run(cut)  # length, chunks and precision do not change it
    for preset in ("ci", "quick"):
        assert not bb_dynamics.is_official_run(bb_dynamics.PRESETS[preset])
    assert not bb_dynamics.is_official_run(dataclasses.replace(PAPER, batch_size=32))
    schedule = eval_schedule(PAPER.steps, PAPER.n_log_evals, PAPER.n_linear_evals, PAPER.eval_at)
    assert set(OFFICIAL_PROBE_STEPS) <= set(schedule.tolist())
    # relu-attention's softmax twin is the same training run (shared through the run store).
    relu = RELU_PRESETS["paper"]
    twin = dataclasses.replace(relu, attention="softmax", learning_rate=relu.softmax_learning_rate)
    assert bb_dynamics.is_official_run(twin) and twin.eval_at == PAPER_LONG_RUN.eval_at


def test_a_cut_official_run_judges_what_it_reached_and_skips_the_rest():
    bb = types.SimpleNamespace(cfg=dataclasses.replace(PAPER, steps=1000))
    ours = ours_at((200, 400, 1000))
    measured, skipped = bb_dynamics.official_measured(bb, ours)
    assert measured == {"official-attn-1k": 0.5}
    assert set(skipped) == {"official-attn-10k", "official-logit-10k", "official-value-norm-10k"}
    assert all("no evaluation at step 10,000" in why for why in skipped.values())

    ours[1000]["eval_step"] = 1020  # the nearest evaluation is not the official step
    measured, skipped = bb_dynamics.official_measured(bb, ours)
    assert not measured and "official-attn-1k" in skipped


def test_other_settings_skip_every_comparison_and_the_full_run_judges_all():
    quick = types.SimpleNamespace(cfg=bb_dynamics.PRESETS["quick"])
    measured, skipped = bb_dynamics.official_measured(quick, ours_at(OFFICIAL_PROBE_STEPS))
    assert not measured and all("not the official run" in why for why in skipped.values())

    full = types.SimpleNamespace(cfg=PAPER)
    ours = {step: {"eval_step": step, **values} for step, values in OFFICIAL_DYNAMICS.items()}
    measured, skipped = bb_dynamics.official_measured(full, ours)
    assert not skipped
    claims = {c.id: c for c in bb_dynamics.CLAIMS}
    assert all(claims[i].judge(v).verdict == "pass" for i, v in measured.items())
