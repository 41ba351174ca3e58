"""The Recording: every data source produces one.

A Recording is plain arrays plus metadata, time-major:

- ``spikes``   (T, C) spike counts per bin (binary for 4 ms O'Doherty bins, box sums for wider
  bins, counts for generic binned data);
- ``velocity`` (T, D) labels, float32 (for O'Doherty files: cursor velocity in mm per 4 ms step,
  the central-difference gradient of ``cursor_pos``, exactly as NeuroBench computes it);
- ``bin_width_s`` the integration window of one sample; ``step_s`` the spacing of samples;
- ``reach_bounds`` (R, 2) ``[start, end)`` sample indices of each reach, or None when the source
  has no reach markers (the split is then contiguous in time).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Recording:
    spikes: np.ndarray
    velocity: np.ndarray
    bin_width_s: float
    step_s: float
    t: np.ndarray
    reach_bounds: np.ndarray | None = None
    name: str = ""
    monkey: str | None = None
    meta: dict = field(default_factory=dict)
    valid: np.ndarray | None = None   # (T,) bool: samples the splits may use (None: all)

    def __post_init__(self):
        if self.spikes.ndim != 2 or self.velocity.ndim != 2:
            raise ValueError("spikes must be (T, C) and velocity (T, D)")
        if len(self.spikes) != len(self.velocity) or len(self.t) != len(self.spikes):
            raise ValueError(
                f"spikes ({len(self.spikes)}), velocity ({len(self.velocity)}) and t ({len(self.t)})"
                " must have the same number of samples"
            )
        if self.valid is not None and self.valid.shape != (len(self.spikes),):
            raise ValueError(f"valid must be a (T,) mask, got shape {self.valid.shape}")

    @property
    def step_ms(self) -> float:
        """Sample spacing in milliseconds (the unit recipes and builders use)."""
        return self.step_s * 1000.0

    @property
    def n_samples(self) -> int:
        return int(self.spikes.shape[0])

    @property
    def n_channels(self) -> int:
        return int(self.spikes.shape[1])

    @property
    def duration_s(self) -> float:
        return self.n_samples * self.step_s

    @property
    def samples_with_tail(self) -> np.ndarray:
        """``spikes`` plus NeuroBench's label-less trailing sample, if it made one (for exact wrap)."""
        tail = self.meta.get("tail")
        return self.spikes if tail is None or len(tail) == 0 else np.concatenate([self.spikes, tail])

    @property
    def n_reaches(self) -> int | None:
        return None if self.reach_bounds is None else int(len(self.reach_bounds))
