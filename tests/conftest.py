"""Suite-wide settings.

The default suite trains at the `ci` presets' tiny shapes, where XLA's compile time, not the
run time, is what costs: LLVM at -O0 compiles those programs about 2.5x faster (XLA's own HLO
passes still run and fast-math stays off). The long runs (`-m slow`) keep the default
optimisation level, since their timings and quick-preset numbers are what they check.
"""

import os


def pytest_configure(config):
    if "not slow" in (config.option.markexpr or ""):
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_backend_optimization_level" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} --xla_backend_optimization_level=0".strip()
