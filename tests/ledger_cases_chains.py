"""Synthetic measurements for the claims of the chains experiments (see ledger_cases_bb.py)."""

CASES = {}
