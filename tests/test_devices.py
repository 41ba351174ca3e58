"""The device setting: resolving "auto" / "cpu" / "cuda[:N]", the one-line refusals on the command line,
``motordecode devices``, and that naming the CPU gives exactly the default's numbers (on a machine
where the default is the CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from motordecode.data.load import load_reaching
from motordecode.data.splits import default_split
from motordecode.devices import device_facts, device_report, format_report, resolve_device
from motordecode.errors import ConfigError
from motordecode.pipeline import evaluate_run, train_run
from motordecode.provenance import describe, provenance
from motordecode.recipes import get_recipe, override
from motordecode.training.epochs import STATE_FILE

SRC = Path(__file__).resolve().parents[1] / "src"

# one fast recipe of each family (a second or two each on a 16 s session)
FAST = {
    "aegru-pruned": {"epochs": 2, "finetune_epochs": 1, "batch_size": 64, "window_ms": 80.0, "n_sub": 4, "hidden": 8,
                     "logvar_hidden": 8},
    "deltagru": {"hidden": 8, "epochs": 2, "batch_size": 4, "tbptt_ms": 400.0, "anneal_epochs": 1,
                 "finetune_epochs": 1},
    "tinyrsnn": {"hidden": 16, "batch_size": 16, "epochs": 1, "pretrain_epochs": 0, "prune_epochs": 1,
                 "window_ms": 400.0, "stride_ms": 200.0,
                 "prune_start": 0.1, "prune_steps": "0.1", "prune_max": 0.2, "prune_tolerance": 0.9},
    "snn2": {"epochs": 1},
    "ann2d": {"epochs": 1},
}


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    env.pop("MOTORDECODE_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "motordecode", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def _refused_in_one_line(done: subprocess.CompletedProcess, *needles: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("motordecode: error: device ")
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def short_session(tmp_path_factory):
    from motordecode.data.synthetic import SynthConfig, write_synthetic

    path = write_synthetic(tmp_path_factory.mktemp("short") / "indy_short.mat",
                           SynthConfig(monkey="indy", duration_s=16, seed=3, difficulty="easy"))
    recording = load_reaching(path)
    return path, recording, default_split(recording)


# -- resolve_device ----------------------------------------------------------------------------------
@pytest.fixture
def two_gpus(monkeypatch):
    """torch as if it found two CUDA devices (nothing runs on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: f"Test GPU {index}")


def test_auto_and_the_cuda_indices_with_gpus(two_gpus):
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device(" CUDA:1 ") == torch.device("cuda", 1)
    assert resolve_device(torch.device("cuda", 1)) == torch.device("cuda", 1)
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match=r"'cuda:2': this machine has 2 CUDA devices \(cuda:0 to cuda:1\)") as err:
        resolve_device("cuda:2")
    assert err.value.setting == "device"
    assert device_facts(torch.device("cuda", 1)) == {"device": "cuda:1", "gpu": "Test GPU 1"}


def test_one_gpu_names_its_only_index(monkeypatch, two_gpus):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match=r"has 1 CUDA device \(cuda:0\)"):
        resolve_device("cuda:1")


def test_auto_is_the_cpu_without_cuda_and_cuda_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu") and resolve_device() == torch.device("cpu")
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(ConfigError, match=r"built without CUDA; install a CUDA build of torch \(README: GPU\)"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.version, "cuda", "12.8")  # a CUDA build on a machine without a usable GPU
    with pytest.raises(ConfigError, match="CUDA 12.8.*finds no usable GPU"):
        resolve_device("cuda:0")


@pytest.mark.parametrize("spec", ["tpu", "cuda:x", "cuda:-1", "cuda:", "cuda:\u00b2", "cpu:0", "", "gpu", 0])
def test_other_text_is_refused(spec):
    with pytest.raises(ConfigError, match="auto, cpu, cuda or cuda:N") as err:
        resolve_device(spec)
    assert err.value.setting == "device" and "\n" not in str(err.value)


def test_the_report_and_provenance_name_the_device(two_gpus):
    text = describe(provenance({}, {}, {"device": "cuda:1", "gpu": "Test GPU 1"}))
    assert any(line.startswith("machine: ") and line.endswith("device cuda:1 (Test GPU 1)") for line in text)
    assert provenance({}, {})["machine"]["device"] == "cpu" and "gpu" not in provenance({}, {})["machine"]


# -- the command line --------------------------------------------------------------------------------
needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here, so --device cuda "
                                   "is accepted; the refusal is for machines without it")
NO_CUDA_REASON = "built without CUDA" if torch.version.cuda is None else "no usable GPU"


@pytest.mark.parametrize("device,needle", [pytest.param("cuda", NO_CUDA_REASON, marks=needs_no_cuda),
                                           pytest.param("cuda:7", "CUDA", marks=needs_no_cuda),
                                           ("tpu", "unknown device")])
def test_train_refuses_a_device_it_cannot_use_in_one_line(short_session, tmp_path, device, needle):
    done = _cli("train", "gru", "--data", str(short_session[0]), "--out", str(tmp_path / "run"), "--device", device)
    _refused_in_one_line(done, needle, "--device")
    assert not (tmp_path / "run").exists()  # refused before a run directory is made


@needs_no_cuda
def test_evaluate_and_sweep_refuse_cuda_in_one_line(short_session, tmp_path):
    _refused_in_one_line(_cli("evaluate", str(tmp_path / "run"), "--device", "cuda"), "'cuda'")
    _refused_in_one_line(_cli("sweep", "nk", "--data", str(short_session[0]), "--out", str(tmp_path / "sweep"),
                              "--grid", "50x2", "--device", "cuda:1"), "'cuda:1'")
    assert not (tmp_path / "sweep").exists()


def test_devices_command_prints_what_auto_picks():
    done = _cli("devices")
    assert done.returncode == 0, done.stderr
    report = device_report()
    assert done.stdout.strip() == format_report(report)
    assert f"auto picks: {report['auto']}" in done.stdout and f"torch {torch.__version__}" in done.stdout
    as_json = json.loads(_cli("devices", "--json").stdout)
    assert as_json["torch"] == torch.__version__ and as_json["cuda"] == torch.version.cuda
    assert len(as_json["cuda_devices"]) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    if not torch.cuda.is_available():
        assert as_json["auto"] == "cpu" and "CUDA devices: none" in done.stdout


# -- the CPU path, named, is the default's -----------------------------------------------------------
def _cpu_is_the_default() -> None:
    if resolve_device("auto").type != "cpu":
        pytest.skip(f"auto picks {resolve_device('auto')} here, so the default is not the CPU path")


@pytest.mark.parametrize("name", sorted(FAST))
def test_naming_the_cpu_trains_the_defaults_network(short_session, monkeypatch, name):
    """Named "cpu", and named "cpu" through the code a GPU takes (every move made, to the CPU; the
    NeuroBench validation on its CPU twin): the default's network, history and R2, bit for bit."""
    from motordecode.decoders.registry import family_of
    from motordecode.training.epochs import EpochTrainer

    _cpu_is_the_default()
    _, recording, split = short_session
    recipe = override(get_recipe(name), FAST[name])
    family = family_of(recipe)
    default = family.trainer(recipe, recording, split, seed=1, progress=False).fit()
    named = family.trainer(recipe, recording, split, seed=1, progress=False, device="cpu").fit()
    monkeypatch.setattr(EpochTrainer, "on_cpu", property(lambda self: False))
    moving = family.trainer(recipe, recording, split, seed=1, progress=False, device="cpu").fit()
    strip = lambda history: [{k: v for k, v in h.items() if k != "seconds"} for h in history]  # noqa: E731
    for other in (named, moving):
        a, b = default.model.state_dict(), other.model.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        assert strip(other.history) == strip(default.history) and other.val_r2 == default.val_r2
        assert other.deployed_bits == default.deployed_bits


def test_a_closed_form_fit_takes_any_device_and_fits_on_the_cpu(short_session):
    from motordecode.decoders.registry import family_of

    _, recording, split = short_session
    recipe = get_recipe("kalman")
    result = family_of(recipe).trainer(recipe, recording, split, device=resolve_device("auto")).fit()
    assert all(t.device.type == "cpu" for t in result.model.state_dict().values())
    assert np.isfinite(result.val_r2)


def test_naming_the_cpu_gives_the_defaults_row(short_session, tmp_path):
    _cpu_is_the_default()
    path = short_session[0]
    recipe = override(get_recipe("aegru-pruned"), FAST["aegru-pruned"])
    default = train_run(recipe, path, seed=1, out=tmp_path / "default", progress=False)
    named = train_run(recipe, path, seed=1, out=tmp_path / "cpu", progress=False, device="cpu")
    without_times = lambda row: {k: v for k, v in row.items() if k not in ("timings", "history")}  # noqa: E731
    assert without_times(named) == without_times(default)
    metrics = tmp_path / "cpu" / "metrics.json"
    record = json.loads(metrics.read_text())
    assert record["provenance"]["machine"]["device"] == "cpu" and "gpu" not in record["provenance"]["machine"]
    # a re-evaluation (on the CPU) keeps the device that trained the run
    record["provenance"]["machine"].update(device="cuda:0", gpu="Test GPU 0")
    metrics.write_text(json.dumps(record))
    again = evaluate_run(tmp_path / "cpu", device="cpu")
    assert again["r2"] == named["r2"]
    machine = json.loads(metrics.read_text())["provenance"]["machine"]
    assert (machine["device"], machine["gpu"]) == ("cuda:0", "Test GPU 0")
    assert not any("evaluation runs on the CPU" in w for w in again.get("warnings", []))


def test_evaluating_on_a_named_gpu_warns_that_it_runs_on_the_cpu(short_session, tmp_path, two_gpus):
    recipe = override(get_recipe("wiener"), {})
    trained = train_run(recipe, short_session[0], seed=0, out=tmp_path / "run", progress=False, device="cpu")
    again = evaluate_run(tmp_path / "run", device="cuda:1")
    assert again["r2"] == trained["r2"]
    assert any("evaluation runs on the CPU, not on cuda:1" in w for w in again["warnings"]), again["warnings"]


@pytest.mark.parametrize("gpu_path", [False, True], ids=["cpu-path", "gpu-path-on-cpu"])
def test_resume_on_a_named_cpu_reads_the_checkpoint_onto_it(short_session, tmp_path, monkeypatch, gpu_path):
    """The checkpoint (written as a GPU writes it: every tensor moved to the CPU, and read back as a
    GPU reads it: every value moved onto the device) resumes to the uninterrupted run's network."""
    from motordecode.decoders.gru.trainer import Trainer
    from motordecode.training.epochs import EpochTrainer

    _, recording, split = short_session
    if gpu_path:
        monkeypatch.setattr(EpochTrainer, "on_cpu", property(lambda self: False))
    recipe = override(get_recipe("aegru-pruned"), FAST["aegru-pruned"])
    whole = Trainer(recipe, recording, split, seed=2, progress=False, device="cpu").fit()
    assert Trainer(recipe, recording, split, seed=2, run_dir=tmp_path, progress=False,
                   device="cpu").fit(stop_after_epochs=2) is None  # stopped in the fine-tune, masks saved
    blob = torch.load(tmp_path / STATE_FILE, map_location="cpu", weights_only=True)
    assert "cuda_rng" not in blob and blob["stage"] == "finetune" and blob["masks"] is not None
    resumed = Trainer(recipe, recording, split, seed=2, run_dir=tmp_path, progress=False,
                      device=torch.device("cpu")).fit(resume=True)
    assert next(resumed.model.parameters()).device.type == "cpu"
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_api_passes_the_device_on(short_session, tmp_path):
    import motordecode as md

    with pytest.raises(ConfigError, match="'cuda:x'"):
        md.train("wiener", short_session[0], out=tmp_path / "run", device="cuda:x")
    assert not (tmp_path / "run").exists()


def test_pretraining_refuses_a_bad_device_before_writing(short_session, tmp_path):
    from motordecode.pretraining import pretrain_run

    with pytest.raises(ConfigError, match="'tpu'"):
        pretrain_run(override(get_recipe("ann2d"), {"epochs": 1, "pretrain_epochs": 1}), [short_session[0]], seed=0,
                     out=tmp_path / "pre", device="tpu")
    assert not (tmp_path / "pre").exists()
