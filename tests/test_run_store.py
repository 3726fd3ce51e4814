"""The run store: experiments under one output root share the training runs they both need."""

import pathlib
import threading
import time

from experiments.framework.config_flags import resolve_config
from experiments.framework.experiment import RunContext
from experiments.framework.runner import RUN_STORE_NAME, run_experiment
from experiments.registry import get_experiments


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


def test_a_locked_run_waits_for_its_holder(tmp_path):
    """Two holders of the same run (as two commands into one output folder would be) take
    turns, so the run is trained once and then restored."""
    ctx = RunContext(tmp_path / "exp", run_store=tmp_path / "store")
    order = []

    def hold(tag, delay):
        with ctx.training_run(tag, "bb-transformer", {"lr": 1}) as path:
            order.append(f"{tag} in")
            time.sleep(delay)
            order.append(f"{tag} out")
        return path

    first = threading.Thread(target=hold, args=("first", 0.5))
    first.start()
    time.sleep(0.1)
    path = hold("second", 0.0)
    first.join()
    assert order == ["first in", "first out", "second in", "second out"]
    assert path.is_dir() and list(path.iterdir()) == []  # the lock adds no file
    # Another run is not held back by the first one's lock.
    with ctx.training_run("a", "bb-transformer", {"lr": 1}):
        with ctx.training_run("b", "bb-transformer", {"lr": 2}) as other:
            assert other != path
