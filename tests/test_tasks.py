"""The Bigram-Backcopy task: shipped statistics, sampler invariants, transition law, oracle."""

import pathlib

import jax
import numpy as np
import pytest
from scipy import stats

from sinkjax.tasks import (
    BBTask,
    count_chars,
    default_bb_task,
    is_trigger,
    load_shipped_counts,
    oracle_distribution,
    sample_bb,
)
from sinkjax.tasks.build_counts import main as build_counts_main

CORPUS = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"
TASK = default_bb_task()
SPACE, E, T = 1, 43, 58


@pytest.fixture(scope="module")
def batch():
    inputs, targets = sample_bb(jax.random.key(0), TASK, 512, 256)
    return np.asarray(inputs), np.asarray(targets)


@pytest.mark.skipif(not CORPUS.exists(), reason="tiny Shakespeare corpus not available")
def test_shipped_counts_equal_rebuilt_counts():
    shipped, rebuilt = load_shipped_counts(), count_chars(CORPUS.read_text())
    assert shipped.chars == rebuilt.chars
    np.testing.assert_array_equal(shipped.unigram, rebuilt.unigram)
    np.testing.assert_array_equal(shipped.bigram, rebuilt.bigram)


def test_vocabulary_and_triggers():
    counts = load_shipped_counts()
    assert counts.vocab_size == 67 and counts.unigram.sum() == 1_115_394
    assert counts.chars[0] == "\n" and counts.chars[1] == " " and counts.chars[39] == "a"
    assert counts.bos == 65 and counts.delimiter == 66
    assert counts.bigram.sum() == 1_115_393  # every consecutive pair
    assert set(TASK.triggers.tolist()) == {SPACE, E, T}
    assert abs(float(TASK.unigram[SPACE]) - 0.1523) < 5e-4
    P = np.asarray(TASK.transition)
    np.testing.assert_allclose(P.sum(1), 1, rtol=1e-6)
    np.testing.assert_allclose(P[65], TASK.unigram, rtol=1e-6)
    assert np.all(P[:, 65:] == 0)
    assert float(np.asarray(TASK.pi0)[TASK.triggers].sum()) == 0


def test_count_chars_small_text():
    counts = count_chars("abab")
    assert counts.chars == ("a", "b")
    np.testing.assert_array_equal(counts.unigram, [2, 2, 0, 0])
    assert counts.bigram[0, 1] == 2 and counts.bigram[1, 0] == 1 and counts.bigram.sum() == 3


@pytest.mark.parametrize("with_bos", [True, False])
def test_sampler_invariants(with_bos):
    inputs, targets = (
        np.asarray(a) for a in sample_bb(jax.random.key(1), TASK, 64, 128, with_bos=with_bos)
    )
    assert inputs.shape == targets.shape == (64, 128) and inputs.dtype == np.int32
    x = np.concatenate([inputs, targets[:, -1:]], axis=1)  # the N + 1 generated tokens
    np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])
    trig = np.asarray(is_trigger(x, TASK))
    first = 1 if with_bos else 0
    if with_bos:
        assert np.all(x[:, 0] == TASK.bos)
    assert not np.any(x[:, first:] >= TASK.bos)  # <s> only at 0, <d> never
    assert not trig[:, first].any()  # the first real token is never a trigger
    assert not np.any(trig[:, 1:] & trig[:, :-1])  # no two consecutive triggers
    n, b = np.nonzero(trig[:, 1:-1].T)
    n = n + 1
    np.testing.assert_array_equal(x[b, n + 1], x[b, n - 1])  # backcopy
    assert not np.asarray(is_trigger(x[b, n + 1], TASK)).any()  # copied tokens are not triggers


def test_trigger_fraction(batch):
    inputs, _ = batch
    fraction = np.asarray(is_trigger(inputs, TASK)).mean()
    # 131k positions; sequences are correlated, so allow ~5 standard errors of a 512-seq mean.
    assert abs(fraction - 0.256) < 0.006


def _g_test_pvalue(inputs, targets, P, min_count=200):
    """Pooled G-test of the observed transitions at bigram positions against P."""
    trig = np.asarray(is_trigger(inputs, TASK))
    mask = (~trig) & (inputs != TASK.bos)
    src, dst = inputs[mask], targets[mask]
    observed = np.zeros_like(P)
    np.add.at(observed, (src, dst), 1)
    g, dof = 0.0, 0
    for v in np.flatnonzero(observed.sum(1) >= min_count):
        support = P[v] > 0
        expected = observed[v].sum() * P[v, support]
        o = observed[v, support]
        if np.any(observed[v, ~support]):
            return 0.0
        g += 2 * np.sum(np.where(o > 0, o * np.log(np.where(o > 0, o, 1) / expected), 0))
        dof += support.sum() - 1
    return stats.chi2.sf(g, dof)


def test_transition_frequencies_match_P(batch):
    inputs, targets = batch
    P = np.asarray(TASK.transition, np.float64)
    assert _g_test_pvalue(inputs, targets, P) > 1e-3
    # The same test rejects a slightly wrong law: it has the power to fail.
    perturbed = P * np.exp(0.15 * np.random.default_rng(0).standard_normal(P.shape)) * (P > 0)
    perturbed /= perturbed.sum(1, keepdims=True)
    assert _g_test_pvalue(inputs, targets, perturbed) < 1e-6


def test_oracle_and_bayes_risk(batch):
    inputs, _ = batch
    oracle = np.asarray(oracle_distribution(inputs[:64], TASK))
    corrected = np.asarray(oracle_distribution(inputs[:64], TASK, position0="corrected"))
    np.testing.assert_allclose(oracle.sum(-1), 1, rtol=1e-5)
    np.testing.assert_allclose(oracle[:, 0], np.broadcast_to(TASK.unigram, (64, 67)), rtol=1e-6)
    np.testing.assert_allclose(corrected[:, 0], np.broadcast_to(TASK.pi0, (64, 67)), rtol=1e-6)
    np.testing.assert_array_equal(oracle[:, 1:], corrected[:, 1:])
    trig = np.asarray(is_trigger(inputs[:64], TASK))
    b, n = np.nonzero(trig)
    assert np.all(oracle[b, n, inputs[:64][b, n - 1]] == 1)
    # Code-style Bayes risk on a 512 x 256 batch: mean entropy at bigram positions.
    full = np.asarray(oracle_distribution(inputs, TASK), np.float64)
    entropy = -np.sum(np.where(full > 0, full * np.log(np.where(full > 0, full, 1)), 0), -1)
    bayes = entropy[~np.asarray(is_trigger(inputs, TASK))].mean()
    assert 2.214 < bayes < 2.231


def test_from_counts_validates_triggers():
    with pytest.raises(ValueError, match="n_triggers"):
        BBTask.from_counts(load_shipped_counts(), n_triggers=0)


def test_build_counts_rebuilds_and_rejects_missing_file(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text("hello world")
    out = tmp_path / "c.npz"
    assert build_counts_main([str(text), "--out", str(out)]) == 0
    assert out.exists()
    assert build_counts_main([str(tmp_path / "missing.txt"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "pass a UTF-8 text file" in err
