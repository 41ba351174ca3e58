"""Published checkpoints as run directories that ``motordecode evaluate RUN_DIR --data FILE`` accepts.

``import_checkpoint("tinyrsnn", FILE, OUT)`` loads a stork state dict of the RSNN repository (key
mapping in :mod:`motordecode.models.rsnn_checkpoint`), ``import_checkpoint("ann2d" | "ann3d" |
"snn2" | "snn3d", FILE, OUT)`` a NeuroBench baseline file (:mod:`motordecode.models.baseline_checkpoint`);
both write OUT/config.json (the recipe of that name, 4 ms steps, no data file: pass ``--data`` to
evaluate) and OUT/model.pt.
"""

from __future__ import annotations

import os
from pathlib import Path

from motordecode.errors import ConfigError
from motordecode.models.baseline_checkpoint import load_neurobench_checkpoint
from motordecode.models.rsnn_checkpoint import load_stork_checkpoint
from motordecode.recipes import get_recipe
from motordecode.runs import run_config, save_model, start_run

KINDS = ("tinyrsnn", "ann2d", "ann3d", "snn2", "snn3d")


def import_checkpoint(kind: str, path: str | os.PathLike, out: str | os.PathLike) -> Path:
    if kind not in KINDS:
        raise ConfigError(f"unknown checkpoint kind {kind!r}; choose from {', '.join(KINDS)}.")
    model = load_stork_checkpoint(path) if kind == "tinyrsnn" else load_neurobench_checkpoint(kind, path)
    recipe = get_recipe(kind)
    source = Path(path).resolve()
    session = f"{source.parent.name}/{source.stem}"
    config = run_config(recipe, source, session, seed=0, n_channels=model.config.n_channels,
                        n_outputs=model.config.n_outputs, step_s=0.004)
    config["data"] = None
    config["imported_from"] = str(source)
    run_dir = start_run(out, config, resume=False)
    save_model(run_dir, model, {})
    return run_dir
