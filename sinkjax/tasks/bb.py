"""The Bigram-Backcopy (BB) task of spec A.2, sampled on device.

    x[0] = <s>;  x[1] ~ pi0  (never a trigger)
    x[n+1] = x[n-1]          if x[n] is a trigger   (backcopy)
    x[n+1] ~ P[x[n], :]      otherwise              (bigram)
    inputs = x[0:N], targets = x[1:N+1]

Triggers are the k most frequent characters (' ', 'e', 't' for tiny Shakespeare).
"""

import dataclasses
import functools
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from .corpus_stats import CorpusCounts, load_shipped_counts


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=["transition", "cumulative", "unigram", "pi0", "trigger_mask"],
    meta_fields=["bos", "chars"],
)
@dataclasses.dataclass(frozen=True)
class BBTask:
    """Distributions of the BB task (float32 device arrays; V = vocabulary size).

    Attributes:
        transition: (V, V) row-stochastic P. Rows `<s>` and `<d>` are the unigram marginal;
            columns `<s>` and `<d>` are 0, so they are never generated.
        cumulative: (V, V) row-wise cumulative sums of `transition` (for inverse-CDF sampling).
        unigram: (V,) character marginal over the whole text.
        pi0: (V,) the unigram with triggers zeroed and renormalised (law of x[1]).
        trigger_mask: (V,) bool, True for the trigger tokens.
        bos: id of `<s>` (= number of characters).
        chars: the characters of ids 0..bos-1.
    """

    transition: Float[Array, "V V"]
    cumulative: Float[Array, "V V"]
    unigram: Float[Array, " V"]
    pi0: Float[Array, " V"]
    trigger_mask: Bool[Array, " V"]
    bos: int
    chars: tuple[str, ...]

    @property
    def vocab_size(self) -> int:
        return self.bos + 2

    @property
    def triggers(self) -> np.ndarray:
        return np.flatnonzero(np.asarray(self.trigger_mask))

    @classmethod
    def from_counts(cls, counts: CorpusCounts, n_triggers: int = 3) -> "BBTask":
        """Build P, the marginal, pi0 and the triggers (the `n_triggers` most frequent tokens)."""
        if not 0 < n_triggers < len(counts.chars):
            raise ValueError(f"n_triggers must lie in 1..{len(counts.chars) - 1}, got {n_triggers}")
        unigram = counts.unigram / counts.unigram.sum()
        row_sums = counts.bigram.sum(axis=1, keepdims=True)
        transition = np.where(row_sums > 0, counts.bigram / np.maximum(row_sums, 1), unigram)
        trigger_mask = np.zeros(counts.vocab_size, bool)
        trigger_mask[np.argsort(unigram, kind="stable")[-n_triggers:]] = True
        pi0 = np.where(trigger_mask, 0.0, unigram)
        pi0 /= pi0.sum()
        return cls(
            transition=jnp.asarray(transition, jnp.float32),
            cumulative=jnp.asarray(np.cumsum(transition, axis=1), jnp.float32),
            unigram=jnp.asarray(unigram, jnp.float32),
            pi0=jnp.asarray(pi0, jnp.float32),
            trigger_mask=jnp.asarray(trigger_mask),
            bos=counts.bos,
            chars=counts.chars,
        )


def default_bb_task() -> BBTask:
    """The BB task of the paper: tiny-Shakespeare statistics (shipped counts), 3 triggers."""
    return BBTask.from_counts(load_shipped_counts())


def _inverse_cdf(cumulative: Float[Array, "B V"], u: Float[Array, " B"]) -> Int[Array, " B"]:
    """Index of the first entry with cumulative > u * total: a draw from each row's law.

    Scaling u by the row total makes float32 round-off harmless, and `<=` skips tokens of
    zero probability even when u = 0.
    """
    threshold = u * cumulative[:, -1]
    return jnp.sum(cumulative <= threshold[:, None], axis=-1).astype(jnp.int32)


def sample_bb(
    key: PRNGKeyArray, task: BBTask, batch_size: int, seq_len: int, *, with_bos: bool = True
) -> tuple[Int[Array, "B N"], Int[Array, "B N"]]:
    """Sample a batch of BB sequences.

    Args:
        key: PRNG key; all randomness of the batch is drawn from it up front.
        task: the BB distributions.
        batch_size: B sequences.
        seq_len: N input tokens per sequence (N + 1 tokens are generated).
        with_bos: start with `<s>` (spec A.2); False starts with x[0] ~ pi0 (spec A.4).

    Returns:
        (inputs, targets), both (B, N) int32, with targets[:, n] = x[n + 1].
    """
    k_first, k_steps = jax.random.split(key)
    u_first = jax.random.uniform(k_first, (batch_size,))
    first_real = _inverse_cdf(
        jnp.broadcast_to(jnp.cumsum(task.pi0), (batch_size, task.vocab_size)), u_first
    )
    n_steps = seq_len - 1 if with_bos else seq_len
    uniforms = jax.random.uniform(k_steps, (n_steps, batch_size))

    def step(state, u):
        x_prev, x_cur = state
        bigram = _inverse_cdf(task.cumulative[x_cur], u)
        x_next = jnp.where(task.trigger_mask[x_cur], x_prev, bigram)
        return (x_cur, x_next), x_next

    # x_prev of the first step is never read: the first real token is not a trigger.
    _, rest = jax.lax.scan(step, (first_real, first_real), uniforms)  # (n_steps, B)
    head = [jnp.full((batch_size,), task.bos, jnp.int32), first_real] if with_bos else [first_real]
    tokens = jnp.concatenate([jnp.stack(head, axis=1), rest.T], axis=1)  # (B, N + 1)
    return tokens[:, :-1], tokens[:, 1:]


def is_trigger(tokens: Int[Array, "..."], task: BBTask) -> Bool[Array, "..."]:
    """True where the token is a trigger (a backcopy position)."""
    return task.trigger_mask[tokens]


def oracle_distribution(
    inputs: Int[Array, "B N"], task: BBTask, *, position0: Literal["code", "corrected"] = "code"
) -> Float[Array, "B N V"]:
    """The Bayes-optimal next-token law p_n at every input position.

    p_n = one-hot(x[n-1]) at trigger positions and P[x[n], :] elsewhere. At `<s>` the official
    code scores against P[<s>] = the unigram ("code"); the true law there is pi0 ("corrected").
    """
    if position0 not in ("code", "corrected"):
        raise ValueError(f"position0 must be 'code' or 'corrected', got {position0!r}")
    bigram = task.transition[inputs]  # (B, N, V)
    if position0 == "corrected":
        bigram = jnp.where((inputs == task.bos)[..., None], task.pi0, bigram)
    previous = jnp.concatenate([inputs[:, :1], inputs[:, :-1]], axis=1)
    copy = jax.nn.one_hot(previous, task.vocab_size, dtype=bigram.dtype)
    return jnp.where(is_trigger(inputs, task)[..., None], copy, bigram)
