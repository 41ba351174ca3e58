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


def _save(fig, path, footer: list[str] | tuple[str, ...] = ()) -> Path:
    """Write ``fig`` as PNG, with ``footer`` (what the figure was made from) in small type beneath it."""
    path = Path(path)
    if footer:  # beneath the axes and their tick labels; the tight bounding box of savefig takes it in
        fig.text(0.01, 0.0, "\n".join(footer), ha="left", va="top", fontsize=6.5,
                 color="0.3")
    with atomic_write_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def plot_predictions(path: str | os.PathLike, labels: np.ndarray, predictions: dict[str, np.ndarray],
                     step_s: float, seconds: float = 10.0, title: str = "", units: str = "",
                     footer: list[str] | tuple[str, ...] = ()) -> Path:
    """True and predicted velocity (one row per axis) over the whole test split (left), and its
    first ``seconds`` (at most a quarter of it) enlarged (right, shaded on the left); ``units``
    label the velocity axis; ``footer`` says what the figure was made from."""
    plt = _pyplot()
    n_all = len(labels)
    n_zoom = max(1, min(int(round(seconds / step_s)), n_all // 4))
    t = np.arange(n_all) * step_s
    rows = labels.shape[1]
    fig, axes = plt.subplots(rows, 2, figsize=(13, 2.6 * rows), sharex="col", squeeze=False,
                             gridspec_kw={"width_ratios": (2.2, 1)})
    for axis in range(rows):
        name = f"velocity {'xyz'[axis] if axis < 3 else axis}" + (f" ({units})" if units else "")
        for column, n in ((0, n_all), (1, n_zoom)):
            ax = axes[axis, column]
            ax.plot(t[:n], labels[:n, axis], color="black", lw=1.0 if column else 0.5, label="true")
            for mode, pred in predictions.items():
                ax.plot(t[:n], pred[:n, axis], lw=0.9 if column else 0.45, alpha=0.85, label=mode)
            ax.grid(alpha=0.3)
        axes[axis, 0].set_ylabel(name)
        axes[axis, 0].axvspan(0, t[n_zoom - 1], color="tab:orange", alpha=0.12, lw=0)
    axes[0, 0].set_title(f"whole test split ({n_all * step_s:.0f} s, {n_all} samples)", fontsize=9)
    axes[0, 1].set_title(f"its first {n_zoom * step_s:g} s (shaded left)", fontsize=9)
    for column in (0, 1):
        axes[-1, column].set_xlabel("time in the test split (s)")
    axes[0, 1].legend(loc="upper right", ncol=len(predictions) + 1, fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path, footer)


def _log_axis(axis) -> None:
    """Readable log ticks: 1, 2 and 5 per decade, written 500, 2k, 1.2M."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    def text(value, _):
        for size, suffix in ((1e6, "M"), (1e3, "k")):
            if value >= size:
                return f"{value / size:g}{suffix}"
        return f"{value:g}"
    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(text))
    axis.set_minor_formatter(NullFormatter())


def plot_tradeoff(path: str | os.PathLike, series: dict[str, list[dict]], label_key: str,
                  x_key: str = "effective_macs", y_key: str = "r2",
                  published: dict[str, tuple[float, float]] | None = None, title: str = "",
                  footer: list[str] | tuple[str, ...] = ()) -> Path:
    """R2 against operations per step: one marker series per entry of ``series`` (the points of the
    first labelled by ``label_key``), published points as stars."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    _tradeoff_panel(ax, series, label_key, x_key, y_key, published)
    ax.set_xlabel(f"{x_key.replace('_', ' ')} per sample (log)")
    if title:
        ax.set_title(title)
    return _save(fig, path, footer)


def _tradeoff_panel(ax, series: dict[str, list[dict]], label_key: str, x_key: str, y_key: str,
                    published: dict[str, tuple[float, float]] | None) -> None:
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
    _log_axis(ax.xaxis)
    ax.set_ylabel("test R2" if y_key == "r2" else y_key)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)


def plot_pareto(path: str | os.PathLike, measured: list[dict], published: list[dict], title: str = "",
                footer: list[str] | tuple[str, ...] = ()) -> Path:
    """Test R2 against effective operations per 4 ms step (left) and against the footprint (right).

    ``measured`` and ``published``: points {"label", "monkey", "r2", "ops", "footprint_bytes"}
    (ops or footprint None where unknown); circles are Indy, squares Loco, diamonds the mean over
    both; ours are coloured dots, the published ones grey stars."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2), sharey=True)
    markers = {"indy": "o", "loco": "s", None: "D"}
    labels = sorted({p["label"] for p in measured})
    colours = {label: plt.get_cmap("tab10")(i % 10) for i, label in enumerate(labels)}
    for ax, key, name in ((axes[0], "ops", "effective operations (MACs + ACs) per 4 ms step (log)"),
                          (axes[1], "footprint_bytes", "footprint (bytes, log)")):
        for point in measured:
            if point.get(key):
                ax.plot(point[key], point["r2"], markers[point["monkey"]], color=colours[point["label"]],
                        markersize=7)
        for point in published:
            if point.get(key):
                ax.plot(point[key], point["r2"], markers[point["monkey"]], color="0.45", markersize=6,
                        markerfacecolor="none")
                ax.annotate(point["label"], (point[key], point["r2"]), textcoords="offset points", xytext=(4, 3),
                            fontsize=6.5, color="0.35")
        ax.set_xscale("log")
        _log_axis(ax.xaxis)
        ax.set_xlabel(name)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("test R2")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls="", marker="o", color=colours[label], label=label) for label in labels]
    handles += [Line2D([], [], ls="", marker=m, color="0.3", markerfacecolor="none",
                       label={"indy": "Indy (96 ch)", "loco": "Loco (192 ch)", None: "mean of both"}[k])
                for k, m in markers.items()]
    handles.append(Line2D([], [], ls="", marker="o", color="0.45", markerfacecolor="none",
                          label="published (grey, named)"))
    axes[1].legend(handles=handles, fontsize=7, loc="lower right")
    if title:
        fig.suptitle(title)
    return _save(fig, path, footer)


def plot_session_bars(path: str | os.PathLike, sessions: dict[str, dict[str, tuple]],
                      published: dict[str, dict[str, float]] | None = None, title: str = "",
                      footer: list[str] | tuple[str, ...] = ()) -> Path:
    """Per-session test R2 bars, one group per session, one bar per recipe, seed std as error bars,
    and each recipe's published per-session value as a black marker on its bar.
    ``sessions``: recipe -> {session: (mean, std, n)}; ``published``: recipe -> {session: R2}."""
    plt = _pyplot()
    names = sorted({s for per in sessions.values() for s in per})
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(names)), 4.4))
    width = 0.8 / max(1, len(sessions))
    marked = False
    for k, (recipe, per) in enumerate(sessions.items()):
        xs = np.arange(len(names)) + k * width
        means = [per.get(s, (np.nan, 0, 0))[0] for s in names]
        stds = [per.get(s, (np.nan, 0, 0))[1] for s in names]
        ax.bar(xs, means, width, yerr=stds, capsize=3, label=recipe)
        reference = (published or {}).get(recipe, {})
        points = [(x, reference[s]) for x, s in zip(xs, names) if s in reference]
        if points:
            ax.plot(*zip(*points), "_", color="black", markersize=max(8.0, 60 * width), mew=2.2,
                    label=None if marked else "published (same system)")
            marked = True
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2)
    ax.set_xticklabels(names, rotation=20, fontsize=8)
    ax.set_ylabel("test R2 (mean over seeds, std as error bar)")
    ax.set_title(title or "test R2 per session")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return _save(fig, path, footer)
