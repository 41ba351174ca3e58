"""motordecode export: the integer decoders against the float models, the generated C compiled with
the system compiler and fed the test split through its stdin (bit-exact with the NumPy integer
reference), the ONNX step against the Python stream, and clear refusals that leave nothing behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import motordecode as md
from motordecode.data.splits import default_split
from motordecode.export.c_build import CFLAGS
from motordecode.export.exporter import export_run, test_streams as fed_streams
from motordecode.export.fixedpoint import TANH_TABLE, activation_error, quantize_weight, rshift_round, table_tanh
from motordecode.errors import ConfigError
from motordecode.export.integer_gru import IntLinear
from motordecode.export.integer_decoder import integer_decoder
from motordecode.metrics.r2 import r2_per_axis

SHORT = {"aegru-pruned": {"epochs": 3, "finetune_epochs": 1}, "gru": {"epochs": 2},
         "deltagru": {"hidden": 16, "epochs": 6, "finetune_epochs": 1, "anneal_epochs": 1, "batch_size": 2,
                      "tbptt_ms": 1000.0, "lr": 5e-3}}


def as_stdin(samples) -> str:
    """The C program's input: one line of integer counts per sample."""
    return "\n".join(" ".join(map(str, row)) for row in np.asarray(samples).astype(int)) + "\n"


def float_r2(run, mode: str) -> float:
    """The run's metrics.json R2 in ``mode``."""
    return run.metrics["r2"] if run.metrics["mode"] == mode else run.metrics[mode]["r2"]


def cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "motordecode", *map(str, args)], capture_output=True, text=True,
                          **kwargs)


@pytest.fixture(scope="module")
def runs(indy_file, tmp_path_factory):
    base = tmp_path_factory.mktemp("export-runs")
    return {name: md.train(name, indy_file, out=base / name, **overrides) for name, overrides in SHORT.items()}


def test_rounding_and_activation_tables():
    assert list(rshift_round(np.array([5, 6, -5, -6, -7]), 2)) == [1, 2, -1, -1, -2]  # floor((x + 2) / 4)
    assert np.all(np.diff(TANH_TABLE.astype(int)) >= 0) and TANH_TABLE[0] == -(2 ** 14) and TANH_TABLE[-1] == 2 ** 14
    errors = activation_error()
    assert 0 < errors["tanh"] < 6.7e-5 and 0 < errors["sigmoid"] < 6.7e-5  # the bound in docs/deployment.md
    assert table_tanh(np.array([0]))[0] == 0 and table_tanh(np.array([10 ** 9]))[0] == 2 ** 14


def test_weights_keep_their_q17_values_and_biases_saturate():
    weights, frac = quantize_weight(np.array([-1.0, 2 ** -7, 3 * 2 ** -7, 127 / 128]))
    assert frac == 7 and list(weights) == [-128, 1, 3, 127]  # -1 fits int8: no bit is lost
    assert quantize_weight(np.array([1.5, -0.25]))[1] == 6  # 1.5 needs Q.6
    layer = IntLinear(np.full((1, 8), 127, dtype=np.int8), np.array([2 ** 31 - 100]), 7, 12)
    assert layer(np.full((1, 8), 2 ** 15 - 1))[0, 0] == 2 ** 31 - 1  # saturates, never wraps


def test_c_saturates_biases_like_the_reference(runs, tmp_path):
    """Biases near the int32 limits: the compiled C saturates exactly where NumPy does."""
    from motordecode.export.c_build import build, run_binary
    from motordecode.export.c_export import write_sources

    run = runs["aegru-pruned"]
    recording = run.load_recording(run.config["data"])
    rng = np.random.default_rng(0)
    for mode in ("stateful", "stream"):
        name = "aegru-pruned" if mode == "stateful" else "deltagru"
        decoder = integer_decoder(runs[name], mode, recording.spikes[:5000])
        for layer in (decoder.net.fc_in, decoder.net.cell.ih, decoder.net.cell.hh, decoder.net.fc_out):
            layer.bias = rng.choice([-(2 ** 31) + 5, 2 ** 31 - 5, 0], size=layer.bias.shape).astype(np.int64)
        out = tmp_path / mode
        out.mkdir()
        write_sources(decoder, out)
        samples = recording.spikes[:500]
        np.testing.assert_array_equal(run_binary(build(out, out), samples, raw=True), decoder.outputs(samples))


def test_export_errors_name_the_problem(runs, tmp_path):
    result = cli("export", tmp_path / "no-such-run", "--format", "c", "--out", tmp_path / "a" / "b")
    assert result.returncode == 2 and "no-such-run" in result.stderr and "Traceback" not in result.stderr
    result = cli("export", runs["aegru-pruned"].path, "--format", "c", "--out", tmp_path / "a" / "b",
                 "--data", tmp_path / "missing.mat")
    assert result.returncode == 2 and "missing.mat" in result.stderr
    assert list(tmp_path.iterdir()) == []  # no directory left behind


def _integer_r2(run, mode):
    recording = run.load_recording(run.config["data"])
    split = default_split(recording)
    decoder = integer_decoder(run, mode, recording.spikes[split.train])
    velocity = [decoder.velocity(recording.spikes[lo:stop])[start - lo:]
                for lo, start, stop in fed_streams(recording, split, decoder.features.span - 1)]
    return float(r2_per_axis(np.concatenate(velocity), recording.velocity[split.test]).mean())


@pytest.mark.parametrize("name,mode", [("aegru-pruned", "windowed"), ("aegru-pruned", "stateful"),
                                       ("gru", "windowed"), ("deltagru", "stream")])
def test_integer_decoder_keeps_the_float_r2(runs, name, mode):
    run = runs[name]
    assert float_r2(run, mode) > 0.2  # a model worth comparing
    assert abs(_integer_r2(run, mode) - float_r2(run, mode)) < 0.01


C_EXPORTS = (("aegru-pruned", "windowed"), ("aegru-pruned", "stateful"), ("gru", "stateful"), ("deltagru", "stream"))


@pytest.fixture(scope="module")
def c_exports(runs, tmp_path_factory):
    """{(recipe, mode): (export directory, compiled program, CLI output)}, through the command line."""
    base = tmp_path_factory.mktemp("c-exports")
    exports = {}
    for name, mode in C_EXPORTS:
        out = base / f"{name}-{mode}"
        result = cli("export", runs[name].path, "--format", "c", "--out", out, "--mode", mode)
        assert result.returncode == 0, result.stderr
        # compiled here again, independently of the exporter's own check
        binary = base / f"{name}-{mode}.bin"
        subprocess.run(["cc", *CFLAGS, "-o", binary, out / "decoder.c", out / "main.c"], check=True)
        exports[(name, mode)] = out, binary, result.stdout
    return exports


@pytest.mark.parametrize("name,mode", C_EXPORTS)
def test_c_export_is_bit_exact_and_keeps_r2(runs, c_exports, name, mode):
    out, binary, stdout = c_exports[(name, mode)]
    assert "Cortex-M4" in stdout and "state" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["decoder.c", "decoder.h", "main.c", "manifest.json"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["mode"] == mode and manifest["recipe"] == name
    source = (out / "decoder.c").read_text()
    assert "malloc" not in source and "#include" in source and "<math.h>" not in source
    run = runs[name]
    recording = run.load_recording(run.config["data"])
    split = default_split(recording)
    decoder = integer_decoder(run, mode, recording.spikes[split.train])
    (lo, start, stop), = fed_streams(recording, split, decoder.features.span - 1)
    samples = recording.spikes[lo:stop]
    text = as_stdin(samples)
    raw = np.loadtxt(subprocess.run([binary, "-r"], input=text, capture_output=True, text=True,
                                    check=True).stdout.splitlines(), dtype=np.int64)
    np.testing.assert_array_equal(raw, decoder.outputs(samples))
    velocity = np.loadtxt(subprocess.run([binary], input=text, capture_output=True, text=True,
                                         check=True).stdout.splitlines())[start - lo:]
    assert abs(r2_per_axis(velocity, recording.velocity[split.test]).mean() - float_r2(run, mode)) < 0.01


def test_c_sizes_are_measured(c_exports):
    out, _, _ = c_exports[("aegru-pruned", "windowed")]
    sizes = json.loads((out / "manifest.json").read_text())["sizes"]
    assert sizes["host_sections"]["text"] > sizes["weights"]  # the const weight arrays live in .text/.rodata
    assert sizes["state"] >= 2 * 100 * 96  # the 100-sample window of 96 channels, uint16
    if shutil.which("arm-none-eabi-gcc"):
        assert sizes["cortex_m4_sections"]["text"] > sizes["weights"]
    else:
        assert sizes["cortex_m4_sections"] is None


def test_c_program_rejects_bad_lines_after_printing_the_good_ones(c_exports):
    _, binary, _ = c_exports[("aegru-pruned", "stateful")]
    good = " ".join(["1"] * 96)
    for bad, message in ((" ".join(["1"] * 95), "has 95 counts; this decoder reads 96 channels"),
                         (good.replace("1", "x", 1), "is not an integer spike count"),
                         (good.replace("1", "-3", 1), "out of range")):
        result = subprocess.run([binary], input=f"{good}\n\n{good}\n{bad}\n{good}\n", capture_output=True, text=True)
        assert result.returncode == 2
        assert "line 4" in result.stderr and message in result.stderr
        assert len(result.stdout.splitlines()) == 2  # the two good samples before it were decoded


def test_onnx_step_equals_the_python_stream(runs, tmp_path):
    import onnxruntime

    for name, mode in (("aegru-pruned", "stateful"), ("deltagru", "stream")):
        out = tmp_path / f"onnx-{name}-{mode}"
        manifest = export_run(runs[name].path, "onnx", out, mode=mode)
        assert json.loads((out / "manifest.json").read_text()) == manifest
        assert manifest["agreement"]["max_abs_diff"] < 1e-5
        # an independent replay of the graph on 300 samples
        session = onnxruntime.InferenceSession(str(out / "decoder.onnx"), providers=["CPUExecutionProvider"])
        state = {i.name: np.zeros(i.shape, dtype=np.float32) for i in session.get_inputs() if i.name != "x"}
        recording = runs[name].load_recording(runs[name].config["data"])
        stream = runs[name].stream(mode)
        for sample in recording.spikes[1000:1300].astype(np.float32):
            y, *new = session.run(None, {"x": sample[None], **state})
            state = dict(zip(state, new))
            np.testing.assert_allclose(y[0], stream.push(sample), atol=1e-5, rtol=0)


def test_unsupported_exports_are_refused_and_write_nothing(indy_file, tmp_path):
    run = md.train("kalman", indy_file, out=tmp_path / "kalman")
    result = cli("export", run.path, "--format", "c", "--out", tmp_path / "out")
    assert result.returncode == 2 and "has no integer form" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kalman"]


TINY_RSNN = {"hidden": 32, "batch_size": 16, "epochs": 3, "prune_epochs": 1, "prune_steps": "0.1", "prune_max": 0.5,
             "prune_tolerance": 0.9}


@pytest.mark.parametrize("recipe,overrides", [("wiener", {}), ("kalman", {"steady_state": False}),
                                              ("snn2", {"epochs": 2}), ("ann2d", {"epochs": 1}),
                                              ("ann3d", {"epochs": 1}), ("tinyrsnn", TINY_RSNN),
                                              ("tinyrsnn", {**TINY_RSNN, "half": False})])
def test_onnx_step_of_every_other_family(indy_file, tmp_path, recipe, overrides):
    run = md.train(recipe, indy_file, out=tmp_path / recipe, **overrides)
    manifest = export_run(run.path, "onnx", tmp_path / "onnx")
    exact = recipe == "tinyrsnn" and overrides.get("half", True)  # float16: Cast pairs give its exact arithmetic
    if recipe == "tinyrsnn" and not exact:  # a float32 RSNN has no exact C form
        result = cli("export", run.path, "--format", "c", "--out", tmp_path / "c")
        assert result.returncode == 2 and "float16" in result.stderr and not (tmp_path / "c").exists()
    assert manifest["agreement"]["max_abs_diff"] < (1e-12 if exact else 1e-5)
    assert abs(manifest["agreement"]["r2_exported"] - run.metrics["r2"]) < 1e-5


def test_export_failures_leave_nothing_half_written(runs, tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    result = cli("export", runs["aegru-pruned"].path, "--format", "c", "--out", taken)
    assert result.returncode == 2 and "not empty" in result.stderr
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]
    broken = tmp_path / "broken-cc"
    broken.write_text("#!/bin/sh\necho 'cc: out of licences' >&2\nexit 1\n")
    broken.chmod(0o755)
    env = {**os.environ, "CC": str(broken)}
    result = cli("export", runs["aegru-pruned"].path, "--format", "c", "--out", tmp_path / "deep" / "new", env=env)
    assert result.returncode == 2 and "out of licences" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken-cc", "taken"]


def test_c_export_of_the_real_recording_keeps_metrics_r2(stevenson_file, tmp_path):
    run = md.train("aegru-pruned", stevenson_file, out=tmp_path / "run", epochs=15, finetune_epochs=2)
    manifest = export_run(run.path, "c", tmp_path / "c", mode="windowed")
    agreement = manifest["agreement"]
    print(f"real recording, aegru-pruned windowed: float R2 {run.metrics['r2']:.4f}, C program "
          f"{agreement['r2_exported']:.4f}")
    assert agreement["test_samples"] > 1000
    assert abs(agreement["r2_exported"] - run.metrics["r2"]) < 0.01


@pytest.fixture(scope="module")
def spiking_runs(indy_file, tmp_path_factory):
    base = tmp_path_factory.mktemp("spiking-runs")
    short = {"tinyrsnn": TINY_RSNN,  # pruned and float16, as the recipe deploys it
             "snn2": {"epochs": 2}}
    return {name: md.train(name, indy_file, out=base / name, **overrides) for name, overrides in short.items()}


@pytest.mark.parametrize("name", ["tinyrsnn", "snn2"])
def test_nir_round_trip_replays_the_models_spikes_exactly(spiking_runs, tmp_path, name):
    import nir
    from motordecode.export.nir_export import replay_model
    from motordecode.export.spikes import spikes_and_outputs

    run = spiking_runs[name]
    out = tmp_path / "nir"
    result = cli("export", run.path, "--format", "nir", "--out", out)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["agreement"]["spikes"] > 100
    expected = {"tinyrsnn": {"CubaLIF", "CubaLI", "Delay", "Linear", "Input", "Output"},
                "snn2": {"LIF", "LI", "Linear", "Input", "Output"}}[name]
    assert set(manifest["node_types"]) == expected
    # replayed here from the file alone, against the run's model on 2000 samples of the session
    graph = nir.read(str(out / "decoder.nir"))
    recording = run.load_recording(run.config["data"])
    samples = recording.spikes[3000:5000]
    spikes, outputs = spikes_and_outputs(run.model, samples, name)
    replayed_spikes, replayed_outputs = spikes_and_outputs(replay_model(graph), samples, name)
    np.testing.assert_array_equal(replayed_spikes, spikes)
    np.testing.assert_array_equal(replayed_outputs, outputs)
    # the replay reads the graph's time constants: a 1% change of one shows in the spikes
    node = graph.nodes["lif" if name == "tinyrsnn" else "lif1"]
    if name == "tinyrsnn":
        node.tau_mem = node.tau_mem * 1.01
    else:
        node.tau, node.r = node.tau * 1.01, node.r * 1.01  # r = tau / dt in the mapping
    changed, _ = spikes_and_outputs(replay_model(graph), samples, name)
    assert not np.array_equal(changed, spikes)
    # a parameter the project's neuron does not have is refused, not ignored
    node.v_threshold = node.v_threshold * 1.1
    with pytest.raises(ConfigError, match="v_threshold is not the value of the mapping"):
        replay_model(graph)


def test_nir_refuses_non_spiking_decoders(runs, tmp_path):
    result = cli("export", runs["aegru-pruned"].path, "--format", "nir", "--out", tmp_path / "nir")
    assert result.returncode == 2 and "is not a spiking decoder" in result.stderr
    assert not (tmp_path / "nir").exists()


def test_tinyrsnn_c_export_gives_the_models_spikes(spiking_runs, tmp_path):
    from motordecode.export.spikes import spikes_and_outputs

    run = spiking_runs["tinyrsnn"]
    assert run.model.lif.input.weight.dtype == torch.float16  # as the recipe deploys it
    out = tmp_path / "c"
    result = cli("export", run.path, "--format", "c", "--out", out)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["agreement"]["identical_spikes"] and manifest["agreement"]["identical_outputs"]
    assert "float16" in manifest["formats"]["arithmetic"]
    binary = tmp_path / "decoder"
    subprocess.run(["cc", *CFLAGS, "-o", binary, out / "decoder.c", out / "main.c"], check=True)
    samples = run.load_recording(run.config["data"]).spikes[2000:4000]
    text = as_stdin(samples)
    lines = subprocess.run([binary, "-s"], input=text, capture_output=True, text=True, check=True).stdout.splitlines()
    spikes, outputs = spikes_and_outputs(run.model, samples, "tinyrsnn")
    assert spikes.sum() > 100
    np.testing.assert_array_equal(np.array([[c == "1" for c in line] for line in lines], dtype=np.float32), spikes)
    velocity = np.loadtxt(subprocess.run([binary], input=text, capture_output=True, text=True,
                                         check=True).stdout.splitlines())
    np.testing.assert_array_equal(velocity.astype(np.float32), outputs)
    # SNN2 has no C export: refused, nothing written
    result = cli("export", spiking_runs["snn2"].path, "--format", "c", "--out", tmp_path / "snn2-c")
    assert result.returncode == 2 and "has no integer form" in result.stderr and not (tmp_path / "snn2-c").exists()
