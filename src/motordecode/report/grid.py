"""The report of a reproduced grid: DIR/results.json, DIR/report.md, DIR/pareto.png, DIR/sessions.png.

It reads the cells' metrics.json under DIR/cells (written by ``motordecode reproduce``), gathers
them into results.json with their provenance (:mod:`motordecode.provenance`), and from
results.json alone writes: what the results were made from; per-session R2 (mean +- std over n
seeds) beside the published per-session numbers; per monkey (96-channel Indy, 192-channel Loco)
the leaderboard's columns beside every published row; the six-session R2 beside every published
row; the training time per cell; and two figures, each with the provenance in its footer.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from motordecode.data.sessions import monkey_of, stands_in_for
from motordecode.errors import ConfigError
from motordecode.fileio import atomic_write_path
from motordecode.provenance import describe, session_rows, summary as provenance_summary
from motordecode.report.published import MONKEYS, R2_PER_SESSION, SESSIONS, SUMMARY, per_monkey
from motordecode.report.tables import COLUMNS, metrics_table

# recipe -> (per-session published row, summary published row)
PUBLISHED = {"aegru": ("AEGRU", "AEGRU"), "aegru-pruned": ("AEGRU", "AEGRU pruned 50%"), "gru": ("GRU", "GRU"),
             "tinyrsnn": ("tinyRSNN", "tinyRSNN"), "bigrsnn": ("bigRSNN", "bigRSNN"), "ann2d": ("ANN2D", "ANN2D"),
             "ann3d": ("ANN3D", "ANN3D"), "snn2": ("SNN2", "SNN streaming"), "snn3d": ("SNN3D", "SNN3D")}
RESULTS_FILE = "results.json"
OPS_STEP_MS = 4.0  # the published operation counts are per 4 ms step
MONKEY_TITLES = {"indy": "Indy (96 channels)", "loco": "Loco (192 channels)"}


def collect(directory: str | os.PathLike) -> list[dict]:
    """Every finished cell's metrics row under DIR/cells, sorted; writes DIR/results.json with the
    cells' provenance folded into one (or grid.json's, for cells that recorded none)."""
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
    record = provenance_summary([r.get("provenance") for r in rows])
    grid = _grid(directory)
    if record["unrecorded_cells"] == len(rows) and grid.get("provenance"):
        record = {**provenance_summary([grid["provenance"]]), "cells": len(rows), "unrecorded_cells": 0,
                  "from": "grid.json (the cells recorded none)"}
    with atomic_write_path(directory / RESULTS_FILE) as tmp:
        tmp.write_text(json.dumps({"provenance": record, "cells": rows}, indent=1) + "\n")
    return rows


def _grid(directory: Path) -> dict:
    path = directory / "grid.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _stats(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std())


def _ops_per_4ms(row: dict) -> dict:
    """The row with its operation counts as a rate per 4 ms of recording, for the report's tables and
    pareto.png beside the published per-4 ms counts: a row counted per ``ops_step_ms`` is scaled by
    4 / ops_step_ms (the same work spread over 4 ms), and then says so: ``ops_step_ms`` 4, the
    measured step kept as ``ops_measured_step_ms`` (docs/metrics.md)."""
    scale = OPS_STEP_MS / row["ops_step_ms"] if row.get("ops_step_ms") else 1.0
    if scale == 1.0:
        return row
    return {**row, **{k: row[k] * scale for k in ("dense_ops", "effective_macs", "effective_acs")
                      if row.get(k) is not None}, "ops_step_ms": OPS_STEP_MS, "ops_measured_step_ms": row["ops_step_ms"]}


def _means(cells: list[dict]) -> dict:
    return {key: float(np.mean([r[key] for r in cells if r.get(key) is not None]))
            for key, _, _ in COLUMNS if any(r.get(key) is not None for r in cells)}


def summarize(rows: list[dict]) -> dict:
    """{recipe: {"sessions": {session: (mean, std, n seeds)}, "summary": {key: mean over cells},
    "monkeys": {monkey: {key: mean over that monkey's cells}, "cells": n}, "seeds": [...]}}."""
    by_recipe: dict = defaultdict(lambda: defaultdict(list))
    for row in rows:
        by_recipe[row["recipe"]][row["session"]].append(_ops_per_4ms(row))
    result = {}
    for recipe, sessions in by_recipe.items():
        cells = [r for rs in sessions.values() for r in rs]
        monkeys = {}
        for monkey in MONKEYS:
            mine = [r for r in cells if monkey_of(r["session"]) == monkey]
            if mine:
                monkeys[monkey] = {**_means(mine), "cells": len(mine), "sessions": len({r["session"] for r in mine})}
        result[recipe] = {
            "sessions": {s: (*_stats([r["r2"] for r in rs]), len(rs)) for s, rs in sessions.items()},
            "summary": _means(cells),
            "monkeys": monkeys,
            "seeds": sorted({r["seed"] for r in cells}),
        }
    return result


def benchmark_session(session: str) -> str | None:
    """The benchmark session that ``session`` is, or stands in for; None for any other."""
    name = stands_in_for(session) or session
    return name if name in SESSIONS else None


def published_per_session(recipe: str, sessions) -> dict[str, float]:
    """{session: the published R2 of the same system on it (or on the session it stands in for)}."""
    values = R2_PER_SESSION.get(PUBLISHED.get(recipe, (None,))[0])
    if values is None:
        return {}
    return {s: values[0][SESSIONS.index(benchmark_session(s))] for s in sessions if benchmark_session(s)}


def _r2_text(mean: float, std: float, n: int, expected: int | None) -> str:
    text = f"{mean:.3f} (n=1" if n == 1 else f"{mean:.3f} ± {std:.3f} (n={n}"
    return text + (f" of {expected} seeds)" if expected and n < expected else ")")


def _session_table(summary: dict, expected: dict, planned: list[str]) -> str:
    present = {s for v in summary.values() for s in v["sessions"]} | set(planned)
    order = {s: i for i, s in enumerate(SESSIONS)}
    sessions = sorted(present, key=lambda s: (order.get(benchmark_session(s) or "", len(order)), s))
    lines = ["| recipe | " + " | ".join(sessions) + " |", "|---|" + "---|" * len(sessions)]
    for recipe, facts in summary.items():
        published = published_per_session(recipe, sessions)
        cells = []
        for session in sessions:
            if session not in facts["sessions"]:
                cells.append("missing")
                continue
            mean, std, n = facts["sessions"][session]
            text = _r2_text(mean, std, n, expected.get(recipe))
            if session in published:
                text += f" (pub. {published[session]:.3f}, {mean - published[session]:+.3f})"
            cells.append(text)
        lines.append(f"| `{recipe}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _published_ops(facts: dict) -> float | None:
    """Effective operations per 4 ms step of a published row: "ops" (MACs + ACs, not split) or
    effective MACs + effective ACs; None when the source gives neither."""
    if facts.get("ops") is not None:
        return float(facts["ops"])
    parts = [facts[k] for k in ("effective_macs", "effective_acs") if facts.get(k) is not None]
    return float(sum(parts)) if parts else None


def _monkey_tables(summary: dict) -> list[str]:
    """Per monkey: our recipes' means over that monkey's cells, then every published row with facts for it."""
    blocks = []
    for monkey in MONKEYS:
        measured = [{"label": f"{recipe} (mean of {f['monkeys'][monkey]['cells']} cells, "
                              f"{f['monkeys'][monkey]['sessions']} sessions)", **f["monkeys"][monkey]}
                    for recipe, f in summary.items() if monkey in f["monkeys"]]
        published = [{"label": name, **facts[monkey]} for name in SUMMARY
                     if monkey in (facts := per_monkey(name))]
        blocks += [f"### {MONKEY_TITLES[monkey]}", metrics_table(measured, published=tuple(published))]
    return blocks


def _seconds(value: float | None) -> str:
    """A duration in seconds under a minute, in minutes under an hour, else in hours."""
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min" if value < 3600 else f"{value / 3600:.2f} h"


def _figure_points(summary: dict) -> tuple[list[dict], list[dict]]:
    """(our points per recipe and monkey, the published points) for :func:`plot_pareto`: published
    per monkey where the sources say, else the six-session row."""
    ops = lambda f: (f.get("effective_macs") or 0) + (f.get("effective_acs") or 0)  # noqa: E731
    measured = [{"label": recipe, "monkey": monkey, "r2": m["r2"], "ops": ops(m) or None,
                 "footprint_bytes": m.get("footprint_bytes")}
                for recipe, f in summary.items() for monkey, m in f["monkeys"].items()]
    measured += [{"label": recipe, "monkey": None, "r2": f["summary"]["r2"], "ops": ops(f["summary"]) or None,
                  "footprint_bytes": None} for recipe, f in summary.items() if not f["monkeys"]]
    published = []
    for name, facts in SUMMARY.items():
        monkeys = {m: f for m, f in per_monkey(name).items() if "r2" in f}
        for key in ("ops", "footprint_bytes"):
            value = (lambda f: _published_ops(f)) if key == "ops" else (lambda f: f.get("footprint_bytes"))
            points = [{"label": name, "monkey": m, "r2": f["r2"], key: value(f)} for m, f in monkeys.items()
                      if value(f)]
            if not points and value(facts) and "r2" in facts:
                points = [{"label": name, "monkey": None, "r2": facts["r2"], key: value(facts)}]
            published += points
    return measured, published


def write_report(directory: str | os.PathLike) -> Path:
    """Collect the cells, then write report.md and the plots from results.json; returns report.md."""
    from motordecode.report.plots import plot_pareto, plot_session_bars

    directory = Path(directory)
    collect(directory)
    results = json.loads((directory / RESULTS_FILE).read_text())
    rows, record = results["cells"], results["provenance"]
    summary = summarize(rows)
    plan = _grid(directory)
    done = {(r["recipe"], r["session"], r["seed"]) for r in rows}
    asked = plan.get("cells") or [(r, s, k) for r in plan.get("recipes", []) for s in plan.get("sessions", [])
                                  for k in plan.get("seeds", [])]  # every cell asked for, over all runs
    expected = {r: len({k for a, _, k in asked if a == r} or f["seeds"]) for r, f in summary.items()}
    missing = [f"{r} {s} seed {k}" for r, s, k in asked if (r, s, k) not in done]
    footer = describe(record)
    synthetic = any(s["kind"] == "synthetic" for s in record["sessions"].values())
    stand_ins = ("The sessions are generated stand-ins: the published values beside them are those of the "
                 "recordings they are named after, a scale, not a like-for-like comparison." if synthetic else "")
    converted = any(r.get("ops_step_ms") not in (None, OPS_STEP_MS) for r in rows)
    all_sessions = [{"label": f"{recipe} (mean of {sum(s[2] for s in f['sessions'].values())} cells)",
                     **f["summary"]} for recipe, f in summary.items()]
    times = ["| cell | training | its pre-training (once for the monkey's cells) |", "|---|---|---|"]
    times += [f"| {r['recipe']} {r['session']} seed {r['seed']} | {_seconds(r.get('timings', {}).get('train_s'))} | "
              + (_seconds(r["pretraining"]["train_s"]) if r.get("pretraining") else "-") + " |" for r in rows]
    text = "\n\n".join(part for part in [
        f"# Reproduction: {len(rows)} cells",
        "## What this is",
        "\n".join(f"- {line}" for line in footer)
        + (f"\n- provenance from {record['from']}" if record.get("from") else ""),
        "\n".join(session_rows(record["sessions"])) if record["sessions"] else "",
        "## Test R2 per session (mean ± std over n seeds; published value of the same system and difference)",
        stand_ins,
        _session_table(summary, expected, plan.get("sessions", [])),
        f"Missing cells ({len(missing)}): " + ("; ".join(missing) if missing else "none"),
        "## Summary per monkey, beside the published rows",
        "Means over each monkey's cells; operations per 4 ms step"
        + (" (cells counted per longer steps scaled by 4 ms / their step)" if converted else "")
        + "; published rows with the facts their sources give for that monkey.",
        *_monkey_tables(summary),
        "## Test R2 over all sessions, beside the published rows",
        metrics_table(all_sessions, published=tuple(SUMMARY), columns=COLUMNS[:1]),
        "## Training time per cell", "\n".join(times),
    ] if part) + "\n"
    with atomic_write_path(directory / "report.md") as tmp:
        tmp.write_text(text)
    measured, published = _figure_points(summary)
    kind = " (synthetic stand-ins; published: the recordings)" if synthetic else ""
    plot_pareto(directory / "pareto.png", measured, published, footer=footer,
                title="test R2 against effective operations per 4 ms step and footprint" + kind)
    plot_session_bars(directory / "sessions.png", {r: f["sessions"] for r, f in summary.items()},
                      published={r: published_per_session(r, f["sessions"]) for r, f in summary.items()},
                      title="test R2 per session, mean over seeds" + kind, footer=footer)
    return directory / "report.md"
