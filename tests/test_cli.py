"""The command line: help everywhere, JSON info, and errors with exit code 2 and no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from motordecode.data.sessions import BENCHMARK_MD5, CATALOG


def run(*args, cwd=None, env=None):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "motordecode", *args], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=300)


def assert_user_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in result.stderr


@pytest.mark.parametrize("command", [[], ["data"], ["data", "list"], ["data", "fetch"], ["data", "info"],
                                     ["data", "synth"], ["demo"], ["export"], ["serve"]])
def test_help_on_every_command(command):
    result = run(*command, "--help")
    assert result.returncode == 0
    assert "usage: motordecode" in result.stdout


def test_info_json_has_the_documented_keys(indy_file):
    result = run("data", "info", str(indy_file), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    for key in ("channels", "bins", "duration_s", "reaches", "train", "val", "test"):
        assert key in info
    assert info["channels"] == 96 and info["bins"] == 10000 and info["duration_s"] == 40.0
    assert info["train"] + info["val"] + info["test"] == info["bins"]


def test_info_of_a_bad_file(tmp_path):
    bad = tmp_path / "indy_bad.mat"
    bad.write_bytes(b"\x00" * 2048)
    assert_user_error(run("data", "info", str(bad)), "is not an HDF5 / MATLAB v7.3 file")
    assert_user_error(run("data", "info", str(tmp_path / "absent.mat")), "no such file")


def test_list_json_reports_presence_and_md5(tmp_path):
    (tmp_path / "indy_20170131_02.mat").write_bytes(b"corrupt")
    result = run("data", "list", "--dir", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert set(rows) == set(CATALOG) and set(BENCHMARK_MD5) <= set(rows)
    assert rows["indy_20170131_02"]["present"] and rows["indy_20170131_02"]["verified"] is False
    assert rows["loco_20170210_03"]["status"] == "absent"
    assert rows["indy_20160624_03"]["channels"] == 96 and not rows["indy_20160624_03"]["benchmark"]


def test_fetch_offline_explains_the_manual_download(tmp_path):
    result = run("data", "fetch", "loco_20170215_02", "--dir", str(tmp_path / "d"),
                 "--base-url", "http://127.0.0.1:9/files", "--timeout", "2",
                 env={"MOTORDECODE_CACHE": str(tmp_path / "cache")})
    assert_user_error(result, "http://127.0.0.1:9/files/loco_20170215_02.mat", "by hand",
                      str(tmp_path / "d" / "loco_20170215_02.mat"))
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())


def test_fetch_unknown_session():
    assert_user_error(run("data", "fetch", "indy_19990101_01"), "unknown session 'indy_19990101_01'")


def test_synth_writes_a_readable_file_and_rejects_bad_options(tmp_path):
    out = tmp_path / "loco_cli.mat"
    result = run("data", "synth", "--out", str(out), "--monkey", "loco", "--duration", "5", "--seed", "3")
    assert result.returncode == 0, result.stderr
    info = json.loads(run("data", "info", str(out), "--json").stdout)
    assert info["channels"] == 192 and info["bins"] == 1250
    for option, value, message in [("--duration", "0", "duration must be between"),
                                   ("--duration", "inf", "duration must be between"),
                                   ("--seed", "-1", "seed must be a non-negative integer")]:
        assert_user_error(run("data", "synth", "--out", str(tmp_path / "x.mat"), option, value), message)
    result = run("data", "synth", "--out", str(tmp_path / "x.mat"), "--monkey", "bob")
    assert result.returncode == 2 and "invalid choice" in result.stderr and "Traceback" not in result.stderr


def test_demo_runs_the_whole_job(tmp_path):
    args = ("demo", "--dir", str(tmp_path), "--duration", "30", "--set", "epochs=2", "--set", "finetune_epochs=1")
    result = run(*args)
    assert result.returncode == 0, result.stderr
    assert "channels      96" in result.stdout and "split         by reaches" in result.stdout
    assert "(windowed) | measured" in result.stdout and "(stateful) | measured" in result.stdout
    assert "| AEGRU pruned 50% | published" in result.stdout
    metrics = json.loads((tmp_path / "aegru-pruned" / "metrics.json").read_text())
    assert metrics["recipe"] == "aegru-pruned" and metrics["connection_sparsity"] > 0.45
    assert (tmp_path / "aegru-pruned" / "predictions.png").stat().st_size > 10000
    assert run(*args).returncode == 0  # a second demo replaces its own previous run


def test_bad_inputs_to_info(tmp_path):
    assert_user_error(run("data", "info", str(tmp_path)), "is not a file")
    (tmp_path / "empty.npz").write_bytes(b"")
    assert_user_error(run("data", "info", str(tmp_path / "empty.npz")), "not a readable .npz")
    import numpy as np
    np.savez(tmp_path / "strings.npz", spikes=np.array(["a"] * 5), velocity=np.zeros((5, 2)), bin_width_s=0.05)
    assert_user_error(run("data", "info", str(tmp_path / "strings.npz")), "real numeric")


def test_bin_width_zero_is_rejected_not_ignored(indy_file):
    assert_user_error(run("data", "info", str(indy_file), "--bin-width-ms", "0"), "not a positive multiple of 4 ms")


def test_fetch_bad_destination_and_url(tmp_path):
    (tmp_path / "file").write_text("x")
    assert_user_error(run("data", "fetch", "indy_20170131_02", "--dir", str(tmp_path / "file")),
                      "is a file, not a data directory")
    assert_user_error(run("data", "fetch", "indy_20170131_02", "--dir", str(tmp_path / "d"), "--base-url", "notaurl",
                          env={"MOTORDECODE_CACHE": str(tmp_path / "cache")}), "Give an http(s) URL")
