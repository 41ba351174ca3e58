"""Published tinyRSNN checkpoints (stork state dicts) as the project's :class:`RSNN`.

Key mapping (stork -> project). stork stores the time-constant parameters of a neuron group once
per group and again under every connection that touches the group (``conN.src`` / ``conN.dst``) and,
for the readout, under ``output_group``; all copies must be equal and are loaded once.

    con1.op.weight                      -> lif.input.weight          (H, C)
    con2.op.weight                      -> lif.recurrent.weight      (H, H)
    con3.op.weight                      -> readout.fc.weight         (2, H)
    group2.mem_param / syn_param        -> lif.mem_param / syn_param (H,)
      copies: con1.dst.*, con2.src.*, con2.dst.*, con3.src.*
    group3.mem_param_readout / syn_...  -> readout.mem_param / syn_param (2,)
      copies: con3.dst.*, output_group.*

The nominal time constants are those the checkpoints were trained with (RSNN repository
configuration): hidden tau_mem 20 ms, tau_syn 10 ms; readout tau_syn 10 ms, tau_mem 50 ms; dt 4 ms.
The weights keep their stored dtype (float16 for the published files).
"""

from __future__ import annotations

import os

import torch

from motordecode.errors import ConfigError
from motordecode.decoders.rsnn.model import RSNN, RSNNConfig
from motordecode.decoders.rsnn.recipe import HEADS
from motordecode.training.state_files import read_state_dict

WEIGHTS = {"con1.op.weight": "lif.input.weight", "con2.op.weight": "lif.recurrent.weight",
           "con3.op.weight": "readout.fc.weight"}
GROUPS = {
    "lif": ("group2", "", ("con1.dst", "con2.src", "con2.dst", "con3.src")),
    "readout": ("group3", "_readout", ("con3.dst", "output_group")),
}


def _time_constant_params(state: dict, source: str) -> dict:
    out = {}
    for target, (group, suffix, copies) in GROUPS.items():
        for kind in ("mem", "syn"):
            key = f"{group}.{kind}_param{suffix}"
            if key not in state:
                raise ConfigError(f"{source}: not a tinyRSNN checkpoint (missing {key}).")
            for copy in copies:
                other = state.get(f"{copy}.{kind}_param{suffix}")
                if other is not None and not torch.equal(other, state[key]):
                    raise ConfigError(f"{source}: {copy}.{kind}_param{suffix} differs from {key}; "
                                      "the checkpoint is inconsistent.")
            out[f"{target}.{kind}_param"] = state[key]
    return out


def rsnn_from_stork_state(state: dict, source: str = "checkpoint", dt_ms: float = 4.0) -> RSNN:
    """Build the project's tinyRSNN from a stork state dict (see the module docstring)."""
    missing = [k for k in WEIGHTS if k not in state]
    if missing:
        raise ConfigError(f"{source}: not a tinyRSNN checkpoint (missing {', '.join(missing)}).")
    w_in, w_rec, w_out = (state[k] for k in WEIGHTS)
    hidden, channels = w_in.shape
    if w_rec.shape != (hidden, hidden) or w_out.shape[1] != hidden:
        raise ConfigError(f"{source}: inconsistent shapes {tuple(w_in.shape)}, {tuple(w_rec.shape)}, "
                          f"{tuple(w_out.shape)}.")
    model = RSNN(RSNNConfig(n_channels=channels, hidden=hidden, n_outputs=w_out.shape[0],
                            readout_heads=HEADS["tiny"], dt_ms=dt_ms)).to(w_in.dtype)
    mapped = {WEIGHTS[k]: state[k] for k in WEIGHTS}
    mapped.update(_time_constant_params(state, source))
    model.load_state_dict(mapped)
    return model.eval()


def load_stork_checkpoint(path: str | os.PathLike, dt_ms: float = 4.0) -> RSNN:
    return rsnn_from_stork_state(read_state_dict(path), str(path), dt_ms)
