"""Run `ci` experiments through the CLI in this process; a helper of `test_sharding.py`.

    python tests/sharded_runs.py OUT DEVICES NAME [NAME ...] [-- EXTRA CLI ARGS]

The test starts it in a subprocess with `XLA_FLAGS=--xla_force_host_platform_device_count=K`
(the flag must be set before JAX starts). Exits 2 when a run could not run; failed claims
(expected at `ci`) do not count.
"""

import sys

from experiments import cli


def main(argv: list[str]) -> int:
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    out, devices, *names = argv
    for name in names:
        common = ["--preset", "ci", "--out", out, "--devices", devices, "--no-progress"]
        if cli.main(["run", name, *common, *extra]) == 2:
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
