"""The registry: every experiment of the three studies, by name, in the order the report lists
them. Only the CLI and the tests import it; no experiment does."""

from experiments.active_dormant import (
    bb_dynamics,
    bb_interventions,
    char_lm_dynamics,
    layerwise_maps,
    no_bos,
    optimizer_ablation,
    peak_intervention,
    relu_attention,
    residual_peaks,
    simplified_adam,
    theorem3,
)
from experiments.cot_rl import (
    chains_emergence,
    chains_length_generalization,
    chains_simple_examples,
    chains_theory,
    chains_theory_vs_rl,
)
from experiments.framework.experiment import Experiment
from experiments.sinks import gpt2_circuit, p0_circuit, sink_dispensability, sink_dynamics

_EXPERIMENTS = (
    theorem3.EXPERIMENT,
    bb_dynamics.EXPERIMENT,
    bb_interventions.EXPERIMENT,
    relu_attention.EXPERIMENT,
    no_bos.EXPERIMENT,
    residual_peaks.EXPERIMENT,
    peak_intervention.EXPERIMENT,
    optimizer_ablation.EXPERIMENT,
    layerwise_maps.EXPERIMENT,
    simplified_adam.EXPERIMENT,
    char_lm_dynamics.EXPERIMENT,
    chains_emergence.EXPERIMENT,
    chains_length_generalization.EXPERIMENT,
    chains_simple_examples.EXPERIMENT,
    chains_theory.EXPERIMENT,
    chains_theory_vs_rl.EXPERIMENT,
    gpt2_circuit.EXPERIMENT,
    sink_dispensability.EXPERIMENT,
    p0_circuit.EXPERIMENT,
    sink_dynamics.EXPERIMENT,
)


def get_experiments() -> dict[str, Experiment]:
    """Every registered experiment, in the order the report lists them."""
    return {e.name: e for e in _EXPERIMENTS}
