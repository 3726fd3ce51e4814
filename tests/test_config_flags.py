"""Every config field as a `sinkjax run` flag: help from the source comments, parsing of each
field type, legacy aliases, one-line errors, and overrides reaching a run's fingerprint."""

import dataclasses

import pytest

from experiments import cli
from experiments.active_dormant import bb_common
from experiments.framework.config_flags import config_overrides, field_docs, resolve_config
from experiments.framework.experiment import PRESETS
from experiments.framework.runner import UsageError
from experiments.registry import get_experiments

EXPERIMENTS = get_experiments()


def parsed_config(*argv: str):
    """The config `sinkjax run ARGV` would run (parsed, overrides applied and checked)."""
    args, experiments = cli.parse_args(["run", *argv])
    return resolve_config(experiments[args.name], args.preset, config_overrides(args))


def help_text(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", *argv, "--help"])
    assert exit_.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps the lines


def test_help_lists_every_field_with_type_preset_values_and_source_comment(capsys):
    out = help_text(capsys, "bb-dynamics")
    assert "config of bb-dynamics (BBRunConfig)" in out
    ci, quick, paper = (EXPERIMENTS["bb-dynamics"].presets[p] for p in PRESETS)
    for field in dataclasses.fields(ci):
        assert f"--{field.name.replace('_', '-')}" in out
    assert (
        f"--d-model INT int (ci {ci.d_model}, quick {quick.d_model}, paper {paper.d_model})" in out
    )
    # The comment above the field, and a group comment shared by the fields right below it.
    assert "Weight decay: decoupled for AdamW, coupled (L2) for SGD." in out
    assert "--n-layers INT int (ci/quick/paper 1): Model width, layers and attention kind." in out
    # A comment over several lines is one text.
    assert "takes the official code's draw, torch.manual_seed(seed) and PyTorch's default" in out
    assert "--with-bos, --no-with-bos bool" in out
    assert "--learning-rate FLOAT, --lr FLOAT" in out and "--n-seeds INT, --seeds INT" in out
    assert "--preset {ci,quick,paper}" in out and "--out OUT" in out  # the existing options


def test_help_takes_comments_from_the_base_classes_and_nested_configs(capsys):
    relu = help_text(capsys, "relu-attention")
    assert "config of relu-attention (ReluAttentionConfig)" in relu
    # `attention` is redeclared in ReluAttentionConfig without a comment: BBRunConfig's stays.
    assert "--attention STR str (ci/quick/paper relu): Model width, layers and attention" in relu
    assert "Learning rate of the softmax comparison run (otherwise the same settings)." in relu
    adam = help_text(capsys, "simplified-adam")
    assert "--transformer.d-model INT" in adam
    assert "--transformer.with-bos, --transformer.no-with-bos" in adam
    chains = help_text(capsys, "chains-length-generalization")
    assert "--softmax none ChainRunSetting | None (ci none, quick set, paper set)" in chains
    assert "--softmax.epochs INT int (ci -," in chains  # no value where softmax is None


def test_run_help_without_a_name_still_works(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--seeds SEEDS" in out and "--lr LR" in out and "--matmul-precision" in out


@dataclasses.dataclass(frozen=True)
class _Base:
    # Above a.
    a: int = 1
    # Shared by b and c,
    # over two lines.
    b: int = 2
    c: int = 3

    d: int = 4  # inline about d
    e: int = 5
    """A docstring about e."""


@dataclasses.dataclass(frozen=True)
class _Derived(_Base):
    a: int = 10  # (no comment above: _Base's stays, with this one)
    # Derived's own.
    f: float = 0.5


def test_field_docs_read_comments_docstrings_and_bases():
    assert field_docs(_Derived) == {
        "a": "(no comment above: _Base's stays, with this one)",
        "b": "Shared by b and c, over two lines.",
        "c": "Shared by b and c, over two lines.",
        "d": "inline about d",
        "e": "A docstring about e.",
        "f": "Derived's own.",
    }


def test_field_flags_parse_every_field_type():
    ci = EXPERIMENTS["bb-dynamics"].presets["ci"]
    cfg = parsed_config(
        "bb-dynamics", "--preset", "ci", "--d-model", "16", "--no-with-bos", "--optimizer", "sgd"
    )
    assert cfg == dataclasses.replace(ci, d_model=16, with_bos=False, optimizer="sgd")
    assert parsed_config("no-bos", "--preset", "ci", "--with-bos").with_bos is True
    # Tuples: space-separated values; none for the empty tuple.
    cfg = parsed_config("bb-dynamics", "--preset", "paper", "--eval-at", "5", "10", "--no-attn")
    assert (cfg.eval_at, cfg.no_attn) == ((5, 10), ())
    theory = parsed_config("chains-theory", "--preset", "ci", "--theta0", "1", "0.5", "0")
    assert theory.theta0 == (1.0, 0.5, 0.0)
    variant = EXPERIMENTS["sink-dispensability"].presets["ci"].variants[0]
    assert parsed_config("sink-dispensability", "--variants", variant).variants == (variant,)
    # `none` for an optional field, a Literal's choices, a nested config set to None.
    chains = parsed_config(
        "chains-emergence", "--preset", "quick", "--epoch-fractions", "none", "--softmax", "none"
    )
    assert (chains.epoch_fractions, chains.softmax) == (None, None)
    cfg = parsed_config("chains-emergence", "--softmax.attention", "softmax")
    assert cfg.softmax.attention == "softmax"  # (the only value its check allows there)
    assert parsed_config("gpt2-circuit", "--checkpoint", "none").checkpoint is None


def test_nested_config_fields():
    quick = EXPERIMENTS["simplified-adam"].presets["quick"]
    cfg = parsed_config(
        "simplified-adam",
        "--transformer.d-model",
        "64",
        "--transformer.no-with-bos",
        "--steps",
        "7",
    )
    assert cfg.transformer == dataclasses.replace(quick.transformer, d_model=64, with_bos=False)
    assert cfg.steps == 7 and cfg.seq_len == quick.seq_len
    linear = parsed_config("chains-emergence", "--preset", "ci", "--linear.epochs", "2").linear
    assert linear == dataclasses.replace(
        EXPERIMENTS["chains-emergence"].presets["ci"].linear, epochs=2
    )


@pytest.mark.parametrize(
    "legacy, field",
    [
        (("--lr", "0.002"), ("--learning-rate", "0.002")),
        (("--seeds", "2"), ("--n-seeds", "2")),
    ],
)
def test_legacy_flags_and_field_flags_are_one_argument(legacy, field):
    old = parsed_config("bb-dynamics", "--preset", "ci", *legacy)
    assert old == parsed_config("bb-dynamics", "--preset", "ci", *field)
    assert old != EXPERIMENTS["bb-dynamics"].presets["ci"]
    # The later one wins, as for any repeated flag.
    args, _ = cli.parse_args(["run", "bb-dynamics", *legacy, field[0], "3"])
    assert len(config_overrides(args)) == 1


def test_no_flags_leave_every_preset_as_it_is():
    for name, experiment in EXPERIMENTS.items():
        for preset in PRESETS:
            args, _ = cli.parse_args(["run", name, "--preset", preset])
            assert config_overrides(args) == {}
            assert resolve_config(experiment, preset, {}) == experiment.presets[preset]


@pytest.mark.parametrize("flag", ["--d-model", "--seq-len"])
def test_a_training_field_changes_the_run_fingerprint(flag):
    experiment = EXPERIMENTS["bb-dynamics"]
    (before,) = experiment.training_plan(experiment.presets["ci"])
    (after,) = experiment.training_plan(parsed_config("bb-dynamics", "--preset", "ci", flag, "16"))
    assert after.settings != before.settings and after.share_key != before.share_key


def test_an_analysis_field_keeps_the_shared_run():
    experiment = EXPERIMENTS["layerwise-maps"]
    cfg = parsed_config("layerwise-maps", "--preset", "ci", "--prompt-len", "20")
    assert cfg.prompt_len == 20
    before = experiment.training_plan(experiment.presets["ci"])
    assert [run.settings for run in experiment.training_plan(cfg)] == [r.settings for r in before]


class _Stop(Exception):
    pass


def test_an_override_reaches_the_checkpoint_folder_of_the_run(capsys, tmp_path, monkeypatch):
    """`sinkjax run bb-dynamics --preset ci --d-model 16` opens another training-run folder
    than the plain ci run (the training itself is stopped before it starts)."""
    opened = []

    def stored(train_task, optimizer, train_cfg, fingerprint, ctx, label, kind):
        opened.append((ctx.checkpoint_path(label, kind, fingerprint), fingerprint))
        raise _Stop

    monkeypatch.setattr(bb_common, "train_stored", stored)
    argv = ["run", "bb-dynamics", "--preset", "ci", "--out", str(tmp_path), "--no-progress"]
    for extra in ([], ["--d-model", "16"]):
        with pytest.raises(_Stop):
            cli.main(argv + extra)
    (plain, plain_fingerprint), (narrow, fingerprint) = opened
    assert plain.parent == narrow.parent == tmp_path / "trained-runs"
    assert plain != narrow
    assert fingerprint["run"]["d_model"] == 16
    assert {**fingerprint["run"], "d_model": 0} == {**plain_fingerprint["run"], "d_model": 0}


@pytest.mark.parametrize(
    "argv, message",
    [
        (("bb-dynamics", "--d-modle", "16"), "unknown argument '--d-modle' for experiment"),
        (("bb-dynamics", "--d-modle", "16"), "did you mean --d-model?"),
        (("bb-dynamics", "--d-model", "sixteen"), "--d-model: expected an integer, got 'sixteen'"),
        (("bb-dynamics", "--d-model", "0"), "d_model must be positive, got 0"),
        (("bb-dynamics", "--learning-rate", "0"), "must be positive"),
        (("bb-dynamics", "--eval-at", "5", "x"), "--eval-at: expected an integer, got 'x'"),
        (("chains-theory", "--theta0", "1", "2"), "--theta0: expected 3 arguments"),
        (("chains-emergence", "--linear.attention", "relu"), "expected one of linear, softmax"),
        (("chains-emergence", "--linear.attention", "softmax"), "linear setting has attention"),
        (
            ("chains-simple-examples", "--preset", "ci", "--softmax.epochs", "3"),
            "has softmax = None at preset 'ci', so --softmax.epochs has nothing to set",
        ),
        (("theorem3", "--d-model", "16"), "unknown argument '--d-model'"),
    ],
)
def test_bad_config_flags_are_one_line_exit_2(capsys, tmp_path, argv, message):
    code = cli.main(["run", *argv, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("sinkjax: error:") and len(err.strip().splitlines()) == 1
    assert message in err


def test_resolve_config_takes_dotted_paths():
    experiment = EXPERIMENTS["simplified-adam"]
    cfg = resolve_config(experiment, "ci", {"learning_rate": 1e-3, "transformer.d_model": 64})
    assert (cfg.learning_rate, cfg.transformer.d_model) == (1e-3, 64)
    with pytest.raises(UsageError, match="has no transformer.width to override"):
        resolve_config(experiment, "ci", {"transformer.width": 64})
    with pytest.raises(UsageError, match="has no steps.d_model to override"):
        resolve_config(experiment, "ci", {"steps.d_model": 64})
