"""Character statistics of a corpus: the vocabulary, unigram and bigram counts (spec A.1).

The vocabulary is the corpus's sorted characters followed by `<s>` (BOS) and `<d>` (a
delimiter that is never generated). For tiny Shakespeare: 65 characters, V = 67, `\\n` = 0,
' ' = 1, 'a'..'z' = 39..64, `<s>` = 65, `<d>` = 66.

Only these counts ship with the package (`data/tinyshakespeare_counts.npz`, a few kB), never
the text; `python -m sinkjax.active_dormant.build_counts TEXT_PATH` rebuilds them.
"""

import dataclasses
import pathlib
from importlib import resources
from importlib.abc import Traversable

import numpy as np

SHIPPED_COUNTS = "tinyshakespeare_counts.npz"


@dataclasses.dataclass(frozen=True)
class CorpusCounts:
    """Counts derived from one text (host numpy arrays).

    Attributes:
        chars: the corpus's distinct characters, sorted by code point; token i < len(chars) is
            chars[i].
        unigram: (V,) int64 number of occurrences of each token in the whole text (0 for `<s>`
            and `<d>`), with V = len(chars) + 2.
        bigram: (V, V) int64; bigram[i, j] is the number of positions t with
            (x_t, x_{t+1}) = (i, j), over every consecutive pair of the text.
    """

    chars: tuple[str, ...]
    unigram: np.ndarray
    bigram: np.ndarray

    @property
    def bos(self) -> int:
        """Id of `<s>`: the first id after the characters."""
        return len(self.chars)

    @property
    def delimiter(self) -> int:
        """Id of `<d>`: the last id."""
        return len(self.chars) + 1

    @property
    def vocab_size(self) -> int:
        """V = number of characters + 2."""
        return len(self.chars) + 2


def count_chars(text: str) -> CorpusCounts:
    """Count the characters and consecutive character pairs of `text` (spec A.1).

    Args:
        text: the whole corpus; at least two characters.

    Returns:
        The vocabulary with its (V,) unigram and (V, V) bigram int64 counts; the bigram counts
        sum to len(text) - 1.
    """
    if len(text) < 2:
        raise ValueError(f"the corpus needs at least two characters, got {len(text)}")
    code_points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    unique, ids = np.unique(code_points, return_inverse=True)
    vocab = len(unique) + 2
    unigram = np.bincount(ids, minlength=vocab).astype(np.int64)
    pairs = ids[:-1] * vocab + ids[1:]
    bigram = np.bincount(pairs, minlength=vocab * vocab).astype(np.int64).reshape(vocab, vocab)
    return CorpusCounts(tuple(chr(c) for c in unique), unigram, bigram)


def save_counts(counts: CorpusCounts, path: str | pathlib.Path) -> None:
    """Write `counts` to a compressed `.npz` at exactly `path`.

    The archive holds `chars` (unicode array), `unigram` and `bigram` (int64).
    """
    with open(path, "wb") as file:
        np.savez_compressed(
            file, chars=np.array(counts.chars), unigram=counts.unigram, bigram=counts.bigram
        )


def load_counts(path: str | pathlib.Path) -> CorpusCounts:
    """Read counts written by `save_counts` (no pickled objects are loaded)."""
    with np.load(path, allow_pickle=False) as data:
        chars = tuple(str(c) for c in data["chars"])
        unigram = data["unigram"].astype(np.int64)
        bigram = data["bigram"].astype(np.int64)
    vocab = len(chars) + 2
    if unigram.shape != (vocab,) or bigram.shape != (vocab, vocab):
        raise ValueError(
            f"{path}: {len(chars)} characters need unigram ({vocab},) and bigram "
            f"({vocab}, {vocab}), got {unigram.shape} and {bigram.shape}"
        )
    return CorpusCounts(chars, unigram, bigram)


def shipped_counts_path() -> Traversable:
    """Location of the tiny-Shakespeare counts inside the installed package."""
    return resources.files(__package__) / "data" / SHIPPED_COUNTS


def load_shipped_counts() -> CorpusCounts:
    """The tiny-Shakespeare counts shipped with the package (the text itself is not)."""
    with resources.as_file(shipped_counts_path()) as path:
        return load_counts(path)
