"""Experiments: one module per paper claim or figure, the registry, the CLI and the report."""
