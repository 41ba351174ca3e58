"""RUN_DIR/metrics.json: one metrics row per run, written atomically.

``val_r2`` is the deployed model's validation R2 (after pruning and quantisation, decoded as the
test split is); ``val_r2_best_epoch`` the training's, at the checkpoint it kept, before pruning.
Files written before both existed hold the training's under ``val_r2`` (:func:`best_epoch_r2`).
"""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path

import numpy as np
import torch

from motordecode import __version__
from motordecode.fileio import atomic_write_path

REQUIRED_KEYS = ("recipe", "session", "seed", "r2", "r2_x", "r2_y", "val_r2", "val_r2_best_epoch",
                 "footprint_bytes", "deployed_footprint_bytes", "parameter_count", "connection_sparsity",
                 "activation_sparsity", "dense_ops", "effective_macs", "effective_acs", "synaptic_operations",
                 "ops_step_ms")


def package_versions() -> dict:
    return {"motordecode": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def metrics_record(row: dict, *, recipe: str, session: str, seed: int, val_r2: float | None,
                   val_r2_best_epoch: float | None = None) -> dict:
    """``row`` (from the harness) with the run's identity and the package versions: metrics.json's content."""
    record = finite({"recipe": recipe, "session": session, "seed": seed, "val_r2": val_r2,
                     "val_r2_best_epoch": val_r2_best_epoch, **row, "versions": package_versions()})
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise ValueError(f"metrics row lacks {', '.join(missing)}")
    return record


def best_epoch_r2(record: dict) -> float | None:
    """The training's validation R2 of a metrics.json record, also from files that predate
    ``val_r2_best_epoch`` (their ``val_r2`` is the training's)."""
    if "val_r2_best_epoch" in record:
        return record["val_r2_best_epoch"]
    return record.get("val_r2")


def finite(value):
    """``value`` with every non-finite float (a NaN or infinite R2 of a diverged epoch) as None, so
    metrics.json stays valid JSON."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_metrics(run_dir: str | os.PathLike, row: dict, *, recipe: str, session: str, seed: int,
                  val_r2: float | None, val_r2_best_epoch: float | None = None) -> Path:
    """Write :func:`metrics_record` of ``row`` to RUN_DIR/metrics.json."""
    record = metrics_record(row, recipe=recipe, session=session, seed=seed, val_r2=val_r2,
                            val_r2_best_epoch=val_r2_best_epoch)
    path = Path(run_dir) / "metrics.json"
    with atomic_write_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
    return path
