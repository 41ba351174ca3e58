"""Per-sample decode latency on one core for every recipe and inference mode: the PyTorch
``Stream.push`` (the old path) and the compiled ``FastStream.push`` (the fast step path) side by
side, on the same samples in one run.

Each recipe's network is built for 96 channels of 4 ms samples with random weights in its deployed
form (``decoders/untrained.py``: ``aegru-pruned`` pruned 50% on the Q1.7 grid, ``tinyrsnn``
float16; latency does not depend on trained values) and decodes a stream of spike counts one
sample at a time. Printed: p50, p99 and mean per sample of both paths, the p99 speed-up, whether
the fast p99 meets the 100 us goal, and the largest difference between the two paths' velocities
relative to the largest velocity (0 where the float16 RSNN is emulated exactly). Last, a fixed
compiled loop as long as the slowest fast step, timed the same way: the machine's own jitter.

    python benchmarks/bench_streaming_latency.py [--steps 5000] [--channels 96] [--recipes aegru-pruned,...] [--cpu 1]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from numba import njit

from motordecode.decoders.base import Stream
from motordecode.decoders.fast import FastStream
from motordecode.decoders.registry import family_of, recipes
from motordecode.decoders.untrained import deployed_network

STEP_MS = 4.0
GOAL_US = 100.0


def step_times(stream, samples: np.ndarray, warmup: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """(microseconds per push, the velocities) over ``samples``, after ``warmup`` pushes and a reset."""
    for sample in samples[:warmup]:
        stream.push(sample)
    stream.reset()
    times, outputs = np.empty(len(samples)), []
    clock = time.perf_counter_ns
    for i, sample in enumerate(samples):
        start = clock()
        outputs.append(stream.push(sample))
        times[i] = clock() - start
    return times / 1e3, np.array(outputs)


@njit(cache=True)
def _busy(n):
    acc = 0.0
    for i in range(n):
        acc += (i % 7) * 0.5
    return acc


def machine_reference(target_us: float, steps: int) -> np.ndarray:
    """Times of a fixed compiled loop lasting about ``target_us``, timed like the steps: its spread
    above its p50 is the machine's own jitter (interrupts, the hypervisor), which no step avoids."""
    n = 1000
    _busy(n)  # compiled (or loaded) before it is calibrated
    while True:
        start = time.perf_counter_ns()
        _busy(n)
        if (time.perf_counter_ns() - start) / 1e3 >= target_us:
            break
        n = int(n * 1.5)
    times = np.empty(steps)
    for i in range(steps):
        start = time.perf_counter_ns()
        _busy(n)
        times[i] = time.perf_counter_ns() - start
    return times / 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--channels", type=int, default=96)
    parser.add_argument("--recipes", default=",".join(recipes()), help="comma-separated recipe names")
    parser.add_argument("--cpu", type=int, default=None, help="pin the process to this CPU")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    samples = ((rng.random((args.steps, args.channels)) < 0.08).astype(np.float32)
               + (rng.random((args.steps, args.channels)) < 0.01))
    rows = {}
    for name in args.recipes.split(","):
        recipe, model = deployed_network(name, args.channels, STEP_MS)
        family = family_of(recipe)
        for mode in family.modes:
            decoder = family.decoder(model, recipe, STEP_MS, mode)
            old, y_old = step_times(Stream(decoder), samples)
            new, y_new = step_times(FastStream(decoder), samples)
            rows[(name, mode)] = old, new, np.abs(y_new - y_old).max() / max(np.abs(y_old).max(), 1e-30)
    pinned = f", CPU {args.cpu}" if args.cpu is not None else ""
    print(f"{args.channels} channels, {args.steps} samples of {STEP_MS:g} ms, 1 thread{pinned}, torch {torch.__version__}")
    print("| recipe | mode | torch p50 / p99 / mean (us) | fast p50 / p99 / mean (us) | p99 speed-up | "
          f"fast p99 <= {GOAL_US:.0f} us | max diff / max velocity |")
    print("|---|---|---|---|---|---|---|")
    q = lambda t, p: np.percentile(t, p)  # noqa: E731
    for (name, mode), (old, new, diff) in rows.items():
        print(f"| {name} | {mode} | {q(old, 50):.0f} / {q(old, 99):.0f} / {old.mean():.0f} | "
              f"{q(new, 50):.1f} / {q(new, 99):.1f} / {new.mean():.1f} | {q(old, 99) / q(new, 99):.0f}x | "
              f"{'yes' if q(new, 99) <= GOAL_US else 'NO'} | {diff:.1e} |")
    worst = max(rows.items(), key=lambda item: q(item[1][1], 99))
    print(f"slowest fast p99: {worst[0][0]} {worst[0][1]}, {q(worst[1][1], 99):.1f} us")
    slowest = max(q(new, 50) for _, new, _ in rows.values())
    reference = machine_reference(slowest, args.steps)
    print(f"machine reference, a fixed compiled loop of the slowest fast p50 ({slowest:.1f} us), timed the same way: "
          f"p50 {q(reference, 50):.1f}, p99 {q(reference, 99):.1f}, p99.9 {q(reference, 99.9):.1f}, "
          f"max {reference.max():.0f} us")
    for name in ("aegru", "aegru-pruned"):
        if (name, "windowed") in rows:
            (w_old, w_new, _), (s_old, s_new, _) = rows[(name, "windowed")], rows[(name, "stateful")]
            print(f"{name} windowed / stateful p99: torch {q(w_old, 99) / q(s_old, 99):.2f}x, "
                  f"fast {q(w_new, 99) / q(s_new, 99):.2f}x")


if __name__ == "__main__":
    main()
