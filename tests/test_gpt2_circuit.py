"""gpt2-circuit: Table 1 rows and claims from known scores, and the ci preset end to end."""

import dataclasses
import json

import numpy as np
import pytest

from experiments import cli, gpt2_circuit, text_common
from experiments.registry import RunContext
from sinkjax import sink_circuit

CFG = gpt2_circuit.PRESETS["ci"]
EXTRA = "needs the gpt2 extra: pip install -e '.[gpt2]'"


def synthetic_scores(percent: dict[str, float], n: int = 4) -> dict:
    """`domain_scores` output: (G, D, n) BOS scores whose domain means are `percent`% of a 0.5
    baseline (letters a-j), with a spread of +-0.01 around each mean; cross-entropy 2 + g/10."""
    spread = np.array([-0.01, 0.01, -0.01, 0.01])[:n]
    bos = np.stack(
        [
            np.stack([0.5 * percent.get(name[0], 100.0) / 100 + spread for _ in range(3)])
            for name in sink_circuit.TABLE1
        ]
    )
    ce = np.stack([np.full((3, n), 2 + g / 10) for g in range(len(sink_circuit.TABLE1))])
    return {"bos": bos, "ce": ce, "names": list(sink_circuit.TABLE1)}


def test_table_rows_known_answers():
    rows = text_common.table_rows(synthetic_scores({"b": 40.0, "c": 5.0}))
    np.testing.assert_allclose(rows["b no query bias"]["percent_of_baseline"], 40.0, rtol=1e-6)
    np.testing.assert_allclose(rows["c remove first PE"]["bos_mean"], 0.025, rtol=1e-6)
    # SE of (-0.01, 0.01, -0.01, 0.01): std (ddof 1) 0.011547 / sqrt(4)
    np.testing.assert_allclose(rows["a baseline"]["bos_se"], 0.011547 / 2, rtol=1e-4)
    np.testing.assert_allclose(rows["g no MLP"]["delta_ce"], 0.6, rtol=1e-6)


@pytest.mark.parametrize(
    "percent, failing",
    [
        ({"b": 45, "c": 3, "d": 6, "g": 50, "i": 65}, set()),
        ({"b": 45, "c": 3, "d": 6, "g": 50, "i": 65, "e": 80}, {"controls-intact"}),
        ({"b": 45, "c": 60, "d": 6, "g": 50, "i": 65}, {"remove-first-pe-breaks"}),
        ({"b": 45, "c": 3, "d": 70, "g": 50, "i": 65}, {"swap-epe-breaks"}),
        ({"b": 45, "c": 3, "d": 6, "g": 100, "i": 65}, {"mlp-matters"}),
    ],
)
def test_claims_follow_the_scores(percent, failing):
    rows = text_common.table_rows(synthetic_scores(percent))
    claims, orderings = gpt2_circuit._claims(CFG, rows, null=0.05)
    failed = {c.id for c in claims if not c.passed}
    assert failed == failing
    assert set(orderings) == {o[0] for o in gpt2_circuit.ORDERINGS}
    # A baseline under 3x the uniform null is no sink.
    weak, _ = gpt2_circuit._claims(CFG, rows, null=0.2)
    assert {c.id for c in weak if not c.passed} == failing | {"sink-forms"}


def test_ci_preset_runs_and_records_every_row(tmp_path):
    outcome = gpt2_circuit.run(CFG, RunContext(tmp_path, progress=False))
    rows = outcome.summary["table1"]
    assert list(rows) == list(sink_circuit.TABLE1)
    for row in rows.values():
        assert row["bos_mean"].shape == row["percent_of_baseline"].shape == (3,)
    np.testing.assert_allclose(rows["a baseline"]["percent_of_baseline"], 100.0)
    np.testing.assert_allclose(rows["a baseline"]["delta_ce"], 0.0, atol=1e-6)
    assert {c.id for c in outcome.claims} >= {"sink-forms", "controls-intact"}
    assert (tmp_path / outcome.figures[0]).read_bytes()[:4] == b"\x89PNG"


def test_config_validation():
    with pytest.raises(ValueError, match="analysis_len"):
        dataclasses.replace(CFG, analysis_len=CFG.seq_len + 1)
    with pytest.raises(ValueError, match="domain_weights"):
        dataclasses.replace(CFG, domain_weights=(1.0, -1.0, 1.0))


def tiny_hf_checkpoint(directory, n_layer=4):
    """A random GPT-2 in the Hugging Face layout (safetensors, written without torch) with the
    byte-level tokenizer files of `test_gpt2_loader`."""
    safetensors_numpy = pytest.importorskip("safetensors.numpy", reason=EXTRA)
    from test_gpt2_loader import random_tensors, write_tokenizer_files

    vocab = write_tokenizer_files(directory)
    d, v, n = 32, len(vocab), 48
    config = dict(
        model_type="gpt2", vocab_size=v, n_positions=n, n_embd=d, n_layer=n_layer, n_head=4
    )
    (directory / "config.json").write_text(json.dumps(config))
    tensors = random_tensors(0, config, scale=0.2)
    safetensors_numpy.save_file(tensors, str(directory / "model.safetensors"))


def test_cli_analyses_a_hugging_face_checkpoint(capsys, tmp_path):
    pytest.importorskip("tokenizers", reason=EXTRA)
    checkpoint = tmp_path / "gpt2"
    checkpoint.mkdir()
    tiny_hf_checkpoint(checkpoint)
    argv = ["run", "gpt2-circuit", "--preset", "ci", "--no-progress", "--out", str(tmp_path)]
    code = cli.main([*argv, "--checkpoint", str(checkpoint)])
    assert code in (0, 1)  # a random model has no sink: the claims may fail
    record = json.loads((tmp_path / "gpt2-circuit" / "record.json").read_text())
    assert record["config"]["checkpoint"] == str(checkpoint)
    assert list(record["summary"]["table1"]) == list(sink_circuit.TABLE1)
    # Every P1 ordering is a claim for a real checkpoint; no toy was trained.
    ids = {c["id"] for c in record["claims"]}
    assert {o[0] for o in gpt2_circuit.ORDERINGS} <= ids
    assert not (tmp_path / "trained-runs").exists()

    capsys.readouterr()
    missing = tmp_path / "nowhere"
    assert cli.main([*argv, "--checkpoint", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "config.json" in err
    assert cli.main(["run", "bb-dynamics", "--checkpoint", str(checkpoint)]) == 2
