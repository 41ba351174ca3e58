"""PNG plots made from saved results: predicted against true velocity, and R2 against operations."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from motordecode.fileio import atomic_write_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path) -> Path:
    path = Path(path)
    with atomic_write_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def plot_predictions(path: str | os.PathLike, labels: np.ndarray, predictions: dict[str, np.ndarray],
                     step_s: float, seconds: float = 20.0, title: str = "") -> Path:
    """Velocity x and y over the first ``seconds`` of the test split: true and each mode's prediction."""
    plt = _pyplot()
    n = min(len(labels), max(1, int(round(seconds / step_s))))
    t = np.arange(n) * step_s
    fig, axes = plt.subplots(labels.shape[1], 1, figsize=(10, 2.6 * labels.shape[1]), sharex=True, squeeze=False)
    for axis, ax in enumerate(axes[:, 0]):
        ax.plot(t, labels[:n, axis], color="black", lw=1.2, label="true")
        for mode, pred in predictions.items():
            ax.plot(t, pred[:n, axis], lw=0.9, alpha=0.85, label=mode)
        ax.set_ylabel(f"velocity {'xyz'[axis] if axis < 3 else axis}")
    axes[-1, 0].set_xlabel("time in the test split (s)")
    axes[0, 0].legend(loc="upper right", ncol=len(predictions) + 1, fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_tradeoff(path: str | os.PathLike, series: dict[str, list[dict]], label_key: str,
                  x_key: str = "effective_macs", y_key: str = "r2",
                  published: dict[str, tuple[float, float]] | None = None, title: str = "") -> Path:
    """R2 against operations per step: one marker series per entry of ``series`` (the points of the
    first labelled by ``label_key``), published points as stars."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    for index, (name, rows) in enumerate(series.items()):
        rows = sorted(rows, key=lambda r: r[x_key])
        xs, ys = [r[x_key] for r in rows], [r[y_key] for r in rows]
        ax.plot(xs, ys, "o", label=name)
        for r, x, y in zip(rows, xs, ys):
            if index == 0:  # label the points once; every series has the same ones
                ax.annotate(str(r[label_key]), (x, y), textcoords="offset points", xytext=(3, -10), fontsize=7,
                            rotation=-30)
    for name, (x, y) in (published or {}).items():
        ax.plot([x], [y], "*", markersize=12, label=f"published: {name}")
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"{x_key.replace('_', ' ')} per sample (log)")
    ax.set_ylabel("test R2" if y_key == "r2" else y_key)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_session_bars(path: str | os.PathLike, sessions: dict[str, dict[str, tuple]]) -> Path:
    """Per-session test R2 bars, one group per session, one bar per recipe, seed std as error bars.
    ``sessions``: recipe -> {session: (mean, std, n)}."""
    plt = _pyplot()
    names = sorted({s for per in sessions.values() for s in per})
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(names)), 4.2))
    width = 0.8 / max(1, len(sessions))
    for k, (recipe, per) in enumerate(sessions.items()):
        xs = np.arange(len(names)) + k * width
        means = [per.get(s, (np.nan, 0, 0))[0] for s in names]
        stds = [per.get(s, (np.nan, 0, 0))[1] for s in names]
        ax.bar(xs, means, width, yerr=stds, capsize=3, label=recipe)
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2)
    ax.set_xticklabels(names, rotation=20, fontsize=8)
    ax.set_ylabel("test R2")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return _save(fig, path)
