"""Active-dormant heads and extreme tokens (spec `active_dormant.md`): the Bigram-Backcopy task and
its corpus statistics, BB training and probes, the simplified (alpha, beta) model and its
training, and the byte-level LM that stands in for the paper's LLMs."""
