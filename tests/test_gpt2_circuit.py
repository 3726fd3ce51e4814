"""gpt2-circuit: Table 1 rows and claims from known scores, and the ci preset end to end."""

import dataclasses
import json

import numpy as np
import pytest

from experiments import cli
from experiments.framework.claims import judge
from experiments.framework.experiment import RunContext
from experiments.sinks import gpt2_circuit, text_common
from sinkjax.sinks import circuit as sink_circuit

CFG = gpt2_circuit.PRESETS["ci"]
EXTRA = "needs the gpt2 extra: pip install -e '.[gpt2]'"


def synthetic_scores(percent: dict[str, float], n: int = 4, baseline: float = 0.5) -> dict:
    """`domain_scores` output: (G, D, n) BOS scores whose domain means are `percent`% of the
    `baseline` (letters a-j, 100% when not given), with a spread of +-0.01 around each mean;
    cross-entropy 2 + g/10."""
    spread = np.array([-0.01, 0.01, -0.01, 0.01])[:n]
    bos = np.stack(
        [
            np.stack([baseline * percent.get(name[0], 100.0) / 100 + spread for _ in range(3)])
            for name in sink_circuit.TABLE1
        ]
    )
    ce = np.stack([np.full((3, n), 2 + g / 10) for g in range(len(sink_circuit.TABLE1))])
    return {"bos": bos, "ce": ce, "names": list(sink_circuit.TABLE1)}


# P1 Table 1, pooled % of baseline (spec §1(d)); the controls e, f, j at 100%.
P1 = {"b": 44.7, "c": 3.0, "d": 6.2, "g": 50.3, "h": 17.5, "i": 65.2}


def test_table_rows_known_answers():
    rows = text_common.table_rows(synthetic_scores({"b": 40.0, "c": 5.0}))
    np.testing.assert_allclose(rows["b no query bias"]["percent_of_baseline"], 40.0, rtol=1e-6)
    np.testing.assert_allclose(rows["c remove first PE"]["bos_mean"], 0.025, rtol=1e-6)
    # SE of (-0.01, 0.01, -0.01, 0.01): std (ddof 1) 0.011547 / sqrt(4)
    np.testing.assert_allclose(rows["a baseline"]["bos_se"], 0.011547 / 2, rtol=1e-4)
    np.testing.assert_allclose(rows["g no MLP"]["delta_ce"], 0.6, rtol=1e-6)


def test_pooled_percent_is_the_ratio_of_the_pooled_means():
    rows = text_common.table_rows(synthetic_scores({"b": 40.0}))
    rows["b no query bias"]["bos_mean"] = np.array([0.1, 0.2, 0.3])  # pooled 0.2 of 0.5
    assert gpt2_circuit.pooled_percent(rows)["b no query bias"] == pytest.approx(40.0)


@pytest.mark.parametrize(
    "percent, baseline, failing",
    [
        (P1, 0.5, set()),
        ({**P1, "e": 90.1}, 0.5, {"controls-intact"}),
        ({**P1, "e": 99.5, "f": 100.5}, 0.5, set()),
        ({**P1, "j": 101.5}, 0.5, {"controls-intact"}),
        ({**P1, "c": 60}, 0.5, {"remove-first-pe-breaks"}),
        ({**P1, "d": 70}, 0.5, {"swap-epe-breaks"}),
        ({**P1, "h": 55}, 0.5, {"no-pe-breaks"}),
        ({**P1, "b": 118}, 0.5, {"query-bias-matters"}),
        ({**P1, "g": 100.5}, 0.5, {"mlp-matters"}),
        ({**P1, "i": 100.5}, 0.5, {"top-coords-matter"}),
        # A baseline under Gu's threshold 0.3 is no sink, whatever the ratios.
        (P1, 0.1, {"sink-forms"}),
    ],
)
def test_claims_follow_the_scores(percent, baseline, failing):
    rows = text_common.table_rows(synthetic_scores(percent, baseline=baseline))
    claims = judge(gpt2_circuit.CLAIMS, gpt2_circuit.measure(rows))
    assert [c.id for c in claims] == [s.id for s in gpt2_circuit.CLAIMS]
    assert {c.id for c in claims if not c.passed} == failing


def test_ci_preset_runs_and_records_every_row(tmp_path):
    outcome = gpt2_circuit.run(CFG, RunContext(tmp_path, progress=False))
    rows = outcome.summary["table1"]
    assert list(rows) == list(sink_circuit.TABLE1)
    for row in rows.values():
        assert row["bos_mean"].shape == row["percent_of_baseline"].shape == (3,)
    np.testing.assert_allclose(rows["a baseline"]["percent_of_baseline"], 100.0)
    np.testing.assert_allclose(rows["a baseline"]["delta_ce"], 0.0, atol=1e-6)
    assert [c.id for c in outcome.claims] == [s.id for s in gpt2_circuit.CLAIMS]
    assert all(c.verdict in ("pass", "fail") for c in outcome.claims)
    assert {o.id for o in outcome.observations} == {
        "baseline-over-uniform-null",
        "percent-of-baseline-by-domain",
        "delta-ce",
    }
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
    # The same claims as on the toy; no toy was trained.
    assert [c["id"] for c in record["claims"]] == [s.id for s in gpt2_circuit.CLAIMS]
    assert not (tmp_path / "trained-runs").exists()

    capsys.readouterr()
    missing = tmp_path / "nowhere"
    assert cli.main([*argv, "--checkpoint", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "config.json" in err
    assert cli.main(["run", "bb-dynamics", "--checkpoint", str(checkpoint)]) == 2
