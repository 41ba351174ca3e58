"""Reading published checkpoint files: on the CPU, tensors only (``weights_only=True``)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from motordecode.errors import ConfigError


def read_state_dict(path: str | os.PathLike) -> dict:
    """The dict a checkpoint file holds (saved from GPU tensors too); one clear error otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets one clear message
        raise ConfigError(f"{path}: cannot read as a PyTorch state dict ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}).") from None
    if not isinstance(state, dict):
        raise ConfigError(f"{path}: expected a state dict, found {type(state).__name__}.")
    return state
