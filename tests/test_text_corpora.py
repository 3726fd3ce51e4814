"""Download-free text corpora: vocabulary, math grammar, splits, default prose, errors, sampling.

Nothing here reads ../shared: the prose is the Zen of Python, written into tmp_path, or the
stdlib docstrings.
"""

import ast
import codecs
import re
import this

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sinkjax.text import sources
from sinkjax.text.domains import (
    BOS,
    CHARS,
    TEXT_DOMAINS,
    UNK,
    VOCAB_SIZE,
    TextConfig,
    TextCorpus,
    TextStream,
    arithmetic_text,
    decode,
    encode,
    load_text_corpus,
    make_text_eval_batch,
    sample_text,
    vocab_size,
)

ZEN = codecs.decode(this.s, "rot13")
SMALL = dict(max_prose_bytes=6_000, max_code_bytes=8_000, max_math_bytes=5_000)
MATH_LINE = re.compile(r"^(\(?\d+[-+*]\(?\d+\)?([-+*]\d+\)?)?)=(-?\d+)$")


@pytest.fixture(scope="module")
def prose(tmp_path_factory):
    """About 8 kB of English prose."""
    path = tmp_path_factory.mktemp("prose") / "zen.txt"
    path.write_text(ZEN * 10)
    return path


@pytest.fixture(scope="module")
def corpus(prose):
    return load_text_corpus(TextConfig(prose_path=prose, **SMALL))


def test_vocabulary_round_trip():
    assert len(CHARS) == len(set(CHARS)) == 96 and CHARS[0] == "\n" and CHARS[1] == " "
    assert (UNK, BOS, VOCAB_SIZE) == (96, 97, 98)
    assert (vocab_size(True), vocab_size(False)) == (98, 97)
    text = "".join(CHARS) + ZEN
    ids = encode(text)
    assert ids.dtype == np.uint8 and ids.shape == (len(text),)
    np.testing.assert_array_equal(ids[: len(CHARS)], np.arange(len(CHARS)))
    assert decode(ids) == text
    np.testing.assert_array_equal(
        encode("a\tb\u00e9\U0001f600\r~"), [66, UNK, 67, UNK, UNK, UNK, 95]
    )
    assert decode([BOS, UNK, 1]) == "<s>\ufffd "


def test_math_lines_are_correct_arithmetic():
    text = arithmetic_text(20_000, seed=3).decode()
    assert len(text) <= 20_000 and text.endswith("\n") and len(text) > 19_900
    lines = text.splitlines()
    forms = set()
    for line in lines:
        match = MATH_LINE.match(line)
        assert match, line
        expr, value = match.group(1), int(match.group(3))
        assert eval(expr) == value, line  # our own digits and operators only
        assert all(0 <= int(n) <= 99 for n in re.findall(r"\d+", expr))
        forms.add(re.sub(r"\d+", "a", re.sub(r"[-+*]", "o", expr)))
    assert forms == {"aoa", "(aoa)oa", "ao(aoa)", "aoaoa"}
    assert len(set(lines)) > 0.9 * len(lines)
    wide = arithmetic_text(20_000, seed=3, max_operand=5000).decode().splitlines()
    operands = [int(n) for line in wide for n in re.findall(r"\d+", line.split("=")[0])]
    assert 99 < max(operands) <= 5000


def test_math_is_deterministic_and_prefix_stable():
    text = arithmetic_text(50_000, seed=1)
    assert text == arithmetic_text(50_000, seed=1)
    assert text != arithmetic_text(50_000, seed=2)
    small = arithmetic_text(700, seed=1)
    assert 680 < len(small) <= 700 and text.startswith(small)


def test_splits_are_disjoint_and_complete(corpus, prose):
    texts = {
        "prose": prose.read_bytes()[: SMALL["max_prose_bytes"]].decode(),
        "code": sources.stdlib_code(SMALL["max_code_bytes"]).data.decode("utf-8", "replace"),
        "math": arithmetic_text(SMALL["max_math_bytes"], seed=0).decode(),
    }
    for domain, text in texts.items():
        train, heldout = corpus.train[domain], corpus.heldout[domain]
        assert len(heldout) == int(0.1 * len(text)) and len(train) + len(heldout) == len(text)
        assert decode(train) + decode(heldout) == decode(encode(text))
    assert corpus.texts["prose"]["source"] == str(prose)
    assert corpus.code_files[0] == "__future__.py"
    for domain, text in texts.items():
        assert corpus.texts[domain]["bytes"] == len(text.encode())
    again = load_text_corpus(TextConfig(prose_path=prose, **SMALL))
    assert corpus.digest() == again.digest()
    other_seed = load_text_corpus(TextConfig(prose_path=prose, math_seed=1, **SMALL))
    assert corpus.digest() != other_seed.digest()


def test_default_prose_is_the_docstrings_of_the_other_stdlib_files():
    """Without a prose file the prose is the stdlib's docstrings, from the files the code did
    not take (so the domains share no text), and the same bytes on every call."""
    corpus = load_text_corpus(TextConfig(**SMALL))
    prose = decode(np.concatenate([corpus.train["prose"], corpus.heldout["prose"]]))
    code = sources.stdlib_code(SMALL["max_code_bytes"])
    docs = sources.stdlib_docstrings(SMALL["max_prose_bytes"], exclude=code.files)
    assert len(docs.data) == SMALL["max_prose_bytes"] and prose == decode(
        encode(docs.data.decode())
    )
    first_other = next(p for p in sources.stdlib_paths() if p.name not in code.files)
    assert docs.files[0] == first_other.name and first_other.name not in corpus.code_files
    assert prose.startswith(ast.get_docstring(ast.parse(first_other.read_bytes())) + "\n\n")
    assert corpus.texts["prose"]["source"].startswith(f"Python {sources.python_minor()} stdlib")
    assert corpus.texts == load_text_corpus(TextConfig(**SMALL)).texts


def test_errors_are_one_line_and_name_the_fix(tmp_path, corpus):
    cases = [
        (FileNotFoundError, "missing.txt not found; pass --prose PATH to a text file"),
        (ValueError, r"max_math_bytes must be a positive byte count, got 0"),
        (ValueError, r"heldout_fraction must lie in \(0, 1\), got 1.0"),
        (ValueError, r"math_max_operand must lie in 1..9999, got 0"),
    ]
    configs = [
        lambda: load_text_corpus(TextConfig(prose_path=tmp_path / "missing.txt", **SMALL)),
        lambda: TextConfig(max_math_bytes=0),
        lambda: TextConfig(heldout_fraction=1.0),
        lambda: TextConfig(math_max_operand=0),
    ]
    for (error, message), make in zip(cases, configs, strict=True):
        with pytest.raises(error, match=message) as raised:
            make()
        assert "\n" not in str(raised.value)
    stream = TextStream.from_parts(corpus.heldout)
    n, domain = min(zip(stream.lengths, TEXT_DOMAINS, strict=True))

    def trace(with_bos):  # the check runs while tracing: no need to compile
        def sample(key):
            return sample_text(key, stream, 2, n, jnp.ones(3), with_bos=with_bos)

        return jax.eval_shape(sample, jax.random.key(0))

    fix = f"{domain} part .* raise max_{domain}_bytes or lower seq_len"
    with pytest.raises(ValueError, match=fix) as raised:
        trace(with_bos=False)  # N + 1 tokens per window
    assert "\n" not in str(raised.value)
    assert trace(with_bos=True)[0].shape == (2, n)


@pytest.mark.parametrize("with_bos", [True, False])
def test_jit_sampling_aligns_windows_with_their_domain(corpus, with_bos):
    traces = []

    @jax.jit
    def sample(key, stream, weights):
        traces.append(None)
        return sample_text(key, stream, 96, 20, weights, with_bos=with_bos)

    stream = TextStream.from_parts(corpus.train)
    inputs, targets, domain = map(np.asarray, sample(jax.random.key(1), stream, jnp.ones(3)))
    assert inputs.shape == targets.shape == (96, 20) and domain.shape == (96,)
    assert inputs.dtype == targets.dtype == domain.dtype == np.int32
    assert np.all(inputs[:, 1:] == targets[:, :-1]) and targets.max() < BOS
    assert np.all((inputs[:, 0] == BOS) == with_bos) and np.all(inputs[:, 1:] != BOS)
    assert set(domain) == {0, 1, 2}
    for row_in, row_out, d in zip(inputs, targets, domain, strict=True):
        window = row_out if with_bos else np.concatenate([row_in[:1], row_out])
        assert window.astype(np.uint8).tobytes() in corpus.train[TEXT_DOMAINS[d]].tobytes()
    np.testing.assert_array_equal(sample(jax.random.key(1), stream, jnp.ones(3))[0], inputs)
    _, _, only_math = sample(jax.random.key(2), stream, jnp.array([0.0, 0.0, 2.0]))
    assert np.all(np.asarray(only_math) == 2) and len(traces) == 1


def test_eval_batch_is_held_out_and_fixed(corpus):
    batch = make_text_eval_batch(corpus, 4, 16)
    assert batch.inputs.shape == batch.targets.shape == (3, 4, 16)
    assert np.all(np.asarray(batch.inputs[:, :, 0]) == BOS)
    for d, domain in enumerate(TEXT_DOMAINS):
        for window in np.asarray(batch.targets[d]):
            assert window.astype(np.uint8).tobytes() in corpus.heldout[domain].tobytes()
    np.testing.assert_array_equal(batch.targets, make_text_eval_batch(corpus, 4, 16).targets)


def test_windows_stay_inside_a_domain_that_holds_exactly_one():
    parts = {d: np.arange(17, dtype=np.uint8) + 20 * i for i, d in enumerate(TEXT_DOMAINS)}
    tight = TextCorpus(train=parts, heldout=parts, texts={}, code_files=())
    batch = make_text_eval_batch(tight, 5, 16, with_bos=False)  # windows of N + 1 = 17 tokens
    for d, domain in enumerate(TEXT_DOMAINS):
        np.testing.assert_array_equal(batch.inputs[d], np.tile(parts[domain][:-1], (5, 1)))
        np.testing.assert_array_equal(batch.targets[d], np.tile(parts[domain][1:], (5, 1)))
