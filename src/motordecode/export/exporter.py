"""``motordecode export``: a trained run to a deployable directory, checked before it is kept.

Every format is written into a hidden temporary directory next to ``out``, measured against the
Python model on the run's test split, and only then renamed to ``out`` with a ``manifest.json``
(recipe, source metrics, format, sizes, measured agreement). A failure leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from motordecode.errors import ConfigError

FORMATS = ("c", "onnx", "nir")


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} already exists and is not empty; choose another --out or remove it.")


def _make_parents(out: Path) -> list[Path]:
    """Create ``out``'s missing parent directories; returns them, deepest first (to remove on failure)."""
    missing = [p for p in out.parents if not p.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    return missing


def _load(run_dir, data):
    from motordecode.api import load_run
    from motordecode.data.splits import default_split

    run = load_run(run_dir)
    source = data or run.config.get("data")
    if not source:
        raise ConfigError(f"{run_dir} names no data file (an imported checkpoint); pass --data FILE.")
    recording = run.load_recording(source)
    return run, recording, default_split(recording), str(Path(source).resolve())


def test_streams(recording, split, history: int) -> list[tuple[int, int, int]]:
    """(first fed sample, first test sample, end) of each contiguous test run, with ``history``
    samples before it fed as warm-up (their outputs are not scored)."""
    from motordecode.data.splits import contiguous_runs

    return [(max(0, start - history), start, stop) for start, stop in contiguous_runs(split.test)]


def _writer(fmt: str):
    if fmt == "c":
        from motordecode.export.c_export import write_c
        return write_c
    if fmt == "onnx":
        from motordecode.export.onnx_export import write_onnx
        return write_onnx
    from motordecode.export.nir_export import write_nir
    return write_nir


def export_run(run_dir, fmt: str, out, *, mode: str | None = None, data=None) -> dict:
    """Export ``run_dir`` in ``fmt`` ("c", "onnx" or "nir") to the new directory ``out``; returns the manifest."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}.")
    out = Path(out)
    _check_out(out)
    run, recording, split, source = _load(run_dir, data)
    created = _make_parents(out)
    tmp = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
        details = _writer(fmt)(run, recording, split, mode, tmp)
        manifest = {"format": fmt, "recipe": run.recipe.name, "source_run": str(Path(run_dir).resolve()),
                    "data": source, "session": recording.name, "seed": run.config.get("seed"),
                    "source_metrics": {k: run.metrics.get(k) for k in ("r2", "mode", "effective_macs", "effective_acs",
                                                                        "ops_step_ms", "deployed_footprint_bytes")},
                    **details}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        for parent in created:
            with contextlib.suppress(OSError):
                parent.rmdir()
        raise
    return manifest


def agreement(python_model: np.ndarray, exported: np.ndarray, labels: np.ndarray) -> dict:
    """The manifest's measured agreement on the test split of the data checked on (the manifest's
    ``data``), both (T, D) velocity arrays decoded from the same samples: ``max_abs_diff``, the
    largest |difference|; ``r2_python_model``, the R2 of the Python model's outputs (the run's
    deployed model, pruned and quantised, in the exported mode: metrics.json's ``r2`` of that mode
    when ``data`` is the run's own); ``r2_exported``, the R2 of the exported decoder's outputs."""
    from motordecode.metrics.r2 import r2_per_axis

    return {"max_abs_diff": float(np.abs(python_model - exported).max(initial=0.0)),
            "r2_python_model": float(r2_per_axis(python_model, labels).mean()),
            "r2_exported": float(r2_per_axis(exported, labels).mean())}
