"""Experiments of the outcome-based RL study (spec `cot_rl.md`)."""
