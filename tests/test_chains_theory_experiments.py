"""chains-theory and chains-theory-vs-rl: config validation, the statistics helpers, ci runs."""

import dataclasses

import numpy as np
import pytest
from scipy import stats

from experiments.cot_rl import chains_theory, chains_theory_vs_rl
from experiments.framework.config_flags import resolve_config
from experiments.framework.experiment import RunContext
from experiments.framework.runner import UsageError

THEORY_CI = chains_theory.PRESETS["ci"]
RL_CI = chains_theory_vs_rl.PRESETS["ci"]


def _check_outcome(module, outcome, path, figure):
    """Every declared claim is judged (none skipped), each verdict the claim's rule applied to
    its measured value; returns the claims by id."""
    assert [c.id for c in outcome.claims] == [s.id for s in module.CLAIMS]
    for spec, claim in zip(module.CLAIMS, outcome.claims, strict=True):
        assert claim.verdict == spec.judge(claim.measured).verdict != "skipped", claim.id
    assert outcome.figures == [figure]
    assert (path / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return {c.id: c for c in outcome.claims}


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("ns", (2, 3, 4), "ns must be increasing"),
        ("ns", (5, 4, 6, 7), "ns must be increasing"),
        ("ns", (4, 5, 6, 7, 8), "ns must hold"),
        ("theta0", (1.0, 0.0), "theta0"),
        ("tau", 0.0, "tau"),
        ("threshold", 0.5, "threshold"),
        ("test_max_n", 11, "test_max_n"),
        ("masses", (0.5, 0.1, 0.01), "masses"),
        ("masses", (1.0, 0.5), "masses"),
        ("masses", (1.0, 0.5, 0.0), "masses"),
    ],
)
def test_theory_config_rejects_bad_values(field, value, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(THEORY_CI, **{field: value})


@pytest.mark.parametrize(
    "field, value",
    [
        ("chain_length", 2),
        ("temperature", -1.0),
        ("learning_rate", 0.0),
        ("n_seeds", 2),
        ("n_checkpoints", 0),
        ("n_checkpoints", 101),
        ("n_microbatches", 3),
        ("family_error", 1.0),
    ],
)
def test_rl_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(RL_CI, **{field: value})


def test_runner_overrides():
    cfg = resolve_config(chains_theory_vs_rl.EXPERIMENT, "quick", {"steps": 300, "batch_size": 512})
    assert (cfg.steps, cfg.batch_size) == (300, 512)
    for bad in ({"batch_size": 1}, {"n_seeds": 1}, {"learning_rate": -0.1}):
        with pytest.raises(UsageError) as err:
            resolve_config(chains_theory_vs_rl.EXPERIMENT, "ci", bad)
        assert "\n" not in str(err.value)
    with pytest.raises(UsageError, match="has no steps"):
        resolve_config(chains_theory.EXPERIMENT, "ci", {"steps": 10})


def test_time_map_and_critical_values():
    cfg = dataclasses.replace(RL_CI, batch_size=400, n_microbatches=4, learning_rate=0.1)
    assert cfg.time_per_step == pytest.approx(0.1 * (1 - 1 / 100))
    for p, dof in ((0.975, 3), (1 - 0.01 / 48, 7), (0.999, 30)):
        quantile = chains_theory_vs_rl.student_t_quantile(p, dof)
        assert quantile == pytest.approx(stats.t.ppf(p, dof), rel=1e-9)
    steps = chains_theory_vs_rl.checkpoint_steps(dataclasses.replace(RL_CI, n_checkpoints=3))
    np.testing.assert_array_equal(steps, [33, 67, 100])


def test_line_fit_and_theorem2_bound():
    x = np.arange(5.0)
    fit = chains_theory.line_fit(x, 2 * x + 1)
    assert (fit.slope, fit.intercept, fit.r2) == pytest.approx((2, 1, 1))
    assert np.isnan(chains_theory.line_fit(x, np.array([1, 2, np.inf, 3, 4])).slope)
    ns, c0, b0 = np.array([4, 5]), np.array([0.5, 0.25]), np.array([0.1, 0.2])
    bound = chains_theory.theorem2_bound(ns, c0, b0)
    np.testing.assert_allclose(bound, [16 / (0.125 * 0.1 / 3), 25 / (0.25**3 * 0.2 / 4)])


def test_theory_ci_run(tmp_path):
    outcome = chains_theory.run(THEORY_CI, RunContext(tmp_path, progress=False))
    claims = _check_outcome(chains_theory, outcome, tmp_path, "chains_theory.png")
    # The float64 theory holds its predictions at ci too.
    assert not [c for c in claims.values() if not c.passed]
    assert len(claims["extrapolation"].measured) == 7  # n = 6..12
    assert len(outcome.summary["reach"]["hard_G1"]) == len(THEORY_CI.ns)
    assert np.all(np.diff(outcome.summary["reach"]["hard_G2"]) > 0)
    assert [o.id for o in outcome.observations] == [
        "hard-reach-growth",
        "only-simple-data-slowdown",
        "extrapolation-beyond-12",
        "assumption-constants",
    ]


def test_theory_vs_rl_ci_run(tmp_path):
    outcome = chains_theory_vs_rl.run(RL_CI, RunContext(tmp_path, progress=False))
    claims = _check_outcome(chains_theory_vs_rl, outcome, tmp_path, "chains_theory_vs_rl.png")
    # At ci the run is short (4 seeds): wide tolerances, but SGD still follows the flow.
    assert not [c for c in claims.values() if not c.passed]
    assert np.shape(claims["theta-follows-flow"].measured) == (RL_CI.n_checkpoints, 3)
    assert [o.id for o in outcome.observations] == ["comparison-power"]
    assert outcome.seeds == [42, 43, 44, 45]
    assert (tmp_path / "checkpoint").is_dir()
