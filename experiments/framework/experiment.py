"""The experiment interface: an `Experiment` (presets, claims, training plan, run), the
`RunContext` it runs in and the `Outcome` it returns. `experiments.registry` lists them."""

import contextlib
import dataclasses
import hashlib
import json
import os
import pathlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

try:
    import fcntl
except ImportError:  # not POSIX: runs are not locked
    fcntl = None

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from experiments.framework.claims import Claim, ClaimSpec, Observation  # noqa: E402
from experiments.framework.planning import PlannedRun  # noqa: E402
from sinkjax.distributed import is_writer  # noqa: E402

PRESETS = ("ci", "quick", "paper")


@dataclasses.dataclass
class RunContext:
    """Where and how an experiment runs.

    Attributes:
        out_dir: the experiment's run folder (figures, checkpoint, record).
        progress: show progress bars.
        corpus: a text file to derive the bigram statistics from; None uses the shipped counts.
        prose: the prose of the text experiments, a UTF-8 text file; None uses the
            interpreter's stdlib docstrings (the same on every machine with this Python).
        run_store: a folder shared by the experiments written under one output root. A training
            run that several experiments need (the same settings and data) is trained once,
            kept there and restored by the others; None keeps every run in `checkpoint_dir`.
        training_runs: the folders of the training runs this experiment trained or restored,
            in the order it opened them (appended by `training_run`).
        opened: the (label, kind) of each of those runs, in the same order (checked against the
            experiment's `training_plan`).
        placements: label -> the devices and mesh a run trained on (`Placement.describe`).
        corpora: name -> where the data the experiment read came from (`source`), its size
            (`bytes`) and its `sha256`, filled by the experiment; written to the record.
    """

    out_dir: pathlib.Path
    progress: bool = True
    corpus: pathlib.Path | None = None
    prose: pathlib.Path | None = None
    run_store: pathlib.Path | None = None
    training_runs: list[pathlib.Path] = dataclasses.field(default_factory=list)
    opened: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    placements: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    corpora: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    @property
    def checkpoint_dir(self) -> pathlib.Path:
        return self.out_dir / "checkpoint"

    def checkpoint_path(self, label: str, kind: str, fingerprint: dict[str, Any]) -> pathlib.Path:
        """Where the training run `label` of this experiment keeps its checkpoint.

        Args:
            label: the run's name within the experiment (used without a run store).
            kind: what is trained, e.g. "bb-transformer"; names the shared folder.
            fingerprint: JSON-able description of everything that defines the run.

        Returns:
            checkpoint_dir/label, or with a run store run_store/KIND-DIGEST, DIGEST being the
            first 16 hex digits of the SHA-256 of (kind, fingerprint) as sorted JSON.
        """
        if self.run_store is None:
            return self.checkpoint_dir / label
        text = json.dumps({"kind": kind, "run": fingerprint}, sort_keys=True)
        return self.run_store / f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"

    @contextlib.contextmanager
    def training_run(
        self, label: str, kind: str, fingerprint: dict[str, Any]
    ) -> Iterator[pathlib.Path]:
        """`checkpoint_path`, locked for this process while the block trains or restores it.

        Two commands running at once into the same output folder (e.g. `sinkjax run A` and
        `sinkjax run B` in two terminals) that need the same run train it once: the second
        waits for the lock, then restores the finished run. The processes of one multi-host
        job train the run together: process 0 holds the lock for all of them.
        """
        path = self.checkpoint_path(label, kind, fingerprint)
        path.mkdir(parents=True, exist_ok=True)
        self.training_runs.append(path)
        self.opened.append((label, kind))
        if fcntl is None or not is_writer():
            yield path
            return
        folder = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(folder, fcntl.LOCK_EX)  # closing the folder unlocks it
            yield path
        finally:
            os.close(folder)

    def save_figure(self, fig: plt.Figure, name: str) -> str:
        """Write `fig` as out_dir/name.png atomically (process 0 of a multi-host job only),
        close it, and return the file name."""
        filename = f"{name}.png"
        if not is_writer():
            plt.close(fig)
            return filename
        tmp = self.out_dir / f".{filename}.tmp"
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
        plt.close(fig)
        tmp.replace(self.out_dir / filename)
        return filename


@dataclasses.dataclass
class Outcome:
    """What an experiment returns to the runner.

    Attributes:
        claims: the experiment's `CLAIMS` judged by `claims.judge`, in the declared order.
        figures: PNG file names inside the run folder.
        seeds: the seeds that were run.
        summary: further JSON-able numbers worth keeping (curves, per-seed values).
        observations: what was measured beyond the papers (no verdict).
    """

    claims: list[Claim]
    figures: list[str]
    seeds: list[int]
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)
    observations: list[Observation] = dataclasses.field(default_factory=list)


def trains_nothing(cfg: Any) -> tuple[PlannedRun, ...]:
    """The `training_plan` of an experiment that trains no run."""
    return ()


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A registered experiment: one paper claim or figure.

    Attributes:
        name: CLI name, e.g. "bb-dynamics".
        title: one-line description.
        presets: "ci" (seconds), "quick" (CPU minutes) and "paper" (the paper's settings) configs;
            each a frozen dataclass that may have `steps`, `learning_rate` and `n_seeds` fields.
        run: (config, context) -> Outcome.
        claims: the papers' predictions this experiment checks, fixed before any run and the
            same at every preset (see `claims.ClaimSpec`).
        training_plan: config -> the training runs `run` opens with that config, in order
            (`planning.PlannedRun`); by default none (the runner checks it either way).
    """

    name: str
    title: str
    presets: Mapping[str, Any]
    run: Callable[[Any, RunContext], Outcome]
    claims: tuple[ClaimSpec, ...]
    training_plan: Callable[[Any], tuple[PlannedRun, ...]] = trains_nothing
