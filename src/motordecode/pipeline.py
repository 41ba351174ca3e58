"""The main job: train a recipe on a recording, evaluate every inference mode, save the run.

``train_run`` = load -> split -> the family's trainer (+ prune, fine-tune, quantise) -> evaluate
-> RUN_DIR; ``evaluate_run`` re-evaluates a saved RUN_DIR (optionally on another file with the
same channels). Every family is reached through :mod:`motordecode.decoders.registry`.
"""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from motordecode.data.load import load_recording
from motordecode.data.read_mat import file_kind
from motordecode.data.splits import contiguous_runs, default_split
from motordecode.decoders.registry import check_registered, family_of
from motordecode.errors import ConfigError
from motordecode.fileio import atomic_write_path
from motordecode.metrics.harness import decode_streams, evaluate_decoder
from motordecode.metrics.r2 import r2_score
from motordecode.metrics.results import best_epoch_r2, metrics_record, write_metrics
from motordecode.notices import collecting, warn
from motordecode.provenance import describe, provenance
from motordecode.recipes import changed_fields
from motordecode.report.plots import plot_predictions
from motordecode.runs import (METRICS_FILE, PLOT_FILE, PREDICTIONS_FILE, check_recording, discard_unstarted,
                              holding_run_lock, load_model, read_json, run_config, save_model, start_run)
from motordecode.seeds import check_seed
from motordecode.training.progress import working

MODE_KEYS = ("r2", "r2_x", "r2_y", "activation_sparsity", "dense_ops", "effective_macs", "effective_acs",
             "synaptic_operations")
FEW_TEST_SAMPLES = 100  # an R2 on fewer test samples than this is warned about


def load_for_recipe(path: str | os.PathLike, recipe, heldout: str = "include"):
    """A session .mat or an NWB file is binned at the recipe's ``bin_ms``; a binned recording keeps
    its own bins. ``heldout`` (NWB files with held-out units): "include" or "exclude" them."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"data file {path} does not exist.")
    if file_kind(path) != "hdf5":
        return load_recording(path, heldout=heldout)
    return load_recording(path, bin_width_s=recipe.bin_ms / 1000.0, heldout=heldout)


def _check_test_size(recording, split) -> None:
    if len(split.test) < 2:
        raise ConfigError(f"{recording.name}: the test split has {len(split.test)} samples; R2 needs at least two.")


def check_data(recipe, recording, split, parts=("train", "val", "test")) -> None:
    """Refuse data a run cannot give a result on (before anything is trained or written): a test
    part of fewer than two samples, or labels constant on one of ``parts`` (R2 is undefined there); warn
    about what makes the result doubtful: every count zero, a tiny test part, lengths of the
    recipe that the sample spacing changes."""
    _check_test_size(recording, split)
    for part in parts:
        index = getattr(split, part)
        if len(index) and np.any(np.ptp(recording.velocity[index], axis=0) == 0):
            axis = int(np.argmax(np.ptp(recording.velocity[index], axis=0) == 0))
            raise ConfigError(f"{recording.name}: velocity axis {axis} is constant on the {part} split, so there "
                              "is nothing to decode (R2 is undefined); use a recording whose labels vary.")
    if not recording.spikes.any():
        warn(f"{recording.name}: every spike count is zero; the decoder can only output a constant.")
    if len(split.test) < FEW_TEST_SAMPLES:
        warn(f"{recording.name}: the test split has only {len(split.test)} samples (fewer than {FEW_TEST_SAMPLES}); "
             "its R2 is not a reliable figure.")
    for message in family_of(recipe).notices(recipe, recording.step_ms):
        warn(message)


def evaluate_model(model, recipe, recording, split, deployed_bits: dict | None = None,
                   progress: bool = False) -> dict:
    """{mode: (metrics row, predictions)} on the test split, for every inference mode of the
    recipe's family: each contiguous run of test samples (one, unless the recording marks gaps)
    as a stream, its input windows filled from the samples before it (a GRU's sub-windows; the
    other decoders start from a zero state). ``progress``: each mode announced on stderr."""
    family = family_of(recipe)
    test = split.test
    _check_test_size(recording, split)
    results = {}
    for mode in family.modes:
        decoder = family.decoder(model, recipe, recording.step_ms, mode)
        with working(f"evaluating {recipe.name} ({mode}) on {len(test):,} test samples") if progress else nullcontext():
            results[mode] = evaluate_decoder(decoder, _streams(recording, test, decoder.history),
                                             recording.velocity[test], deployed_bits=deployed_bits,
                                             step_ms=recording.step_ms)
    return results


def deployed_val_r2(model, recipe, recording, split) -> float | None:
    """R2 of the deployed ``model`` (pruned and quantised, as evaluated on the test split) over the
    validation split, in the recipe's published mode, decoded as the test split is; None when the
    split has fewer than two samples."""
    if len(split.val) < 2:
        return None
    decoder = family_of(recipe).decoder(model, recipe, recording.step_ms)
    pred = decode_streams(decoder, _streams(recording, split.val, decoder.history))
    return r2_score(pred, recording.velocity[split.val])


def _streams(recording, index, history: int) -> list:
    """(history, samples) of each contiguous run of ``index``, its history the ``history`` samples before it."""
    return [(recording.spikes[max(0, start - history):start], recording.spikes[start:stop])
            for start, stop in contiguous_runs(index)]


def _metrics_row(results: dict, recipe, recording) -> dict:
    """The published mode's row, the other modes' numbers beside it under their names, and the
    family's facts about the input (window, network steps or features)."""
    family = family_of(recipe)
    published, *others = family.modes
    row = dict(results[published][0])
    row["mode"] = published
    for mode in others:
        row[mode] = {k: results[mode][0][k] for k in MODE_KEYS}
    row.update(family.describe(recipe, recording.step_ms))
    return row


def _save_predictions(run_dir: Path, results: dict, labels: np.ndarray, test_index: np.ndarray) -> None:
    with atomic_write_path(run_dir / PREDICTIONS_FILE) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, labels=labels, test_index=test_index,
                     **{mode: np.asarray(pred, dtype=np.float32) for mode, (_, pred) in results.items()})


def _cpu_only_stand_in(device) -> None:
    """Stand-in until training on a device lands (helper "device"): the CPU only."""
    from motordecode.devices import resolve_device

    if resolve_device(device).type != "cpu":
        raise ConfigError(f"device {device!r}: this build trains on the CPU only.", setting="device")


@holding_run_lock  # a second process training into ``out`` is refused
def train_run(recipe, data: str | os.PathLike, *, seed: int = 0, out: str | os.PathLike,
              resume: bool = False, progress: bool = True, threads: int | None = None,
              pretrain: list | tuple = (), pretrained: str | os.PathLike | None = None,
              heldout: str = "include", device="auto") -> dict:
    """Train, compress and evaluate ``recipe`` on ``data``; returns the metrics row written to ``out``.

    ``pretrain``: recordings to pre-train on (families that pre-train; default: the benchmark
    sessions of the same monkey next to ``data``, when ``data`` is one), pre-trained into
    RUN_DIR/pretrain unless ``pretrained`` (a pretrained.pt of :mod:`motordecode.pretraining`, or
    its directory) is given; ``heldout``: NWB held-out units used as inputs ("include") or left out
    ("exclude").

    Warnings (:mod:`motordecode.notices`) are printed on stderr and kept in metrics.json under
    ``warnings``. A run that fails before its first checkpoint leaves no run directory behind."""
    _cpu_only_stand_in(device)
    with collecting() as warnings:
        return _train_run(recipe, data, seed=seed, out=out, resume=resume, progress=progress, threads=threads,
                          pretrain=pretrain, pretrained=pretrained, heldout=heldout, warnings=warnings)


def _train_run(recipe, data, *, seed, out, resume, progress, threads, pretrain, pretrained, heldout,
               warnings: list) -> dict:
    from motordecode.pretraining import PRETRAINED_FILE, check_compatible, read_pretrained

    started = time.perf_counter()
    seed = check_seed(seed)
    family = family_of(recipe)
    check_registered(recipe)  # or the run could not be read back
    if pretrained is not None and not family.pretrains:
        raise ConfigError(f"recipe {recipe.name!r} has no pre-training stage; it cannot start from {pretrained}.")
    recording = load_for_recipe(data, recipe, heldout)
    split = default_split(recording)
    check_data(recipe, recording, split)
    config = run_config(recipe, data, recording.name, seed, recording.n_channels, recording.velocity.shape[1],
                        recording.step_s)
    files = family.pretraining_files(recipe, data, pretrain, pretrained)
    config["pretrain"] = [str(Path(f).resolve()) for f in files]
    config["heldout"] = heldout
    own = pretrained is None and bool(files)  # pre-trained by this run, into RUN_DIR/pretrain
    blob = None if pretrained is None else read_pretrained(pretrained, files)  # checked before RUN_DIR exists
    loaded = {}
    if own:  # read and checked before RUN_DIR exists; the session itself is not read twice
        target = Path(data).resolve()
        loaded = {f: recording if f == target else load_for_recipe(f, recipe, heldout) for f in map(Path, files)}
        check_compatible([recording, *loaded.values()])
    if pretrained is not None or own:
        given = None if own else Path(pretrained).resolve()
        config["pretrained"] = str(Path(out).resolve() / "pretrain" / PRETRAINED_FILE if own else
                                   given / PRETRAINED_FILE if given.is_dir() else given)
    run_dir = start_run(out, config, resume)
    try:
        return _train_in(run_dir, recipe, data, recording, split, config, files, blob, loaded, own, started, seed=seed,
                         resume=resume, progress=progress, threads=threads, heldout=heldout, warnings=warnings)
    except Exception:
        if not resume:  # failed before anything could be resumed: the retry starts afresh (the directory
            discard_unstarted(run_dir)  # itself goes with its lock, if the lock created it)
        raise


def _train_in(run_dir, recipe, data, recording, split, config, files, blob, loaded, own, started, *, seed, resume,
              progress, threads, heldout, warnings) -> dict:
    from motordecode.pretraining import pretrain_run, read_pretrained

    family = family_of(recipe)
    options, pretraining = {}, None
    if own:
        pretrain_run(recipe, files, seed=seed, out=run_dir / "pretrain", progress=progress, threads=threads,
                     heldout=heldout, loaded=loaded)
        started = time.perf_counter()  # the row's times are the run's own; the pre-training's is beside them
        blob = read_pretrained(config["pretrained"], files)
    if blob is not None:
        options["initial"] = blob["state_dict"]
        pretraining = {"file": config["pretrained"], "val_r2": blob["val_r2"], "train_s": blob["train_s"]}
    trainer = family.trainer(recipe, recording, split, seed=seed, run_dir=run_dir, progress=progress,
                             threads=threads, **options)
    result = trainer.fit(resume=resume)
    trained = time.perf_counter()
    save_model(run_dir, result.model, result.deployed_bits)
    results = evaluate_model(result.model, recipe, recording, split, result.deployed_bits, progress)
    row = _metrics_row(results, recipe, recording)
    row["timings"] = {**row["timings"], "train_s": trained - started, "total_s": time.perf_counter() - started,
                      "train_samples_per_s": _samples_per_s(result.history, trainer, trained - started)}
    row["history"] = result.history
    if pretraining is not None:
        row["pretraining"] = pretraining
    row["provenance"] = provenance({recording.name: data}, {recipe.name: changed_fields(recipe)})
    _save_predictions(run_dir, results, recording.velocity[split.test], split.test)
    plot_predictions(run_dir / PLOT_FILE, recording.velocity[split.test],
                     {mode: pred for mode, (_, pred) in results.items()}, recording.step_s,
                     title=f"{recipe.name} on {recording.name}, seed {seed}: test R2 "
                           + ", ".join(f"{r['r2']:.3f} ({m})" for m, (r, _) in results.items()),
                     units=recording.meta.get("label_units", ""), footer=describe(row["provenance"]))
    row["warnings"] = list(warnings)
    identity = dict(recipe=recipe.name, session=recording.name, seed=seed,
                    val_r2=deployed_val_r2(result.model, recipe, recording, split), val_r2_best_epoch=result.val_r2)
    write_metrics(run_dir, row, **identity)
    return metrics_record(row, **identity)


def _samples_per_s(history: list, trainer, seconds: float) -> float | None:
    """Training examples per second (windows for a spiking decoder); None for trainers that do not
    count their examples (the closed-form fits; the baselines record each epoch's seconds)."""
    sizes = trainer.stage_sizes() if hasattr(trainer, "stage_sizes") else None
    if sizes is None:
        return None
    return sum(sizes[h["stage"]] for h in history if h["stage"] in sizes) / max(seconds, 1e-9)


def evaluate_run(run_dir: str | os.PathLike, data: str | os.PathLike | None = None, write: bool = True,
                 progress: bool = False) -> dict:
    """Re-evaluate a saved run (on its own data file, or ``data``); rewrites metrics.json when ``write``.
    The row's ``warnings`` are the training's and this evaluation's; ``progress``: each inference
    mode's evaluation announced on stderr."""
    with collecting() as warnings:
        return _evaluate_run(Path(run_dir), data, write, warnings, progress)


def _evaluate_run(run_dir: Path, data, write: bool, warnings: list, progress: bool) -> dict:
    recipe, config, model, bits = load_model(run_dir)
    previous = read_json(run_dir / METRICS_FILE) if (run_dir / METRICS_FILE).is_file() else {}  # read before the work
    if data is None and not config.get("data"):
        raise ConfigError(f"{run_dir} was imported from a checkpoint and names no data file; give the recording to evaluate on (data).",
                          setting="data")
    source = data or config["data"]
    recording = load_for_recipe(source, recipe, config.get("heldout", "include"))
    check_recording(config, recording, source)
    split = default_split(recording)
    check_data(recipe, recording, split, parts=("test",))
    results = evaluate_model(model, recipe, recording, split, bits, progress)
    row = _metrics_row(results, recipe, recording)
    row["data"] = str(Path(source).resolve())
    row["provenance"] = provenance({recording.name: source}, {recipe.name: changed_fields(recipe)})
    if "history" in previous:  # training facts survive a re-evaluation
        row["history"] = previous["history"]
        row["timings"] = {**previous.get("timings", {}), **row["timings"]}
    row["warnings"] = list(dict.fromkeys([*previous.get("warnings", []), *warnings]))
    identity = dict(recipe=recipe.name, session=recording.name, seed=config["seed"],
                    val_r2=deployed_val_r2(model, recipe, recording, split), val_r2_best_epoch=best_epoch_r2(previous))
    if write:
        write_metrics(run_dir, row, **identity)
        _save_predictions(run_dir, results, recording.velocity[split.test], split.test)
    return metrics_record(row, **identity)
