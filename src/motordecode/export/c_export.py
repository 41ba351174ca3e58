"""``--format c``: decoder.h, decoder.c and main.c, compiled and checked.

GRU families: the integer decoder; its raw outputs on the run's test split, fed through the
compiled program's stdin, must equal the NumPy integer reference bit for bit, and its velocities'
R2 is measured against the float model's. RSNN (float16): its spikes and outputs must equal the
Python model's.
"""

from __future__ import annotations

import contextlib
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
from motordecode.export.fixedpoint import TABLE_SIZE, activation_error
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
            "tables": int(2 * (net.table.values.size + TABLE_SIZE))}


@contextlib.contextmanager
def compiled(out: Path):
    """(program, sizes) of the sources in ``out``, compiled in a scratch directory removed afterwards."""
    scratch = Path(tempfile.mkdtemp(prefix="motordecode-cc-"))
    try:
        binary = build(out, scratch)
        sizes = {"host_sections": section_sizes(out, scratch), "cortex_m4_sections": arm_sizes(out, scratch),
                 "state": state_bytes(out, scratch)}
        yield binary, sizes
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def write_c(run, recording, split, mode, out: Path) -> dict:
    """The integer decoder of a GRU-family run, or the float16 decoder of an RSNN run."""
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
    with compiled(out) as (binary, sizes):
        c_velocity = []
        for lo, start, stop in test_streams(recording, split, decoder.features.span - 1):
            samples = recording.spikes[lo:stop]
            raw = run_binary(binary, samples, raw=True)
            if not np.array_equal(raw, decoder.outputs(samples)):
                raise ConfigError("the compiled C decoder's outputs differ from the integer reference; "
                                  "this is a bug, please report it with the run directory.")
            c_velocity.append(run_binary(binary, samples)[start - lo:])  # the program's own printed velocities
    _, float_pred = evaluate_model(run.model, run.recipe, recording, split, run.deployed_bits)[decoder.mode]
    measured = agreement(float_pred, np.concatenate(c_velocity), recording.velocity[split.test])
    net = decoder.net
    return {"mode": decoder.mode, "files": ["decoder.h", "decoder.c", "main.c"],
            "formats": {"features": f"int16 Q.{net.table.frac}", "u": f"int16 Q.{net.frac_u}",
                        "state": "int16 Q.14 (held in int32)", "pre_activations": "int32 Q.10",
                        "weights": {name: f"int8 Q.{layer.frac_w}" for name, layer in
                                    (("fc_in", net.fc_in), ("weight_ih", net.cell.ih), ("weight_hh", net.cell.hh),
                                     ("fc_out", net.fc_out)) if layer is not None},
                        "calibration": "f_u from the train split of the recording checked on"},
            "activation_error": activation_error(),
            "sizes": {**sizes, **weight_bytes(net)},
            "agreement": {"bit_exact_with_integer_reference": True, "test_samples": int(len(split.test)),
                          **measured}}


def _spike_lines(lines: list[str], hidden: int, substeps: int) -> np.ndarray:
    """The 0/1 lines of ``main -s`` as (samples x substeps, hidden) spikes."""
    width = substeps * hidden + substeps - 1
    if any(len(line) != width or set(line) - {"0", "1", " "} for line in lines):
        raise ConfigError(f"the C program's spike lines are not {substeps} groups of {hidden} 0/1 characters.")
    return np.array([[c == "1" for c in line.replace(" ", "")] for line in lines], dtype=np.float32).reshape(-1, hidden)


def write_c_rsnn(run, recording, split, mode, out: Path) -> dict:
    """A float16 tinyRSNN / bigRSNN as C with float16 emulated, checked spike for spike and output for output."""
    from motordecode.decoders.registry import family_of
    from motordecode.export.spikes import spikes_and_outputs

    family_of(run.recipe).resolve_mode(mode)
    model = run.model
    (out / "decoder.c").write_text(rsnn_source(model))
    (out / "decoder.h").write_text(rsnn_header(model))
    (out / "main.c").write_text(MAIN_C)
    hidden, substeps = model.config.hidden, model.config.substeps
    spikes_total, velocity, reference = 0, [], []
    with compiled(out) as (binary, sizes):
        for lo, start, stop in test_streams(recording, split, 0):
            samples = recording.spikes[lo:stop]
            expected_spikes, expected = spikes_and_outputs(model, samples, run.recipe.name)
            got = _spike_lines(run_binary_lines(binary, samples, ["-s"]), hidden, substeps)
            outputs = run_binary(binary, samples)
            if not np.array_equal(got, expected_spikes) or not np.array_equal(outputs.astype(np.float32), expected):
                raise ConfigError("the C decoder's spikes or outputs differ from the Python model's on the test "
                                  "split; not exported.")
            spikes_total += int(expected_spikes.sum())
            velocity.append(outputs)
            reference.append(expected)
    measured = agreement(np.concatenate(reference).astype(np.float64), np.concatenate(velocity),
                         recording.velocity[split.test])
    return {"mode": "stream", "files": ["decoder.h", "decoder.c", "main.c"],
            "formats": {"arithmetic": "float16 as decoders/rsnn/half_arithmetic.py defines it: exact sums in "
                                       "double, single float operations, each result rounded to float16"},
            "sizes": {**sizes, "weights": int(4 * sum(p.numel() for p in model.pruned_weights().values()))},
            "agreement": {"identical_spikes": True, "identical_outputs": True,
                          "network_steps": int(len(split.test) * substeps), "spikes": spikes_total,
                          "test_samples": int(len(split.test)), **measured}}
