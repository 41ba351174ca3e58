"""Markdown tables of metrics rows next to the published numbers.

The operation counts are per step of each row's input, in the column "ops per step of (ms)": the
published rows' 4 ms, a measured row's ``ops_step_ms``. They are not rescaled; where a measured
step differs from 4 ms (or is not known) a note under the table says so (docs/metrics.md).
"""

from __future__ import annotations

import math

from motordecode.report.published import PUBLISHED_OPS_STEP_MS, SUMMARY

COLUMNS = (("r2", "R2", "{:.3f}"), ("footprint_bytes", "footprint (B)", "{:.0f}"),
           ("deployed_footprint_bytes", "deployed (B)", "{:.0f}"), ("connection_sparsity", "conn. sparsity", "{:.3f}"),
           ("activation_sparsity", "act. sparsity", "{:.4f}"), ("ops_step_ms", "ops per step of (ms)", "{:g}"),
           ("dense_ops", "dense ops", "{:.0f}"),
           ("effective_macs", "eff. MACs", "{:.0f}"), ("effective_acs", "eff. ACs", "{:.0f}"),
           ("ops", "ops, not split (published)", "{:.0f}"))


def _cell(value, fmt: str) -> str:
    return "" if value is None else fmt.format(value)


def metrics_table(rows: list[dict], published: tuple = (), columns: tuple = COLUMNS) -> str:
    """One line per measured row (labelled by 'label', else 'recipe' and 'session'), then the published rows asked for:
    a name of :data:`SUMMARY`, or a row {"label", "source", facts}.

    Sources that do not say whether their operation count is dense or effective fill the last column.
    """
    header = "| model | source | " + " | ".join(title for _, title, _ in columns) + " |"
    lines = [header, "|" + "---|" * (len(columns) + 2)]
    for row in rows:
        label = row.get("label") or " ".join(str(row[k]) for k in ("recipe", "session") if row.get(k))
        lines.append(f"| {label or 'run'} | measured | "
                     + " | ".join(_cell(row.get(key), fmt) for key, _, fmt in columns) + " |")
    for entry in published:
        name, facts = (entry, SUMMARY[entry]) if isinstance(entry, str) else (entry["label"], entry)
        facts = {"ops_step_ms": PUBLISHED_OPS_STEP_MS, **facts}
        cells = [_cell(facts.get(key), fmt) for key, _, fmt in columns]
        lines.append(f"| {name} | published: {facts['source']} | " + " | ".join(cells) + " |")
    note = ops_step_note(rows) if published else ""
    return "\n".join(lines) + (f"\n\n{note}" if note else "")


def ops_step_note(rows: list[dict]) -> str:
    """A line saying that the measured operation counts are per another step than the published
    4 ms (or per an unknown one); empty when every row's is 4 ms."""
    steps = {row.get("ops_step_ms") for row in rows}
    other = sorted({f"{s:g} ms" for s in steps if s is not None and not math.isclose(s, PUBLISHED_OPS_STEP_MS)})
    if None in steps:
        other.append("an unknown step (a row without ops_step_ms)")
    if not other:
        return ""
    return (f"Operations are per input sample: measured per {' and '.join(other)}, published per "
            f"{PUBLISHED_OPS_STEP_MS:g} ms step. They are not converted (docs/metrics.md).")
