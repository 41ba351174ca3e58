"""Provenance: what a result was made from, stated beside it (metrics.json, grid.json, results.json,
report.md and the footer of every figure).

One record (:func:`provenance`)::

    {"sessions":  {name: {"file", "kind": "synthetic", "generator": {monkey, duration_s, seed, difficulty, ...}}
                       | {"file", "kind": "recording", "md5", "known_md5", "verified"}},
     "overrides": {recipe: {field: value}}     the fields that differ from the registered recipe
     "versions":  {"motordecode", "git_commit", "git_local_changes", "torch", "numba", "numpy", "python"},
     "machine":   {"cpu", "cores", "device", "system"} (+ "gpu", the GPU's name, when "device" is "cuda:N")}

A generated session is known by the settings stored inside it (:mod:`motordecode.data.generated`),
whatever its name; any other file is a recording, named by its MD5 (checked against NeuroBench's
sum for the benchmark sessions). ``device`` is where the result's network was trained ("cpu" or
"cuda:N", :mod:`motordecode.devices`); evaluation always runs on the CPU.
Many records (one per cell of a grid) fold into one :func:`summary`, which says where they differ;
:func:`describe` writes a summary as text lines.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from collections import Counter
from pathlib import Path

from motordecode import __version__
from motordecode.data.generated import generator_settings
from motordecode.data.sessions import CATALOG, describe_generated, md5sum, stands_in_for


@functools.lru_cache(maxsize=64)
def _md5(path: str, size: int, mtime_ns: int) -> str:
    return md5sum(path)


def session_source(path: str | os.PathLike) -> dict:
    """What the data file at ``path`` is: a generated session with its generator's settings, or a
    recording with its MD5 (and, for a session of the record, whether it is NeuroBench's file)."""
    path = Path(path).resolve()
    settings = generator_settings(path)
    if settings is not None:
        return {"file": str(path), "kind": "synthetic", "generator": settings,
                "stands_in_for": stands_in_for(path.stem)}
    stat = path.stat()
    digest = _md5(str(path), stat.st_size, stat.st_mtime_ns)
    known = CATALOG[path.stem].md5 if path.stem in CATALOG else None
    return {"file": str(path), "kind": "recording", "md5": digest, "known_md5": known,
            "verified": None if known is None else digest == known}


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(Path(__file__).parent), *args], capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def versions() -> dict:
    """motordecode (with its git commit when it runs from a checkout, and whether its source differs
    from that commit), torch, numba, numpy and Python."""
    import numba
    import numpy
    import torch

    tracked = _git("ls-files", "--error-unmatch", "__init__.py") is not None  # not a copy inside an ignored folder
    commit = _git("rev-parse", "HEAD") if tracked else None
    changed = None if commit is None else _git("status", "--porcelain", "--", ".") not in ("", None)
    return {"motordecode": __version__, "git_commit": commit, "git_local_changes": changed,
            "torch": torch.__version__, "numba": numba.__version__, "numpy": numpy.__version__,
            "python": platform.python_version()}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


@functools.lru_cache(maxsize=8)
def machine(device: str = "cpu", gpu: str | None = None) -> dict:
    """The CPU model, its logical cores, the device that trained ("cpu" or "cuda:N"; with the GPU's
    name ``gpu``) and the operating system."""
    record = {"cpu": _cpu_model(), "cores": os.cpu_count(), "device": device, "system": platform.platform(terse=True)}
    if gpu is not None:
        record["gpu"] = gpu
    return record


def provenance(sessions: dict[str, str | os.PathLike], overrides: dict[str, dict | None],
               device: dict | None = None) -> dict:
    """The record of results made from ``sessions`` ({name: file}) with recipes changed by
    ``overrides`` ({recipe: {field: value}}, :func:`motordecode.recipes.changed_fields`), trained on
    ``device`` ({"device", optionally "gpu"}: :func:`motordecode.devices.device_facts`; None: the CPU)."""
    return {"sessions": {name: session_source(path) for name, path in sessions.items()},
            "overrides": dict(overrides),
            "versions": versions(), "machine": dict(machine(**(device or {})))}


def _distinct(values: list) -> list[dict]:
    counts = Counter(repr(sorted(v.items())) for v in values)
    first = {repr(sorted(v.items())): v for v in values}
    return [{**first[key], "cells": n} for key, n in counts.most_common()]


def summary(records: list[dict | None]) -> dict:
    """Many records (one per cell; None for a cell that recorded none) as one: every session, each
    recipe's distinct overrides, and the distinct versions and machines, each with its cell count."""
    found = [r for r in records if r]
    sessions: dict = {}
    for record in found:
        sessions.update(record["sessions"])
    overrides: dict = {}
    for record in found:
        for recipe, changed in record["overrides"].items():
            overrides.setdefault(recipe, []).append(changed if changed is not None else {"(unregistered recipe)": True})
    return {"sessions": sessions, "overrides": {r: _distinct(v) for r, v in overrides.items()},
            "versions": _distinct([r["versions"] for r in found]), "machine": _distinct([r["machine"] for r in found]),
            "cells": len(records), "unrecorded_cells": len(records) - len(found)}


def _value(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def describe_sessions(sessions: dict) -> str:
    """One line: the sessions are synthetic (generator settings) or recordings (MD5 checks)."""
    if not sessions:
        return "data: not recorded"
    synthetic = {n: s for n, s in sessions.items() if s["kind"] == "synthetic"}
    parts = []
    if synthetic:
        settings = [s["generator"] for s in synthetic.values()]
        seeds = sorted(g.get("seed") for g in settings)
        parts.append(f"{len(synthetic)} synthetic session(s) (motordecode generator, "
                     f"{'/'.join(sorted({str(g.get('difficulty')) for g in settings}))}, "
                     f"{'/'.join(sorted({format(g.get('duration_s'), 'g') for g in settings}))} s, "
                     f"seed(s) {', '.join(map(str, seeds))}; not the recordings)")
    recordings = {n: s for n, s in sessions.items() if s["kind"] == "recording"}
    if recordings:
        verified = [n for n, s in recordings.items() if s["verified"]]
        differ = [n for n, s in recordings.items() if s["verified"] is False]
        unknown = [f"{n} MD5 {s['md5']}" for n, s in recordings.items() if s["verified"] is None]
        state = ([f"{len(verified)} with NeuroBench's MD5"] if verified else []) + \
                ([f"MD5 DIFFERS from NeuroBench's: {', '.join(differ)}"] if differ else []) + unknown
        parts.append(f"{len(recordings)} recording(s) ({'; '.join(state)})")
    return "data: " + "; ".join(parts)


def describe(record: dict) -> list[str]:
    """A :func:`summary` (or a single record) as short text lines, for figure footers and reports."""
    if "cells" not in record:
        record = summary([record])
    lines = [describe_sessions(record["sessions"])]
    changes = []
    for recipe, variants in record["overrides"].items():
        for variant in variants:
            settings = {k: v for k, v in variant.items() if k != "cells"}
            text = " ".join(f"{k}={_value(v)}" for k, v in settings.items()) or "none"
            changes.append(f"{recipe} {text}" + (f" ({variant['cells']} cells)" if len(variants) > 1 else ""))
    lines.append("overrides: " + ("; ".join(changes) if changes else "not recorded"))
    for key, render in (("versions", _versions_text), ("machine", _machine_text)):
        variants = record[key]
        several = len(variants) > 1
        text = "; ".join(render(v) + (f" ({v['cells']} cells)" if several else "") for v in variants)
        lines.append(f"{key}: {text or 'not recorded'}")
    if record["unrecorded_cells"]:
        lines.append(f"{record['unrecorded_cells']} of {record['cells']} cells recorded no provenance "
                     "(trained before it was recorded)")
    return lines


def _versions_text(v: dict) -> str:
    commit = v.get("git_commit")
    git = "" if commit is None else f" (git {commit[:10]}{', local changes' if v.get('git_local_changes') else ''})"
    return f"motordecode {v.get('motordecode')}{git}, torch {v.get('torch')}, numba {v.get('numba')}"


def _machine_text(m: dict) -> str:
    gpu = f" ({m['gpu']})" if m.get("gpu") else ""
    return f"{m.get('cpu')}, {m.get('cores')} cores, device {m.get('device')}{gpu}"


def session_rows(sessions: dict) -> list[str]:
    """A Markdown table of the sessions: kind, file and the generator's settings or the MD5."""
    lines = ["| session | kind | what | file |", "|---|---|---|---|"]
    for name, source in sessions.items():
        if source["kind"] == "synthetic":
            what = describe_generated(source["generator"])
            if source.get("stands_in_for"):
                what += f"; stands in for {source['stands_in_for']}"
        else:
            check = {True: "as NeuroBench's", False: "DIFFERS from NeuroBench's", None: "no known sum"}[source["verified"]]
            what = f"MD5 {source['md5']} ({check})"
        lines.append(f"| {name} | {source['kind']} | {what} | {source['file']} |")
    return lines
