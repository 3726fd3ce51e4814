"""Real GPT-2 in the zoo: load a Hugging Face GPT-2 checkpoint directory into `Transformer`.

The directory is what `GPT2LMHeadModel.save_pretrained` (or a hub download) leaves:
`config.json`, the weights in `model.safetensors` (read with numpy, no torch) or
`pytorch_model.bin` (needs torch), and `vocab.json` + `merges.txt` for the tokenizer. Nothing is
downloaded. Install the extra with `pip install -e '.[gpt2]'`.

GPT-2 is the zoo's pre-LN block with learned absolute positions, biases on every Linear,
tanh-GELU (`gelu_new`), LayerNorm eps from the config and an LM head tied to the token
embedding (no head bias). HF `Conv1D` weights are stored [in, out] like our kernels, so no
weight is transposed: `c_attn.weight` (d, 3d) = [W_Q | W_K | W_V] is our fused `qkv` kernel
and `c_attn.bias` (3d,) = [b_Q | b_K | b_V] is our `q_bias` + `kv_bias`.
"""

import json
import os
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import nnx

from sinkjax.models.config import TransformerConfig
from sinkjax.models.transformer import Transformer

INSTALL_HINT = "pip install -e '.[gpt2]'"

# Stored tensors that are not parameters: causal-mask buffers of old checkpoints, and the
# LM head, which GPT-2 ties to wte.
IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias", "lm_head.weight")


class CheckpointError(ValueError):
    """A GPT-2 checkpoint file is malformed; the one-line message names the file."""


class MissingCheckpointFileError(CheckpointError, FileNotFoundError):
    """A file the GPT-2 checkpoint needs is missing; the one-line message names it."""


def _one_line(exc: BaseException, limit: int = 200) -> str:
    """The exception's message on one line, cut to `limit` characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _require(path: Path, why: str) -> Path:
    if not path.is_file():
        raise MissingCheckpointFileError(f"{path}: missing ({why})")
    return path


def _read_json(path: Path) -> Any:
    try:
        return json.loads(_require(path, "a GPT-2 checkpoint directory needs it").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({_one_line(exc)})") from exc


def gpt2_config(directory: str | os.PathLike) -> TransformerConfig:
    """The zoo `TransformerConfig` of the GPT-2 checkpoint in `directory` (from `config.json`).

    Raises:
        MissingCheckpointFileError: no config.json.
        CheckpointError: config.json is not JSON, misses a size field, or describes a model
            that is not plain GPT-2 (other activation, untied head, unscaled attention, ...).
    """
    path = Path(directory) / "config.json"
    raw = _read_json(path)
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    missing = [
        k for k in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head") if k not in raw
    ]
    if missing:
        raise CheckpointError(f"{path}: missing GPT-2 fields {missing}")
    unsupported = {
        "model_type": (raw.get("model_type", "gpt2"), "gpt2"),
        "activation_function": (raw.get("activation_function", "gelu_new"), "gelu_new"),
        "scale_attn_weights": (raw.get("scale_attn_weights", True), True),
        "scale_attn_by_inverse_layer_idx": (
            raw.get("scale_attn_by_inverse_layer_idx", False),
            False,
        ),
        "tie_word_embeddings": (raw.get("tie_word_embeddings", True), True),
        "add_cross_attention": (raw.get("add_cross_attention", False), False),
    }
    # HF's "gelu_pytorch_tanh" is the same tanh approximation as "gelu_new".
    if unsupported["activation_function"][0] == "gelu_pytorch_tanh":
        del unsupported["activation_function"]
    for key, (value, supported) in unsupported.items():
        if value != supported:
            raise CheckpointError(f"{path}: {key}={value!r} is not supported (only {supported!r})")
    n_embd = raw["n_embd"]
    try:
        return TransformerConfig(
            vocab_size=raw["vocab_size"],
            max_len=raw["n_positions"],
            d_model=n_embd,
            n_layers=raw["n_layer"],
            n_heads=raw["n_head"],
            d_mlp=raw.get("n_inner") or 4 * n_embd,
            mlp_activation="gelu_new",
            tie_embeddings=True,
            use_bias=True,
            ln_eps=float(raw.get("layer_norm_epsilon", 1e-5)),
        )
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: {_one_line(exc)}") from exc


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    try:
        from safetensors.numpy import load_file
    except ImportError as exc:
        raise ImportError(f"reading {path} needs safetensors: {INSTALL_HINT}") from exc
    try:
        return load_file(path)
    except Exception as exc:  # the library raises several types for a corrupt file
        raise CheckpointError(
            f"{path}: not a readable safetensors file ({_one_line(exc)})"
        ) from exc


def _read_torch_bin(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            f"reading {path} needs torch ({INSTALL_HINT}), or supply model.safetensors"
        ) from exc
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors alike
        raise CheckpointError(
            f"{path}: not a readable PyTorch state dict ({_one_line(exc)})"
        ) from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a dict of tensors (a state dict)")
    return {k: v.detach().float().numpy() for k, v in state.items()}


def read_gpt2_tensors(directory: str | os.PathLike) -> tuple[Path, dict[str, np.ndarray]]:
    """(weights file, HF tensors by name) from model.safetensors, else pytorch_model.bin."""
    directory = Path(directory)
    safetensors_path = directory / "model.safetensors"
    if safetensors_path.is_file():
        return safetensors_path, _read_safetensors(safetensors_path)
    bin_path = directory / "pytorch_model.bin"
    if bin_path.is_file():
        return bin_path, _read_torch_bin(bin_path)
    raise MissingCheckpointFileError(
        f"{directory}: missing weights (needs model.safetensors or pytorch_model.bin; "
        "sharded checkpoints are not supported)"
    )


def _hf_to_zoo(cfg: TransformerConfig) -> dict[str, tuple[str, ...]]:
    """HF tensor name -> zoo parameter path; c_attn.bias maps to two paths (see `_zoo_params`)."""
    names = {
        "wte.weight": ("token_embed", "embedding"),
        "wpe.weight": ("pos_embed", "embedding"),
        "ln_f.weight": ("ln_final", "scale"),
        "ln_f.bias": ("ln_final", "bias"),
    }
    for i in range(cfg.n_layers):
        for hf, ours in (
            ("ln_1.weight", ("ln_attn", "scale")),
            ("ln_1.bias", ("ln_attn", "bias")),
            ("attn.c_attn.weight", ("attn", "qkv")),
            ("attn.c_attn.bias", ("attn", "q_bias")),
            ("attn.c_proj.weight", ("attn", "o", "kernel")),
            ("attn.c_proj.bias", ("attn", "o", "bias")),
            ("ln_2.weight", ("ln_ffn", "scale")),
            ("ln_2.bias", ("ln_ffn", "bias")),
            ("mlp.c_fc.weight", ("mlp", "up", "kernel")),
            ("mlp.c_fc.bias", ("mlp", "up", "bias")),
            ("mlp.c_proj.weight", ("mlp", "down", "kernel")),
            ("mlp.c_proj.bias", ("mlp", "down", "bias")),
        ):
            names[f"h.{i}.{hf}"] = ("blocks", i, *ours)
    return names


def _zoo_params(
    cfg: TransformerConfig, tensors: dict[str, np.ndarray], path: Path
) -> dict[tuple, tuple[str, np.ndarray]]:
    """Zoo parameter path -> (HF tensor name, float32 array).

    Raises `CheckpointError` naming `path` on a missing or unexpected tensor.
    """
    tensors = {k.removeprefix("transformer."): v for k, v in tensors.items()}
    tensors = {k: v for k, v in tensors.items() if not k.endswith(IGNORED_SUFFIXES)}
    names = _hf_to_zoo(cfg)
    missing = sorted(set(names) - set(tensors))
    unexpected = sorted(set(tensors) - set(names))
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: not a {cfg.n_layers}-layer GPT-2 state dict "
            f"(missing {missing[:4]}, unexpected {unexpected[:4]})"
        )
    params = {}
    d = cfg.d_model
    for name, zoo_path in names.items():
        value = np.asarray(tensors[name], np.float32)
        if name.endswith("attn.c_attn.bias"):  # [b_Q | b_K | b_V] -> q_bias, kv_bias
            _check_shape(path, name, value, (3 * d,))
            params[zoo_path] = (name, value[:d])
            params[(*zoo_path[:-1], "kv_bias")] = (name, value[d:])
        else:
            params[zoo_path] = (name, value)
    return params


def _check_shape(path: Path, name: str, value: np.ndarray, shape: tuple[int, ...]) -> None:
    if value.shape != tuple(shape):
        raise CheckpointError(
            f"{path}: {name} has shape {value.shape}, config.json implies {tuple(shape)}"
        )


def load_gpt2(directory: str | os.PathLike) -> tuple[TransformerConfig, Transformer]:
    """Load the GPT-2 checkpoint in `directory` into a float32 zoo `Transformer`.

    The model is built abstractly (no random init) and filled with the checkpoint's tensors,
    so loading GPT-2 XL costs one copy of its weights. `model(tokens)` gives GPT-2's logits
    (B, N, vocab_size) for N <= n_positions.

    Raises:
        MissingCheckpointFileError: config.json or both weight files are missing.
        CheckpointError: a file is malformed, a tensor is missing or has the wrong shape.
        ImportError: the weights need a package of the `gpt2` extra that is not installed.
    """
    cfg = gpt2_config(directory)
    path, tensors = read_gpt2_tensors(directory)
    params = _zoo_params(cfg, tensors, path)
    graphdef, state = nnx.split(nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(0))))
    filled = []
    for zoo_path, variable in nnx.to_flat_state(state):
        name, value = params[zoo_path]
        if not name.endswith("attn.c_attn.bias"):  # checked whole in `_zoo_params`
            _check_shape(path, name, value, variable.shape)
        filled.append((zoo_path, variable.replace(jnp.asarray(value))))
    return cfg, nnx.merge(graphdef, nnx.from_flat_state(filled))


def load_gpt2_tokenizer(directory: str | os.PathLike):
    """GPT-2's byte-level BPE tokenizer from `vocab.json` and `merges.txt` in `directory`.

    Returns a `tokenizers.Tokenizer`; `tokenizer.encode(text).ids` gives the token ids with no
    special tokens added (P1 convention: no <|endoftext|> prepended), `tokenizer.decode(ids)`
    the text.
    """
    directory = Path(directory)
    vocab_path = _require(directory / "vocab.json", "the GPT-2 tokenizer needs it")
    merges_path = _require(directory / "merges.txt", "the GPT-2 tokenizer needs it")
    vocab = _read_json(vocab_path)
    if not isinstance(vocab, dict) or not all(isinstance(i, int) for i in vocab.values()):
        raise CheckpointError(f"{vocab_path}: expected a JSON object of token -> integer id")
    try:
        from tokenizers import ByteLevelBPETokenizer
    except ImportError as exc:
        raise ImportError(f"the GPT-2 tokenizer needs tokenizers: {INSTALL_HINT}") from exc
    try:
        return ByteLevelBPETokenizer(str(vocab_path), str(merges_path), add_prefix_space=False)
    except Exception as exc:  # tokenizers reports bad merges as a plain Exception
        raise CheckpointError(
            f"{merges_path}: not a valid BPE merges file ({_one_line(exc)})"
        ) from exc
