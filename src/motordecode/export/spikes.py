"""The hidden spikes and outputs of a spiking decoder (RSNN or SNN2) over a stream, in one pass: what
the NIR and C exports are checked against."""

from __future__ import annotations

import numpy as np
import torch


def spikes_and_outputs(model, samples: np.ndarray, recipe_name: str) -> tuple[np.ndarray, np.ndarray]:
    """(hidden spikes, outputs) of a stream of samples (T, C) from the zero state, in one pass."""
    x = torch.as_tensor(np.asarray(samples, dtype=np.float32))
    with torch.no_grad():
        if recipe_name == "snn2":
            model.reset()
            seen = {}
            handle = model.lif1.register_forward_hook(lambda m, i, o: seen.__setitem__("spikes", o))
            try:
                y = model(x.to(model.fc1.weight.dtype))
            finally:
                handle.remove()
                model.reset()
            return seen["spikes"].float().numpy(), y.float().numpy()
        y, _, spikes = model.sequence(x[None])
        return spikes[0].float().numpy(), y[0].float().numpy()
