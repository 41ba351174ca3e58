"""Streaming latency per 4 ms step on one core: the windowed decoder (as published) vs the stateful one.

An AEGRU (96 channels, pruned 50% and Q1.7, as the ``aegru-pruned`` recipe leaves it; the weights
are random, latency does not depend on them) decodes a stream of binary 4 ms samples one at a time
through ``StreamingDecoder.push``: feature update + GRU + readout. Printed side by side: p50, p99 and
the mean of the per-step time of both modes, and their ratio. The 4 ms real-time budget is the bar.

    python benchmarks/bench_streaming_latency.py [--steps 20000] [--channels 96]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from motordecode.decoders.gru.inference import StatefulInference, WindowedInference
from motordecode.models.build import build_decoder
from motordecode.recipes import get_recipe
from motordecode.training.prune import apply_masks, global_l1_masks
from motordecode.training.quantize import quantize_weights


def step_times(decoder, samples: np.ndarray, warmup: int = 200) -> np.ndarray:
    for sample in samples[:warmup]:
        decoder.push(sample)
    decoder.reset()
    times = np.empty(len(samples))
    clock = time.perf_counter_ns
    for i, sample in enumerate(samples):
        start = clock()
        decoder.push(sample)
        times[i] = clock() - start
    return times / 1e3  # microseconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--channels", type=int, default=96)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    recipe = get_recipe("aegru-pruned")
    model = build_decoder(recipe, args.channels).eval()
    apply_masks(model.pruned_weights(), global_l1_masks(model.pruned_weights(), recipe.prune_rate))
    quantize_weights(model.pruned_weights())
    samples = (np.random.default_rng(0).random((args.steps, args.channels)) < 0.08).astype(np.uint8)
    sub_width = recipe.sub_width(0.004)
    results = {}
    for inference in (WindowedInference(recipe.n_sub, sub_width), StatefulInference(sub_width)):
        results[inference.mode] = step_times(inference.stream(model, args.channels), samples)
    print(f"AEGRU, {args.channels} channels, {args.steps} steps, 1 thread, torch {torch.__version__}")
    print("| mode | p50 (us) | p99 (us) | mean (us) | share of the 4 ms budget at p99 |")
    print("|---|---|---|---|---|")
    for mode, t in results.items():
        print(f"| {mode} | {np.percentile(t, 50):.0f} | {np.percentile(t, 99):.0f} | {t.mean():.0f} | "
              f"{np.percentile(t, 99) / 4000:.3f} |")
    w, s = results["windowed"], results["stateful"]
    print(f"windowed / stateful: p50 {np.percentile(w, 50) / np.percentile(s, 50):.2f}x, "
          f"p99 {np.percentile(w, 99) / np.percentile(s, 99):.2f}x")


if __name__ == "__main__":
    main()
