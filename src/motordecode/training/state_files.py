"""Reading checkpoint files: on the CPU, tensors and plain values only (``weights_only=True``).

Nothing here ever falls back to an unsafe load, and no message passes on torch's advice to do so.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

from motordecode.errors import ConfigError, DataFormatError


def load_failure(exc: BaseException) -> str:
    """Why ``torch.load(..., weights_only=True)`` refused a file, in one line, without torch's
    advice to load it unsafely."""
    if isinstance(exc, pickle.UnpicklingError):
        return ("it holds Python objects besides tensors and plain values; checkpoints are read as data only, "
                "never as code")
    first = str(exc).splitlines()[0].split(". ")[0].strip() if str(exc).strip() else ""
    if not first or "weights_only" in first:
        first = type(exc).__name__
    return f"it is truncated or not a PyTorch file: {first}"


def read_checkpoint(path: str | os.PathLike, what: str = "checkpoint", todo: str = ""):
    """The object a checkpoint file holds, read with ``weights_only=True`` on the CPU;
    DataFormatError (naming ``what`` the file is, then ``todo``: what to do) when it is missing,
    truncated, not a PyTorch file or holds anything but tensors and plain values."""
    path = Path(path)
    todo = f"; {todo}" if todo else ""
    if not path.is_file():
        raise DataFormatError(f"{path}: no such {what}{todo}.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets one clear message
        raise DataFormatError(f"{path}: cannot read the {what} ({load_failure(exc)}){todo}.") from None


def read_state_dict(path: str | os.PathLike) -> dict:
    """The dict a checkpoint file holds (saved from GPU tensors too); one clear error otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets one clear message
        raise ConfigError(f"{path}: cannot read as a PyTorch state dict ({load_failure(exc)}).") from None
    if not isinstance(state, dict):
        raise ConfigError(f"{path}: expected a state dict, found {type(state).__name__}.")
    return state
