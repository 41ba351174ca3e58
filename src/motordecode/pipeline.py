"""The main job: train a recipe on a recording, compress it, evaluate both inference modes, save the run.

``train_run`` = load -> split -> train (+ prune, fine-tune, quantise) -> evaluate -> RUN_DIR;
``evaluate_run`` re-evaluates a saved RUN_DIR (optionally on another file with the same channels).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from motordecode.data.load import load_recording
from motordecode.data.read_mat import file_kind
from motordecode.data.sessions import default_pretraining_files
from motordecode.data.splits import default_split
from motordecode.errors import ConfigError
from motordecode.fileio import atomic_write_path
from motordecode.inference import MODES, make_inference
from motordecode.metrics.harness import evaluate_stream
from motordecode.metrics.results import metrics_record, write_metrics
from motordecode.recipes import Recipe, is_baseline, is_linear, is_spiking, streams
from motordecode.report.plots import plot_predictions
from motordecode.runs import (METRICS_FILE, PLOT_FILE, PREDICTIONS_FILE, load_model, run_config, save_model,
                              start_run)
from motordecode.training.baseline_trainer import BaselineTrainer
from motordecode.training.linear_fit import fit_linear
from motordecode.training.rsnn_trainer import SpikingTrainer
from motordecode.training.trainer import Trainer

MODE_KEYS = ("r2", "r2_x", "r2_y", "activation_sparsity", "dense_ops", "effective_macs", "effective_acs")


def load_for_recipe(path: str | os.PathLike, recipe: Recipe):
    """A session .mat is binned at the recipe's ``bin_ms``; a binned recording keeps its own bins."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"data file {path} does not exist.")
    if file_kind(path) == "hdf5":
        return load_recording(path, bin_width_s=recipe.bin_ms / 1000.0)
    return load_recording(path)


def evaluate_model(model, recipe: Recipe, recording, split, deployed_bits: dict | None = None):
    """{mode: (metrics row, predictions)} on the test split: both inference modes of a GRU decoder;
    a spiking decoder runs the test split as one stream from a zero state (mode ``stream``)."""
    labels = recording.velocity[split.test]
    if streams(recipe):
        spikes = torch.from_numpy(np.ascontiguousarray(recording.spikes[split.test], dtype=np.float32))
        return {"stream": evaluate_stream(model, spikes, labels, deployed_bits=deployed_bits)}
    results = {}
    for mode in MODES:
        inference = make_inference(mode, recipe, recording.step_s)
        inputs = inference.inputs(recording.spikes, split.test)
        results[mode] = evaluate_stream(model, inputs, labels, run=inference.run, deployed_bits=deployed_bits)
    return results


def _metrics_row(results: dict, recipe: Recipe, recording) -> dict:
    """The windowed (published) row, with the stateful mode's numbers beside it; a spiking
    decoder's single streaming row."""
    if streams(recipe):
        row = dict(results["stream"][0])
        row["mode"] = "stream"
        if is_spiking(recipe):
            substeps = recipe.substeps(recording.step_s)
            row["network"] = {"step_ms": recording.step_s * 1000 / substeps, "substeps": substeps, "half": recipe.half}
        elif is_baseline(recipe):
            row["features"] = {"window_samples": recipe.window_samples(recording.step_s), "bins": recipe.bins}
        else:
            row["features"] = {"count_samples": recipe.count_samples(recording.step_s),
                               "count_ms": recipe.count_samples(recording.step_s) * recording.step_s * 1000,
                               "history": recipe.history if recipe.model == "wiener" else 1}
        return row
    row = dict(results["windowed"][0])
    row["mode"] = "windowed"
    row["stateful"] = {k: results["stateful"][0][k] for k in MODE_KEYS}
    sub_width = recipe.sub_width(recording.step_s)
    row["window"] = {"n_sub": recipe.n_sub, "sub_width_samples": sub_width, "step_ms": recording.step_s * 1000,
                     "window_ms": recipe.n_sub * sub_width * recording.step_s * 1000}
    return row


def _save_predictions(run_dir: Path, results: dict, labels: np.ndarray, test_index: np.ndarray) -> None:
    with atomic_write_path(run_dir / PREDICTIONS_FILE) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, labels=labels, test_index=test_index,
                     **{mode: np.asarray(pred, dtype=np.float32) for mode, (_, pred) in results.items()})


def _pretraining_files(recipe, data, pretrain) -> list[Path]:
    """The recordings a spiking recipe pre-trains on: ``pretrain``, else the default (sessions)."""
    if not is_spiking(recipe):
        if pretrain:
            raise ConfigError(f"recipe {recipe.name!r} has no pre-training stage; --pretrain is for tinyrsnn/bigrsnn.")
        return []
    if recipe.pretrain_epochs == 0:
        return []
    return [Path(f).resolve() for f in pretrain] if pretrain else default_pretraining_files(data)


def train_run(recipe: Recipe, data: str | os.PathLike, *, seed: int = 0, out: str | os.PathLike,
              resume: bool = False, progress: bool = True, threads: int | None = None,
              pretrain: list | tuple = ()) -> dict:
    """Train, compress and evaluate ``recipe`` on ``data``; returns the metrics row written to ``out``.

    ``pretrain``: recordings a spiking recipe pre-trains on (default: the benchmark sessions of
    the same monkey next to ``data``, when ``data`` is one)."""
    started = time.perf_counter()
    recording = load_for_recipe(data, recipe)
    split = default_split(recording)
    config = run_config(recipe, data, recording.name, seed, recording.n_channels, recording.velocity.shape[1],
                        recording.step_s)
    files = _pretraining_files(recipe, data, pretrain)
    config["pretrain"] = [str(Path(f).resolve()) for f in files]
    run_dir = start_run(out, config, resume)
    trainer = None
    if is_linear(recipe):
        result = fit_linear(recipe, recording, split)
    elif is_baseline(recipe):
        trainer = BaselineTrainer(recipe, recording, split, seed=seed, threads=threads)
    elif is_spiking(recipe):
        others = tuple(load_for_recipe(f, recipe) for f in files)
        trainer = SpikingTrainer(recipe, recording, split, seed=seed, run_dir=run_dir, progress=progress,
                                 threads=threads, pretrain=others)
    else:
        trainer = Trainer(recipe, recording, split, seed=seed, run_dir=run_dir, progress=progress, threads=threads)
    if trainer is not None:
        result = trainer.fit(resume=resume)
    trained = time.perf_counter()
    save_model(run_dir, result.model, result.deployed_bits)
    results = evaluate_model(result.model, recipe, recording, split, result.deployed_bits)
    row = _metrics_row(results, recipe, recording)
    row["timings"] = {**row["timings"], "train_s": trained - started, "total_s": time.perf_counter() - started,
                      "train_samples_per_s": _samples_per_s(result.history, trainer, trained - started)}
    row["history"] = result.history
    _save_predictions(run_dir, results, recording.velocity[split.test], split.test)
    plot_predictions(run_dir / PLOT_FILE, recording.velocity[split.test],
                     {mode: pred for mode, (_, pred) in results.items()}, recording.step_s,
                     title=f"{recipe.name} on {recording.name}, seed {seed}: test R2 "
                           + ", ".join(f"{r['r2']:.3f} ({m})" for m, (r, _) in results.items()))
    identity = dict(recipe=recipe.name, session=recording.name, seed=seed, val_r2=result.val_r2)
    write_metrics(run_dir, row, **identity)
    return metrics_record(row, **identity)


def _samples_per_s(history: list, trainer, seconds: float) -> float | None:
    """Training examples per second (windows for a spiking decoder); None for the closed-form fits
    and the baselines (their history records each epoch's seconds)."""
    if trainer is None or isinstance(trainer, BaselineTrainer):
        return None
    if isinstance(trainer, SpikingTrainer):
        sizes = {"pretrain": sum(len(s.train) for s in trainer.pretrain), "train": len(trainer.target.train),
                 "prune": len(trainer.target.train)}
    else:
        sizes = {"train": len(trainer.train_batches), "finetune": len(trainer.finetune_batches)}
    return sum(sizes[h["stage"]] for h in history if h["stage"] in sizes) / max(seconds, 1e-9)


def evaluate_run(run_dir: str | os.PathLike, data: str | os.PathLike | None = None, write: bool = True) -> dict:
    """Re-evaluate a saved run (on its own data file, or ``data``); rewrites metrics.json when ``write``."""
    run_dir = Path(run_dir)
    recipe, config, model, bits = load_model(run_dir)
    if data is None and not config.get("data"):
        raise ConfigError(f"{run_dir} was imported from a checkpoint and names no data file; pass --data FILE.")
    recording = load_for_recipe(data or config["data"], recipe)
    if recording.n_channels != config["n_channels"]:
        raise ConfigError(f"{data}: {recording.n_channels} channels, but the run was trained on {config['n_channels']}.")
    split = default_split(recording)
    results = evaluate_model(model, recipe, recording, split, bits)
    row = _metrics_row(results, recipe, recording)
    previous = {}
    if (run_dir / METRICS_FILE).is_file():
        previous = json.loads((run_dir / METRICS_FILE).read_text())
    row["data"] = str(Path(data or config["data"]).resolve())
    if "history" in previous:  # training facts survive a re-evaluation
        row["history"] = previous["history"]
        row["timings"] = {**previous.get("timings", {}), **row["timings"]}
    identity = dict(recipe=recipe.name, session=recording.name, seed=config["seed"], val_r2=previous.get("val_r2"))
    if write:
        write_metrics(run_dir, row, **identity)
        _save_predictions(run_dir, results, recording.velocity[split.test], split.test)
    return metrics_record(row, **identity)
