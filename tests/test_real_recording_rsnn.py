"""tinyRSNN on the genuine recording in ../shared/data (real M1 spikes, 50 ms bins, contiguous split)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from motordecode.api import load_run
from motordecode.pipeline import train_run
from motordecode.recipes import get_recipe, override
from stream_agreement import assert_fast_path_agrees

# a small recording: 2 s windows of 50 ms bins, fed as 5 network steps of 10 ms each; smaller
# batches give enough updates per epoch (the published 250 windows are ~1/5 of this recording)
BINNED = {"epochs": 20, "network_dt_ms": 10.0, "batch_size": 64, "prune_start": 0.0}
KERNEL_SETS = ("default", "avx2", "avx512")


@pytest.fixture(scope="module")
def trained(stevenson_file, tmp_path_factory):
    """Seeds 0 and 1 trained as the recipe trains them on the real recording: (run dir, metrics row)."""
    recipe, out = override(get_recipe("tinyrsnn"), BINNED), tmp_path_factory.mktemp("tinyrsnn_real")
    return [(out / f"s{seed}", train_run(recipe, stevenson_file, seed=seed, out=out / f"s{seed}", progress=False))
            for seed in (0, 1)]


def test_tinyrsnn_reaches_r2_075_on_the_real_recording(trained, stevenson_file):
    scores = []
    for run_dir, row in trained:
        scores.append(row["r2"])
        saved = json.loads((run_dir / "metrics.json").read_text())
        assert saved["r2"] == row["r2"] and saved["mode"] == "stream"
        assert saved["network"]["substeps"] == 5 and abs(saved["network"]["step_ms"] - 10.0) < 1e-6
        assert row["footprint_bytes"] == 2 * (171 * 64 + 64 * 64 + 64 * 2 + 2 * 64 + 2 * 2)  # float16
        assert 0.9 < row["activation_sparsity"] < 1.0
        run = load_run(run_dir)  # the fast step path: the float16 definition, 5 sub-steps a bin
        torch_r2, fast_r2 = assert_fast_path_agrees(run.decoder(), run.load_recording(stevenson_file), exact=True)
        assert fast_r2 == torch_r2 and abs(fast_r2 - row["r2"]) < 1e-4
    print(f"tinyRSNN test R2 on the real recording, seeds 0, 1: {np.round(scores, 4)}")
    assert np.mean(scores) >= 0.75  # a ridge Wiener filter with 10 bins of history reaches about 0.72


# run in a fresh interpreter per kernel set: the PyTorch stream, the fast step and the C export of a
# trained run over the real recording's test split, from the zero state as the evaluation runs it (an
# RSNN reads no history: Stream.reset ignores the samples before the split)
DECODE_UNDER_KERNEL_SET = r"""
import sys
from pathlib import Path
import numpy as np
import torch
from motordecode.api import load_run
from motordecode.data.splits import default_split
from motordecode.decoders.base import Stream
from motordecode.decoders.fast import FastStream
from motordecode.export.c_build import run_binary
from motordecode.export.c_export import compiled
from motordecode.export.exporter import export_run

run_dir, data, out = sys.argv[1], sys.argv[2], sys.argv[4]
export_dir = Path(sys.argv[3])
run = load_run(run_dir)
recording = run.load_recording(data)
test = default_split(recording).test
history, samples = recording.spikes[:test[0]], recording.spikes[test]
results = {"capability": np.array(torch.backends.cpu.get_cpu_capability())}
for name, stream in (("stream", Stream(run.decoder())), ("fast", FastStream(run.decoder()))):
    stream.reset(history=history)
    results[name] = stream(samples)
manifest = export_run(run_dir, "c", export_dir, data=data)   # checks spikes and outputs itself
with compiled(export_dir) as (binary, _):
    results["c"] = run_binary(binary, samples).astype(np.float32)
results["manifest_identical"] = np.array(manifest["agreement"]["identical_spikes"]
                                         and manifest["agreement"]["identical_outputs"])
np.savez(out, **results)
"""


def test_float16_inference_is_identical_under_every_kernel_set(trained, stevenson_file, tmp_path):
    """The trained float16 tinyRSNN decodes the real recording's test split bit for bit alike in the
    PyTorch stream, the fast step and the C export, under ATEN_CPU_CAPABILITY=default, avx2 and avx512,
    each in its own interpreter."""
    run_dir = trained[0][0]
    results, ran, running = {}, {}, {}
    for kernels in KERNEL_SETS:  # side by side: each in its own interpreter
        env = {**os.environ, "ATEN_CPU_CAPABILITY": kernels, "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
        running[kernels] = subprocess.Popen(
            [sys.executable, "-c", DECODE_UNDER_KERNEL_SET, str(run_dir), str(stevenson_file),
             str(tmp_path / f"c_{kernels}"), str(tmp_path / f"{kernels}.npz")],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for kernels, process in running.items():
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, f"ATEN_CPU_CAPABILITY={kernels}: {err[-3000:]}"
    for kernels in KERNEL_SETS:
        with np.load(tmp_path / f"{kernels}.npz") as saved:
            results[kernels] = {name: saved[name] for name in ("stream", "fast", "c")}
            ran[kernels] = str(saved["capability"]).lower()
            assert bool(saved["manifest_identical"])
    for kernels, got in results.items():
        assert got["stream"].shape == (len(got["stream"]), 2) and np.ptp(got["stream"], axis=0).min() > 0
        np.testing.assert_array_equal(got["fast"], got["stream"], err_msg=f"fast step under {kernels}")
        np.testing.assert_array_equal(got["c"], got["stream"], err_msg=f"C export under {kernels}")
        np.testing.assert_array_equal(got["stream"], results["default"]["stream"],
                                      err_msg=f"{kernels} against default kernels")
    missing = [k for k in KERNEL_SETS if ran[k] != k]
    if missing:  # ATEN_CPU_CAPABILITY cannot raise the kernels above what the CPU has
        warnings.warn(f"this CPU could not run PyTorch's {missing} kernels (ran {[ran[k] for k in missing]}); "
                      "those comparisons ran on lower kernels.")
    assert ran["default"] == "default"
