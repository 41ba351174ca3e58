"""NeuroBench-compatible metrics computed from weights and recorded activity (see docs/metrics.md)."""
