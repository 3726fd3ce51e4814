"""The chain-identification task of the outcome-based-RL paper (spec §1.2-1.3), sampled on device.

Vocabulary for N vertex labels (the official tokenizer): ids 0-4 are the specials
`<PAD> <BOS> <EOS> <UNK> <SEP>`, then the vertex tokens v0..v{N-1}, then one edge token (i, j) per
ordered pair i != j, i-major then j, so vocab_size = 5 + N + N(N-1). The policy only sees the
*context* tokens (vertices and edges, no specials), numbered from 0 by `context id = token id - 5`:
vertex v is context id v and edge (i, j) is context id N + i(N-1) + j - [j > i], C = N^2 in all.

One sample (the official generator):
  * draw a uniform permutation `perm` of the N labels; chain A = perm[0..n-1], chain B =
    perm[n..2n-1], with edges perm[k] -> perm[k+1] inside each chain; perm[2n..N-1] are isolated;
  * draw the number of steps s in {1..n-1} from the task's step law; the start is
    a_{n-s} = perm[n-1-s] (the code's start index n-1-s), always on chain A (perm is random, so
    this loses no generality);
  * prompt = the 2(n-1) edge tokens (chain A's then chain B's, each in path order; shuffled per
    sample with `shuffle_edges`, which the order-free policy cannot see) + the start vertex token;
  * target = the terminal a_n = perm[n-1]; sinks = every vertex of out-degree 0 (both terminals
    and the isolated vertices).
"""

import dataclasses
import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Int, PRNGKeyArray

SPECIAL_TOKENS = ("<PAD>", "<BOS>", "<EOS>", "<UNK>", "<SEP>")
N_SPECIAL = len(SPECIAL_TOKENS)


def vertex_token(vertex):
    """Token id of vertex label(s) `vertex` (int or int array, values in 0..N-1)."""
    return N_SPECIAL + vertex


def edge_token(src, dst, n_vertices: int):
    """Token id of the edge token(s) (src, dst), src != dst (ints or int arrays)."""
    return N_SPECIAL + n_vertices + src * (n_vertices - 1) + dst - (dst > src)


def edge_endpoints(n_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """(src, dst), each (N(N-1),) int32: the endpoints of edge context ids N, N+1, ..., N^2-1."""
    src, dst = np.nonzero(~np.eye(n_vertices, dtype=bool))  # row-major: i-major, then j
    return src.astype(np.int32), dst.astype(np.int32)


@dataclasses.dataclass(frozen=True)
class ChainTask:
    """Two chains of n vertices (+ isolated vertices) and the law of the number of steps.

    Hashable, so it can be a static argument of `jax.jit`.
    """

    # n: vertices per chain (>= 2).
    chain_length: int
    # P(s = 1), ..., P(s = n-1): the law of the number of steps from the start to the terminal.
    step_probs: tuple[float, ...]
    # Vertex labels outside both chains (the OOD setup); N = 2n + n_isolated.
    n_isolated: int = 0
    # Shuffle the prompt's edge tokens per sample (the official code keeps them in path order).
    shuffle_edges: bool = False

    def __post_init__(self):
        n = self.chain_length
        if n < 2:
            raise ValueError(f"chain_length must be >= 2, got {n}")
        if self.n_isolated < 0:
            raise ValueError(f"n_isolated must be >= 0, got {self.n_isolated}")
        if len(self.step_probs) != n - 1:
            raise ValueError(
                f"step_probs has {len(self.step_probs)} entries; give one per step count "
                f"s = 1..{n - 1}"
            )
        probs = np.asarray(self.step_probs, np.float64)
        if np.any(probs < 0) or abs(probs.sum() - 1) > 1e-6:
            raise ValueError("step_probs must be non-negative and sum to 1")

    @classmethod
    def uniform(
        cls,
        chain_length: int,
        steps: Sequence[int] | None = None,
        *,
        n_vertices: int | None = None,
        shuffle_edges: bool = False,
    ) -> "ChainTask":
        """s uniform on `steps` (default 1..n-1) with N = `n_vertices` labels (default 2n)."""
        steps = sorted(set(range(1, chain_length) if steps is None else steps))
        if not steps or not all(1 <= s < chain_length for s in steps):
            raise ValueError(f"steps must be a non-empty subset of 1..{chain_length - 1}")
        probs = np.zeros(chain_length - 1)
        probs[np.asarray(steps) - 1] = 1.0 / len(steps)
        n_vertices = 2 * chain_length if n_vertices is None else n_vertices
        return cls(
            chain_length,
            tuple(float(p) for p in probs),
            n_isolated=n_vertices - 2 * chain_length,
            shuffle_edges=shuffle_edges,
        )

    @property
    def n_vertices(self) -> int:
        """N, the number of vertex labels."""
        return 2 * self.chain_length + self.n_isolated

    @property
    def n_edges(self) -> int:
        """2(n-1) edges per graph."""
        return 2 * (self.chain_length - 1)

    @property
    def prompt_length(self) -> int:
        """L = 2(n-1) + 1 prompt tokens (edges, then the start)."""
        return self.n_edges + 1

    @property
    def vocab_size(self) -> int:
        """5 + N + N(N-1) token ids."""
        return N_SPECIAL + self.n_vertices**2

    @property
    def default_max_new_tokens(self) -> int:
        """n + 1, the official training horizon."""
        return self.chain_length + 1


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=["tokens", "start", "target", "steps", "successor"],
    meta_fields=[],
)
@dataclasses.dataclass(frozen=True)
class ChainBatch:
    """A batch of B prompts with everything needed to score rollouts (N = number of labels).

    Attributes:
        tokens: (B, L) int32 token ids: 2(n-1) edge tokens, then the start vertex token.
        start: (B,) int32 start vertex label.
        target: (B,) int32 terminal vertex label of the start's chain.
        steps: (B,) int32 s, the number of moves from the start to the target (1..n-1).
        successor: (B, N) int32 the next vertex on each label's chain; -1 for the sinks.
    """

    tokens: Int[Array, "B L"]
    start: Int[Array, " B"]
    target: Int[Array, " B"]
    steps: Int[Array, " B"]
    successor: Int[Array, "B N"]

    @property
    def sink_mask(self) -> Bool[Array, "B N"]:
        """(B, N) bool: the vertices of out-degree 0 (terminals and isolated vertices)."""
        return self.successor < 0

    @property
    def context(self) -> Int[Array, "B L"]:
        """(B, L) int32 context ids of the prompt (token id - 5)."""
        return self.tokens - N_SPECIAL


def uniform_from_bits(bits: Array) -> Array:
    """float32 uniform on the open interval (0, 1) from uint32 bits (24 bits of resolution)."""
    return ((bits >> 8).astype(jnp.float32) + 0.5) * 2.0**-24


def sample_chains(key: PRNGKeyArray, task: ChainTask, batch_size: int) -> ChainBatch:
    """Sample `batch_size` independent prompts on device (jit-able; `task`, B static).

    All randomness is one flat draw of 32-bit words (flat draws compile several times faster
    than 2-D ones on CPU): a permutation is the argsort of N words (ties, probability below
    N^2 / 2^33 per sample, are broken by label), s is an inverse-CDF draw from one word.

    Args:
        key: PRNG key.
        task: chain length, isolated vertices, step law.
        batch_size: B.

    Returns:
        A `ChainBatch` with fixed shapes (B, L = 2n - 1) and (B, N).
    """
    n, n_vertices, n_edges = task.chain_length, task.n_vertices, task.n_edges
    width = n_vertices + 1 + n_edges
    bits = jax.random.bits(key, (batch_size * width,)).reshape(batch_size, width)
    perm = jnp.argsort(bits[:, :n_vertices], axis=1).astype(jnp.int32)  # (B, N)
    cdf = np.cumsum(np.asarray(task.step_probs, np.float64))
    cdf = jnp.asarray(cdf / cdf[-1], jnp.float32).at[-1].set(1.0)  # s = 1 + #{cdf <= u}
    u = uniform_from_bits(bits[:, n_vertices])
    steps = (jnp.searchsorted(cdf, u, side="right") + 1).astype(jnp.int32)

    # Edge k joins perm[tails[k]] -> perm[tails[k] + 1]: chain A's edges, then chain B's.
    tails = np.concatenate([np.arange(n - 1), np.arange(n, 2 * n - 1)])
    src, dst = perm[:, tails], perm[:, tails + 1]  # (B, 2(n-1))
    edges = edge_token(src, dst, n_vertices)
    if task.shuffle_edges:
        order = jnp.argsort(bits[:, n_vertices + 1 :], axis=1)
        edges = jnp.take_along_axis(edges, order, axis=1)
    start = jnp.take_along_axis(perm, (n - 1 - steps)[:, None], axis=1)[:, 0]
    tokens = jnp.concatenate([edges, vertex_token(start)[:, None]], axis=1)
    rows = jnp.arange(batch_size)[:, None]
    successor = jnp.full((batch_size, n_vertices), -1, jnp.int32).at[rows, src].set(dst)
    return ChainBatch(
        tokens=tokens.astype(jnp.int32),
        start=start,
        target=perm[:, n - 1],
        steps=steps,
        successor=successor,
    )
