"""The GPT-2 and P0 sink circuits and the sink metrics (spec `sinks_gpt2_p0.md`): the metrics,
the circuit interventions and the GPT-2-style toy LM they are measured on."""
