"""Per-sample latency of the exported C ``md_step`` against the Python stream, and the sizes of code,
weights and state next to the NeuroBench and deployed footprints, in one run, one core.

Each network is built for 96 channels of 4 ms samples as its recipe deploys it (random weights,
``aegru-pruned`` pruned 50% and on the Q1.7 grid; latency does not depend on the values), turned
into the integer C decoder, compiled with ``cc -O2`` and timed per call with ``clock_gettime`` in a
C loop over the same binary samples that ``Stream.push`` decodes (200 warm-up steps first).

    python benchmarks/bench_export_latency.py [--steps 5000]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

from bench_streaming_latency import STEP_MS, deployed_model, step_times
from motordecode.api import Run
from motordecode.decoders.base import Stream
from motordecode.decoders.registry import family_of
from motordecode.export.c_build import compiler, section_sizes, state_bytes
from motordecode.export.c_export import weight_bytes, write_sources
from motordecode.export.integer_decoder import integer_decoder
from motordecode.metrics.deployed import deployed_footprint_bytes
from motordecode.metrics.footprint import footprint_bytes

TIMER_C = r"""#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "decoder.h"

static long now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000L + t.tv_nsec; }

int main(int argc, char **argv)
{
    long n = atol(argv[1]), i, warmup = 200;
    int32_t *x = malloc(sizeof(int32_t) * n * MD_CHANNELS), y[MD_OUTPUTS];
    static md_state s;
    volatile int32_t sink = 0;
    for (i = 0; i < n * MD_CHANNELS; i++) if (scanf("%d", &x[i]) != 1) return 1;
    md_init(&s);
    for (i = 0; i < warmup && i < n; i++) { md_step(&s, x + i * MD_CHANNELS, y); sink += y[0]; }
    md_init(&s);
    for (i = 0; i < n; i++) {
        long start = now();
        md_step(&s, x + i * MD_CHANNELS, y);
        printf("%ld\n", now() - start);
        sink += y[0];
    }
    return sink == 12345 ? 3 : 0;
}
"""

CASES = (("aegru-pruned", "stateful"), ("aegru-pruned", "windowed"), ("deltagru", "stream"))


def c_step_times(decoder, samples: np.ndarray, work: Path) -> np.ndarray:
    write_sources(decoder, work)
    (work / "timer.c").write_text(TIMER_C)
    binary = work / "timer"
    subprocess.run([compiler(), "-std=c99", "-O2", "-o", str(binary), str(work / "decoder.c"), str(work / "timer.c")],
                   check=True)
    text = "\n".join(" ".join(map(str, row)) for row in samples.astype(int)) + "\n"
    out = subprocess.run(["taskset", "-c", "0", str(binary), str(len(samples))], input=text, capture_output=True,
                         text=True, check=True).stdout
    return np.array(out.split(), dtype=np.float64) / 1e3  # microseconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--channels", type=int, default=96)
    args = parser.parse_args()
    torch.set_num_threads(1)
    samples = (np.random.default_rng(0).random((args.steps, args.channels)) < 0.08).astype(np.uint8)
    rows = []
    for name, mode in CASES:
        recipe, model = deployed_model(name, args.channels)
        run = Run(Path("."), recipe, model, {"step_s": STEP_MS / 1000.0})
        decoder = integer_decoder(run, mode, samples)
        with tempfile.TemporaryDirectory() as work:
            c_times = c_step_times(decoder, samples, Path(work))
            code, state = section_sizes(Path(work), Path(work))["text"], state_bytes(Path(work), Path(work))
        python_times = step_times(Stream(family_of(recipe).decoder(model, recipe, STEP_MS, mode)), samples)
        bits = {k: 8 for k in model.pruned_weights()} if getattr(recipe, "quant_bits", 0) else None
        rows.append((name, mode, python_times, c_times, weight_bytes(decoder.net), code, state,
                     footprint_bytes(model), deployed_footprint_bytes(model, bits)))
    print(f"{args.channels} channels, {args.steps} samples of {STEP_MS:g} ms, one core, torch {torch.__version__}")
    print("| recipe | mode | Python p50 (us) | Python p99 | C p50 (us) | C p99 | p99 ratio Python / C |")
    print("|---|---|---|---|---|---|---|")
    for name, mode, py, c, *_ in rows:
        print(f"| {name} | {mode} | {np.percentile(py, 50):.0f} | {np.percentile(py, 99):.0f} | "
              f"{np.percentile(c, 50):.2f} | {np.percentile(c, 99):.2f} | {np.percentile(py, 99) / np.percentile(c, 99):.0f}x |")
    print()
    print("| recipe | mode | C .text, code + const data, -Os (B) | of which weights + biases + tables (B) "
          "| C state (B) | NeuroBench footprint (B) | deployed footprint (B) |")
    print("|---|---|---|---|---|---|---|")
    for name, mode, _, _, consts, code, state, footprint, deployed in rows:
        print(f"| {name} | {mode} | {code:,} | {consts['weights']:,} + {consts['biases']:,} + {consts['tables']:,} | "
              f"{state:,} | {footprint:,} | {deployed:,} |")


if __name__ == "__main__":
    main()
