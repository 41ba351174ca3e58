"""A summary of a recording: what `motordecode data info` prints."""

from __future__ import annotations

import numpy as np

from motordecode.data.recording import Recording
from motordecode.data.splits import default_split


def summarize(recording: Recording) -> dict:
    """Channels, units, duration, bins, reaches, firing rates and default split sizes (in samples)."""
    counts = recording.meta.get("spike_counts")
    if counts is None:
        counts = recording.spikes.sum(axis=0, dtype=np.int64)
    rates = np.asarray(counts, dtype=np.float64) / recording.duration_s
    units = recording.meta.get("units_per_channel")
    split = default_split(recording)
    return {
        "name": recording.name,
        "source": recording.meta.get("source"),
        "format": recording.meta.get("format"),
        "monkey": recording.monkey,
        "channels": recording.n_channels,
        "units": None if units is None else int(np.sum(units)),
        "silent_channels": int(np.sum(rates == 0)),
        "duration_s": round(recording.duration_s, 6),
        "bins": recording.n_samples,
        "bin_width_s": recording.bin_width_s,
        "step_s": recording.step_s,
        "reaches": recording.n_reaches,
        "firing_rate_hz": {
            "mean": float(rates.mean()), "median": float(np.median(rates)),
            "min": float(rates.min()), "max": float(rates.max()),
        },
        "split": "by reaches" if recording.reach_bounds is not None else "contiguous in time",
        **split.sizes(),
    }


def format_summary(info: dict) -> str:
    rate = info["firing_rate_hz"]
    lines = [
        f"{info['name']}  ({info['format']}, {info['source']})",
        f"  channels      {info['channels']}" + (f"  ({info['units']} units)" if info["units"] is not None else "")
        + f", {info['silent_channels']} silent",
        f"  duration      {info['duration_s']:.3f} s, {info['bins']} bins of {info['bin_width_s'] * 1e3:g} ms"
        f" every {info['step_s'] * 1e3:g} ms",
        f"  reaches       {info['reaches'] if info['reaches'] is not None else 'none (no reach markers)'}",
        f"  firing rate   mean {rate['mean']:.2f} Hz, median {rate['median']:.2f}, range "
        f"{rate['min']:.2f}-{rate['max']:.2f} Hz per channel",
        f"  split         {info['split']}: train {info['train']}, val {info['val']}, test {info['test']} samples",
    ]
    return "\n".join(lines)
