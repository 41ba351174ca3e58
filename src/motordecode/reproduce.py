"""The whole comparison in one command: every (recipe, session, seed) cell as a run directory.

    OUT/grid.json                                the recipes, sessions and seeds asked for
    OUT/data/<session>_synthetic.mat             the generated stand-ins (``synthetic``)
    OUT/pretrain/<recipe>/<monkey>/seed<k>/      one pre-training per (recipe, monkey, seed)
    OUT/cells/<recipe>/<session>/seed<k>/        one ordinary run directory per cell

The tasks form a graph: a recipe that pre-trains (tinyRSNN and bigRSNN by default; any recipe
with ``pretrain_epochs`` > 0) is pre-trained once per monkey and seed on the monkey's sessions (:mod:`motordecode.pretraining`), and that monkey's
cells fine-tune from it; the other cells start at once. A task whose result exists is read, not
retrained; a started one resumes from its checkpoint. A cell that fails (or whose pre-training
failed) is reported with its error and the others go on; :func:`reproduce` returns every cell's
outcome. Tasks run in a process pool on this machine, or on Dask distributed, one torch thread
each. ``motordecode report OUT`` turns the cells into tables and plots
(:mod:`motordecode.report.grid`).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from motordecode.errors import ConfigError
from motordecode.fileio import atomic_write_path
from motordecode.provenance import provenance
from motordecode.recipes import changed_fields, get_recipe, override, recipe_from_dict, split_assignment
from motordecode.runs import CONFIG_FILE, METRICS_FILE, read_json

SYNTHETIC_DURATION_S = 300.0
GRID_FILE = "grid.json"


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
    """'0-4' -> [0, 1, 2, 3, 4]; '0,2,5' -> [0, 2, 5]."""
    seeds: list[int] = []
    try:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            lo, sep, hi = part.partition("-")
            seeds.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
    except ValueError:
        raise ConfigError(f"--seeds expects integers or ranges like 0-4, got {text!r}.") from None
    if not seeds or min(seeds) < 0:
        raise ConfigError(f"--seeds needs at least one non-negative seed, got {text!r}.")
    return sorted(set(seeds))


def synthetic_sessions(out: Path, duration_s: float = SYNTHETIC_DURATION_S) -> dict[str, Path]:
    """Stand-ins for the six benchmark sessions, generated (realistic, one seed per session) and
    named after them, never as them (``indy_20160622_01_synthetic``, see
    :func:`motordecode.data.sessions.stand_in_name`): three Indy with 96 channels, three Loco with
    192. Existing files are kept."""
    from motordecode.data.sessions import stand_in_name
    from motordecode.data.synthetic import SynthConfig, write_synthetic
    from motordecode.report.published import SESSIONS

    files = {}
    for index, name in enumerate(SESSIONS):
        path = out / "data" / f"{stand_in_name(name)}.mat"
        if not path.is_file():
            write_synthetic(path, SynthConfig(monkey=name[:4], duration_s=duration_s, seed=1000 + index))
        files[path.stem] = path
    return files


def real_sessions(data_dir: Path, names: list[str] | None = None) -> dict[str, Path]:
    """The benchmark sessions in ``data_dir``, each checked against its MD5."""
    from motordecode.data.sessions import CATALOG, session_status
    from motordecode.report.published import SESSIONS

    files = {}
    for name in names or SESSIONS:
        if name not in CATALOG:
            raise ConfigError(f"unknown session {name!r}; the benchmark sessions are {', '.join(SESSIONS)}.")
        status = session_status(CATALOG[name], data_dir)
        if not status["present"]:
            raise ConfigError(f"{status['path']} is missing; fetch it with 'motordecode data fetch {name} "
                              f"--dir {data_dir}'.")
        if status["verified"] is False:
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
            raise ConfigError(f"--set {key}: {target!r} is not a recipe of the grid ({', '.join(names)}).")
        takers = [target] if dot else [name for name in names if field in has[name]]
        if not takers or field not in has[takers[0]]:
            raise ConfigError(f"--set {key}: no recipe of the grid ({', '.join(names)}) has that field.")
        for name in takers:
            changes[name][field] = value
    return {name: override(r, changes[name]) for name, r in recipes.items()}


def finished_or_trained(job: dict) -> tuple[dict, str]:
    """(metrics row, "done before" | "trained") of the run ``job`` describes (recipe dict, data,
    seed, out, and optionally pretrain files and the pretrained file): read when its metrics.json
    exists, else trained, resuming a started run; one thread."""
    from motordecode.pipeline import train_run

    out = Path(job["out"])
    if (out / METRICS_FILE).is_file():
        return read_json(out / METRICS_FILE), "done before"
    row = train_run(recipe_from_dict(job["recipe"]), job["data"], seed=job["seed"], out=out,
                    resume=(out / CONFIG_FILE).is_file(), progress=False, threads=1,
                    pretrain=job.get("pretrain", ()), pretrained=job.get("pretrained"))
    return row, "trained"


def _failure(exc: BaseException) -> str:
    message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    if os.environ.get("MOTORDECODE_DEBUG"):
        message += "\n" + traceback.format_exc()
    return message


def run_pretraining(job: dict) -> dict:
    """Pre-train one (recipe, monkey, seed) (or find it done); never raises: an error is returned."""
    from motordecode.pretraining import PRETRAINED_FILE, pretrain_run

    started = time.perf_counter()
    done = (Path(job["out"]) / PRETRAINED_FILE).is_file()
    try:
        path = pretrain_run(recipe_from_dict(job["recipe"]), job["pretrain"], seed=job["seed"], out=job["out"],
                            threads=1)
        status = "done before" if done else "trained"
        return {**job, "status": status, "pretrained": str(path), "minutes": (time.perf_counter() - started) / 60}
    except Exception as exc:  # noqa: BLE001 - reported; the cells that need it fail with it
        return {**job, "status": "failed", "error": _failure(exc), "minutes": (time.perf_counter() - started) / 60}


def run_cell(job: dict, pretraining: dict | None = None) -> dict:
    """Train one cell (or read it when finished), from ``pretraining``'s network when the cell
    needs one; never raises: an error is returned in the row."""
    started = time.perf_counter()
    if job.get("error"):
        return {**job, "status": "failed", "minutes": 0.0}
    if (Path(job["out"]) / METRICS_FILE).is_file():  # finished: whatever became of its pre-training
        return {**job, "status": "done before", "row": read_json(Path(job["out"]) / METRICS_FILE), "minutes": 0.0}
    if pretraining is not None:
        if pretraining["status"] == "failed":
            return {**job, "status": "failed", "error": f"pre-training failed: {pretraining['error']}", "minutes": 0.0}
        job = {**job, "pretrained": pretraining["pretrained"]}
    try:
        row, status = finished_or_trained(job)
        return {**job, "status": status, "row": row, "minutes": (time.perf_counter() - started) / 60}
    except Exception as exc:  # noqa: BLE001 - a failed cell is reported, the grid goes on
        return {**job, "status": "failed", "error": _failure(exc), "minutes": (time.perf_counter() - started) / 60}


EXECUTORS = ("local", "dask")


def _local(pretrainings: dict, cells: list[dict], workers: int):
    """Outcomes as tasks finish, from a process pool on this machine (spawned, one thread each):
    the pre-trainings and the cells that need none first, each other cell once its pre-training
    is done."""
    context = multiprocessing.get_context("spawn")
    waiting: dict = {}
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=context) as pool:
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


def _dask(pretrainings: dict, cells: list[dict], workers: int, scheduler: str | None):
    """Outcomes as tasks finish, from Dask distributed: a cluster of ``workers`` single-threaded
    processes on loopback (no dashboard), or the existing cluster at ``scheduler``. Each cell that
    needs a pre-training depends on its task. A worker that dies mid-task has the task run again
    elsewhere, which resumes it from its checkpoint."""
    try:
        from distributed import Client, LocalCluster
        from distributed import as_completed as finished
    except ImportError:
        raise ConfigError("--executor dask needs Dask distributed: pip install 'motordecode[cluster]'.") from None
    import dask

    cluster = None
    if scheduler is None:  # Dask's default MALLOC_TRIM_THRESHOLD_ fixes glibc's mmap threshold: ~17% slower cells
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
            cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=None)
    try:
        client = Client(cluster if cluster is not None else scheduler)
    except OSError as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {scheduler} ({exc}).") from None
    try:
        jobs, futures = {}, []
        for key, job in pretrainings.items():
            jobs[key] = job
            futures.append(client.submit(run_pretraining, job, pure=False, key=key))
        by_key = {f.key: f for f in futures}
        for cell in cells:
            jobs[cell["key"]] = cell
            needs = (by_key[cell["pretraining"]],) if cell.get("pretraining") in by_key else ()
            futures.append(client.submit(run_cell, cell, *needs, pure=False, key=cell["key"]))
        for future in finished(futures):
            try:
                yield future.result()
            except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker after repeated deaths: report the task
                yield {**jobs[future.key], "status": "failed", "error": f"{type(exc).__name__}: {exc}", "minutes": 0.0}
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


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
                       "out": str(cell.directory(out))}
                if error:
                    job["error"] = error
                elif files:
                    key = f"pretrain-{name}-{group}-seed{seed}"
                    pretrainings.setdefault(key, {
                        "kind": "pretrain", "key": key, "recipe_name": name, "group": group, "seed": seed,
                        "recipe": recipe.to_dict(), "pretrain": files,
                        "out": str(pretraining_directory(out, name, group, seed))})
                    job.update(pretrain=files, pretraining=key)
                cells.append(job)
    return pretrainings, cells


def _recipe_names(names: list[str]) -> list[str]:
    """``all`` stands for every registered recipe."""
    from motordecode.recipes import recipe_names

    return recipe_names() if names == ["all"] else names


def reproduce(out: str | os.PathLike, *, recipes: list[str], seeds: list[int], sessions: dict[str, Path],
              settings: list[str] | dict = (), workers: int = 1, log=print, progress: bool = False,
              executor: str = "local", scheduler: str | None = None) -> list[dict]:
    """Run every (recipe, session, seed) cell, and the pre-trainings they need, with ``executor``
    ("local" or "dask"); returns one outcome per cell (status, row or error), in grid order."""
    if executor not in EXECUTORS:
        raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}.")
    if scheduler is not None and executor != "dask":
        raise ConfigError("--scheduler joins a Dask cluster; add --executor dask.")
    out = Path(out)
    recipes = _recipe_names(recipes)
    base = _recipes(recipes, settings)  # validates every recipe and setting before any cell runs
    pretrainings, cells = plan(out, base, sessions, seeds)
    with atomic_write_path(out / GRID_FILE) as tmp:  # the plan, so the report can name missing cells
        tmp.write_text(json.dumps({"recipes": recipes, "sessions": list(sessions), "seeds": seeds,
                                   "provenance": provenance(sessions, {n: changed_fields(r) for n, r in base.items()})},
                                  indent=1) + "\n")
    log(f"reproduce: {len(recipes)} recipes x {len(sessions)} sessions x {len(seeds)} seeds = {len(cells)} cells "
        f"(+ {len(pretrainings)} pre-trainings) on {workers} worker(s) -> {out}")
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(cells), unit="cell", file=sys.stderr)
    outcomes = []
    running = (_local(pretrainings, cells, workers) if executor == "local"
               else _dask(pretrainings, cells, workers, scheduler))
    for outcome in running:
        if outcome["kind"] == "pretrain":
            label = f"pre-training {outcome['recipe_name']} {outcome['group']} seed {outcome['seed']}"
            log(f"  FAILED {label}: {outcome['error']}" if outcome["status"] == "failed" else
                f"  {label}: {outcome['minutes']:.1f} min ({outcome['status']})")
            continue
        outcomes.append(outcome)
        label = f"{outcome['recipe_name']} {outcome['session']} seed {outcome['seed']}"
        if outcome["status"] == "failed":
            log(f"  FAILED {label}: {outcome['error']}")
        else:
            log(f"  {label}: R2 {outcome['row']['r2']:.3f}, {outcome['minutes']:.1f} min ({outcome['status']})")
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    order = {cell["key"]: i for i, cell in enumerate(cells)}
    return sorted(outcomes, key=lambda o: order[o["key"]])
