"""metrics.json speaks NeuroBench: synaptic_operations and parameter_count as neurobench 2.3.0
reports them, the counts' step (ops_step_ms) labelled wherever they stand beside the published
per-4 ms figures, val_r2 of the deployed model, every key defined in docs/metrics.md, the README's
harness example equal to ``evaluate``, and an export manifest with one named R2 per model."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import motordecode as md
from motordecode.cli import main
from motordecode.data.splits import contiguous_runs, default_split
from motordecode.metrics.harness import evaluate_stream
from motordecode.metrics.r2 import r2_score
from motordecode.metrics.results import REQUIRED_KEYS
from motordecode.report.tables import metrics_table
from neurobench_reference import SequenceDecoder, run_neurobench
from test_metrics_neurobench import LeakyNet, ReluMLP

REPO = Path(__file__).resolve().parents[1]
NEUROBENCH_OPS = {"Effective_MACs", "Effective_ACs", "Dense"}


@pytest.fixture(scope="module")
def pruned_run(indy_file, tmp_path_factory):
    """A short aegru-pruned run: pruned 50 % and quantised to Q1.7 (deployed bits differ from float32)."""
    return md.train("aegru-pruned", indy_file, out=tmp_path_factory.mktemp("metrics") / "aegru-pruned", epochs=2,
                    finetune_epochs=1)


@pytest.mark.parametrize("model", [SequenceDecoder, ReluMLP, LeakyNet])
def test_synaptic_operations_and_parameter_count_are_neurobenchs(indy_file, model):
    rec = md.load_recording(indy_file)
    test = default_split(rec).test[:200]
    x, y = torch.from_numpy(rec.spikes[test]).float(), torch.from_numpy(rec.velocity[test])
    torch.manual_seed(0)
    net = model(rec.n_channels)
    row, _ = evaluate_stream(net, x, y.numpy(), neurobench_gru_slip=True, step_ms=rec.step_ms)
    net.reset()
    ref = run_neurobench(net, x, y)
    assert set(row["synaptic_operations"]) == set(ref["SynapticOperations"]) == NEUROBENCH_OPS
    for key in NEUROBENCH_OPS:
        assert row["synaptic_operations"][key] == pytest.approx(ref["SynapticOperations"][key], rel=1e-6), key
    assert row["parameter_count"] == ref["ParameterCount"] == sum(p.numel() for p in net.parameters())
    # the flat fields beside them are the same numbers
    assert row["synaptic_operations"] == {"Effective_MACs": row["effective_macs"],
                                          "Effective_ACs": row["effective_acs"], "Dense": row["dense_ops"]}
    assert row["ops_step_ms"] == 4.0


def test_metrics_json_has_neurobench_fields_in_every_mode(pruned_run):
    saved = json.loads((pruned_run.path / "metrics.json").read_text())
    for row in (saved, saved["stateful"]):
        assert row["synaptic_operations"] == {"Effective_MACs": row["effective_macs"],
                                              "Effective_ACs": row["effective_acs"], "Dense": row["dense_ops"]}
    assert saved["stateful"]["synaptic_operations"]["Dense"] < saved["synaptic_operations"]["Dense"]
    assert saved["parameter_count"] == sum(p.numel() for p in pruned_run.model.parameters())
    assert saved["ops_step_ms"] == 4.0


def test_val_r2_is_the_deployed_models(pruned_run, indy_file, tmp_path):
    """val_r2 was the best pre-pruning epoch's; now it is the pruned, quantised model's, decoded as the
    test split is, and the training's stays under val_r2_best_epoch."""
    saved = json.loads((pruned_run.path / "metrics.json").read_text())
    best = max(h["val_r2"] for h in saved["history"] if h["stage"] == "train")
    assert saved["val_r2_best_epoch"] == pytest.approx(best, abs=1e-12)
    rec = md.load_recording(indy_file)
    val = default_split(rec).val
    stream, pred = pruned_run.stream(), []
    for start, stop in contiguous_runs(val):
        stream.reset(history=rec.spikes[:start])
        pred.append(stream(rec.spikes[start:stop]))
    deployed = r2_score(np.concatenate(pred), rec.velocity[val])
    assert saved["val_r2"] == pytest.approx(deployed, abs=1e-9)
    assert abs(saved["val_r2"] - saved["val_r2_best_epoch"]) > 1e-6  # pruning and Q1.7 change it
    # a re-evaluation measures it again and keeps the training's, also from a metrics.json written
    # before val_r2_best_epoch existed (it held the training's R2 under val_r2)
    old = tmp_path / "old"
    shutil.copytree(pruned_run.path, old)
    record = json.loads((old / "metrics.json").read_text())
    record["val_r2"] = record.pop("val_r2_best_epoch")
    (old / "metrics.json").write_text(json.dumps(record))
    rewritten = md.evaluate(old, write=True)
    assert rewritten["val_r2_best_epoch"] == saved["val_r2_best_epoch"]
    assert rewritten["val_r2"] == pytest.approx(saved["val_r2"], abs=1e-12)


def test_counts_on_binned_data_are_labelled_with_their_step(tmp_path, capsys):
    """On 50 ms bins the counts are per 50 ms sample; printed beside the published per-4 ms rows, the
    table says so in a column and a note instead of passing them off as per-4 ms figures."""
    rng = np.random.default_rng(0)
    velocity = np.cumsum(rng.normal(size=(1200, 2)), axis=0)
    spikes = rng.poisson(np.exp(0.1 * velocity @ rng.normal(size=(2, 32)) / velocity.std()))
    data = tmp_path / "binned.npz"
    np.savez(data, spikes=spikes, velocity=velocity, bin_width_s=0.05)
    run = md.train("aegru", data, out=tmp_path / "coarse", epochs=1, window_ms=500.0)
    assert run.metrics["ops_step_ms"] == 50.0 and run.metrics["window"]["step_ms"] == 50.0
    assert main(["evaluate", str(run.path), "--no-write"]) == 0
    out = capsys.readouterr().out
    header = [cell.strip() for cell in out.splitlines()[0].strip("|").split("|")]
    column = header.index("ops per step of (ms)")
    cells = {line.split("|")[1].strip(): line.split("|")[column + 1].strip()
             for line in out.splitlines()[2:] if line.startswith("| ")}
    assert cells == {"aegru binned (windowed)": "50", "aegru binned (stateful)": "50", "AEGRU": "4"}
    assert "measured per 50 ms, published per 4 ms step. They are not converted" in out
    # on 4 ms samples the units agree and no note is printed
    four = metrics_table([{"recipe": "aegru", "r2": 0.7, "ops_step_ms": 4.0}], published=("AEGRU",))
    assert "not converted" not in four and "| 4 |" in four


def test_docs_define_every_metrics_json_field():
    """docs/metrics.md defines each field of metrics.json (deployed_footprint_bytes was missing)."""
    text = (REPO / "docs" / "metrics.md").read_text()
    defined = set(re.findall(r"^\| `([a-z0-9_]+)` \|", text, flags=re.M))
    fields = set(REQUIRED_KEYS) - {"recipe", "session", "seed"}
    assert fields <= defined, sorted(fields - defined)
    section = text[text.index("`deployed_footprint_bytes`"):]
    assert "bitmask" in section.splitlines()[0]


def _readme_blocks(*needles: str) -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    found = [next(b for b in blocks if needle in b) for needle in needles]
    return found


def test_readme_harness_example_reports_what_evaluate_reports(pruned_run, indy_file, capsys):
    """The README's evaluate_decoder example printed a deployed footprint of float32 weights (20,640 B
    against evaluate's 6,720 B on the real recording): it did not pass the run's deployed bits."""
    namespace = {"rec": md.load_recording(indy_file), "run": md.load_run(pruned_run.path)}
    for block in _readme_blocks("default_split(rec)", "evaluate_decoder("):
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    printed = capsys.readouterr().out
    row, expected = namespace["row"], md.evaluate(pruned_run.path)
    assert pruned_run.deployed_bits and expected["deployed_footprint_bytes"] < expected["footprint_bytes"]
    for key in ("footprint_bytes", "deployed_footprint_bytes", "parameter_count", "connection_sparsity",
                "activation_sparsity", "ops_step_ms", "steps", "synaptic_operations"):
        assert row[key] == expected[key], key
    for key in ("r2", "r2_x", "r2_y", "dense_ops", "effective_macs", "effective_acs"):
        assert row[key] == pytest.approx(expected[key], rel=1e-9, abs=1e-12), key
    assert f"| {expected['deployed_footprint_bytes']} |" in printed


def test_c_export_manifest_names_each_r2_once(pruned_run, tmp_path):
    """The manifest held r2_reference and r2_float_model, one number under two names; now the Python
    model's R2 is r2_python_model, equal to metrics.json's R2 in the exported mode."""
    from motordecode.export.exporter import export_run

    manifest = export_run(pruned_run.path, "c", tmp_path / "c", mode="stateful")
    measured = manifest["agreement"]
    assert "r2_reference" not in measured and "r2_float_model" not in measured
    assert measured["r2_python_model"] == pytest.approx(pruned_run.metrics["stateful"]["r2"], abs=1e-12)
    assert abs(measured["r2_exported"] - measured["r2_python_model"]) < 0.01
    assert manifest["source_metrics"]["ops_step_ms"] == 4.0
    saved = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert saved["agreement"] == measured
