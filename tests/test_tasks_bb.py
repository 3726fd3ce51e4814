"""The Bigram-Backcopy task: distributions, sampler invariants and law, oracle, Bayes risks.

Statistical checks compare one fixed-key 512 x 256 batch (the paper's batch size) with exact
values computed from the chain itself (`exact_position_laws`), with tolerances in standard
errors estimated from the batch: sequences are independent, so per-sequence statistics give
the error of the batch mean.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from sinkjax.active_dormant.bb import (
    BBTask,
    bayes_risks,
    default_bb_task,
    is_trigger,
    oracle_distribution,
    sample_bb,
)
from sinkjax.active_dormant.corpus_stats import load_shipped_counts

TASK = default_bb_task()
V, BOS, DELIM = 67, 65, 66
TRIGGERS = {1, 43, 58}  # ' ', 'e', 't'
B, N = 512, 256
P64 = np.asarray(TASK.transition, np.float64)
PI0 = np.asarray(TASK.pi0, np.float64)
TRIG = np.asarray(TASK.trigger_mask)


def entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in nats over the last axis, 0 log 0 = 0."""
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)


def exact_position_laws(seq_len: int, with_bos: bool = True) -> np.ndarray:
    """(seq_len, V) float64: the exact law of x[n] for n < seq_len under spec A.2.

    Propagates the law of the pair (x[n-1], x[n]): a non-trigger x[n] = b moves to (b, c) with
    probability P[b, c]; a trigger b after a moves to (b, a).
    """
    pair = np.zeros((V, V))
    pair[BOS] = PI0  # the first real token; its predecessor (<s> or nothing) is never read
    laws = [np.eye(V)[BOS]] if with_bos else []
    while len(laws) < seq_len:
        law = pair.sum(0)
        laws.append(law)
        step = (law * ~TRIG)[:, None] * P64
        step[TRIG] += pair[:, TRIG].T
        pair = step
    return np.stack(laws)


def ratio_and_standard_error(numerators: np.ndarray, denominators: np.ndarray):
    """Ratio of sums over independent sequences and its delta-method standard error."""
    ratio = numerators.sum() / denominators.sum()
    se = np.sqrt(np.sum((numerators - ratio * denominators) ** 2)) / denominators.sum()
    return ratio, se


@functools.partial(jax.jit, static_argnames=("with_bos", "unroll"))
def sample_paper_batch(key, task, with_bos=True, unroll=4):
    """A (B, N) = (512, 256) batch, jitted with the task as a pytree argument."""
    return sample_bb(key, task, B, N, with_bos=with_bos, unroll=unroll)


oracle_jit = jax.jit(oracle_distribution, static_argnames="position0")
bayes_risks_jit = jax.jit(bayes_risks, static_argnames="position0")


@pytest.fixture(scope="module", params=[True, False], ids=["bos", "no_bos"])
def any_batch(request):
    """(with_bos, inputs, targets) of a 512 x 256 batch with and without `<s>`."""
    inputs, targets = sample_paper_batch(jax.random.key(0), TASK, with_bos=request.param)
    return request.param, np.asarray(inputs), np.asarray(targets)


@pytest.fixture(scope="module")
def batch():
    inputs, targets = sample_paper_batch(jax.random.key(0), TASK)
    return np.asarray(inputs), np.asarray(targets)


# ---------------------------------------------------------------------------------------------
# Distributions


def test_task_distributions():
    assert (TASK.bos, TASK.vocab_size, len(TASK.chars)) == (BOS, V, 65)
    assert set(TASK.triggers.tolist()) == TRIGGERS and TRIG.dtype == bool
    for array in (TASK.transition, TASK.log_transition, TASK.unigram, TASK.pi0):
        assert array.dtype == jnp.float32
    assert abs(float(TASK.unigram[1]) - 0.1523) < 5e-5
    np.testing.assert_allclose(P64.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(P64[BOS], TASK.unigram, rtol=1e-6)
    np.testing.assert_allclose(P64[DELIM], TASK.unigram, rtol=1e-6)
    assert np.all(P64[:, [BOS, DELIM]] == 0)
    np.testing.assert_allclose(np.exp(TASK.log_transition), P64, rtol=1e-6, atol=0)
    assert np.all(np.isneginf(np.asarray(TASK.log_transition)) == (P64 == 0))
    assert np.all(PI0[TRIG] == 0) and np.all(PI0[BOS:] == 0) and abs(PI0.sum() - 1) < 1e-6
    unigram = np.asarray(TASK.unigram, np.float64)
    np.testing.assert_allclose(PI0[~TRIG], unigram[~TRIG] / unigram[~TRIG].sum(), rtol=1e-6)
    counts = load_shipped_counts()
    rows = counts.bigram[:BOS] / counts.bigram[:BOS].sum(1, keepdims=True)
    np.testing.assert_allclose(P64[:BOS], rows, rtol=1e-6, atol=1e-9)


def test_alias_tables_reproduce_P():
    threshold = np.asarray(TASK.alias_threshold, np.float64) / 2.0**32
    index = np.asarray(TASK.alias_index)
    rebuilt = np.zeros((V, V))
    rows = np.repeat(np.arange(V), V)
    np.add.at(rebuilt, (rows, np.tile(np.arange(V), V)), threshold.ravel() / V)
    np.add.at(rebuilt, (rows, index.ravel()), (1 - threshold.ravel()) / V)
    np.testing.assert_allclose(rebuilt, P64, atol=1e-7)
    assert np.all(rebuilt[P64 == 0] == 0)  # impossible tokens are never drawn


def test_from_counts_trigger_choice():
    counts = load_shipped_counts()
    five = BBTask.from_counts(counts, n_triggers=5)
    assert set(five.triggers.tolist()) == TRIGGERS | {counts.chars.index(c) for c in "oa"}
    for bad in (0, 65):
        with pytest.raises(ValueError, match="n_triggers"):
            BBTask.from_counts(counts, n_triggers=bad)


def test_task_is_a_pytree_with_static_metadata():
    leaves, treedef = jax.tree_util.tree_flatten(TASK)
    assert len(leaves) == 7 and all(isinstance(leaf, jax.Array) for leaf in leaves)
    rebuilt = jax.tree_util.tree_unflatten(treedef, leaves)
    assert (rebuilt.bos, rebuilt.vocab_size, rebuilt.chars) == (TASK.bos, V, TASK.chars)


# ---------------------------------------------------------------------------------------------
# Sampler


def test_sampler_invariants(any_batch):
    with_bos, inputs, targets = any_batch
    assert inputs.shape == targets.shape == (B, N)
    assert inputs.dtype == targets.dtype == np.int32
    np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])
    x = np.concatenate([inputs, targets[:, -1:]], axis=1)  # the N + 1 generated tokens
    first = 1 if with_bos else 0  # index of the first real token
    assert np.all(x[:, 0] == BOS) if with_bos else not np.any(x == BOS)
    assert not np.any(x[:, first:] >= BOS)  # <s> only at 0, <d> never
    trig = is_trigger(jnp.asarray(x), TASK)
    assert trig.shape == x.shape and trig.dtype == jnp.bool_
    trig = np.asarray(trig)
    assert not trig[:, first].any()  # the first real token is never a trigger
    assert not np.any(trig[:, 1:] & trig[:, :-1])  # no two consecutive triggers
    b, n = np.nonzero(trig[:, :-1])
    assert np.all(n > first)
    np.testing.assert_array_equal(x[b, n + 1], x[b, n - 1])  # backcopy
    assert not TRIG[x[b, n + 1]].any()  # a copied token is never a trigger
    assert trig.any()


def test_sampler_is_deterministic_and_unroll_free(batch):
    again = sample_paper_batch(jax.random.key(0), TASK, unroll=1)
    np.testing.assert_array_equal(again[0], batch[0])
    other = sample_paper_batch(jax.random.key(1), TASK)
    assert not np.array_equal(other[0], batch[0])


def test_sampler_vmaps_over_keys():
    keys = jax.random.split(jax.random.key(5), 3)
    inputs, targets = jax.jit(jax.vmap(lambda k: sample_bb(k, TASK, 4, 16)))(keys)
    assert inputs.shape == targets.shape == (3, 4, 16)
    assert not np.array_equal(inputs[0], inputs[1])
    with pytest.raises(ValueError, match="seq_len"):
        sample_bb(jax.random.key(0), TASK, 4, 0)


def chi_square_pvalue(observed: np.ndarray, probs: np.ndarray, min_expected: float = 5.0):
    """Pearson chi-square p-value of multinomial rows `observed` (R, K) against `probs` (R, K).

    Within each row, cells with expected count < `min_expected` are pooled into one cell;
    rows with fewer than two cells left add nothing. Degrees of freedom add up over rows.
    """
    statistic, dof = 0.0, 0
    for o_row, p_row in zip(observed, probs, strict=True):
        expected = o_row.sum() * p_row
        big = expected >= min_expected
        o = np.append(o_row[big], o_row[~big].sum())
        e = np.append(expected[big], expected[~big].sum())
        o, e = o[e > 0], e[e > 0]
        if len(e) >= 2:
            statistic += np.sum((o - e) ** 2 / e)
            dof += len(e) - 1
    return stats.chi2.sf(statistic, dof), dof


def test_bigram_transitions_follow_P(batch):
    inputs, targets = batch
    bigram_positions = ~TRIG[inputs] & (inputs != BOS)
    observed = np.zeros((V, V))
    np.add.at(observed, (inputs[bigram_positions], targets[bigram_positions]), 1)
    assert observed[P64 == 0].sum() == 0  # no impossible transition
    pvalue, dof = chi_square_pvalue(observed, P64)
    assert dof > 500 and pvalue > 1e-3, pvalue
    # The same test has the power to fail: it rejects a law off by a few percent per entry ...
    noise = np.exp(0.05 * np.random.default_rng(0).standard_normal(P64.shape))
    perturbed = P64 * noise / (P64 * noise).sum(1, keepdims=True)
    assert chi_square_pvalue(observed, perturbed)[0] < 1e-6
    # ... and a transposed (renormalised) matrix, which also allows unseen transitions.
    transposed = P64.T[:BOS, :BOS] / P64.T[:BOS, :BOS].sum(1, keepdims=True)
    assert chi_square_pvalue(observed[:BOS, :BOS], transposed)[0] < 1e-12


@pytest.mark.parametrize("with_bos", [True, False])
def test_first_real_token_follows_pi0(with_bos):
    inputs, targets = sample_bb(jax.random.key(7), TASK, 20_000, 1, with_bos=with_bos)
    first = np.asarray(targets if with_bos else inputs)[:, 0]
    observed = np.bincount(first, minlength=V)[None]
    assert observed[0, PI0 == 0].sum() == 0
    assert chi_square_pvalue(observed, PI0[None])[0] > 1e-3
    assert chi_square_pvalue(observed, np.asarray(TASK.unigram, np.float64)[None])[0] < 1e-12


def test_trigger_fraction(batch):
    inputs, _ = batch
    exact = exact_position_laws(N)[:, TRIG].sum(1).mean()
    assert abs(exact - 0.256) < 1e-3  # spec A.2: about 25.6% of input positions
    per_sequence = TRIG[inputs].mean(1)
    se = per_sequence.std() / np.sqrt(B)  # about 0.0012
    assert abs(per_sequence.mean() - exact) < 4 * se


# ---------------------------------------------------------------------------------------------
# Oracle and Bayes risks


def test_oracle_distribution(any_batch):
    with_bos, inputs, targets = any_batch
    inputs, targets = inputs[:32, :64], targets[:32, :64]
    oracle = oracle_jit(inputs, TASK)
    corrected = oracle_jit(inputs, TASK, position0="corrected")
    assert oracle.shape == (32, 64, V) and oracle.dtype == jnp.float32
    oracle, corrected = np.asarray(oracle), np.asarray(corrected)
    np.testing.assert_allclose(oracle.sum(-1), 1.0, rtol=1e-5)
    # The next token always has positive oracle probability.
    assert np.all(np.take_along_axis(oracle, targets[..., None], -1) > 0)
    b, n = np.nonzero(TRIG[inputs])
    np.testing.assert_array_equal(oracle[b, n], np.eye(V)[inputs[b, n - 1]])
    b, n = np.nonzero(~TRIG[inputs])
    np.testing.assert_array_equal(oracle[b, n], np.asarray(TASK.transition)[inputs[b, n]])
    if with_bos:
        np.testing.assert_array_equal(oracle[:, 0], np.broadcast_to(TASK.unigram, (32, V)))
        np.testing.assert_array_equal(corrected[:, 0], np.broadcast_to(TASK.pi0, (32, V)))
        np.testing.assert_array_equal(oracle[:, 1:], corrected[:, 1:])
    else:
        np.testing.assert_array_equal(oracle, corrected)
    with pytest.raises(ValueError, match="position0"):
        oracle_distribution(inputs, TASK, position0="true")


def test_bayes_risks(batch):
    inputs, _ = batch
    risks = bayes_risks_jit(inputs, TASK)
    corrected = bayes_risks_jit(inputs, TASK, position0="corrected")
    assert set(risks) == {"backcopy", "bigram"} and risks["bigram"].dtype == jnp.float32
    assert float(risks["backcopy"]) == 0.0 == float(corrected["backcopy"])
    # The same numbers from the oracle itself (on 64 sequences, to keep (B, N, V) small).
    head = inputs[:64]
    for mode in ("code", "corrected"):
        h = entropy(np.asarray(oracle_jit(head, TASK, position0=mode), np.float64))
        expected = float(bayes_risks_jit(head, TASK, position0=mode)["bigram"])
        assert abs(h[~TRIG[head]].mean() - expected) < 1e-5
        assert h[TRIG[head]].max() == 0.0
    # Corrected mode differs only at position 0: H(pi0) instead of H(unigram), once a row.
    bigram_positions = (~TRIG[inputs]).sum()
    shift = B * (entropy(PI0) - entropy(np.asarray(TASK.unigram, np.float64))) / bigram_positions
    assert abs(shift - 0.1023 * B / bigram_positions) < 1e-4
    assert abs(float(corrected["bigram"]) - float(risks["bigram"]) - shift) < 1e-5
    # Exact expectation (ratio of expected sums) against spec A.3's 2.219-2.225 ...
    non_trigger = exact_position_laws(N) * ~TRIG
    row_entropy = entropy(P64)
    exact = np.sum(non_trigger @ row_entropy) / non_trigger.sum()
    assert 2.219 < exact < 2.226
    # ... and the batch against it: one 512 x 256 batch varies by ~0.005 (one SE).
    value, se = ratio_and_standard_error(
        (row_entropy[inputs] * ~TRIG[inputs]).sum(1), (~TRIG[inputs]).sum(1)
    )
    assert abs(value - float(risks["bigram"])) < 1e-5
    assert abs(value - exact) < 5 * se
