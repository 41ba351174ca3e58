"""Reading + binning + labels + split: motordecode vs neurobench 2.3.0's PrimateReaching, one run.

A generated session of real size (default 2,400 s = 600,000 bins of 4 ms, 96 channels x 5 units,
10-30 Hz per unit) in the Zenodo v7.3 layout. Both pipelines run on the same file; the arrays are
checked identical; times are the best of ``--repeat`` runs; peak memory is traced (tracemalloc
sees numpy's buffers) and compared with the size of the binned array plus the raw spike times.

    python benchmarks/bench_data_pipeline.py [--duration 2400] [--bin-ms 4,28] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from pathlib import Path

import numpy as np

from motordecode.data.load import load_reaching
from motordecode.data.read_mat import ReachingFile
from motordecode.data.splits import split_by_reaches
from motordecode.data.synthetic import SynthConfig, write_synthetic

CACHE = Path(__file__).resolve().parent / ".cache"


def ours(path: Path, bin_s: float):
    rec = load_reaching(path, bin_s)
    return rec, split_by_reaches(rec.reach_bounds, train_ratio=0.5)


def neurobench(path: Path, bin_s: float):
    from neurobench.datasets.primate_reaching import PrimateReaching
    return PrimateReaching(str(path.parent), path.name, num_steps=1, train_ratio=0.5, bin_width=bin_s,
                           download=False)


def best_time(fn, repeat: int):
    best, result = float("inf"), None
    for _ in range(repeat):
        result = None
        gc.collect()
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def peak_bytes(fn) -> int:
    gc.collect()
    tracemalloc.start()
    result = fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del result
    return peak


def raw_spike_bytes(path: Path) -> int:
    with ReachingFile(path) as f:
        return sum(times.nbytes for c in range(f.n_channels) for times in f.channel_spike_times(c))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=2400.0)
    parser.add_argument("--bin-ms", default="4,28")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    cfg = SynthConfig(monkey="indy", duration_s=args.duration, seed=0, units_per_channel=(5, 5),
                      silent_fraction=0.0, rate_hz=(10.0, 30.0))
    path = CACHE / f"indy_bench_{int(args.duration)}s.mat"
    if not path.exists():
        t = time.perf_counter()
        write_synthetic(path, cfg)
        print(f"generated {path.name} in {time.perf_counter() - t:.1f} s")
    raw = raw_spike_bytes(path)
    print(f"session: {args.duration:g} s, 96 channels x 5 units, 10-30 Hz; file {path.stat().st_size / 1e6:.0f} MB, "
          f"raw spike times {raw / 1e6:.0f} MB")
    print(f"{'bin':>6} {'neurobench s':>13} {'motordecode s':>14} {'speed-up':>9} {'identical':>10} "
          f"{'our peak MB':>12} {'NB peak MB':>11} {'binned+raw MB':>14} {'our peak/(binned+raw)':>22}")
    for bin_ms in (int(b) for b in args.bin_ms.split(",")):
        bin_s = bin_ms / 1e3
        t_nb, ref = best_time(lambda: neurobench(path, bin_s), 1)
        t_ours, (rec, split) = best_time(lambda: ours(path, bin_s), args.repeat)
        n = rec.n_samples
        same = (np.array_equal(ref.samples.numpy()[:, :n], rec.spikes.T.astype(np.float32))
                and np.array_equal(ref.labels.numpy(), rec.velocity.T)
                and all(np.array_equal(np.asarray(a), b) for a, b in
                        [(ref.ind_train, split.train), (ref.ind_val, split.val), (ref.ind_test, split.test)]))
        binned = rec.spikes.nbytes
        del ref, rec, split
        peak_ours = peak_bytes(lambda: ours(path, bin_s))
        peak_nb = peak_bytes(lambda: neurobench(path, bin_s))
        base = binned + raw  # goal: our peak < 2 x base
        print(f"{bin_ms:>4}ms {t_nb:>13.2f} {t_ours:>14.2f} {t_nb / t_ours:>8.1f}x {str(same):>10} "
              f"{peak_ours / 1e6:>12.0f} {peak_nb / 1e6:>11.0f} {base / 1e6:>14.0f} {peak_ours / base:>22.2f}")


if __name__ == "__main__":
    main()
