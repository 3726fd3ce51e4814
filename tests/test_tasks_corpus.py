"""Corpus statistics: shipped tiny-Shakespeare counts, vocabulary ids, `.npz` I/O, rebuild CLI,
and the record of the counts a BB experiment read."""

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments.active_dormant.bb_common import load_task
from experiments.framework.experiment import RunContext
from sinkjax.active_dormant.build_counts import main as build_counts_main
from sinkjax.active_dormant.corpus_stats import (
    count_chars,
    load_counts,
    load_shipped_counts,
    save_counts,
    shipped_counts_path,
)

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared/data/tinyshakespeare.txt"
N_CHARS = 1_115_394


@pytest.fixture(scope="module")
def shipped():
    return load_shipped_counts()


def test_shipped_counts_equal_counts_rebuilt_from_the_corpus(shipped):
    if not CORPUS.exists():
        pytest.skip(f"corpus not found at {CORPUS}")
    rebuilt = count_chars(CORPUS.read_text(encoding="utf-8"))
    assert shipped.chars == rebuilt.chars
    np.testing.assert_array_equal(shipped.unigram, rebuilt.unigram)
    np.testing.assert_array_equal(shipped.bigram, rebuilt.bigram)


def test_vocabulary_ids(shipped):
    chars = shipped.chars
    assert len(chars) == 65 and shipped.vocab_size == 67
    assert (shipped.bos, shipped.delimiter) == (65, 66)
    assert chars[:13] == tuple("\n !$&',-.3:;?")
    assert "".join(chars[13:39]) == "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert "".join(chars[39:65]) == "abcdefghijklmnopqrstuvwxyz"


def test_unigram_and_bigram_counts(shipped):
    unigram, bigram = shipped.unigram, shipped.bigram
    assert unigram.dtype == bigram.dtype == np.int64
    assert unigram.shape == (67,) and bigram.shape == (67, 67)
    assert unigram.sum() == N_CHARS and bigram.sum() == N_CHARS - 1  # every consecutive pair
    assert np.all(unigram[65:] == 0) and np.all(bigram[65:] == 0) and np.all(bigram[:, 65:] == 0)
    # Each occurrence starts one pair except the last character's; each ends one but the first's.
    last, first = np.zeros(67, np.int64), np.zeros(67, np.int64)
    last[shipped.chars.index("\n")] = 1  # the text ends with a newline ...
    first[shipped.chars.index("F")] = 1  # ... and starts with "First Citizen:"
    np.testing.assert_array_equal(bigram.sum(1), unigram - last)
    np.testing.assert_array_equal(bigram.sum(0), unigram - first)
    marginal = unigram / unigram.sum()
    assert abs(marginal[1] - 0.1523) < 5e-5  # ' '
    top5 = [shipped.chars[i] for i in np.argsort(marginal)[::-1][:5]]
    assert top5 == [" ", "e", "t", "o", "a"]


def test_count_chars_small_text():
    counts = count_chars("abcab")
    assert counts.chars == ("a", "b", "c") and (counts.bos, counts.vocab_size) == (3, 5)
    np.testing.assert_array_equal(counts.unigram, [2, 2, 1, 0, 0])
    expected = np.zeros((5, 5), np.int64)
    expected[0, 1], expected[1, 2], expected[2, 0] = 2, 1, 1  # ab, bc, ca, ab
    np.testing.assert_array_equal(counts.bigram, expected)


def test_count_chars_orders_by_code_point_and_handles_non_ascii():
    counts = count_chars("éa\nZé")
    assert counts.chars == ("\n", "Z", "a", "é")
    assert counts.bigram[3, 2] == 1 and counts.bigram[1, 3] == 1 and counts.unigram[3] == 2


def test_count_chars_rejects_short_text():
    with pytest.raises(ValueError, match="at least two characters"):
        count_chars("a")


def test_save_load_round_trip(tmp_path, shipped):
    path = tmp_path / "counts"  # no suffix: written at exactly this path
    save_counts(shipped, path)
    loaded = load_counts(path)
    assert loaded.chars == shipped.chars
    np.testing.assert_array_equal(loaded.unigram, shipped.unigram)
    np.testing.assert_array_equal(loaded.bigram, shipped.bigram)
    assert path.stat().st_size < 20_000


def test_load_counts_rejects_inconsistent_shapes(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, chars=np.array(["a", "b"]), unigram=np.zeros(3), bigram=np.zeros((4, 4)))
    with pytest.raises(ValueError, match="need unigram"):
        load_counts(path)


def test_build_counts_writes_the_counts(tmp_path, capsys):
    text, out = tmp_path / "t.txt", tmp_path / "c.npz"
    text.write_text("hello world\n", encoding="utf-8")
    assert build_counts_main([str(text), "--out", str(out)]) == 0
    assert "9 characters, V = 11" in capsys.readouterr().out
    np.testing.assert_array_equal(load_counts(out).bigram, count_chars("hello world\n").bigram)


@pytest.mark.parametrize("problem", ["missing", "not_utf8", "too_short", "out_is_a_directory"])
def test_build_counts_bad_input_is_one_line_and_status_2(tmp_path, capsys, problem):
    text, out = tmp_path / "t.txt", tmp_path / "c.npz"
    text.write_text("some text", encoding="utf-8")
    if problem == "not_utf8":
        text.write_bytes(b"\xff\xfe\xfa bad")
    elif problem == "too_short":
        text.write_text("x", encoding="utf-8")
    elif problem == "out_is_a_directory":
        out = tmp_path
    path = tmp_path / "missing.txt" if problem == "missing" else text
    assert build_counts_main([str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("build_counts: error:")
    assert ("--out" in err) if problem == "out_is_a_directory" else ("UTF-8 text file" in err)


def test_build_counts_module_missing_file_exits_2_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sinkjax.active_dormant.build_counts", str(tmp_path / "nope.txt")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert "No such file or directory" in result.stderr and "nope.txt" in result.stderr


def test_bb_experiments_record_the_counts_they_read(tmp_path):
    """The record's `corpora` names the shipped counts (with their sha256), or the --corpus file."""
    ctx = RunContext(tmp_path)
    load_task(ctx)
    shipped = shipped_counts_path().read_bytes()
    entry = ctx.corpora["bigram counts"]
    assert entry["sha256"] == hashlib.sha256(shipped).hexdigest()
    assert entry["bytes"] == len(shipped) and "shipped" in entry["source"]
    text = tmp_path / "text.txt"
    text.write_text("abcabd " * 50)
    ctx = RunContext(tmp_path, corpus=text)
    assert load_task(ctx).vocab_size < 10
    assert ctx.corpora["bigram counts"]["source"] == str(text)
