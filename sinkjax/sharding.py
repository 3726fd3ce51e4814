"""Where a training program's runs and batch live: a (runs, data) mesh over the devices.

Every training program (`sinkjax.train`, `sinkjax.cot_rl.rl`) carries a leading run axis R (seeds,
architecture variants) under `vmap`. With more than one device, that axis is sharded over the
mesh axis "runs" (`NamedSharding`), and when there are devices to spare the training batch
inside each run is sharded over the mesh axis "data": XLA then averages the gradients across
those devices (data parallelism). The mesh is chosen per program by `mesh_shape`; nothing else
in a program knows about devices, except that a task's loss passes its sampled batch through
`shard_batch`.

On one device (or with `use_devices(1)`) there is no mesh and no sharding: the programs are
exactly the unsharded ones.

With several processes (`sinkjax.distributed`), the mesh spans every process's devices; the
arrays a program returns are gathered to every process by `to_host`.
"""

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

RUN_AXIS = "runs"
DATA_AXIS = "data"

# The number of devices training programs may use; None: every device (of every process).
_requested_devices: int | None = None


def use_devices(count: int | None) -> None:
    """Let training programs use the first `count` devices (None: all of them).

    Raises:
        ValueError: `count` is not positive or exceeds the devices there are.
    """
    global _requested_devices
    if count is not None:
        if count <= 0:
            raise ValueError(f"--devices must be positive or 'all', got {count}")
        if count > jax.device_count():
            raise ValueError(
                f"--devices {count}, but there are {jax.device_count()} "
                f"{jax.devices()[0].platform} devices; pass --devices all or at most "
                f"{jax.device_count()}"
            )
    _requested_devices = count


def requested_devices() -> int | None:
    """What `use_devices` was given: a count, or None for every device."""
    return _requested_devices


def training_devices() -> list[jax.Device]:
    """The devices training programs may use, in `jax.devices()` order."""
    found = jax.devices()
    return found if _requested_devices is None else found[:_requested_devices]


def mesh_shape(n_runs: int, batch_size: int | None, n_devices: int) -> tuple[int, int]:
    """(runs, data): how many devices shard the run axis and how many the batch of each run.

    Uses as many devices as possible: the runs axis takes a divisor of `n_runs` and the data
    axis a divisor of `batch_size` (None: no data axis), with runs x data <= `n_devices`. Among
    equal totals the larger runs axis wins: sharding runs needs no communication.
    """
    best = (1, 1)
    for runs in range(1, min(n_runs, n_devices) + 1):
        if n_runs % runs:
            continue
        room = n_devices // runs
        data = max(d for d in range(1, room + 1) if batch_size % d == 0) if batch_size else 1
        if runs * data > best[0] * best[1] or (runs * data == best[0] * best[1] and runs > best[0]):
            best = (runs, data)
    return best


@dataclasses.dataclass(frozen=True)
class Placement:
    """The mesh of one training program, or none (one device: nothing is sharded).

    Attributes:
        mesh: a ("runs", "data") mesh, or None.
    """

    mesh: Mesh | None = None

    @staticmethod
    def for_program(n_runs: int, batch_size: int | None) -> "Placement":
        """The placement of a program with `n_runs` runs of `batch_size` sequences per step
        on the `training_devices()` (no mesh when it would use one device)."""
        devices = training_devices()
        runs, data = mesh_shape(n_runs, batch_size, len(devices))
        if runs * data == 1:
            return ONE_DEVICE
        grid = np.asarray(devices[: runs * data]).reshape(runs, data)
        return Placement(Mesh(grid, (RUN_AXIS, DATA_AXIS), axis_types=(AxisType.Auto,) * 2))

    @property
    def run_axis_name(self) -> str | None:
        """The `spmd_axis_name` of the run axis's `vmap` (None without a mesh)."""
        return None if self.mesh is None else RUN_AXIS

    def jit(self, fn):
        """`jax.jit(fn)`, its outputs (each with the leading run axis) sharded like `put`'s."""
        if self.mesh is None:
            return jax.jit(fn)
        return jax.jit(fn, out_shardings=NamedSharding(self.mesh, PartitionSpec(RUN_AXIS)))

    def put(self, tree: Any) -> Any:
        """`tree` (every leaf with the leading run axis) placed with that axis sharded."""
        if self.mesh is None:
            return tree
        sharding = NamedSharding(self.mesh, PartitionSpec(RUN_AXIS))
        return jax.tree.map(lambda leaf: _put_global(leaf, sharding), tree)

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Trace and run the program under this mesh (so `shard_batch` sees it)."""
        if self.mesh is None:
            yield
            return
        with jax.set_mesh(self.mesh):
            yield

    def describe(self) -> dict[str, Any]:
        """JSON: devices used, the mesh's runs x data shape, the device kind and processes."""
        runs, data = (1, 1) if self.mesh is None else tuple(self.mesh.devices.shape)
        return {
            "devices": runs * data,
            "mesh": {RUN_AXIS: runs, DATA_AXIS: data},
            "device_kind": jax.devices()[0].device_kind,
            "processes": jax.process_count(),
        }


# The placement of a program on one device: no mesh, nothing sharded.
ONE_DEVICE = Placement()


def _put_global(leaf: Any, sharding: NamedSharding) -> jax.Array:
    """`leaf`, the same value on every process, as one array with `sharding`."""
    if isinstance(leaf, jax.Array) and leaf.sharding == sharding:
        return leaf
    if sharding.is_fully_addressable:
        return jax.device_put(leaf, sharding)
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        data = _put_global(jax.random.key_data(leaf), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaf))
    host = to_host(leaf)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def shard_batch(batch: jax.Array) -> jax.Array:
    """Shard a per-run batch (leading axis B) over the mesh's data axis, inside a program run
    under `Placement.active` and `vmap(spmd_axis_name=RUN_AXIS)`; unchanged without one."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or DATA_AXIS not in mesh.axis_names or mesh.shape[DATA_AXIS] == 1:
        return batch
    return jax.lax.with_sharding_constraint(batch, PartitionSpec(DATA_AXIS))


def to_host(tree: Any) -> Any:
    """Every leaf as a (writable) numpy array holding the whole value, on every process."""

    def gather(leaf):
        if not isinstance(leaf, jax.Array) or leaf.is_fully_addressable:
            return np.array(leaf)
        return np.array(multihost_utils.process_allgather(leaf, tiled=True))

    return jax.tree.map(gather, tree)


def to_default_device(tree: Any) -> Any:
    """`tree`'s arrays back on the default device, as programs without a mesh leave them
    (what analysis code after training expects), gathered from every process if sharded."""
    return jax.tree.map(
        lambda leaf: (
            leaf
            if not isinstance(leaf, jax.Array) or len(leaf.sharding.device_set) == 1
            else jax.numpy.asarray(to_host(leaf))
        ),
        tree,
    )
