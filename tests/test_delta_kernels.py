"""The delta GRU's fused training loops against the PyTorch loop: one chunk (outputs, final state,
loss, every parameter gradient) in float64 and float32, with and without the delta penalty, under
two ATEN_CPU_CAPABILITY settings and two thread counts; a 2-epoch training on each path; and,
where CUDA exists, the PyTorch loop on it against the fused CPU path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from delta_kernel_agreement import CASES, assert_agree, check, chunk, digest, run
from motordecode.data.load import load_recording
from motordecode.data.splits import default_split
from motordecode.decoders.delta import delta_kernels
from motordecode.decoders.delta.cell import DeltaState
from motordecode.decoders.delta.model import DeltaNetState
from motordecode.decoders.delta.trainer import DeltaTrainer
from motordecode.recipes import get_recipe, override

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize("dtype,penalty,with_y_gradient",  # each dtype: the penalty off, then on with y's gradient
                         [(dtype, penalty, penalty > 0) for dtype, penalty in CASES])
def test_a_fused_chunk_equals_the_pytorch_loop(dtype, penalty, with_y_gradient):
    fused, counts = check(dtype, penalty, with_y_gradient)
    for name, (nonzero, total) in counts.items():  # the thresholds act: some deltas zero, some not
        assert 0 < nonzero < total, (name, nonzero, total)
    assert all(float(g.abs().max()) > 0 for key, g in fused.items() if key.startswith("grad."))


def test_the_fused_chunk_is_the_same_on_one_and_two_threads():
    threads = torch.get_num_threads()
    try:
        digests = []
        for n in (1, 2):
            torch.set_num_threads(n)
            fused, _ = check(torch.float32, 0.3, with_y_gradient=True)
            digests.append(digest(fused))
            assert torch.get_num_threads() == n  # the kernels leave PyTorch's thread count as they found it
    finally:
        torch.set_num_threads(threads)
    assert digests[0] == digests[1]


def test_the_fused_chunk_is_the_same_under_every_aten_cpu_capability():
    """The comparison in a fresh process with PyTorch's default (scalar) kernels, against this
    process's (AVX-512 on an AVX-512 machine): both agree with the PyTorch loop, and the fused
    results are identical bit for bit (they use no PyTorch kernel)."""
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default", "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    done = subprocess.run([sys.executable, str(HERE / "delta_kernel_agreement.py")], capture_output=True,
                          text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    scalar = json.loads(done.stdout.strip().splitlines()[-1])
    here = torch.backends.cpu.get_cpu_capability()
    if here == "DEFAULT":
        pytest.skip("this process runs PyTorch's default kernels too (no AVX2/AVX-512 here, or "
                    "ATEN_CPU_CAPABILITY=default is set), so only one kernel set was compared")
    assert scalar["capability"] == "DEFAULT"
    ours = {f"{dtype} penalty {penalty}": digest(check(dtype, penalty, with_y_gradient=True)[0])
            for dtype, penalty in CASES}
    assert scalar["digests"] == ours, f"default kernels against {here}"


def _two_epochs(indy_file, penalty: float):
    """A 2-epoch training (full thresholds from the first epoch, 100-step chunks, no pruning or
    quantisation) on the fused path and on the PyTorch loop."""
    recipe = override(get_recipe("deltagru"), {"epochs": 2, "anneal_epochs": 1, "tbptt_ms": 400.0, "prune_rate": 0.0,
                                               "quant_bits": 0, "delta_penalty": penalty})
    recording = load_recording(indy_file, bin_width_s=0.004)
    split = default_split(recording)
    fused = DeltaTrainer(recipe, recording, split, seed=3, progress=False, threads=1).fit()
    with delta_kernels.torch_loop():
        reference = DeltaTrainer(recipe, recording, split, seed=3, progress=False, threads=1).fit()
    return fused, reference


@pytest.mark.parametrize("penalty", [0.0, 0.01])
def test_two_epochs_on_the_fused_path_equal_the_pytorch_loop(indy_file, penalty):
    """Tolerances. The chunk gradients agree to float32 rounding (relative ~1e-7); 28 Adam steps carry
    that into the weights (O(0.1), lr 2e-3) and the losses: without the penalty, weights within 1e-5
    absolute and epoch losses within 1e-5 relative (seen: 4.2e-6 under ATEN_CPU_CAPABILITY=default,
    1.5e-6 with AVX2/AVX-512). With the penalty, whose gradient sign(D) jumps where a delta crosses
    its Theta, a crossing on one path only (the PyTorch loop's rounding depends on ATen's kernel
    set) moves the paths further apart: weights within 5e-4 and losses within 5e-5 (seen under the
    default kernels: 1.8e-4 and 1.3e-5). A wrong gradient drifts by up to 28 x lr = 0.056. Validation R2 within 1e-3: it streams ~2,400 thresholded steps, and
    a rounding difference that puts one change on the other side of its Theta flips that delta, which
    holds x^, u^ or h^ up to Theta apart until the next propagated change (seen: 3e-4 after epoch 1,
    4e-8 after epoch 2, with weights 1.5e-6 apart)."""
    fused, reference = _two_epochs(indy_file, penalty)
    weights, losses = (5e-4, 5e-5) if penalty > 0 else (1e-5, 1e-5)
    for (name, a), b in zip(reference.model.state_dict().items(), fused.model.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=0, atol=weights, msg=lambda text, name=name: f"{name}: {text}")
    for ours, theirs in zip(fused.history, reference.history):
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=losses)
        assert ours["val_r2"] == pytest.approx(theirs["val_r2"], abs=1e-3)
    assert fused.val_r2 == pytest.approx(reference.val_r2, abs=1e-3)
    assert np.isfinite(fused.val_r2) and fused.history[-1]["val_r2"] != fused.history[0]["val_r2"]


def test_a_gradient_asked_of_the_inputs_takes_the_pytorch_loop():
    model, x, labels, state = chunk(torch.float64)
    x.requires_grad_(True)
    _, loss, _ = delta_kernels.chunk_loss(model, x, labels, state, 0.0)
    loss.backward()
    assert x.grad is not None and float(x.grad.abs().max()) > 0  # the fused loops give no input gradient


def test_on_cuda_the_pytorch_loop_equals_the_fused_cpu_path():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here, so the CUDA path (the model's PyTorch loop) cannot run")
    model, x, labels, state = chunk(torch.float64)
    fused = run(model, x, labels, state, 0.3)
    device = torch.device("cuda")
    moved = DeltaNetState(state.x_ref.to(device), DeltaState(*(t.to(device) for t in state.cell)))
    on_cuda = run(model.to(device), x.to(device), labels.to(device), moved, 0.3)
    assert_agree({k: v.cpu() for k, v in on_cuda.items()}, fused, 1e-12)
