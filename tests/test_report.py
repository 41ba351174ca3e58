"""Every report says what it is: provenance in report.md, results.json, grid.json and every figure;
generated sessions never pose as recordings; the report beside every published row, per monkey."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess

import numba
import numpy as np
import pytest
import torch

from motordecode.cli import main
from motordecode.errors import ConfigError
from motordecode.provenance import session_source
from motordecode.report.published import R2_PER_SESSION, SESSIONS, SUMMARY, per_monkey
from motordecode.reproduce import reproduce, synthetic_sessions

INDY, LOCO = "indy_20160622_01_synthetic", "loco_20170210_03_synthetic"
SETTINGS = ["epochs=1", "wiener.alphas=1", "wiener.history=3"]  # seconds per cell


class Figures:
    """The text and axes of every figure saved while it is installed (the footer is a figure text)."""

    def __init__(self, monkeypatch):
        import matplotlib.figure

        self.saved = []
        original = matplotlib.figure.Figure.savefig

        def savefig(fig, target, *args, **kwargs):
            self.saved.append({"texts": [t.get_text() for t in fig.texts], "axes": fig.axes})
            return original(fig, target, *args, **kwargs)
        monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """A gru,wiener grid of one seed on one Indy and one Loco stand-in."""
    out = tmp_path_factory.mktemp("grid")
    sessions = {k: v for k, v in synthetic_sessions(out, duration_s=20).items() if k in (INDY, LOCO)}
    outcomes = reproduce(out, recipes=["gru", "wiener"], seeds=[0], sessions=sessions, settings=SETTINGS,
                         workers=2, log=lambda *_: None)
    assert [o["status"] for o in outcomes] == ["trained"] * 4
    return out, outcomes


@pytest.fixture(scope="module")
def report(grid):
    from motordecode.report.grid import write_report

    out, _ = grid
    mp = pytest.MonkeyPatch()
    figures = Figures(mp)
    try:
        text = write_report(out).read_text()
    finally:
        mp.undo()
    return text, json.loads((out / "results.json").read_text()), figures.saved


def _section(text: str, title: str) -> str:
    return text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_a_gru_wiener_grid_lists_every_published_row(report):
    text, _, _ = report
    overall = _section(text, "Test R2 over all sessions, beside the published rows")
    for name, facts in SUMMARY.items():
        assert f"| {name} | published: {facts['source']} | {facts['r2']:.3f} |" in overall
    assert "| GRU | published: AEGRU paper" in overall and "| 0.670 |" in overall  # the vanilla GRU of Table III
    assert re.search(r"\| `gru` \| -?\d\.\d{3} \(n=1\) \(pub\. 0\.740, [+-]\d\.\d{3}\)", text)
    assert SUMMARY["GRU"]["r2"] == pytest.approx(np.mean(R2_PER_SESSION["GRU"][0]), abs=0.005)
    monkeys = _section(text, "Summary per monkey, beside the published rows")
    for name in ("AEGRU", "AEGRU pruned 50%", "bigRSNN", "tinyRSNN", "ANN2D", "ANN3D", "SNN streaming", "SNN3D", "GRU"):
        assert monkeys.count(f"| {name} | published:") == 2, name


def test_one_seed_shows_n_1_not_a_zero_std(report):
    text, _, _ = report
    table = _section(text, "Test R2 per session")
    assert "± 0.000" not in text and table.count("(n=1)") == 4


def test_summaries_per_monkey_with_their_own_footprints(report):
    text, results, _ = report
    for recipe in ("gru", "wiener"):
        for monkey, session, title in (("indy", INDY, "Indy (96 channels)"), ("loco", LOCO, "Loco (192 channels)")):
            block = text.split(f"### {title}", 1)[1].split("###", 1)[0]
            cell = next(r for r in results["cells"] if r["recipe"] == recipe and r["session"] == session)
            line = next(line for line in block.splitlines() if line.startswith(f"| {recipe} (mean of 1 cells"))
            assert f"| {cell['r2']:.3f} | {cell['footprint_bytes']:.0f} |" in line
    footprints = {r["session"]: r["footprint_bytes"] for r in results["cells"] if r["recipe"] == "wiener"}
    assert footprints[INDY] != footprints[LOCO]  # 96 and 192 channels: an average would hide both
    indy = text.split("### Indy (96 channels)", 1)[1].split("###", 1)[0]
    tiny = per_monkey("tinyRSNN")["indy"]
    assert f"| tinyRSNN | published: " in indy and f"| {tiny['r2']:.3f} | 21000 |" in indy


def test_times_under_a_minute_are_in_seconds(report):
    text, results, _ = report
    times = _section(text, "Training time per cell")
    for row in results["cells"]:
        seconds = row["timings"]["train_s"]
        assert seconds < 60  # 20 s sessions, one epoch
        assert f"| {row['recipe']} {row['session']} seed 0 | {seconds:.1f} s | - |" in times


def test_provenance_fields_are_present_and_true(grid, report):
    out, _ = grid
    text, results, figures = report
    grid_record = json.loads((out / "grid.json").read_text())["provenance"]
    for record in (results["provenance"], grid_record):
        sessions = record["sessions"]
        assert set(sessions) == {INDY, LOCO}
        for name, index in ((INDY, 0), (LOCO, 3)):
            assert sessions[name]["kind"] == "synthetic" and sessions[name]["stands_in_for"] == SESSIONS[index]
            generator = sessions[name]["generator"]
            assert (generator["duration_s"], generator["seed"], generator["difficulty"], generator["monkey"]) == \
                   (20, 1000 + index, "realistic", name[:4])
    versions = results["provenance"]["versions"]
    machine = results["provenance"]["machine"]
    assert len(versions) == len(machine) == 1 and versions[0]["cells"] == 4
    assert versions[0]["torch"] == torch.__version__ and versions[0]["numba"] == numba.__version__
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=os.path.dirname(__file__))
    assert versions[0]["git_commit"] == (head.stdout.strip() if head.returncode == 0 else None)
    assert machine[0]["cores"] == os.cpu_count() and machine[0]["device"] == "cpu" and machine[0]["cpu"]
    assert grid_record["overrides"] == {"gru": {"epochs": 1}, "wiener": {"alphas": "1", "history": 3}}
    assert {r: [v["epochs"] for v in variants] for r, variants in results["provenance"]["overrides"].items()
            if r == "gru"} == {"gru": [1]}
    what = _section(text, "What this is")
    assert "2 synthetic session(s)" in what and "20 s" in what and "seed(s) 1000, 1003" in what
    assert f"torch {torch.__version__}, numba {numba.__version__}" in what and "gru epochs=1; wiener history=3 alphas=1" in what
    assert "stands in for indy_20160622_01" in what
    assert len(figures) == 2  # pareto.png and sessions.png, each with the provenance as its footer
    for figure in figures:
        footer = "\n".join(figure["texts"])
        assert "synthetic session(s)" in footer and f"torch {torch.__version__}" in footer and "cores" in footer


def test_a_recording_is_named_by_its_md5(stevenson_file, tmp_path):
    source = session_source(stevenson_file)
    assert source["kind"] == "recording" and source["verified"] is None
    assert source["md5"] == hashlib.md5(stevenson_file.read_bytes()).hexdigest()
    impostor = tmp_path / "indy_20170131_02.mat"
    shutil.copy(stevenson_file, impostor)
    assert session_source(impostor)["verified"] is False  # a benchmark name with other bytes


def test_data_list_never_shows_a_generated_file_as_a_benchmark_session(tmp_path, capsys):
    data = tmp_path / "data"
    sessions = synthetic_sessions(tmp_path, duration_s=5)
    assert all(path.parent == data and path.stem.endswith("_synthetic") for path in sessions.values())
    shutil.copy(sessions[INDY], data / "indy_20160622_01.mat")  # a grid of an older version named them so
    assert main(["data", "list", "--dir", str(data)]) == 0
    listing = capsys.readouterr().out
    assert "MISMATCH" not in listing
    line = next(line for line in listing.splitlines() if line.strip().startswith("indy_20160622_01 "))
    assert "absent: indy_20160622_01.mat is a generated file (synthetic indy, 5 s, seed 1000, realistic)" in line
    generated = listing.split("generated sessions", 1)[1]
    assert all(f"{name}.mat  synthetic {name[:4]}, 5 s" in generated for name in sessions)
    assert main(["data", "list", "--dir", str(data), "--json"]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out) if r["name"] == "indy_20160622_01")
    assert row["present"] is False and row["verified"] is None and row["generated"]["seed"] == 1000


def test_a_generated_session_never_takes_a_session_name(tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path / "indy_20170131_02.mat"), "--duration", "5"]) == 2
    err = capsys.readouterr().err
    assert "must not pose as it" in err and "indy_20170131_02_synthetic.mat" in err
    assert not (tmp_path / "indy_20170131_02.mat").exists()
    with pytest.raises(ConfigError, match="pose"):
        from motordecode.data.synthetic import SynthConfig, write_synthetic

        write_synthetic(tmp_path / "loco_20170213_02.nwb", SynthConfig(monkey="loco", duration_s=5), fmt="nwb")


def test_predictions_show_the_whole_test_split_a_zoom_units_and_provenance(indy_file, tmp_path, monkeypatch):
    from motordecode.pipeline import train_run
    from motordecode.recipes import get_recipe

    figures = Figures(monkeypatch)
    row = train_run(get_recipe("wiener"), indy_file, out=tmp_path / "run", progress=False)
    saved = np.load(tmp_path / "run" / "predictions.npz")
    (figure,) = figures.saved
    whole, zoom = figure["axes"][0], figure["axes"][1]
    t_end = (len(saved["labels"]) - 1) * 0.004
    assert whole.lines[0].get_xdata()[-1] == pytest.approx(t_end)  # the whole split, not its first 20 s
    assert zoom.lines[0].get_xdata()[-1] < t_end and "mm per 4 ms step" in whole.get_ylabel()
    footer = "\n".join(figure["texts"])
    assert "1 synthetic session(s)" in footer and "seed(s) 1" in footer and "wiener none" in footer
    assert row["provenance"]["sessions"]["indy_synth"]["generator"]["seed"] == 1


def test_pareto_counts_one_kind_of_operation_per_4ms_step(report):
    from matplotlib.ticker import FuncFormatter

    from motordecode.report.grid import _figure_points, summarize
    from motordecode.report.plots import _log_axis

    _, results, figures = report
    measured, published = _figure_points(summarize(results["cells"]))
    cells = {(r["recipe"], r["session"][:4]): r for r in results["cells"]}
    for point in measured:
        cell = cells[(point["label"], point["monkey"])]
        assert point["ops"] == cell["effective_macs"] + cell["effective_acs"]
    stars = {(p["label"], p["monkey"]): p for p in published if p.get("ops")}
    assert stars[("tinyRSNN", "loco")]["ops"] == pytest.approx(np.mean([354, 405, 427]))  # effective ACs
    assert stars[("AEGRU pruned 50%", None)]["ops"] == SUMMARY["AEGRU pruned 50%"]["ops"]
    assert stars[("GRU-t1", None)]["ops"] == SUMMARY["GRU-t1"]["effective_macs"] + SUMMARY["GRU-t1"]["effective_acs"]
    assert all("dense" not in key for p in published for key in p)
    pareto = next(f for f in figures if len(f["axes"]) == 2)
    assert "operations" in pareto["axes"][0].get_xlabel() and "footprint" in pareto["axes"][1].get_xlabel()

    class Axis:
        def set_major_locator(self, _): pass
        def set_minor_formatter(self, _): pass
        def set_major_formatter(self, formatter): self.formatter = formatter
    axis = Axis()
    _log_axis(axis)
    assert isinstance(axis.formatter, FuncFormatter)
    assert [axis.formatter(v, None) for v in (200, 2000, 50000, 1.2e6)] == ["200", "2k", "50k", "1.2M"]


def test_sessions_figure_has_a_title_and_the_published_markers(report):
    _, _, figures = report
    bars = next(f for f in figures if len(f["axes"]) == 1)["axes"][0]
    assert "test R2 per session" in bars.get_title() and "synthetic" in bars.get_title()
    markers = [line for line in bars.lines if line.get_label() == "published (same system)"]
    assert len(markers) == 1  # gru has published per-session values; wiener has none
    assert sorted(np.round(markers[0].get_ydata(), 3)) == sorted([R2_PER_SESSION["GRU"][0][0],
                                                                   R2_PER_SESSION["GRU"][0][3]])
