"""The epoch loop every trainable family shares: stages of epochs, a checkpoint after every epoch,
and an exact resume.

A trainer keeps its progress in a ``state`` dict: ``stage`` and ``epoch``, the modules named in
``modules`` (the network, and e.g. AEGRU's training branch), the optimiser and schedule, a numpy
generator ``np_rng``, and any plain values (best score, history, pruning masks). After every epoch
the whole state, torch's generator included (and, training on a GPU, torch's CUDA generator), goes
to RUN_DIR/train_state.pt; ``fit(resume=True)`` continues from it and ends exactly where an
uninterrupted run would.

``device`` (:func:`motordecode.devices.resolve_device`) is where the networks, the optimiser and
each batch live; the data are cut on the CPU (numpy) and the finished network comes back on the
CPU. A checkpoint holds CPU tensors only; it is read onto the CPU and its tensors moved to the
trainer's device, so a run started on a GPU resumes on the CPU and the other way round (exactly
only on the kind of device it was saved from: the CUDA generator is restored only on a GPU). On
the CPU nothing is moved.

Subclasses provide ``_fresh_state()``, ``_optimizer(state)``, ``_epochs(stage)``,
``_epoch(state)``, ``_next_stage(state)`` (which sets stage ``"done"`` at the end) and
``_finish(state) -> TrainResult``, and may override ``stage_sizes()`` (training examples per epoch
of each stage, for the throughput in the metrics row).

Within :func:`stopping_when`, a training stops after its next checkpoint once the given test is true,
raising :class:`TrainingStopped`; a resume continues from that checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch

from motordecode.devices import resolve_device
from motordecode.errors import ConfigError, DataFormatError
from motordecode.fileio import atomic_write_path
from motordecode.training.progress import progress_bar
from motordecode.training.prune import apply_masks
from motordecode.training.state_files import read_checkpoint

STATE_FILE = "train_state.pt"
_LIVE = ("optimizer", "scheduler", "np_rng")  # saved through their own state, not as values
_GENERATORS = ("torch_rng", "cuda_rng")  # torch's CPU generator, and its CUDA one when training on a GPU


@dataclass
class TrainResult:
    model: torch.nn.Module
    val_r2: float
    history: list = field(default_factory=list)
    deployed_bits: dict = field(default_factory=dict)


class TrainingStopped(Exception):
    """A training stopped at a checkpoint because a stop was asked for (see :func:`stopping_when`)."""

    def __init__(self, stage: str, epoch: int):
        super().__init__(f"stopped after {stage} epoch {epoch}; its checkpoint resumes it")
        self.stage, self.epoch = stage, epoch


_stop_tests = threading.local()


@contextlib.contextmanager
def stopping_when(should_stop):
    """Trainings in this thread within the block stop after their next checkpoint once
    ``should_stop()`` is true (checked after every checkpoint), raising :class:`TrainingStopped`."""
    previous = getattr(_stop_tests, "test", None)
    _stop_tests.test = should_stop
    try:
        yield
    finally:
        _stop_tests.test = previous


def _stop_asked() -> bool:
    test = getattr(_stop_tests, "test", None)
    return test is not None and bool(test())


def default_threads() -> int:
    """All cores but one: the spare one cuts the batches (see :func:`prefetched`)."""
    return max(1, (os.cpu_count() or 2) - 1)


OWNED_CORES = "MOTORDECODE_WORKER_CORES"  # set by motordecode.workers: the cores each pool worker owns


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a batch job's share), else all of them."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def spare_core() -> bool:
    """Whether this process owns a core beyond torch's threads, to cut the next batches on: a pool
    worker owns the cores its pool gave it (``MOTORDECODE_WORKER_CORES``), any other process the
    cores it may run on. A worker pinned to one thread cuts its batches in line, so that W workers
    keep W cores busy, not 1.13 W."""
    owned = os.environ.get(OWNED_CORES, "")
    cores = int(owned) if owned.isascii() and owned.isdecimal() else available_cores()
    return cores > torch.get_num_threads()


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during an epoch: ``stage``, ``epoch`` (the epochs of that stage finished and saved in
    RUN_DIR/train_state.pt) of ``epochs``, and ``run_dir`` (None: nothing was saved)."""

    def __init__(self, stage: str, epoch: int, epochs: int, run_dir):
        super().__init__(f"interrupted in {stage} epoch {epoch + 1} of {epochs}")
        self.stage, self.epoch, self.epochs, self.run_dir = stage, epoch, epochs, run_dir

    def reached(self) -> str:
        """Where training stopped and what its checkpoint keeps, in words."""
        text = f"stopped in {self.stage} epoch {self.epoch + 1} of {self.epochs}"
        path = None if self.run_dir is None else Path(self.run_dir) / STATE_FILE
        if path is None or not path.is_file():
            return text + "; nothing was saved yet"
        if self.epoch == 0:
            return text + f"; the stages before it are saved in {path}"
        done = "epoch 1 is" if self.epoch == 1 else f"epochs 1-{self.epoch} are"
        return text + f"; {self.stage} {done} saved in {path}"


class EpochTrainer:
    modules: tuple = ("model",)
    for_pretraining = False  # True: _finish keeps the trained float network (no label scale folded, no quantisation)

    def __init__(self, recipe, seed: int, run_dir: str | os.PathLike | None, progress: bool, threads: int | None,
                 initial: dict | None = None, device="auto"):
        """``initial``: the state dict of a pre-trained network to start from; ``device``: where to
        train ("auto", "cpu", "cuda", "cuda:N" or a ``torch.device``)."""
        self.recipe, self.seed = recipe, int(seed)
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.progress = progress
        self.threads = threads or default_threads()
        self.initial = initial
        self.device = resolve_device(device)

    @property
    def on_cpu(self) -> bool:
        return self.device.type == "cpu"

    def placed(self, value):
        """``value`` (a module, a tensor, or dicts, lists and tuples of tensors) on the trainer's
        device; unchanged on the CPU."""
        return value if self.on_cpu else moved(value, self.device)

    def _start_from_initial(self, model: torch.nn.Module, n_channels: int) -> bool:
        """Load ``initial`` into ``model`` (True), or leave it (False, no pre-trained network)."""
        if self.initial is None:
            return False
        try:
            model.load_state_dict(self.initial)
        except RuntimeError as exc:
            detail = " ".join(line.strip() for line in str(exc).splitlines()[1:3])
            raise ConfigError(f"the pre-trained network does not fit {self.recipe.name} on {n_channels} channels: "
                              f"{detail}") from None
        return True

    def stage_sizes(self) -> dict | None:
        return None

    def fit(self, resume: bool = False, stop_after_epochs: int | None = None) -> TrainResult | None:
        """Train (or resume) to the end; with ``stop_after_epochs`` stop early (returns None)."""
        threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return self._fit(self._initial_state(resume), stop_after_epochs)
        finally:
            torch.set_num_threads(threads)

    def _fit(self, state: dict, stop_after_epochs: int | None) -> TrainResult | None:
        done_now = 0
        saved = (state["stage"], state["epoch"])  # what the checkpoint on disk holds
        try:
            while state["stage"] != "done":
                if state["epoch"] >= self._epochs(state["stage"]):
                    self._next_stage(state)
                    self._save(state)
                    saved = (state["stage"], state["epoch"])
                    continue
                if stop_after_epochs is not None and done_now >= stop_after_epochs:
                    return None
                self._epoch(state)
                done_now += 1
                self._save(state)
                saved = (state["stage"], state["epoch"])
                if _stop_asked() and self.run_dir is not None:
                    raise TrainingStopped(state["stage"], state["epoch"])
        except KeyboardInterrupt:  # in an epoch, a checkpoint's write or a change of stage
            stage, epoch = saved
            if stage == "done":
                raise
            raise TrainingInterrupted(stage, epoch, self._epochs(stage), self.run_dir) from None
        return self._finish(state)

    # -- checkpoint ------------------------------------------------------------------------------
    def _initial_state(self, resume: bool) -> dict:
        """The saved state when resuming; a fresh one otherwise, or when the run stopped before its
        first checkpoint (nothing was finished, so it starts from the beginning)."""
        if self.run_dir is None and resume:
            raise ConfigError("nothing to resume: the trainer has no run directory.")
        if not resume or not (self.run_dir / STATE_FILE).exists():
            return self._fresh_state()
        return self._load()

    def _save(self, state: dict) -> None:
        if self.run_dir is None:
            return
        blob = {k: v for k, v in state.items() if k not in self.modules + _LIVE}
        blob.update({k: None if state[k] is None else state[k].state_dict() for k in self.modules})
        blob.update(optimizer=state["optimizer"].state_dict(),
                    scheduler=None if state["scheduler"] is None else state["scheduler"].state_dict(),
                    np_rng=state["np_rng"].bit_generator.state, torch_rng=torch.get_rng_state())
        if self.device.type == "cuda":
            blob["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        if not self.on_cpu:  # the file holds CPU tensors only: it reads on any machine
            blob = moved(blob, torch.device("cpu"))
        with atomic_write_path(self.run_dir / STATE_FILE) as tmp:
            torch.save(blob, tmp)

    def _load(self) -> dict:
        path = self.run_dir / STATE_FILE
        restart = f"delete {path} to train this run from the start"
        blob = read_checkpoint(path, "training checkpoint", restart)
        state = self._fresh_state()
        try:
            for key in self.modules:
                if state[key] is not None:
                    state[key].load_state_dict(blob[key])
            state.update({k: self.placed(v) for k, v in blob.items() if k not in self.modules + _LIVE + _GENERATORS})
            state["optimizer"], state["scheduler"] = self._optimizer(state)
            state["optimizer"].load_state_dict(blob["optimizer"])
            if state["scheduler"] is not None:
                state["scheduler"].load_state_dict(blob["scheduler"])
            state["np_rng"].bit_generator.state = blob["np_rng"]
            torch.set_rng_state(blob["torch_rng"])
            if self.device.type == "cuda" and blob.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(blob["cuda_rng"], self.device)
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataFormatError(f"{path} is not a training checkpoint of this run ({detail}); {restart}.") from None
        return state

    def _end_epoch(self, state: dict, loss_sum: float, seen: int, val: float, bar, keep_best: bool, snapshot,
                   **extra) -> None:
        """Count the epoch, add it to the history (mean loss, validation R2, ``extra``), keep
        ``snapshot()`` as the best state when ``keep_best`` and the R2 is the best yet, close its bar."""
        loss = loss_sum / max(seen, 1)
        state["epoch"] += 1
        state["history"].append({"stage": state["stage"], "epoch": state["epoch"], "loss": loss, "val_r2": float(val),
                                 **extra})
        if keep_best and val > state["best_val"]:
            state["best_val"], state["best"] = float(val), snapshot()
        if bar is not None:
            bar.set_postfix(loss=f"{loss:.4f}", val_r2=f"{val:.4f}")
            bar.close()

    def _progress_bar(self, total: int, desc: str):
        """A bar on a terminal, lines without one (:mod:`motordecode.training.progress`); None when quiet."""
        return progress_bar(total, desc) if self.progress else None


def moved(value, device: torch.device):
    """``value`` with every tensor (and a module's parameters and buffers) on ``device``: modules,
    tensors, and dicts, lists and tuples of them; other values as they are."""
    if isinstance(value, (torch.Tensor, torch.nn.Module)):
        return value.to(device)
    if isinstance(value, dict):
        return {k: moved(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [moved(v, device) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    return value


def optimise_epoch(batches, loss_of, optimizer, model, masks, bar, device: torch.device | None = None
                   ) -> tuple[float, int]:
    """One pass of optimiser steps over ``batches`` (cut on the spare core, :func:`spare_core`, else
    in line: the same batches either way): ``loss_of(batch)`` gives
    the loss (None skips the batch); pruned weights are re-zeroed after every step. ``device``: where
    each batch's tensors are moved before ``loss_of`` (None or the CPU: left where they are). Returns
    (sum of batch losses x batch size, examples seen)."""
    loss_sum, seen = 0.0, 0
    to_device = device is not None and torch.device(device).type != "cpu"
    for batch in (prefetched(batches) if spare_core() else batches):
        if to_device:
            batch = tuple(t.to(device, non_blocking=True) for t in batch)
        loss = loss_of(batch)
        if loss is None:
            continue
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if masks is not None:
            apply_masks(model.pruned_weights(), masks)
        loss_sum += float(loss.detach()) * len(batch[0])
        seen += len(batch[0])
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}")
    return loss_sum, seen


def prefetched(batches, depth: int = 4):
    """Iterate ``batches`` produced in a background thread (numpy's sampling releases the GIL, so
    the next batches are cut and jittered while the model trains on this one). The order and the
    random draws are those of the plain iterator; an error in the producer is raised here."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce():
        try:
            for item in batches:
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(done)
        except BaseException as exc:  # handed to the consumer
            items.put(exc)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
