"""char-lm-dynamics: the prose + code byte corpus, its sampler, probes, ablations and the ci run.

Nothing here reads ../shared: the prose is the Zen of Python, written into tmp_path, or the
stdlib docstrings (the default).
"""

import codecs
import dataclasses
import this

import jax
import numpy as np
import optax
import pytest
from flax import nnx

from experiments.active_dormant import char_lm_dynamics
from experiments.framework.experiment import RunContext
from experiments.framework.runner import UsageError
from sinkjax.active_dormant.charlm_training import head_ablation_cross_entropy, make_eval_batch
from sinkjax.interventions import Interventions
from sinkjax.models import Transformer
from sinkjax.text import sources
from sinkjax.text.char_corpus import BOS, TokenStream, load_char_corpus, sample_windows

ZEN = codecs.decode(this.s, "rot13")


@pytest.fixture
def prose(tmp_path):
    """About 8 kB of English prose."""
    path = tmp_path / "zen.txt"
    path.write_text(ZEN * 10)
    return path


def test_corpus_split_and_vocabulary(prose):
    corpus = load_char_corpus(prose, max_prose_bytes=10**6, max_code_bytes=20_000, seq_len=32)
    text = prose.read_bytes()
    assert corpus.train["prose"].tobytes() + corpus.heldout["prose"].tobytes() == text
    assert len(corpus.heldout["prose"]) == int(0.1 * len(text))
    assert len(corpus.train["code"]) + len(corpus.heldout["code"]) == 20_000
    assert corpus.code_files == tuple(sorted(corpus.code_files)) and corpus.code_files
    assert (
        corpus.digest()
        == load_char_corpus(
            prose, max_prose_bytes=10**6, max_code_bytes=20_000, seq_len=32
        ).digest()
    )


def test_missing_prose_file_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="pass --prose PATH"):
        load_char_corpus(
            tmp_path / "missing.txt", max_prose_bytes=10**6, max_code_bytes=1000, seq_len=8
        )
    ctx = RunContext(tmp_path / "run", prose=tmp_path / "gone.txt", progress=False)
    with pytest.raises(UsageError, match=r"gone\.txt not found; pass --prose PATH") as err:
        char_lm_dynamics.run(char_lm_dynamics.PRESETS["ci"], ctx)
    assert "\n" not in str(err.value)


def test_default_prose_is_the_stdlib_docstrings_beside_other_stdlib_code():
    corpus = load_char_corpus(None, max_prose_bytes=5_000, max_code_bytes=20_000, seq_len=32)
    code = sources.stdlib_code(20_000)
    docs = sources.stdlib_docstrings(5_000, exclude=code.files)
    assert corpus.train["prose"].tobytes() + corpus.heldout["prose"].tobytes() == docs.data
    assert corpus.texts["prose"] == sources.describe(docs)
    assert corpus.texts["code"] == sources.describe(code)


def test_short_prose_is_rejected(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("To be, or not to be.")
    with pytest.raises(ValueError, match="too short"):
        load_char_corpus(path, max_prose_bytes=10**6, max_code_bytes=1000, seq_len=32)


def test_windows_start_with_bos_and_come_from_one_domain(prose):
    corpus = load_char_corpus(prose, max_prose_bytes=10**6, max_code_bytes=20_000, seq_len=24)
    stream = TokenStream.from_parts(corpus.train)
    inputs, targets, is_code = sample_windows(jax.random.key(0), stream, 64, 24, 0.5)
    inputs, targets, is_code = map(np.asarray, (inputs, targets, is_code))
    assert inputs.shape == targets.shape == (64, 24) and is_code.shape == (64,)
    assert np.all(inputs[:, 0] == BOS) and np.all(inputs[:, 1:] == targets[:, :-1])
    assert 10 < is_code.sum() < 54
    for window, code in zip(targets, is_code, strict=True):
        source = corpus.train["code" if code else "prose"].tobytes()
        assert window.astype(np.uint8).tobytes() in source


def test_eval_batch_is_held_out_and_fixed(prose):
    corpus = load_char_corpus(prose, max_prose_bytes=10**6, max_code_bytes=20_000, seq_len=24)
    batch = make_eval_batch(corpus, 4, 24)
    assert batch.inputs.shape == batch.targets.shape == (2, 4, 24)
    for i, domain in enumerate(("prose", "code")):
        for window in np.asarray(batch.targets[i]):
            assert window.astype(np.uint8).tobytes() in corpus.heldout[domain].tobytes()
    np.testing.assert_array_equal(batch.inputs, make_eval_batch(corpus, 4, 24).inputs)


def test_vmapped_head_ablations_match_single_ablations(prose):
    cfg = char_lm_dynamics.PRESETS["ci"]
    corpus = load_char_corpus(
        prose, max_prose_bytes=10**6, max_code_bytes=20_000, seq_len=cfg.seq_len
    )
    batch = make_eval_batch(corpus, 2, cfg.seq_len)
    graphdef, params = nnx.split(Transformer(cfg.model_config(), rngs=nnx.Rngs(params=3)))
    base, ablated = head_ablation_cross_entropy(graphdef, params, batch)
    assert base.shape == (2,) and ablated.shape == (cfg.n_layers, cfg.n_heads, 2)
    model = nnx.merge(graphdef, params)
    none = Interventions.none(cfg.n_layers, cfg.n_heads)
    for interventions, measured in ((none, base), (none.zero_attention(1, 0), ablated[1, 0])):
        logits = model(batch.inputs.reshape(-1, cfg.seq_len), interventions)
        expected = optax.softmax_cross_entropy_with_integer_labels(
            logits.reshape(*batch.targets.shape, -1), batch.targets
        ).mean((1, 2))
        np.testing.assert_allclose(measured, expected, rtol=1e-5)
    assert not np.allclose(ablated[1, 0], base)


def test_config_validation():
    ci = char_lm_dynamics.PRESETS["ci"]
    with pytest.raises(ValueError, match="code_fraction"):
        dataclasses.replace(ci, code_fraction=1.0)
    with pytest.raises(ValueError, match="must divide d_model"):
        dataclasses.replace(ci, n_heads=3)
    with pytest.raises(ValueError, match="steps must be positive"):
        dataclasses.replace(ci, steps=0)
    assert set(char_lm_dynamics.PRESETS) == {"ci", "quick", "paper"}


def test_active_dormant_head_is_the_largest_domain_gap():
    attn = np.full((2, 3, 2), 0.1)  # (D, L, H) final Attn_<s>
    attn[char_lm_dynamics.CODE, 2, 1] = 0.8  # sinks on code only: dormant on code
    attn[:, 1, 0] = 0.9  # sinks on both domains alike
    assert char_lm_dynamics.active_dormant_head(attn) == (2, 1, char_lm_dynamics.CODE)


def test_ci_run(prose, tmp_path):
    cfg = char_lm_dynamics.PRESETS["ci"]
    out = tmp_path / "run"
    out.mkdir()
    ctx = RunContext(out, prose=prose, progress=False)
    outcome = char_lm_dynamics.run(cfg, ctx)
    assert ctx.corpora["prose"]["source"] == str(prose)
    assert ctx.corpora["prose"]["bytes"] == len(prose.read_bytes())
    assert [c.id for c in outcome.claims] == [s.id for s in char_lm_dynamics.CLAIMS]
    assert all(c.verdict in ("pass", "fail") and c.source for c in outcome.claims)
    L, H = cfg.n_layers, cfg.n_heads
    measured = {c.id: c.measured for c in outcome.claims}
    assert len(measured["sink-on-bos-in-most-heads"]) == (L - 1) * H
    assert len(measured["value-drain-in-most-heads"]) == (L - 1) * H
    assert len(measured["residual-peak-on-bos"]) == cfg.n_seeds
    ablation = measured["domain-active-dormant-head"]["ablation_delta_ce"]
    assert np.all(np.asarray(ablation["dormant_domain"]) >= 0)
    assert {o.id for o in outcome.observations} >= {"final-cross-entropy", "final-attn-bos"}
    assert len(outcome.figures) == 2
    for figure in outcome.figures:
        assert (out / figure).read_bytes()[:4] == b"\x89PNG"
    s = outcome.summary
    n_evals = len(s["eval_steps"])
    assert s["attn_sink"].shape == s["value_ratio"].shape == (1, n_evals, L, H)
    assert s["attn_sink_by_domain"].shape == (1, n_evals, 2, L, H)
    assert s["resid_ratio"].shape == (1, n_evals, L) and s["ce"].shape == (1, n_evals, 2)
    assert s["ablation_delta_ce"].shape == (1, L, H, 2)
    assert s["value_drain_ratio"].shape == (1, L, H)
    assert np.all((s["attn_sink"] >= 0) & (s["attn_sink"] <= 1))
    ((layer, head, dormant),) = s["active_dormant_head"]
    assert 0 <= layer < L and 0 <= head < H and dormant in (0, 1)
    assert (out / "checkpoint" / "char-lm").is_dir()
