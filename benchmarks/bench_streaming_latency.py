"""Streaming latency per sample on one core, for every recipe and inference mode, through ``Stream.push``.

Each recipe's network is built for 96 channels of 4 ms samples (weights random: latency does not
depend on them; ``aegru-pruned`` is pruned 50% and put on the Q1.7 grid, ``tinyrsnn`` is float16,
as the recipes leave them) and decodes a stream of binary samples one at a time: the state update,
the network and the readout. Printed side by side: p50, p99 and mean per sample, the share of the
4 ms real-time budget at p99, and the AEGRU windowed / stateful ratio.

    python benchmarks/bench_streaming_latency.py [--steps 5000] [--channels 96] [--recipes aegru-pruned,...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from motordecode.decoders.base import Stream
from motordecode.decoders.registry import family_of, recipes
from motordecode.recipes import get_recipe
from motordecode.decoders.untrained import deployed_network

STEP_MS = 4.0


def step_times(stream: Stream, samples: np.ndarray, warmup: int = 200) -> np.ndarray:
    for sample in samples[:warmup]:
        stream.push(sample)
    stream.reset()
    times = np.empty(len(samples))
    clock = time.perf_counter_ns
    for i, sample in enumerate(samples):
        start = clock()
        stream.push(sample)
        times[i] = clock() - start
    return times / 1e3  # microseconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--channels", type=int, default=96)
    parser.add_argument("--recipes", default=",".join(recipes()), help="comma-separated recipe names")
    args = parser.parse_args()
    torch.set_num_threads(1)
    samples = (np.random.default_rng(0).random((args.steps, args.channels)) < 0.08).astype(np.uint8)
    results = {}
    for name in args.recipes.split(","):
        recipe, model = deployed_network(name, args.channels, STEP_MS)
        family = family_of(recipe)
        for mode in family.modes:
            stream = Stream(family.decoder(model, recipe, STEP_MS, mode))
            results[(name, mode)] = step_times(stream, samples)
    print(f"{args.channels} channels, {args.steps} samples of {STEP_MS:g} ms, 1 thread, torch {torch.__version__}")
    print("| recipe | mode | p50 (us) | p99 (us) | mean (us) | share of the 4 ms budget at p99 |")
    print("|---|---|---|---|---|---|")
    for (name, mode), t in results.items():
        print(f"| {name} | {mode} | {np.percentile(t, 50):.0f} | {np.percentile(t, 99):.0f} | {t.mean():.0f} | "
              f"{np.percentile(t, 99) / (STEP_MS * 1000):.3f} |")
    for name in ("aegru", "aegru-pruned"):
        if (name, "windowed") in results:
            w, s = results[(name, "windowed")], results[(name, "stateful")]
            print(f"{name} windowed / stateful: p50 {np.percentile(w, 50) / np.percentile(s, 50):.2f}x, "
                  f"p99 {np.percentile(w, 99) / np.percentile(s, 99):.2f}x")


if __name__ == "__main__":
    main()
