"""bb-dynamics' comparison with the official code's saved 1-layer dynamics (issue 18 item 5)."""

import dataclasses
import types

import jax
import numpy as np
import pytest
from flax import nnx

from experiments.active_dormant import bb_dynamics
from experiments.active_dormant.bb_common import CI_RUN, PAPER_LONG_RUN, train_bb
from experiments.active_dormant.official_reference import OFFICIAL_DYNAMICS, OFFICIAL_PROBE_STEPS
from experiments.active_dormant.relu_attention import PRESETS as RELU_PRESETS
from experiments.framework.experiment import RunContext
from sinkjax.active_dormant.bb import default_bb_task
from sinkjax.models import Transformer, TransformerConfig
from sinkjax.torch_init import with_official_init
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


def test_the_official_init_is_the_pytorch_reference_models_draw():
    torch = pytest.importorskip("torch")
    import torch_reference as ref
    from test_parity import flat_params, to_torch_layout

    for layers, no_attn, no_ffn in ((1, (), ()), (3, (2,), (0,))):
        cfg = TransformerConfig(
            d_model=32, d_mlp=128, max_len=16, n_layers=layers, no_attn=no_attn, no_ffn=no_ffn
        )
        state = nnx.state(Transformer(cfg, rngs=nnx.Rngs(params=jax.random.key(0))))
        ours = to_torch_layout(flat_params(with_official_init(state, cfg, 7)))
        torch.manual_seed(7)
        reference = ref.Transformer(
            ref.ReferenceConfig(
                d_model=32, d_mlp=128, max_len=16, n_layers=layers, no_attn=no_attn, no_ffn=no_ffn
            )
        )
        theirs = {k: v.detach().numpy() for k, v in reference.state_dict().items()}
        assert set(ours) == set(theirs)
        for name, value in theirs.items():
            np.testing.assert_array_equal(ours[name], value, err_msg=name)
    with pytest.raises(ValueError, match="spec B.1 model only"):
        with_official_init(state, dataclasses.replace(cfg, use_bias=True), 7)


def test_a_run_with_the_official_init_starts_from_it(tmp_path):
    pytest.importorskip("torch")
    cfg = dataclasses.replace(CI_RUN, init="official", steps=2, chunk_size=2, n_seeds=2)
    ctx = RunContext(tmp_path, progress=False)
    official = train_bb(cfg, ctx, "official-init")
    ours = train_bb(dataclasses.replace(cfg, init="sinkjax"), ctx, "our-init")
    model_cfg = cfg.model_config(default_bb_task().vocab_size)
    template = nnx.state(Transformer(model_cfg, rngs=nnx.Rngs(0)))
    # Step 0's ||W_O v_<s>|| is that of the official draw of each seed, not that of ours.
    for i, seed in enumerate(cfg.seeds):
        start = nnx.merge(official.graphdef, with_official_init(template, model_cfg, seed))
        _, trace = start(official.eval_batch.inputs[:1], trace=True)
        expected = np.linalg.norm(np.asarray(trace.layers[0].attn.value_out[0, 0, 0]))
        np.testing.assert_allclose(
            official.result.metrics["value_norm_sink"][i, 0, 0, 0], expected, rtol=1e-5
        )
        assert abs(ours.result.metrics["value_norm_sink"][i, 0, 0, 0] - expected) > 1e-3


def test_bad_init_and_eval_steps_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="choose one of sinkjax, official"):
        dataclasses.replace(CI_RUN, init="pytorch")
    with pytest.raises(ValueError, match="eval_at steps must be >= 0"):
        dataclasses.replace(CI_RUN, eval_at=(-5,))
