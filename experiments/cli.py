"""The `sinkjax` command line: list, run and reproduce the registered experiments.

    sinkjax list
    sinkjax run NAME [--preset ci|quick|paper] [--out DIR] [--seeds N] [--steps N] [--lr X]
                     [--checkpoint DIR]  (gpt2-circuit: analyse a Hugging Face GPT-2)
                     [--matmul-precision float32|tf32]  (BB experiments; default float32)
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

from experiments.framework.experiment import PRESETS
from experiments.framework.ledger import write_ledger
from experiments.framework.plan import format_plan, make_plan
from experiments.framework.report import write_report
from experiments.framework.reproduce import Settings, default_jobs, print_claims, reproduce
from experiments.framework.runner import (
    UsageError,
    check_text_file,
    prepare_out_dir,
    resolve_config,
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
    def error(self, message):  # one line instead of argparse's usage dump
        raise UsageError(f"{message} (see `sinkjax --help`)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _device_count(text: str) -> int | None:
    if text == "all":
        return None
    try:
        return _positive_int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a positive integer or 'all', got {text}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sinkjax", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="list the registered experiments")

    def common(p, default_preset):
        p.add_argument("--preset", default=default_preset, choices=PRESETS)
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

    run = sub.add_parser("run", help="run one experiment")
    run.add_argument("name", help="experiment name (see `sinkjax list`)")
    common(run, "quick")
    run.add_argument("--seeds", type=_positive_int, help="number of seeds trained together")
    run.add_argument("--steps", type=_positive_int, help="override the preset's training steps")
    run.add_argument("--lr", type=_positive_float, help="override the preset's learning rate")
    run.add_argument(
        "--batch-size", type=_positive_int, help="override the preset's training batch size"
    )
    run.add_argument(
        "--matmul-precision",
        choices=PRECISIONS,
        help="float32 products of the model in full float32 (every preset's default) or in TF32 "
        "(native on a GPU, emulated on the CPU); BB experiments",
    )
    run.add_argument(
        "--checkpoint",
        help="a Hugging Face GPT-2 checkpoint directory to analyse (gpt2-circuit)",
    )

    reproduce = sub.add_parser("reproduce", help="run every experiment and write report.html")
    common(reproduce, "quick")
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

    ledger = sub.add_parser("ledger", help="rewrite docs/claims.md from the registry and records")
    ledger.add_argument("--runs", help="the --out of a quick main job: snapshot its verdicts first")
    return parser


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("run", "reproduce"):
        # Before anything starts JAX's backend (importing the experiments may).
        try:
            distributed.initialize(args.coordinator, args.num_processes, args.process_id)
            use_devices(args.devices)
        except ValueError as err:
            raise UsageError(str(err)) from None
    experiments = get_experiments()
    if args.command == "list":
        for name, experiment in experiments.items():
            print(f"{name:20s} {experiment.title}")
        return 0
    if args.command == "ledger":
        print(f"wrote {write_ledger(experiments, pathlib.Path(args.runs) if args.runs else None)}")
        return 0

    if args.command == "reproduce" and args.plan:
        print(format_plan(make_plan(experiments, args.preset)))
        return 0
    corpus = check_text_file(args.corpus, "--corpus")
    prose = check_text_file(args.prose, "--prose")
    out_root = prepare_out_dir(args.out)
    progress = not args.no_progress
    if args.command == "run":
        if args.name not in experiments:
            raise UsageError(
                f"unknown experiment {args.name!r}; choose one of {', '.join(experiments)}"
            )
        experiment = experiments[args.name]
        cfg = resolve_config(
            experiment,
            args.preset,
            steps=args.steps,
            learning_rate=args.lr,
            n_seeds=args.seeds,
            batch_size=args.batch_size,
            checkpoint=args.checkpoint,
            matmul_precision=args.matmul_precision,
        )
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
