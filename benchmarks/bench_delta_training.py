"""The delta GRU's training epoch against aegru-pruned's, on the same generated 4 ms session, one run.

Three trainers with their recipes' default settings on one session (the stand-in for the first
Indy benchmark session, ``reproduce.synthetic_configs``): aegru-pruned; deltagru with its chunks
(forward, loss, BPTT) and validation stream in the fused loops (``decoders/delta/delta_kernels.py``,
the CPU path); and deltagru on the PyTorch loop that was its only path before. Each runs a warm-up
epoch, then ``--epochs`` timed epochs (the whole epoch: batches, optimiser steps, validation), in
turn, one after the other, in this process. Printed: seconds per epoch and the ratios (goal: the
fused delta epoch at most 2x aegru-pruned's).

    python benchmarks/bench_delta_training.py [--duration 300] [--epochs 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from motordecode.data.load import load_recording
from motordecode.data.splits import default_split
from motordecode.data.synthetic import write_synthetic
from motordecode.decoders.delta.delta_kernels import torch_loop
from motordecode.decoders.registry import family_of
from motordecode.recipes import get_recipe
from motordecode.reproduce import synthetic_configs

CACHE = Path(__file__).resolve().parent / ".cache"


def session(duration_s: float):
    """The generated stand-in for the first Indy session, ``duration_s`` long (cached)."""
    name, config = next((n, c) for n, c in synthetic_configs(duration_s).items() if c.monkey == "indy")
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"{name}_{duration_s:g}s.mat"
    if not path.exists():
        write_synthetic(path, config)
    return load_recording(path)


def epoch_seconds(recipe_name: str, recording, split, epochs: int, threads: int) -> list[float]:
    """Wall-clock seconds of each of ``epochs`` training epochs after one warm-up epoch."""
    recipe = get_recipe(recipe_name)
    trainer = family_of(recipe).trainer(recipe, recording, split, seed=0, progress=False, threads=threads)
    state = trainer._fresh_state()
    times = []
    for _ in range(epochs + 1):
        start = time.perf_counter()
        trainer._epoch(state)
        times.append(time.perf_counter() - start)
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of generated session")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per trainer (after a warm-up)")
    parser.add_argument("--threads", type=int, default=1, help="torch (and numba) threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    recording = session(args.duration)
    split = default_split(recording)
    aegru = epoch_seconds("aegru-pruned", recording, split, args.epochs, args.threads)
    fused = epoch_seconds("deltagru", recording, split, args.epochs, args.threads)
    with torch_loop():
        loop = epoch_seconds("deltagru", recording, split, args.epochs, args.threads)
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    print(f"{recording.name}: {recording.duration_s:g} s of {recording.step_ms:g} ms samples, {recording.n_channels} "
          f"channels, {len(split.train)} training samples; {args.threads} thread(s), torch {torch.__version__}; "
          f"mean of {args.epochs} epochs after a warm-up")
    print("| trainer | s / epoch | ratio to aegru-pruned |")
    print("|---|---|---|")
    for label, times in (("aegru-pruned", aegru), ("deltagru, fused loops", fused), ("deltagru, PyTorch loop", loop)):
        print(f"| {label} | {mean(times):.2f} | {mean(times) / mean(aegru):.2f} |")
    print(f"fused delta epoch vs the PyTorch loop: {mean(loop) / mean(fused):.1f}x faster")


if __name__ == "__main__":
    main()
