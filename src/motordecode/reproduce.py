"""The whole comparison in one command: every (recipe, session, seed) cell as a run directory.

    OUT/grid.json                                every cell asked for, and what each recipe and session is
    OUT/data/<session>_synthetic.mat             the generated stand-ins (``synthetic``), their generator's
                                                 settings inside (:mod:`motordecode.data.generated`)
    OUT/pretrain/<recipe>/<monkey>/seed<k>/      one pre-training per (recipe, monkey, seed)
    OUT/cells/<recipe>/<session>/seed<k>/        one ordinary run directory per cell
    OUT/.lock                                    held while a command runs the grid (a second one is refused)
    OUT/stop                                     asks the running grid to stop (written on SIGINT or SIGTERM)

The tasks form a graph: a recipe that pre-trains (tinyRSNN and bigRSNN by default; any recipe
with ``pretrain_epochs`` > 0) is pre-trained once per monkey and seed on the monkey's sessions (:mod:`motordecode.pretraining`), and that monkey's
cells fine-tune from it; the other cells start at once. A task whose result exists is read, not
retrained; a started one resumes from its checkpoint. A cell that fails (or whose pre-training
failed) is reported with its error and the others go on; :func:`reproduce` returns every cell's
outcome. Tasks run in a process pool on this machine, or on Dask distributed, each worker pinned
to its threads and device (:mod:`motordecode.workers`); each outcome says where it trained
(``ran_on``). ``motordecode report OUT`` turns the cells into tables and plots
(:mod:`motordecode.report.grid`).

A cell's identity is its recipe's full settings, its session (the generator's settings of a
generated session, else the file's MD5) and its seed. A grid directory holds one set of settings
per recipe and one version of each session: a run that asks for a recipe or session of the grid
with other settings is refused before anything is written, naming the settings that differ, so a
finished cell is only ever reused for the settings it was trained with. grid.json accumulates:
a run of a subset adds its cells and removes none.

The first SIGINT or SIGTERM writes OUT/stop: no task starts after it, and running trainings stop
after their next checkpoint (:func:`motordecode.training.epochs.stopping_when`); the outcomes say
which cells finished, stopped or did not start, and running the same command again resumes. A
second signal stops at once. The workers end with the command, even when it is killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import asdict, dataclass
from pathlib import Path

from motordecode.errors import ConfigError
from motordecode.fileio import atomic_write_path
from motordecode.notices import collecting
from motordecode.provenance import provenance
from motordecode.recipes import changed_fields, get_recipe, override, recipe_from_dict, split_assignment
from motordecode.runs import CONFIG_FILE, METRICS_FILE, read_json, run_lock
from motordecode.seeds import MAX_SEED
from motordecode.training.epochs import TrainingStopped, stopping_when
from motordecode.workers import (GPU_RESOURCE, SHARE, check_device, check_device_text, check_threads, check_workers,
                                 local_pool, loopback_cluster, worker_device, worker_index)

SYNTHETIC_DURATION_S = 300.0
GRID_FILE = "grid.json"
STOP_FILE = "stop"
MAX_SEEDS = 10_000  # seeds in one grid: more is a typo (0-100000), not a plan


@dataclass(frozen=True)
class Cell:
    recipe: str
    session: str
    seed: int

    def directory(self, out: Path) -> Path:
        return out / "cells" / self.recipe / self.session / f"seed{self.seed}"


def pretraining_directory(out: Path, recipe: str, group: str, seed: int) -> Path:
    return out / "pretrain" / recipe / group / f"seed{seed}"


def parse_seeds(text: str) -> list[int]:
    """'0-4' -> [0, 1, 2, 3, 4]; '0,2,5' -> [0, 2, 5]; a descending range (4-0) is refused."""
    seeds: set[int] = set()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        lo, sep, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi if sep else lo)
        except ValueError:
            raise ConfigError(f"seeds: expected non-negative integers or ranges like 0-4, got {text!r}.",
                              setting="seeds") from None
        if last < first:
            raise ConfigError(f"seeds: the range {part} runs backwards; write it {last}-{first}.", setting="seeds")
        check_seeds([first, last])
        if last - first >= MAX_SEEDS:
            raise ConfigError(f"seeds: {part} is {last - first + 1} seeds; a grid takes at most {MAX_SEEDS}.",
                              setting="seeds")
        seeds.update(range(first, last + 1))
    if not seeds:
        raise ConfigError(f"seeds: at least one seed is needed, got {text!r}.", setting="seeds")
    return check_seeds(sorted(seeds))


def check_seeds(seeds) -> list[int]:
    """The seeds, once each is an integer in 0..MAX_SEED (:mod:`motordecode.seeds`, as ``train`` takes)
    and there are 1 to MAX_SEEDS of them."""
    seeds = list(seeds)
    bad = [s for s in seeds if isinstance(s, bool) or not hasattr(s, "__index__") or not 0 <= int(s) <= MAX_SEED]
    if bad:
        raise ConfigError(f"seeds must be integers from 0 to {MAX_SEED}, got {bad[0]!r}.")
    if not 1 <= len(set(seeds)) <= MAX_SEEDS:
        raise ConfigError(f"a grid needs 1 to {MAX_SEEDS} seeds, got {len(set(seeds))}.")
    return sorted({int(s) for s in seeds})


def synthetic_configs(duration_s: float = SYNTHETIC_DURATION_S, names: list[str] | None = None) -> dict:
    """{stand-in name: generator settings} of stand-ins for the six benchmark sessions (realistic,
    one seed per session), named after them, never as them (``indy_20160622_01_synthetic``, see
    :func:`motordecode.data.sessions.stand_in_name`), or of ``names`` among them (a benchmark
    name picks its stand-in); checked, nothing written."""
    from motordecode.data.sessions import stand_in_name
    from motordecode.data.synthetic import SynthConfig
    from motordecode.report.published import SESSIONS

    stand_ins = [stand_in_name(name) for name in SESSIONS]
    wanted = None if names is None else {stand_in_name(name) for name in names}
    unknown = sorted((wanted or set()) - set(stand_ins))
    if unknown:
        raise ConfigError(f"unknown session(s) {', '.join(unknown)}; choose from {', '.join(stand_ins)}.")
    return {stand_in: SynthConfig(monkey=stand_in[:4], duration_s=float(duration_s), seed=1000 + index)
            for index, stand_in in enumerate(stand_ins) if wanted is None or stand_in in wanted}


def generated_session_file(out: str | os.PathLike, name: str) -> Path:
    return Path(out) / "data" / f"{name}.mat"


def check_generated(out: str | os.PathLike, configs: dict) -> None:
    """Refuse when OUT/data holds one of the sessions ``configs`` describes generated otherwise (or
    without a record of its settings); reads only."""
    from motordecode.data.generated import generator_settings

    differ = []
    for name, config in configs.items():
        path = generated_session_file(out, name)
        if not path.is_file():
            continue
        settings = generator_settings(path)
        if settings is not None:
            differ += [f"{name} {d}" for d in differences(settings, _plain(asdict(config)))]
        elif _readable_hdf5(path):  # a file that cannot be read at all is left to its cells to report
            differ.append(f"{name}: {path} holds no record of the settings it was generated with")
    if differ:
        raise ConfigError(f"{Path(out) / 'data'} holds sessions generated otherwise: {'; '.join(differ)}. Generate "
                          "them with the same settings, or use another output directory.")


def _readable_hdf5(path: Path) -> bool:
    import h5py

    try:
        with h5py.File(path, "r"):
            return True
    except OSError:
        return False


def _generate(out: Path, configs: dict) -> dict[str, Path]:
    """OUT/data/<name>.mat for each of ``configs`` that is not there yet (its settings inside); {name: file}."""
    from motordecode.data.synthetic import write_synthetic

    files = {}
    for name, config in configs.items():
        path = files[name] = generated_session_file(out, name)
        if not path.is_file():
            write_synthetic(path, config)
    return files


def synthetic_sessions(out: str | os.PathLike, duration_s: float = SYNTHETIC_DURATION_S,
                       names: list[str] | None = None) -> dict[str, Path]:
    """Stand-ins for the six benchmark sessions (or ``names`` among them, see :func:`synthetic_configs`),
    generated into OUT/data: three Indy with 96 channels, three Loco with 192, each with its
    generator's settings inside. Files generated with the same settings are kept; other settings
    are refused before anything is written."""
    configs = synthetic_configs(duration_s, names)
    check_generated(out, configs)
    with run_lock(out):
        return _generate(Path(out), configs)


def _plain(obj):
    """``obj`` as JSON gives it back (tuples become lists), so saved and asked settings compare equal."""
    return json.loads(json.dumps(obj))


def differences(there: dict, asked: dict, prefix: str = "") -> list[str]:
    """'key X there, Y asked' for each setting (nested ones as a.b) that differs."""
    found = []
    for key in sorted(set(there) | set(asked), key=str):
        old, new = there.get(key, "(unset)"), asked.get(key, "(unset)")
        if isinstance(old, dict) and isinstance(new, dict):
            found += differences(old, new, f"{prefix}{key}.")
        elif old != new:
            found.append(f"{prefix}{key} {json.dumps(old)} there, {json.dumps(new)} asked")
    return found


def session_identity(path: str | os.PathLike) -> dict:
    """What a session file is, for its cells' identity: {"synthetic": the generator's settings} for
    a generated session, else {"md5": the file's MD5} (:func:`motordecode.provenance.session_source`)."""
    from motordecode.provenance import session_source

    if not Path(path).is_file():
        raise ConfigError(f"session file {path} does not exist.")
    source = session_source(path)
    return {"synthetic": source["generator"]} if source["kind"] == "synthetic" else {"md5": source["md5"]}


def real_sessions(data_dir: Path, names: list[str] | None = None) -> dict[str, Path]:
    """The benchmark sessions in ``data_dir``, each checked against its MD5."""
    from motordecode.data.sessions import CATALOG, session_status
    from motordecode.report.published import SESSIONS

    files = {}
    for name in names or SESSIONS:
        if name not in CATALOG:
            raise ConfigError(f"unknown session {name!r}; the benchmark sessions are {', '.join(SESSIONS)}.")
        status = session_status(CATALOG[name], data_dir, verify=False)
        if not status["present"]:
            raise ConfigError(f"{status['path']} is missing; fetch it with 'motordecode data fetch {name} "
                              f"--dir {data_dir}'.")
        if status["md5"] is not None and session_identity(status["path"]) != {"md5": status["md5"]}:
            raise ConfigError(f"{status['path']} does not match its MD5; fetch it again.")
        files[name] = Path(status["path"])
    return files


def _recipes(names: list[str], settings) -> dict:
    """Each recipe with the ``key=value`` settings it has (``epochs=1`` skips the closed-form
    fits), and ``recipe.key=value`` for that recipe alone; a key that no recipe of the grid has,
    or a recipe outside the grid, is an error."""
    from dataclasses import fields

    pairs = [split_assignment(s) for s in settings] if not isinstance(settings, dict) else list(settings.items())
    recipes = {name: get_recipe(name) for name in names}
    has = {name: {f.name for f in fields(r)} for name, r in recipes.items()}
    changes: dict = {name: {} for name in names}
    for key, value in pairs:
        target, dot, field = key.rpartition(".")
        if dot and target not in recipes:
            raise ConfigError(f"recipe setting {key}: {target!r} is not a recipe of the grid ({', '.join(names)}).")
        takers = [target] if dot else [name for name in names if field in has[name]]
        if not takers or field not in has[takers[0]]:
            raise ConfigError(f"recipe setting {key}: no recipe of the grid ({', '.join(names)}) has that field.")
        for name in takers:
            changes[name][field] = value
    return {name: override(r, changes[name]) for name, r in recipes.items()}


def finished_or_trained(job: dict) -> tuple[dict, str]:
    """(metrics row, "done before" | "trained") of the run ``job`` describes (recipe dict, data,
    seed, out, and optionally pretrain files, the pretrained file, the torch threads and the
    device): read when its metrics.json exists, else trained, resuming a started run."""
    from motordecode.pipeline import train_run

    out = Path(job["out"])
    if (out / METRICS_FILE).is_file():
        return read_json(out / METRICS_FILE), "done before"
    row = train_run(recipe_from_dict(job["recipe"]), job["data"], seed=job["seed"], out=out,
                    resume=(out / CONFIG_FILE).is_file(), progress=False, threads=job.get("threads", 1),
                    pretrain=job.get("pretrain", ()), pretrained=job.get("pretrained"),
                    device=job.get("device", "auto"))
    return row, "trained"


def placed(job: dict) -> dict:
    """``job`` to train here: ``device``, the grid's setting, becomes the device this worker trains
    on (:func:`motordecode.workers.worker_device`), also kept as ``ran_on`` for the outcome."""
    device = worker_device(job.get("device", "auto"), worker_index())
    return {**job, "device": device, "ran_on": device}


def _failure(exc: BaseException) -> str:
    message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    if os.environ.get("MOTORDECODE_DEBUG"):
        message += "\n" + traceback.format_exc()
    return message


# -- stopping ------------------------------------------------------------------------------------
FINISHED = ("trained", "done before")
_terminated = threading.Event()  # this worker process (local pool or loopback Dask) received SIGTERM


def stop_asked(grid: str | os.PathLike) -> bool:
    """Whether the grid in ``grid`` is asked to stop: OUT/stop exists (or this worker got SIGTERM)."""
    return _terminated.is_set() or (Path(grid) / STOP_FILE).exists()


def request_stop(grid: str | os.PathLike, reason: str) -> None:
    """Ask the grid's tasks, wherever they run, to stop: OUT/stop, holding ``reason``."""
    with atomic_write_path(Path(grid) / STOP_FILE) as tmp:
        tmp.write_text(reason + "\n")


@contextlib.contextmanager
def _stop_on_signals(grid: Path):
    """Within the block (when it runs in the main thread), the first SIGINT or SIGTERM asks the
    grid to stop (:func:`request_stop`): no task starts after it, and running trainings stop after
    their next checkpoint. A second one raises KeyboardInterrupt, which ends the workers at once.
    Yields the list the signal's name is added to."""
    received: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handle(signum, _frame):
        if received:
            raise KeyboardInterrupt
        received.append(signal.Signals(signum).name)
        request_stop(grid, received[0])
        os.write(2, f"\nmotordecode: {received[0]}: no new cell starts; running cells stop at their next "
                    "checkpoint (send it again to stop at once).\n".encode())

    previous = {number: signal.signal(number, handle) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def worker_signals() -> None:
    """In a worker's main thread: SIGINT is the command's to handle (a terminal's Ctrl-C reaches
    every process of the group), and SIGTERM stops the worker's training at its next checkpoint."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: _terminated.set())


# -- tasks ---------------------------------------------------------------------------------------
def run_pretraining(job: dict) -> dict:
    """Pre-train one (recipe, monkey, seed) (or find it done) on this worker's device (the outcome's
    ``ran_on``; None when it did not train); never raises: an error is returned. Not started when
    the grid is asked to stop; stopped after a checkpoint when asked meanwhile."""
    from motordecode.pretraining import PRETRAINED_FILE, pretrain_run

    started = time.perf_counter()
    done = (Path(job["out"]) / PRETRAINED_FILE).is_file()
    minutes = lambda: (time.perf_counter() - started) / 60  # noqa: E731
    if not done and stop_asked(job["grid"]):
        return {**job, "status": "not started", "minutes": 0.0}
    try:
        job = placed(job)
        with stopping_when(lambda: stop_asked(job["grid"])):
            path = pretrain_run(recipe_from_dict(job["recipe"]), job["pretrain"], seed=job["seed"], out=job["out"],
                                threads=job.get("threads", 1), device=job["device"])
        status = "done before" if done else "trained"
        return {**job, "status": status, "pretrained": str(path), "minutes": minutes(),
                **({"ran_on": None} if done else {})}
    except TrainingStopped as exc:
        return {**job, "status": "stopped", "note": str(exc), "minutes": minutes()}
    except Exception as exc:  # noqa: BLE001 - reported; the cells that need it fail with it
        return {**job, "status": "failed", "error": _failure(exc), "minutes": minutes()}


def run_cell(job: dict, pretraining: dict | None = None) -> dict:
    """Train one cell (or read it when finished) on this worker's device (the outcome's ``ran_on``;
    None when it did not train), from ``pretraining``'s network when the cell needs one; never
    raises: an error is returned in the row. Not started when the grid is asked to stop (or its
    pre-training did not finish); stopped after a checkpoint when asked meanwhile."""
    started = time.perf_counter()
    minutes = lambda: (time.perf_counter() - started) / 60  # noqa: E731
    if job.get("error"):
        return {**job, "status": "failed", "minutes": 0.0}
    if (Path(job["out"]) / METRICS_FILE).is_file():  # finished: whatever became of its pre-training
        return {**job, "status": "done before", "row": read_json(Path(job["out"]) / METRICS_FILE), "minutes": 0.0}
    if pretraining is not None:
        if pretraining["status"] == "failed":
            return {**job, "status": "failed", "error": f"pre-training failed: {pretraining['error']}", "minutes": 0.0}
        if pretraining["status"] not in FINISHED:
            return {**job, "status": "not started", "minutes": 0.0}
        job = {**job, "pretrained": pretraining["pretrained"]}
    if stop_asked(job["grid"]):
        return {**job, "status": "not started", "minutes": 0.0}
    try:
        job = placed(job)
        with stopping_when(lambda: stop_asked(job["grid"])):
            row, status = finished_or_trained(job)
        return {**job, "status": status, "row": row, "minutes": minutes(),
                **({"ran_on": None} if status != "trained" else {})}
    except TrainingStopped as exc:
        return {**job, "status": "stopped", "note": str(exc), "minutes": minutes()}
    except Exception as exc:  # noqa: BLE001 - a failed cell is reported, the grid goes on
        return {**job, "status": "failed", "error": _failure(exc), "minutes": minutes()}


EXECUTORS = ("local", "dask")


def _local(pretrainings: dict, cells: list[dict], workers: int, threads: int):
    """Outcomes as tasks finish, from the process pool on this machine (:func:`motordecode.workers.local_pool`):
    the pre-trainings and the cells that need none first, each other cell once its pre-training is
    done. Stopped early (a second signal), it ends the workers at once."""
    waiting: dict = {}
    with local_pool(workers, threads, initializer=worker_signals) as pool:
        running = {pool.submit(run_pretraining, job) for job in pretrainings.values()}
        for cell in cells:
            if cell.get("pretraining") in pretrainings:
                waiting.setdefault(cell["pretraining"], []).append(cell)
            else:
                running.add(pool.submit(run_cell, cell))
        while running:
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                outcome = future.result()
                if outcome["kind"] == "pretrain":
                    running |= {pool.submit(run_cell, cell, outcome) for cell in waiting.pop(outcome["key"], [])}
                yield outcome


def _dask(pretrainings: dict, cells: list[dict], workers: int, threads: int, device: str, scheduler: str | None):
    """Outcomes as tasks finish, from Dask distributed: the loopback cluster of ``workers``
    single-task processes (:func:`motordecode.workers.loopback_cluster`), or the existing cluster
    at ``scheduler``. The pre-trainings go first (they are the critical path); each cell that needs
    one depends on its task. Tasks that train on a GPU ask for one ``GPU`` resource. A worker that
    dies mid-task has the task run again elsewhere, which resumes it from its checkpoint. The
    loopback cluster's workers end with this process (each watches its parent's pipe)."""
    try:
        from distributed import Client
        from distributed import as_completed as finished
    except ImportError:
        raise ConfigError("the dask executor needs Dask distributed: pip install 'motordecode[cluster]'.") from None

    with contextlib.ExitStack() as stack:
        cluster = None
        if scheduler is None:
            cluster = stack.enter_context(loopback_cluster(workers, threads, gpus=device != "cpu"))
        try:
            client = Client(cluster if cluster is not None else scheduler)
        except OSError as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at {scheduler} ({exc}).") from None
        stack.callback(client.close)
        if cluster is not None:
            client.register_plugin(_worker_signals_plugin())
        gpu = {"resources": {GPU_RESOURCE: 1}} if _asks_for_gpus(client, device) else {}
        jobs, futures = {}, []
        for key, job in pretrainings.items():
            jobs[key] = job
            futures.append(client.submit(run_pretraining, job, pure=False, key=key, priority=1, **gpu))
        by_key = {f.key: f for f in futures}
        for cell in cells:
            jobs[cell["key"]] = cell
            needs = (by_key[cell["pretraining"]],) if cell.get("pretraining") in by_key else ()
            futures.append(client.submit(run_cell, cell, *needs, pure=False, key=cell["key"], **gpu))
        for future in finished(futures):
            try:
                yield future.result()
            except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker after repeated deaths: report the task
                yield {**jobs[future.key], "status": "failed", "error": f"{type(exc).__name__}: {exc}", "minutes": 0.0}


def _asks_for_gpus(client, device: str) -> bool:
    """Whether the tasks ask for a ``GPU`` resource: when they train on GPUs ("cuda", "cuda:N", or
    "auto" on a cluster whose workers declare GPUs). ConfigError when they must and no worker
    declares one (the tasks would wait for ever)."""
    if device == "cpu":
        return False
    workers = list(client.scheduler_info().get("workers", {}).values())  # those that have joined so far
    declared = any(w.get("resources", {}).get(GPU_RESOURCE, 0) >= 1 for w in workers)
    if device == "auto" or declared:
        return declared
    if workers:
        raise ConfigError(f"device {device!r}: no worker of the Dask cluster declares a {GPU_RESOURCE} resource; "
                          f"start the workers with --resources {GPU_RESOURCE}=1 (docs/cluster.md), or use --device "
                          "cpu.", setting="device")
    return True  # none has joined yet: those that will must declare it


def _worker_signals_plugin():
    """A Dask worker plugin for the loopback cluster: :func:`worker_signals` in each worker's main
    thread, restarted workers included."""
    from distributed import WorkerPlugin

    class WorkerSignals(WorkerPlugin):
        name = "motordecode-worker-signals"

        def setup(self, worker):
            if threading.current_thread() is threading.main_thread():
                worker_signals()

    return WorkerSignals()


def plan(out: Path, recipes: dict, sessions: dict[str, Path], seeds: list[int]) -> tuple[dict, list[dict]]:
    """({key: pre-training job}, [cell job]) of the grid: one pre-training per (recipe, monkey,
    seed) for the recipes that pre-train, named by the monkey (or the sessions' group when the
    sessions are not a monkey's); a cell whose pre-training files cannot be found carries the error."""
    from motordecode.data.sessions import monkey_of
    from motordecode.decoders.registry import family_of

    pretrainings, cells, groups = {}, [], {}
    for name, recipe in recipes.items():
        family = family_of(recipe)
        for session, data in sessions.items():
            files, error = [], None
            if family.pretrains:
                try:
                    files = [str(Path(f).resolve()) for f in family.pretraining_files(recipe, data, ())]
                except ConfigError as exc:
                    error = f"ConfigError: {exc}"
            key = tuple(sorted(files))
            if files and key not in groups:  # named by the monkey; another set of files of one monkey gets a number
                label = monkey_of(session) or "group"
                groups[key] = label if label not in groups.values() else f"{label}{len(groups)}"
            group = groups.get(key)
            for seed in seeds:
                cell = Cell(name, session, seed)
                job = {"kind": "cell", "key": f"cell-{name}-{session}-seed{seed}", "recipe_name": name,
                       "session": session, "seed": seed, "recipe": recipe.to_dict(), "data": str(data),
                       "out": str(cell.directory(out)), "grid": str(out)}
                if error:
                    job["error"] = error
                elif files:
                    key = f"pretrain-{name}-{group}-seed{seed}"
                    pretrainings.setdefault(key, {
                        "kind": "pretrain", "key": key, "recipe_name": name, "group": group, "seed": seed,
                        "recipe": recipe.to_dict(), "pretrain": files, "grid": str(out),
                        "out": str(pretraining_directory(out, name, group, seed))})
                    job.update(pretrain=files, pretraining=key)
                cells.append(job)
    return pretrainings, cells


def _recipe_names(names: list[str]) -> list[str]:
    """``all`` stands for every registered recipe."""
    from motordecode.recipes import recipe_names

    return recipe_names() if names == ["all"] else names


# -- the grid's record ---------------------------------------------------------------------------
def _refuse_other_settings(out: Path, differ: list[str]) -> None:
    if differ:
        shown = "; ".join(differ[:8]) + (f"; and {len(differ) - 8} more" if len(differ) > 8 else "")
        raise ConfigError(f"{out} holds this grid's recipes or sessions with other settings ({shown}). A grid "
                          "directory holds one set of settings per recipe and one version of each session: ask for "
                          "the same settings, or use another output directory. Nothing was run.")


def grown_grid(out: Path, recipes: dict, identities: dict, seeds: list[int]) -> dict:
    """grid.json after this run: the cells it held, then this run's new ones; with each recipe's
    settings and each session's identity (earlier ones kept). Refused, naming the settings that
    differ, when it holds a recipe or session of this run otherwise; reads only."""
    path = out / GRID_FILE
    old = read_json(path) if path.is_file() else {}
    known = old.get("identity", {})
    asked = {"recipes": {name: _plain(recipe.to_dict()) for name, recipe in recipes.items()},
             "sessions": _plain(identities)}
    differ = [f"{name}: {d}" for kind in ("recipes", "sessions") for name, what in asked[kind].items()
              if name in known.get(kind, {}) for d in differences(known[kind][name], what)]
    _refuse_other_settings(out, differ)
    earlier = old.get("cells") or [[r, s, k] for r in old.get("recipes", []) for s in old.get("sessions", [])
                                   for k in old.get("seeds", [])]  # a grid.json of before the cells were listed
    cells = list(dict.fromkeys([tuple(c) for c in earlier] + [(r, s, k) for r in recipes for s in identities
                                                                   for k in seeds]))
    return {"recipes": list(dict.fromkeys(c[0] for c in cells)), "sessions": list(dict.fromkeys(c[1] for c in cells)),
            "seeds": sorted({c[2] for c in cells}), "cells": [list(c) for c in cells],
            "identity": {kind: {**known.get(kind, {}), **asked[kind]} for kind in ("recipes", "sessions")},
            **({"provenance": old["provenance"]} if "provenance" in old else {})}


def _check_started_cells(out: Path, recipes: dict, sessions, seeds: list[int]) -> None:
    """Refuse when a started cell of this run was started with other recipe settings (its
    config.json; this holds where grid.json was lost or predates the identities); reads only."""
    differ = []
    for name, recipe in recipes.items():
        asked = _plain(recipe.to_dict())
        for session in sessions:
            for seed in seeds:
                config = Cell(name, session, seed).directory(out) / CONFIG_FILE
                if config.is_file():
                    differ += [f"{name} {session} seed {seed}: {d}"
                               for d in differences(_plain(read_json(config).get("recipe", {})), asked)]
    _refuse_other_settings(out, differ)


def write_grid(out: Path, grid: dict) -> None:
    """OUT/grid.json, atomically."""
    with atomic_write_path(out / GRID_FILE) as tmp:
        tmp.write_text(json.dumps(grid, indent=1) + "\n")


def reproduce(out: str | os.PathLike, *, recipes: list[str], seeds: list[int], sessions: dict,
              settings: list[str] | dict = (), workers: int = 1, log=print, progress: bool = False,
              executor: str = "local", scheduler: str | None = None, threads_per_worker: int | str = 1,
              device="auto") -> list[dict]:
    """Run every (recipe, session, seed) cell, and the pre-trainings they need, with ``executor``
    ("local" or "dask"); returns one outcome per cell (status, row or error, the device it trained
    on), in grid order.

    Each of the ``workers`` runs one task at a time with ``threads_per_worker`` threads (1, or
    "share": cores / workers; :mod:`motordecode.workers`) on ``device`` ("auto", "cpu", "cuda":
    worker k on GPU k mod n_gpus, "cuda:N"); with ``scheduler`` the device is resolved on each
    Dask worker.

    ``sessions``: {name: a session file, or the SynthConfig of a session to generate into OUT/data}.
    Everything is checked before anything is written: the numbers, the recipes and settings, and
    that the grid in ``out`` holds none of them with other settings (see the module's docstring).
    A second process on ``out`` is refused. On SIGINT or SIGTERM (or OUT/stop written by hand) the
    cells that did not finish have status "stopped" (at a checkpoint) or "not started", and every
    outcome has ``stopped_by`` (the signal's name, or "OUT/stop")."""
    from motordecode.data.synthetic import SynthConfig

    if executor not in EXECUTORS:
        raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}.")
    if scheduler is not None and executor != "dask":
        raise ConfigError("a scheduler address joins a Dask cluster; use it with the dask executor.", setting="executor")
    workers, seeds = check_workers(workers), check_seeds(seeds)
    with collecting():  # the oversubscription warning, one line
        if scheduler is None:
            threads, device = check_threads(threads_per_worker, workers), check_device(device)
        else:  # the cluster's workers have their own cores and GPUs
            if threads_per_worker == SHARE:
                raise ConfigError("--threads-per-worker share divides this machine's cores, not the cluster's; "
                                  "with --scheduler give a number (docs/cluster.md: the workers' limits).",
                                  setting="threads_per_worker")
            threads, device = check_threads(threads_per_worker, 1, cores=None), check_device_text(device)
    if not sessions:
        raise ConfigError("a grid needs at least one session.")
    out = Path(out)
    recipes = _recipe_names(recipes)
    base = _recipes(recipes, settings)  # validates every recipe and setting before any cell runs
    generated = {name: config for name, config in sessions.items() if isinstance(config, SynthConfig)}
    check_generated(out, generated)
    identities = {name: {"synthetic": _plain(asdict(value))} if name in generated else session_identity(value)
                  for name, value in sessions.items()}
    with run_lock(out):
        grid = grown_grid(out, base, identities, seeds)
        _check_started_cells(out, base, sessions, seeds)
        files = {**{name: Path(value) for name, value in sessions.items() if name not in generated},
                 **_generate(out, generated)}
        pretrainings, cells = plan(out, base, {name: files[name] for name in sessions}, seeds)
        record, earlier = provenance(files, {n: changed_fields(r) for n, r in base.items()}), grid.get("provenance", {})
        grid["provenance"] = {**record, **{part: {**earlier.get(part, {}), **record[part]}  # accumulates too
                                           for part in ("sessions", "overrides")}}
        write_grid(out, grid)  # the plan, so the report can name missing cells
        (out / STOP_FILE).unlink(missing_ok=True)  # a stop asked of an earlier run
        log(f"reproduce: {len(recipes)} recipes x {len(sessions)} sessions x {len(seeds)} seeds = {len(cells)} "
            f"cells (+ {len(pretrainings)} pre-trainings) on {workers} worker(s) x {threads} thread(s), device {device} "
            f"-> {out}")
        with _stop_on_signals(out) as received:
            outcomes = _run(pretrainings, cells, workers, threads, device, executor, scheduler, log, progress)
            stopped_by = received[0] if received else "OUT/stop" if (out / STOP_FILE).exists() else None
        (out / STOP_FILE).unlink(missing_ok=True)
    if stopped_by is not None:
        outcomes = [{**o, "stopped_by": stopped_by} for o in outcomes]
        counts = {status: sum(o["status"] == status for o in outcomes) for status in ("stopped", "not started")}
        log(f"stopped by {stopped_by}: {sum(o['status'] in FINISHED for o in outcomes)} of {len(outcomes)} cells "
            f"finished, {counts['stopped']} stopped at a checkpoint, {counts['not started']} not started; the same "
            "command resumes them.")
    order = {cell["key"]: i for i, cell in enumerate(cells)}
    return sorted(outcomes, key=lambda o: order[o["key"]])


def _run(pretrainings: dict, cells: list[dict], workers: int, threads: int, device: str, executor: str,
         scheduler: str | None, log, progress: bool) -> list[dict]:
    """The cells' outcomes, each logged as it comes; every task with ``threads`` and ``device``."""
    placement = {"threads": threads, "device": device, "ran_on": None}
    pretrainings = {key: {**job, **placement} for key, job in pretrainings.items()}
    cells = [{**cell, **placement} for cell in cells]
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(cells), unit="cell", file=sys.stderr)
    outcomes = []
    running = (_local(pretrainings, cells, workers, threads) if executor == "local"
               else _dask(pretrainings, cells, workers, threads, device, scheduler))
    for outcome in running:
        if outcome["kind"] == "pretrain":
            label = f"pre-training {outcome['recipe_name']} {outcome['group']} seed {outcome['seed']}"
            log(f"  FAILED {label}: {outcome['error']}" if outcome["status"] == "failed" else
                f"  {label}: stopped ({outcome['note']})" if outcome["status"] == "stopped" else
                f"  {label}: not started" if outcome["status"] == "not started" else
                f"  {label}: {outcome['minutes']:.1f} min ({outcome['status']})")
            continue
        outcomes.append(outcome)
        label = f"{outcome['recipe_name']} {outcome['session']} seed {outcome['seed']}"
        if outcome["status"] == "failed":
            log(f"  FAILED {label}: {outcome['error']}")
        elif outcome["status"] == "stopped":
            log(f"  {label}: stopped ({outcome['note']})")
        elif outcome["status"] in FINISHED:
            log(f"  {label}: R2 {outcome['row']['r2']:.3f}, {outcome['minutes']:.1f} min ({outcome['status']})")
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return outcomes
