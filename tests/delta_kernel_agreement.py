"""The check the delta kernel tests share: one truncated-BPTT chunk through the fused loops and
through the PyTorch loop (autograd through ``model(x, carried)``), on a small random chunk from a
random carried state, with thresholds at which some deltas are zero and some are not.

Run as a script (``python tests/delta_kernel_agreement.py``), it checks every case and prints one
JSON line: the SHA-256 of the fused results' bytes per case (the tests compare them across
``ATEN_CPU_CAPABILITY`` settings)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch

from motordecode.decoders.delta import delta_kernels
from motordecode.decoders.delta.cell import DeltaState
from motordecode.decoders.delta.model import DeltaConfig, DeltaGRUNet, DeltaNetState

# of the largest magnitude of each result. float64: the two paths sum in different orders, nothing
# else. float32: each path is within ~1e-7..3e-6 of the float64 results (the 60-step recursions and
# sums in float32 rounding), so they agree to 1e-5, and the fused path is within 2e-6 of float64.
TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-5}
FLOAT64_TOLERANCE = 2e-6
CASES = [(dtype, penalty) for dtype in (torch.float64, torch.float32) for penalty in (0.0, 0.3)]


def chunk(dtype, seed: int = 0, batch: int = 3, steps: int = 60, channels: int = 7, hidden: int = 6):
    """(model, x, labels, carried state): inputs that drift slowly (so some changes stay below
    Theta_x), a state carried from an earlier chunk, a label scale that is not the identity. Every
    number is drawn by numpy (PyTorch's generators vectorise by CPU capability)."""
    rng = np.random.default_rng(seed)
    model = DeltaGRUNet(DeltaConfig(channels, hidden, 2, theta_x=0.2, theta_u=0.05, theta_h=0.03))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.from_numpy(rng.uniform(-0.4, 0.4, tuple(p.shape))))
    model.set_output_scale([1.5, 0.7], [0.1, -0.2])
    model = model.to(dtype)
    cast = lambda a: torch.from_numpy(np.asarray(a)).to(dtype)  # noqa: E731
    x = cast(np.cumsum(rng.normal(0, 0.3, (batch, steps, channels)), axis=1))
    labels = cast(rng.normal(size=(batch, steps, 2)))
    state = DeltaNetState(cast(rng.normal(size=(batch, channels))), DeltaState(
        cast(rng.normal(0, 0.3, (batch, hidden))), cast(rng.normal(size=(batch, hidden))),
        cast(rng.normal(0, 0.3, (batch, hidden))), cast(rng.normal(0, 0.3, (batch, 4 * hidden)))))
    return model, x, labels, state


def run(model, x, labels, state, penalty: float, y_weight: torch.Tensor | None = None) -> dict:
    """y, L, the final state and every parameter's gradient of L (+ sum y_weight y) by
    :func:`delta_kernels.chunk_loss` on the current path."""
    model.zero_grad(set_to_none=True)
    y, loss, end = delta_kernels.chunk_loss(model, x, labels, state, penalty)
    objective = loss if y_weight is None else loss + (y * y_weight).sum()
    objective.backward()
    out = {"y": y.detach(), "loss": loss.detach(),
           **{f"state.{i}": t.detach() for i, t in enumerate((end.x_ref, *end.cell))},
           **{f"grad.{name}": p.grad.clone() for name, p in model.named_parameters()}}
    out["predict"] = delta_kernels.predict(model, x)
    return out


def both_paths(dtype, penalty: float, with_y_gradient: bool = False) -> tuple[dict, dict, dict, dict]:
    """(fused, PyTorch loop, delta counts, the PyTorch loop in float64 on the same values) on one chunk."""
    model, x, labels, state = chunk(dtype)
    y_weight = (torch.from_numpy(np.linspace(-1, 1, 2 * x.shape[1]).reshape(1, x.shape[1], 2)).to(dtype)
                if with_y_gradient else None)
    fused = run(model, x, labels, state, penalty, y_weight)
    with delta_kernels.torch_loop():
        reference = run(model, x, labels, state, penalty, y_weight)
        with torch.no_grad():
            _, _, deltas = model(x, state)
        wide = lambda t: None if t is None else t.double()  # noqa: E731
        state64 = DeltaNetState(wide(state.x_ref), DeltaState(*map(wide, state.cell)))
        truth = run(model.double(), wide(x), wide(labels), state64, penalty, wide(y_weight))
    counts = {name: (int((d != 0).sum()), d.numel()) for name, d in zip(("dx", "du", "dh"), deltas)}
    return fused, reference, counts, truth


def assert_agree(fused: dict, reference: dict, tolerance: float) -> None:
    """Every entry equal to ``tolerance`` of the largest magnitude of its kind."""
    assert fused.keys() == reference.keys()
    for key in reference:
        scale = float(reference[key].abs().max()) or 1.0
        torch.testing.assert_close(fused[key].to(reference[key].dtype), reference[key], rtol=0,
                                   atol=tolerance * scale, msg=lambda text, key=key: f"{key}: {text}")


def check(dtype, penalty: float, with_y_gradient: bool = False) -> tuple[dict, dict]:
    """Both paths agree (``TOLERANCE``), the fused one also with float64 (``FLOAT64_TOLERANCE``);
    returns (fused results, delta counts)."""
    fused, reference, counts, truth = both_paths(dtype, penalty, with_y_gradient)
    assert_agree(fused, reference, TOLERANCE[dtype])
    assert_agree(fused, truth, TOLERANCE[dtype] if dtype == torch.float64 else FLOAT64_TOLERANCE)
    return fused, counts


def digest(results: dict) -> str:
    hasher = hashlib.sha256()
    for key in sorted(results):
        hasher.update(key.encode())
        hasher.update(np.ascontiguousarray(results[key].numpy()).tobytes())
    return hasher.hexdigest()


def main() -> None:
    digests = {}
    for dtype, penalty in CASES:
        fused, _ = check(dtype, penalty, with_y_gradient=True)
        digests[f"{dtype} penalty {penalty}"] = digest(fused)
    print(json.dumps({"capability": torch.backends.cpu.get_cpu_capability(), "digests": digests}))


if __name__ == "__main__":
    main()
