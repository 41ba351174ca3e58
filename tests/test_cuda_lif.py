"""On CUDA: the fused Triton kernels (compiled) equal the PyTorch loop on the same GPU, forward and
gradients, for tinyRSNN and bigRSNN sizes. Without CUDA (or Triton) every test is skipped with the reason."""

from __future__ import annotations

import pytest
import torch

from lif_paths import active_rsnn, assert_same_run, run_on_path
from motordecode.decoders.rsnn import lif_triton, loops
from motordecode.decoders.rsnn.recipe import HEADS
from motordecode.errors import ConfigError

if not torch.cuda.is_available():
    pytest.skip("no CUDA device (torch.cuda.is_available() is False), so the compiled GPU kernels cannot run",
                allow_module_level=True)
if not lif_triton.available():
    pytest.skip("Triton is not installed (pip install motordecode[gpu]), so there is no fused GPU path",
                allow_module_level=True)

# (hidden, heads, samples): the recipes' sizes; short sequences keep each comparison a few seconds
SHAPES = {"tinyrsnn": (64, HEADS["tiny"], 250), "bigrsnn": (1024, HEADS["big"], 24)}


@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_compiled_kernels_equal_the_pytorch_loop_on_cuda(monkeypatch, shape, dropout):
    monkeypatch.delenv(loops.VARIABLE, raising=False)
    hidden, heads, samples = SHAPES[shape]
    model = active_rsnn(hidden, heads, dropout=dropout).cuda().train()
    x = (torch.rand(samples, 60, 20, generator=torch.Generator().manual_seed(2)) < 0.2).float().cuda()
    chosen = []
    choose = loops.choose
    with monkeypatch.context() as patch:
        patch.setattr(loops, "choose", lambda *tensors: chosen.append(choose(*tensors)) or chosen[-1])
        fused = run_on_path(monkeypatch, None, model, x)
    assert chosen and set(chosen) == {"triton"}  # auto takes the kernels on CUDA float32
    reference = run_on_path(monkeypatch, "torch", model, x)
    assert 0.01 < (fused[1] > 0).float().mean() < 0.5
    assert_same_run(fused, reference)


def test_fused_switch_on_cuda_float64_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(loops.VARIABLE, "fused")
    with pytest.raises(ConfigError, match="no fused loop runs cuda torch.float64"):
        loops.choose(torch.zeros(2, dtype=torch.float64, device="cuda"))
