"""No silent adjustment, no internal error on a user's mistake (issue 23, section 5): each warning
is one line on stderr and is kept in metrics.json; each refusal exits 2 with what to do, before
anything is trained or written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from motordecode.cli import main
from motordecode.data.load import load_recording
from motordecode.data.splits import Split
from motordecode.data.synthetic import SynthConfig, write_synthetic
from motordecode.decoders.classical.wiener import WienerFilter
from motordecode.decoders.registry import family_of, get_recipe
from motordecode.errors import ConfigError, DataFormatError
from motordecode.pipeline import train_run
from motordecode.training.epochs import STATE_FILE

def terminal_job() -> None:
    """In the child before it runs: SIGINT as a shell starts a job from a terminal (default handling,
    not blocked), whatever this test process inherited from the libraries loaded before it."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


GRU_SMALL = ["--set=epochs=1", "--set=finetune_epochs=0", "--set=batch_size=64", "--set=hidden=8",
             "--set=logvar_hidden=8"]


def _binned(path, T=400, spikes=None, velocity=None, bin_width_s=0.05, seed=0):
    rng = np.random.default_rng(seed)
    np.savez(path, spikes=rng.poisson(1.0, (T, 8)) if spikes is None else spikes,
             velocity=rng.normal(size=(T, 2)) if velocity is None else velocity, bin_width_s=bin_width_s)
    return path


def _cli(*argv) -> int:
    return main([str(a) for a in argv])


def _fails(capsys, argv, *fragments):
    assert _cli(*argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def _warnings_printed(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("motordecode: warning: ")]


@pytest.fixture(scope="module")
def gru_run(indy_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("guards") / "gru"
    assert main(["train", "aegru", "--data", str(indy_file), "--out", str(out), "--quiet", *GRU_SMALL]) == 0
    return out


# -- warnings ------------------------------------------------------------------------------------
def test_a_rounded_window_and_pretraining_without_sessions_are_warned(indy_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "aegru", "--data", str(indy_file), "--out", str(out), "--quiet", *GRU_SMALL,
                 "--set=window_ms=10", "--set=pretrain_epochs=1"]) == 0
    printed = _warnings_printed(capsys.readouterr().err)
    recorded = json.loads((out / "metrics.json").read_text())["warnings"]
    assert [f"motordecode: warning: {w}" for w in recorded] == printed
    assert len(recorded) == 2, recorded
    assert "window_ms=10 ms runs as 20 ms" in recorded[0]
    assert "pretrain_epochs" in recorded[1] and "no pre-training sessions were found" in recorded[1]
    config = json.loads((out / "config.json").read_text())
    assert config["pretrain"] == [] and config["recipe"]["pretrain_epochs"] == 1


def test_a_plain_run_records_no_warnings(gru_run):
    assert json.loads((gru_run / "metrics.json").read_text())["warnings"] == []


def test_zero_counts_and_a_tiny_test_split_are_warned(tmp_path, capsys):
    data = _binned(tmp_path / "zeros.npz", T=60, spikes=np.zeros((60, 8)))
    out = tmp_path / "run"
    assert _cli("train", "wiener", "--data", data, "--out", out, "--quiet") == 0
    err = capsys.readouterr().err
    recorded = json.loads((out / "metrics.json").read_text())["warnings"]
    assert len(_warnings_printed(err)) == len(recorded) == 2, err
    assert "every spike count is zero" in recorded[0]
    assert "the test split has only 15 samples" in recorded[1]
    assert main(["evaluate", str(out)]) == 0  # a re-evaluation keeps them, once each
    assert json.loads((out / "metrics.json").read_text())["warnings"] == recorded


def test_pruning_from_an_r2_at_most_zero_is_warned(tmp_path, capsys):
    data = _binned(tmp_path / "noise.npz", T=1200, bin_width_s=0.02, seed=3)  # labels unrelated to the counts
    out = tmp_path / "run"
    assert _cli("train", "tinyrsnn", "--data", data, "--out", out, "--quiet", "--set=epochs=1", "--set=hidden=8",
                "--set=pretrain_epochs=0", "--set=prune_start=0.4", "--set=prune_epochs=1",
                "--set=window_ms=400", "--set=stride_ms=200") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    reference = next(h["reference_train_r2"] for h in metrics["history"] if h["stage"] == "prune-decision")
    assert reference <= 0  # the premise: an unpruned model that explains nothing
    assert any("the pruning rule" in w and "<= 0" in w for w in metrics["warnings"]), metrics["warnings"]
    assert any("the pruning rule" in w for w in _warnings_printed(capsys.readouterr().err))


# -- refusals ------------------------------------------------------------------------------------
@pytest.mark.parametrize("width", [1e-9, 1e6])
def test_bin_widths_outside_1_ms_to_1_s_are_refused(tmp_path, capsys, width):
    data = _binned(tmp_path / "b.npz", bin_width_s=width)
    _fails(capsys, ["train", "wiener", "--data", data, "--out", tmp_path / "run"], "outside 1 ms to 1 s")
    assert not (tmp_path / "run").exists()


def test_a_bin_width_past_1_s_is_refused_for_session_files(indy_file, capsys):
    _fails(capsys, ["data", "info", indy_file, "--bin-width-ms", "2000"], "outside 1 ms to 1 s")


@pytest.mark.parametrize("seed", ["-1", str(2**64)])
def test_negative_or_huge_seeds_are_refused(indy_file, tmp_path, capsys, seed):
    _fails(capsys, ["train", "wiener", "--data", indy_file, "--out", tmp_path / "run", "--seed", seed],
           "seed must be a non-negative integer up to 2**63 - 1")
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="seed"):
        train_run(get_recipe("wiener"), indy_file, seed=int(seed), out=tmp_path / "api")


@pytest.mark.parametrize("name", ["wiener", "kalman"])
def test_the_classical_fits_refuse_an_empty_validation_split(tmp_path, name):
    recording = load_recording(_binned(tmp_path / "b.npz"))
    split = Split(np.arange(200), np.zeros(0, np.int64), np.arange(200, 400))
    recipe = get_recipe(name)
    with pytest.raises(ConfigError, match="validation split is empty"):
        family_of(recipe).trainer(recipe, recording, split).fit()
    with pytest.raises(ConfigError, match="validation rows"):
        WienerFilter().fit(recording.spikes, recording.velocity, index=np.arange(200), val_index=[])


@pytest.mark.parametrize("recipe", ["wiener", "kalman", "aegru"])
def test_constant_labels_are_refused_before_training(tmp_path, capsys, recipe):
    data = _binned(tmp_path / "still.npz", velocity=np.ones((400, 2)))
    _fails(capsys, ["train", recipe, "--data", data, "--out", tmp_path / "run"], "constant on the train split")
    assert not (tmp_path / "run").exists()  # refused before a run directory was made


class _Foreign:  # pickled by class reference: not loadable with weights_only=True
    pass


@pytest.mark.parametrize("damage", ["truncated", "not weights-only"])
def test_an_unreadable_train_state_is_refused(gru_run, indy_file, tmp_path, capsys, damage):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(gru_run, out)
    (out / "model.pt").unlink()
    state = out / STATE_FILE
    if damage == "truncated":
        state.write_bytes(state.read_bytes()[:3000])
    else:
        blob = torch.load(state, weights_only=True)
        torch.save({**blob, "extra": _Foreign()}, state)
    err = _fails(capsys, ["train", "aegru", "--data", indy_file, "--out", out, "--quiet", "--resume", *GRU_SMALL],
                 str(state), "to train this run from the start")
    assert ("truncated" in err) == (damage == "truncated")
    assert "weights_only" not in err and "trust" not in err  # torch's advice is never passed on


@pytest.mark.parametrize("content", [[torch.zeros(3)], {"weights": torch.zeros(3)}, {"state_dict": [1, 2]}])
def test_a_model_without_a_state_dict_is_refused(gru_run, tmp_path, capsys, content):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(gru_run, out)
    torch.save(content, out / "model.pt")
    _fails(capsys, ["evaluate", out], "holds no state dict")


def test_a_truncated_nwb_file_is_refused_without_fetch_advice(tmp_path):
    good = write_synthetic(tmp_path / "s.nwb", SynthConfig(duration_s=2, seed=1), fmt="nwb")
    broken = tmp_path / "broken.nwb"
    broken.write_bytes(good.read_bytes()[:20000])
    with pytest.raises(DataFormatError, match="the NWB file is truncated") as caught:
        load_recording(broken)
    assert "fetch" not in str(caught.value)


def test_synth_refuses_a_name_that_is_not_its_format(tmp_path, capsys):
    _fails(capsys, ["data", "synth", "--out", tmp_path / "x.npz", "--duration", "2"], "name it x.mat")
    _fails(capsys, ["data", "synth", "--out", tmp_path / "x.mat", "--format", "nwb", "--duration", "2"],
           "name it x.nwb")
    assert list(tmp_path.iterdir()) == []


def test_export_and_serve_refuse_an_unknown_recipe(gru_run, indy_file, tmp_path, capsys):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(gru_run, out)
    config = json.loads((out / "config.json").read_text())
    config["recipe"]["name"] = "aegru-renamed"
    (out / "config.json").write_text(json.dumps(config))
    for argv in (["evaluate", out], ["export", out, "--format", "onnx", "--out", tmp_path / "onnx"],
                 ["serve", out, "--source", f"replay:{indy_file}", "--sink", f"file:{tmp_path / 'v.csv'}", "--fast"]):
        _fails(capsys, argv, "'aegru-renamed'", "not a recipe of the gru family")
    assert not (tmp_path / "onnx").exists() and not (tmp_path / "v.csv").exists()


def test_a_failed_train_leaves_no_run_directory(tmp_path, capsys):
    data = _binned(tmp_path / "b.npz")
    out = tmp_path / "run"
    _fails(capsys, ["train", "aegru", "--data", data, "--out", out, *GRU_SMALL, "--set=window_ms=100000"],
           "no training window fits")
    assert not out.exists()
    assert main(["train", "aegru", "--data", str(data), "--out", str(out), "--quiet", *GRU_SMALL]) == 0  # the retry


# -- progress (issue 23, section 6) --------------------------------------------------------------
def test_training_without_a_terminal_prints_a_line_per_epoch(indy_file, tmp_path, capsys):
    assert _cli("train", "aegru", "--data", indy_file, "--out", tmp_path / "run", *GRU_SMALL, "--set=epochs=2") == 0
    err = capsys.readouterr().err  # captured: not a terminal
    assert "train 1/2: done in" in err and "train 2/2: done in" in err and "val_r2" in err, err


def test_line_progress_prints_within_a_long_epoch():
    import io

    from motordecode.training.progress import LineProgress, working

    out = io.StringIO()
    bar = LineProgress(3, "train 1/9", every_s=0.0, file=out)
    bar.update(1)
    bar.set_postfix(loss="0.5")
    bar.close()
    assert out.getvalue().splitlines()[0] == "train 1/9: batch 1/3"
    assert out.getvalue().splitlines()[1].startswith("train 1/9: done in") and "loss 0.5" in out.getvalue()
    out = io.StringIO()
    import time
    with working("checking", every_s=0.05, file=out):
        time.sleep(0.3)
    lines = out.getvalue().splitlines()
    assert lines[0] == "checking ..." and "s so far" in lines[1] and lines[-1].startswith("checking: done in")


def test_evaluate_and_export_announce_their_checks(gru_run, tmp_path, capsys):
    assert _cli("evaluate", gru_run, "--no-write") == 0
    err = capsys.readouterr().err
    for mode in ("windowed", "stateful"):
        assert f"evaluating aegru ({mode}) on" in err and err.count("test samples: done in") == 2, err
    assert _cli("export", gru_run, "--format", "onnx", "--out", tmp_path / "onnx") == 0
    err = capsys.readouterr().err
    assert "exporting aegru as onnx, checked on" in err and "done in" in err, err


def test_ctrl_c_prints_the_epoch_reached_and_the_command_that_resumes(indy_file, tmp_path):
    import os
    import shlex
    import signal
    import subprocess
    import sys

    out = tmp_path / "run"
    argv = ["train", "aegru", "--data", str(indy_file), "--out", str(out), *GRU_SMALL, "--set=epochs=500"]
    proc = subprocess.Popen([sys.executable, "-m", "motordecode", *argv], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, preexec_fn=terminal_job)
    for line in proc.stderr:
        if line.startswith("train 2/500: done"):
            break
    proc.send_signal(signal.SIGINT)
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 130, err
    assert "stopped in train epoch" in err and f"saved in {out / STATE_FILE}" in err, err
    resume = next(line for line in err.splitlines() if line.startswith("motordecode: resume with: "))
    assert shlex.split(resume.split(": ", 2)[2]) == ["motordecode", *argv, "--resume"]


def test_api_errors_name_settings_not_flags(gru_run, tmp_path):
    from motordecode.api import train

    with pytest.raises(ConfigError, match="choose another run directory") as caught:
        train("wiener", json.loads((gru_run / "config.json").read_text())["data"], out=gru_run)
    assert "--" not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        train_run(get_recipe("aegru"), json.loads((gru_run / "config.json").read_text())["data"], out=gru_run)
    assert "--" not in str(caught.value) and caught.value.setting == "out"
