"""The whole comparison in one command: a small grid through `reproduce`, then `report`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from motordecode.cli import main
from motordecode.errors import ConfigError
from motordecode.report.grid import _seconds, collect, summarize, write_report
from motordecode.reproduce import parse_seeds, reproduce, synthetic_sessions


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    sessions = synthetic_sessions(out, duration_s=60)
    outcomes = reproduce(out, recipes=["ann2d", "wiener"], seeds=[0, 1], sessions=sessions,
                         settings=["epochs=1"], workers=2,
                         log=lambda *_: None)
    return out, sessions, outcomes


def test_seeds_parse():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4] and parse_seeds("3,0,1-2") == [0, 1, 2, 3]
    with pytest.raises(ConfigError, match="--seeds"):
        parse_seeds("a-b")


def test_settings_apply_to_every_recipe_with_the_field_or_to_one():
    from motordecode.reproduce import _recipes

    recipes = _recipes(["ann2d", "tinyrsnn"], ["epochs=3", "tinyrsnn.pretrain_epochs=2"])
    assert recipes["ann2d"].epochs == recipes["tinyrsnn"].epochs == 3
    assert recipes["tinyrsnn"].pretrain_epochs == 2 and recipes["ann2d"].pretrain_epochs == 0
    for bad, message in (["aegru.epochs=1"], "not a recipe of the grid"), (["ann2d.heads=2"], "has that field"):
        with pytest.raises(ConfigError, match=message):
            _recipes(["ann2d", "tinyrsnn"], bad)


def test_six_sessions_stand_in_for_the_benchmark_ones_under_their_own_names(grid):
    _, sessions, _ = grid
    assert list(sessions)[:3] == ["indy_20160622_01_synthetic", "indy_20160630_01_synthetic",
                                  "indy_20170131_02_synthetic"]
    assert all(name.startswith("loco") for name in list(sessions)[3:])
    assert all(path.stem == name for name, path in sessions.items())


def test_report_means_and_stds_are_those_of_the_cells(grid, capsys):
    out, sessions, outcomes = grid
    assert len(outcomes) == 2 * 6 * 2 and all(o["status"] == "trained" for o in outcomes)
    report = write_report(out)
    rows = json.loads((out / "results.json").read_text())["cells"]
    assert len(rows) == 24
    summary = summarize(rows)
    for recipe in ("ann2d", "wiener"):
        for session in sessions:
            cells = [json.loads((out / "cells" / recipe / session / f"seed{s}" / "metrics.json").read_text())["r2"]
                     for s in (0, 1)]
            mean, std, n = summary[recipe]["sessions"][session]
            assert n == 2 and mean == pytest.approx(np.mean(cells)) and std == pytest.approx(np.std(cells))
    text = report.read_text()
    assert "indy_20160622_01" in text and "pub. 0.633" in text and "ANN2D | published" in text
    assert (out / "pareto.png").stat().st_size > 5000 and (out / "sessions.png").stat().st_size > 5000
    # a re-run trains nothing
    again = reproduce(out, recipes=["ann2d", "wiener"], seeds=[0, 1], sessions=sessions, log=lambda *_: None)
    assert {o["status"] for o in again} == {"done before"}


def test_a_failed_cell_is_reported_and_the_others_finish(tmp_path, capsys):
    sessions = synthetic_sessions(tmp_path, duration_s=30)
    broken = sessions["loco_20170301_05_synthetic"]
    broken.write_bytes(broken.read_bytes()[:4096])  # a truncated download
    code = main(["reproduce", "--out", str(tmp_path), "--synthetic", "--recipes", "wiener", "--seeds", "0",
                 "--workers", "2"])
    captured = capsys.readouterr()
    assert code == 1 and "5 of 6 cells finished" in captured.out
    assert "failed cells: wiener loco_20170301_05_synthetic seed 0 (DataFormatError" in captured.err
    assert main(["report", str(tmp_path)]) == 0
    assert "missing" in (tmp_path / "report.md").read_text()


def test_report_refuses_a_directory_without_cells(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "holds no finished cell" in capsys.readouterr().err
    assert main(["reproduce", "--out", str(tmp_path), "--recipes", "wiener"]) == 2
    assert "either --synthetic" in capsys.readouterr().err


def test_a_dask_worker_killed_mid_cell_loses_nothing(tmp_path):
    import os
    import signal
    import threading
    import time

    from distributed import Client, LocalCluster

    sessions = {k: v for k, v in synthetic_sessions(tmp_path, 60).items() if k.startswith("indy")}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        result = {}
        runner = threading.Thread(target=lambda: result.update(outcomes=reproduce(
            tmp_path, recipes=["ann2d"], seeds=[0], sessions=sessions, settings=["epochs=30"],
            executor="dask", scheduler=cluster.scheduler_address, log=lambda *_: None)))
        runner.start()
        checkpoint = tmp_path / "cells" / "ann2d" / "indy_20160622_01_synthetic" / "seed0" / "train_state.pt"
        deadline = time.time() + 120
        while not checkpoint.exists() and time.time() < deadline:
            time.sleep(0.2)
        assert checkpoint.exists(), "the cell never started"
        pids = client.run(os.getpid)
        for pid in pids.values():  # both workers run a cell: kill them all, the nannies restart them
            os.kill(pid, signal.SIGKILL)
        runner.join(timeout=300)
    outcomes = result["outcomes"]
    assert [o["status"] for o in outcomes] == ["trained"] * 3
    rows = [json.loads((tmp_path / "cells" / "ann2d" / s / "seed0" / "metrics.json").read_text()) for s in sessions]
    assert all(len(r["history"]) == 30 for r in rows)  # every epoch exactly once: the killed cells resumed


SPIKING = ["epochs=2", "tinyrsnn.hidden=16", "tinyrsnn.pretrain_epochs=2", "prune_epochs=1", "prune_steps=0.1",
           "tinyrsnn.batch_size=16"]


def _comparable(row: dict) -> dict:
    """A cell's metrics row without what differs between two equal runs: wall-clock times and paths."""
    row = {k: v for k, v in row.items() if k not in ("timings", "data", "pretraining", "provenance")}
    row["history"] = [{k: v for k, v in h.items() if k != "seconds"} for h in row.get("history", [])]
    return row


@pytest.fixture(scope="module")
def spiking_grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("spiking")
    lines = []
    outcomes = reproduce(out, recipes=["ann2d", "tinyrsnn"], seeds=[0, 1], sessions=synthetic_sessions(out, 40),
                         settings=SPIKING, workers=2, log=lines.append)
    return out, outcomes, lines


def test_pretraining_runs_once_per_recipe_monkey_and_seed(spiking_grid):
    out, outcomes, lines = spiking_grid
    assert [o["status"] for o in outcomes] == ["trained"] * 24
    trained = sorted(line.split(":")[0].strip() for line in lines if line.lstrip().startswith("pre-training"))
    assert trained == [f"pre-training tinyrsnn {m} seed {s}" for m in ("indy", "loco") for s in (0, 1)]
    assert all(line.endswith("(trained)") for line in lines if line.lstrip().startswith("pre-training"))
    shared = {}
    for o in outcomes:
        if o["recipe_name"] == "tinyrsnn":
            config = json.loads((out / "cells" / "tinyrsnn" / o["session"] / f"seed{o['seed']}" / "config.json").read_text())
            shared.setdefault(config["pretrained"], []).append(o["session"])
            assert f"/pretrain/tinyrsnn/{o['session'][:4]}/seed{o['seed']}/" in config["pretrained"]
            assert o["row"]["history"][0]["stage"] == "train"  # fine-tuned, not pre-trained again
        else:
            assert "pretraining" not in o["row"]
    assert len(shared) == 4 and all(len(sessions) == 3 for sessions in shared.values())
    for path in shared:
        assert [h["stage"] for h in torch.load(path, weights_only=True)["history"]] == ["pretrain", "pretrain"]
    report = write_report(out).read_text()
    row = next(o["row"] for o in outcomes if o["recipe_name"] == "tinyrsnn")
    assert f"| tinyrsnn {row['session']} seed {row['seed']} | {_seconds(row['timings']['train_s'])} | " \
           f"{_seconds(row['pretraining']['train_s'])} |" in report


def test_killing_the_command_mid_grid_then_rerunning_gives_the_same_results(spiking_grid, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    reference, _, _ = spiking_grid
    indy = "indy_20160622_01,indy_20160630_01,indy_20170131_02"  # one monkey keeps the test short
    command = [sys.executable, "-m", "motordecode", "reproduce", "--out", str(tmp_path), "--synthetic",
               "--duration", "40", "--sessions", indy, "--recipes", "ann2d,tinyrsnn", "--seeds", "0", "--workers", "2"]
    for setting in SPIKING:
        command += ["--set", setting]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    cells = tmp_path / "cells"
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        finished = list(cells.glob("*/*/seed0/metrics.json"))
        started = [p for p in cells.glob("*/*/seed0/train_state.pt") if not (p.parent / "metrics.json").exists()]
        if len(finished) >= 2 and started:
            break
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # the command and its pool workers
    process.wait()
    done_when_killed = len(list(cells.glob("*/*/seed0/metrics.json")))
    assert 2 <= done_when_killed < 6, "the grid was not killed mid-way"
    assert main(command[3:]) == 0
    again = {(r["recipe"], r["session"]): _comparable(r) for r in collect(tmp_path)}
    whole = {(r["recipe"], r["session"]): _comparable(r) for r in collect(reference)
             if r["seed"] == 0 and r["session"].startswith("indy")}
    assert len(again) == 6 and again == whole


def test_a_local_dask_cluster_gives_the_local_results(spiking_grid, tmp_path):
    """The same grid, pre-trainings and the cells that depend on them included, on 2 Dask workers."""
    reference, _, _ = spiking_grid
    indy = {k: v for k, v in synthetic_sessions(tmp_path, 40).items() if k.startswith("indy")}
    dask = reproduce(tmp_path, recipes=["ann2d", "tinyrsnn"], seeds=[0], sessions=indy,
                     settings=SPIKING, workers=2, executor="dask", log=lambda *_: None)
    assert [o["status"] for o in dask] == ["trained"] * 6
    assert (tmp_path / "pretrain" / "tinyrsnn" / "indy" / "seed0" / "pretrained.pt").is_file()
    local = {(r["recipe"], r["session"]): _comparable(r) for r in collect(reference)
             if r["seed"] == 0 and r["session"].startswith("indy")}
    assert {(r["recipe"], r["session"]): _comparable(r) for r in collect(tmp_path)} == local
