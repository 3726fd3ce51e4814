"""`sinkjax reproduce --plan`: what a main job trains, its seconds per step here, and its time.

The steps come from each experiment's `training_plan`. Seconds per step come from a
calibration of this device kind (`experiments/calibration/<kind>.json`, written by
`python bench/calibrate_plan.py`), which times the step of every planned run's shape on one
device. A run found there is "measured"; any other is "estimated" from the measured run of its
kind nearest in `PlannedRun.flops_per_step`, scaled by the ratio of the two. A device kind
without a calibration gets steps only.

The expected wall time divides each run's device-seconds by the devices its mesh uses
(`sinkjax.sharding.mesh_shape`): ideal scaling, an upper bound on speed. Where an earlier main
job at the same preset left records under the output folder, each experiment's last wall time
(training, restores and analysis) is shown too (`last_wall_times`).
"""

import dataclasses
import json
import math
import pathlib
import re
from collections.abc import Mapping
from typing import Any

from experiments.framework.experiment import Experiment
from experiments.framework.planning import PlannedRun
from experiments.framework.runner import RECORD_NAME
from sinkjax.sharding import mesh_shape, training_devices

CALIBRATION_DIR = pathlib.Path(__file__).parent / "calibration"


def calibration_path(device_kind: str) -> pathlib.Path:
    """Where the calibration of `device_kind` (e.g. "cpu", "NVIDIA H100 80GB HBM3") lives."""
    slug = re.sub(r"[^a-z0-9]+", "-", device_kind.lower()).strip("-")
    return CALIBRATION_DIR / f"{slug}.json"


def load_calibration(device_kind: str) -> dict[str, Any] | None:
    """The calibration of `device_kind`: {"device_kind", "runs": share_key ->
    {"seconds_per_step", "flops_per_step", "run"}}, or None if this kind was never calibrated."""
    path = calibration_path(device_kind)
    return json.loads(path.read_text()) if path.is_file() else None


def seconds_per_step(
    run: PlannedRun, calibration: dict[str, Any] | None
) -> tuple[float | None, str]:
    """(device-seconds of one step of every run of `run` on one device, how it was found:
    "measured", "estimated" or "uncalibrated")."""
    measured = (calibration or {}).get("runs", {})
    if run.share_key in measured:
        return measured[run.share_key]["seconds_per_step"], "measured"
    same_kind = [m for m in measured.values() if m["run"]["kind"] == run.kind]
    if not same_kind:
        return None, "uncalibrated"
    nearest = min(same_kind, key=lambda m: abs(math.log(m["flops_per_step"] / run.flops_per_step)))
    return nearest["seconds_per_step"] * run.flops_per_step / nearest["flops_per_step"], "estimated"


def last_wall_times(
    experiments: Mapping[str, Experiment], out_root: pathlib.Path | None, preset: str
) -> dict[str, float]:
    """Experiment name -> `wall_time_s` of its record under `out_root` written at `preset`, for
    the experiments that have one (a record of another preset, or none, is left out)."""
    if out_root is None:
        return {}
    found = {}
    for name in experiments:
        path = out_root / name / RECORD_NAME
        if path.is_file():
            record = json.loads(path.read_text())
            if record.get("preset") == preset:
                found[name] = float(record["wall_time_s"])
    return found


@dataclasses.dataclass(frozen=True)
class PlanLine:
    """One training run in the plan of an experiment.

    Attributes:
        experiment: the experiment that trains it (the first in schedule order to need it).
        run: the planned run.
        shared_with: the later experiments that restore it instead of training it.
        seconds_per_step: device-seconds per step on one device, or None (uncalibrated).
        how: "measured", "estimated" or "uncalibrated".
        mesh: (runs, data) devices the run is sharded over on the current devices.
    """

    experiment: str
    run: PlannedRun
    shared_with: tuple[str, ...]
    seconds_per_step: float | None
    how: str
    mesh: tuple[int, int]

    @property
    def device_seconds(self) -> float | None:
        return None if self.seconds_per_step is None else self.seconds_per_step * self.run.steps

    @property
    def wall_seconds(self) -> float | None:
        seconds = self.device_seconds
        return None if seconds is None else seconds / (self.mesh[0] * self.mesh[1])


@dataclasses.dataclass(frozen=True)
class Plan:
    """The training of a main job at `preset` on `n_devices` devices of `device_kind`."""

    preset: str
    device_kind: str
    n_devices: int
    calibrated: bool
    lines: tuple[PlanLine, ...]
    # Experiments that train nothing, or only restore runs others train.
    without_training: tuple[str, ...]
    # Experiment -> wall seconds of its last record at this preset (`last_wall_times`).
    last_wall_s: Mapping[str, float] = dataclasses.field(default_factory=dict)


def make_plan(
    experiments: Mapping[str, Experiment], preset: str, out_root: pathlib.Path | None = None
) -> Plan:
    """The plan of every experiment of `experiments` at `preset` on the devices training may
    use (`sinkjax.sharding.training_devices`: all, or the first `--devices`), with the wall
    times of the records an earlier main job left under `out_root`."""
    devices = training_devices()
    device_kind = devices[0].device_kind
    calibration = load_calibration(device_kind)
    n_devices = len(devices)
    first: dict[str, tuple[str, PlannedRun]] = {}
    users: dict[str, list[str]] = {}
    for name, experiment in experiments.items():
        for run in experiment.training_plan(experiment.presets[preset]):
            first.setdefault(run.share_key, (name, run))
            if first[run.share_key][0] != name:
                users.setdefault(run.share_key, []).append(name)
    lines = []
    for key, (name, run) in first.items():
        seconds, how = seconds_per_step(run, calibration)
        mesh = mesh_shape(run.runs, run.batch_size, n_devices)
        lines.append(PlanLine(name, run, tuple(users.get(key, ())), seconds, how, mesh))
    training = {line.experiment for line in lines}
    without = tuple(name for name in experiments if name not in training)
    return Plan(
        preset,
        device_kind,
        n_devices,
        calibration is not None,
        tuple(lines),
        without,
        last_wall_times(experiments, out_root, preset),
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def format_plan(plan: Plan) -> str:
    """The plan as a table: one line per training run, then the totals."""
    rows = [
        f"plan of `reproduce --preset {plan.preset}` on {plan.n_devices} x {plan.device_kind}",
        f"{'experiment':28s} {'run':20s} {'kind':14s} {'steps':>8s} {'runs':>4s} "
        f"{'s/step':>9s} {'':10s} {'mesh':>5s} {'expected':>9s}  shared with",
    ]
    for line in plan.lines:
        per_step = "?" if line.seconds_per_step is None else f"{line.seconds_per_step:.3g}"
        rows.append(
            f"{line.experiment:28s} {line.run.label:20.20s} {line.run.kind:14s} "
            f"{line.run.steps:8d} {line.run.runs:4d} {per_step:>9s} {line.how:10s} "
            f"{line.mesh[0]}x{line.mesh[1]:<3d} {_duration(line.wall_seconds):>9s}  "
            f"{', '.join(line.shared_with)}"
        )
    if plan.without_training:
        rows.append(f"no training of their own: {', '.join(plan.without_training)}")
    walls = [line.wall_seconds for line in plan.lines]
    if plan.calibrated and all(wall is not None for wall in walls):
        device = sum(line.device_seconds for line in plan.lines)
        rows.append(
            f"training: {_duration(device)} of device time, about {_duration(sum(walls))} on "
            f"these {plan.n_devices} device(s) (ideal scaling; analyses not included)"
        )
    else:
        rows.append(
            f"no calibration for {plan.device_kind!r} (or for some kinds): run "
            "`python bench/calibrate_plan.py` on this machine to time its steps"
        )
    if plan.last_wall_s:
        last = ", ".join(f"{name} {_duration(s)}" for name, s in plan.last_wall_s.items())
        rows.append(
            f"last records at {plan.preset} ({len(plan.last_wall_s)} experiments, "
            f"{_duration(sum(plan.last_wall_s.values()))} in all, one after another): {last}"
        )
    return "\n".join(rows)
