"""A corpus of several domains, each split into a training part and a held-out part."""

import dataclasses
import hashlib
from typing import Any

import numpy as np


def split_heldout(tokens: np.ndarray, heldout_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(train, heldout): a (T,) array cut before its last `int(T * heldout_fraction)` entries."""
    n_train = len(tokens) - int(len(tokens) * heldout_fraction)
    return tokens[:n_train], tokens[n_train:]


@dataclasses.dataclass(frozen=True)
class SplitCorpus:
    """Token ids of every domain (host uint8 arrays), split into training and held-out parts.

    Attributes:
        train: domain -> (T_d,) uint8 training ids, in the corpus's domain order.
        heldout: domain -> (T'_d,) uint8 held-out ids (the end of the domain's text).
        texts: domain -> where its text came from, its bytes and sha256 (`sources.describe`).
        code_files: the stdlib files the code was taken from, in order.
    """

    train: dict[str, np.ndarray]
    heldout: dict[str, np.ndarray]
    texts: dict[str, dict[str, Any]]
    code_files: tuple[str, ...]

    def digest(self) -> str:
        """SHA-256 of every token, domain by domain (identifies the data of a run)."""
        h = hashlib.sha256()
        for domain in self.train:
            h.update(self.train[domain].tobytes())
            h.update(self.heldout[domain].tobytes())
        return h.hexdigest()
