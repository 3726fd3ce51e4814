"""`sinkjax reproduce` in parallel lanes: the schedule, and lanes give one process's numbers."""

import json

import pytest

from experiments import reproduce
from experiments.registry import Experiment, get_experiments
from experiments.runner import UsageError


def test_every_registered_experiment_is_scheduled_once_with_the_runs_it_shares():
    names = list(get_experiments())
    groups = reproduce.schedule(names)
    assert sorted(n for g in groups for n in g) == sorted(names)
    for shared in reproduce.SHARED_RUNS:
        assert set(shared) <= set(names), "SHARED_RUNS names an unregistered experiment"
        assert list(shared) in groups  # together, the trainer first
    assert set(reproduce.QUICK_MINUTES) == set(names)
    minutes = [sum(reproduce.QUICK_MINUTES[n] for n in g) for g in groups]
    assert minutes == sorted(minutes, reverse=True)


def test_a_subset_keeps_only_its_own_names():
    groups = reproduce.schedule(["p0-circuit", "bb-interventions", "theorem3", "no-such"])
    assert groups == [["p0-circuit"], ["theorem3", "bb-interventions"], ["no-such"]]


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
        results[lanes] = reproduce.reproduce(chosen, settings, lanes)
    out = capsys.readouterr().out
    assert "[1/2] bb-interventions (ci)" in out and "[2/2] no-bos (ci)" in out
    assert results[1] == results[2]
    assert _measured(tmp_path / "jobs1", chosen) == _measured(tmp_path / "jobs2", chosen)
    record = json.loads((tmp_path / "jobs2" / "no-bos" / "record.json").read_text())
    (run,) = record["training_runs"]
    assert run.startswith("trained-runs/bb-transformer-")


def test_lanes_refuse_experiments_the_workers_cannot_import(tmp_path):
    made_up = {
        name: Experiment(name, name, {}, lambda cfg, ctx: None, ()) for name in ("made-up", "other")
    }
    settings = reproduce.Settings("ci", tmp_path, corpus=None, progress=False)
    with pytest.raises(UsageError, match="use --jobs 1"):
        reproduce.reproduce(made_up, settings, jobs=2)
