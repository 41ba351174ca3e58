"""Published checkpoints as run directories that ``motordecode evaluate RUN_DIR --data FILE`` accepts.

``import_checkpoint(KIND, FILE, OUT)`` asks the registry which family reads checkpoints of KIND
(``tinyrsnn``: a stork state dict of the RSNN repository; ``ann2d``, ``ann3d``, ``snn2``,
``snn3d``: NeuroBench baseline files) and writes OUT/config.json (the recipe of that name, 4 ms
steps, no data file: pass ``--data`` to evaluate) and OUT/model.pt.
"""

from __future__ import annotations

import os
from pathlib import Path

from motordecode.decoders.registry import checkpoint_family, get_recipe
from motordecode.runs import run_config, save_model, start_run

PUBLISHED_STEP_S = 0.004  # the published networks run on 4 ms samples


def import_checkpoint(kind: str, path: str | os.PathLike, out: str | os.PathLike) -> Path:
    model = checkpoint_family(kind).import_checkpoint(kind, path)
    recipe = get_recipe(kind)
    source = Path(path).resolve()
    session = f"{source.parent.name}/{source.stem}"
    config = run_config(recipe, source, session, seed=0, n_channels=model.config.n_channels,
                        n_outputs=model.config.n_outputs, step_s=PUBLISHED_STEP_S)
    config["data"] = None
    config["imported_from"] = str(source)
    run_dir = start_run(out, config, resume=False, occupied_hint="choose another run directory",
                        occupied_setting="out_new")
    save_model(run_dir, model, {})
    return run_dir
