"""The public API: load a recording, train a recipe, load a run, evaluate it, stream it.

    import motordecode as md
    rec = md.load_recording("data/indy_20170131_02.mat")
    run = md.train("aegru-pruned", "data/indy_20170131_02.mat", out="runs/indy", epochs=20)
    stream = run.stream()                   # the published inference mode; run.stream("stateful")
    fast = run.stream(fast=True)            # the same face on the compiled step path (real time)
    velocity = stream.push(rec.spikes[0])   # one bin of spike counts in, (vx, vy) out
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from motordecode.decoders.base import Stream
from motordecode.decoders.fast import FastStream
from motordecode.decoders.registry import family_of
from motordecode.recipes import get_recipe, override
from motordecode.runs import METRICS_FILE, check_recording, load_model, read_json, step_ms


@dataclass
class Run:
    """A trained run directory: its recipe, its model (eval mode), its metrics.json (empty if not
    evaluated yet) and its config.json."""

    path: Path
    recipe: object
    model: torch.nn.Module
    config: dict
    metrics: dict = field(default_factory=dict)
    deployed_bits: dict = field(default_factory=dict)

    def decoder(self, mode: str | None = None):
        """The decoder's face (``initial_state``, ``step``, ``sequence``) in ``mode``."""
        return family_of(self.recipe).decoder(self.model, self.recipe, step_ms(self.config), mode)

    def load_recording(self, path: str | os.PathLike):
        """A recording read as this run reads its data: a session .mat binned at the recipe's
        ``bin_ms``, a binned file at its own bins (so its samples fit :meth:`stream`)."""
        from motordecode.pipeline import load_for_recipe

        recording = load_for_recipe(path, self.recipe, self.config.get("heldout", "include"))
        check_recording(self.config, recording, path)
        return recording

    def stream(self, mode: str | None = None, fast: bool = False) -> Stream | FastStream:
        """A :class:`Stream`: one sample of the recording (spike counts of one bin, at the run's bin
        width) in, its velocity (in the recording's units) out. ``mode`` picks a GRU inference mode
        (``windowed`` or ``stateful``); default: the recipe's published one. ``fast``: the same
        face on the compiled step path (:class:`~motordecode.decoders.fast.FastStream`, p50 2-16
        us a sample instead of 170-2,840 us; outputs equal to float32 rounding)."""
        decoder = self.decoder(mode)
        return FastStream(decoder) if fast else Stream(decoder)


def load_run(run_dir: str | os.PathLike) -> Run:
    """A run directory written by :func:`train`, ``motordecode train`` or ``import-checkpoint``."""
    recipe, config, model, bits = load_model(run_dir)
    path = Path(run_dir)
    metrics = read_json(path / METRICS_FILE) if (path / METRICS_FILE).is_file() else {}
    return Run(path, recipe, model, config, metrics, bits)


def train(recipe, data: str | os.PathLike, *, out: str | os.PathLike | None = None, seed: int = 0,
          resume: bool = False, pretrain=(), pretrained=None, progress: bool = False, heldout: str = "include",
          device="auto", **overrides) -> Run:
    """Train ``recipe`` (a name or a recipe object) on the recording ``data`` into the run
    directory ``out`` (default ``runs/RECIPE-DATA-seedN``); ``overrides`` set recipe fields
    (``epochs=20``); ``pretrain``: recordings to pre-train on, or ``pretrained``: a pre-trained
    network to start from; ``heldout``: for NWB files with held-out units, "include" (inputs) or "exclude";
    ``device``: where to train ("auto": a CUDA GPU when there is one, "cpu", "cuda", "cuda:N"; the
    model comes back on the CPU). Returns the finished :class:`Run`."""
    from motordecode.pipeline import train_run

    recipe = override(get_recipe(recipe) if isinstance(recipe, str) else recipe, overrides)
    if isinstance(pretrain, (str, os.PathLike)):
        pretrain = [pretrain]
    out = Path(out or f"runs/{recipe.name}-{Path(data).stem}-seed{seed}")
    train_run(recipe, data, seed=seed, out=out, resume=resume, progress=progress, pretrain=pretrain,
              pretrained=pretrained, heldout=heldout, device=device)
    return load_run(out)


def evaluate(run_dir: str | os.PathLike, data: str | os.PathLike | None = None, write: bool = False) -> dict:
    """The metrics row of a saved run on its own recording's test split (or on ``data``, a
    recording with the same channels); ``write`` also rewrites its metrics.json."""
    from motordecode.pipeline import evaluate_run

    return evaluate_run(run_dir, data=data, write=write)
