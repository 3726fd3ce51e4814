"""The training plans of the experiments (`Experiment.training_plan`, `planning.PlannedRun`).

That a plan lists exactly the runs an experiment opens is checked by the runner after every run
(`runner.check_plan`), so every test that runs an experiment also tests its plan; here: the
plans of every preset are well formed and cheap, the runs the experiments share have equal
share keys, and `check_plan` refuses a plan that differs from what was opened.
"""

import dataclasses
import time

import pytest

from experiments.active_dormant import bb_dynamics, relu_attention, residual_peaks
from experiments.framework.config_flags import resolve_config
from experiments.framework.experiment import PRESETS
from experiments.framework.planning import PlannedRun
from experiments.framework.runner import check_plan
from experiments.registry import get_experiments
from experiments.sinks import gpt2_circuit

EXPERIMENTS = get_experiments()
SIZES = ("steps", "runs", "batch_size", "seq_len", "n_layers", "d_model", "vocab_size")
KINDS = ("bb-transformer", "text-lm", "char-lm", "chain-policy", "d5-model")


def _plan(name: str, preset: str) -> dict[str, PlannedRun]:
    """Label -> planned run of experiment `name` at `preset`."""
    experiment = EXPERIMENTS[name]
    return {run.label: run for run in experiment.training_plan(experiment.presets[preset])}


def test_every_plan_is_well_formed_and_cheap():
    start = time.perf_counter()
    plans = {
        (name, preset): experiment.training_plan(experiment.presets[preset])
        for name, experiment in EXPERIMENTS.items()
        for preset in PRESETS
    }
    assert time.perf_counter() - start < 5.0
    for (name, preset), plan in plans.items():
        assert isinstance(plan, tuple), (name, preset)
        for run in plan:
            assert isinstance(run, PlannedRun), (name, preset)
            assert run.kind in KINDS, (name, run)
            for size in SIZES:
                value = getattr(run, size)
                assert isinstance(value, int) and value > 0, (name, preset, run.label, size)
            assert run.flops_per_step > 0
        # Distinct runs: without a run store each keeps checkpoint/<label>.
        assert len({run.label for run in plan}) == len(plan), (name, preset)
        assert len({run.share_key for run in plan}) == len(plan), (name, preset)
    assert not any(plans["chains-theory", preset] for preset in PRESETS)


# Runs that one experiment trains and others restore: (preset, [(experiment, label), ...]).
SHARED = [
    (
        "quick",
        [
            ("bb-dynamics", "bb-dynamics"),
            ("bb-interventions", "bb-interventions"),
            ("relu-attention", "softmax"),
            ("simplified-adam", "1l-transformer"),
        ],
    ),
    ("paper", [("bb-dynamics", "bb-dynamics"), ("relu-attention", "softmax")]),
    *[(p, [("optimizer-ablation", "Adam"), ("layerwise-maps", "3xtf")]) for p in PRESETS],
    *[(p, [("gpt2-circuit", "toy-gpt2"), ("sink-dynamics", "toy-gpt2")]) for p in PRESETS],
    *[(p, [("theorem3", "code-model"), ("simplified-adam", "code-model")]) for p in PRESETS],
    *[(p, [("sink-dispensability", "toy-rope"), ("p0-circuit", "toy-rope")]) for p in PRESETS],
    # The paper toy of sink-dispensability's gpt2 variant is gpt2-circuit's (quick: 400 steps).
    ("paper", [("gpt2-circuit", "toy-gpt2"), ("sink-dispensability", "toy-gpt2")]),
]


@pytest.mark.parametrize(("preset", "members"), SHARED)
def test_shared_runs_have_one_share_key(preset, members):
    runs = [_plan(name, preset)[label] for name, label in members]
    assert len({run.share_key for run in runs}) == 1, [r.settings for r in runs]
    assert len({dataclasses.replace(run, label="", settings="") for run in runs}) == 1


def test_different_runs_have_different_share_keys():
    quick = _plan("relu-attention", "quick")
    assert quick["relu"].share_key != quick["softmax"].share_key
    # The quick gpt2 toy of sink-dispensability is shorter than gpt2-circuit's.
    assert (
        _plan("sink-dispensability", "quick")["toy-gpt2"].share_key
        != _plan("gpt2-circuit", "quick")["toy-gpt2"].share_key
    )
    # p0-circuit's run without <s> is its own.
    p0 = _plan("p0-circuit", "quick")
    assert p0["toy-rope"].share_key != p0["toy-rope-no-bos"].share_key


def test_plans_follow_the_config():
    cfg = resolve_config(
        bb_dynamics.EXPERIMENT, "quick", {"steps": 40, "n_seeds": 3, "batch_size": 8}
    )
    (run,) = bb_dynamics.training_plan(cfg)
    assert (run.steps, run.runs, run.batch_size) == (40, 3, 8)
    assert run.share_key != _plan("bb-dynamics", "quick")["bb-dynamics"].share_key
    # A sweep trains every architecture with every seed.
    sweep = dataclasses.replace(residual_peaks.PRESETS["ci"], n_seeds=2)
    (run,) = residual_peaks.training_plan(sweep)
    assert run.runs == 2 * len(residual_peaks.ARCHITECTURES)
    # gpt2-circuit on a checkpoint trains nothing.
    on_checkpoint = dataclasses.replace(gpt2_circuit.PRESETS["quick"], checkpoint="gpt2")
    assert gpt2_circuit.training_plan(on_checkpoint) == ()
    # The softmax twin's learning rate is a field of relu-attention's config.
    twin = dataclasses.replace(relu_attention.PRESETS["quick"], softmax_learning_rate=3e-4)
    assert (
        relu_attention.training_plan(twin)[1].share_key
        != _plan("relu-attention", "quick")["softmax"].share_key
    )


def test_check_plan_refuses_what_the_plan_does_not_declare():
    experiment = relu_attention.EXPERIMENT
    cfg = experiment.presets["ci"]
    opened = [("relu", "bb-transformer"), ("softmax", "bb-transformer")]
    check_plan(experiment, cfg, opened)
    for wrong in (opened[:1], opened[::-1], [*opened, ("relu", "bb-transformer")]):
        with pytest.raises(RuntimeError, match="training_plan"):
            check_plan(experiment, cfg, wrong)


def test_reproduce_plan_prints_every_training_run_in_seconds(capsys):
    from experiments import cli

    start = time.perf_counter()
    assert cli.main(["reproduce", "--preset", "paper", "--plan"]) == 0
    out = capsys.readouterr().out
    assert time.perf_counter() - start < 30
    assert "plan of `reproduce --preset paper` on 1 x cpu" in out
    assert "bb-dynamics" in out and "100000" in out and "relu-attention" in out
    assert "no training of their own:" in out
