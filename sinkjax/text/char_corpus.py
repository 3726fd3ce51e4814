"""A byte-level corpus of prose and Python code, and windows sampled from it on device.

Code is Python source from the running interpreter's standard library and prose is the
docstrings of the other stdlib files, or any text file (`sinkjax.text.sources`: the same bytes
on every machine with the same Python minor version unless a prose file is given). Both are
UTF-8 bytes; the vocabulary is the 256 byte values plus `<s>` (BOS,
id 256), which is prepended to every window. The last `heldout_fraction` of each domain is
held out for evaluation.

    window   = text[s : s + N]              (N bytes, s uniform)
    inputs   = [<s>, window[0 : N - 1]]     targets = window
"""

import dataclasses
import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Int, PRNGKeyArray

from sinkjax.text import sources
from sinkjax.text.split import SplitCorpus, split_heldout

BOS = 256
VOCAB_SIZE = 257
DOMAINS = ("prose", "code")
# Display strings of the byte values (ids 0..255), for token labels.
BYTE_CHARS = tuple(
    chr(b) if chr(b).isprintable() or chr(b) in "\n " else f"\\x{b:02x}" for b in range(256)
)


# The byte corpus: ids 0..255 of the prose and code domains, in `DOMAINS` order.
CharCorpus = SplitCorpus


def load_char_corpus(
    prose_path: pathlib.Path | None,
    *,
    max_prose_bytes: int,
    max_code_bytes: int,
    seq_len: int,
    heldout_fraction: float = 0.1,
) -> CharCorpus:
    """Read the prose and the stdlib code and split each into training and held-out bytes.

    Args:
        prose_path: a text file; None takes the docstrings of the stdlib files the code did not.
        max_prose_bytes: bytes of prose to take.
        max_code_bytes: bytes of Python source to take.
        seq_len: N, the window length: each part must hold at least N bytes.
        heldout_fraction: share of each domain (its end) kept for evaluation.

    Raises:
        FileNotFoundError: the prose file does not exist.
        ValueError: a part is shorter than one window.
    """
    prose, code = sources.prose_and_code(prose_path, max_prose_bytes, max_code_bytes)
    texts = {"prose": prose, "code": code}
    train, heldout = {}, {}
    for domain, text in texts.items():
        tokens = np.frombuffer(text.data, np.uint8)
        train[domain], heldout[domain] = split_heldout(tokens, heldout_fraction)
        shortest = min(len(train[domain]), len(heldout[domain]))
        if shortest < seq_len:
            raise ValueError(
                f"the {domain} text ({len(tokens)} bytes) is too short for windows of {seq_len} "
                f"bytes with a {heldout_fraction:.0%} held-out part; pass a longer --prose"
            )
    described = {domain: sources.describe(text) for domain, text in texts.items()}
    return CharCorpus(train, heldout, described, code.files)


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=["tokens"],
    meta_fields=["prose_len", "code_len"],
)
@dataclasses.dataclass(frozen=True)
class TokenStream:
    """Both domains' tokens in one device array, prose first: (T_prose + T_code,) int32."""

    tokens: Int[Array, " T"]
    prose_len: int
    code_len: int

    @classmethod
    def from_parts(cls, parts: dict[str, np.ndarray]) -> "TokenStream":
        """Concatenate the prose and code parts (e.g. `CharCorpus.train`) on device."""
        tokens = jnp.asarray(np.concatenate([parts["prose"], parts["code"]]), jnp.int32)
        return cls(tokens, len(parts["prose"]), len(parts["code"]))


def sample_windows(
    key: PRNGKeyArray,
    stream: TokenStream,
    batch_size: int,
    seq_len: int,
    code_fraction: float | Array,
) -> tuple[Int[Array, "B N"], Int[Array, "B N"], Int[Array, " B"]]:
    """Draw B windows of N bytes, each from code with probability `code_fraction`.

    Returns:
        (inputs, targets, is_code): inputs (B, N) int32 start with `<s>` followed by the first
        N - 1 bytes of the window, targets (B, N) int32 are the window, is_code (B,) int32 is 1
        for code windows.
    """
    k_domain, k_start = jax.random.split(key)
    is_code = jax.random.bernoulli(k_domain, code_fraction, (batch_size,))
    length = jnp.where(is_code, stream.code_len, stream.prose_len)
    offset = jnp.where(is_code, stream.prose_len, 0)
    start = offset + jax.random.randint(k_start, (batch_size,), 0, length - seq_len + 1)
    inputs, targets = window_pairs(stream.tokens, start, seq_len, BOS)
    return inputs, targets, is_code.astype(jnp.int32)


def window_pairs(
    tokens: Int[Array, " T"], start: Int[Array, " B"], seq_len: int, bos: int | None
) -> tuple[Int[Array, "B N"], Int[Array, "B N"]]:
    """Next-token (inputs, targets) pairs, both (B, N), from windows of `tokens` at `start`.

    With a BOS id the window holds N tokens and the BOS takes position 0 of the inputs;
    without one (None) the window holds N + 1 tokens:

        bos given:  window = tokens[s : s + N]      inputs = [bos, window[0 : N - 1]]
                                                    targets = window
        bos None:   window = tokens[s : s + N + 1]  inputs = window[0 : N]
                                                    targets = window[1 : N + 1]
    """
    if bos is None:
        window = tokens[start[:, None] + jnp.arange(seq_len + 1)]  # (B, N + 1)
        return window[:, :-1], window[:, 1:]
    window = tokens[start[:, None] + jnp.arange(seq_len)]  # (B, N)
    first = jnp.full((start.shape[0], 1), bos, jnp.int32)
    return jnp.concatenate([first, window[:, :-1]], axis=1), window
