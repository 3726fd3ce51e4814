"""Experiments of the GPT-2 / P0 sink-circuit study (spec `sinks_gpt2_p0.md`)."""
