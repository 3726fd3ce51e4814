"""The GPT-2 sink circuit of a zoo model: P1's Table 1 interventions and its circuit statistics.

P1 (Ran-Milo et al., spec sinks_gpt2_p0.md §1) explains the sink of GPT-2 by the learned query
bias b_Q, the layer-0 MLP applied to position 0's embedding (the effective positional embedding
EPE_0 = p_0 + MLP0(p_0)) and a few key-projection coordinates. This module builds the ten
Table 1 interventions (a-j) for any zoo model with learned positions and a query bias, runs
them in one vmapped forward pass, and computes the circuit statistics (Δ-dominance M6,
bias-EPE alignment M8, coordinate contributions M9) from the weights and a traced pass.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, Float, Int

from sinkjax.interventions import Interventions, key_coordinate_scale, position_edit, stack
from sinkjax.models import Transformer
from sinkjax.sinks import metrics as sinks

# P1 Table 1, in its order; "(ctrl)" marks the controls that should leave the sink intact.
TABLE1 = (
    "a baseline",
    "b no query bias",
    "c remove first PE",
    "d swap EPE",
    "e swap PE (ctrl)",
    "f nullify BOS token (ctrl)",
    "g no MLP",
    "h no PE",
    "i zero top-3 W_K",
    "j zero random W_K (ctrl)",
)
# Input coordinates of W_K zeroed by (i) and, drawn at random per layer, by (j).
N_KEY_COORDINATES = 3


def check_circuit_model(model: Transformer) -> None:
    """P1's circuit needs learned absolute positions, a query bias and an MLP in block 0."""
    cfg = model.cfg
    if cfg.positions != "learned" or not cfg.has_query_bias or model.blocks[0].mlp is None:
        raise ValueError(
            "the GPT-2 circuit analysis needs positions='learned', a query bias and an MLP in "
            f"block 0; this model has positions={cfg.positions!r}, "
            f"query bias={cfg.has_query_bias}"
        )


def effective_positions(model: Transformer, seq_len: int) -> Float[Array, "T d"]:
    """EPE_j = p_j + MLP0(p_j) for j < seq_len (layer-0 MLP on the raw PE, no LN; M7)."""
    check_circuit_model(model)
    table = model.pos_embed.embedding[:seq_len]
    return sinks.effective_positional_embedding(table, lambda p: model.blocks[0].mlp(p[None])[0])


def table1_interventions(
    model: Transformer, seq_len: int, seed: int = 42
) -> tuple[dict[str, Interventions], np.ndarray, np.ndarray]:
    """P1's ten interventions on `model` for inputs of `seq_len` tokens (spec §1(b)).

    Returns:
        (interventions by `TABLE1` name, (3,) the top-|EPE_0| coordinates zeroed by (i),
        (L, 3) the random coordinates of (j), drawn per layer without repetition from `seed`).
    """
    cfg = model.cfg
    L, H, d = cfg.n_layers, cfg.n_heads, cfg.d_model
    epe = np.asarray(effective_positions(model, seq_len))
    table = np.asarray(model.pos_embed.embedding[:seq_len])
    top = np.argsort(-np.abs(epe[0]))[:N_KEY_COORDINATES]
    rng = np.random.default_rng(seed)
    random = np.stack([rng.choice(d, N_KEY_COORDINATES, replace=False) for _ in range(L)])
    none = Interventions.none(L, H)
    first_token_off = np.r_[0.0, np.ones(seq_len - 1)].astype(np.float32)
    parts = {
        **circuit_breakers(model, seq_len),
        "d swap EPE": none.swap_mlp_output(jnp.asarray(epe[0]), jnp.asarray(epe[1])),
        "e swap PE (ctrl)": none.swap_mlp_output(jnp.asarray(table[0]), jnp.asarray(table[1])),
        "f nullify BOS token (ctrl)": none.scale_token_embedding(first_token_off),
        "i zero top-3 W_K": none.scale_key_coordinates(key_coordinate_scale(L, d, top)),
        "j zero random W_K (ctrl)": none.scale_key_coordinates(key_coordinate_scale(L, d, random)),
    }
    interventions = {name: parts[name] for name in TABLE1}
    return interventions, top, random


def circuit_breakers(model: Transformer, seq_len: int) -> dict[str, Interventions]:
    """The Table 1 interventions that remove GPT-2's sink in P1 and that apply to `model`.

    (b) needs a query bias, (c) and (h) a position table added to the stream (learned or
    sinusoidal), (g) MLPs; (d) and (i) need the learned table's EPE and are left to
    `table1_interventions`. A model without the GPT-2 circuit (e.g. no query bias, RoPE) gets
    the edits it has the parts for, so one can test whether its sink survives them.

    Returns:
        TABLE1 name -> intervention, "a baseline" first.
    """
    cfg = model.cfg
    none = Interventions.none(cfg.n_layers, cfg.n_heads)
    position_table = cfg.positions in ("learned", "sinusoidal")
    breakers = {"a baseline": none}
    if cfg.has_query_bias:
        breakers["b no query bias"] = none.scale_query_bias(0.0)
    if position_table:
        breakers["c remove first PE"] = none.mix_positions(position_edit(seq_len, "replace"))
    if any(block.mlp is not None for block in model.blocks):
        breakers["g no MLP"] = none.remove_mlp(slice(None))
    if position_table:
        breakers["h no PE"] = none.mix_positions(position_edit(seq_len, "none"))
    return breakers


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class InterventionScores:
    """Per-example effect of each intervention (G interventions, B examples).

    Attributes:
        bos_attention: (G, B) P1's BOS attention (M4) over the layer band.
        cross_entropy: (G, B) mean next-token cross-entropy (nats) of each example (M13).
        slot_attention: (G, B) the same band mean as `bos_attention` of the weight on the
            extra key slot (key-bias slot or sink token); 0 for a model without one.
    """

    bos_attention: Float[Array, "G B"]
    cross_entropy: Float[Array, "G B"]
    slot_attention: Float[Array, "G B"]


def score_interventions(
    model: Transformer,
    tokens: Int[Array, "B T"],
    targets: Int[Array, "B T"],
    interventions: list[Interventions],
    band: tuple[int, int] | None = None,
    per_pass: int | None = None,
) -> InterventionScores:
    """Run every intervention on the batch in one compiled, traced forward program.

    Args:
        tokens: (B, T) model inputs; targets: (B, T) the next token of each input position.
        interventions: G interventions (completed and stacked here).
        band: the M4 layer band; None is `sinks.default_band(L)`.
        per_pass: interventions vmapped together (`lax.map` runs the groups one after
            another); None vmaps all G. Lower it when G x B x T x V logits do not fit in memory
            (e.g. 1 for GPT-2 small).
    """
    grid = stack(interventions, model.cfg.d_model, tokens.shape[1])
    graphdef, params = nnx.split(model)
    return _score(graphdef, params, tokens, targets, grid, band, per_pass or len(interventions))


@functools.partial(jax.jit, static_argnums=(0, 5, 6))
def _score(graphdef, params, tokens, targets, grid, band, per_pass) -> InterventionScores:
    def one(interventions):
        model = nnx.merge(graphdef, params)
        logits, trace = model(tokens, interventions, trace=True)
        maps = sinks.attention_maps(trace, not model.cfg.normalised_attention)
        bos = sinks.bos_attention(maps, band)
        log_probs = jax.nn.log_softmax(logits, axis=-1)
        ce = -jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0].mean(-1)
        slots = sinks.slot_attention(trace)  # (B, L, H) or None
        slot = jnp.zeros_like(bos) if slots is None else sinks.band_mean(slots, band)
        return InterventionScores(bos, ce, slot)

    return jax.lax.map(one, grid, batch_size=per_pass)
