"""Scaling of `motordecode reproduce`: the same synthetic grid on 1, 2, ... N workers, through the
local process pool and through a loopback Dask cluster, side by side in one run.

The grid: one recipe (default ann2d, 120 epochs: cells of 10 s or more on one core) on the six
generated sessions x enough seeds for two cells per worker at the largest count, each run trained
from scratch in a fresh directory. Every worker is pinned to ``--threads-per-worker`` threads
(default 1; :mod:`motordecode.workers`). Reported: the wall time per configuration, the speed-up
over one worker of the same executor, the cores busy on average, the mean seconds per cell, and
the cost of a re-run in which every cell is already finished (the per-cell overhead with no
training at all). ``--repeats R`` runs R interleaved rounds and keeps the fastest of each. ``--device cuda`` trains the cells on the GPUs (worker k on GPU k mod n_gpus).
The load average before and after is printed: on a shared machine the ratios are what to read.

    python benchmarks/bench_reproduce_scaling.py [--workers 1,2,4,8,16] [--executors local,dask]
        [--recipe ann2d] [--set epochs=120 ...] [--duration 120] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from motordecode.reproduce import reproduce, synthetic_sessions
from motordecode.workers import available_cores


def cpu_seconds() -> float:
    """CPU time of this process and of its finished child processes (the pool's or the cluster's)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(out: Path, sessions: dict, args, workers: int, executor: str) -> dict:
    """Wall seconds, cells, cores busy on average, mean seconds per trained cell and the devices used."""
    started, cpu = time.perf_counter(), cpu_seconds()
    outcomes = reproduce(out, recipes=[args.recipe], seeds=list(range(args.seeds)), sessions=sessions,
                         settings=args.set, workers=workers, executor=executor, log=lambda *_: None,
                         threads_per_worker=args.threads_per_worker, device=args.device)
    wall = time.perf_counter() - started
    failed = [o for o in outcomes if o["status"] == "failed"]
    if failed:
        raise SystemExit(f"{len(failed)} cells failed: {failed[0]['error']}")
    trained = [o for o in outcomes if o["status"] == "trained"]
    return {"wall": wall, "cells": len(outcomes), "busy": (cpu_seconds() - cpu) / wall,
            "cell_s": 60 * sum(o["minutes"] for o in trained) / len(trained) if trained else 0.0,
            "devices": sorted({o["ran_on"] for o in trained})}


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cores = available_cores()
    parser.add_argument("--workers", default=",".join(str(w) for w in sorted({1, *[2 ** k for k in range(1, 8)
                                                                                  if 2 ** k < cores], cores})),
                        help="worker counts, e.g. 1,2,4,8,16 (default: 1, 2, 4, ... up to the cores)")
    parser.add_argument("--executors", default="local,dask")
    parser.add_argument("--recipe", default="ann2d")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="recipe settings (default: epochs=120)")
    parser.add_argument("--seeds", type=int, default=None, help="default: 2 cells per worker at the largest count")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds per generated session")
    parser.add_argument("--threads-per-worker", default="1", help="N, or share")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--no-reread", action="store_true", help="skip the re-run of the finished grid")
    parser.add_argument("--repeats", type=int, default=1,
                        help="rounds over every configuration, interleaved; the fastest of each is reported")
    args = parser.parse_args()
    args.set = args.set or ["epochs=120"]
    counts = [int(w) for w in args.workers.split(",") if w]
    executors = [e for e in args.executors.split(",") if e]
    args.threads_per_worker = args.threads_per_worker if args.threads_per_worker == "share" \
        else int(args.threads_per_worker)
    args.seeds = args.seeds or max(2, math.ceil(2 * max(counts) / 6))
    root = Path(tempfile.mkdtemp(prefix="md-scaling-"))
    print(f"{cores} cores; load average (1/5/15 min) before: {load()}", flush=True)
    try:
        sessions = synthetic_sessions(root, args.duration)
        runs = {}
        for executor, workers in [(e, w) for _ in range(args.repeats) for e in executors for w in counts]:
            out = root / f"{executor}-{workers}"
            run = timed(out, sessions, args, workers, executor)
            if (executor, workers) not in runs or run["wall"] < runs[executor, workers]["wall"]:
                runs[executor, workers] = run
            reread = None if args.no_reread else timed(out, sessions, args, workers, executor)["wall"]
            print(f"{executor:5s} {workers:3d} worker(s): {run['wall']:7.1f} s for {run['cells']} cells "
                  f"({run['cell_s']:.1f} s per cell, on {', '.join(run['devices'])}), {run['busy']:.2f} cores busy"
                  + ("" if reread is None else f"; re-run with every cell finished {reread:.1f} s")
                  + f"; load {load()}", flush=True)
            shutil.rmtree(out, ignore_errors=True)
        cells = runs[executors[0], counts[0]]["cells"]
        print(f"\n{args.recipe} ({', '.join(args.set)}), {len(sessions)} sessions of {args.duration:g} s x "
              f"{args.seeds} seeds = {cells} cells, {args.threads_per_worker} thread(s) per worker, device {args.device}; "
              f"load average after: {load()}")
        print("| workers | " + " | ".join(f"{e} wall | {e} speed-up | {e} cores busy" for e in executors) + " |")
        print("|---|" + "---|---|---|" * len(executors))
        for workers in counts:
            cols = []
            for executor in executors:
                run, one = runs[executor, workers], runs[executor, counts[0]]
                cols.append(f"{run['wall']:.1f} s | **{one['wall'] / run['wall']:.2f}x** | {run['busy']:.2f}")
            print(f"| {workers} | " + " | ".join(cols) + " |")
        print(f"(the fastest of {args.repeats} interleaved round(s); speed-up: wall time of {counts[0]} worker(s) over "
              "that of each count, same executor)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
