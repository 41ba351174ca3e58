"""The whole comparison in one command: a small grid through `reproduce`, then `report`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from motordecode.cli import build_parser, main
from motordecode.errors import ConfigError
from motordecode.report.grid import _seconds, collect, summarize, write_report
from motordecode.reproduce import parse_seeds, reproduce, synthetic_configs, synthetic_sessions


TRAINED = ("indy_20160622_01_synthetic", "loco_20170210_03_synthetic")
CELLS = 2 * len(TRAINED) * 2  # recipes x sessions x seeds


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    # the six stand-ins are generated; the grid trains on one of each monkey, with one ridge strength
    # (the Wiener fit's search is not what these tests are about)
    six = synthetic_sessions(out, duration_s=30)
    sessions = {name: six[name] for name in TRAINED}
    outcomes = reproduce(out, recipes=["ann2d", "wiener"], seeds=[0, 1], sessions=sessions,
                         settings=["epochs=1", "wiener.alphas=1"], workers=2,
                         log=lambda *_: None)
    return out, sessions, outcomes


def test_seeds_parse():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4] and parse_seeds("3,0,1-2") == [0, 1, 2, 3]
    for text, message in (("a-b", "seeds: expected"), ("4-0", "runs backwards; write it 0-4"), ("-3", "seeds: expected"),
                          ("0-100000", "at most 10000"), (str(2**64), "from 0 to"), (",", "at least one")):
        with pytest.raises(ConfigError, match=message) as caught:
            parse_seeds(text)
        assert "--" not in str(caught.value)  # the API names the setting; the command line adds its flag


def test_settings_apply_to_every_recipe_with_the_field_or_to_one():
    from motordecode.reproduce import _recipes

    recipes = _recipes(["ann2d", "tinyrsnn"], ["epochs=3", "tinyrsnn.pretrain_epochs=2"])
    assert recipes["ann2d"].epochs == recipes["tinyrsnn"].epochs == 3
    assert recipes["tinyrsnn"].pretrain_epochs == 2 and recipes["ann2d"].pretrain_epochs == 0
    for bad, message in (["aegru.epochs=1"], "not a recipe of the grid"), (["ann2d.heads=2"], "has that field"):
        with pytest.raises(ConfigError, match=message):
            _recipes(["ann2d", "tinyrsnn"], bad)


def test_six_sessions_stand_in_for_the_benchmark_ones_under_their_own_names(grid):
    out, _, _ = grid
    sessions = synthetic_sessions(out, duration_s=30)  # the six already generated
    assert list(sessions)[:3] == ["indy_20160622_01_synthetic", "indy_20160630_01_synthetic",
                                  "indy_20170131_02_synthetic"]
    assert all(name.startswith("loco") for name in list(sessions)[3:])
    assert all(path.stem == name for name, path in sessions.items())


def test_report_means_and_stds_are_those_of_the_cells(grid, capsys):
    out, sessions, outcomes = grid
    assert len(outcomes) == CELLS and all(o["status"] == "trained" for o in outcomes)
    assert {(o["ran_on"], o["threads"]) for o in outcomes} == {("cpu", 1)}  # where each cell trained, with what
    report = write_report(out)
    rows = json.loads((out / "results.json").read_text())["cells"]
    assert len(rows) == CELLS
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
    # a re-run with the same settings trains nothing
    again = reproduce(out, recipes=["ann2d", "wiener"], seeds=[0, 1], sessions=sessions,
                      settings=["epochs=1", "wiener.alphas=1"], log=lambda *_: None)
    assert {o["status"] for o in again} == {"done before"}
    assert {o["ran_on"] for o in again} == {None}  # trained nowhere this time


def test_a_failed_cell_is_reported_and_the_others_finish(tmp_path, capsys):
    sessions = synthetic_sessions(tmp_path, duration_s=30)
    broken = sessions["loco_20170301_05_synthetic"]
    broken.write_bytes(broken.read_bytes()[:4096])  # a truncated download
    code = main(["reproduce", "--out", str(tmp_path), "--synthetic", "--duration", "30", "--recipes", "wiener",
                 "--seeds", "0", "--workers", "2", "--set", "wiener.alphas=1"])  # one ridge strength: quick fits
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


# -- a grid reports only the settings asked for ------------------------------------------------------
def _files(directory) -> dict:
    """Every file under ``directory`` with its size and modification time: what a refused command must leave."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(directory.rglob("*")) if p.is_file()}


def test_a_rerun_with_other_settings_is_refused_naming_them(grid, tmp_path, capsys):
    """Seen: a re-run with another --set or --duration reported the old cells as "done before"."""
    out, sessions, _ = grid
    before = _files(out)
    with pytest.raises(ConfigError, match=r"ann2d: epochs 1 there, 2 asked.*Nothing was run"):
        reproduce(out, recipes=["ann2d", "wiener"], seeds=[0, 1], sessions=sessions, settings=["epochs=2"],
                  log=lambda *_: None)
    code = main(["reproduce", "--out", str(out), "--synthetic", "--duration", "20", "--recipes", "ann2d",
                 "--seeds", "0", "--set", "epochs=1"])
    assert code == 2 and "indy_20160622_01_synthetic duration_s 30.0 there, 20.0 asked" in capsys.readouterr().err
    assert _files(out) == before
    # the same settings are "done before"
    assert main(["reproduce", "--out", str(out), "--synthetic", "--duration", "30", "--recipes", "ann2d",
                 "--seeds", "0", "--sessions", "indy_20160622_01_synthetic", "--set", "epochs=1"]) == 0
    assert "(done before)" in capsys.readouterr().out
    # a started cell is checked by its own config.json too, where grid.json is missing
    cell = Path("cells", "ann2d", "indy_20160622_01_synthetic", "seed0")
    (tmp_path / cell).mkdir(parents=True)
    (tmp_path / cell / "config.json").write_bytes((out / cell / "config.json").read_bytes())
    with pytest.raises(ConfigError, match="ann2d indy_20160622_01_synthetic seed 0: epochs 1 there, 2 asked"):
        reproduce(tmp_path, recipes=["ann2d"], seeds=[0], sessions={"indy_20160622_01_synthetic": sessions["indy_20160622_01_synthetic"]},
                  settings=["epochs=2"], log=lambda *_: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells"]


@pytest.mark.parametrize("bad, message", [
    (["--duration", "0"], "duration must be between 1 s and 1 day, got 0.0"),
    (["--duration", "nan"], "duration must be between 1 s and 1 day"),
    (["--workers", "0"], "workers must be a whole number of at least 1, got 0"),
    (["--workers", "-3"], "workers must be a whole number of at least 1, got -3"),
    (["--seeds", "4-0"], "the range 4-0 runs backwards"),
    (["--seeds", "0,2,-1"], "--seeds as integers or ranges"),
    (["--threads-per-worker", "0"], "threads per worker must be a whole number of at least 1 or 'share', got 0"),
    (["--device", "tpu"], "device 'tpu': unknown device"),
    pytest.param(["--device", "cuda"], "device 'cuda': ", marks=pytest.mark.skipif(
        torch.cuda.is_available(), reason="this machine has CUDA, so --device cuda is not refused")),
])
def test_bad_numbers_are_refused_before_anything_is_written(tmp_path, capsys, bad, message):
    """Seen: --duration 0 became 300 s, --workers 0 and -3 ran, --seeds 4-0 generated six sessions first."""
    out = tmp_path / "grid"
    code = main(["reproduce", "--out", str(out), "--synthetic", "--recipes", "wiener", "--sessions",
                 "indy_20160622_01_synthetic", *bad])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_the_api_refuses_bad_workers_and_seeds_before_writing(tmp_path):
    sessions = {"indy_20160622_01_synthetic": synthetic_configs(30)["indy_20160622_01_synthetic"]}
    for workers, seeds, message in ((0, [0], "workers"), (2, [], "1 to"), (1, [-1], "from 0 to"), (1.5, [0], "workers")):
        with pytest.raises(ConfigError, match=message):
            reproduce(tmp_path / "grid", recipes=["wiener"], seeds=seeds, sessions=sessions, workers=workers)
    assert not (tmp_path / "grid").exists()


def test_a_subset_adds_cells_to_grid_json_and_removes_none(grid, tmp_path):
    """Seen: a re-run of a subset overwrote grid.json with the subset."""
    import shutil

    source, sessions, _ = grid
    out = tmp_path / "grid"
    shutil.copytree(source, out)
    everything = json.loads((source / "grid.json").read_text())
    assert len(everything["cells"]) == CELLS
    one = {"indy_20160622_01_synthetic": out / "data" / "indy_20160622_01_synthetic.mat"}
    again = reproduce(out, recipes=["wiener"], seeds=[0], sessions=one, settings=["wiener.alphas=1"],
                      log=lambda *_: None)
    assert [o["status"] for o in again] == ["done before"]
    plain = lambda grid: {k: v for k, v in grid.items() if k != "provenance"}  # noqa: E731 - its paths are the copy's
    assert plain(json.loads((out / "grid.json").read_text())) == plain(everything)
    added = reproduce(out, recipes=["ann2d"], seeds=[2], sessions=one, settings=["epochs=1"], log=lambda *_: None)
    assert [o["status"] for o in added] == ["trained"]
    grown = json.loads((out / "grid.json").read_text())
    assert grown["cells"] == everything["cells"] + [["ann2d", "indy_20160622_01_synthetic", 2]] and grown["seeds"] == [0, 1, 2]
    assert grown["identity"] == everything["identity"]
    assert set(grown["provenance"]["sessions"]) == set(everything["provenance"]["sessions"]) == set(sessions)
    report = write_report(out).read_text()
    assert len(json.loads((out / "results.json").read_text())["cells"]) == CELLS + 1
    assert "Missing cells (0): none" in report


# -- stopping and ending with the command -----------------------------------------------------------
def test_a_training_asked_to_stop_ends_at_its_next_checkpoint_and_resumes_from_it(indy_file, tmp_path):
    from motordecode.pipeline import train_run
    from motordecode.recipes import get_recipe, override
    from motordecode.training.epochs import TrainingStopped, stopping_when

    recipe, run = override(get_recipe("ann2d"), {"epochs": 4}), tmp_path / "run"
    checks = []
    with stopping_when(lambda: checks.append(1) or len(checks) >= 2), \
            pytest.raises(TrainingStopped, match="stopped after train epoch 2;"):
        train_run(recipe, indy_file, out=run, progress=False, threads=1)
    assert len(checks) == 2 and torch.load(run / "train_state.pt", weights_only=True)["epoch"] == 2
    assert not (run / "metrics.json").exists()
    row = train_run(recipe, indy_file, out=run, resume=True, progress=False, threads=1)  # the lock was released
    assert [h["epoch"] for h in row["history"]] == [1, 2, 3, 4]


def _grid_command(out, *options) -> list[str]:
    import sys

    return [sys.executable, "-m", "motordecode", "reproduce", "--out", str(out), "--synthetic", "--duration", "20",
            "--recipes", "ann2d", "--sessions", "indy_20160622_01_synthetic", *options]


def _wait_for(condition, seconds: float, what: str) -> None:
    import time

    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, f"{what} did not happen within {seconds} s"
        time.sleep(0.05)


def _alive(process) -> bool:
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("executor, signum, whole_group", [("local", "SIGINT", False), ("dask", "SIGTERM", True)])
def test_a_signal_stops_the_grid_at_the_next_checkpoint_and_says_how_to_resume(tmp_path, capsys, executor, signum,
                                                                               whole_group):
    """Seen: SIGINT to the command ran the whole remaining queue before it exited. Here: SIGINT to the
    command alone (local pool), or SIGTERM to every process of the group (a Dask cluster, as a batch
    system stops a job): no new cell starts, the running one stops at a checkpoint, and the printed
    command resumes the grid, each epoch trained once. A second command on the grid is refused."""
    import os
    import shlex
    import signal
    import subprocess

    epochs = 30
    command = _grid_command(tmp_path, "--seeds", "0-1", "--workers", "1", "--set", f"epochs={epochs}",
                            "--executor", executor)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    cells = tmp_path / "cells" / "ann2d" / "indy_20160622_01_synthetic"
    try:
        _wait_for(lambda: (cells / "seed0" / "train_state.pt").exists() or process.poll() is not None, 180,
                  "the first cell's first checkpoint")
        assert process.poll() is None, process.communicate()
        grid = (tmp_path / "grid.json").read_bytes()
        assert main(command[3:]) == 2  # a second command on the grid
        assert f"in use by another motordecode process (pid {process.pid})" in capsys.readouterr().err
        assert (tmp_path / "grid.json").read_bytes() == grid
        (os.killpg if whole_group else os.kill)(process.pid, getattr(signal, signum))
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == {"SIGINT": 130, "SIGTERM": 143}[signum], stderr
    assert sorted(p.name for p in cells.iterdir()) == ["seed0"]  # the queued cell never started
    reached = torch.load(cells / "seed0" / "train_state.pt", weights_only=True)["epoch"]
    assert 1 <= reached < epochs and not (cells / "seed0" / "metrics.json").exists()
    assert f"stopped (stopped after train epoch {reached};" in stdout  # nothing trained after that checkpoint
    assert "0 of 2 cells finished, 1 stopped at a checkpoint, 1 not started" in stdout
    resume = stderr.split(f"stopped by {signum}; resume with: ")[1].splitlines()[0]
    same = {key: value for key, value in vars(build_parser().parse_args(command[3:])).items() if key != "func"}
    assert {key: value for key, value in vars(build_parser().parse_args(shlex.split(resume)[1:])).items()
            if key != "func"} == same
    if executor == "local":  # resuming is the executor's business no more than training is: once is enough
        assert main(shlex.split(resume)[1:]) == 0
        for seed in (0, 1):
            history = json.loads((cells / f"seed{seed}" / "metrics.json").read_text())["history"]
            assert [h["epoch"] for h in history] == list(range(1, epochs + 1))


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_the_workers_end_when_the_command_is_killed(tmp_path, executor):
    """Seen: SIGKILL of the command left its pool workers training (534 MB each)."""
    import os
    import signal
    import subprocess

    import psutil

    process = subprocess.Popen(_grid_command(tmp_path, "--seeds", "0-1", "--workers", "2", "--set", "epochs=1000",
                                             "--executor", executor),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    workers = []
    try:
        _wait_for(lambda: len(list(tmp_path.glob("cells/*/*/*/train_state.pt"))) == 2 or process.poll() is not None,
                  180, "both cells' first checkpoints")
        assert process.poll() is None
        workers = psutil.Process(process.pid).children(recursive=True)
        assert len(workers) >= 2
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        _wait_for(lambda: not any(_alive(w) for w in workers), 15, "the end of every worker")
    finally:
        for worker in workers:
            if _alive(worker):
                worker.kill()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
