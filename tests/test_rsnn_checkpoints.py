"""Published tinyRSNN checkpoints load into the project's RSNN and reproduce their published figures."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import SHARED
from motordecode.data.load import load_recording
from motordecode.data.splits import default_split
from motordecode.errors import ConfigError
from motordecode.metrics.harness import evaluate_stream
from motordecode.decoders.rsnn.checkpoint import WEIGHTS, load_stork_checkpoint, rsnn_from_stork_state

WEIGHT_DIR = SHARED / "reference" / "weights" / "tinyRSNN"
PUBLISHED = {"indy01": {"footprint": 21000, "dense": 10368, "channels": 96},
             "loco01": {"footprint": 33288, "dense": 16512, "channels": 192}}


def _files():
    if not WEIGHT_DIR.is_dir():
        pytest.fail(f"the published weights {WEIGHT_DIR} are missing: the tests need ../shared next to the repository.")
    files = sorted(WEIGHT_DIR.glob("*/tinyRSNN-*.pth"))
    assert len(files) == 10, files
    return files


@pytest.fixture(scope="module")
def streams(indy_file, loco_file):
    out = {}
    for key, path in (("indy01", indy_file), ("loco01", loco_file)):
        rec = load_recording(path, bin_width_s=0.004)
        test = default_split(rec).test
        out[key] = (torch.from_numpy(rec.spikes[test].astype(np.float32)), rec.velocity[test])
    return out


@pytest.mark.parametrize("index", range(10))
def test_published_checkpoint_reproduces_static_figures_and_runs(index, streams):
    path = _files()[index]
    facts = PUBLISHED[path.parent.name]
    state = torch.load(path, map_location="cpu", weights_only=True)
    zeros = sum(int((state[k] == 0).sum()) for k in WEIGHTS)
    total = sum(state[k].numel() for k in WEIGHTS)
    model = load_stork_checkpoint(path)
    assert model.lif.input.weight.dtype == torch.float16
    x, y = streams[path.parent.name]
    row, pred = evaluate_stream(model, x, y)
    assert row["footprint_bytes"] == facts["footprint"]
    assert row["dense_ops"] == facts["dense"]
    assert row["connection_sparsity"] == pytest.approx(zeros / total, abs=1e-12)
    assert 0.39 < row["connection_sparsity"] < 0.51  # the published per-file range (0.40-0.50)
    assert np.isfinite(pred).all() and np.abs(pred).max() > 0
    assert 0.96 <= row["activation_sparsity"] <= 0.99
    assert row["effective_macs"] == 0 and 0 < row["effective_acs"] < 0.3 * row["dense_ops"]
    # the time constants are the stored parameters through the nominal values of the published config
    tau_syn, tau_mem = model.lif.time_constants_ms()
    expected = 20.0 * torch.nn.functional.softplus(state["group2.mem_param"].float())
    assert torch.allclose(tau_mem.float(), expected, rtol=1e-3)


def test_inconsistent_or_foreign_checkpoints_are_refused(tmp_path):
    state = torch.load(_files()[0], map_location="cpu", weights_only=True)
    broken = dict(state)
    broken["con2.src.mem_param"] = broken["con2.src.mem_param"] + 1
    with pytest.raises(ConfigError, match="differs"):
        rsnn_from_stork_state(broken)
    partial = {k: v for k, v in state.items() if k != "con2.op.weight"}
    with pytest.raises(ConfigError, match="missing con2.op.weight"):
        rsnn_from_stork_state(partial)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="cannot read"):
        load_stork_checkpoint(junk)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "motordecode", *args], capture_output=True, text=True)


def test_import_checkpoint_then_evaluate_like_a_trained_run(tmp_path, indy_file):
    path = _files()[0]
    out = tmp_path / "imported"
    done = _cli("import-checkpoint", "tinyrsnn", str(path), "--out", str(out))
    assert done.returncode == 0, done.stderr
    no_data = _cli("evaluate", str(out), "--json")
    assert no_data.returncode == 2 and "pass --data" in no_data.stderr and "Traceback" not in no_data.stderr
    done = _cli("evaluate", str(out), "--data", str(indy_file), "--json")
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)
    assert row["recipe"] == "tinyrsnn" and row["footprint_bytes"] == 21000 and row["dense_ops"] == 10368
    assert 0.96 <= row["activation_sparsity"] <= 0.99
    assert json.loads((out / "metrics.json").read_text())["r2"] == row["r2"]
    again = _cli("import-checkpoint", "tinyrsnn", str(path), "--out", str(out))
    assert again.returncode == 2 and "not empty" in again.stderr
    wrong = _cli("import-checkpoint", "gru", str(path), "--out", str(tmp_path / "x"))
    assert wrong.returncode == 2 and "unknown checkpoint kind" in wrong.stderr
