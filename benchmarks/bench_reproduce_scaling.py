"""Scaling of `motordecode reproduce`: the same synthetic grid on 1 and 2 workers, through the local
process pool and through a loopback Dask cluster, side by side in one run.

The grid: one recipe (default ann2d, 40 epochs) on the six generated sessions x 2 seeds,
each run trained from scratch in a fresh directory. Reported: wall time per configuration, the
speed-up of 2 workers over 1 for each executor, Dask's extra time per cell against the local pool
(same workers, cluster start included), and the cost of a re-run in which every cell is already
finished (reading the cells: the per-cell overhead of each executor with no training at all).

    python benchmarks/bench_reproduce_scaling.py [--recipe ann2d] [--set epochs=40 ...] [--duration 120]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from motordecode.reproduce import reproduce, synthetic_sessions


def cpu_seconds() -> float:
    """CPU time of this process and of its finished child processes (the pool's or the cluster's)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(out: Path, sessions: dict, args, workers: int, executor: str) -> tuple[float, int, float]:
    """(wall seconds, cells, cores busy on average)."""
    started, cpu = time.perf_counter(), cpu_seconds()
    outcomes = reproduce(out, recipes=[args.recipe], seeds=list(range(args.seeds)), sessions=sessions,
                         settings=args.set, workers=workers, executor=executor, log=lambda *_: None)
    failed = [o for o in outcomes if o["status"] == "failed"]
    if failed:
        raise SystemExit(f"{len(failed)} cells failed: {failed[0]['error']}")
    wall = time.perf_counter() - started
    return wall, len(outcomes), (cpu_seconds() - cpu) / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="ann2d")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="recipe settings (default: epochs=40)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds per generated session")
    args = parser.parse_args()
    args.set = args.set or ["epochs=40"]
    root = Path(tempfile.mkdtemp(prefix="md-scaling-"))
    try:
        sessions = synthetic_sessions(root, args.duration)
        times, rereads, busy = {}, {}, {}
        for executor in ("local", "dask"):
            for workers in (1, 2):
                out = root / f"{executor}-{workers}"
                times[executor, workers], cells, busy[executor, workers] = timed(out, sessions, args, workers, executor)
                rereads[executor, workers], _, _ = timed(out, sessions, args, workers, executor)
                print(f"{executor:5s} {workers} worker(s): {times[executor, workers]:6.1f} s for {cells} cells, "
                      f"{busy[executor, workers]:.2f} cores busy on average; re-run with every cell finished "
                      f"{rereads[executor, workers]:5.1f} s", flush=True)
        print(f"\n{args.recipe} ({', '.join(args.set)}), {len(sessions)} sessions of {args.duration:g} s x {args.seeds} "
              f"seeds = {cells} cells")
        print("| executor | 1 worker | 2 workers | speed-up | cores busy, 1 / 2 workers |\n|---|---|---|---|---|")
        for executor in ("local", "dask"):
            one, two = times[executor, 1], times[executor, 2]
            print(f"| {executor} | {one:.1f} s | {two:.1f} s | **{one / two:.2f}x** | "
                  f"{busy[executor, 1]:.2f} / {busy[executor, 2]:.2f} |")
        for workers in (1, 2):
            extra = (times["dask", workers] - times["local", workers]) * workers / cells
            reread = (rereads["dask", workers] - rereads["local", workers]) / cells
            print(f"Dask against the local pool, {workers} worker(s): {extra:+.2f} s per cell of training "
                  f"(cluster start included); {reread:+.2f} s per finished cell re-read")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
