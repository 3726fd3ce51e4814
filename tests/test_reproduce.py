"""`sinkjax reproduce` in parallel lanes: the schedule, and lanes give one process's numbers."""

import dataclasses
import json

import pytest

from experiments.framework import plan, reproduce
from experiments.framework.experiment import Experiment
from experiments.framework.runner import UsageError
from experiments.registry import get_experiments


def test_every_registered_experiment_is_scheduled_once_with_the_runs_it_shares():
    experiments = get_experiments()
    groups = reproduce.schedule(experiments, "quick")
    assert sorted(n for g in groups for n in g) == sorted(experiments)
    group_of = {name: i for i, group in enumerate(groups) for name in group}
    trainers = {}
    for name, experiment in experiments.items():
        for run in experiment.training_plan(experiment.presets["quick"]):
            trainer = trainers.setdefault(run.share_key, name)
            assert group_of[name] == group_of[trainer], (name, trainer, run.label)
    # The 1-layer quick run and the D.5 code model tie theorem3's group together.
    assert ["theorem3", "bb-dynamics", "bb-interventions", "relu-attention"] == [
        n for n in groups[group_of["theorem3"]] if n != "simplified-adam"
    ][:4]
    assert group_of["gpt2-circuit"] == group_of["sink-dynamics"]
    assert group_of["optimizer-ablation"] == group_of["layerwise-maps"]


def test_the_last_records_order_the_groups_when_every_experiment_has_one(tmp_path):
    """With a record of every experiment at the preset under --out, the longest group (by
    their wall times) runs first; with one record missing, the planned FLOPs decide."""
    registry = get_experiments()
    names = ["chains-theory", "p0-circuit", "theorem3"]
    chosen = {n: registry[n] for n in names}
    by_flops = reproduce.schedule(chosen, "quick")
    for seconds, name in zip((300.0, 5.0, 1.0), reversed([g[0] for g in by_flops]), strict=True):
        (tmp_path / name).mkdir()
        record = {"preset": "quick", "wall_time_s": seconds}
        (tmp_path / name / "record.json").write_text(json.dumps(record))
    last = plan.last_wall_times(chosen, tmp_path, "quick")
    assert reproduce.schedule(chosen, "quick", last) == [g for g in reversed(by_flops)]
    assert plan.last_wall_times(chosen, tmp_path, "ci") == {}
    assert plan.last_wall_times(chosen, None, "quick") == {}
    del last[by_flops[0][0]]
    assert reproduce.schedule(chosen, "quick", last) == by_flops
    text = plan.format_plan(plan.make_plan(chosen, "quick", tmp_path))
    assert "last records at quick (3 experiments, 5.1 min in all" in text


def test_a_subset_keeps_only_its_own_names():
    registry = get_experiments()
    names = ["p0-circuit", "bb-interventions", "theorem3", "chains-theory"]
    groups = reproduce.schedule({n: registry[n] for n in names}, "quick")
    assert sorted(map(sorted, groups)) == [
        ["bb-interventions"],
        ["chains-theory"],
        ["p0-circuit"],
        ["theorem3"],
    ]
    assert groups[-1] == ["chains-theory"]  # trains nothing: last


def _measured(out_root, names) -> dict:
    return {
        name: [
            c["measured"]
            for c in json.loads((out_root / name / "record.json").read_text())["claims"]
        ]
        for name in names
    }


def test_lanes_give_the_numbers_of_one_process(tmp_path, capsys):
    registry = get_experiments()
    chosen = {name: registry[name] for name in ("bb-interventions", "no-bos")}
    results = {}
    for lanes in (1, 2):
        out_root = tmp_path / f"jobs{lanes}"
        settings = reproduce.Settings("ci", out_root, corpus=None, progress=False)
        results[lanes] = reproduce.reproduce(chosen, settings, lanes, get_experiments)
    out = capsys.readouterr().out
    assert "[1/2] bb-interventions (ci)" in out and "[2/2] no-bos (ci)" in out
    assert results[1] == results[2]
    assert _measured(tmp_path / "jobs1", chosen) == _measured(tmp_path / "jobs2", chosen)
    record = json.loads((tmp_path / "jobs2" / "no-bos" / "record.json").read_text())
    (run,) = record["training_runs"]
    assert run.startswith("trained-runs/bb-transformer-")


def test_lanes_refuse_experiments_the_workers_cannot_import(tmp_path):
    made_up = {
        name: Experiment(name, name, {"ci": None}, lambda cfg, ctx: None, ())
        for name in ("made-up", "other")
    }
    settings = reproduce.Settings("ci", tmp_path, corpus=None, progress=False)
    with pytest.raises(UsageError, match="use --jobs 1"):
        reproduce.reproduce(made_up, settings, jobs=2, registry=get_experiments)


def test_a_record_of_the_same_commit_preset_and_config_is_kept(tmp_path):
    """A main job cut off mid-way resumes: finished experiments are not run again, unless the
    commit, the tree, the preset, the config or the --corpus / --prose files differ."""
    experiment = get_experiments()["bb-interventions"]
    settings = reproduce.Settings("ci", tmp_path, corpus=None, progress=False)
    (tmp_path / experiment.name).mkdir()
    config = dataclasses.asdict(experiment.presets["ci"])
    record = {
        "preset": "ci",
        "config": config,
        "versions": {"git": "abc1234"},
        "corpus": "default",
        "prose": "default",
    }
    (tmp_path / experiment.name / "record.json").write_text(json.dumps(record))
    assert reproduce.finished_record(experiment, settings, "abc1234") == json.loads(
        json.dumps(record)
    )
    assert reproduce.finished_record(experiment, settings, "def5678") is None
    assert reproduce.finished_record(experiment, settings, "abc1234-dirty") is None
    quick = dataclasses.replace(settings, preset="quick")
    assert reproduce.finished_record(experiment, quick, "abc1234") is None
    other_prose = dataclasses.replace(settings, prose=tmp_path / "prose.txt")
    assert reproduce.finished_record(experiment, other_prose, "abc1234") is None
