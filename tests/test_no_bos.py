"""no-bos (E11) at the ci preset, and its sink statistics on a hand-checkable case."""

import dataclasses

import numpy as np
import pytest

from experiments import no_bos
from experiments.registry import RunContext


def test_ci_run_and_statistics(tmp_path):
    cfg = no_bos.PRESETS["ci"]
    assert not cfg.with_bos
    outcome = no_bos.run(cfg, RunContext(tmp_path, progress=False))
    claims = {c.id for c in outcome.claims}
    assert claims == {
        "no-bos-backcopy",
        "no-bos-bigram",
        "sink-on-few-token-types",
        "sink-keys-small-values",
    }
    counts = np.asarray(outcome.summary["argmax_position_counts"])
    # One top key per non-trigger query n >= 1: at most 16 sequences x 31 queries.
    assert 0 < counts.sum() <= 16 * 31
    assert (tmp_path / outcome.figures[0]).read_bytes()[:4] == b"\x89PNG"


def test_rejects_a_run_with_bos(tmp_path):
    with pytest.raises(ValueError, match="with_bos=False"):
        no_bos.run(dataclasses.replace(no_bos.PRESETS["ci"], with_bos=True), RunContext(tmp_path))
