"""Markdown tables of metrics rows next to the published numbers."""

from __future__ import annotations

from motordecode.report.published import SUMMARY

COLUMNS = (("r2", "R2", "{:.3f}"), ("footprint_bytes", "footprint (B)", "{:.0f}"),
           ("deployed_footprint_bytes", "deployed (B)", "{:.0f}"), ("connection_sparsity", "conn. sparsity", "{:.3f}"),
           ("activation_sparsity", "act. sparsity", "{:.4f}"), ("dense_ops", "dense ops", "{:.0f}"),
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
        cells = [_cell(facts.get(key), fmt) for key, _, fmt in columns]
        lines.append(f"| {name} | published: {facts['source']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
