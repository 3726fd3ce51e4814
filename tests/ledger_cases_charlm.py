"""Synthetic measurements for the claims of the charlm experiments (see ledger_cases_bb.py)."""

CASES = {}
