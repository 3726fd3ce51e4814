"""Run one experiment into a run folder and write its record atomically."""

import dataclasses
import datetime
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from typing import Any

import jax

from experiments.framework.experiment import Experiment, Outcome, RunContext
from sinkjax.distributed import is_writer
from sinkjax.sharding import requested_devices

RECORD_NAME = "record.json"
# Every experiment runs its float32 matrix products in full float32 on every device. JAX's
# default lets a GPU use TF32 (10-bit mantissa) and a TPU bfloat16 passes; the specs ask for
# float32 training (active_dormant.md G), as PyTorch's default does. XLA:CPU computes float32
# either way, so CPU results are bit-identical with or without it.
MATMUL_PRECISION = "float32"
# The folder under the output root that holds the training runs the experiments share.
RUN_STORE_NAME = "trained-runs"


class UsageError(Exception):
    """Bad user input; the message is one line that names the fix (exit code 2)."""


def prepare_out_dir(path: str | pathlib.Path) -> pathlib.Path:
    """Create `path` if needed and check that files can be written there."""
    path = pathlib.Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise UsageError(
            f"cannot write to --out {path} ({err.strerror or err}); choose a writable directory"
        ) from None
    return path


def check_text_file(path: str | pathlib.Path | None, flag: str) -> pathlib.Path | None:
    """`path` as a Path (None stays None); a missing file is a UsageError naming `flag`."""
    if path is None:
        return None
    path = pathlib.Path(path)
    if not path.is_file():
        raise UsageError(f"{flag} file {path} not found; pass {flag} PATH to a text file")
    return path


def write_json_atomic(path: pathlib.Path, payload: Any) -> None:
    """Write JSON to a temporary file in the same folder, then rename it over `path`."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_json_default))
    os.replace(tmp, path)


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return str(value)


def versions() -> dict[str, str]:
    """Versions of Python, the key packages, the JAX backend, the default float32 matmul
    precision in force and the git commit."""
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("jax", "jaxlib", "flax", "optax", "diffrax", "numpy", "orbax-checkpoint"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "missing"
    found["device"] = str(jax.devices()[0].device_kind)
    found["matmul_precision"] = str(jax.config.jax_default_matmul_precision)
    found["git"] = git_commit()
    return found


def git_commit() -> str:
    """The short commit of this checkout, with "-dirty" when tracked files were changed;
    "unknown" outside a git checkout."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            check=True,
            cwd=pathlib.Path(__file__).parent,
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        return commit + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def check_ledger(
    experiment: Experiment, outcome: Outcome, preset: str, overridden: bool = False
) -> None:
    """The outcome judges exactly the experiment's declared claims, in order, and skips one (for
    want of data) only at the `ci` preset, in a run whose settings were overridden (e.g. a
    `paper` run cut to 1,000 steps has no evaluations in a 1k-10k window), or at a preset
    other than the claim's `only_at` (a comparison with a reference run at its settings)."""
    declared = [spec.id for spec in experiment.claims]
    judged = [claim.id for claim in outcome.claims]
    if judged != declared:
        raise RuntimeError(f"{experiment.name}: judged claims {judged} != declared {declared}")
    may_skip = preset == "ci" or overridden
    skipped = [
        spec.id
        for spec, claim in zip(experiment.claims, outcome.claims, strict=True)
        if claim.verdict == "skipped" and not may_skip and spec.only_at in (None, preset)
    ]
    if skipped:
        raise RuntimeError(f"{experiment.name}: claims {skipped} skipped at preset {preset!r}")


def devices_used(ctx: RunContext) -> dict[str, Any]:
    """What `--devices` asked for, the devices of every process, and the placement of each
    training run the experiment trained or restored (by label)."""
    requested = requested_devices()
    return {
        "requested": "all" if requested is None else requested,
        "available": jax.device_count(),
        "processes": jax.process_count(),
        "device_kind": jax.devices()[0].device_kind,
        "training_runs": ctx.placements,
    }


def check_plan(experiment: Experiment, cfg: Any, opened: list[tuple[str, str]]) -> None:
    """The experiment opened exactly the training runs its `training_plan` declares for `cfg`
    (labels and kinds, in order): the plan that `reproduce --plan` prints is what runs."""
    declared = [(run.label, run.kind) for run in experiment.training_plan(cfg)]
    if opened != declared:
        raise RuntimeError(
            f"{experiment.name}: opened training runs {opened} but its training_plan declares "
            f"{declared}; update the experiment's training_plan"
        )


def run_experiment(
    experiment: Experiment,
    cfg: Any,
    preset: str,
    out_root: pathlib.Path,
    *,
    progress: bool = True,
    corpus: pathlib.Path | None = None,
    prose: pathlib.Path | None = None,
) -> dict[str, Any]:
    """Run `experiment` into out_root/NAME/ and return its record (also written as JSON).

    A stale record is removed first and the new one is written only when the run has
    finished, so an interrupted run never leaves a record that does not match its figures.
    A re-run with the same configuration resumes from its checkpoint. Training runs are kept
    in out_root/RUN_STORE_NAME, keyed by their settings, so an experiment that needs a run
    another one has trained (e.g. the 1-layer model of bb-dynamics) restores it.
    """
    out_dir = out_root / experiment.name
    out_dir.mkdir(parents=True, exist_ok=True)
    if is_writer():
        (out_dir / RECORD_NAME).unlink(missing_ok=True)
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    ctx = RunContext(
        out_dir, progress=progress, corpus=corpus, prose=prose, run_store=out_root / RUN_STORE_NAME
    )
    with jax.default_matmul_precision(MATMUL_PRECISION):
        outcome = experiment.run(cfg, ctx)
        found_versions = versions()
    overridden = cfg != experiment.presets.get(preset)
    check_ledger(experiment, outcome, preset, overridden)
    check_plan(experiment, cfg, ctx.opened)
    record = {
        "experiment": experiment.name,
        "title": experiment.title,
        "preset": preset,
        "config": dataclasses.asdict(cfg),
        "seeds": outcome.seeds,
        "claims": [dataclasses.asdict(c) for c in outcome.claims],
        "observations": [dataclasses.asdict(o) for o in outcome.observations],
        "figures": outcome.figures,
        "training_runs": [str(path.relative_to(out_root)) for path in ctx.training_runs],
        "summary": outcome.summary,
        "versions": found_versions,
        "started": started,
        "wall_time_s": round(time.perf_counter() - t0, 2),
        "command": " ".join([pathlib.Path(sys.argv[0]).name, *sys.argv[1:]]),
        # What --corpus and --prose asked for, and what the experiment read (name -> source,
        # bytes, sha256); the Python version that picked the stdlib texts is in `versions`.
        "corpus": str(corpus) if corpus else "default",
        "prose": str(prose) if prose else "default",
        "corpora": ctx.corpora,
        # The precision of the model's float32 products (a config field where the experiment
        # has one; every other product runs under MATMUL_PRECISION).
        "matmul_precision": getattr(cfg, "matmul_precision", MATMUL_PRECISION),
        # The devices the training programs could use, and each run's mesh (runs x data).
        "devices": devices_used(ctx),
    }
    if is_writer():
        write_json_atomic(out_dir / RECORD_NAME, record)
    return record
