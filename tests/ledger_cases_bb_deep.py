"""Synthetic measurements for the claims of the bb_deep experiments (see ledger_cases_bb.py)."""

CASES = {}
