"""The official code's initial parameters: PyTorch's default init drawn by `torch.manual_seed`.

The official Active-Dormant code seeds with `torch.manual_seed(seed)` and builds its model
(spec B.1) in this order, each module drawing from the global generator as it is built: the
token and position embeddings (N(0, 1)), then per block the attention LayerNorm, W_Q, W_K, W_V,
W_O, the MLP LayerNorm, W1, W2 (bias-free `nn.Linear`: U(+-1/sqrt(fan_in))), then the final
LayerNorm and the bias-free head. Our own init has the same laws but other draws, and at B = 512
the run is, to three digits, a function of its initial draw (docs/paper-runs.md, issue 18); so a
run meant to be the official one starts from these parameters.

A block whose attention or MLP is removed (`no_attn`, `no_ffn`) builds no such module and
draws nothing for it, in both models.

Needs PyTorch (`pip install -e '.[parity]'`).
"""

import numpy as np
from flax import nnx

from sinkjax.models import TransformerConfig


def _require_torch():
    try:
        import torch
    except ImportError:
        raise ImportError(
            "the official (PyTorch) initialisation needs torch: pip install -e '.[parity]'"
        ) from None
    return torch


def _check_supported(cfg: TransformerConfig) -> None:
    plain = (
        cfg.positions == "learned"
        and cfg.attention in ("softmax", "relu")
        and not (cfg.use_bias or cfg.tie_embeddings or cfg.sink_token)
        and cfg.mlp_activation == "relu"
    )
    if not plain:
        raise ValueError(
            "the official initialisation exists for the spec B.1 model only (learned positions, "
            "softmax or ReLU attention, no biases, untied head); use init='sinkjax'"
        )


def official_initial_params(cfg: TransformerConfig, seed: int) -> dict:
    """The official model's initial parameters for `seed`, as our parameter tree (a pure dict
    for `nnx.replace_by_pure_dict`; kernels are [in, out], the fused qkv is (d, 3d))."""
    _check_supported(cfg)
    torch = _require_torch()
    from torch import nn

    d, hidden = cfg.d_model, cfg.d_mlp
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)

        def linear(fan_in: int, fan_out: int) -> np.ndarray:
            """A bias-free nn.Linear's weight as our [in, out] kernel."""
            return nn.Linear(fan_in, fan_out, bias=False).weight.detach().numpy().T.copy()

        def layer_norm() -> dict:
            return {"scale": np.ones(d, np.float32), "bias": np.zeros(d, np.float32)}

        params = {
            "token_embed": {"embedding": nn.Embedding(cfg.vocab_size, d).weight.detach().numpy()},
            "pos_embed": {"embedding": nn.Embedding(cfg.max_len, d).weight.detach().numpy()},
            "blocks": {},
        }
        for layer in range(cfg.n_layers):
            block = {}
            if layer not in cfg.no_attn:
                block["ln_attn"] = layer_norm()
                qkv = np.concatenate([linear(d, d) for _ in "qkv"], axis=1)
                block["attn"] = {"qkv": qkv, "o": {"kernel": linear(d, d)}}
            if layer not in cfg.no_ffn:
                block["ln_ffn"] = layer_norm()
                up = linear(d, hidden)
                block["mlp"] = {"up": {"kernel": up}, "down": {"kernel": linear(hidden, d)}}
            params["blocks"][layer] = block
        params["ln_final"] = layer_norm()
        params["head"] = {"kernel": linear(d, cfg.vocab_size)}
    return params


def with_official_init(state: nnx.State, cfg: TransformerConfig, seed: int) -> nnx.State:
    """A copy of our parameter `state` (of a model built from `cfg`) holding the official
    initial parameters of `seed`."""
    import jax

    official = official_initial_params(cfg, seed)

    def shapes(tree) -> list:
        leaves = jax.tree_util.tree_leaves_with_path(tree)
        return [(jax.tree_util.keystr(path), np.shape(leaf)) for path, leaf in leaves]

    if shapes(nnx.to_pure_dict(state)) != shapes(official):
        raise ValueError("the official initialisation does not fit this model's parameters")
    copy = jax.tree.map(lambda leaf: leaf, state)
    nnx.replace_by_pure_dict(copy, official)
    return copy
