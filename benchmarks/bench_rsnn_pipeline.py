"""The complete tinyRSNN pipeline for one real-size session, on this machine's cores.

Three generated Indy sessions of real size (2,400 s = 600,000 bins of 4 ms each, 96 channels x 5
units, 10-30 Hz; named as the monkey's three benchmark sessions, so the default pre-training finds
them), then ``motordecode train tinyrsnn`` on the first with the published schedule unchanged:
pre-training 100 epochs on all three, fine-tuning 200 epochs, iterative per-matrix pruning from 0.40
(each candidate retrained 100 epochs, accepted when train R2 >= 0.98 x unpruned), fp16, and the test
evaluation. Printed: the wall time against the 60-minute goal (the reference implementation reports
~6 GPU hours per seed) and the time of every stage.

    python benchmarks/bench_rsnn_pipeline.py [--duration 2400] [--set pretrain_epochs=100 ...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

from motordecode.data.sessions import CATALOG, stand_in_name
from motordecode.data.synthetic import SynthConfig, write_synthetic
from motordecode.pipeline import train_run
from motordecode.recipes import get_recipe, override

CACHE = Path(__file__).resolve().parent / ".cache"
GOAL_S = 60 * 60


def sessions(duration: float) -> list[Path]:
    """Stand-ins for the monkey's benchmark sessions, generated (seed = position), named after them
    (``indy_20160622_01_synthetic``), so the default pre-training finds them."""
    folder = CACHE / f"rsnn_indy_{int(duration)}s"
    folder.mkdir(parents=True, exist_ok=True)
    names = sorted(s.name for s in CATALOG.values() if s.benchmark and s.monkey == "indy")
    paths = []
    for seed, name in enumerate(names):
        path = folder / f"{stand_in_name(name)}.mat"
        if not path.exists():
            write_synthetic(path, SynthConfig(monkey="indy", duration_s=duration, seed=seed, units_per_channel=(5, 5),
                                              silent_fraction=0.0, rate_hz=(10.0, 30.0)))
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=2400.0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="recipe override (only for trying the script; the published schedule is the default)")
    args = parser.parse_args()
    paths = sessions(args.duration)
    recipe = override(get_recipe("tinyrsnn"), args.set)
    print(f"sessions {', '.join(p.name for p in paths)}: {args.duration:g} s each; {os.cpu_count()} cores, "
          f"{torch.get_num_threads()} threads; torch {torch.__version__}")
    print(f"schedule: pre-train {recipe.pretrain_epochs}, fine-tune {recipe.epochs}, pruning from {recipe.prune_start} "
          f"(steps {recipe.prune_steps}, max {recipe.prune_max}, {recipe.prune_epochs} epochs each), fp16={recipe.half}")
    out = Path(tempfile.mkdtemp(prefix="rsnn_bench_"))
    try:
        start = time.perf_counter()
        row = train_run(recipe, paths[0], seed=0, out=out / "run", progress=False)
        wall = time.perf_counter() - start
    finally:
        shutil.rmtree(out, ignore_errors=True)
    stages, epochs = defaultdict(float), defaultdict(int)
    for entry in row["history"]:
        if "seconds" in entry:
            key = entry["stage"] + (f" {entry['rate']:.2f}" if entry["stage"] == "prune" else "")
            stages[key] += entry["seconds"]
            epochs[key] += 1
    decisions = [e for e in row["history"] if e["stage"] == "prune-decision"]
    print(f"complete pipeline: {wall:.0f} s wall ({wall / 60:.1f} min), goal {GOAL_S / 60:.0f} min -> "
          f"{wall / GOAL_S:.2f} of the budget")
    for key, seconds in stages.items():
        print(f"  {key:14s} {epochs[key]:4d} epochs  {seconds:7.0f} s  ({seconds / epochs[key]:.2f} s per epoch)")
    print(f"  other (loading, initialisation, pruning decisions, fp16, test evaluation): "
          f"{wall - sum(stages.values()):.0f} s")
    for d in decisions:
        print(f"  pruning {d['rate']:.2f}: train R2 {d['train_r2']:.4f} vs reference {d['reference_train_r2']:.4f} "
              f"-> {'accepted' if d['accepted'] else 'rejected'}")
    print(f"  test R2 {row['r2']:.3f}; connection sparsity {row['connection_sparsity']:.3f}; activation sparsity "
          f"{row['activation_sparsity']:.4f}; footprint {row['footprint_bytes']} B; effective ACs "
          f"{row['effective_acs']:.0f} per step")


if __name__ == "__main__":
    main()
