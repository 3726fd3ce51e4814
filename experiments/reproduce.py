"""`sinkjax reproduce`: every registered experiment, in one process or in parallel lanes.

With `jobs` > 1 the experiments run in that many worker processes ("lanes"). On the 2-core CPU
one experiment keeps about 1.3 cores busy on average (compiles, host-side analysis and small
matrix products leave the second core idle), so two lanes finish the main job sooner. Each
worker runs XLA with the same thread pool as a single process would, so every number is
bit-identical to a sequential run.

Experiments that restore a training run another one trains form one group, run in order by
one worker: the run store's lock would make any order correct, but a worker that waits for
the other's lock wastes its core. Groups are handed out longest first (by their measured
`quick` minutes), each to the first worker that is free.
"""

import dataclasses
import multiprocessing
import os
import pathlib
import signal
import sys
from collections.abc import Mapping, Sequence

from sinkjax.train import TrainingDiverged

from .registry import Experiment, get_experiments
from .runner import UsageError, resolve_config, run_experiment

# Experiments that restore a training run another one trains (the trainers first): the D.5
# code model of theorem3 and the 1-layer quick transformer of bb-dynamics (both restored by
# simplified-adam), the 3xTF run, the gpt2 toy and the rope toy.
SHARED_RUNS: tuple[tuple[str, ...], ...] = (
    ("theorem3", "bb-dynamics", "bb-interventions", "relu-attention", "simplified-adam"),
    ("optimizer-ablation", "layerwise-maps"),
    ("gpt2-circuit", "sink-dynamics"),
    ("sink-dispensability", "p0-circuit"),
)
# Minutes of each `quick` run on the 2-core CPU, one process (`wall_time_s` of the records of a
# main job on 2026-12-01). They only order the work; a name missing here is scheduled last.
QUICK_MINUTES: dict[str, float] = {
    "theorem3": 1.6,
    "bb-dynamics": 2.3,
    "bb-interventions": 0.1,
    "relu-attention": 2.3,
    "no-bos": 2.2,
    "residual-peaks": 5.3,
    "peak-intervention": 1.3,
    "optimizer-ablation": 4.3,
    "layerwise-maps": 0.3,
    "simplified-adam": 0.2,
    "char-lm-dynamics": 2.6,
    "chains-emergence": 1.6,
    "chains-length-generalization": 1.6,
    "chains-simple-examples": 1.0,
    "chains-theory": 0.2,
    "chains-theory-vs-rl": 0.3,
    "gpt2-circuit": 4.4,
    "sink-dispensability": 10.2,
    "p0-circuit": 1.8,
    "sink-dynamics": 0.2,
}


@dataclasses.dataclass(frozen=True)
class Settings:
    """What every experiment of one `reproduce` shares."""

    preset: str
    out_root: pathlib.Path
    corpus: pathlib.Path | None
    progress: bool


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


def schedule(names: Sequence[str]) -> list[list[str]]:
    """`names` as groups that share training runs, longest first.

    A group lists its names in `SHARED_RUNS` order (the trainer of a shared run first); a
    name in no `SHARED_RUNS` group is a group of its own.
    """
    groups: dict[tuple[str, ...], list[str]] = {}
    for name in names:
        shared = next((g for g in SHARED_RUNS if name in g), (name,))
        groups.setdefault(shared, []).append(name)
    ordered = [sorted(members, key=shared.index) for shared, members in groups.items()]
    # sorted() is stable: groups of equal length keep the order of `names`.
    return sorted(ordered, key=lambda g: -sum(QUICK_MINUTES.get(n, 0.0) for n in g))


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
    for name in group:
        experiment = experiments[name]
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


def _run_group_in_worker(group: list[str], settings: Settings, position: dict[str, int]):
    return run_group(group, get_experiments(), settings, position)


def reproduce(experiments: Mapping[str, Experiment], settings: Settings, jobs: int) -> Finished:
    """Run every experiment of `experiments`; with `jobs` > 1 in that many worker processes.

    Worker processes start fresh (spawn) and take the experiments from the registry, so
    `experiments` must then be registered ones. An interrupt or a crash stops every worker:
    records are written atomically, so none is half-written, and a rerun resumes the
    interrupted training runs from their checkpoints.
    """
    position = {name: i for i, name in enumerate(experiments, 1)}
    groups = schedule(list(experiments))
    finished = Finished()
    if jobs == 1 or len(groups) == 1:
        for group in groups:
            finished.merge(run_group(group, experiments, settings, position))
        return finished
    unknown = set(experiments) - set(get_experiments())
    if unknown:
        raise UsageError(
            f"parallel lanes run registered experiments only; use --jobs 1 for {unknown}"
        )
    pool = multiprocessing.get_context("spawn").Pool(min(jobs, len(groups)), _init_worker)
    tasks = [(group, settings, position) for group in groups]
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
