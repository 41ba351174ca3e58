"""The published NeuroBench baseline weights (../shared/reference/weights/neurobench/).

- ``2D_ANN_Weight/<session>_model_state_dict.pth``, ``3D_ANN_Weight/...``, ``SNN3_Weight/...``:
  state dicts with the module names of :mod:`motordecode.decoders.neurobench.models`;
- ``SNN2_<session>.pt``: ``{"epoch": int, "model_state_dict": state dict}``.

The files were saved from GPU tensors and load on the CPU. The channel count comes from fc1
(ANN3D: its 7C inputs); the models use the 4 ms defaults (50-sample buffer, 7 bins).
"""

from __future__ import annotations

import os

from torch import nn

from motordecode.errors import ConfigError
from motordecode.decoders.neurobench.models import BaselineConfig, build_baseline
from motordecode.training.state_files import read_state_dict


def load_neurobench_checkpoint(kind: str, path: str | os.PathLike) -> nn.Module:
    state = read_state_dict(path)
    state = state.get("model_state_dict", state)
    weight = state.get("fc1.weight")
    if weight is None or weight.dim() != 2:
        raise ConfigError(f"{path}: not a NeuroBench {kind} checkpoint (no 2-D fc1.weight).")
    inputs = weight.shape[1]
    bins = 7
    if kind == "ann3d" and inputs % bins:
        raise ConfigError(f"{path}: fc1 has {inputs} inputs, not 7 bins x channels; is it an ann3d file?")
    channels = inputs // bins if kind == "ann3d" else inputs
    model = build_baseline(BaselineConfig(kind, channels))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ConfigError(f"{path}: does not match the {kind} network ({str(exc).splitlines()[0]}).") from None
    return model.eval()
