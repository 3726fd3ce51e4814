"""The claims ledger: a paper's predictions, fixed before any run, judged from measurements.

A `ClaimSpec` is one prediction of a paper: an id, the statement, its `source` (the paper's
figure/table/section and the spec line) and a `Rule`, the bound made from the paper's own
words. Experiments declare their specs at module level (`CLAIMS`), the same at every preset,
and hand `judge` only what they measured: every verdict is computed here, by the rule, from
the measured value, never by an experiment.

What an experiment measures beyond the papers is an `Observation`: recorded and shown, never
a pass.

Rules take plain numbers, or lists of them ("every seed"), or dicts of named numbers:

    Above(0.7)                  measured > 0.7 (for a list: every element)
    Below(0.1), AtLeast(x), AtMost(x), Between(lo, hi), Near(predicted, tol[, relative])
    Separated(low=(...), high=(...), factor=3.0)
                                min of the `high` entries > factor x max of the `low` entries
    Fraction(Above(0.5), at_least=0.5)
                                the share of the elements that meet the inner rule
    LinearFit(min_r2=0.9, slope=Above(0))
                                least squares of measured["y"] on measured["x"]
    AllOf({"a": Above(0), "b": Below(1)})
                                each named part of a dict meets its own rule
"""

import dataclasses
import math
import operator
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, Protocol

import numpy as np

Verdict = Literal["pass", "fail", "skipped"]


class Rule(Protocol):
    """A bound on a measured value."""

    def check(self, measured: Any) -> tuple[bool, dict[str, Any]]:
        """(whether `measured` meets the bound, the derived numbers the verdict rests on)."""
        ...

    def describe(self) -> str:
        """The bound in words, e.g. "> 0.7"."""
        ...


def _numbers(measured: Any) -> np.ndarray:
    """`measured` (a number or a nested list of numbers) as a flat float64 array."""
    values = np.asarray(measured, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("a claim was given no measured value")
    return values


def _all_finite(values: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(values)))


# The four scalar comparisons: op -> (whether it holds, whether larger values are safer).
_COMPARISONS = {
    ">": (operator.gt, True),
    ">=": (operator.ge, True),
    "<": (operator.lt, False),
    "<=": (operator.le, False),
}


@dataclasses.dataclass(frozen=True)
class _Compare:
    """`measured OP bound` for every element of the measured value (the worst one is reported).

    Subclasses set `op`, one of `_COMPARISONS`.
    """

    bound: float
    op: ClassVar[str]

    def check(self, measured):
        values = _numbers(measured)
        holds, larger_is_safer = _COMPARISONS[self.op]
        ok = _all_finite(values) and bool(np.all(holds(values, self.bound)))
        if not _all_finite(values):
            worst = math.nan
        else:
            worst = values.min() if larger_is_safer else values.max()
        return ok, ({} if values.size == 1 else {"worst": float(worst)})

    def describe(self) -> str:
        return f"{self.op} {self.bound:g}"


@dataclasses.dataclass(frozen=True)
class Above(_Compare):
    op: ClassVar[str] = ">"


@dataclasses.dataclass(frozen=True)
class AtLeast(_Compare):
    op: ClassVar[str] = ">="


@dataclasses.dataclass(frozen=True)
class Below(_Compare):
    op: ClassVar[str] = "<"


@dataclasses.dataclass(frozen=True)
class AtMost(_Compare):
    op: ClassVar[str] = "<="


@dataclasses.dataclass(frozen=True)
class Between:
    """lo <= measured <= hi, for every element."""

    lo: float
    hi: float

    def check(self, measured):
        values = _numbers(measured)
        ok = _all_finite(values) and bool(np.all((values >= self.lo) & (values <= self.hi)))
        return ok, {}

    def describe(self) -> str:
        return f"in [{self.lo:g}, {self.hi:g}]"


@dataclasses.dataclass(frozen=True)
class Near:
    """|measured - predicted| <= tol for every element (tol relative to |predicted| if
    `relative`)."""

    predicted: float
    tol: float
    relative: bool = False

    def check(self, measured):
        values = _numbers(measured)
        allowed = self.tol * abs(self.predicted) if self.relative else self.tol
        miss = np.abs(values - self.predicted)
        ok = _all_finite(values) and bool(np.all(miss <= allowed))
        return ok, {"largest_miss": float(miss.max())}

    def describe(self) -> str:
        tol = f"{100 * self.tol:g}%" if self.relative else f"{self.tol:g}"
        return f"{self.predicted:g} +- {tol}"


@dataclasses.dataclass(frozen=True)
class Separated:
    """Named values (a dict) split in two groups: min(high) > factor * max(low).

    With one name on each side and factor 1 this is the ordering low < high.
    """

    low: tuple[str, ...]
    high: tuple[str, ...]
    factor: float = 1.0

    def check(self, measured: Mapping[str, Any]):
        missing = set(self.low + self.high) - set(measured)
        if missing:
            raise ValueError(f"the ordering needs measured values for {sorted(missing)}")
        low = max(float(np.max(_numbers(measured[k]))) for k in self.low)
        high = min(float(np.min(_numbers(measured[k]))) for k in self.high)
        finite = math.isfinite(low) and math.isfinite(high)
        derived = {"max_low": low, "min_high": high}
        if low > 0:
            derived["ratio"] = high / low
        return finite and high > self.factor * low, derived

    def describe(self) -> str:
        low, high = ", ".join(self.low), ", ".join(self.high)
        scale = "" if self.factor == 1 else f"{self.factor:g} x "
        return f"min({high}) > {scale}max({low})"


@dataclasses.dataclass(frozen=True)
class Fraction:
    """The share of the elements of the measured value that meet `rule` is >= at_least
    (> at_least with `strict`); `at_least=0, strict=True` reads "at least one"."""

    rule: Any
    at_least: float
    strict: bool = False

    def check(self, measured):
        values = _numbers(measured)
        share = float(np.mean([self.rule.check(float(v))[0] for v in values]))
        ok = share > self.at_least if self.strict else share >= self.at_least
        return ok, {"fraction": share}

    def describe(self) -> str:
        if self.strict and self.at_least == 0:
            return f"some element {self.rule.describe()}"
        op = ">" if self.strict else ">="
        return f"share of elements {self.rule.describe()} {op} {self.at_least:g}"


@dataclasses.dataclass(frozen=True)
class LinearFit:
    """Least squares of measured["y"] on measured["x"]: R^2 >= min_r2 and the slope meets
    `slope` (e.g. Above(0))."""

    min_r2: float
    slope: Any

    def check(self, measured: Mapping[str, Any]):
        x, y = _numbers(measured["x"]), _numbers(measured["y"])
        if x.size != y.size or x.size < 3:
            raise ValueError(f"a linear fit needs >= 3 paired points, got {x.size} and {y.size}")
        if not (_all_finite(x) and _all_finite(y)):
            return False, {"slope": math.nan, "r2": math.nan}
        slope, intercept = np.polyfit(x, y, 1)
        residual = y - (slope * x + intercept)
        total = np.sum((y - y.mean()) ** 2)
        r2 = float(1 - np.sum(residual**2) / total) if total > 0 else 0.0
        ok = r2 >= self.min_r2 and self.slope.check(float(slope))[0]
        return ok, {"slope": float(slope), "intercept": float(intercept), "r2": r2}

    def describe(self) -> str:
        return f"linear fit: R^2 >= {self.min_r2:g}, slope {self.slope.describe()}"


@dataclasses.dataclass(frozen=True)
class AllOf:
    """A dict of named parts, each meeting its own rule."""

    parts: Mapping[str, Any]

    def check(self, measured: Mapping[str, Any]):
        derived, ok = {}, True
        for name, rule in self.parts.items():
            if name not in measured:
                raise ValueError(f"the claim needs a measured value for {name!r}")
            part_ok, part_derived = rule.check(measured[name])
            ok &= part_ok
            derived[name] = {"verdict": _verdict(part_ok), **part_derived}
        return ok, derived

    def describe(self) -> str:
        return "; ".join(f"{name} {rule.describe()}" for name, rule in self.parts.items())


def _verdict(ok: bool) -> Verdict:
    return "pass" if ok else "fail"


@dataclasses.dataclass(frozen=True)
class Claim:
    """One judged prediction, as written to record.json.

    Attributes:
        id: short stable identifier, e.g. "alpha-law-error".
        statement: the paper's prediction, and how its words became the bound.
        source: the paper's figure/table/section and the spec line, e.g.
            "active_dormant.md E1; paper Fig. 2b".
        bound: the rule in words, e.g. "> 0.7".
        measured: what was measured (a number, a list per seed or token, or a dict of parts).
        derived: the numbers the verdict rests on when they are not `measured` itself
            (the worst seed, a fit's slope and R^2, a fraction).
        verdict: "pass" or "fail"; "skipped" only at the `ci` preset, for want of data.
        note: why a claim was skipped.
    """

    id: str
    statement: str
    source: str
    bound: str
    measured: Any
    derived: dict[str, Any]
    verdict: Verdict
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def failed(self) -> bool:
        return self.verdict == "fail"


@dataclasses.dataclass(frozen=True)
class ClaimSpec:
    """A paper's prediction, declared before any run: the same at every preset.

    `only_at` names the preset whose settings a claim is about when it compares with a
    reference run's saved numbers (the official code's run has the `paper` settings): on a run
    with other settings the experiment skips it and records its measurement as an observation.
    """

    id: str
    statement: str
    source: str
    rule: Rule
    only_at: str | None = None

    def __post_init__(self):
        if not self.source.strip():
            raise ValueError(f"claim {self.id!r} needs a source (paper figure/section, spec line)")

    def judge(self, measured: Any) -> Claim:
        """The claim with its verdict computed by the rule from `measured`."""
        measured = _plain(measured)
        ok, derived = self.rule.check(measured)
        return Claim(
            self.id,
            self.statement,
            self.source,
            self.rule.describe(),
            measured,
            derived,
            _verdict(ok),
        )

    def skipped(self, reason: str) -> Claim:
        return Claim(
            self.id, self.statement, self.source, self.rule.describe(), None, {}, "skipped", reason
        )


def _plain(value: Any) -> Any:
    """numpy/JAX numbers and arrays as JSON-able floats and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence) or hasattr(value, "shape"):
        array = np.asarray(value, dtype=np.float64)
        return array.tolist() if array.ndim else float(array)
    return float(value)


def judge(
    specs: Sequence[ClaimSpec],
    measured: Mapping[str, Any],
    skipped: Mapping[str, str] | None = None,
) -> list[Claim]:
    """Judge every spec, in the order declared.

    Args:
        specs: the experiment's `CLAIMS`.
        measured: claim id -> measured value, for every claim that has data.
        skipped: claim id -> why there is no data (only the `ci` preset may skip; the runner
            refuses skipped claims at any other preset).

    Raises:
        ValueError: when an id is measured and skipped, unknown, or neither.
    """
    skipped = dict(skipped or {})
    ids = [spec.id for spec in specs]
    unknown = (set(measured) | set(skipped)) - set(ids)
    both = set(measured) & set(skipped)
    missing = set(ids) - set(measured) - set(skipped)
    if unknown or both or missing:
        raise ValueError(
            f"claims: unknown {sorted(unknown)}, both measured and skipped {sorted(both)}, "
            f"not measured {sorted(missing)}"
        )
    return [
        spec.skipped(skipped[spec.id]) if spec.id in skipped else spec.judge(measured[spec.id])
        for spec in specs
    ]


def check_specs(specs: Sequence[ClaimSpec]) -> tuple[ClaimSpec, ...]:
    """`specs` as a tuple, after checking that the ids are unique."""
    ids = [spec.id for spec in specs]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ValueError(f"claim ids repeat: {repeated}")
    return tuple(specs)


@dataclasses.dataclass(frozen=True)
class Observation:
    """What we measured beyond the papers: recorded and shown, never a pass or a fail."""

    id: str
    statement: str
    measured: Any

    def __post_init__(self):
        object.__setattr__(self, "measured", _plain_observation(self.measured))


def _plain_observation(value: Any) -> Any:
    if value is None or isinstance(value, str | bool):
        return value
    try:
        return _plain(value)
    except (TypeError, ValueError):
        return str(value)
