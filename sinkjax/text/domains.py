"""Character-level corpora that need no download (prose, code, math), sampled on device.

Domains, in the order of `TEXT_DOMAINS`:

- prose: the docstrings of the interpreter's standard library (of the files the code does not
  take), or any UTF-8 text file such as tiny Shakespeare (`sources.prose_and_code`).
- code: Python source of the standard library (`sources.stdlib_code`).
- math: generated arithmetic with results (`arithmetic_text`), one expression per line:

      line    = expr "=" value "\\n"
      expr    = a o b  |  "(" a o b ")" o c  |  a o "(" b o c ")"  |  a o b o c
      a, b, c = decimal integers, uniform in 0..max_operand (99 by default)
      o       = "+" | "-" | "*", uniform; the four forms are uniform too
      value   = the exact integer value, with * before + and - and otherwise left to right
              (so it may be negative, e.g. "3-50=-47\\n"; |value| <= max_operand**3)

Vocabulary (98 ids, shared by the domains): `\\n` = 0, the 95 printable ASCII characters
' '..'~' = 1..95 (code point - 31), `<unk>` = 96 for every other character, `<s>` (BOS) = 97.
Models trained without BOS need only ids 0..96 (`vocab_size(False)` = 97).

Each domain's text is cut to a byte budget, encoded (one token per character) and split: its
last `heldout_fraction` is held out. Windows are drawn on device (`sample_text`):

    with BOS:     window = text[s : s + N]      inputs = [<s>, window[0 : N - 1]]
                                                targets = window
    without BOS:  window = text[s : s + N + 1]  inputs = window[0 : N]
                                                targets = window[1 : N + 1]
"""

import dataclasses
import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from jaxtyping import Array, Float, Int, PRNGKeyArray

from sinkjax.text import char_corpus, sources
from sinkjax.text.split import SplitCorpus, split_heldout

TEXT_DOMAINS = ("prose", "code", "math")
# Characters of ids 0..95.
CHARS = ("\n", *(chr(c) for c in range(32, 127)))
UNK = len(CHARS)
BOS = UNK + 1
VOCAB_SIZE = BOS + 1
# Display strings of every id, for token labels.
TOKEN_STRS = (*CHARS, "\ufffd", "<s>")
MATH_OPS = ("+", "-", "*")
# The four expression forms of the math grammar; o, p are the first and second operators.
MATH_FORMS = ("{a}{o}{b}", "({a}{o}{b}){p}{c}", "{a}{o}({b}{p}{c})", "{a}{o}{b}{p}{c}")
_ASCII_IDS = np.full(128, UNK, np.uint8)
_ASCII_IDS[[ord(c) for c in CHARS]] = np.arange(len(CHARS))
# Lines of math drawn per batch of random numbers (the text does not depend on it).
_MATH_CHUNK = 4096


def vocab_size(with_bos: bool) -> int:
    """98 with the `<s>` id, 97 without it."""
    return VOCAB_SIZE if with_bos else BOS


def encode(text: str) -> np.ndarray:
    """(len(text),) uint8 token ids; characters outside the vocabulary become `<unk>`."""
    code_points = np.frombuffer(text.encode("utf-32-le"), np.uint32)
    ids = np.where(code_points < 128, _ASCII_IDS[np.minimum(code_points, 127)], UNK)
    return ids.astype(np.uint8)


def decode(ids: ArrayLike) -> str:
    """The text of a sequence of ids (`<unk>` shows as U+FFFD, `<s>` as "<s>")."""
    return "".join(TOKEN_STRS[i] for i in np.asarray(ids).ravel())


def arithmetic_text(max_bytes: int, seed: int, max_operand: int = 99) -> bytes:
    """Whole lines of generated arithmetic (grammar in the module docstring), at most `max_bytes`.

    Lines are drawn from `np.random.default_rng(seed)` in fixed chunks, so a smaller budget
    gives a prefix of the text of a larger one.
    """
    rng = np.random.default_rng(seed)
    lines, total = [], 0
    while True:
        for line in _arithmetic_lines(rng, max_operand):
            if total + len(line) > max_bytes:
                return "".join(lines).encode()
            lines.append(line)
            total += len(line)


def _arithmetic_lines(rng: np.random.Generator, max_operand: int) -> list[str]:
    """`_MATH_CHUNK` lines "expr=value\\n" of the math grammar."""
    form = rng.integers(0, len(MATH_FORMS), _MATH_CHUNK)
    o, p = rng.integers(0, len(MATH_OPS), (2, _MATH_CHUNK))
    a, b, c = rng.integers(0, max_operand + 1, (3, _MATH_CHUNK))
    left = _apply(p, _apply(o, a, b), c)  # (a o b) p c
    right = _apply(o, a, _apply(p, b, c))  # a o (b p c)
    times = MATH_OPS.index("*")
    unbracketed = np.where((p == times) & (o != times), right, left)
    value = np.choose(form, [_apply(o, a, b), left, right, unbracketed])
    return [
        MATH_FORMS[f].format(a=a_, o=MATH_OPS[o_], b=b_, p=MATH_OPS[p_], c=c_) + f"={v}\n"
        for f, o_, p_, a_, b_, c_, v in zip(form, o, p, a, b, c, value, strict=True)
    ]


def _apply(op: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Elementwise x op y (int64) with op an index into `MATH_OPS`."""
    return np.select([op == 0, op == 1], [x + y, x - y], x * y)


@dataclasses.dataclass(frozen=True)
class TextConfig:
    """Where each domain's text comes from and how much of it to take.

    Raises:
        ValueError: a budget is not positive, `heldout_fraction` is outside (0, 1), or
            `math_max_operand` is outside 1..9999.
    """

    prose_path: pathlib.Path | None = None
    """A UTF-8 text file (it must exist). None: the docstrings of the stdlib files that the
    code does not take (the same on every machine with this Python minor version)."""
    max_prose_bytes: int = 1_200_000
    """Bytes of prose to take (the default holds all of tiny Shakespeare, 1.1 MB)."""
    max_code_bytes: int = 1_000_000
    """Bytes of stdlib Python source to take."""
    max_math_bytes: int = 1_000_000
    """Bytes of arithmetic to generate (whole lines)."""
    math_seed: int = 0
    """Seed of the arithmetic generator."""
    math_max_operand: int = 99
    """Operands of the arithmetic are uniform in 0..math_max_operand."""
    heldout_fraction: float = 0.1
    """Share of each domain (its end) kept for evaluation."""

    def __post_init__(self):
        for domain in TEXT_DOMAINS:
            budget = getattr(self, f"max_{domain}_bytes")
            if budget < 1:
                raise ValueError(f"max_{domain}_bytes must be a positive byte count, got {budget}")
        if not 0 < self.heldout_fraction < 1:
            raise ValueError(f"heldout_fraction must lie in (0, 1), got {self.heldout_fraction}")
        if not 1 <= self.math_max_operand <= 9999:
            raise ValueError(f"math_max_operand must lie in 1..9999, got {self.math_max_operand}")


# The character corpus: ids of `encode` for the prose, code and math, in `TEXT_DOMAINS` order.
TextCorpus = SplitCorpus


def load_text_corpus(cfg: TextConfig = TextConfig()) -> TextCorpus:
    """Read or generate the three domains, encode them and split off the held-out parts.

    Raises:
        FileNotFoundError: `cfg.prose_path` is given and is not a file.
    """
    prose, code = sources.prose_and_code(cfg.prose_path, cfg.max_prose_bytes, cfg.max_code_bytes)
    math = sources.Text(
        arithmetic_text(cfg.max_math_bytes, cfg.math_seed, cfg.math_max_operand),
        f"generated arithmetic, seed {cfg.math_seed}, operands 0..{cfg.math_max_operand}",
    )
    train, heldout = {}, {}
    texts = dict(zip(TEXT_DOMAINS, (prose, code, math), strict=True))
    for domain, text in texts.items():
        tokens = encode(text.data.decode("utf-8", errors="replace"))
        train[domain], heldout[domain] = split_heldout(tokens, cfg.heldout_fraction)
    described = {domain: sources.describe(text) for domain, text in texts.items()}
    return TextCorpus(train, heldout, described, code.files)


@functools.partial(
    jax.tree_util.register_dataclass, data_fields=["tokens"], meta_fields=["lengths"]
)
@dataclasses.dataclass(frozen=True)
class TextStream:
    """Every domain's ids in one device array, in `TEXT_DOMAINS` order: (sum_d T_d,) int32.

    Attributes:
        tokens: the concatenated ids.
        lengths: static T_d per domain.
    """

    tokens: Int[Array, " T"]
    lengths: tuple[int, ...]

    @classmethod
    def from_parts(cls, parts: dict[str, np.ndarray]) -> "TextStream":
        """Concatenate the domains' parts (e.g. `TextCorpus.train`) on device."""
        arrays = [parts[domain] for domain in TEXT_DOMAINS]
        tokens = jnp.asarray(np.concatenate(arrays), jnp.int32)
        return cls(tokens, tuple(len(a) for a in arrays))


def sample_text(
    key: PRNGKeyArray,
    stream: TextStream,
    batch_size: int,
    seq_len: int,
    domain_weights: Float[Array, " D"],
    *,
    with_bos: bool = True,
) -> tuple[Int[Array, "B N"], Int[Array, "B N"], Int[Array, " B"]]:
    """Draw B windows, each from domain d with probability proportional to `domain_weights[d]`.

    Jit-able with `batch_size`, `seq_len` and `with_bos` static; `domain_weights` (D,) is
    traced (non-negative, not all zero), so new weights do not recompile.

    Returns:
        (inputs, targets, domain): inputs and targets (B, N) int32 next-token pairs (module
        docstring); inputs[:, 0] is `<s>` iff `with_bos`. domain (B,) int32 indexes
        `TEXT_DOMAINS`.

    Raises:
        ValueError: a domain holds fewer tokens than one window (N, or N + 1 without BOS).
    """
    k_domain, k_start = jax.random.split(key)
    log_weights = jnp.log(jnp.asarray(domain_weights, jnp.float32))
    domain = jax.random.categorical(k_domain, log_weights, shape=(batch_size,))
    inputs, targets = _domain_windows(k_start, stream, domain, seq_len, with_bos)
    return inputs, targets, domain.astype(jnp.int32)


def _domain_windows(
    key: PRNGKeyArray, stream: TextStream, domain: Int[Array, " B"], seq_len: int, with_bos: bool
) -> tuple[Int[Array, "B N"], Int[Array, "B N"]]:
    """Next-token pairs (B, N) of windows placed uniformly in the given domains."""
    window = seq_len if with_bos else seq_len + 1
    for name, length in zip(TEXT_DOMAINS, stream.lengths, strict=True):
        if length < window:
            raise ValueError(
                f"the {name} part ({length} tokens) is shorter than one window ({window} "
                f"tokens); raise max_{name}_bytes or lower seq_len"
            )
    lengths = jnp.asarray(stream.lengths)
    offsets = jnp.asarray(np.cumsum((0, *stream.lengths[:-1])))
    start = offsets[domain] + jax.random.randint(key, domain.shape, 0, lengths[domain] - window + 1)
    return char_corpus.window_pairs(stream.tokens, start, seq_len, BOS if with_bos else None)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TextBatch:
    """Fixed held-out windows of each domain (D = 3, in `TEXT_DOMAINS` order).

    Attributes:
        inputs: (D, B, N) int32 inputs, as in `sample_text`.
        targets: (D, B, N) int32 next tokens.
    """

    inputs: Int[Array, "D B N"]
    targets: Int[Array, "D B N"]


def make_text_eval_batch(
    corpus: TextCorpus, batch_size: int, seq_len: int, *, with_bos: bool = True, seed: int = 0
) -> TextBatch:
    """B held-out windows per domain, drawn from `seed` (the same batch on every call)."""
    stream = TextStream.from_parts(corpus.heldout)
    return _eval_windows(jax.random.key(seed), stream, batch_size, seq_len, with_bos)


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _eval_windows(
    key: PRNGKeyArray, stream: TextStream, batch_size: int, seq_len: int, with_bos: bool
) -> TextBatch:
    """B windows of each domain, placed uniformly in its part, as a (D, B, N) batch."""
    shape = (len(TEXT_DOMAINS), batch_size, seq_len)
    domain = jnp.repeat(jnp.arange(len(TEXT_DOMAINS)), batch_size)  # (D B,)
    inputs, targets = _domain_windows(key, stream, domain, seq_len, with_bos)
    return TextBatch(inputs.reshape(shape), targets.reshape(shape))
