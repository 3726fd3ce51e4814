"""The run store: experiments under one output root share the training runs they both need."""

import pathlib

from experiments.registry import RunContext, get_experiments
from experiments.runner import RUN_STORE_NAME, resolve_config, run_experiment


def _snapshot(folder: pathlib.Path) -> dict[str, int]:
    """Every file under `folder` with its modification time (ns)."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_checkpoint_path_is_keyed_by_the_run_not_the_label(tmp_path):
    alone = RunContext(tmp_path / "exp")
    assert alone.checkpoint_path("softmax", "bb-transformer", {"lr": 1}) == (
        tmp_path / "exp" / "checkpoint" / "softmax"
    )
    shared = RunContext(tmp_path / "exp", run_store=tmp_path / "store")
    a = shared.checkpoint_path("softmax", "bb-transformer", {"lr": 1, "steps": 5})
    assert a == shared.checkpoint_path("1l-transformer", "bb-transformer", {"steps": 5, "lr": 1})
    assert a.parent == tmp_path / "store" and a.name.startswith("bb-transformer-")
    assert a != shared.checkpoint_path("softmax", "bb-transformer", {"lr": 2, "steps": 5})
    assert a != shared.checkpoint_path("softmax", "d5-model", {"lr": 1, "steps": 5})


def test_second_experiment_restores_the_shared_run(tmp_path):
    experiments = get_experiments()

    def run(name):
        experiment = experiments[name]
        return run_experiment(
            experiment, resolve_config(experiment, "ci"), "ci", tmp_path, progress=False
        )

    store = tmp_path / RUN_STORE_NAME
    run("bb-dynamics")
    runs = sorted(p.name for p in store.iterdir())
    assert len(runs) == 1 and runs[0].startswith("bb-transformer-")
    before = _snapshot(store)

    # bb-interventions trains the same 1-layer run: it is restored, not trained or saved again.
    run("bb-interventions")
    assert _snapshot(store) == before
    assert not (tmp_path / "bb-dynamics" / "checkpoint").exists()

    # relu-attention adds its ReLU run and reuses the softmax one (same settings at `ci`).
    run("relu-attention")
    assert len(list(store.iterdir())) == 2
