"""``--format c``: decoder.h, decoder.c (the integer decoder) and main.c, compiled and checked.

Checks, on the run's test split fed through the compiled program's stdin: its raw outputs equal the
NumPy integer reference bit for bit, and its velocities' R2 against the float model's.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from motordecode.errors import ConfigError
from motordecode.export.c_build import arm_sizes, build, run_binary, run_binary_lines, section_sizes, state_bytes
from motordecode.export.c_gru import header, source
from motordecode.export.c_main import MAIN_C
from motordecode.export.c_rsnn import rsnn_header, rsnn_source
from motordecode.export.exporter import agreement, test_streams
from motordecode.export.fixedpoint import activation_error
from motordecode.export.integer_decoder import integer_decoder

MAX_INPUTS = 511        # the int32 accumulation bound (fixedpoint) holds below 512 inputs per product sum


def write_sources(decoder, out: Path) -> None:
    net = decoder.net
    (out / "decoder.h").write_text(header(net, decoder.mode, decoder.n_channels, decoder.features.n_sub,
                                          decoder.features.sub_width))
    (out / "decoder.c").write_text(source(net, decoder.mode))
    (out / "main.c").write_text(MAIN_C)


def weight_bytes(net) -> dict:
    """Bytes of the const arrays: int8 weights, int32 biases, int16 tables."""
    layers = [layer for layer in (net.fc_in, net.cell.ih, net.cell.hh, net.fc_out) if layer is not None]
    return {"weights": int(sum(layer.weight.size for layer in layers)),
            "biases": int(4 * sum(layer.bias.size for layer in layers)),
            "tables": int(2 * (net.table.values.size + 2049))}


def write_c(run, recording, split, mode, out: Path) -> dict:
    """The integer decoder of a GRU-family run, or the float decoder of an RSNN run."""
    from motordecode.decoders.registry import family_of

    if family_of(run.recipe).name == "rsnn":
        return write_c_rsnn(run, recording, split, mode, out)
    return write_c_integer(run, recording, split, mode, out)


def write_c_integer(run, recording, split, mode, out: Path) -> dict:
    from motordecode.pipeline import evaluate_model

    decoder = integer_decoder(run, mode, recording.spikes[split.train])
    widest = max(decoder.n_channels, decoder.net.cell.hidden)
    if widest > MAX_INPUTS:
        raise ConfigError(f"{widest} inputs per product sum exceed the int32 accumulation bound ({MAX_INPUTS}).")
    write_sources(decoder, out)
    scratch = Path(tempfile.mkdtemp(prefix="motordecode-cc-"))
    try:
        binary = build(out, scratch)
        state = state_bytes(out, scratch)
        host, arm = section_sizes(out, scratch), arm_sizes(out, scratch)
        exact, c_velocity = True, []
        for lo, start, stop in test_streams(recording, split, decoder.features.span - 1):
            samples = recording.spikes[lo:stop]
            exact &= bool(np.array_equal(run_binary(binary, samples, raw=True), decoder.outputs(samples)))
            c_velocity.append(run_binary(binary, samples)[start - lo:])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    float_row, float_pred = evaluate_model(run.model, run.recipe, recording, split, run.deployed_bits)[decoder.mode]
    measured = agreement(float_pred, np.concatenate(c_velocity), recording.velocity[split.test])
    if not exact:
        raise ConfigError("the compiled C decoder's outputs differ from the integer reference; "
                          "this is a bug, please report it with the run directory.")
    return {"mode": decoder.mode, "files": ["decoder.h", "decoder.c", "main.c"],
            "formats": {"features": f"int16 Q.{decoder.net.table.frac}", "u": f"int16 Q.{decoder.net.frac_u}",
                        "state": "int16 Q.14 (held in int32)", "pre_activations": "int32 Q.10",
                        "weights": {name: f"int8 Q.{layer.frac_w}" for name, layer in
                                    (("fc_in", decoder.net.fc_in), ("weight_ih", decoder.net.cell.ih),
                                     ("weight_hh", decoder.net.cell.hh), ("fc_out", decoder.net.fc_out))
                                    if layer is not None}},
            "activation_error": activation_error(),
            "sizes": {"host_sections": host, "cortex_m4_sections": arm, "state": state,
                      **weight_bytes(decoder.net)},
            "agreement": {"bit_exact_with_integer_reference": exact, "test_samples": int(len(split.test)),
                          "r2_float_model": float_row["r2"], **measured}}


def write_c_rsnn(run, recording, split, mode, out: Path) -> dict:
    """tinyRSNN / bigRSNN as float C (float16 emulated for float16 models), checked spike for spike."""
    from motordecode.decoders.registry import family_of
    from motordecode.export.spikes import spikes_and_outputs

    family_of(run.recipe).resolve_mode(mode)
    model = run.model
    (out / "decoder.h").write_text(rsnn_header(model))
    (out / "decoder.c").write_text(rsnn_source(model))
    (out / "main.c").write_text(MAIN_C)
    hidden, substeps = model.config.hidden, model.config.substeps
    scratch = Path(tempfile.mkdtemp(prefix="motordecode-cc-"))
    try:
        binary = build(out, scratch)
        state = state_bytes(out, scratch)
        host, arm = section_sizes(out, scratch), arm_sizes(out, scratch)
        same_spikes = same_outputs = True
        spikes_total, velocity, reference = 0, [], []
        for lo, start, stop in test_streams(recording, split, 0):
            samples = recording.spikes[lo:stop]
            expected_spikes, expected = spikes_and_outputs(model, samples, run.recipe.name)
            lines = run_binary_lines(binary, samples, ["-s"])
            got = np.array([[c == "1" for c in line.replace(" ", "")] for line in lines], dtype=np.float32)
            same_spikes &= bool(np.array_equal(got.reshape(-1, hidden), expected_spikes))
            outputs = run_binary(binary, samples)
            same_outputs &= bool(np.array_equal(outputs.astype(np.float32), expected))
            spikes_total += int(expected_spikes.sum())
            velocity.append(outputs)
            reference.append(expected)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if not same_spikes:
        raise ConfigError("the C decoder's spikes differ from the Python model's on the test split; not exported.")
    measured = agreement(np.concatenate(reference).astype(np.float64), np.concatenate(velocity),
                         recording.velocity[split.test])
    dtype = str(model.lif.input.weight.dtype).replace("torch.", "")
    return {"mode": "stream", "files": ["decoder.h", "decoder.c", "main.c"],
            "formats": {"arithmetic": f"{dtype} ({'emulated: float32 operations rounded to float16' if dtype == 'float16' else 'IEEE single'})"},
            "sizes": {"host_sections": host, "cortex_m4_sections": arm, "state": state,
                      "weights": int(4 * sum(p.numel() for p in model.pruned_weights().values()))},
            "agreement": {"identical_spikes": same_spikes, "identical_outputs": same_outputs,
                          "network_steps": int(len(split.test) * substeps), "spikes": spikes_total,
                          "test_samples": int(len(split.test)), **measured}}
