"""Plotting helpers shared by the experiments (matplotlib, Agg backend, no global state)."""

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def token_labels(tokens: Sequence[int], chars: Sequence[str], bos: int) -> list[str]:
    """Readable labels: '<s>' for BOS, '\\n' and '␣' for newline and space."""
    names = {"\n": "\\n", " ": "␣"}
    return [
        "<s>" if t == bos else names.get(chars[t], chars[t]) if t < len(chars) else "<d>"
        for t in tokens
    ]


def attention_heatmap(ax: plt.Axes, weights: np.ndarray, labels: Sequence[str], highlight=()):
    """Causal attention map (N, N) with token labels; rows in `highlight` get a red label."""
    n = len(labels)
    image = ax.imshow(weights[:n, :n], cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels, fontsize=6, rotation=90)
    ax.set_yticks(range(n), labels, fontsize=6)
    for i in highlight:
        ax.get_yticklabels()[i].set_color("red")
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    return image


def rescaled(curve: np.ndarray) -> np.ndarray:
    """A curve divided by its own maximum (the paper's Fig. 3b normalisation)."""
    peak = np.nanmax(curve)
    return curve / peak if peak > 0 else curve


def curves_panel(
    ax: plt.Axes,
    steps: np.ndarray,
    curves: Mapping[str, np.ndarray],
    *,
    bands: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    logx: bool = True,
    title: str = "",
):
    """Plot named curves (E,) against `steps`, with optional shaded (low, high) bands."""
    x = np.maximum(steps, 1) if logx else steps
    for name, curve in curves.items():
        (line,) = ax.plot(x, curve, label=name, lw=1.5)
        if bands and name in bands:
            low, high = bands[name]
            ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, lw=0)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel("step")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def bar_chart(
    ax: plt.Axes,
    groups: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    hlines: Mapping[str, float] | None = None,
    ylabel: str = "",
    errors: Mapping[str, Sequence[float]] | None = None,
    fmt: str = "%.2f",
):
    """Grouped bars: one group per entry of `groups`, one bar per series (with error bars from
    `errors`, same keys, when given); labelled horizontal lines."""
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(groups))
    for i, (name, values) in enumerate(series.items()):
        yerr = None if errors is None else errors[name]
        offset = (i - (len(series) - 1) / 2) * width
        bars = ax.bar(x + offset, values, width, label=name, yerr=yerr, capsize=2)
        ax.bar_label(bars, fmt=fmt, fontsize=7)
    for name, y in (hlines or {}).items():
        ax.axhline(y, ls="--", lw=1, color="gray")
        ax.text(len(groups) - 0.5, y, name, fontsize=7, va="bottom", ha="right", color="gray")
    ax.set_xticks(x, groups)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
