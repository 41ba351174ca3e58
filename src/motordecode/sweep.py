"""Sweeps: one recipe trained at many settings and seeds by parallel local workers, then a table and a plot.

Built-in sweeps of the AEGRU paper on one session:

- ``nk``: the (N, k) grid of Fig. 3: windows of N samples of 4 ms summed in k sub-windows;
- ``prune``: the target pruning rate of Fig. 4, from 0 to 0.9 (prune, fine-tune; no quantisation);
- ``delta``: the delta GRU's thresholds (Theta_x = Theta_u = Theta_h) and pruning rate, drawn next
  to ``aegru-pruned`` (windowed and stateful) trained on the same session and seeds.

Every point is an ordinary run directory under OUT (``OUT/<point>-seed<s>``); a point whose
metrics.json exists is read, not retrained, and an interrupted one is resumed, so an interrupted
sweep continues where it stopped. The runs train in the local pool of :mod:`motordecode.workers`
(shared with ``reproduce``): separate processes, each pinned to its threads (1 by default) and its
device (worker k on GPU k mod n_gpus with "cuda").
"""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path

import numpy as np

from motordecode.devices import resolve_device
from motordecode.errors import ConfigError
from motordecode.fileio import atomic_write_path
from motordecode.notices import collecting
from motordecode.provenance import describe, summary
from motordecode.recipes import get_recipe, override
from motordecode.workers import check_device, check_threads, check_workers, local_pool

DEFAULT_GRID = ((50, 2), (50, 5), (50, 10), (100, 2), (100, 5), (100, 10), (150, 5), (150, 10), (200, 5), (200, 10))
DEFAULT_RATES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
SAMPLE_MS = 4.0


def nk_points(grid=DEFAULT_GRID) -> list[tuple[str, dict]]:
    return [(f"N{n}-k{k}", {"window_ms": n * SAMPLE_MS, "n_sub": k}) for n, k in grid]


def prune_points(rates=DEFAULT_RATES) -> list[tuple[str, dict]]:
    return [(f"prune{r:g}", {"prune_rate": float(r)}) for r in rates]


DEFAULT_THETAS = (0.0, 0.05, 0.1, 0.2, 0.3)


def delta_points(thetas=DEFAULT_THETAS, rates=None) -> list[tuple[str, dict]]:
    """Thresholds Theta_x = Theta_u = Theta_h, at the recipe's pruning rate or at each of ``rates``."""
    same = lambda t: {"theta_x": float(t), "theta_u": float(t), "theta_h": float(t)}  # noqa: E731
    if rates is None:
        return [(f"theta{t:g}", same(t)) for t in thetas]
    return [(f"theta{t:g}-prune{r:g}", {**same(t), "prune_rate": float(r)}) for r in rates for t in thetas]


SWEEPS = {"nk": ("aegru", nk_points), "prune": ("aegru", prune_points), "delta": ("deltagru", delta_points)}
REFERENCES = {"delta": "aegru-pruned"}  # trained beside the sweep's points, as its reference


def parse_grid(text: str) -> list[tuple[int, int]]:
    """'100x5,200x10' -> [(100, 5), (200, 10)]."""
    try:
        return [tuple(int(v) for v in item.split("x")) for item in text.split(",") if item]
    except ValueError:
        raise ConfigError(f"the (N, k) grid expects NxK pairs like 100x5,200x10, got {text!r}.") from None


def parse_list(text: str, what: str, kind=float) -> list:
    """'0,0.5,0.9' -> [0.0, 0.5, 0.9] (``kind=int`` for seeds: '1.5' is refused, not truncated)."""
    try:
        return [kind(v) for v in text.split(",") if v]
    except ValueError:
        noun = "integers" if kind is int else "numbers"
        raise ConfigError(f"{what} expects comma-separated {noun}, got {text!r}.") from None


def _run_point(job: dict) -> dict:
    from motordecode.reproduce import finished_or_trained, placed

    return finished_or_trained(placed(job))[0]


def run_sweep(kind: str, data: str | os.PathLike, out: str | os.PathLike, *, seeds=(0,), workers: int = 2,
              points: list[tuple[str, dict]] | None = None, settings: list[str] | None = None,
              log=print, threads_per_worker: int | str = 1, device="auto") -> list[dict]:
    """Train every (point, seed) in ``workers`` processes of ``threads_per_worker`` threads (1, or
    "share") on ``device`` ("auto", "cpu", "cuda": worker k on GPU k mod n_gpus, "cuda:N"; see
    :mod:`motordecode.workers`); returns one summary row per point (mean and std over seeds)."""
    workers = check_workers(workers)
    with collecting():  # the oversubscription warning, one line
        threads, device = check_threads(threads_per_worker, workers), check_device(device)
    if kind not in SWEEPS:
        raise ConfigError(f"unknown sweep {kind!r}; choose from {', '.join(SWEEPS)}.")
    recipe_name, default_points = SWEEPS[kind]
    base = override(get_recipe(recipe_name), settings or [])
    points = points or default_points()
    if not Path(data).is_file():
        raise ConfigError(f"data file {data} does not exist.")
    recipes = {label: override(base, changes) for label, changes in points}  # validates every point first
    if kind in REFERENCES:
        reference = get_recipe(REFERENCES[kind])
        known = {f.name for f in fields(reference)}
        recipes[reference.name] = override(reference, [s for s in settings or [] if s.split("=")[0].strip() in known])
    jobs = [{"label": label, "seed": int(seed), "recipe": recipes[label].to_dict(), "data": str(data),
             "out": str(Path(out) / f"{label}-seed{seed}"), "threads": threads, "device": device}
            for label in recipes for seed in seeds]
    log(f"sweep {kind}: {len(points)} points x {len(seeds)} seeds = {len(jobs)} runs on {workers} workers -> {out}")
    results = {}
    with local_pool(workers, threads) as pool:
        futures = {pool.submit(_run_point, job): job for job in jobs}
        for future in futures:
            job = futures[future]
            results[(job["label"], job["seed"])] = future.result()
            row = results[(job["label"], job["seed"])]
            other = f" (stateful {row['stateful']['r2']:.3f})" if "stateful" in row else ""
            log(f"  {job['label']} seed {job['seed']}: R2 {row['r2']:.3f}{other}, "
                f"{row['effective_macs']:.0f} effective MACs")
    rows = [_summary(label, [results[(label, s)] for s in seeds]) for label in recipes]
    write_sweep(out, kind, rows, summary([r.get("provenance") for r in results.values()]))
    return rows


def _summary(label: str, runs: list[dict]) -> dict:
    def stat(get):
        values = np.array([get(r) for r in runs], dtype=np.float64)
        return float(values.mean()), float(values.std())
    row = {"point": label, "recipe": runs[0]["recipe"], "seeds": [r["seed"] for r in runs]}
    row["r2"], row["r2_std"] = stat(lambda r: r["r2"])
    for key in ("effective_macs", "dense_ops", "connection_sparsity", "footprint_bytes", "deployed_footprint_bytes"):
        row[key] = stat(lambda r: r[key])[0]
    if "stateful" in runs[0]:
        row["stateful_r2"], row["stateful_r2_std"] = stat(lambda r: r["stateful"]["r2"])
        row["stateful_effective_macs"] = stat(lambda r: r["stateful"]["effective_macs"])[0]
    row["window_ms"] = runs[0]["window"]["window_ms"]
    return row


def sweep_table(rows: list[dict]) -> str:
    """R2 (mean ± std over seeds) and effective MACs of the published mode, and of the stateful
    mode where the recipe has one."""
    lines = ["| point | window (ms) | R2 | eff. MACs | R2 stateful | eff. MACs stateful | "
             "conn. sparsity | deployed (B) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        stateful = (f"{r['stateful_r2']:.3f} ± {r['stateful_r2_std']:.3f} | {r['stateful_effective_macs']:.0f}"
                    if "stateful_r2" in r else "- | -")
        lines.append(f"| {r['point']} | {r['window_ms']:.0f} | {r['r2']:.3f} ± {r['r2_std']:.3f} | {r['effective_macs']:.0f} | "
                     f"{stateful} | {r['connection_sparsity']:.3f} | {r['deployed_footprint_bytes']:.0f} |")
    return "\n".join(lines)


def write_sweep(out: str | os.PathLike, kind: str, rows: list[dict], record: dict | None = None) -> None:
    """sweep.json, sweep.md and sweep.png; ``record``: the runs' provenance (:func:`summary`), in
    sweep.json and the figure's footer."""
    from motordecode.report.plots import plot_tradeoff

    out = Path(out)
    with atomic_write_path(out / "sweep.json") as tmp:
        tmp.write_text(json.dumps({"sweep": kind, "rows": rows, "provenance": record}, indent=2) + "\n")
    with atomic_write_path(out / "sweep.md") as tmp:
        tmp.write_text(sweep_table(rows) + "\n")
    stateful = [{**r, "r2": r["stateful_r2"], "effective_macs": r["stateful_effective_macs"]}
                for r in rows if "stateful_r2" in r]
    if kind in REFERENCES:
        reference = [r for r in rows if r["point"] == REFERENCES[kind]]
        series = {SWEEPS[kind][0]: [r for r in rows if r["point"] != REFERENCES[kind]],
                  f"{REFERENCES[kind]} windowed": reference, f"{REFERENCES[kind]} stateful": stateful}
    else:
        series = {"windowed": rows, "stateful": stateful}
    plot_tradeoff(out / "sweep.png", series, label_key="point",
                  title=f"{kind} sweep: test R2 against effective MACs per step",
                  footer=describe(record) if record else ())
