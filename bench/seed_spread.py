"""Seed-to-seed spread of the 1-layer BB run at B = 32, N = d = 256 (issue 18, item 3).

PyTorch side: 4 seeds of our own PyTorch model of spec B.1 (`tests/torch_reference.py`), seeded
by `torch.manual_seed` (PyTorch's default init), AdamW(3e-4, betas (0.9, 0.99), eps 1e-8,
wd 1e-4), trained on numpy batches drawn by the official generator's law (spec A.2), probed at
steps 200, 400, 700 and 1,000 on one fixed evaluation batch of 512 sequences
(`default_rng([42, 27])`, as the official code):
Attn_<s>, logit_<s> (spec C, code definition) and ||W_O v_<s>||.

JAX side: the same probes of the `paper` preset at 1,000 steps, B = 32, 4 vmapped seeds, from
our own initial draws (`init="sinkjax"`), trained into (or restored from) OUT/trained-runs.

Crossed: to tell the initial draw from the data stream, each trainer also starts from the other
side's initial parameters of the same seeds: our trainer (on-device data) from
`torch.manual_seed(seed)` draws, and the PyTorch model (numpy data) from our seeds' draws.

    python bench/seed_spread.py --torch-out /tmp/torch_spread.json   # about 20 min, 2 cores
    python bench/seed_spread.py --jax-runs OUT             # about 1 h on 2 cores, resumable
    python bench/seed_spread.py --jax-from-torch-init /tmp/jt.json   # our trainer, torch inits
    python bench/seed_spread.py --torch-from-jax-init /tmp/tj.json   # torch trainer, our inits
    python bench/seed_spread.py --early-init-effect /tmp/early.json  # 40 steps, 16 + 16 inits

Prints one table per side: mean, min and max over the seeds at each step (the early-init mode:
both sides in one table with a Mann-Whitney test).
"""

import argparse
import dataclasses
import json
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))

PROBE_STEPS = (200, 400, 700, 1000)
SEEDS = (42, 43, 44, 45)
B, N, D = 32, 256, 256


def official_law():
    """(P, pi0, trigger mask) from the shipped counts (spec A.1)."""
    from test_parity import official_law as law

    from sinkjax.active_dormant.corpus_stats import load_shipped_counts

    return law(load_shipped_counts())


def sample(rng: np.random.Generator, batch: int, law) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets), each (batch, N), by spec A.2: <s>, x[1] ~ pi0, then bigram or copy."""
    transition, pi0, trigger = law
    bos = transition.shape[0] - 2  # <s> = 65 of the 67 tokens (the last is <d>)
    cumulative = np.cumsum(transition, axis=1)
    x = np.empty((batch, N + 1), np.int64)
    x[:, 0] = bos
    x[:, 1] = rng.choice(len(pi0), size=batch, p=pi0)
    for n in range(1, N):
        u = rng.random(batch)[:, None]
        drawn = (u < cumulative[x[:, n]]).argmax(axis=1)
        x[:, n + 1] = np.where(trigger[x[:, n]], x[:, n - 1], drawn)
    return x[:, :-1], x[:, 1:]


def probes(model, inputs: np.ndarray, trigger: np.ndarray, bos: int) -> dict[str, float]:
    """Attn_<s>, logit_<s> and ||W_O v_<s>|| of the 1-layer reference model (spec C)."""
    import torch

    with torch.no_grad():
        tokens = torch.tensor(inputs)
        x = model.tok(tokens) + model.pos(torch.arange(N))[None]
        block = model.blocks[0]
        h = block.ln_attn(x)
        attn = block.attn
        scores = attn.q(h) @ attn.k(h).transpose(1, 2) / np.sqrt(D)
        weights = attn.weights(h).numpy()
        value_sink = attn.o(attn.v(h[:, 0])).norm(dim=-1).mean().item()
        scores = scores.numpy().astype(np.float64)
    non_trigger = ~trigger[inputs]
    attn_sink = weights[:, :, 0][non_trigger].mean()
    # Delta_n = s[n, 0] - mean_{1 <= j <= n-1} s[n, j] for n >= 2.
    below = np.tril(np.ones((N, N)), -1)
    below[:, 0] = 0
    counts = below.sum(1)
    delta = scores[:, :, 0] - (scores * below).sum(-1) / np.maximum(counts, 1)
    delta[:, :2] = np.nan
    per_type = [
        np.nanmean(delta[inputs == v])
        for v in range(len(trigger))
        if v != bos and not trigger[v] and np.any(inputs[:, 2:] == v)
    ]
    return {
        "attn_sink": float(attn_sink),
        "sink_logit": float(np.nanmean(per_type)),
        "value_norm_sink": value_sink,
    }


def torch_side(out: pathlib.Path, init: str = "torch") -> dict:
    """The PyTorch seeds, from `torch.manual_seed(seed)` draws or (init="jax") from our draws of
    the same seeds; numpy data by the official law either way."""
    import torch
    import torch_reference as ref

    torch.set_num_threads(2)
    law = official_law()
    trigger, bos = law[2], law[0].shape[0] - 2
    eval_inputs, _ = sample(np.random.default_rng([42, 27]), 512, law)
    results = json.loads(out.read_text()) if out.exists() else {}
    ours = jax_initial_params() if init == "jax" else None
    for seed in SEEDS:
        if str(seed) in results:
            continue
        torch.manual_seed(seed)
        model = ref.Transformer(ref.ReferenceConfig())
        if ours is not None:
            state = {k: torch.tensor(v) for k, v in ours[seed].items()}
            model.load_state_dict(state, strict=True)
        optimizer = ref.make_optimizer(model, "adamw", 3e-4, 1e-4)
        rng = np.random.default_rng([seed, 0])
        row, t0 = {}, time.perf_counter()
        for step in range(1, max(PROBE_STEPS) + 1):
            inputs, targets = sample(rng, B, law)
            ref.train_step(model, optimizer, torch.tensor(inputs), torch.tensor(targets))
            if step in PROBE_STEPS:
                row[step] = probes(model, eval_inputs, trigger, bos)
        results[str(seed)] = row
        out.write_text(json.dumps(results, indent=1))  # one seed at a time: resumable
        print(f"seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    return results


def jax_initial_params() -> dict[int, dict[str, np.ndarray]]:
    """Our trainer's initial parameters of each seed, in the reference model's layout."""
    from test_parity import flat_params, to_torch_layout

    from sinkjax.train import seed_keys

    task, _ = bb_task()
    init_keys, _ = seed_keys(SEEDS)
    return {
        seed: to_torch_layout(flat_params(task.init_params(init_keys[i])))
        for i, seed in enumerate(SEEDS)
    }


def bb_task(batch: int = B, eval_size: int = 512, official_init_seeds: tuple[int, ...] = ()):
    """Our 1-layer BB training task at d = N = 256 and `batch` sequences a step, probed on
    `eval_size` sequences, and its graphdef; with `official_init_seeds`, one run per seed
    starts from the official draw of that seed instead of ours."""
    from experiments.active_dormant.bb_common import BBRunConfig, official_inits
    from sinkjax.active_dormant.bb import default_bb_task
    from sinkjax.active_dormant.bb_training import bb_train_task, make_eval_batch

    task = default_bb_task()
    model_cfg = BBRunConfig(batch_size=batch).model_config(task.vocab_size)
    eval_batch = make_eval_batch(task, eval_size, N)
    inits = official_inits(model_cfg, official_init_seeds) if official_init_seeds else None
    return bb_train_task(model_cfg, task, batch, N, eval_batch, initial_params=inits)


def jax_from_torch_init(out: pathlib.Path) -> dict:
    """Our trainer (on-device data of seeds 42-45, vmapped) from torch.manual_seed draws."""
    if out.exists():
        return json.loads(out.read_text())
    result = train_from_torch_init(
        SEEDS, B, max(PROBE_STEPS), PROBE_STEPS, 0, out.with_suffix(".ckpt").absolute()
    )
    results = jax_rows(result)
    out.write_text(json.dumps(results, indent=1))
    return results


def train_from_torch_init(
    seeds: tuple[int, ...],
    batch: int,
    steps: int,
    eval_at: tuple[int, ...],
    n_linear_evals: int,
    checkpoint_dir: pathlib.Path,
    eval_size: int = 512,
):
    """Our trainer (paper settings, `batch` sequences a step, on-device data of `seeds`,
    vmapped) from the official `torch.manual_seed(seed)` initial parameters
    (`sinkjax.torch_init`, equal to the PyTorch reference model's);
    checkpointed every 100 steps (resumable). Returns the `TrainResult`."""
    from experiments.active_dormant.bb_common import BBRunConfig
    from sinkjax.train import TrainConfig, train

    task, _ = bb_task(batch, eval_size, official_init_seeds=seeds)
    cfg = TrainConfig(
        steps=steps,
        seeds=seeds,
        chunk_size=100,
        n_log_evals=0,
        n_linear_evals=n_linear_evals,
        eval_at=eval_at,
        checkpoint_every=100,
    )
    return train(
        task,
        BBRunConfig().optimizer_config(),
        cfg,
        checkpoint_dir=str(checkpoint_dir),
        fingerprint={"bench": "seed_spread jax-from-torch-init", "B": batch, "N": N, "d": D},
    )


def jax_rows(result) -> dict:
    """seed -> probe step -> the three probes of that seed, from a `TrainResult`."""
    at = {step: int(np.argmin(np.abs(result.eval_steps - step))) for step in PROBE_STEPS}
    print("evaluation steps used:", {s: int(result.eval_steps[e]) for s, e in at.items()})
    return {
        str(seed): {
            step: {
                name: float(np.ravel(result.metrics[name][i, at[step]])[0])
                for name in ("attn_sink", "sink_logit", "value_norm_sink")
            }
            for step in PROBE_STEPS
        }
        for i, seed in enumerate(SEEDS)
    }


def jax_side(runs: pathlib.Path) -> dict:
    from experiments.active_dormant import bb_dynamics
    from experiments.active_dormant.bb_common import train_bb
    from experiments.framework.config_flags import resolve_config
    from experiments.framework.experiment import RunContext

    overrides = {"steps": 1000, "batch_size": 32, "n_seeds": 4}
    cfg = resolve_config(bb_dynamics.EXPERIMENT, "paper", overrides)
    # Our own draws of seeds 42-45 and the paper schedule without the official probe steps:
    # the run measured on 2026-12-04, before the paper preset took the official draw.
    cfg = dataclasses.replace(cfg, init="sinkjax", eval_at=())
    ctx = RunContext(runs / "bb-dynamics", progress=False, run_store=runs / "trained-runs")
    assert cfg.seeds == SEEDS
    # The evaluation nearest each probe step (the schedule is log- and evenly spaced).
    return jax_rows(train_bb(cfg, ctx, "bb-dynamics").result)  # trains, or restores, the run


def table(results: dict, title: str) -> None:
    print(f"\n{title}: mean [min, max] over {len(results)} seeds")
    print("| step | Attn_<s> | logit_<s> | ||W_O v_<s>|| |\n|---|---|---|---|")
    for step in PROBE_STEPS:
        cells = []
        for name in ("attn_sink", "sink_logit", "value_norm_sink"):
            values = [
                row[str(step)][name] if str(step) in row else row[step][name]
                for row in results.values()
            ]
            cells.append(f"{np.mean(values):.2f} [{min(values):.2f}, {max(values):.2f}]")
        print(f"| {step} | " + " | ".join(cells) + " |")


def early_init_effect(out: pathlib.Path, n_seeds: int = 16, steps: int = 40) -> dict:
    """||W_O v_<s>|| over the first `steps` steps of our trainer (B = 32, on-device data of
    seeds 0..n_seeds-1) from our initial draws and from torch's draws of the same seeds: the
    data of seed s is the same on both sides, so the two sides differ in the init draw only."""
    from experiments.active_dormant.bb_common import BBRunConfig
    from sinkjax.train import TrainConfig, train

    if out.exists():
        return json.loads(out.read_text())
    seeds = tuple(range(n_seeds))
    cfg = TrainConfig(steps=steps, seeds=seeds, chunk_size=steps, n_log_evals=0, n_linear_evals=5)
    # ||W_O v_<s>|| does not depend on the probe sequences: 16 keep the vmapped probe small.
    base, _ = bb_task(eval_size=16)
    ours = train(base, BBRunConfig().optimizer_config(), cfg, progress=False)
    checkpoints = out.with_suffix(".ckpt").absolute()
    theirs = train_from_torch_init(seeds, B, steps, (), 5, checkpoints, eval_size=16)
    results = {
        side: {
            int(step): result.metrics["value_norm_sink"][:, e, 0, 0].tolist()
            for e, step in enumerate(result.eval_steps)
        }
        for side, result in (("sinkjax init", ours), ("torch init", theirs))
    }
    out.write_text(json.dumps(results, indent=1))
    return results


def early_table(results: dict) -> None:
    """Mean [min, max] of each side per step, and a two-sided Mann-Whitney test between them."""
    from scipy import stats

    ours, theirs = results["sinkjax init"], results["torch init"]
    n = len(next(iter(ours.values())))
    print(f"\n||W_O v_<s>||, {n} seeds a side, same data per seed: sinkjax init | torch init")
    print("| step | sinkjax init | torch init | Mann-Whitney p |\n|---|---|---|---|")
    for step in ours:
        a, b = np.asarray(ours[step]), np.asarray(theirs[step])
        p = stats.mannwhitneyu(a, b, alternative="two-sided").pvalue
        cells = [f"{x.mean():.2f} [{x.min():.2f}, {x.max():.2f}]" for x in (a, b)]
        print(f"| {step} | {cells[0]} | {cells[1]} | {p:.2g} |")


def initial_value_norms(n_draws: int = 400) -> None:
    """||W_O v_<s>|| at step 0 of `n_draws` of our initial draws and of the official ones
    (seeds 0..n_draws-1), with a two-sample KS test: the one probe of the init law that
    issue 18's gap points at."""
    import jax
    from flax import nnx
    from scipy import stats

    from experiments.active_dormant.bb_common import BBRunConfig
    from sinkjax.active_dormant.bb import default_bb_task
    from sinkjax.models import Transformer
    from sinkjax.torch_init import with_official_init
    from sinkjax.train import seed_keys

    task = default_bb_task()
    cfg = BBRunConfig().model_config(task.vocab_size)
    tokens = jax.numpy.full((1, 1), task.bos)

    def value_norm(state) -> float:
        _, trace = nnx.merge(graphdef, state)(tokens, trace=True)
        return float(np.linalg.norm(np.asarray(trace.layers[0].attn.value_out[0, 0, 0])))

    graphdef, template = nnx.split(Transformer(cfg, rngs=nnx.Rngs(0)))
    init_keys, _ = seed_keys(tuple(range(n_draws)))
    ours = [value_norm(nnx.state(Transformer(cfg, rngs=nnx.Rngs(params=key)))) for key in init_keys]
    theirs = [value_norm(with_official_init(template, cfg, seed)) for seed in range(n_draws)]
    test = stats.ks_2samp(ours, theirs)
    print(f"\n||W_O v_<s>|| at step 0, {n_draws} draws a side: mean (std)")
    print(
        f"sinkjax {np.mean(ours):.3f} ({np.std(ours):.3f}), official {np.mean(theirs):.3f} "
        f"({np.std(theirs):.3f}); KS p = {test.pvalue:.2g}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--torch-out", type=pathlib.Path, help="train the PyTorch seeds (resumable)"
    )
    parser.add_argument(
        "--jax-runs", type=pathlib.Path, help="our 4 seeds run folder (trained if absent)"
    )
    parser.add_argument(
        "--jax-from-torch-init", type=pathlib.Path, help="our trainer from torch's initial draws"
    )
    parser.add_argument(
        "--torch-from-jax-init", type=pathlib.Path, help="the torch trainer from our initial draws"
    )
    parser.add_argument(
        "--early-init-effect",
        type=pathlib.Path,
        help="16 seeds a side, 40 steps: our init draws against torch's, same data",
    )
    parser.add_argument(
        "--initial-value-norms", action="store_true", help="400 + 400 initial draws, KS test"
    )
    args = parser.parse_args()
    if args.initial_value_norms:
        initial_value_norms()
    if args.early_init_effect:
        early_table(early_init_effect(args.early_init_effect))
    if args.torch_out:
        table(torch_side(args.torch_out), "PyTorch reference, official data law")
    if args.jax_runs:
        table(jax_side(args.jax_runs), "sinkjax (vmapped seeds, on-device data)")
    if args.jax_from_torch_init:
        table(jax_from_torch_init(args.jax_from_torch_init), "sinkjax trainer, torch init")
    if args.torch_from_jax_init:
        table(torch_side(args.torch_from_jax_init, init="jax"), "PyTorch trainer, sinkjax init")


if __name__ == "__main__":
    main()
