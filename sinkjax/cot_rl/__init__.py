"""Outcome-based RL makes transformers traverse (spec `cot_rl.md`): the two-chain task, the
one-layer policy, its rollouts and REINFORCE training."""
