"""tinyRSNN training throughput: motordecode's RSNN vs the same network in snntorch, one run.

Both train the same initial weights on the same batches (binary 4 ms windows of a generated Indy
session, batch 250 x 500 steps as published, input dropout 0.3 applied where the batches are cut,
as the trainer does), spike dropout 0.3, RMSE loss + firing bounds, SMORMS3. motordecode computes the input currents of a window at once and runs the
LIF and readout loops with hand-written BPTT; the snntorch version calls its Linear layers and
snntorch neuron once per step under autograd. Reported: sample-steps per second (windows x steps).

    python benchmarks/bench_rsnn_training.py [--batches 4] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from motordecode.data.load import load_recording
from motordecode.data.synthetic import SynthConfig, write_synthetic
from motordecode.decoders.rsnn.model import RSNN, RSNNConfig
from motordecode.decoders.rsnn.snntorch_twin import SnnTorchRSNN
from motordecode.training.losses import firing_regularisers, rmse
from motordecode.training.sequences import SequenceWindows
from motordecode.training.smorms3 import SMORMS3

CACHE = Path(__file__).resolve().parent / ".cache"


def batches(n: int, batch: int, steps: int):
    CACHE.mkdir(exist_ok=True)
    path = CACHE / "indy_rsnn_bench.mat"
    if not path.exists():
        write_synthetic(path, SynthConfig(monkey="indy", duration_s=600, seed=11))
    rec = load_recording(path, bin_width_s=0.004)
    windows = SequenceWindows(rec.spikes, rec.velocity / rec.velocity.std(0), np.arange(rec.n_samples), steps, 20)
    rng = np.random.default_rng(0)
    it = windows.batches(batch, rng, dropout=0.3)  # input dropout where batches are cut, for both
    return [next(it) for _ in range(n)], rec


def train(model, forward, data) -> float:
    opt = SMORMS3(model.parameters(), lr=2e-3)
    model.train()
    start = time.perf_counter()
    for x, y in data:
        pred, spikes = forward(x)
        loss = rmse(pred, y) + firing_regularisers(spikes, 100.0, 1e-3, 0.01, 10.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data, rec = batches(args.batches + 1, args.batch_size, args.steps)
    torch.manual_seed(0)
    ours = RSNN(RSNNConfig(rec.n_channels, 64, dropout=0.3))
    ours.lif.input_dropout = 0.0
    theirs = SnnTorchRSNN.from_rsnn(ours)
    theirs.input_dropout.p = 0.0

    def ours_forward(x):
        pred, _, spikes = ours.sequence(x)
        return pred, spikes

    def theirs_forward(x):
        theirs.reset()
        spikes, preds = [], []
        for t in range(x.shape[1]):
            preds.append(theirs.step(x[:, t]))
            spikes.append(theirs.state[1])
        return torch.stack(preds, 1), torch.stack(spikes, 1)

    train(ours, ours_forward, data[:1])  # warm-up
    train(theirs, theirs_forward, data[:1])
    t_ours = train(ours, ours_forward, data[1:])
    t_theirs = train(theirs, theirs_forward, data[1:])
    sample_steps = args.batches * args.batch_size * args.steps
    r_ours, r_theirs = sample_steps / t_ours, sample_steps / t_theirs
    print(f"tinyRSNN training, {args.batches} batches of {args.batch_size} x {args.steps} steps, "
          f"{rec.n_channels} channels, {args.threads} thread(s)")
    print(f"  motordecode RSNN : {t_ours:7.2f} s  {r_ours:10,.0f} sample-steps/s")
    print(f"  snntorch         : {t_theirs:7.2f} s  {r_theirs:10,.0f} sample-steps/s")
    print(f"  ratio            : {r_ours / r_theirs:.2f}x")


if __name__ == "__main__":
    main()
