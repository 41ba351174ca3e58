"""A run directory: everything one training run produced, enough to re-evaluate it later.

    RUN_DIR/config.json     recipe (all fields), data file, session, seed, channels, sample spacing
    RUN_DIR/model.pt        the decoder's state dict (after pruning and quantisation)
    RUN_DIR/train_state.pt  the per-epoch checkpoint that ``--resume`` continues from
    RUN_DIR/metrics.json    the metrics row (see motordecode.metrics.results)
    RUN_DIR/predictions.npz test-split predictions and labels of each inference mode
    RUN_DIR/predictions.png predicted against true velocity (the first 20 s of the test split)
    RUN_DIR/.lock           held while a process trains into RUN_DIR (see :func:`run_lock`)

Checkpoints are loaded with ``torch.load(..., weights_only=True)`` (:mod:`motordecode.training.state_files`);
all files are written atomically.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
from pathlib import Path

import torch

from motordecode import __version__
from motordecode.errors import ConfigError, DataFormatError
from motordecode.fileio import atomic_write_path
from motordecode.decoders.registry import family_of
from motordecode.recipes import recipe_from_dict
from motordecode.training.state_files import read_checkpoint

CONFIG_FILE = "config.json"
MODEL_FILE = "model.pt"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.npz"
PLOT_FILE = "predictions.png"
LOCK_FILE = ".lock"


def run_config(recipe, data: str | os.PathLike, session: str, seed: int, n_channels: int,
               n_outputs: int, step_s: float) -> dict:
    return {"recipe": recipe.to_dict(), "data": str(Path(data).resolve()), "session": session, "seed": int(seed),
            "n_channels": int(n_channels), "n_outputs": int(n_outputs), "step_s": float(step_s),
            "motordecode": __version__}


def step_ms(config: dict) -> float:
    """The run's sample spacing in milliseconds (config.json keeps seconds, as recordings do)."""
    return config["step_s"] * 1000.0


def _write_json(path: Path, obj) -> None:
    with atomic_write_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")


def start_run(run_dir: str | os.PathLike, config: dict, resume: bool,
              occupied_hint: str = "choose another run directory, or resume that run to continue it",
              occupied_setting: str | None = "out") -> Path:
    """Create RUN_DIR for a new run, or check that a resumed one was started with the same config.
    ``occupied_setting``: the caller's setting to change when RUN_DIR is taken (None: none)."""
    run_dir = Path(run_dir)
    existing = run_dir / CONFIG_FILE
    if resume:
        if not existing.exists():
            raise ConfigError(f"cannot resume: {run_dir} holds no {CONFIG_FILE}.")
        saved = read_config(run_dir)
        changed = [k for k in ("recipe", "data", "seed", "n_channels") if saved.get(k) != config.get(k)]
        if changed:
            raise ConfigError(f"cannot resume {run_dir}: it was started with a different {', '.join(changed)}.")
        return run_dir
    if run_dir.exists() and any(p.name != LOCK_FILE for p in run_dir.iterdir()):
        raise ConfigError(f"{run_dir} is not empty; {occupied_hint}.", setting=occupied_setting)
    _write_json(run_dir / CONFIG_FILE, config)
    return run_dir


def discard_unstarted(run_dir: str | os.PathLike) -> None:
    """Empty a run directory that a run left before its first checkpoint: it holds only the
    config.json :func:`start_run` wrote (its lock aside) and perhaps a pre-training directory with
    no checkpoint either, so a retry starts afresh. The directory itself goes with its lock
    (:func:`run_lock` removes the directories it created when they are empty)."""
    run_dir = Path(run_dir)
    rest = {p.name for p in run_dir.iterdir() if p.name != LOCK_FILE} - {CONFIG_FILE}
    pretrain = run_dir / "pretrain"
    if rest - {"pretrain"} or not (run_dir / CONFIG_FILE).is_file():
        return
    if "pretrain" in rest:
        if not pretrain.is_dir() or any(p.suffix == ".pt" for p in pretrain.rglob("*")):
            return  # a pre-training checkpoint: keep it for --resume
        shutil.rmtree(pretrain)
    (run_dir / CONFIG_FILE).unlink()


def _missing_ancestor(directory: Path) -> Path | None:
    """The outermost of ``directory`` and its parents that does not exist yet (None: it exists)."""
    missing = None
    for path in (directory, *directory.parents):
        if path.exists():
            return missing
        missing = path
    return missing


def _remove_empty(directory: Path, up_to: Path | None) -> None:
    """Remove ``directory`` and its parents up to ``up_to`` (the directories a lock created) while empty."""
    if up_to is None:
        return
    for path in (directory, *directory.parents):
        try:
            path.rmdir()
        except OSError:  # not empty, or already gone
            return
        if path == up_to:
            return


@contextlib.contextmanager
def run_lock(directory: str | os.PathLike):
    """Hold DIR/.lock for the block: an exclusive ``fcntl.flock``, which the system releases however
    the process ends (even on SIGKILL). A second process asking for it is refused with a
    ConfigError naming the holder's pid; the file is removed when released, and so are the
    directories the lock created when nothing else was written into them."""
    import fcntl

    directory = Path(directory)
    created = _missing_ancestor(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            _remove_empty(directory, created)
            raise ConfigError(f"{directory} is in use by another motordecode process (pid {holder}); wait for it "
                              "to finish, or stop it, then run again.") from None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break  # else the holder removed the file as we opened it: lock the new one
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    try:
        yield directory
    finally:
        path.unlink(missing_ok=True)  # before the release: a process that opened it then locks a removed file, and retries
        os.close(fd)
        _remove_empty(directory, created)


def holding_run_lock(train):
    """Decorate a function that writes into ``out=RUN_DIR``: it runs holding RUN_DIR's :func:`run_lock`."""
    @functools.wraps(train)
    def locked(*args, out, **kwargs):
        with run_lock(out):
            return train(*args, out=out, **kwargs)
    return locked


CONFIG_KEYS = ("recipe", "seed", "n_channels", "n_outputs", "step_s")


def read_json(path: Path) -> dict:
    """A JSON object from a run directory; DataFormatError when it is not one."""
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{path} is not valid JSON ({exc}).") from None
    if not isinstance(data, dict):
        raise DataFormatError(f"{path} holds a JSON {type(data).__name__}, not an object.")
    return data


def read_config(run_dir: str | os.PathLike) -> dict:
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no {CONFIG_FILE}).")
    config = read_json(path)
    missing = [k for k in CONFIG_KEYS if k not in config]
    if missing or not isinstance(config["recipe"], dict):
        raise DataFormatError(f"{path} is not a motordecode run configuration (missing {', '.join(missing) or 'recipe'}).")
    return config


def check_recording(config: dict, recording, source) -> None:
    """Refuse a recording whose channels, outputs or sample spacing differ from the run's."""
    if recording.n_channels != config["n_channels"]:
        raise ConfigError(f"{source}: {recording.n_channels} channels, but the run was trained on "
                          f"{config['n_channels']}; evaluate it on a recording with the same channels.")
    if recording.velocity.shape[1] != config["n_outputs"]:
        raise ConfigError(f"{source}: {recording.velocity.shape[1]} velocity axes, but the run decodes "
                          f"{config['n_outputs']}.")
    if abs(recording.step_s - config["step_s"]) > 1e-9 * max(1.0, recording.step_s):
        raise ConfigError(f"{source}: samples of {recording.step_ms:g} ms, but the run decodes samples of "
                          f"{step_ms(config):g} ms; use a recording binned like its training data.")


def save_model(run_dir: str | os.PathLike, model: torch.nn.Module, deployed_bits: dict) -> Path:
    path = Path(run_dir) / MODEL_FILE
    with atomic_write_path(path) as tmp:
        torch.save({"state_dict": model.state_dict(), "deployed_bits": dict(deployed_bits)}, tmp)
    return path


def load_model(run_dir: str | os.PathLike):
    """(recipe, config, model in eval mode, deployed bits) of a saved run."""
    config = read_config(run_dir)
    recipe = recipe_from_dict(config["recipe"])
    path = Path(run_dir) / MODEL_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir} holds no trained model ({MODEL_FILE}); finish its training by resuming it.",
                          setting="resume")
    blob = read_checkpoint(path, "trained model")
    state = blob.get("state_dict") if isinstance(blob, dict) else None
    if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise DataFormatError(f"{path} holds no state dict of tensors (a 'state_dict' entry), so it is not a model "
                              "this package saved; train the run again, or import a published checkpoint.")
    model = family_of(recipe).build(recipe, config["n_channels"], config["n_outputs"], step_ms(config))
    try:
        dtypes = {t.dtype for t in state.values() if t.is_floating_point()}
        if len(dtypes) == 1:  # a float16 (or other single-dtype) model is rebuilt at its dtype
            model = model.to(dtypes.pop())
        model.load_state_dict(state)
    except (KeyError, RuntimeError) as exc:
        raise DataFormatError(f"{path} does not match the run's recipe ({str(exc).splitlines()[0]}).") from None
    return recipe, config, model.eval(), dict(blob.get("deployed_bits", {}))
