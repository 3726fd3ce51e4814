"""Character statistics of a corpus: the vocabulary, unigram and bigram counts (spec A.1).

The vocabulary is the corpus's sorted characters followed by `<s>` (BOS) and `<d>` (a
delimiter that is never generated). For tiny Shakespeare: 65 characters, V = 67, `\\n` = 0,
' ' = 1, 'a'..'z' = 39..64, `<s>` = 65, `<d>` = 66.
"""

import dataclasses
import pathlib
from importlib import resources

import numpy as np

SHIPPED_COUNTS = "tinyshakespeare_counts.npz"


@dataclasses.dataclass(frozen=True)
class CorpusCounts:
    """Counts derived from one text.

    Attributes:
        chars: the corpus's distinct characters, sorted; token i < len(chars) is chars[i].
        unigram: (V,) int64 character counts over the whole text (0 for `<s>` and `<d>`).
        bigram: (V, V) int64 counts of every consecutive pair (x_t, x_{t+1}) of the text.
    """

    chars: tuple[str, ...]
    unigram: np.ndarray
    bigram: np.ndarray

    @property
    def bos(self) -> int:
        return len(self.chars)

    @property
    def delimiter(self) -> int:
        return len(self.chars) + 1

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + 2

    def save(self, path: str | pathlib.Path) -> None:
        np.savez_compressed(
            path, chars=np.array(self.chars), unigram=self.unigram, bigram=self.bigram
        )

    @classmethod
    def load(cls, path) -> "CorpusCounts":
        with np.load(path) as data:
            return cls(tuple(str(c) for c in data["chars"]), data["unigram"], data["bigram"])


def count_chars(text: str) -> CorpusCounts:
    """Unigram and all-consecutive-pair bigram counts of `text` (needs >= 2 characters)."""
    if len(text) < 2:
        raise ValueError("the corpus needs at least two characters")
    chars = tuple(sorted(set(text)))
    vocab = len(chars) + 2
    lookup = {c: i for i, c in enumerate(chars)}
    ids = np.fromiter((lookup[c] for c in text), np.int64, len(text))
    unigram = np.bincount(ids, minlength=vocab).astype(np.int64)
    pairs = ids[:-1] * vocab + ids[1:]
    bigram = np.bincount(pairs, minlength=vocab * vocab).reshape(vocab, vocab).astype(np.int64)
    return CorpusCounts(chars, unigram, bigram)


def shipped_counts_path():
    return resources.files(__package__) / "data" / SHIPPED_COUNTS


def load_shipped_counts() -> CorpusCounts:
    """The counts of tiny Shakespeare shipped with the package (the text itself is not)."""
    with resources.as_file(shipped_counts_path()) as path:
        return CorpusCounts.load(path)
