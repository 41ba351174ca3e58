"""A pre-trained network as a run of its own: trained once on a monkey's sessions, it is the
starting point of every fine-tuning on them (the RSNN repository's schedule).

    PRE_DIR/config.json       recipe, seed, the pre-training files ("data"), channels, outputs, step
    PRE_DIR/train_state.pt    the per-epoch checkpoint (an interrupted pre-training resumes)
    PRE_DIR/pretrained.pt     the network's weights, written atomically when it is finished

``motordecode train`` pre-trains into RUN_DIR/pretrain; ``motordecode reproduce`` pre-trains once
per (recipe, monkey, seed) under OUT/pretrain and gives the file to that monkey's cells.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from motordecode.decoders.registry import family_of
from motordecode.errors import ConfigError, DataFormatError
from motordecode.fileio import atomic_write_path
from motordecode.runs import CONFIG_FILE, start_run

PRETRAINED_FILE = "pretrained.pt"


def pretrain_run(recipe, files: list, *, seed: int, out: str | os.PathLike, progress: bool = False,
                 threads: int | None = None, heldout: str = "include", loaded: dict | None = None) -> Path:
    """PRE_DIR/pretrained.pt for ``recipe`` pre-trained on ``files`` with ``seed``: read when it
    exists, else trained (resuming a started pre-training). ``loaded``: {resolved path: recording}
    already in memory."""
    from motordecode.pipeline import load_for_recipe

    out = Path(out)
    path = out / PRETRAINED_FILE
    if path.is_file():
        return path
    files = [Path(f).resolve() for f in files]
    loaded = loaded or {}
    recordings = [loaded[f] if f in loaded else load_for_recipe(f, recipe, heldout) for f in files]
    first = recordings[0]
    config = {"kind": "pretraining", "recipe": recipe.to_dict(), "data": [str(f) for f in files], "seed": int(seed),
              "n_channels": first.n_channels, "n_outputs": int(first.velocity.shape[1]), "step_s": first.step_s,
              "heldout": heldout}
    resume = (out / CONFIG_FILE).is_file()
    start_run(out, config, resume, occupied_hint="it is not a pre-training of these files")
    started = time.perf_counter()
    trainer = family_of(recipe).pretrainer(recipe, recordings, seed=seed, run_dir=out, progress=progress,
                                           threads=threads)
    result = trainer.fit(resume=resume)
    blob = {"state_dict": result.model.state_dict(), "files": config["data"], "seed": int(seed),
            "recipe": recipe.name, "val_r2": result.val_r2, "history": result.history,
            "train_s": time.perf_counter() - started}
    with atomic_write_path(path) as tmp:
        torch.save(blob, tmp)
    return path


def read_pretrained(path: str | os.PathLike, files: list) -> dict:
    """The pre-trained network saved at ``path`` (state_dict, files, seed, val_r2, history,
    train_s); an error when it was pre-trained on other files than ``files``."""
    path = Path(path)
    if path.is_dir():
        path = path / PRETRAINED_FILE
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; a pre-training writes it when it finishes.")
    try:
        blob = torch.load(path, weights_only=True)
        saved = [str(f) for f in blob["files"]]
    except Exception as exc:  # a truncated or foreign file
        raise DataFormatError(f"{path} is not a pre-trained network ({str(exc).splitlines()[0]}).") from None
    wanted = [str(Path(f).resolve()) for f in files]
    if files and sorted(saved) != sorted(wanted):
        raise ConfigError(f"{path} was pre-trained on {', '.join(Path(f).name for f in saved)}, not on "
                          f"{', '.join(Path(f).name for f in wanted)}.")
    return blob
