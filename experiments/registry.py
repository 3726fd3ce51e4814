"""The registry: every experiment of the three studies, by name, in the order the report lists
them. Only the CLI and the tests import it; no experiment does.

The studies are imported on the first call, not with this module: importing them may start
JAX's backend, and a process of a multi-host job must join its job before that (the CLI calls
`get_experiments` after `sinkjax.distributed.initialize`).
"""

from experiments.framework.experiment import Experiment


def get_experiments() -> dict[str, Experiment]:
    """Every registered experiment, by name, in the order the report lists them."""
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
    from experiments.sinks import gpt2_circuit, p0_circuit, sink_dispensability, sink_dynamics

    experiments = (
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
    return {e.name: e for e in experiments}
