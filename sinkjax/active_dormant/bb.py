"""The Bigram-Backcopy (BB) task of spec A.2, sampled on device.

    x[0] = <s>;  x[1] ~ pi0  (never a trigger)
    x[n+1] = x[n-1]          if x[n] is a trigger   (backcopy)
    x[n+1] ~ P[x[n], :]      otherwise              (bigram)
    inputs = x[0:N], targets = x[1:N+1]

Without `<s>` (spec A.4, `bos_num=0`) the sequence starts at x[0] ~ pi0 and the same rule
applies from n = 0. Triggers are the k most frequent characters (' ', 'e', 't' for tiny
Shakespeare). Every array is float32 (probabilities, nats) or int32 (token ids).
"""

import dataclasses
import functools
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, UInt32

from sinkjax.active_dormant.corpus_stats import CorpusCounts, load_shipped_counts

Position0 = Literal["code", "corrected"]


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=[
        "transition",
        "log_transition",
        "unigram",
        "pi0",
        "trigger_mask",
        "alias_threshold",
        "alias_index",
    ],
    meta_fields=["bos", "vocab_size", "chars"],
)
@dataclasses.dataclass(frozen=True)
class BBTask:
    """Distributions of the BB task, as a pytree of device arrays (V = vocabulary size).

    Attributes:
        transition: (V, V) float32 row-stochastic P. Rows `<s>` and `<d>` (and any character
            that is never followed by another) are the unigram marginal; columns `<s>` and
            `<d>` are 0, so they are never generated.
        log_transition: (V, V) float32 log P, -inf where P = 0.
        unigram: (V,) float32 character marginal over the whole text (0 at `<s>`, `<d>`).
        pi0: (V,) float32 the unigram with triggers zeroed and renormalised: the law of the
            first real token.
        trigger_mask: (V,) bool, True for the trigger tokens.
        alias_threshold: (V, V) uint32 Walker alias table of P, for the sampler: a draw from
            row i picks a column j uniformly and keeps it with probability
            alias_threshold[i, j] / 2**32 ...
        alias_index: (V, V) int32 ... and otherwise returns alias_index[i, j].
        bos: static id of `<s>` (= number of characters).
        vocab_size: static V (= number of characters + 2).
        chars: static characters of ids 0..bos-1.
    """

    transition: Float[Array, "V V"]
    log_transition: Float[Array, "V V"]
    unigram: Float[Array, " V"]
    pi0: Float[Array, " V"]
    trigger_mask: Bool[Array, " V"]
    alias_threshold: UInt32[Array, "V V"]
    alias_index: Int[Array, "V V"]
    bos: int
    vocab_size: int
    chars: tuple[str, ...]

    @property
    def triggers(self) -> np.ndarray:
        """(k,) int64 ids of the trigger tokens, ascending (host array)."""
        return np.flatnonzero(np.asarray(self.trigger_mask))

    @classmethod
    def from_counts(cls, counts: CorpusCounts, n_triggers: int = 3) -> "BBTask":
        """Build P, the marginal, pi0 and the triggers from corpus counts (spec A.1).

        Args:
            counts: unigram and bigram counts of a corpus.
            n_triggers: k; the triggers are the k most frequent characters,
                `argsort(marginal)[V - k:]` as in the official code.
        """
        if not 0 < n_triggers < len(counts.chars):
            raise ValueError(f"n_triggers must lie in 1..{len(counts.chars) - 1}, got {n_triggers}")
        vocab = counts.vocab_size
        if vocab > 2**16:
            raise ValueError(f"vocabularies above 2**16 tokens are not supported, got {vocab}")
        unigram = counts.unigram / counts.unigram.sum()
        row_sums = counts.bigram.sum(axis=1, keepdims=True)
        transition = np.where(row_sums > 0, counts.bigram / np.maximum(row_sums, 1), unigram)
        trigger_mask = np.zeros(vocab, bool)
        trigger_mask[np.argsort(unigram, kind="stable")[vocab - n_triggers :]] = True
        pi0 = np.where(trigger_mask, 0.0, unigram)
        pi0 /= pi0.sum()
        threshold, index = _alias_tables(transition)
        with np.errstate(divide="ignore"):
            log_transition = np.log(transition)
        return cls(
            transition=jnp.asarray(transition, jnp.float32),
            log_transition=jnp.asarray(log_transition, jnp.float32),
            unigram=jnp.asarray(unigram, jnp.float32),
            pi0=jnp.asarray(pi0, jnp.float32),
            trigger_mask=jnp.asarray(trigger_mask),
            alias_threshold=jnp.asarray(threshold),
            alias_index=jnp.asarray(index),
            bos=counts.bos,
            vocab_size=vocab,
            chars=counts.chars,
        )


def _alias_tables(transition: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose's alias tables of the rows of a (V, V) float64 row-stochastic matrix.

    A uniform column j followed by the keep-or-alias step below draws from the row exactly, up
    to float rounding.

    Returns:
        threshold: (V, V) uint32; keep column j of row i when a uniform 32-bit residual is
            below threshold[i, j] (probability threshold / 2**32; 0 for zero-probability j).
        index: (V, V) int32, the column returned otherwise.
    """
    size = transition.shape[1]
    accept = np.ones(transition.shape)
    index = np.broadcast_to(np.arange(size, dtype=np.int32), transition.shape).copy()
    for row, p in enumerate(transition):
        scaled = p * (size / p.sum())
        small = [j for j in range(size) if scaled[j] < 1.0]
        large = [j for j in range(size) if scaled[j] >= 1.0]
        while small and large:
            s, g = small.pop(), large.pop()
            accept[row, s], index[row, s] = scaled[s], g
            scaled[g] -= 1.0 - scaled[s]
            (small if scaled[g] < 1.0 else large).append(g)
        # Entries left over differ from 1 by round-off only: they keep themselves.
    threshold = np.minimum(np.floor(accept * 2.0**32), 2.0**32 - 1).astype(np.uint32)
    return threshold, index


def default_bb_task() -> BBTask:
    """The BB task of the paper: tiny-Shakespeare statistics (shipped counts), 3 triggers."""
    return BBTask.from_counts(load_shipped_counts())


def sample_bb(
    key: PRNGKeyArray,
    task: BBTask,
    batch_size: int,
    seq_len: int,
    *,
    with_bos: bool = True,
    unroll: int = 4,
) -> tuple[Int[Array, "B N"], Int[Array, "B N"]]:
    """Sample a batch of independent BB sequences on device.

    All randomness is drawn from `key` up front; one `lax.scan` over positions then applies
    the BB rule with O(1) work per token (a Walker-alias draw from P[x[n]]).

    Args:
        key: PRNG key.
        task: the BB distributions.
        batch_size: B sequences (static).
        seq_len: N >= 1 input tokens per sequence (static); N + 1 tokens are generated.
        with_bos: start with `<s>` (spec A.2); False starts with x[0] ~ pi0 (spec A.4).
        unroll: positions per scan iteration (a speed knob; the samples do not depend on it).

    Returns:
        (inputs, targets), both (B, N) int32, with inputs[:, n] = x[n], targets[:, n] = x[n+1].
    """
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    k_first, k_steps = jax.random.split(key)
    first_real = jax.random.choice(k_first, task.vocab_size, (batch_size,), p=task.pi0)
    first_real = first_real.astype(jnp.int32)
    n_steps = seq_len - 1 if with_bos else seq_len
    # One 32-bit draw r per token: column = floor(r V / 2**32) is uniform over 0..V-1 (to
    # 2**-32) and, given the column, the residual r V mod 2**32 is uniform on a grid of step V,
    # so the keep test is exact to V / 2**32. The high word of r V is assembled from 16-bit
    # halves in uint32 arithmetic (needs V <= 2**16).
    bits = jax.random.bits(k_steps, (n_steps, batch_size), jnp.uint32)
    vocab = jnp.uint32(task.vocab_size)
    high = ((bits >> 16) * vocab + (((bits & 0xFFFF) * vocab) >> 16)) >> 16
    columns, residuals = high.astype(jnp.int32), bits * vocab
    threshold_flat = task.alias_threshold.reshape(-1)
    index_flat = task.alias_index.reshape(-1)

    def step(state, draw):
        x_prev, x_cur = state
        column, residual = draw
        cell = x_cur * task.vocab_size + column
        bigram = jnp.where(residual < threshold_flat[cell], column, index_flat[cell])
        x_next = jnp.where(task.trigger_mask[x_cur], x_prev, bigram)
        return (x_cur, x_next), x_next

    # x_prev of the first step is never read: the first real token is not a trigger.
    _, rest = jax.lax.scan(step, (first_real, first_real), (columns, residuals), unroll=unroll)
    head = [jnp.full((batch_size,), task.bos, jnp.int32), first_real] if with_bos else [first_real]
    tokens = jnp.concatenate([jnp.stack(head, axis=1), rest.T], axis=1)  # (B, N + 1)
    return tokens[:, :-1], tokens[:, 1:]


def is_trigger(tokens: Int[Array, "..."], task: BBTask) -> Bool[Array, "..."]:
    """True where the token is a trigger (a backcopy position); same shape as `tokens`."""
    return task.trigger_mask[tokens]


def _check_position0(position0: str) -> None:
    if position0 not in ("code", "corrected"):
        raise ValueError(f"position0 must be 'code' or 'corrected', got {position0!r}")


def oracle_distribution(
    inputs: Int[Array, "B N"], task: BBTask, *, position0: Position0 = "code"
) -> Float[Array, "B N V"]:
    """The Bayes-optimal next-token law p_n at every input position (spec C).

    p_n = one-hot(x[n-1]) at trigger positions and P[x[n], :] elsewhere. At `<s>` the official
    code scores against P[<s>] = the unigram ("code"); the true law there is pi0
    ("corrected"). Sequences without `<s>` have no special position.

    Returns:
        (B, N, V) float32; every row sums to 1.
    """
    _check_position0(position0)
    bigram = task.transition[inputs]
    if position0 == "corrected":
        bigram = jnp.where((inputs == task.bos)[..., None], task.pi0, bigram)
    # Position 0 is never a trigger in BB sequences; it gets itself as a placeholder.
    previous = jnp.concatenate([inputs[:, :1], inputs[:, :-1]], axis=1)
    copy = jax.nn.one_hot(previous, task.vocab_size, dtype=jnp.float32)
    return jnp.where(is_trigger(inputs, task)[..., None], copy, bigram)


def bayes_risks(
    inputs: Int[Array, "B N"], task: BBTask, *, position0: Position0 = "code"
) -> dict[str, Float[Array, ""]]:
    """Bayes risks of the batch: the mean oracle entropy H(p_n) in nats (spec A.3).

    Returns:
        float32 scalars `backcopy` (over trigger positions: 0, the copy is deterministic) and
        `bigram` (over all other positions, `<s>` included: H(unigram) there in "code" mode,
        H(pi0) in "corrected" mode). Computed from per-token entropies, without the (B, N, V)
        oracle.
    """
    _check_position0(position0)
    row_entropy = jnp.sum(jax.scipy.special.entr(task.transition), axis=-1)  # (V,)
    entropy = row_entropy[inputs]
    if position0 == "corrected":
        pi0_entropy = jnp.sum(jax.scipy.special.entr(task.pi0))
        entropy = jnp.where(inputs == task.bos, pi0_entropy, entropy)
    trigger = is_trigger(inputs, task)
    bigram = jnp.sum(jnp.where(trigger, 0.0, entropy)) / jnp.sum(~trigger)
    # A trigger's oracle is one-hot, whose entropy is exactly 0.
    return {"backcopy": jnp.zeros((), jnp.float32), "bigram": bigram.astype(jnp.float32)}
