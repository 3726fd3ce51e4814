"""An independent PyTorch implementation of the Active-Dormant transformer (spec B.1, B.2).

Written from the spec's words only (no code shared with `sinkjax`, none copied from the official
repository), for the parity tests in `test_parity.py`:

    x_0    = E_tok[x] + E_pos[0..N-1]
    h      = x + O(A V)            A = softmax(Q K^T / sqrt(d) + causal -inf), in float32,
                                   or A_ij = ReLU(s_ij) / (i + 1), j <= i (spec B.2)
    out    = h + W2 ReLU(W1 LN_ffn(h))
    logits = Head(LN_final(out_L))

Q, K, V are LN_attn(x) times bias-free Linear(d, d) maps. A block in `no_attn` has h = x, one in
`no_ffn` has out = h. LayerNorms have eps 1e-5 and affine weight and bias. The loss is the mean
token cross-entropy over all B x N positions. torch.nn's default initialisation (N(0, 1)
embeddings, U(+-1/sqrt(fan_in)) Linear weights, LayerNorm 1 and 0) is kept as is.
"""

import dataclasses
import math

import torch
from torch import nn
from torch.nn import functional as F


@dataclasses.dataclass(frozen=True)
class ReferenceConfig:
    """Shape and variant of the reference model."""

    # Token vocabulary size V.
    vocab_size: int = 67
    # Residual width d (one head of width d).
    d_model: int = 256
    # Rows of the learned position table.
    max_len: int = 256
    # Number of blocks.
    n_layers: int = 1
    # MLP hidden width (4d in the paper).
    d_mlp: int = 1024
    # Blocks without an attention sub-layer (h = x).
    no_attn: tuple[int, ...] = ()
    # Blocks without an MLP sub-layer (out = h).
    no_ffn: tuple[int, ...] = ()
    # ReLU attention of spec B.2 instead of softmax.
    relu_attention: bool = False
    # LayerNorm epsilon.
    ln_eps: float = 1e-5


class Attention(nn.Module):
    """Single-head causal attention with bias-free Q, K, V, O projections."""

    def __init__(self, cfg: ReferenceConfig):
        super().__init__()
        d = cfg.d_model
        self.q = nn.Linear(d, d, bias=False)
        self.k = nn.Linear(d, d, bias=False)
        self.v = nn.Linear(d, d, bias=False)
        self.o = nn.Linear(d, d, bias=False)
        self.relu = cfg.relu_attention

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, N) attention weights of the (B, N, d) normalised stream `x`."""
        n, d = x.shape[1], x.shape[2]
        scores = self.q(x) @ self.k(x).transpose(1, 2) / math.sqrt(d)  # (B, N, N)
        visible = torch.ones(n, n, dtype=torch.bool, device=x.device).tril()
        if self.relu:
            count = torch.arange(1, n + 1, dtype=scores.dtype, device=x.device)[:, None]
            return torch.where(visible, torch.relu(scores), 0.0) / count
        masked = scores.float().masked_fill(~visible, float("-inf"))
        return torch.softmax(masked, dim=-1).to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """O(A V) for the (B, N, d) normalised stream `x`; returns (B, N, d)."""
        return self.o(self.weights(x) @ self.v(x))


class MLP(nn.Module):
    """W2 ReLU(W1 x), both bias-free."""

    def __init__(self, cfg: ReferenceConfig):
        super().__init__()
        self.up = nn.Linear(cfg.d_model, cfg.d_mlp, bias=False)
        self.down = nn.Linear(cfg.d_mlp, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, d) -> (B, N, d)."""
        return self.down(torch.relu(self.up(x)))


class Block(nn.Module):
    """Pre-LN block; a removed sub-layer has no parameters at all."""

    def __init__(self, cfg: ReferenceConfig, layer: int):
        super().__init__()
        has_attn, has_ffn = layer not in cfg.no_attn, layer not in cfg.no_ffn
        self.ln_attn = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps) if has_attn else None
        self.attn = Attention(cfg) if has_attn else None
        self.ln_ffn = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps) if has_ffn else None
        self.mlp = MLP(cfg) if has_ffn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, d) residual stream in and out."""
        h = x if self.attn is None else x + self.attn(self.ln_attn(x))
        return h if self.mlp is None else h + self.mlp(self.ln_ffn(h))


class Transformer(nn.Module):
    """Token and learned position embeddings, blocks, final LayerNorm, untied bias-free head."""

    def __init__(self, cfg: ReferenceConfig):
        super().__init__()
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.max_len, cfg.d_model)
        self.blocks = nn.ModuleList([Block(cfg, i) for i in range(cfg.n_layers)])
        self.ln_final = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, N) int64 tokens -> (B, N, V) logits."""
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.tok(tokens) + self.pos(positions)[None]
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_final(x))


def mean_cross_entropy(model: Transformer, inputs: torch.Tensor, targets: torch.Tensor):
    """Mean next-token cross-entropy over all B x N positions (a 0-d tensor)."""
    logits = model(inputs)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def make_optimizer(model: Transformer, name: str, lr: float, weight_decay: float):
    """The official code's optimisers on every parameter: AdamW(betas 0.9/0.99, eps 1e-8) with
    decoupled decay, or SGD(momentum 0.9) with coupled (L2) decay."""
    if name == "adamw":
        return torch.optim.AdamW(
            model.parameters(), lr=lr, betas=(0.9, 0.99), eps=1e-8, weight_decay=weight_decay
        )
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}")


def train_step(model: Transformer, optimizer, inputs: torch.Tensor, targets: torch.Tensor):
    """One optimiser step on a batch of (B, N) int64 `inputs` and `targets`; returns the loss
    (a float) taken before the update."""
    optimizer.zero_grad(set_to_none=True)
    loss = mean_cross_entropy(model, inputs, targets)
    loss.backward()
    optimizer.step()
    return loss.item()
