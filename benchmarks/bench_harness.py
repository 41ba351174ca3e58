"""Streaming evaluation: motordecode's harness vs neurobench 2.3.0's Benchmark.run, one run.

Same model (Linear(96 -> 32) -> GRUCell(32) -> Linear(32 -> 2)), same weights, same 20,000-step
stream of binary 4 ms bins from a generated Indy session. NeuroBench runs in the task's streaming
configuration (batch = one 4 ms step, state carried by the model); motordecode calls the model once
on the whole stream and counts operations from the recorded activity. The numbers are checked equal.

    python benchmarks/bench_harness.py [--steps 20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from neurobench_reference import SequenceDecoder, run_neurobench  # noqa: E402

from motordecode.data.load import load_reaching  # noqa: E402
from motordecode.data.synthetic import SynthConfig, write_synthetic  # noqa: E402
from motordecode.metrics.harness import evaluate_stream  # noqa: E402

CACHE = Path(__file__).resolve().parent / ".cache"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20000)
    args = parser.parse_args()
    duration = args.steps * 0.004 + 10
    path = CACHE / f"indy_harness_{int(duration)}s.mat"
    if not path.exists():
        write_synthetic(path, SynthConfig(duration_s=duration, seed=7))
    rec = load_reaching(path, 0.004)
    x = torch.from_numpy(rec.spikes[: args.steps]).float()
    y = torch.from_numpy(rec.velocity[: args.steps])
    torch.manual_seed(0)
    model = SequenceDecoder(rec.n_channels)

    start = time.perf_counter()
    row, _ = evaluate_stream(model, x, y.numpy(), neurobench_gru_slip=True)
    t_ours = time.perf_counter() - start
    model.reset()
    start = time.perf_counter()
    ref = run_neurobench(model, x, y)
    t_nb = time.perf_counter() - start

    ops = ref["SynapticOperations"]
    pairs = [("footprint", row["footprint_bytes"], ref["Footprint"]),
             ("connection sparsity", round(row["connection_sparsity"], 4), ref["ConnectionSparsity"]),
             ("R2", row["r2"], ref["R2"]), ("dense ops", row["dense_ops"], ops["Dense"]),
             ("effective MACs", row["effective_macs"], ops["Effective_MACs"]),
             ("effective ACs", row["effective_acs"], ops["Effective_ACs"])]
    print(f"stream: {args.steps} steps of 4 ms, {rec.n_channels} inputs, Linear -> GRUCell(32) -> Linear")
    print(f"{'metric':<20} {'motordecode':>14} {'neurobench':>14} {'equal (rel 1e-5)':>17}")
    for name, mine, theirs in pairs:
        equal = abs(mine - theirs) <= 1e-5 * max(abs(theirs), 1e-9)
        print(f"{name:<20} {mine:>14.6g} {theirs:>14.6g} {str(equal):>17}")
    print(f"time: neurobench {t_nb:.2f} s, motordecode {t_ours:.2f} s "
          f"(stream {row['timings']['stream_s']:.2f} s + counting {row['timings']['count_s']:.2f} s); "
          f"speed-up {t_nb / t_ours:.1f}x")


if __name__ == "__main__":
    main()
