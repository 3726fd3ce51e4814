"""Several hosts as one JAX program: `jax.distributed`, started when a cluster asks for it.

Each process runs the same command; JAX joins their devices into one set (`jax.devices()`
lists every process's), so the meshes of `sinkjax.sharding` span the hosts. Every process
computes every number; only process 0 writes records and figures (`is_writer`).

A cluster is recognised by the variables its launcher sets (the ones `jax.distributed`
detects by itself): SLURM with more than one task, Open MPI's `mpirun`, a multi-host Cloud
TPU, or `JAX_COORDINATOR_ADDRESS`. Elsewhere, pass the coordinator, process count and
process id explicitly (`sinkjax ... --coordinator HOST:PORT --num-processes N --process-id I`).
"""

import os

import jax


def cluster_detected(environ: os._Environ | dict[str, str] = os.environ) -> bool:
    """True when a launcher's variables say this is one of several processes."""
    slurm = "SLURM_JOB_ID" in environ and int(environ.get("SLURM_NTASKS", "1")) > 1
    mpi = "OMPI_MCA_orte_hnp_uri" in environ and int(environ.get("OMPI_COMM_WORLD_SIZE", "1")) > 1
    tpu = "," in environ.get("TPU_WORKER_HOSTNAMES", "")
    return slurm or mpi or tpu or "JAX_COORDINATOR_ADDRESS" in environ


def initialize(
    coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None
) -> bool:
    """Join the other processes of this job, before any other JAX call (a second call does
    nothing). Returns whether this process is part of a multi-process job.

    Args:
        coordinator: "HOST:PORT" of process 0; with it, `num_processes` and `process_id` are
            required. None: join only if `cluster_detected()`, with what the launcher set.

    Raises:
        ValueError: a coordinator without a process count and id, or the reverse.
    """
    if jax.distributed.is_initialized():
        return True
    explicit = (coordinator, num_processes, process_id)
    if any(value is not None for value in explicit):
        if any(value is None for value in explicit):
            raise ValueError(
                "give --coordinator HOST:PORT, --num-processes N and --process-id I together"
            )
        jax.distributed.initialize(coordinator, num_processes, process_id)
        return True
    if cluster_detected():
        jax.distributed.initialize()
        return True
    return False


def is_writer() -> bool:
    """Whether this process writes the files every process computed (process 0)."""
    return jax.process_index() == 0
