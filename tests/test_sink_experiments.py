"""sink-dispensability, p0-circuit and sink-dynamics: the variant zoo, the circuit breakers,
claims from known inputs, and the ci presets end to end."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from experiments.framework.claims import judge
from experiments.framework.experiment import RunContext
from experiments.sinks import p0_circuit, sink_dispensability, sink_dynamics
from sinkjax.models import Transformer
from sinkjax.sinks import circuit as sink_circuit
from sinkjax.sinks import metrics as sinks
from sinkjax.sinks.toy_lm import ARCHITECTURES, toy_gpt2_config

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


def dynamics_metrics(band_final: float, onset_step: int) -> dict[str, np.ndarray]:
    """`text_lm_metrics` histories of one seed at steps 0..40 (E = 5): the band's BOS
    attention jumps to `band_final` at `onset_step`; the loss converges at step 20."""
    steps = np.array([0, 10, 20, 30, 40])
    band = np.where(steps >= onset_step, band_final, 0.02)
    ce = np.array([5.0, 3.0, 2.2, 2.05, 2.0])[:, None] * np.ones(3)
    return {"bos_attention_band": band[None], "ce": ce[None]}


@pytest.mark.parametrize(
    "band_final, onset_step, failing",
    [
        (0.5, 10, set()),
        (0.5, 20, set()),  # the onset at the convergence step is "no later"
        (0.5, 30, {"sink-early"}),  # the loss converged before the sink
        (0.1, 10, {"sink-forms", "sink-early"}),  # no sink in the band, so nothing emerged
    ],
)
def test_dynamics_claims_follow_the_curves(band_final, onset_step, failing):
    steps = np.array([0, 10, 20, 30, 40])
    measured = sink_dynamics.measure(steps, dynamics_metrics(band_final, onset_step))
    claims = judge(sink_dynamics.CLAIMS, measured)
    assert {c.id for c in claims if not c.passed} == failing


def test_strongest_sink_layer_is_an_observation():
    bos = np.full((5, 3), 0.02)
    bos[-1, 0] = 0.3
    rho = np.ones((5, 3))
    rho[-1, 1] = 4.0
    signals = {"BOS attention (M4)": bos, "rho (M11)": rho}
    found = {o.id: o.measured for o in sink_dynamics.observations(signals, null=0.05)}
    assert found["strongest-sink-layer"]["layer"] == 0
    assert found["strongest-sink-layer"]["over_null"] == pytest.approx(6.0)
    assert found["massive-p0-early"] == pytest.approx(4.0)


# --- p0-circuit ------------------------------------------------------------------------------


def p0_signals(auc: float, cosine: float, ratio: float, deep_without: float) -> dict:
    """Three conditions over 4 layers; deep (>= 2) BOS attention 0.5 with <s>."""
    base = {name: np.ones(4) for name in p0_circuit.SIGNALS}
    with_bos = {**base, "bos_attention": np.array([0.05, 0.05, 0.5, 0.5])}
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
        ((0.99, 0.95, 1.5, 0.48), set()),
        ((0.9, 0.95, 1.5, 0.48), {"p0-recognised"}),
        ((0.99, 0.5, 1.5, 0.48), {"p0-fixed-direction"}),
        ((0.99, 0.95, 0.9, 0.48), {"p0-unmixed-output"}),
        ((0.99, 0.95, 1.5, 0.3), {"deep-sink-survives-bos-removal"}),  # 0.6 of the level
    ],
)
def test_p0_claims_follow_the_signals(values, failing):
    measured, skipped = p0_circuit.measure(p0_signals(*values), n_layers=4)
    assert skipped == {}
    claims = judge(p0_circuit.CLAIMS, measured)
    assert {c.id for c in claims if not c.passed} == failing


def test_p0_deep_sink_needs_a_layer_past_the_first_two():
    measured, skipped = p0_circuit.measure(p0_signals(0.99, 0.95, 1.5, 0.48), n_layers=2)
    assert set(skipped) == {"deep-sink-survives-bos-removal"}
    assert set(measured) | set(skipped) == {s.id for s in p0_circuit.CLAIMS}


# --- sink-dispensability ---------------------------------------------------------------------


def variant_tables(bos: dict[str, float], kept: float, slot: float, sigmoid_rate: float) -> dict:
    """Tables of every variant: baseline BOS attention `bos[v]` (0.5 if not given) on each
    domain; every applicable breaker keeps `kept` of it; the key-bias slot weighs `slot`;
    Gu's sink rate 0.2, `sigmoid_rate` for sigmoid."""
    tables = {}
    for variant in ARCHITECTURES:
        level = bos.get(variant, 0.5)
        rows = {"a baseline": {"bos_mean": np.full(3, level)}}
        for name in ("b no query bias", "c remove first PE", "g no MLP"):
            rows[name] = {"bos_mean": np.full(3, kept * level)}
        tables[variant] = {
            "rows": rows,
            "slot": np.full(3, slot if variant == "key-bias-slot" else 0.0),
            "sink_rate": np.array([sigmoid_rate if variant == "sigmoid" else 0.2]),
        }
    return tables


WITHOUT_CIRCUIT = list(sink_dispensability.DISPENSABLE_BREAKER)


@pytest.mark.parametrize(
    "bos, kept, slot, sigmoid_rate, failing",
    [
        ({"sigmoid": 0.05, "key-bias-slot": 0.05}, 0.9, 0.5, 0.004, set()),
        (
            {"rope": 0.05, "sigmoid": 0.05, "key-bias-slot": 0.05},
            0.9,
            0.5,
            0.004,
            {"sink-forms-rope", "circuit-dispensable-rope"},
        ),
        # The breakers remove the sink (0.5 x 0.5 = 0.25 < 0.3) in every variant.
        (
            {"sigmoid": 0.05, "key-bias-slot": 0.05},
            0.5,
            0.5,
            0.004,
            {f"circuit-dispensable-{v}" for v in WITHOUT_CIRCUIT},
        ),
        ({"key-bias-slot": 0.05}, 0.9, 0.5, 0.02, {"no-token0-sink-sigmoid"}),
        ({"sigmoid": 0.05, "key-bias-slot": 0.05}, 0.9, 0.01, 0.004, {"sink-on-slot-key-bias"}),
    ],
)
def test_dispensability_claims_follow_the_tables(bos, kept, slot, sigmoid_rate, failing):
    tables = variant_tables(bos, kept, slot, sigmoid_rate)
    measured, skipped = sink_dispensability.measure(tables)
    assert skipped == {}
    claims = judge(sink_dispensability.CLAIMS, measured)
    assert len(claims) == 5 + 4 + 2
    assert {c.id for c in claims if not c.passed} == failing


def test_dispensability_skips_the_claims_of_variants_not_run():
    tables = variant_tables({}, 0.9, 0.5, 0.004)
    ci_variants = sink_dispensability.PRESETS["ci"].variants
    measured, skipped = sink_dispensability.measure({v: tables[v] for v in ci_variants})
    assert "sink-forms-gpt2" in measured and "no-token0-sink-sigmoid" in skipped
    assert set(measured) | set(skipped) == {s.id for s in sink_dispensability.CLAIMS}


def test_config_validation():
    with pytest.raises(ValueError, match="variants must be a non-empty subset"):
        dataclasses.replace(sink_dispensability.PRESETS["ci"], variants=("gpt2", "llama"))


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
    assert [c.id for c in p0.claims] == [s.id for s in p0_circuit.CLAIMS]
    # The ci model has 2 layers: no deep layer for the BOS-removal claim.
    assert [c.id for c in p0.claims if c.verdict == "skipped"] == ["deep-sink-survives-bos-removal"]
    assert set(p0.summary["conditions"]) == {c[0] for c in p0_circuit.CONDITIONS}
    tables = disp.summary["variants"]
    assert list(tables) == list(cfg.variants)
    assert set(tables["rope"]["rows"]) == {"a baseline", "b no query bias", "g no MLP"}
    assert tables["key-bias-slot"]["slot"].min() > 0
    assert [c.id for c in disp.claims] == [s.id for s in sink_dispensability.CLAIMS]
    judged = {c.id for c in disp.claims if c.verdict != "skipped"}
    assert judged == {
        "sink-forms-gpt2",
        "sink-forms-rope",
        "circuit-dispensable-rope",
        "sink-on-slot-key-bias",
    }
    for outcome, root in ((p0, "p0"), (disp, "disp")):
        assert (tmp_path / root / outcome.figures[0]).read_bytes()[:4] == b"\x89PNG"


def test_dynamics_ci_preset_records_every_signal_per_layer(tmp_path):
    outcome = sink_dynamics.run(sink_dynamics.PRESETS["ci"], RunContext(tmp_path, progress=False))
    steps = outcome.summary["eval_steps"]
    assert set(outcome.summary["signals"]) == set(outcome.summary["onset_steps"])
    for curve in outcome.summary["signals"].values():
        assert curve.shape == (len(steps), 2)
    assert [c.id for c in outcome.claims] == [s.id for s in sink_dynamics.CLAIMS]
    assert all(c.verdict in ("pass", "fail") for c in outcome.claims)
    assert {o.id for o in outcome.observations} == {"strongest-sink-layer", "massive-p0-early"}
    assert (tmp_path / outcome.figures[0]).read_bytes()[:4] == b"\x89PNG"
