"""Deployed footprint, metrics.json and the Markdown table next to the published numbers."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from motordecode.errors import MetricError
from motordecode.metrics.deployed import deployed_footprint_bytes
from motordecode.metrics.footprint import footprint_bytes
from motordecode.metrics.harness import evaluate_stream
from motordecode.metrics.results import REQUIRED_KEYS, write_metrics
from motordecode.report.published import R2_PER_SESSION, SESSIONS, SUMMARY
from motordecode.report.tables import metrics_table


def test_deployed_footprint_by_hand():
    net = nn.Sequential(nn.Linear(10, 4), nn.BatchNorm1d(4))
    with torch.no_grad():
        net[0].weight[:, :8] = 0  # 32 of 40 weights pruned
        net[1].bias.fill_(0.1)
    # fp32 weights: dense 160 B vs bitmask 5 B + 8 * 4 B = 37 B; bias 16 B dense; BatchNorm params 2 x 16 B;
    # buffers: running mean/var 2 x 16 B + num_batches_tracked 8 B
    assert deployed_footprint_bytes(net) == 37 + 16 + 32 + 40
    # Q1.7 weights at 8 bits: bitmask 5 B + 8 B
    assert deployed_footprint_bytes(net, {"0.weight": 8}) == 13 + 16 + 32 + 40
    assert footprint_bytes(net) == 160 + 16 + 32 + 40  # NeuroBench's footprint is unchanged
    with pytest.raises(MetricError, match="no parameter named 1.nope"):
        deployed_footprint_bytes(net, {"1.nope": 8})


def test_metrics_json_has_every_key(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    x, y = torch.rand(50, 3), torch.randn(50, 2).numpy()
    row, _ = evaluate_stream(model, x, y, deployed_bits={"0.weight": 8, "2.weight": 8})
    path = write_metrics(tmp_path / "run", row, recipe="test", session="indy_synth", seed=3, val_r2=0.5)
    record = json.loads(path.read_text())
    for key in REQUIRED_KEYS + ("timings", "versions"):
        assert key in record
    assert record["deployed_footprint_bytes"] < record["footprint_bytes"]
    assert record["versions"]["torch"] == torch.__version__
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["metrics.json"]


def test_table_puts_rows_next_to_published_numbers():
    row = {"recipe": "aegru", "session": "indy_20170131_02", "r2": 0.7012, "footprint_bytes": 39184,
           "connection_sparsity": 0.5, "activation_sparsity": None, "dense_ops": 54000.0,
           "effective_macs": 25000.0, "effective_acs": 0.0, "ops_step_ms": 4.0}
    table = metrics_table([row], published=("AEGRU pruned 50%", "tinyRSNN"))
    lines = table.splitlines()
    assert len(lines) == 5 and all(line.count("|") == lines[0].count("|") for line in lines)
    assert "| aegru indy_20170131_02 | measured | 0.701 | 39184 |" in table
    assert "| AEGRU pruned 50% | published: AEGRU paper, Table II" in table and "25100" in table
    assert "0.9836" in table


def test_published_facts_are_complete():
    assert len(SESSIONS) == 6
    for name, (values, std, source) in R2_PER_SESSION.items():
        assert len(values) == 6 and (std is None or len(std) == 6) and source
    assert all(facts["source"] for facts in SUMMARY.values())
