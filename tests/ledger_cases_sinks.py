"""Synthetic measurements for the claims of the sinks experiments (see ledger_cases_bb.py)."""

CASES = {}
