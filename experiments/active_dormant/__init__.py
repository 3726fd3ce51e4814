"""Experiments of the active-dormant study (spec `active_dormant.md`)."""
