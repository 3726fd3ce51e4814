"""Loading Hugging Face GPT-2 checkpoints into the zoo.

Logit parity with the PyTorch model needs the `gpt2` extra (torch, transformers) and is skipped
without it; the errors for missing and malformed files and the tensor mapping are checked
with numpy alone (plus safetensors / tokenizers where a test needs them).
"""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from sinkjax.models import (
    CheckpointError,
    MissingCheckpointFileError,
    gpt2_config,
    load_gpt2,
    load_gpt2_tokenizer,
)

EXTRA = "needs the gpt2 extra: pip install -e '.[gpt2]'"
TINY = dict(model_type="gpt2", vocab_size=100, n_positions=32, n_embd=64, n_layer=2, n_head=4)


def write_config(directory, **overrides):
    (directory / "config.json").write_text(json.dumps({**TINY, **overrides}))


def random_tensors(seed=0, config=TINY, scale=0.1):
    """A GPT-2 state dict of `config` (default TINY) in HF names ([in, out] Conv1D layout),
    every tensor N(0, scale^2), drawn with numpy."""
    rng = np.random.default_rng(seed)
    d, v, n = config["n_embd"], config["vocab_size"], config["n_positions"]
    shapes = {"wte.weight": (v, d), "wpe.weight": (n, d), "ln_f.weight": (d,), "ln_f.bias": (d,)}
    for i in range(config["n_layer"]):
        shapes |= {
            f"h.{i}.ln_1.weight": (d,),
            f"h.{i}.ln_1.bias": (d,),
            f"h.{i}.attn.c_attn.weight": (d, 3 * d),
            f"h.{i}.attn.c_attn.bias": (3 * d,),
            f"h.{i}.attn.c_proj.weight": (d, d),
            f"h.{i}.attn.c_proj.bias": (d,),
            f"h.{i}.ln_2.weight": (d,),
            f"h.{i}.ln_2.bias": (d,),
            f"h.{i}.mlp.c_fc.weight": (d, 4 * d),
            f"h.{i}.mlp.c_fc.bias": (4 * d,),
            f"h.{i}.mlp.c_proj.weight": (4 * d, d),
            f"h.{i}.mlp.c_proj.bias": (d,),
        }
    return {k: rng.normal(0, scale, s).astype(np.float32) for k, s in shapes.items()}


def assert_one_line_error(exc_info, *names):
    message = str(exc_info.value)
    assert "\n" not in message
    for name in names:
        assert name in message


# ----------------------------------------------------------------------------- errors, no torch


def test_missing_config(tmp_path):
    with pytest.raises(MissingCheckpointFileError) as exc_info:
        load_gpt2(tmp_path)
    assert isinstance(exc_info.value, FileNotFoundError) and isinstance(exc_info.value, ValueError)
    assert_one_line_error(exc_info, "config.json", "missing")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({"n_embd": 64}), "missing GPT-2 fields"),
        (json.dumps({**TINY, "activation_function": "relu"}), "activation_function"),
        (json.dumps({**TINY, "tie_word_embeddings": False}), "tie_word_embeddings"),
        (json.dumps({**TINY, "n_head": 5}), "divisible"),
    ],
)
def test_malformed_config(tmp_path, text, match):
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(CheckpointError, match=match) as exc_info:
        load_gpt2(tmp_path)
    assert_one_line_error(exc_info, "config.json")


def test_config_maps_to_gpt2_zoo_flags(tmp_path):
    write_config(tmp_path, layer_norm_epsilon=1e-6, n_inner=None)
    cfg = gpt2_config(tmp_path)
    assert (cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.d_mlp, cfg.max_len) == (64, 2, 4, 256, 32)
    assert cfg.use_bias and cfg.tie_embeddings and cfg.has_query_bias
    assert cfg.mlp_activation == "gelu_new" and cfg.positions == "learned"
    assert cfg.attention == "softmax" and cfg.ln_eps == 1e-6


def test_missing_weights(tmp_path):
    write_config(tmp_path)
    with pytest.raises(MissingCheckpointFileError) as exc_info:
        load_gpt2(tmp_path)
    assert_one_line_error(exc_info, "model.safetensors", "pytorch_model.bin")


def test_corrupt_safetensors(tmp_path):
    pytest.importorskip("safetensors", reason=EXTRA)
    write_config(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    with pytest.raises(CheckpointError) as exc_info:
        load_gpt2(tmp_path)
    assert_one_line_error(exc_info, "model.safetensors", "not a readable safetensors file")


def test_corrupt_torch_bin(tmp_path):
    pytest.importorskip("torch", reason=EXTRA)
    write_config(tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"not a pickle")
    with pytest.raises(CheckpointError) as exc_info:
        load_gpt2(tmp_path)
    assert_one_line_error(exc_info, "pytorch_model.bin", "not a readable PyTorch state dict")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda t: t.pop("h.1.mlp.c_fc.bias"), r"missing \['h.1.mlp.c_fc.bias'\]"),
        (lambda t: t.update({"h.0.attn.c_attn.bias": np.zeros(64, np.float32)}), "shape"),
        (lambda t: t.update({"h.0.mlp.c_proj.weight": np.zeros((64, 256), np.float32)}), "shape"),
        (lambda t: t.update({"h.2.ln_1.weight": np.zeros(64, np.float32)}), "unexpected"),
    ],
)
def test_wrong_tensors(tmp_path, edit, match):
    safetensors = pytest.importorskip("safetensors.numpy", reason=EXTRA)
    write_config(tmp_path)
    tensors = random_tensors()
    edit(tensors)
    safetensors.save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=match) as exc_info:
        load_gpt2(tmp_path)
    assert_one_line_error(exc_info, "model.safetensors")


def test_tensors_land_in_the_zoo_layout(tmp_path):
    """c_attn splits into [W_Q | W_K | W_V] columns; biases, LN affine and the tied head."""
    safetensors = pytest.importorskip("safetensors.numpy", reason=EXTRA)
    write_config(tmp_path)
    tensors = random_tensors()
    # A "transformer." prefix and the causal-mask buffer of old checkpoints are accepted.
    stored = {f"transformer.{k}": v for k, v in tensors.items()}
    stored["transformer.h.0.attn.bias"] = np.tril(np.ones((1, 1, 32, 32), np.float32))
    safetensors.save_file(stored, tmp_path / "model.safetensors")
    cfg, model = load_gpt2(tmp_path)
    attn = model.blocks[1].attn
    np.testing.assert_array_equal(attn.qkv[...], tensors["h.1.attn.c_attn.weight"])
    bias = tensors["h.1.attn.c_attn.bias"]
    np.testing.assert_array_equal(attn.q_bias[...], bias[:64])
    np.testing.assert_array_equal(attn.kv_bias[...], bias[64:])
    np.testing.assert_array_equal(model.blocks[0].ln_ffn.scale[...], tensors["h.0.ln_2.weight"])
    np.testing.assert_array_equal(
        model.blocks[0].mlp.down.bias[...], tensors["h.0.mlp.c_proj.bias"]
    )
    assert model.head is None and cfg.tie_embeddings
    tokens = jnp.arange(10)[None] % 100
    assert model(tokens).shape == (1, 10, 100)


def test_tokenizer_errors(tmp_path):
    with pytest.raises(MissingCheckpointFileError) as exc_info:
        load_gpt2_tokenizer(tmp_path)
    assert_one_line_error(exc_info, "vocab.json")
    (tmp_path / "vocab.json").write_text('{"a": "zero"}')
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    with pytest.raises(CheckpointError) as exc_info:
        load_gpt2_tokenizer(tmp_path)
    assert_one_line_error(exc_info, "vocab.json", "integer id")


# ------------------------------------------------------------------------------------ tokenizer


def bytes_to_unicode():
    """GPT-2's printable stand-in character for each byte."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    keep += list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def write_tokenizer_files(directory):
    """A byte-level vocab (256 bytes) plus the merges h+e, Ġ+t, Ġt+he."""
    vocab = {c: i for i, c in enumerate(bytes_to_unicode().values())}
    merges = [("h", "e"), ("Ġ", "t"), ("Ġt", "he")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    (directory / "vocab.json").write_text(json.dumps(vocab))
    lines = ["#version: 0.2", *(f"{a} {b}" for a, b in merges)]
    (directory / "merges.txt").write_text("\n".join(lines) + "\n")
    return vocab


def test_tokenizer_byte_level_bpe(tmp_path):
    pytest.importorskip("tokenizers", reason=EXTRA)
    vocab = write_tokenizer_files(tmp_path)
    tokenizer = load_gpt2_tokenizer(tmp_path)
    ids = tokenizer.encode("he the é").ids
    assert ids == [vocab["he"], vocab["Ġthe"], vocab["Ġ"], vocab["Ã"], vocab["©"]]
    assert tokenizer.decode(ids) == "he the é"


# ------------------------------------------------------------------- parity with transformers


@pytest.fixture(scope="module")
def hf():
    torch = pytest.importorskip("torch", reason=EXTRA)
    transformers = pytest.importorskip("transformers", reason=EXTRA)
    torch.manual_seed(0)
    config = transformers.GPT2Config(**TINY, attn_implementation="eager")
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # HF inits biases to 0 and LN to (1, 0): perturb every parameter.
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return torch, transformers, model


@pytest.mark.parametrize("weights", ["model.safetensors", "pytorch_model.bin"])
def test_logits_match_transformers(hf, tmp_path, weights):
    torch, _, model = hf
    if weights == "model.safetensors":
        model.save_pretrained(tmp_path)
    else:  # the legacy format: a pickled state dict next to config.json
        model.config.save_pretrained(tmp_path)
        torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    assert (tmp_path / weights).is_file()
    cfg, ours = load_gpt2(tmp_path)
    assert cfg.n_layers == 2 and cfg.vocab_size == 100 and cfg.max_len == 32
    tokens = np.random.default_rng(1).integers(0, 100, (3, 32))
    with torch.no_grad():
        expected = model(torch.from_numpy(tokens)).logits.numpy()
    np.testing.assert_allclose(ours(jnp.asarray(tokens)), expected, rtol=1e-5, atol=1e-5)


def test_tokenizer_matches_transformers(hf, tmp_path):
    _, transformers, _ = hf
    write_tokenizer_files(tmp_path)
    reference = transformers.GPT2Tokenizer(
        str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt")
    )
    ours = load_gpt2_tokenizer(tmp_path)
    for text in ["he the é", "  the\nthe the!", "théhe"]:
        assert ours.encode(text).ids == reference.encode(text, add_special_tokens=False)
