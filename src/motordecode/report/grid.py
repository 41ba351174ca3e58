"""The report of a reproduced grid: DIR/results.json, DIR/report.md, DIR/pareto.png, DIR/sessions.png.

It reads the cells' metrics.json under DIR/cells (written by ``motordecode reproduce``), gathers
them into results.json, and from results.json alone writes per-session R2 (mean +- std over seeds)
beside the published per-session numbers, a six-session summary in the leaderboard's columns, the
training time per cell, and two plots.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from motordecode.errors import ConfigError
from motordecode.fileio import atomic_write_path
from motordecode.report.published import R2_PER_SESSION, SESSIONS, SUMMARY
from motordecode.report.tables import COLUMNS, metrics_table

# recipe -> (per-session published row, summary published row)
PUBLISHED = {"aegru": ("AEGRU", "AEGRU"), "aegru-pruned": ("AEGRU", "AEGRU pruned 50%"), "gru": ("GRU", None),
             "tinyrsnn": ("tinyRSNN", "tinyRSNN"), "bigrsnn": ("bigRSNN", "bigRSNN"), "ann2d": ("ANN2D", "ANN2D"),
             "ann3d": ("ANN3D", "ANN3D"), "snn2": ("SNN2", "SNN streaming"), "snn3d": ("SNN3D", "SNN3D")}
RESULTS_FILE = "results.json"


def collect(directory: str | os.PathLike) -> list[dict]:
    """Every finished cell's metrics row under DIR/cells, sorted; writes DIR/results.json."""
    directory = Path(directory)
    rows = []
    for path in sorted((directory / "cells").glob("*/*/seed*/metrics.json")):
        try:
            rows.append(json.loads(path.read_text()))
        except json.JSONDecodeError:
            continue  # a cell being written: reported as missing
    if not rows:
        raise ConfigError(f"{directory} holds no finished cell (no cells/*/*/seed*/metrics.json); run "
                          f"'motordecode reproduce --out {directory}' first.")
    with atomic_write_path(directory / RESULTS_FILE) as tmp:
        tmp.write_text(json.dumps({"cells": rows}, indent=1) + "\n")
    return rows


def _stats(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std())


def summarize(rows: list[dict]) -> dict:
    """{recipe: {"sessions": {session: (mean, std, n seeds)}, "summary": {key: mean over cells}}}."""
    by_recipe: dict = defaultdict(lambda: defaultdict(list))
    for row in rows:
        by_recipe[row["recipe"]][row["session"]].append(row)
    result = {}
    for recipe, sessions in by_recipe.items():
        cells = [r for rs in sessions.values() for r in rs]
        result[recipe] = {
            "sessions": {s: (*_stats([r["r2"] for r in rs]), len(rs)) for s, rs in sessions.items()},
            "summary": {key: float(np.mean([r[key] for r in cells if r.get(key) is not None]))
                        for key, _, _ in COLUMNS if any(r.get(key) is not None for r in cells)},
            "seeds": sorted({r["seed"] for r in cells}),
        }
    return result


def _session_table(summary: dict, expected: dict, planned: list[str]) -> str:
    present = {s for v in summary.values() for s in v["sessions"]} | set(planned)
    sessions = [s for s in SESSIONS if s in present] + sorted(present - set(SESSIONS))
    lines = ["| recipe | " + " | ".join(sessions) + " |", "|---|" + "---|" * len(sessions)]
    for recipe, facts in summary.items():
        published = R2_PER_SESSION.get(PUBLISHED.get(recipe, (None,))[0])
        cells = []
        for session in sessions:
            if session not in facts["sessions"]:
                cells.append("missing")
                continue
            mean, std, n = facts["sessions"][session]
            text = f"{mean:.3f} ± {std:.3f}"
            if n < expected.get(recipe, n):
                text += f" ({n} of {expected[recipe]} seeds)"
            if published and session in SESSIONS:
                reference = published[0][SESSIONS.index(session)]
                text += f" (pub. {reference:.3f}, {mean - reference:+.3f})"
            cells.append(text)
        lines.append(f"| `{recipe}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(directory: str | os.PathLike) -> Path:
    """Collect the cells, then write report.md and the plots from results.json; returns report.md."""
    from motordecode.report.plots import plot_session_bars, plot_tradeoff

    directory = Path(directory)
    collect(directory)
    rows = json.loads((directory / RESULTS_FILE).read_text())["cells"]
    summary = summarize(rows)
    plan = json.loads((directory / "grid.json").read_text()) if (directory / "grid.json").is_file() else {}
    done = {(r["recipe"], r["session"], r["seed"]) for r in rows}
    asked = plan.get("cells") or [(r, s, k) for r in plan.get("recipes", []) for s in plan.get("sessions", [])
                                  for k in plan.get("seeds", [])]  # every cell asked for, over all runs
    expected = {r: len({k for a, _, k in asked if a == r} or f["seeds"]) for r, f in summary.items()}
    missing = [f"{r} {s} seed {k}" for r, s, k in asked if (r, s, k) not in done]
    measured = [{"label": f"{recipe} (mean of {sum(s[2] for s in f['sessions'].values())} cells)", **f["summary"]}
                for recipe, f in summary.items()]
    published = tuple(dict.fromkeys(PUBLISHED[r][1] for r in summary if PUBLISHED.get(r, (None, None))[1]))
    times = ["| cell | train (min) | its pre-training (min, once for the monkey's cells) |", "|---|---|---|"]
    times += [f"| {r['recipe']} {r['session']} seed {r['seed']} | {r.get('timings', {}).get('train_s', 0) / 60:.1f} | "
              + (f"{r['pretraining']['train_s'] / 60:.1f}" if r.get("pretraining") else "-") + " |" for r in rows]
    text = "\n\n".join([
        f"# Reproduction: {len(rows)} cells",
        "## Test R2 per session (mean ± std over seeds; published per-session value and difference)",
        _session_table(summary, expected, plan.get("sessions", [])),
        f"Missing cells ({len(missing)}): " + ("; ".join(missing) if missing else "none"),
        "## Summary over the sessions, beside the published rows",
        metrics_table(measured, published=published),
        "## Training time per cell", "\n".join(times),
    ]) + "\n"
    with atomic_write_path(directory / "report.md") as tmp:
        tmp.write_text(text)
    ops = lambda f: f.get("effective_macs", 0) + f.get("effective_acs", 0)  # noqa: E731
    points = [{"recipe": r, "r2": f["summary"]["r2"], "ops": max(ops(f["summary"]), 1.0)} for r, f in summary.items()]
    reference = {name: (SUMMARY[name]["ops"] if "ops" in SUMMARY[name] else
                        SUMMARY[name].get("effective_macs", 0) + SUMMARY[name].get("effective_acs", 0),
                        SUMMARY[name]["r2"]) for name in published}
    plot_tradeoff(directory / "pareto.png", {"measured": points}, label_key="recipe", x_key="ops",
                  published={k: v for k, v in reference.items() if v[0] > 0},
                  title="test R2 against effective operations per 4 ms step")
    plot_session_bars(directory / "sessions.png", {r: f["sessions"] for r, f in summary.items()})
    return directory / "report.md"
