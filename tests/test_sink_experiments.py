"""sink-dispensability, p0-circuit and sink-dynamics: the variant zoo, the circuit breakers,
claims from known inputs, and the ci presets end to end."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from experiments import p0_circuit, sink_dispensability, sink_dynamics
from experiments.registry import RunContext
from sinkjax import sink_circuit, sinks
from sinkjax.models import Transformer
from sinkjax.text_training import ARCHITECTURES, toy_gpt2_config

TOKENS = jax.random.randint(jax.random.key(0), (3, 12), 0, 98)


def toy(architecture: str) -> Transformer:
    cfg = toy_gpt2_config(
        98, n_layers=3, d_model=16, n_heads=2, max_len=12, architecture=architecture
    )
    return Transformer(cfg, rngs=nnx.Rngs(0))


def test_unknown_architecture_names_the_choices():
    with pytest.raises(ValueError, match="unknown architecture 'llama'.*gpt2"):
        toy_gpt2_config(98, architecture="llama")


@pytest.mark.parametrize(
    "architecture, expected",
    [
        ("gpt2", {"b no query bias", "c remove first PE", "g no MLP", "h no PE"}),
        ("no-query-bias", {"c remove first PE", "g no MLP", "h no PE"}),
        ("rope", {"b no query bias", "g no MLP"}),
        ("nope", {"b no query bias", "g no MLP"}),
    ],
)
def test_circuit_breakers_follow_the_parts_the_model_has(architecture, expected):
    model = toy(architecture)
    breakers = sink_circuit.circuit_breakers(model, 12)
    assert list(breakers)[0] == "a baseline"
    assert set(breakers) - {"a baseline"} == expected
    # They run together on any variant (no position edit reaches a model without a table),
    # and the baseline is the plain forward pass.
    scores = sink_circuit.score_interventions(model, TOKENS, TOKENS, list(breakers.values()))
    _, trace = model(TOKENS, trace=True)
    np.testing.assert_allclose(
        scores.bos_attention[0], sinks.bos_attention(sinks.attention_maps(trace)), rtol=1e-5
    )
    np.testing.assert_array_equal(scores.slot_attention, 0.0)


def test_table1_is_the_breakers_plus_the_rest():
    model = toy("gpt2")
    table, _, _ = sink_circuit.table1_interventions(model, 12)
    assert list(table) == list(sink_circuit.TABLE1)
    breakers = sink_circuit.circuit_breakers(model, 12)
    for name, intervention in breakers.items():
        assert jax.tree.all(jax.tree.map(jnp.array_equal, table[name], intervention))


def test_slot_attention_is_the_weight_that_leaves_the_tokens():
    model = toy("key-bias-slot")
    _, trace = model(TOKENS, trace=True)
    maps = sinks.attention_maps(trace)  # (B, L, H, T, T)
    late = maps[..., 6:, :].sum(-1)  # token weight of the late queries
    np.testing.assert_allclose(sinks.slot_attention(trace), (1 - late).mean(-1), atol=1e-6)
    assert sinks.slot_attention(toy("gpt2")(TOKENS, trace=True)[1]) is None


def test_sigmoid_maps_are_row_normalised_for_the_metrics():
    model = toy("sigmoid")
    _, trace = model(TOKENS, trace=True)
    raw = sinks.attention_maps(trace)
    proxy = sinks.attention_maps(trace, normalise=True)
    np.testing.assert_allclose(proxy.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(proxy, raw / raw.sum(-1, keepdims=True), rtol=1e-5)
    assert not model.cfg.normalised_attention and toy("key-bias-slot").cfg.normalised_attention


# --- sink-dynamics ---------------------------------------------------------------------------


def test_convergence_step_and_onsets_known_answers():
    steps = np.array([0, 10, 20, 30, 40])
    loss = np.array([5.0, 3.0, 2.2, 2.05, 2.0])  # drop 3; within 10% (0.3) from step 20
    assert sink_dynamics.convergence_step(steps, loss, 0.1) == 20
    assert sink_dynamics.convergence_step(steps, loss, 0.01) == 40
    curve = np.stack([[0.0, 0.0, 1.0, 1.0, 1.0], [0.0, 0.1, 0.2, 0.3, 0.4]], 1)  # (E, L)
    onset = sink_dynamics.onsets(steps, {"s": curve})["s"]
    np.testing.assert_array_equal(onset, [20, 20])


def dynamics_signals(bos_final: float, rho_early: float) -> dict[str, np.ndarray]:
    """(E = 5, L = 3) curves: layer 2's BOS attention ramps to `bos_final` by step 10."""
    bos = np.full((5, 3), 0.02)
    bos[1:, 2] = bos_final
    rho = np.ones((5, 3))
    rho[:, 1] = rho_early
    return {"BOS attention (M4)": bos, "rho (M11)": rho}


@pytest.mark.parametrize(
    "bos_final, rho_early, converged, failing",
    [
        (0.3, 5.0, 20, set()),
        (0.3, 5.0, 5, {"sink-early"}),  # the loss converged before the sink
        (0.03, 5.0, 20, {"sink-forms", "sink-early"}),  # no sink, so no onset to compare
        (0.3, 1.2, 20, {"massive-p0-early"}),
    ],
)
def test_dynamics_claims_follow_the_curves(bos_final, rho_early, converged, failing):
    cfg = sink_dynamics.PRESETS["quick"]
    steps = np.array([0, 10, 20, 30, 40])
    signals = dynamics_signals(bos_final, rho_early)
    onset = sink_dynamics.onsets(steps, signals)
    claims = sink_dynamics._claims(cfg, signals, onset, converged, null=0.05)
    assert {c.id for c in claims if not c.passed} == failing


# --- p0-circuit ------------------------------------------------------------------------------


def p0_signals(auc: float, cosine: float, ratio: float, deep_without: float) -> dict:
    """Three conditions over 4 layers; deep (>= 2) BOS attention 0.3 with <s>."""
    base = {name: np.ones(4) for name in p0_circuit.SIGNALS}
    with_bos = {**base, "bos_attention": np.array([0.05, 0.05, 0.3, 0.3])}
    without_bos = {**base, "bos_attention": np.array([0.05, 0.05, deep_without, deep_without])}
    no_bos = {
        **base,
        "p0_probe_auc": np.array([0.7, auc, 1.0, 1.0]),
        "cross_sample_cosine": np.array([0.2, cosine, 0.9, 0.9]),
        "attention_output_ratio": np.array([ratio, 1.0, 1.0, 1.0]),
    }
    return dict(
        zip([c[0] for c in p0_circuit.CONDITIONS], [with_bos, without_bos, no_bos], strict=True)
    )


@pytest.mark.parametrize(
    "values, failing",
    [
        ((0.99, 0.95, 1.5, 0.2), set()),
        ((0.8, 0.95, 1.5, 0.2), {"p0-recognised"}),
        ((0.99, 0.5, 1.5, 0.2), {"p0-fixed-direction"}),
        ((0.99, 0.95, 0.9, 0.2), {"p0-unmixed-output"}),
        ((0.99, 0.95, 1.5, 0.1), {"deep-sink-survives-bos-removal"}),
    ],
)
def test_p0_claims_follow_the_signals(values, failing):
    claims = p0_circuit._claims(p0_circuit.PRESETS["quick"], p0_signals(*values), null=0.05)
    assert {c.id for c in claims if not c.passed} == failing


# --- sink-dispensability ---------------------------------------------------------------------


def variant_tables(bos: dict[str, float], kept: float, slot: float) -> dict:
    """Tables of every variant: baseline BOS attention `bos[v]` on each domain; every breaker
    keeps `kept` of it; the key-bias slot weighs `slot`."""
    tables = {}
    for variant in ARCHITECTURES:
        rows = {
            "a baseline": {
                "bos_mean": np.full(3, bos.get(variant, 0.3)),
                "percent_of_baseline": np.full(3, 100.0),
            }
        }
        rows["g no MLP"] = {"percent_of_baseline": np.full(3, 100 * kept)}
        tables[variant] = {
            "rows": rows,
            "slot": np.full(3, slot if variant == "key-bias-slot" else 0.0),
        }
    return tables


@pytest.mark.parametrize(
    "bos, kept, slot, failing",
    [
        ({"sigmoid": 0.05, "key-bias-slot": 0.05}, 0.9, 0.5, set()),
        (
            {"rope": 0.05, "sigmoid": 0.05, "key-bias-slot": 0.05},
            0.9,
            0.5,
            {"sink-forms-rope", "circuit-dispensable-rope"},
        ),
        (
            {"sigmoid": 0.05, "key-bias-slot": 0.05},
            0.2,
            0.5,
            {f"circuit-dispensable-{v}" for v in sink_dispensability.WITHOUT_CIRCUIT},
        ),
        ({"key-bias-slot": 0.05}, 0.9, 0.5, {"no-token0-sink-sigmoid"}),
        ({"sigmoid": 0.05, "key-bias-slot": 0.05}, 0.9, 0.01, {"sink-on-slot-key-bias"}),
    ],
)
def test_dispensability_claims_follow_the_tables(bos, kept, slot, failing):
    cfg = sink_dispensability.PRESETS["quick"]
    claims = sink_dispensability._claims(cfg, variant_tables(bos, kept, slot), null=0.05)
    assert {c.id for c in claims if not c.passed} == failing
    assert len(claims) == 5 + 4 + 2


def test_config_validation():
    with pytest.raises(ValueError, match="variants must be a non-empty subset"):
        dataclasses.replace(sink_dispensability.PRESETS["ci"], variants=("gpt2", "llama"))
    with pytest.raises(ValueError, match="early_layers"):
        dataclasses.replace(p0_circuit.PRESETS["ci"], early_layers=2)
    with pytest.raises(ValueError, match="converged_fraction"):
        dataclasses.replace(sink_dynamics.PRESETS["ci"], converged_fraction=1.5)


# --- ci presets end to end -------------------------------------------------------------------


def test_p0_and_dispensability_ci_presets_share_the_rope_run(tmp_path):
    store = tmp_path / "trained-runs"
    for folder in ("p0", "disp"):
        (tmp_path / folder).mkdir()
    p0 = p0_circuit.run(
        p0_circuit.PRESETS["ci"], RunContext(tmp_path / "p0", progress=False, run_store=store)
    )
    assert len(list(store.iterdir())) == 2  # the RoPE run with <s> and its no-BOS twin
    cfg = sink_dispensability.PRESETS["ci"]
    disp = sink_dispensability.run(
        cfg, RunContext(tmp_path / "disp", progress=False, run_store=store)
    )
    assert len(list(store.iterdir())) == 2 + len(cfg.variants) - 1  # rope restored
    assert {c.id for c in p0.claims} == {
        "p0-recognised",
        "p0-fixed-direction",
        "p0-unmixed-output",
        "deep-sink-survives-bos-removal",
    }
    assert set(p0.summary["conditions"]) == {c[0] for c in p0_circuit.CONDITIONS}
    tables = disp.summary["variants"]
    assert list(tables) == list(cfg.variants)
    assert set(tables["rope"]["rows"]) == {"a baseline", "b no query bias", "g no MLP"}
    assert tables["key-bias-slot"]["slot"].min() > 0
    assert {c.id for c in disp.claims} >= {"sink-forms-gpt2", "sink-on-slot-key-bias"}
    for outcome, root in ((p0, "p0"), (disp, "disp")):
        assert (tmp_path / root / outcome.figures[0]).read_bytes()[:4] == b"\x89PNG"


def test_dynamics_ci_preset_records_every_signal_per_layer(tmp_path):
    outcome = sink_dynamics.run(sink_dynamics.PRESETS["ci"], RunContext(tmp_path, progress=False))
    steps = outcome.summary["eval_steps"]
    assert set(outcome.summary["signals"]) == set(outcome.summary["onset_steps"])
    for curve in outcome.summary["signals"].values():
        assert curve.shape == (len(steps), 2)
    assert {c.id for c in outcome.claims} == {"sink-forms", "sink-early", "massive-p0-early"}
    assert (tmp_path / outcome.figures[0]).read_bytes()[:4] == b"\x89PNG"
