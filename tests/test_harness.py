"""The streaming harness: one call over the stream gives the same row as NeuroBench step by step."""

from __future__ import annotations

import pytest
import torch

from motordecode.data.load import load_reaching
from motordecode.data.splits import split_by_reaches
from motordecode.metrics.harness import evaluate_stream
from neurobench_reference import SequenceDecoder, run_neurobench


@pytest.mark.parametrize("bin_s", [0.004, 0.028])
def test_harness_row_equals_neurobench(indy_file, bin_s):
    rec = load_reaching(indy_file, bin_s)
    test = split_by_reaches(rec.reach_bounds).test[:300]
    x, y = torch.from_numpy(rec.spikes[test]).float(), torch.from_numpy(rec.velocity[test])
    torch.manual_seed(0)
    model = SequenceDecoder(rec.n_channels)
    row, pred = evaluate_stream(model, x, y.numpy(), neurobench_gru_slip=True)
    model.reset()
    ref = run_neurobench(model, x, y)
    assert pred.shape == (300, 2)
    assert row["footprint_bytes"] == ref["Footprint"]
    assert round(row["connection_sparsity"], 4) == ref["ConnectionSparsity"]
    assert row["r2"] == pytest.approx(ref["R2"], rel=1e-5, abs=1e-6)
    assert row["r2"] == pytest.approx((row["r2_x"] + row["r2_y"]) / 2)
    ops = ref["SynapticOperations"]
    assert row["dense_ops"] == pytest.approx(ops["Dense"], rel=1e-6)
    assert row["effective_macs"] == pytest.approx(ops["Effective_MACs"], rel=1e-6)
    assert row["effective_acs"] == pytest.approx(ops["Effective_ACs"], rel=1e-6)
    assert (row["effective_acs"] > 0) == (bin_s == 0.004)
    assert row["activation_sparsity"] is None and row["steps"] == 300
