"""One process at a time in a run directory or a grid directory (``runs.run_lock``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from motordecode.cli import main
from motordecode.errors import ConfigError
from motordecode.runs import LOCK_FILE, run_lock


def test_a_lock_refuses_a_second_holder_and_leaves_nothing_behind(tmp_path):
    directory = tmp_path / "new" / "run"
    with run_lock(directory):
        assert (directory / LOCK_FILE).read_text() == f"{os.getpid()}\n"
        with pytest.raises(ConfigError, match=f"in use by another motordecode process \\(pid {os.getpid()}\\)"):
            with run_lock(directory):  # another open file: flock refuses it as it would another process
                pass
    assert not (tmp_path / "new").exists()  # the directories the lock made, empty, are gone
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "config.json").write_text("{}")
    with run_lock(tmp_path / "kept"):
        pass
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["config.json"]


def test_a_second_train_into_one_run_directory_is_refused_until_the_first_ends(indy_file, tmp_path, capsys):
    """Two processes resuming one run directory: the second is refused; a SIGKILL of the first frees it."""
    run = tmp_path / "run"
    train = ["train", "ann2d", "--data", str(indy_file), "--out", str(run), "--set", "epochs=30", "--quiet"]
    first = subprocess.Popen([sys.executable, "-m", "motordecode", *train], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 180
        while not (run / "train_state.pt").exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, first.communicate()
        assert main([*train, "--resume"]) == 2
        assert f"is in use by another motordecode process (pid {first.pid})" in capsys.readouterr().err
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert (run / LOCK_FILE).exists()  # left by the killed process, but no longer held
    assert main([*train, "--resume", "--json"]) == 0
    assert not (run / LOCK_FILE).exists()


def test_a_run_that_failed_before_any_checkpoint_leaves_nothing_behind(tmp_path):
    """A train that failed in its own pre-training (config.json and an unstarted pretrain/) is
    emptied, and its directory goes with the lock; one with a checkpoint is kept for --resume."""
    from motordecode.runs import CONFIG_FILE, discard_unstarted

    directory = tmp_path / "run"
    with run_lock(directory):
        (directory / CONFIG_FILE).write_text("{}")
        (directory / "pretrain").mkdir()
        (directory / "pretrain" / CONFIG_FILE).write_text("{}")
        discard_unstarted(directory)
    assert not directory.exists()
    with run_lock(directory):
        (directory / CONFIG_FILE).write_text("{}")
        (directory / "pretrain").mkdir()
        (directory / "pretrain" / "train_state.pt").write_bytes(b"")
        discard_unstarted(directory)
    assert (directory / CONFIG_FILE).is_file() and (directory / "pretrain" / "train_state.pt").is_file()
