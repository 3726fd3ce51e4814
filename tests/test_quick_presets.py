"""Every claim of every experiment passes at the `quick` preset (minutes: `pytest -m slow`)."""

import pytest

from experiments.registry import RunContext, get_experiments
from experiments.runner import resolve_config


@pytest.mark.slow
@pytest.mark.parametrize("name", list(get_experiments()))
def test_quick_preset_claims_pass(name, tmp_path):
    experiment = get_experiments()[name]
    outcome = experiment.run(
        resolve_config(experiment, "quick"), RunContext(tmp_path, progress=False)
    )
    failed = [(c.id, c.measured) for c in outcome.claims if not c.passed]
    assert not failed, f"{name}: failed claims {failed}"
