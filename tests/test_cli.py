"""The `sinkjax` CLI: listing, bad input (one line, exit 2), records, resume, interruption."""

import dataclasses
import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import pytest

from experiments import cli
from experiments.active_dormant import bb_interventions
from experiments.framework import runner
from experiments.framework.claims import Below, ClaimSpec, Observation, judge
from experiments.framework.experiment import PRESETS, Experiment, Outcome, RunContext
from experiments.registry import get_experiments
from sinkjax.train import TrainingDiverged

REQUIRED_CLAIM_KEYS = {"id", "statement", "source", "bound", "measured", "derived", "verdict"}


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_reproduce_ci(capsys, out_root, *extra):
    """`sinkjax reproduce --preset ci [EXTRA...]` in this process (`--jobs 1`: worker processes
    would not see the tests' monkeypatches)."""
    return run_cli(
        capsys,
        "reproduce",
        "--preset",
        "ci",
        "--out",
        str(out_root),
        "--no-progress",
        "--jobs",
        "1",
        *extra,
    )


def test_list_names_every_experiment(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    for name in ("theorem3", "bb-dynamics", "bb-interventions"):
        assert name in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (("run", "no-such-experiment"), "unknown experiment 'no-such-experiment'"),
        (("run", "bb-dynamics", "--preset", "huge"), "invalid choice: 'huge'"),
        (("run", "bb-dynamics", "--lr", "0"), "must be positive"),
        (("run", "bb-dynamics", "--lr=-3e-4"), "must be positive"),
        (("run", "bb-dynamics", "--steps", "0"), "must be a positive integer"),
        (("run", "bb-dynamics", "--batch-size", "0"), "must be a positive integer"),
        (("run", "theorem3", "--batch-size", "8"), "has no batch_size to override"),
        (("run", "theorem3", "--seeds", "2"), "has no n_seeds to override"),
        # A field's own flag and its older spelling are one argument, with the older check.
        (("run", "bb-dynamics", "--n-seeds", "0"), "must be a positive integer"),
        (("run", "bb-dynamics", "--matmul-precision", "bf16"), "invalid choice: 'bf16'"),
        (("run", "bb-dynamics", "--no-such-field", "1"), "unknown argument '--no-such-field'"),
        (("run", "bb-dynamics", "--corpus", "/no/such/file.txt"), "corpus file /no/such/file.txt"),
        (("run", "gpt2-circuit", "--prose", "/no/such/prose.txt"), "--prose file /no/such/prose"),
        (("reproduce", "--prose", "/no/such/prose.txt"), "pass --prose PATH to a text file"),
        (("reproduce", "--jobs", "0"), "must be a positive integer"),
        (("frobnicate",), "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, argv, message):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("sinkjax: error:")


def test_the_official_init_without_torch_is_one_line_naming_the_extra(
    capsys, tmp_path, monkeypatch
):
    import builtins

    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    code, _, err = run_cli(
        capsys, "run", "bb-dynamics", "--preset", "paper", "--steps", "1", "--out", str(tmp_path)
    )
    assert code == 2 and "pip install -e '.[parity]'" in err
    assert len(err.strip().splitlines()) == 1


def test_unwritable_out_is_rejected(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = run_cli(
        capsys, "run", "bb-dynamics", "--preset", "ci", "--out", str(blocker / "x")
    )
    assert code == 2 and "choose a writable directory" in err


def test_run_writes_record_figures_and_checkpoint_then_resumes(capsys, tmp_path):
    argv = ("run", "bb-interventions", "--preset", "ci", "--out", str(tmp_path), "--no-progress")
    code, out, _ = run_cli(capsys, *argv, "--seeds", "2")
    assert code in (0, 1)  # claims are only expected to hold at the quick preset
    folder = tmp_path / "bb-interventions"
    record = json.loads((folder / "record.json").read_text())
    assert record["preset"] == "ci" and record["seeds"] == [42, 43]
    assert record["config"]["n_seeds"] == 2
    assert {"jax", "flax", "optax", "diffrax"} <= set(record["versions"])
    assert record["wall_time_s"] > 0
    assert [c["id"] for c in record["claims"]] == [s.id for s in bb_interventions.CLAIMS]
    for claim in record["claims"]:
        assert REQUIRED_CLAIM_KEYS <= set(claim) and claim["verdict"] in ("pass", "fail")
        assert claim["source"]
    assert isinstance(record["observations"], list)
    for figure in record["figures"]:
        assert (folder / figure).read_bytes()[:4] == b"\x89PNG"
    assert [p.name[:15] for p in (tmp_path / "trained-runs").iterdir()] == ["bb-transformer-"]

    code, _, _ = run_cli(capsys, *argv, "--seeds", "2")
    again = json.loads((folder / "record.json").read_text())
    assert again["summary"]["resumed_from"] == record["config"]["steps"]
    assert again["claims"] == record["claims"]


def test_interrupted_run_leaves_no_record(capsys, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    argv = ("run", "bb-interventions", "--preset", "ci", "--out", str(tmp_path), "--no-progress")
    (tmp_path / "bb-interventions").mkdir()
    (tmp_path / "bb-interventions" / "record.json").write_text("{}")  # a stale record
    monkeypatch.setattr(bb_interventions, "train_bb", interrupted)
    code, _, err = run_cli(capsys, *argv)
    assert code == 130 and "rerun the same command to resume" in err
    assert not (tmp_path / "bb-interventions" / "record.json").exists()
    assert not list((tmp_path / "bb-interventions").glob("*.tmp"))


def test_diverged_training_is_one_line(capsys, tmp_path, monkeypatch):
    def diverged(*args, **kwargs):
        raise TrainingDiverged("loss became NaN/inf at step 7 (seed 42); lower the learning rate")

    monkeypatch.setattr(bb_interventions, "train_bb", diverged)
    code, _, err = run_cli(
        capsys, "run", "bb-interventions", "--preset", "ci", "--out", str(tmp_path)
    )
    assert code == 1 and err.count("\n") == 1 and "lower the learning rate" in err


def test_reproduce_reports_an_experiment_that_cannot_run_and_goes_on(capsys, tmp_path, monkeypatch):
    """A --prose too short for char-lm-dynamics's windows stops that experiment only."""
    experiments = get_experiments()
    short = tmp_path / "short.txt"
    short.write_text("To be, or not to be.")
    monkeypatch.setattr(
        cli,
        "get_experiments",
        lambda: {n: experiments[n] for n in ("char-lm-dynamics", "bb-interventions")},
    )
    out_root = tmp_path / "runs"
    code, out, err = run_reproduce_ci(capsys, out_root, "--prose", str(short))
    assert code == 1
    assert "is too short for windows of 32 bytes" in err and "pass a longer --prose" in err
    assert (out_root / "bb-interventions" / "record.json").exists()
    report = (out_root / "report.html").read_text()
    assert "char-lm-dynamics" in report and "1 experiment(s) failed to run" in report


def _check_report_lists_every_claim_and_figure(out_root, names) -> None:
    report = (out_root / "report.html").read_text()
    for name in names:
        record = json.loads((out_root / name / "record.json").read_text())
        for claim in record["claims"]:
            assert claim["id"] in report and claim["source"] in report
        for observation in record["observations"]:
            assert observation["id"] in report
        for figure in record["figures"]:
            assert f"{name}/{figure}" in report


@dataclasses.dataclass(frozen=True)
class _Sized:
    """A stand-in preset: the one field `resolve_config` may override."""

    steps: int = 3


def _synthetic(name: str, measured: float) -> Experiment:
    """An experiment that trains nothing: one claim `measured < 1` and one figure."""
    specs = (ClaimSpec(f"{name}-claim", f"{name}: measured below one", "test.md 1", Below(1.0)),)

    def run(cfg: _Sized, ctx: RunContext) -> Outcome:
        fig, ax = plt.subplots()
        ax.plot(range(cfg.steps))
        claims = judge(specs, {f"{name}-claim": measured})
        observed = [Observation(f"{name}-seen", "what else was measured", [measured, 1.0])]
        return Outcome(claims, [ctx.save_figure(fig, name)], [0], {"steps": cfg.steps}, observed)

    return Experiment(name, f"synthetic {name}", {p: _Sized() for p in PRESETS}, run, specs)


def test_reproduce_writes_report_with_every_claim(capsys, tmp_path, monkeypatch):
    """The report machinery on two experiments that train nothing, one failing (each
    experiment's ci run has its own test; the slow test below runs the whole registry)."""
    chosen = {e.name: e for e in (_synthetic("holds", 0.5), _synthetic("fails", 2.0))}
    monkeypatch.setattr(cli, "get_experiments", lambda: chosen)
    code, out, _ = run_reproduce_ci(capsys, tmp_path)
    assert code == 1  # a failed claim
    assert "[2/2] fails" in out
    _check_report_lists_every_claim_and_figure(tmp_path, chosen)
    verdicts = {
        name: json.loads((tmp_path / name / "record.json").read_text())["claims"][0]["verdict"]
        for name in chosen
    }
    assert verdicts == {"holds": "pass", "fails": "fail"}
    report = (tmp_path / "report.html").read_text()
    assert "Observations (measured beyond the papers; no verdict)" in report


def test_experiments_run_with_full_float32_matmuls(tmp_path):
    """A GPU would otherwise run float32 products in TF32 (a TPU in bfloat16 passes): inside
    an experiment the default is full float32, the traced products say so, and the record
    states it; afterwards the caller's setting is back."""
    seen, before = {}, jax.config.jax_default_matmul_precision
    specs = (ClaimSpec("c", "c", "test.md 1", Below(1.0)),)

    def run(cfg: _Sized, ctx: RunContext) -> Outcome:
        seen["default"] = jax.config.jax_default_matmul_precision
        seen["jaxpr"] = str(jax.make_jaxpr(jnp.matmul)(jnp.ones((2, 2)), jnp.ones((2, 2))))
        return Outcome(judge(specs, {"c": 0.0}), [], [0], {})

    experiment = Experiment("precision", "precision", {p: _Sized() for p in PRESETS}, run, specs)
    record = runner.run_experiment(experiment, _Sized(), "ci", tmp_path, progress=False)
    assert seen["default"] == runner.MATMUL_PRECISION == "float32"
    assert "HIGHEST" in seen["jaxpr"]
    assert record["versions"]["matmul_precision"] == "float32"
    assert jax.config.jax_default_matmul_precision == before


@pytest.mark.slow
def test_reproduce_at_ci_covers_the_whole_registry(capsys, tmp_path):
    code, out, _ = run_reproduce_ci(capsys, tmp_path)
    assert code in (0, 1)
    _check_report_lists_every_claim_and_figure(tmp_path, get_experiments())


def test_console_script_module_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "experiments", "list"], capture_output=True, text=True, check=True
    )
    assert "bb-dynamics" in result.stdout
