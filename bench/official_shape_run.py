"""The 1-layer BB run at the official code's shapes for 1,000 steps, beside its saved dynamics.

Issue 18, item 3: `bb-dynamics` at the `paper` preset (d = N = 256, one head, B = 512, AdamW
3e-4, betas (0.9, 0.99), wd 1e-4, seed 42) cut to 1,000 steps, in float32 or in emulated TF32
(the preset evaluates the official probe steps 200, 400 and 1,000 exactly) in 50-step chunks, so
that the run checkpoints every 50 steps (about 1.5 h on 2 CPU cores; Ctrl-C and rerun the same
command to resume). It writes the experiment's record and figures under OUT/bb-dynamics and
prints Attn_<s>, logit_<s> and ||W_O v_<s>|| at 200, 400 and 1,000 steps beside the official
run's values (`experiments.active_dormant.official_reference`).

`--init official` starts from the official run's own initial parameters (`torch.manual_seed(42)`,
PyTorch's default init: the `paper` preset's `init`); `--init sinkjax` from our draw of seed 42.

    python bench/official_shape_run.py --out /tmp/b512-ours --init sinkjax
    python bench/official_shape_run.py --out /tmp/b512-official --init official
    python bench/official_shape_run.py --out /tmp/b512-tf32 --init sinkjax --matmul-precision tf32
"""

import argparse
import dataclasses
import pathlib

from experiments.active_dormant import bb_dynamics
from experiments.active_dormant.bb_common import INITS
from experiments.active_dormant.official_reference import OFFICIAL_DYNAMICS
from experiments.framework.runner import run_experiment
from sinkjax.precision import PRECISIONS

STEPS = 1000
PROBES = ("attn_sink", "sink_logit", "value_norm_sink")


def config(precision: str, init: str) -> bb_dynamics.BBRunConfig:
    """The paper preset cut to `STEPS` steps in chunks of 50 (a checkpoint after each)."""
    return dataclasses.replace(
        bb_dynamics.EXPERIMENT.presets["paper"],
        steps=STEPS,
        chunk_size=50,
        matmul_precision=precision,
        init=init,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, required=True, help="run folder root")
    parser.add_argument("--matmul-precision", choices=PRECISIONS, default="float32")
    parser.add_argument("--init", choices=INITS, required=True, help="whose draw of seed 42")
    args = parser.parse_args()
    record = run_experiment(
        bb_dynamics.EXPERIMENT, config(args.matmul_precision, args.init), "paper", args.out
    )
    ours = {int(k): v for k, v in record["summary"]["official_reference"].items()}
    what = f"{args.matmul_precision}, {args.init} init of seed 42"
    print(f"\n{what}, B = 512: ours / official (seed 42, float32)")
    print("| step | Attn_<s> | logit_<s> | ||W_O v_<s>|| |\n|---|---|---|---|")
    for step, official in OFFICIAL_DYNAMICS.items():
        if step in ours:
            cells = [f"{ours[step][name]:.2f} / {official[name]:.2f}" for name in PROBES]
            print(f"| {step} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
