"""`sinkjax reproduce`: every registered experiment, in one process or in parallel lanes.

With `jobs` > 1 the experiments run in that many worker processes ("lanes"). On the 2-core CPU
one experiment keeps about 1.3 cores busy on average (compiles, host-side analysis and small
matrix products leave the second core idle), so two lanes finish the main job sooner. Each
worker runs XLA with the same thread pool as a single process would, so every number is
bit-identical to a sequential run.

Experiments that share a training run (equal `PlannedRun.share_key` in their
`training_plan`s) form one group, run in order by one worker: the run store's lock would make
any order correct, but a worker that waits for the other's lock wastes its core. Groups are
handed out longest first (by the planned floating-point work of their training), each to the
first worker that is free.

An experiment whose record was written by the same commit (clean tree) at the same preset and
config is not run again: a main job cut off mid-way (a GPU job's time limit) resumes with the
experiments it had not finished, and those resume their training runs from checkpoints.
"""

import dataclasses
import json
import multiprocessing
import os
import pathlib
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax

from experiments.framework.config_flags import resolve_config
from experiments.framework.experiment import Experiment
from experiments.framework.plan import last_wall_times
from experiments.framework.runner import (
    RECORD_NAME,
    UsageError,
    run_experiment,
    versions,
)
from sinkjax.sharding import use_devices
from sinkjax.train import TrainingDiverged


@dataclasses.dataclass(frozen=True)
class Settings:
    """What every experiment of one `reproduce` shares."""

    preset: str
    out_root: pathlib.Path
    corpus: pathlib.Path | None
    progress: bool
    # `--devices`: the first N devices, or None for all.
    devices: int | None = None
    # `--prose`: the text experiments' prose file, or None for the stdlib docstrings.
    prose: pathlib.Path | None = None


@dataclasses.dataclass
class Finished:
    """What `reproduce` learns of a group of experiments.

    Attributes:
        passed: every claim of every experiment that ran passed.
        errors: experiment name -> the one-line error of an experiment that could not run.
    """

    passed: bool = True
    errors: dict[str, str] = dataclasses.field(default_factory=dict)

    def merge(self, other: "Finished") -> None:
        self.passed &= other.passed
        self.errors.update(other.errors)


def default_jobs() -> int:
    """Lanes when `--jobs` is not given: 2 on a CPU with two or more cores; 1 on one core,
    with an accelerator (one process drives every device) or in a multi-host job."""
    if jax.default_backend() != "cpu" or jax.process_count() > 1:
        return 1
    return min(2, os.cpu_count() or 1)


def schedule(
    experiments: Mapping[str, Experiment],
    preset: str,
    last_wall_s: Mapping[str, float] | None = None,
) -> list[list[str]]:
    """The experiments as groups that share training runs, the longest first.

    Two experiments are in one group when their `training_plan`s at `preset` share a run
    (equal `share_key`), directly or through others; a group keeps the order of
    `experiments` (the registry lists a shared run's trainer first). A group's length is the
    sum of its experiments' wall times in their last records (`plan.last_wall_times`) when
    every experiment has one, else of their planned training FLOPs.
    """
    group_of = {name: {name} for name in experiments}
    owner: dict[str, str] = {}
    flops = dict.fromkeys(experiments, 0.0)
    for name, experiment in experiments.items():
        for run in experiment.training_plan(experiment.presets[preset]):
            flops[name] += run.flops_per_step * run.steps
            other = owner.setdefault(run.share_key, name)
            if group_of[other] is not group_of[name]:
                merged = group_of[other] | group_of[name]
                for member in merged:
                    group_of[member] = merged
    groups, seen = [], set()
    for name in experiments:
        if name not in seen:
            seen |= group_of[name]
            groups.append([n for n in experiments if n in group_of[name]])
    timed = last_wall_s is not None and set(experiments) <= set(last_wall_s)
    work = last_wall_s if timed else flops
    # sorted() is stable: groups of equal work keep the registry's order.
    return sorted(groups, key=lambda group: -sum(work[n] for n in group))


def finished_record(experiment: Experiment, settings: Settings, git: str) -> dict[str, Any] | None:
    """The record of `experiment` under `settings.out_root` if the same commit (clean tree)
    wrote it at the same preset and config, from the same --corpus and --prose; else None (the
    experiment runs)."""
    path = settings.out_root / experiment.name / RECORD_NAME
    if not path.is_file() or git.endswith("-dirty") or git == "unknown":
        return None
    record = json.loads(path.read_text())
    cfg = json.loads(json.dumps(dataclasses.asdict(resolve_config(experiment, settings.preset))))
    inputs = (str(settings.corpus or "default"), str(settings.prose or "default"))
    same = (
        record["preset"],
        record["config"],
        record["versions"]["git"],
        (record["corpus"], record.get("prose")),
    )
    return record if same == (settings.preset, cfg, git, inputs) else None


def print_claims(record: dict, header: str) -> bool:
    """`header`, then one line per claim of `record`, in one write (lanes print at once);
    True when no claim failed (claims skipped at `ci` for want of data do not fail)."""
    ok = True
    lines = [header]
    for claim in record["claims"]:
        ok &= claim["verdict"] != "fail"
        lines.append(f"  [{claim['verdict']}] {claim['id']}: measured {claim['measured']!s:.60}")
    print("\n".join(lines), flush=True)
    return ok


def run_group(
    group: Sequence[str],
    experiments: Mapping[str, Experiment],
    settings: Settings,
    position: Mapping[str, int],
) -> Finished:
    """Run the experiments of `group` one after another; an experiment that cannot run
    (diverged training, bad input) is recorded as an error and the others go on."""
    finished = Finished()
    git = versions()["git"]
    for name in group:
        experiment = experiments[name]
        done = finished_record(experiment, settings, git)
        if done is not None:
            finished.passed &= print_claims(done, f"{name}: kept (finished by commit {git})")
            continue
        print(
            f"[{position[name]}/{len(position)}] {name} ({settings.preset}): {experiment.title}",
            flush=True,
        )
        try:
            record = run_experiment(
                experiment,
                resolve_config(experiment, settings.preset),
                settings.preset,
                settings.out_root,
                progress=settings.progress,
                corpus=settings.corpus,
                prose=settings.prose,
            )
        except (TrainingDiverged, UsageError) as err:
            finished.errors[name] = str(err)
            finished.passed = False
            print(f"  error in {name}: {err}", file=sys.stderr, flush=True)
            continue
        finished.passed &= print_claims(record, f"{name}: done")
    return finished


def _init_worker() -> None:
    """A lane: Ctrl-C is the parent's to handle (it stops every lane), and a GPU is shared,
    so memory is allocated as needed instead of 75% of the device up front."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"


def _run_group_in_worker(
    group: list[str],
    registry: Callable[[], Mapping[str, Experiment]],
    settings: Settings,
    position: dict[str, int],
):
    use_devices(settings.devices)
    return run_group(group, registry(), settings, position)


def reproduce(
    experiments: Mapping[str, Experiment],
    settings: Settings,
    jobs: int,
    registry: Callable[[], Mapping[str, Experiment]] | None = None,
) -> Finished:
    """Run every experiment of `experiments`; with `jobs` > 1 in that many worker processes.

    Worker processes start fresh (spawn) and take the experiments from `registry` (a
    module-level function, e.g. `experiments.registry.get_experiments`, pickled by name), so
    `experiments` must then be among its experiments. An interrupt or a crash stops every worker:
    records are written atomically, so none is half-written, and a rerun resumes the
    interrupted training runs from their checkpoints.
    """
    position = {name: i for i, name in enumerate(experiments, 1)}
    last = last_wall_times(experiments, settings.out_root, settings.preset)
    groups = schedule(experiments, settings.preset, last)
    finished = Finished()
    if jobs == 1 or len(groups) == 1:
        for group in groups:
            finished.merge(run_group(group, experiments, settings, position))
        return finished
    unknown = set(experiments) - set(registry() if registry else ())
    if unknown:
        raise UsageError(
            f"parallel lanes run registered experiments only; use --jobs 1 for {unknown}"
        )
    pool = multiprocessing.get_context("spawn").Pool(min(jobs, len(groups)), _init_worker)
    tasks = [(group, registry, settings, position) for group in groups]
    try:
        results = pool.starmap(_run_group_in_worker, tasks, chunksize=1)
    except BaseException:  # an interrupt, or an experiment crashed: stop the other lane too
        pool.terminate()
        raise
    finally:
        pool.close()
        pool.join()
    for result in results:
        finished.merge(result)
    return finished
