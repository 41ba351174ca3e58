"""Which implementation runs the LIF and readout loops of a call.

- ``numba``: the fused CPU loops of :mod:`~motordecode.decoders.rsnn.lif_kernels` (CPU, float32/float64);
- ``triton``: the fused GPU kernels of :mod:`~motordecode.decoders.rsnn.lif_triton` (CUDA, float32,
  Triton importable);
- ``torch``: the step-by-step PyTorch loop (any device and dtype).

The environment variable ``MOTORDECODE_LIF_PATH`` picks: ``auto`` (default) takes the first fused
loop that fits the tensors, else the PyTorch loop; ``fused`` the same, but an error where none fits;
``torch`` always the PyTorch loop (for comparisons, e.g. ``benchmarks/bench_gpu_training.py``).
"""

from __future__ import annotations

import os

import torch

from motordecode.decoders.rsnn import lif_kernels, lif_triton
from motordecode.errors import ConfigError

VARIABLE = "MOTORDECODE_LIF_PATH"
CHOICES = ("auto", "fused", "torch")


def requested() -> str:
    """The value of ``MOTORDECODE_LIF_PATH`` (``auto`` when unset); anything else is a ConfigError."""
    value = os.environ.get(VARIABLE, "auto").strip().lower() or "auto"
    if value not in CHOICES:
        raise ConfigError(f"{VARIABLE}={value!r} is not one of {', '.join(CHOICES)}; unset it or pick one.")
    return value


def choose(*tensors: torch.Tensor) -> str:
    """``numba``, ``triton`` or ``torch`` for a loop over these tensors."""
    wanted = requested()
    if wanted == "torch":
        return "torch"
    if lif_kernels.usable(*tensors):
        return "numba"
    if lif_triton.usable(*tensors):
        return "triton"
    if wanted == "fused":
        first = tensors[0]
        why = "" if lif_triton.available() else " (Triton is not installed: pip install motordecode[gpu])"
        raise ConfigError(f"{VARIABLE}=fused, but no fused loop runs {first.device.type} {first.dtype} tensors"
                          f"{why}; the fused loops take CPU float32/float64 and CUDA float32. "
                          f"Unset {VARIABLE} to use the PyTorch loop.")
    return "torch"
