"""A pre-trained network as a run of its own: trained once on a monkey's sessions, it is the
starting point of every fine-tuning on them (the RSNN repository's schedule).

    PRE_DIR/config.json       recipe, seed, the pre-training files ("data"), channels, outputs, step
    PRE_DIR/train_state.pt    the per-epoch checkpoint (an interrupted pre-training resumes)
    PRE_DIR/pretrained.pt     the network's weights, written atomically when it is finished

``motordecode train`` pre-trains into RUN_DIR/pretrain; ``motordecode reproduce`` pre-trains once
per (recipe, monkey, seed) under OUT/pretrain and gives the file to that monkey's cells.

A family trains its pre-trained network with its own trainer on :func:`pooled` recordings (the
RSNN has a pre-trainer of its own): ``pretrain_epochs`` epochs, no pruning or quantisation, and
the network is kept before its label scale is folded in, so a fine-tuning starts from it as from
its own initialisation. Only the decoding network is kept (AEGRU's autoencoder branch, which
shapes training only, starts afresh in each fine-tuning).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from motordecode.decoders.registry import family_of
from motordecode.errors import ConfigError, DataFormatError
from motordecode.fileio import atomic_write_path
from motordecode.runs import CONFIG_FILE, start_run
from motordecode.training.state_files import read_checkpoint

PRETRAINED_FILE = "pretrained.pt"


def pretrain_run(recipe, files: list, *, seed: int, out: str | os.PathLike, progress: bool = False,
                 threads: int | None = None, heldout: str = "include", loaded: dict | None = None,
                 device="auto") -> Path:
    """PRE_DIR/pretrained.pt for ``recipe`` pre-trained on ``files`` with ``seed``: read when it
    exists, else trained (resuming a started pre-training). ``loaded``: {resolved path: recording}
    already in memory."""
    from motordecode.pipeline import _cpu_only_stand_in, load_for_recipe

    _cpu_only_stand_in(device)
    out = Path(out)
    path = out / PRETRAINED_FILE
    files = [Path(f).resolve() for f in files]
    if path.is_file():
        _check_same(path, recipe, files, seed)
        return path
    loaded = loaded or {}
    recordings = [loaded[f] if f in loaded else load_for_recipe(f, recipe, heldout) for f in files]
    first = check_compatible(recordings)
    trainer = family_of(recipe).pretrainer(recipe, recordings, seed=seed, run_dir=out, progress=progress,
                                           threads=threads)  # built (and checked) before PRE_DIR is written
    config = {"kind": "pretraining", "recipe": recipe.to_dict(), "data": [str(f) for f in files], "seed": int(seed),
              "n_channels": first.n_channels, "n_outputs": int(first.velocity.shape[1]), "step_s": first.step_s,
              "heldout": heldout}
    resume = (out / CONFIG_FILE).is_file()
    start_run(out, config, resume, occupied_hint="it is not a pre-training of these files",
              occupied_setting=None)
    started = time.perf_counter()
    result = trainer.fit(resume=resume)
    blob = {"state_dict": result.model.state_dict(), "files": config["data"], "seed": int(seed),
            "recipe": recipe.name, "recipe_config": recipe.to_dict(), "val_r2": result.val_r2,
            "history": result.history, "train_s": time.perf_counter() - started}
    with atomic_write_path(path) as tmp:
        torch.save(blob, tmp)
    return path


def _check_same(path: Path, recipe, files: list, seed: int) -> None:
    """A finished pre-training is reused only for the same recipe settings, files and seed."""
    blob = read_pretrained(path, files)
    if blob.get("recipe_config") != recipe.to_dict() or blob.get("seed") != int(seed):
        raise ConfigError(f"{path} holds a pre-training with other recipe settings or another seed; remove "
                          f"{path.parent} or write elsewhere.")


def read_pretrained(path: str | os.PathLike, files: list) -> dict:
    """The pre-trained network saved at ``path`` (state_dict, files, seed, val_r2, history,
    train_s); an error when it was pre-trained on other files than ``files``."""
    path = Path(path)
    if path.is_dir():
        path = path / PRETRAINED_FILE
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; a pre-training writes it when it finishes.")
    blob = read_checkpoint(path, "pre-trained network", f"remove {path} to pre-train again")
    try:
        saved = [str(f) for f in blob["files"]]
    except (KeyError, TypeError) as exc:  # a foreign file
        raise DataFormatError(f"{path} is not a pre-trained network (no {exc} list of files).") from None
    wanted = [str(Path(f).resolve()) for f in files]
    if files and sorted(saved) != sorted(wanted):
        raise ConfigError(f"{path} was pre-trained on {', '.join(Path(f).name for f in saved)}, not on "
                          f"{', '.join(Path(f).name for f in wanted)}.")
    return blob


GAP_S = 5.0


def check_compatible(recordings: list):
    """The first recording, once every one has its channels, bin width and velocity axes."""
    if not recordings:
        raise ConfigError("pre-training needs at least one recording.")
    first = recordings[0]
    for other in recordings[1:]:
        if (other.n_channels, other.step_s, other.velocity.shape[1]) != \
                (first.n_channels, first.step_s, first.velocity.shape[1]):
            raise ConfigError(f"pre-training recording {other.name} has {other.n_channels} channels at "
                              f"{other.step_ms:g} ms; {first.name} has {first.n_channels} at {first.step_ms:g} ms.")
    return first


def pooled(recordings: list, gap_s: float = GAP_S):
    """(one recording, its split): the recordings one after another, ``gap_s`` of zero samples
    between them (in no part), so no input window reaches into another session: it sees zeros, as
    at a session's start. The train and validation parts are each recording's own (its default
    split); there is no test part."""
    from motordecode.data.recording import Recording
    from motordecode.data.splits import Split, default_split

    first = check_compatible(recordings)
    gap = int(round(gap_s / first.step_s))
    spikes, velocity, train, val, offset = [], [], [], [], 0
    for recording in recordings:
        split = default_split(recording)
        spikes += [recording.spikes, np.zeros((gap, first.n_channels), recording.spikes.dtype)]
        velocity += [recording.velocity, np.zeros((gap, first.velocity.shape[1]), recording.velocity.dtype)]
        train.append(split.train + offset)
        val.append(split.val + offset)
        offset += recording.n_samples + gap
    spikes, velocity = np.concatenate(spikes), np.concatenate(velocity)
    name = "+".join(r.name for r in recordings)
    joined = Recording(spikes=spikes, velocity=velocity, bin_width_s=first.bin_width_s, step_s=first.step_s,
                       t=np.arange(len(spikes)) * first.step_s, name=name, monkey=first.monkey)
    empty = np.zeros(0, dtype=np.int64)
    return joined, Split(np.concatenate(train).astype(np.int64), np.concatenate(val).astype(np.int64), empty)


def pretraining_recipe(recipe):
    """The recipe a family's own trainer pre-trains with: ``pretrain_epochs`` epochs, no pruning."""
    from dataclasses import fields

    from motordecode.recipes import override

    names = {f.name for f in fields(recipe)}
    changes = {"epochs": recipe.pretrain_epochs, "pretrain_epochs": 0}
    if "prune_rate" in names:
        changes["prune_rate"] = 0.0
    if "anneal_epochs" in names:  # the delta GRU reaches its full thresholds within the pre-training
        changes["anneal_epochs"] = min(recipe.anneal_epochs, recipe.pretrain_epochs)
    return override(recipe, changes)
