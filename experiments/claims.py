"""Claims: a paper statement, what theory or the paper predicts, what we measured, a verdict.

Verdicts are always computed from the measured numbers by the constructors below; no
experiment writes "pass" by hand.
"""

import dataclasses
import math
from typing import Any, Literal

Verdict = Literal["pass", "fail"]


@dataclasses.dataclass(frozen=True)
class Claim:
    """One checked statement.

    Attributes:
        id: short stable identifier, e.g. "alpha-law-error".
        statement: the claim in words.
        predicted: the predicted value or the condition it must meet (e.g. "< 0.05").
        measured: the measured value (a float, or a list of floats, one per seed or token).
        tolerance: the allowed deviation or the bound (a float, or text for compound checks).
        verdict: "pass" or "fail".
    """

    id: str
    statement: str
    predicted: Any
    measured: Any
    tolerance: Any
    verdict: Verdict

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"


def _finite(x: float) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def _verdict(ok: bool) -> Verdict:
    return "pass" if ok else "fail"


def _as_float(x) -> float:
    return float(x)


def claim_below(id: str, statement: str, measured: float, bound: float) -> Claim:
    """measured < bound."""
    m = _as_float(measured)
    return Claim(id, statement, f"< {bound:g}", m, bound, _verdict(_finite(m) and m < bound))


def claim_above(id: str, statement: str, measured: float, bound: float) -> Claim:
    """measured > bound."""
    m = _as_float(measured)
    return Claim(id, statement, f"> {bound:g}", m, bound, _verdict(_finite(m) and m > bound))


def claim_close(id: str, statement: str, measured: float, predicted: float, tol: float) -> Claim:
    """|measured - predicted| <= tol."""
    m, p = _as_float(measured), _as_float(predicted)
    ok = _finite(m) and _finite(p) and abs(m - p) <= tol
    return Claim(id, statement, p, m, tol, _verdict(ok))


def claim_true(
    id: str, statement: str, measured: Any, predicted: str, ok: bool, tol: Any = None
) -> Claim:
    """A compound condition evaluated by the caller (`ok` must be computed from `measured`)."""
    return Claim(id, statement, predicted, measured, tol, _verdict(bool(ok)))
