"""The whole comparison in one command: every (recipe, session, seed) cell as a run directory.

    OUT/grid.json                                the recipes, sessions and seeds asked for
    OUT/data/<session>.mat                       the generated sessions (``synthetic``)
    OUT/cells/<recipe>/<session>/seed<k>/        one ordinary run directory per cell

A cell whose metrics.json exists is read, not retrained; one with a config.json but no metrics is
resumed from its checkpoint. A cell that fails is reported with its error and the others go on;
:func:`reproduce` returns every cell's outcome. Cells run in a process pool on this machine, one
torch thread each. ``motordecode report OUT`` turns the cells into tables and plots
(:mod:`motordecode.report.grid`).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from motordecode.errors import ConfigError
from motordecode.fileio import atomic_write_path
from motordecode.recipes import get_recipe, override, recipe_from_dict, split_assignment
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
    """The six benchmark sessions, generated (realistic, one seed per session) and named like the
    real ones: three Indy with 96 channels, three Loco with 192. Existing files are kept."""
    from motordecode.data.synthetic import SynthConfig, write_synthetic
    from motordecode.report.published import SESSIONS

    files = {}
    for index, name in enumerate(SESSIONS):
        path = out / "data" / f"{name}.mat"
        if not path.is_file():
            write_synthetic(path, SynthConfig(monkey=name[:4], duration_s=duration_s, seed=1000 + index))
        files[name] = path
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
    fits); a key that no recipe of the grid has is an error."""
    from dataclasses import fields

    pairs = [split_assignment(s) for s in settings] if not isinstance(settings, dict) else list(settings.items())
    recipes = {name: get_recipe(name) for name in names}
    for key, _ in pairs:
        if not any(key in {f.name for f in fields(r)} for r in recipes.values()):
            raise ConfigError(f"--set {key}: no recipe of the grid ({', '.join(names)}) has that field.")
    return {name: override(r, {k: v for k, v in pairs if k in {f.name for f in fields(r)}})
            for name, r in recipes.items()}


def finished_or_trained(job: dict) -> tuple[dict, str]:
    """(metrics row, "done before" | "trained") of the run ``job`` describes (recipe dict, data,
    seed, out): read when its metrics.json exists, else trained, resuming a started run; one thread."""
    from motordecode.pipeline import train_run

    out = Path(job["out"])
    if (out / METRICS_FILE).is_file():
        return read_json(out / METRICS_FILE), "done before"
    row = train_run(recipe_from_dict(job["recipe"]), job["data"], seed=job["seed"], out=out,
                    resume=(out / CONFIG_FILE).is_file(), progress=False, threads=1)
    return row, "trained"


def run_cell(job: dict) -> dict:
    """Train one cell (or read it when finished); never raises: an error is returned in the row."""
    started = time.perf_counter()
    try:
        row, status = finished_or_trained(job)
        return {**job, "status": status, "row": row, "minutes": (time.perf_counter() - started) / 60}
    except Exception as exc:  # noqa: BLE001 - a failed cell is reported, the grid goes on
        message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if os.environ.get("MOTORDECODE_DEBUG"):
            message += "\n" + traceback.format_exc()
        return {**job, "status": "failed", "error": message, "minutes": (time.perf_counter() - started) / 60}


EXECUTORS = ("local", "dask")


def _local(jobs: list[dict], workers: int):
    """Outcomes as cells finish, from a process pool on this machine (spawned, one thread each)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=context) as pool:
        for future in as_completed([pool.submit(run_cell, job) for job in jobs]):
            yield future.result()


def _dask(jobs: list[dict], workers: int, scheduler: str | None):
    """Outcomes as cells finish, from Dask distributed: a cluster of ``workers`` single-threaded
    processes on loopback (no dashboard), or the existing cluster at ``scheduler``. A worker that
    dies mid-cell has its cell run again elsewhere, which resumes it from its checkpoint."""
    try:
        from distributed import Client, LocalCluster
        from distributed import as_completed as finished
    except ImportError:
        raise ConfigError("--executor dask needs Dask distributed: pip install 'motordecode[cluster]'.") from None
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None)
    try:
        client = Client(cluster if cluster is not None else scheduler)
    except OSError as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {scheduler} ({exc}).") from None
    try:
        keyed = {f"cell-{job['recipe_name']}-{job['session']}-seed{job['seed']}": job for job in jobs}
        futures = [client.submit(run_cell, job, pure=False, key=key) for key, job in keyed.items()]
        for future in finished(futures):
            try:
                yield future.result()
            except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker after repeated deaths: report the cell
                yield {**keyed[future.key], "status": "failed", "error": f"{type(exc).__name__}: {exc}",
                       "minutes": 0.0}
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def reproduce(out: str | os.PathLike, *, recipes: list[str], seeds: list[int], sessions: dict[str, Path],
              settings: list[str] | dict = (), workers: int = 1, log=print, progress: bool = False,
              executor: str = "local", scheduler: str | None = None) -> list[dict]:
    """Run every (recipe, session, seed) cell with ``executor`` ("local" or "dask"); returns one
    outcome per cell (status, row or error)."""
    if executor not in EXECUTORS:
        raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}.")
    if scheduler is not None and executor != "dask":
        raise ConfigError("--scheduler joins a Dask cluster; add --executor dask.")
    out = Path(out)
    base = _recipes(recipes, settings)  # validates every recipe and setting before any cell runs
    cells = [Cell(name, session, seed) for name in recipes for session in sessions for seed in seeds]
    jobs = [{"recipe_name": c.recipe, "session": c.session, "seed": c.seed, "recipe": base[c.recipe].to_dict(),
             "data": str(sessions[c.session]), "out": str(c.directory(out))} for c in cells]
    with atomic_write_path(out / GRID_FILE) as tmp:  # the plan, so the report can name missing cells
        tmp.write_text(json.dumps({"recipes": recipes, "sessions": list(sessions), "seeds": seeds}, indent=1) + "\n")
    log(f"reproduce: {len(recipes)} recipes x {len(sessions)} sessions x {len(seeds)} seeds = {len(jobs)} cells "
        f"on {workers} worker(s) -> {out}")
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(jobs), unit="cell", file=sys.stderr)
    outcomes = []
    running = _local(jobs, workers) if executor == "local" else _dask(jobs, workers, scheduler)
    for outcome in running:
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
    order = {(j["recipe_name"], j["session"], j["seed"]): i for i, j in enumerate(jobs)}
    return sorted(outcomes, key=lambda o: order[(o["recipe_name"], o["session"], o["seed"])])
