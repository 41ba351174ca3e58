"""The fused Triton kernels (lif_triton), run by Triton's interpreter on CPU tensors, equal the PyTorch
loop: spikes, outputs, final states and every gradient; and the loop-path switch (loops.choose)."""

from __future__ import annotations

import pytest
import torch

from lif_paths import active_rsnn, assert_same_run, run_on_path, tensors
from motordecode.decoders.rsnn import lif_triton, loops
from motordecode.decoders.rsnn.recipe import HEADS
from motordecode.errors import ConfigError

needs_triton = pytest.mark.skipif(not lif_triton.available(),
                                  reason="Triton is not installed (pip install motordecode[gpu]), so its "
                                         "interpreter cannot run the fused kernels")

# tinyRSNN: 64 neurons, one readout head (one tile); bigRSNN-like: 100 neurons (two tiles, the second
# ragged) and the five heads. 21 samples: a block of 16 and a partial one. Short sequences: the
# interpreter runs the kernels in numpy.
SHAPES = {"tiny": (64, HEADS["tiny"]), "big": (100, HEADS["big"])}


@needs_triton
@pytest.mark.parametrize("shape,dropout", [("tiny", 0.0), ("tiny", 0.3), ("big", 0.3)])  # big: dropout's masks too
def test_triton_kernels_equal_the_pytorch_loop(monkeypatch, shape, dropout):
    hidden, heads = SHAPES[shape]
    model = active_rsnn(hidden, heads, dropout=dropout)
    model.train()
    x = (torch.rand(21, 30, 20, generator=torch.Generator().manual_seed(2)) < 0.2).float()
    fused = run_on_path(monkeypatch, "triton", model, x)
    reference = run_on_path(monkeypatch, "torch", model, x)
    rate = (fused[1] > 0).float().mean()
    assert 0.01 < rate < 0.5, rate
    if dropout:
        assert fused[1].unique().tolist() == [0.0, pytest.approx(1 / 0.7)]
    assert_same_run(fused, reference)


@needs_triton
def test_triton_kernels_without_gradients(monkeypatch):
    """Inference (no stored history) gives the training pass's outputs and states."""
    model = active_rsnn(*SHAPES["tiny"]).eval()
    x = (torch.rand(5, 30, 20, generator=torch.Generator().manual_seed(3)) < 0.2).float()
    with torch.no_grad(), monkeypatch.context() as patch:
        patch.setattr(loops, "choose", lambda *tensors: "triton")
        y, state, spikes = model.sequence(x)
        patch.setattr(loops, "choose", lambda *tensors: "torch")
        y_ref, state_ref, spikes_ref = model.sequence(x)
    assert torch.equal(spikes, spikes_ref)
    assert torch.allclose(y, y_ref, rtol=1e-5, atol=1e-6)
    for got, want in zip(tensors(state), tensors(state_ref), strict=True):
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-6)


def test_loop_path_switch(monkeypatch):
    cpu32, cpu16 = torch.zeros(2), torch.zeros(2, dtype=torch.float16)
    monkeypatch.delenv(loops.VARIABLE, raising=False)
    assert loops.choose(cpu32) == "numba" and loops.choose(cpu16) == "torch"
    monkeypatch.setenv(loops.VARIABLE, "torch")
    assert loops.choose(cpu32) == "torch"
    monkeypatch.setenv(loops.VARIABLE, "fused")
    assert loops.choose(cpu32) == "numba"
    with pytest.raises(ConfigError, match="no fused loop runs cpu torch.float16"):
        loops.choose(cpu16)
    monkeypatch.setenv(loops.VARIABLE, "fast")
    with pytest.raises(ConfigError, match="not one of auto, fused, torch"):
        loops.choose(cpu32)
    assert not lif_triton.usable(cpu32)  # compiled kernels take CUDA tensors only
