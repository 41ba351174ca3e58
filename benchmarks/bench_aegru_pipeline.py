"""The full published AEGRU pipeline on a generated real-size Indy session, on this machine's cores.

50 epochs of training (batch 256, Poisson jitter, validation every epoch), global L1 pruning to 50%,
10 epochs of fine-tuning on train + validation, Q1.7 quantisation, and the evaluation of both
inference modes on the test split: the ``aegru-pruned`` recipe, unchanged. The session is the one
of the data-pipeline benchmark (2,400 s = 600,000 bins of 4 ms, 96 channels x 5 units, 10-30 Hz).

Printed side by side: the wall time against the 15-minute goal, and one training epoch with the
batches prepared on a spare core (the default) against the same epoch with everything on the main
thread.

    python benchmarks/bench_aegru_pipeline.py [--duration 2400] [--epochs 50] [--finetune-epochs 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from motordecode.data.load import load_reaching
from motordecode.data.splits import default_split
from motordecode.data.synthetic import SynthConfig, write_synthetic
from motordecode.pipeline import train_run
from motordecode.recipes import get_recipe, override
from motordecode.training import epochs as epoch_loop
from motordecode.decoders.gru.trainer import Trainer

CACHE = Path(__file__).resolve().parent / ".cache"
GOAL_S = 15 * 60


def session(duration: float) -> Path:
    path = CACHE / f"indy_bench_{int(duration)}s.mat"
    if not path.exists():
        write_synthetic(path, SynthConfig(monkey="indy", duration_s=duration, seed=0, units_per_channel=(5, 5),
                                          silent_fraction=0.0, rate_hz=(10.0, 30.0)))
    return path


def one_epoch(path: Path, prefetch: bool) -> float:
    """Training samples per second of one epoch, with or without the batch-preparing thread."""
    recording = load_reaching(path)
    split = default_split(recording)
    recipe = override(get_recipe("aegru"), {"epochs": 1})
    trainer = Trainer(recipe, recording, split, seed=0, progress=False)
    saved = epoch_loop.prefetched
    if not prefetch:
        epoch_loop.prefetched = lambda batches: batches
    try:
        start = time.perf_counter()
        trainer.fit()
        return len(trainer.train_batches) / (time.perf_counter() - start)
    finally:
        epoch_loop.prefetched = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=2400.0)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--finetune-epochs", type=int, default=10)
    args = parser.parse_args()
    path = session(args.duration)
    print(f"session {path.name}: {args.duration:g} s; {os.cpu_count()} cores; torch {torch.__version__}")

    with_thread, without = one_epoch(path, True), one_epoch(path, False)
    print(f"one epoch: {with_thread:.0f} samples/s with batches on a spare core, {without:.0f} samples/s "
          f"without -> {with_thread / without:.2f}x")

    recipe = override(get_recipe("aegru-pruned"), {"epochs": args.epochs, "finetune_epochs": args.finetune_epochs})
    out = Path(tempfile.mkdtemp(prefix="aegru_bench_"))
    try:
        start = time.perf_counter()
        row = train_run(recipe, path, seed=0, out=out / "run", progress=False)
        wall = time.perf_counter() - start
    finally:
        shutil.rmtree(out, ignore_errors=True)
    t = row["timings"]
    print(f"full pipeline ({args.epochs} epochs + pruning + {args.finetune_epochs} fine-tune epochs + Q1.7 + "
          f"evaluation of both modes): {wall:.0f} s wall ({wall / 60:.1f} min), goal {GOAL_S / 60:.0f} min -> "
          f"{wall / GOAL_S:.2f} of the budget")
    print(f"  training {t['train_s']:.0f} s at {t['train_samples_per_s']:.0f} samples/s (loading included); "
          f"test evaluation {t['stream_s'] + t['count_s']:.1f} s for the windowed mode")
    print(f"  test R2 windowed {row['r2']:.3f}, stateful {row['stateful']['r2']:.3f}; effective MACs "
          f"{row['effective_macs']:.0f} vs {row['stateful']['effective_macs']:.0f}; connection sparsity "
          f"{row['connection_sparsity']:.3f}; footprint {row['footprint_bytes']} B, deployed "
          f"{row['deployed_footprint_bytes']} B")


if __name__ == "__main__":
    main()
