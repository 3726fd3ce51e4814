"""Runs and batches sharded over devices (`sinkjax.sharding`), and several hosts as one job.

The multi-device tests start subprocesses with forced CPU devices
(`--xla_force_host_platform_device_count`), which JAX reads once at start-up.

Sharded runs are not bit-identical to one device on the CPU: XLA compiles each device's
share of the vmapped runs (or of the batch) as a smaller program, whose products and sums
round differently in the last float32 bit (the step-0 losses already differ by ~1e-7
relative). The claim values must agree to `RTOL` relative (`ATOL` absolute near zero): a
few float32 ulps grown through the `ci` runs' 40-odd optimiser steps.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from experiments import cli
from sinkjax import distributed, sharding

RTOL, ATOL = 2e-3, 1e-5
# One experiment per training program: BB (one seed: the batch is sharded), a BB architecture
# sweep (the run axis is sharded), the char LM, the text LM and chain RL.
EXPERIMENTS = (
    "bb-dynamics",
    "residual-peaks",
    "char-lm-dynamics",
    "sink-dynamics",
    "chains-emergence",
)
DRIVER = pathlib.Path(__file__).parent / "sharded_runs.py"


@pytest.mark.parametrize(
    ("runs", "batch", "devices", "expected"),
    [
        (1, 8, 1, (1, 1)),
        (4, 8, 4, (4, 1)),  # runs first: no communication
        (1, 8, 4, (1, 4)),  # one run: data parallel
        (2, 8, 8, (2, 4)),
        (3, 8, 8, (1, 8)),  # all 8 on the batch beat 3 x 2
        (3, 4, 8, (3, 2)),  # 6 of 8 devices
        (3, 5, 4, (3, 1)),
        (1, 6, 4, (1, 3)),
        (5, None, 4, (1, 1)),  # no divisor of 5 fits and no batch to shard
    ],
)
def test_mesh_uses_as_many_devices_as_divide_the_runs_and_batch(runs, batch, devices, expected):
    assert sharding.mesh_shape(runs, batch, devices) == expected


def test_one_device_has_no_mesh_and_leaves_arrays_alone():
    placement = sharding.Placement.for_program(4, 8)
    assert placement.mesh is None and placement.run_axis_name is None
    tree = {"w": jax.numpy.ones((4, 3))}
    assert placement.put(tree) is tree
    assert sharding.shard_batch(tree["w"]) is tree["w"]
    assert placement.describe()["mesh"] == {"runs": 1, "data": 1}


def test_device_count_errors_name_the_fix():
    with pytest.raises(ValueError, match="pass --devices all or at most"):
        sharding.use_devices(jax.device_count() + 1)
    with pytest.raises(ValueError, match="must be positive"):
        sharding.use_devices(0)
    sharding.use_devices(None)


def test_cli_refuses_bad_device_counts(capsys):
    assert cli.main(["run", "bb-dynamics", "--devices", "lots"]) == 2
    assert "positive integer or 'all'" in capsys.readouterr().err
    assert cli.main(["run", "bb-dynamics", "--devices", str(jax.device_count() + 1)]) == 2
    assert "pass --devices all" in capsys.readouterr().err
    sharding.use_devices(None)


def test_clusters_are_detected_from_their_launchers_variables():
    assert not distributed.cluster_detected({})
    assert not distributed.cluster_detected({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1"})
    assert distributed.cluster_detected({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4"})
    assert distributed.cluster_detected({"OMPI_MCA_orte_hnp_uri": "x", "OMPI_COMM_WORLD_SIZE": "2"})
    assert distributed.cluster_detected({"TPU_WORKER_HOSTNAMES": "a,b"})
    assert distributed.cluster_detected({"JAX_COORDINATOR_ADDRESS": "h:1234"})


def test_a_coordinator_needs_the_process_count_and_id(capsys):
    with pytest.raises(ValueError, match="together"):
        distributed.initialize("localhost:1234")
    assert cli.main(["run", "bb-dynamics", "--coordinator", "localhost:1234"]) == 2
    assert "--num-processes N and --process-id I together" in capsys.readouterr().err


def _run(out: pathlib.Path, devices: str, n_forced: int, names, extra=()) -> subprocess.Popen:
    """The driver in a subprocess with `n_forced` CPU devices."""
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={n_forced}"}
    command = [sys.executable, str(DRIVER), str(out), devices, *names]
    if extra:
        command += ["--", *extra]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finish(process: subprocess.Popen, timeout: float = 600) -> None:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output.decode()[-3000:]


def _record(out: pathlib.Path, name: str) -> dict:
    return json.loads((out / name / "record.json").read_text())


def _assert_close(sharded, single, where: str) -> None:
    """Claim values agree to RTOL/ATOL (numbers, nested lists and dicts); others are equal."""
    if isinstance(single, dict):
        assert sharded.keys() == single.keys(), where
        for key in single:
            _assert_close(sharded[key], single[key], f"{where}.{key}")
    elif isinstance(single, int | float | list) and not isinstance(single, bool):
        np.testing.assert_allclose(
            np.asarray(sharded, float), np.asarray(single, float), RTOL, ATOL, True, where
        )
    else:
        assert sharded == single, where


@pytest.fixture(scope="module")
def four_device_runs(tmp_path_factory):
    """Every EXPERIMENTS run at `ci` on 4 forced CPU devices: on one of them, and on all."""
    root = tmp_path_factory.mktemp("sharded")
    runs = {devices: _run(root / devices, devices, 4, EXPERIMENTS) for devices in ("1", "all")}
    for process in runs.values():
        _finish(process)
    return {devices: root / devices for devices in runs}


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_sharded_runs_give_the_one_device_claims(four_device_runs, name):
    single = _record(four_device_runs["1"], name)
    sharded = _record(four_device_runs["all"], name)
    assert single["devices"]["available"] == sharded["devices"]["available"] == 4
    meshes = [run["mesh"] for run in sharded["devices"]["training_runs"].values()]
    assert meshes and all(m["runs"] * m["data"] > 1 for m in meshes), meshes
    assert all(run["devices"] == 1 for run in single["devices"]["training_runs"].values()), single[
        "devices"
    ]
    for a, b in zip(sharded["claims"], single["claims"], strict=True):
        assert a["id"] == b["id"]
        _assert_close(a["measured"], b["measured"], f"{name}/{a['id']}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_one_sharded_run_together(four_device_runs, tmp_path):
    """Two processes on localhost, two forced CPU devices each: one 4-device job, one record
    (written by process 0), the one-device claim values."""
    name = "bb-dynamics"
    port = _free_port()
    out = tmp_path / "two-hosts"
    processes = [
        _run(
            out,
            "all",
            2,
            [name],
            ["--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
        )
        for i in range(2)
    ]
    for process in processes:
        _finish(process)
    record = _record(out, name)
    assert record["devices"]["processes"] == 2 and record["devices"]["available"] == 4
    (run,) = record["devices"]["training_runs"].values()
    assert run["devices"] == 4 and run["processes"] == 2
    single = _record(four_device_runs["1"], name)
    for a, b in zip(record["claims"], single["claims"], strict=True):
        _assert_close(a["measured"], b["measured"], f"two hosts/{a['id']}")
