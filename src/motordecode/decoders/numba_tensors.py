"""Torch tensors handed to fused numba loops (the RSNN's and the delta GRU's training kernels).

- :func:`usable`: the loops run on CPU tensors of one dtype, float32 or float64;
- :func:`arrays`: contiguous numpy views of them, numba's parallel loops set to torch's thread count;
- :func:`torch_threads_kept`: torch's thread count kept across a kernel call. numba's OpenMP layer
  sets the OpenMP thread count that torch reads as its own, so after a first parallel kernel
  ``torch.get_num_threads()`` would report numba's pool size.
"""

from __future__ import annotations

import contextlib

import numba
import torch


def usable(*tensors: torch.Tensor) -> bool:
    """True when the fused loops can run on these tensors (CPU, float32 or float64, one dtype)."""
    dtype = tensors[0].dtype
    return dtype in (torch.float32, torch.float64) and all(t.device.type == "cpu" and t.dtype == dtype
                                                            for t in tensors)


def arrays(*tensors: torch.Tensor):
    """Contiguous numpy views (no gradient tracking) of CPU tensors; the parallel loops are set to
    use as many threads as PyTorch (``torch.set_num_threads``)."""
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
    return tuple(t.detach().contiguous().numpy() for t in tensors)


@contextlib.contextmanager
def torch_threads_kept():
    """Within the block, kernel calls leave torch's thread count as it was before."""
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
