"""The delta GRU against aegru-pruned (windowed and stateful), measured in one run from trained runs.

For every given run directory and every inference mode of its recipe, on its own recording's test
split: test R2, effective operations per sample (MACs + ACs, counted from the recorded activity),
NeuroBench and deployed footprints, and the streaming latency per sample on one core (``Stream.push``
over the first ``--steps`` test samples, after a warm-up). Printed side by side, with each row's
ratio to the first run's published mode.

    python benchmarks/bench_delta_vs_aegru.py RUN_DIR [RUN_DIR ...] [--steps 5000]

e.g. ``motordecode train aegru-pruned --data S.mat --out runs/a`` and ``motordecode train deltagru
--data S.mat --out runs/d``, then ``python benchmarks/bench_delta_vs_aegru.py runs/a runs/d``.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from bench_streaming_latency import step_times
from motordecode.api import load_run
from motordecode.data.splits import default_split
from motordecode.decoders.registry import family_of
from motordecode.pipeline import evaluate_model


def measure(run_dir: str, steps: int) -> list[dict]:
    """One row per inference mode of the run: accuracy, operations, footprints, latency."""
    run = load_run(run_dir)
    recording = run.load_recording(run.config["data"])
    split = default_split(recording)
    results = evaluate_model(run.model, run.recipe, recording, split, run.deployed_bits)
    samples = recording.spikes[split.test[:steps]]
    rows = []
    for mode in family_of(run.recipe).modes:
        metrics = results[mode][0]
        latency = step_times(run.stream(mode), samples)
        rows.append({"recipe": run.recipe.name, "mode": mode, "r2": metrics["r2"],
                     "ops": metrics["effective_macs"] + metrics["effective_acs"],
                     "footprint": metrics["footprint_bytes"], "deployed": metrics["deployed_footprint_bytes"],
                     "p50": float(np.percentile(latency, 50)), "p99": float(np.percentile(latency, 99)),
                     "step_ms": recording.step_ms, "session": recording.name})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="trained run directories (first: the reference)")
    parser.add_argument("--steps", type=int, default=5000, help="test samples timed per mode")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [row for run_dir in args.runs for row in measure(run_dir, args.steps)]
    ref = rows[0]
    print(f"session {ref['session']}, {ref['step_ms']:g} ms samples, 1 thread, torch {torch.__version__}; "
          f"ratios against {ref['recipe']} {ref['mode']}")
    print("| recipe | mode | test R2 | eff. ops / sample | ratio | footprint (B) | deployed (B) | ratio "
          "| p50 (us) | p99 (us) | ratio (p99) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['recipe']} | {row['mode']} | {row['r2']:.4f} | {row['ops']:,.0f} | "
              f"{row['ops'] / ref['ops']:.3f} | {row['footprint']:,} | {row['deployed']:,} | "
              f"{row['deployed'] / ref['deployed']:.3f} | {row['p50']:.0f} | {row['p99']:.0f} | "
              f"{row['p99'] / ref['p99']:.2f} |")


if __name__ == "__main__":
    main()
