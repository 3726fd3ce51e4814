"""The `sinkjax` command line: list, run and reproduce the registered experiments.

    sinkjax list
    sinkjax run NAME [--preset ci|quick|paper] [--out DIR] [--seeds N] [--steps N] [--lr X]
                     [--checkpoint DIR]  (gpt2-circuit: analyse a Hugging Face GPT-2)
                     [--matmul-precision float32|tf32]  (BB experiments; default float32)
                     [--FIELD VALUE ...]  (any field of NAME's config: `sinkjax run NAME --help`)
    sinkjax reproduce [--preset quick] [--out DIR] [--jobs N] [--plan]
    sinkjax ledger [--runs DIR]   (rewrite docs/claims.md; --runs: snapshot a quick main job)

    run and reproduce: [--devices N|all] (training programs sharded over the devices)
                       [--coordinator HOST:PORT --num-processes N --process-id I] (several hosts)

Bad input is reported on one line and exits with status 2; failed claims exit with status 1.
"""

import argparse
import pathlib
import sys

import jax

from experiments.framework.config_flags import (
    Alias,
    add_config_flags,
    config_overrides,
    resolve_config,
    unknown_flags_error,
)
from experiments.framework.experiment import PRESETS, Experiment
from experiments.framework.ledger import write_ledger
from experiments.framework.plan import format_plan, make_plan
from experiments.framework.report import write_report
from experiments.framework.reproduce import Settings, default_jobs, print_claims, reproduce
from experiments.framework.runner import (
    UsageError,
    check_text_file,
    prepare_out_dir,
    run_experiment,
)
from experiments.registry import get_experiments
from sinkjax import distributed
from sinkjax.checkpoints import CheckpointMismatch
from sinkjax.models.gpt2 import CheckpointError
from sinkjax.precision import PRECISIONS
from sinkjax.sharding import use_devices
from sinkjax.train import TrainingDiverged


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, help_command: str = "sinkjax --help", **kwargs):
        super().__init__(*args, **kwargs)
        self.help_command = help_command

    def error(self, message):  # one line instead of argparse's usage dump
        raise UsageError(f"{message} (see `{self.help_command}`)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _device_count(text: str) -> int | None:
    if text == "all":
        return None
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be a positive integer or 'all', got {text}"
        ) from None


# The `run` flags older than the config flags, by the config field they set. Where the
# experiment's config has that field, each is a second spelling of the field's flag (`--lr` and
# `--learning-rate`), with the check given here.
RUN_FLAGS = {
    "n_seeds": Alias("--seeds", _positive_int, help="number of seeds trained together"),
    "steps": Alias("--steps", _positive_int, help="override the preset's training steps"),
    "learning_rate": Alias("--lr", _positive_float, help="override the preset's learning rate"),
    "batch_size": Alias(
        "--batch-size", _positive_int, help="override the preset's training batch size"
    ),
    "matmul_precision": Alias(
        "--matmul-precision",
        choices=PRECISIONS,
        help="float32 products of the model in full float32 (every preset's default) or in TF32 "
        "(native on a GPU, emulated on the CPU); BB experiments",
    ),
    "checkpoint": Alias(
        "--checkpoint", help="a Hugging Face GPT-2 checkpoint directory to analyse (gpt2-circuit)"
    ),
}


def build_parser(experiment: Experiment | None = None, add_help: bool = True) -> _Parser:
    """The `sinkjax` parser; `run` has the config flags of `experiment` (none without one).

    Args:
        add_help: False leaves out every -h/--help (the first pass of `parse_args`).
    """
    parser = _Parser(prog="sinkjax", description=__doc__.splitlines()[0], add_help=add_help)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="list the registered experiments", add_help=add_help)

    run = sub.add_parser(
        "run",
        help="run one experiment (`sinkjax run NAME --help`: its config flags)",
        description="Run one experiment. Every field of its config is a flag: "
        "`sinkjax run NAME --help` lists them.",
        add_help=add_help,
        help_command=f"sinkjax run {experiment.name if experiment else 'NAME'} --help",
    )
    run.add_argument("name", help="experiment name (see `sinkjax list`)")
    _add_common(run)
    add_config_flags(run, experiment, RUN_FLAGS)

    reproduce = sub.add_parser(
        "reproduce", help="run every experiment and write report.html", add_help=add_help
    )
    _add_common(reproduce)
    reproduce.add_argument(
        "--jobs",
        type=_positive_int,
        help="experiments run at once, each in its own process; same results (default: 2 on a "
        "CPU, 1 on a one-core machine, with an accelerator or several hosts; progress bars "
        "only with --jobs 1)",
    )
    reproduce.add_argument(
        "--plan",
        action="store_true",
        help="print what would run: steps, seconds per step and expected time per experiment",
    )

    ledger = sub.add_parser(
        "ledger", help="rewrite docs/claims.md from the registry and records", add_help=add_help
    )
    ledger.add_argument("--runs", help="the --out of a quick main job: snapshot its verdicts first")
    return parser


def _add_common(p: argparse.ArgumentParser) -> None:
    """The options `run` and `reproduce` share."""
    p.add_argument("--preset", default="quick", choices=PRESETS)
    p.add_argument("--out", default="runs", help="run folder root (default: runs)")
    p.add_argument(
        "--corpus", help="derive the BB bigram statistics from this text file (BB experiments)"
    )
    p.add_argument(
        "--prose",
        help="the prose the text experiments train on, a UTF-8 file (e.g. tiny Shakespeare); "
        "default: the docstrings of this Python's standard library",
    )
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument(
        "--devices",
        type=_device_count,
        default=None,
        help="devices the training programs shard their runs and batch over: N (the first "
        "N) or all (default)",
    )
    p.add_argument(
        "--coordinator",
        help="HOST:PORT of process 0 of a multi-host job (with --num-processes and "
        "--process-id); a SLURM, mpirun or Cloud TPU job is detected without it",
    )
    p.add_argument("--num-processes", type=_positive_int, help="processes of the job")
    p.add_argument("--process-id", type=int, help="this process's index, 0 to N - 1")


def _asks_help(argv: list[str]) -> bool:
    return "-h" in argv or "--help" in argv


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, dict[str, Experiment]]:
    """The parsed command line and the registered experiments, in two passes.

    The first pass (no config flags, which it leaves aside) finds the command, the experiment
    and the multi-host options; this process joins its job before the experiments are imported
    (importing them starts JAX's backend). The second pass parses everything with the flags of
    the experiment's config.
    """
    try:
        first, _ = build_parser(add_help=False).parse_known_args(argv)
    except UsageError:
        if _asks_help(argv):
            build_parser().parse_args(argv)  # prints the help and exits
        raise
    if first.command in ("run", "reproduce") and not _asks_help(argv):
        try:
            distributed.initialize(first.coordinator, first.num_processes, first.process_id)
            use_devices(first.devices)
        except ValueError as err:
            raise UsageError(str(err)) from None
    experiments = get_experiments()
    if first.command != "run":
        return build_parser().parse_args(argv), experiments
    if first.name not in experiments:
        raise UsageError(
            f"unknown experiment {first.name!r}; choose one of {', '.join(experiments)}"
        )
    experiment = experiments[first.name]
    args, extras = build_parser(experiment).parse_known_args(argv)
    if extras:
        raise unknown_flags_error(experiment, extras, RUN_FLAGS.values())
    return args, experiments


def _main(argv: list[str] | None) -> int:
    args, experiments = parse_args(sys.argv[1:] if argv is None else list(argv))
    if args.command == "list":
        for name, experiment in experiments.items():
            print(f"{name:20s} {experiment.title}")
        return 0
    if args.command == "ledger":
        print(f"wrote {write_ledger(experiments, pathlib.Path(args.runs) if args.runs else None)}")
        return 0

    if args.command == "reproduce" and args.plan:
        print(format_plan(make_plan(experiments, args.preset, pathlib.Path(args.out))))
        return 0
    corpus = check_text_file(args.corpus, "--corpus")
    prose = check_text_file(args.prose, "--prose")
    out_root = prepare_out_dir(args.out)
    progress = not args.no_progress
    if args.command == "run":
        experiment = experiments[args.name]
        cfg = resolve_config(experiment, args.preset, config_overrides(args))
        record = run_experiment(
            experiment, cfg, args.preset, out_root, progress=progress, corpus=corpus, prose=prose
        )
        return (
            0
            if print_claims(record, f"{experiment.name}: wrote {out_root / experiment.name}")
            else 1
        )

    jobs = args.jobs or default_jobs()
    if jobs > 1 and jax.process_count() > 1:
        raise UsageError("a multi-host job runs one experiment at a time; drop --jobs")
    settings = Settings(args.preset, out_root, corpus, progress and jobs == 1, args.devices, prose)
    finished = reproduce(experiments, settings, jobs, get_experiments)
    report = write_report(out_root, list(experiments), finished.errors)
    print(f"report: {report}")
    return 0 if finished.passed else 1


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except (UsageError, CheckpointMismatch, CheckpointError, ImportError) as err:
        print(f"sinkjax: error: {err}", file=sys.stderr)
        return 2
    except TrainingDiverged as err:
        print(f"sinkjax: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sinkjax: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
