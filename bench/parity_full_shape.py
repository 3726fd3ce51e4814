"""Parity at the paper's shapes: our compiled step against the PyTorch model of spec B.1.

The parity suite (tests/test_parity.py) checks 24 steps at d = 32, N = 16, B = 4; this runs its
`jax_trajectory` / `torch_trajectory` at d = N = 256, B = 32 with the paper's AdamW (3e-4,
wd 1e-4), seed 42, from the same initial parameters on the same batches, and prints after every
eighth of the run: the two losses, the two ||W_O v_<s>|| and the largest per-tensor RMS difference.

    python bench/parity_full_shape.py 80      # about 75 s on 2 cores
"""

import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))
import test_parity as tp

tp.PARITY_D, tp.PARITY_N, tp.PARITY_B, tp.PARITY_STEPS = 256, 256, 32, int(sys.argv[1])
tp.PARITY_CASES["paper"] = (1, "softmax", ("adamw", 3e-4, 1e-4), (), ())
t = time.time()
traj = tp.jax_trajectory("paper", seed=42)
print("jax", time.time() - t, flush=True)
t = time.time()
losses, params = tp.torch_trajectory("paper", traj)
print("torch", time.time() - t, flush=True)


def vnorm(p):
    x = p["tok.weight"][65] + p["pos.weight"][0]
    g, b = p["blocks.0.ln_attn.weight"], p["blocks.0.ln_attn.bias"]
    h = (x - x.mean()) / np.sqrt(x.var() + 1e-5) * g + b
    return np.linalg.norm(p["blocks.0.attn.o.weight"] @ (p["blocks.0.attn.v.weight"] @ h))


ours = [tp.to_torch_layout(q) for q in traj.params]
for s in range(0, tp.PARITY_STEPS, max(1, tp.PARITY_STEPS // 8)):
    print(
        s,
        traj.losses[s],
        losses[s],
        vnorm(ours[s]),
        vnorm(params[s]),
        tp.max_rms_difference(ours[s], params[s]),
    )
