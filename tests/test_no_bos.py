"""no-bos (E11) at the ci preset, and its sink statistics on a hand-checkable case."""

import dataclasses

import numpy as np
import pytest

from experiments.active_dormant import no_bos
from experiments.framework.experiment import RunContext


def test_ci_run_and_statistics(tmp_path):
    cfg = no_bos.PRESETS["ci"]
    assert not cfg.with_bos
    outcome = no_bos.run(cfg, RunContext(tmp_path, progress=False))
    assert [c.id for c in outcome.claims] == [s.id for s in no_bos.CLAIMS]
    assert all(c.verdict in ("pass", "fail") for c in outcome.claims)
    sink_share, value_ratio = (c.measured[0] for c in outcome.claims)
    assert 0 <= sink_share <= 1 and value_ratio > 0
    counts = np.asarray(outcome.summary["argmax_position_counts"])
    # One top key per dormant query n >= 4: at most 16 sequences x 28 queries.
    assert 0 < counts.sum() <= 16 * (32 - no_bos.EARLY_POSITIONS)
    assert (tmp_path / outcome.figures[0]).read_bytes()[:4] == b"\x89PNG"


def test_attention_statistics_on_a_planted_sink():
    """One sequence of 8 tokens; position 5 is a trigger. Every query attends to key 0 with
    weight 0.5 and to itself with 0.5; key 0 has ||W_O v|| = 1, every other key 3."""
    n, vocab = 8, 5
    weights = 0.5 * np.eye(n, dtype=np.float32)
    weights[:, 0] += 0.5  # row 0: 0.5 + 0.5 on key 0 itself
    norms = np.array([[1.0] + [3.0] * (n - 1)], dtype=np.float32)
    inputs = np.array([[0, 1, 2, 3, 1, 4, 2, 3]])
    trigger = inputs == 4
    stats = no_bos.attention_statistics(weights[None], norms, inputs, trigger, vocab)
    # Dormant queries: n = 4, 6, 7 (n >= 4, not the trigger at 5); half their weight is on key 0.
    assert float(stats["sink_share"]) == pytest.approx(0.5)
    retrieved = 0.5 * 1 + 0.5 * 3
    uniform = [(1 + 3 * q) / (q + 1) for q in (4, 6, 7)]
    assert float(stats["value_ratio"]) == pytest.approx(3 * retrieved / sum(uniform))
    assert np.asarray(stats["argmax_position"]).sum() == 3
    assert np.asarray(stats["value_norm_type"])[0] == pytest.approx(1.0)


def test_rejects_a_run_with_bos(tmp_path):
    with pytest.raises(ValueError, match="with_bos=False"):
        no_bos.run(dataclasses.replace(no_bos.PRESETS["ci"], with_bos=True), RunContext(tmp_path))
