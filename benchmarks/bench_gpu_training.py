"""Training cost per batch of every trainable recipe: CPU and CUDA side by side in one run.

One batch = forward + backward + optimiser step of the recipe's network (``family.build``) on a
batch of the recipe's size cut from a generated Indy session (96 channels, 4 ms samples):

- gru, aegru, aegru-pruned: ``batch_size`` windows of ``window_ms`` (B, T, C);
- deltagru: ``batch_size`` parallel streams over one ``tbptt_ms`` chunk (B, T, C), its loss the trainer's
  (``delta_kernels.chunk_loss``: the fused loops on the CPU, the model's PyTorch loop elsewhere);
- tinyrsnn, bigrsnn: ``batch_size`` binary windows of ``window_ms`` (B, T, C);
- ann2d: the window's summed counts (B, C); ann3d, snn3d: its ``bins`` binned counts (B, bins, C);
- snn2: ``batch_size`` sequences of ``sequence_ms``, run time-major from a reset state.

The loss is the mean squared error of the prediction (the trainers add family terms: firing
bounds, delta penalties, autoencoder losses, which cost little), the optimiser Adam. Only the network
and the batch move to the device (``.to(device)``). On CUDA the RSNNs run twice: with the fused
Triton kernels (the default where Triton is importable) and with the PyTorch step loop
(``MOTORDECODE_LIF_PATH=torch``). Reported: ms per batch (median of ``--batches`` after one warm-up
batch) and the CPU / CUDA ratio.

    python benchmarks/bench_gpu_training.py [--batches 2] [--recipes tinyrsnn,gru] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from motordecode.data.load import load_recording
from motordecode.data.synthetic import SynthConfig, write_synthetic
from motordecode.decoders.registry import family_for_model
from motordecode.decoders.rsnn import lif_triton, loops
from motordecode.recipes import get_recipe

CACHE = Path(__file__).resolve().parent / ".cache"
RECIPES = ("gru", "aegru", "aegru-pruned", "deltagru", "tinyrsnn", "bigrsnn", "ann2d", "ann3d", "snn2", "snn3d")
STEP_MS = 4.0


def session():
    CACHE.mkdir(exist_ok=True)
    path = CACHE / "indy_gpu_bench.mat"
    if not path.exists():
        write_synthetic(path, SynthConfig(monkey="indy", duration_s=300, seed=11))
    return load_recording(path, bin_width_s=STEP_MS / 1000.0)


def windows(rec, count: int, length: int, rng) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` windows of ``length`` samples at random offsets: counts (B, T, C), velocity (B, T, 2)."""
    starts = rng.integers(0, rec.n_samples - length, size=count)
    index = starts[:, None] + np.arange(length)
    spikes = torch.as_tensor(np.asarray(rec.spikes, dtype=np.float32)[index])
    velocity = torch.as_tensor(np.asarray(rec.velocity, dtype=np.float32)[index])
    return spikes, velocity / velocity.std()


def batch_and_loss(recipe, rec, rng):
    """(inputs, targets, loss(model, inputs, targets)) of one training batch of ``recipe``."""
    def sequence_loss(model, x, y):
        out = model(x)
        return F.mse_loss(out[0] if isinstance(out, tuple) else out, y)

    def readout_loss(model, x, y):
        return F.mse_loss(model.readout(model.arrange(x)), y)

    def time_major_loss(model, x, y):
        model.reset()
        return F.mse_loss(model(x.transpose(0, 1)), y.transpose(0, 1))

    model_kind = recipe.model
    if model_kind in ("gru", "aegru", "rsnn"):
        x, y = windows(rec, recipe.batch_size, round(recipe.window_ms / STEP_MS), rng)
        return (x.clamp(max=1.0) if model_kind == "rsnn" else x), y, sequence_loss
    if model_kind == "deltagru":  # the trainer's chunk: fused numba loops on the CPU, the PyTorch loop on CUDA
        from motordecode.decoders.delta.delta_kernels import chunk_loss

        x, y = windows(rec, recipe.batch_size, round(recipe.tbptt_ms / STEP_MS), rng)
        return x, y, lambda model, x, y: chunk_loss(model, x, y, None, recipe.delta_penalty)[1]
    if model_kind == "snn2":
        x, y = windows(rec, recipe.batch_size, recipe.sequence_samples(STEP_MS), rng)
        return x, y, time_major_loss
    x, y = windows(rec, recipe.batch_size, recipe.window_samples(STEP_MS), rng)
    if model_kind == "ann2d":
        return x.sum(dim=1), y[:, -1], readout_loss
    binned = torch.stack([part.sum(dim=1) for part in x.tensor_split(recipe.bins, dim=1)], dim=1)
    return binned, y[:, -1], readout_loss


@contextmanager
def lif_path(value: str | None):
    """Set MOTORDECODE_LIF_PATH for the duration (None: leave it as it is)."""
    before = os.environ.get(loops.VARIABLE)
    if value is not None:
        os.environ[loops.VARIABLE] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(loops.VARIABLE, None)
        else:
            os.environ[loops.VARIABLE] = before


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_batches(name: str, rec, device: torch.device, batches: int) -> float:
    """Median ms per batch (forward + backward + Adam step) after one warm-up batch."""
    recipe = get_recipe(name)
    torch.manual_seed(0)
    model = family_for_model(recipe.model).build(recipe, rec.n_channels, 2, STEP_MS).to(device).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    times = []
    for index in range(batches + 1):
        x, y, loss_of = batch_and_loss(recipe, rec, rng)
        x, y = x.to(device), y.to(device)
        sync(device)
        start = time.perf_counter()
        loss = loss_of(model, x, y)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        sync(device)
        if index:  # the first batch compiles (numba, Triton) and warms the allocator
            times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=2, help="timed batches per recipe and device")
    parser.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated recipe names")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.recipes.split(",") if n.strip()]
    rec = session()
    cuda = torch.device("cuda:0") if torch.cuda.is_available() else None
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, CPU threads {torch.get_num_threads()}, "
          f"GPU: {torch.cuda.get_device_name(0) if cuda else 'none'}, Triton: "
          f"{'yes' if lif_triton.available() else 'no'}; median of {args.batches} batches after a warm-up")
    if cuda is None:
        print("no CUDA device here: the CPU half only")
    print(f"{'recipe':<14}{'CPU ms':>10}{'CUDA ms':>10}{'CPU/CUDA':>10}{'CUDA torch-loop ms':>20}{'loop/fused':>12}")
    for name in names:
        is_rsnn = get_recipe(name).model == "rsnn"
        cpu_ms = time_batches(name, rec, torch.device("cpu"), args.batches)
        row = f"{name:<14}{cpu_ms:>10.1f}"
        if cuda is not None:
            cuda_ms = time_batches(name, rec, cuda, args.batches)
            row += f"{cuda_ms:>10.1f}{cpu_ms / cuda_ms:>10.1f}"
            if is_rsnn:
                with lif_path("torch"):
                    loop_ms = time_batches(name, rec, cuda, args.batches)
                row += f"{loop_ms:>20.1f}{loop_ms / cuda_ms:>12.1f}"
        print(row, flush=True)


if __name__ == "__main__":
    main()
