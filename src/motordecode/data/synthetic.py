"""Synthetic reaching sessions: the embedded default data set.

Task: continuous random-target reaching. A target from an 8 x 8 grid appears the moment the
cursor reaches the previous one (no gaps); after a reaction time (150-350 ms) the cursor moves with
a minimum-jerk profile ``p(tau) = p0 + (g - p0)(10 tau^3 - 15 tau^4 + 6 tau^5)`` plus smooth
(Gaussian-filtered, 100 ms) noise of 1 mm, for 0.35 s + 4 ms/mm of distance (+/- jitter).

Neurons: each channel has 1-5 units (some channels are silent). A unit fires as an inhomogeneous
Poisson process with rate

    lambda(t) = b * exp(kappa * <v(t + lag), d> / V + beta * |v(t + lag)| / V) / Z

with baseline b, preferred direction d, direction gain kappa, speed gain beta, lead ``lag``
(neural activity precedes movement by 50-150 ms), V = 200 mm/s and Z normalising the mean rate to b.
Spikes also occur in the 200 ms before ``t[0]``, as in the real files. Deterministic by seed.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import scipy.ndimage

from motordecode.data.binning import STEP_S
from motordecode.data.generated import generator_attributes
from motordecode.data.sessions import CATALOG, CHANNELS, stand_in_name
from motordecode.data.write_mat import write_reaching_mat
from motordecode.errors import ConfigError

SPEED_SCALE_MM_S = 200.0
_PREROLL_STEPS = 50
DIFFICULTIES = ("realistic", "easy")


@dataclass(frozen=True)
class Realism:
    """What makes a realistic session hard (drawn from a second generator, so "easy" sessions stay
    exactly what they were)."""
    untuned: float = 0.40          # share of units with no movement tuning (multi-unit activity)
    weak: float = 0.35             # share of weakly tuned units (kappa 0.05-0.3, beta 0-0.15)
    rate_drift: float = 0.35       # std of the log baseline drift over the session
    direction_drift: float = 0.42  # std of the preferred-direction drift (rad)
    drift_knots_s: float = 20.0    # the drifts are smooth random walks with a knot every ... s
    latents: int = 3               # shared low-dimensional variability: factors ...
    latent_gain: float = 0.3       # ... with loadings N(0, gain^2) on the log rate
    latent_width_s: float = 0.15   # ... smoothed over this time scale
    pause_p: float = 0.3           # a reach starts after an extra 0.3-1.5 s hold (target shown) with this probability
    speed_spread: float = 0.3      # movement durations x lognormal(0, spread)


REALISTIC = Realism()


@dataclass
class SynthConfig:
    monkey: str = "indy"
    duration_s: float = 300.0
    seed: int = 0
    units_per_channel: tuple[int, int] = (1, 5)
    silent_fraction: float = 0.08
    rate_hz: tuple[float, float] = (2.0, 30.0)
    workspace_mm: float = 70.0
    difficulty: str = "realistic"   # "realistic" (default, see REALISTIC) or "easy" (every unit well tuned)

    def __post_init__(self):
        if self.monkey not in CHANNELS:
            raise ConfigError(f"monkey must be one of {', '.join(CHANNELS)}, got {self.monkey!r}.")
        if not (np.isfinite(self.duration_s) and 1.0 <= self.duration_s <= 86400.0):
            raise ConfigError(f"duration must be between 1 s and 1 day, got {self.duration_s}.")
        if not 0 <= self.seed < 2**63:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed}.")
        lo, hi = self.units_per_channel
        if not 1 <= lo <= hi <= 5:
            raise ConfigError(f"units per channel must satisfy 1 <= min <= max <= 5, got {self.units_per_channel}.")
        if not 0 <= self.silent_fraction < 1:
            raise ConfigError(f"silent fraction must be in [0, 1), got {self.silent_fraction}.")
        if not 0 < self.rate_hz[0] <= self.rate_hz[1]:
            raise ConfigError(f"rate range must be positive and ordered, got {self.rate_hz}.")
        if self.difficulty not in DIFFICULTIES:
            raise ConfigError(f"difficulty must be one of {', '.join(DIFFICULTIES)}, got {self.difficulty!r}.")

    @property
    def n_channels(self) -> int:
        return CHANNELS[self.monkey]


@dataclass
class SynthSession:
    t: np.ndarray              # (T,)
    cursor_pos: np.ndarray     # (T, 2) mm
    target_pos: np.ndarray     # (T, 2) mm
    finger_pos: np.ndarray     # (T, 3) cm, (z, -x, -y) as the hand tracker reports it
    spike_times: list          # [channel][unit] -> sorted seconds
    units: dict = field(default_factory=dict)  # tuning parameters per unit, arrays over all units


def _smooth_noise(rng: np.random.Generator, n: int, sigma: float, width_steps: float) -> np.ndarray:
    """Gaussian-smoothed white noise (smooth derivatives), rescaled to standard deviation ``sigma``."""
    noise = scipy.ndimage.gaussian_filter1d(rng.normal(size=(n, 2)), width_steps, axis=0, mode="wrap")
    return noise * (sigma / max(float(noise.std()), 1e-12))


def _trajectory(cfg: SynthConfig, rng: np.random.Generator, n: int, extra: np.random.Generator | None = None):
    grid = np.linspace(-cfg.workspace_mm, cfg.workspace_mm, 8)
    pos_parts, target_parts = [], []
    current = np.zeros(2)
    total = 0
    while total < n:
        target = current
        while np.allclose(target, current):
            target = np.array([rng.choice(grid), rng.choice(grid)])
        distance = float(np.linalg.norm(target - current))
        wait = int(rng.uniform(0.15, 0.35) / STEP_S)
        move = max(int((0.35 + 0.004 * distance) * rng.uniform(0.85, 1.15) / STEP_S), 20)
        if extra is not None:  # realistic: a spread of speeds, and pauses
            move = max(int(move * extra.lognormal(0.0, REALISTIC.speed_spread)), 20)
            if extra.random() < REALISTIC.pause_p:
                wait += int(extra.uniform(0.3, 1.5) / STEP_S)
        tau = np.arange(1, move + 1) / move
        shape = 10 * tau**3 - 15 * tau**4 + 6 * tau**5
        path = np.concatenate([np.repeat(current[None], wait, 0), current + np.outer(shape, target - current)])
        pos_parts.append(path)
        target_parts.append(np.repeat(target[None], len(path), 0))
        total += len(path)
        current = target
    pos = np.concatenate(pos_parts)[:n]
    pos += _smooth_noise(rng, n, sigma=1.0, width_steps=25.0)
    return pos, np.concatenate(target_parts)[:n]


def _units(cfg: SynthConfig, rng: np.random.Generator, extra: np.random.Generator | None = None) -> dict:
    n_units = rng.integers(cfg.units_per_channel[0], cfg.units_per_channel[1] + 1, size=cfg.n_channels)
    silent = rng.random(cfg.n_channels) < cfg.silent_fraction
    n_units[silent] = 0
    channel = np.repeat(np.arange(cfg.n_channels), n_units)
    m = len(channel)
    lo, hi = np.log(cfg.rate_hz[0]), np.log(cfg.rate_hz[1])
    units = {
        "channel": channel,
        "baseline_hz": np.exp(rng.uniform(lo, hi, m)),
        "direction": rng.uniform(0, 2 * np.pi, m),
        "kappa": rng.uniform(0.3, 1.2, m),
        "beta": rng.uniform(0.0, 0.6, m),
        "lag_steps": rng.integers(12, 38, m),  # 50-150 ms lead
    }
    if extra is not None:  # realistic: untuned and weakly tuned units, loadings on shared factors
        r = REALISTIC
        kind = extra.random(m)
        untuned, weak = kind < r.untuned, (kind >= r.untuned) & (kind < r.untuned + r.weak)
        units["kappa"] = np.where(untuned, 0.0, np.where(weak, extra.uniform(0.05, 0.3, m), units["kappa"]))
        units["beta"] = np.where(untuned, 0.0, np.where(weak, extra.uniform(0.0, 0.15, m), units["beta"]))
        units["loadings"] = extra.normal(0.0, r.latent_gain, (m, r.latents))
    return units


def _walk(extra: np.random.Generator, knots: int, n: int) -> np.ndarray:
    """A smooth random walk over n steps with unit standard deviation (knots interpolated)."""
    walk = np.cumsum(extra.normal(size=knots))
    walk = (walk - walk.mean()) / max(float(walk.std()), 1e-9)
    return np.interp(np.linspace(0, knots - 1, n), np.arange(knots), walk)


def generate_session(cfg: SynthConfig) -> SynthSession:
    """Simulate a session (see the module docstring)."""
    rng = np.random.default_rng(cfg.seed)
    n = int(round(cfg.duration_s / STEP_S))
    t0 = round(float(rng.uniform(5.0, 50.0)) / STEP_S) * STEP_S
    t = t0 + np.arange(n) * STEP_S
    extra = np.random.default_rng([cfg.seed, 1]) if cfg.difficulty == "realistic" else None
    pos, target = _trajectory(cfg, rng, n, extra)
    vel = np.gradient(pos, axis=0) / STEP_S  # mm/s
    units = _units(cfg, rng, extra)
    # time grid including a pre-roll before t[0] (the cursor rests there)
    pre = _PREROLL_STEPS
    vel_ext = np.concatenate([np.zeros((pre, 2)), vel, np.zeros((40, 2))])
    step_ends = t0 + (np.arange(n + pre) - pre) * STEP_S
    spike_times: list[list[np.ndarray]] = [[] for _ in range(cfg.n_channels)]
    if extra is not None:  # realistic: shared factors, drifting rates and preferred directions
        r = REALISTIC
        width = r.latent_width_s / STEP_S
        latents = scipy.ndimage.gaussian_filter1d(extra.normal(size=(n + pre, r.latents)), width, axis=0)
        latents /= np.maximum(latents.std(axis=0), 1e-12)
        knots = max(2, int(np.ceil(cfg.duration_s / r.drift_knots_s)) + 1)
    for u, ch in enumerate(units["channel"]):
        lead = units["lag_steps"][u]
        v = vel_ext[lead : lead + n + pre] / SPEED_SCALE_MM_S
        angle = units["direction"][u]
        if extra is not None:
            angle = angle + r.direction_drift * _walk(extra, knots, n + pre)
        along = v[:, 0] * np.cos(angle) + v[:, 1] * np.sin(angle)
        drive = np.exp(units["kappa"][u] * along + units["beta"][u] * np.linalg.norm(v, axis=1))
        rate = units["baseline_hz"][u] * drive / drive.mean()
        if extra is not None:
            rate = rate * np.exp(r.rate_drift * _walk(extra, knots, n + pre) + latents @ units["loadings"][u])
        rate = np.minimum(rate, 300.0)
        counts = rng.poisson(rate * STEP_S)
        steps = np.repeat(np.arange(n + pre), counts)
        times = step_ends[steps] - rng.uniform(0.0, STEP_S, size=steps.size)
        spike_times[ch].append(np.sort(times))
    finger = np.stack([np.full(n, 5.0) + 0.05 * rng.standard_normal(n), -pos[:, 0] / 10, -pos[:, 1] / 10], axis=1)
    return SynthSession(t=t, cursor_pos=pos, target_pos=target, finger_pos=finger,
                        spike_times=spike_times, units=units)


FORMATS = ("mat", "nwb")


def write_synthetic(path: str | os.PathLike, cfg: SynthConfig | None = None, fmt: str = "mat") -> Path:
    """Generate a session and write it as a v7.3 .mat in the real layout, or as NWB (``fmt="nwb"``,
    see :mod:`motordecode.data.write_nwb`). The file carries its settings (:func:`motordecode.data.generated.generator_settings`)
    and never takes the name of a session of the record (:func:`motordecode.data.sessions.stand_in_name` gives one)."""
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}.")
    stem = Path(path).stem
    if stem in CATALOG:
        raise ConfigError(f"{Path(path).name} is the name of the recorded session {stem} of Zenodo record 583331; "
                          f"a generated session must not pose as it. Name it e.g. {stand_in_name(stem)}"
                          f"{Path(path).suffix}.")
    cfg = cfg or SynthConfig()
    session = generate_session(cfg)
    fields = dict(t=session.t, cursor_pos=session.cursor_pos, target_pos=session.target_pos,
                  finger_pos=session.finger_pos, spike_times=session.spike_times)
    attributes = generator_attributes(asdict(cfg))
    if fmt == "nwb":
        from motordecode.data.write_nwb import write_session_nwb

        return write_session_nwb(path, identifier=f"motordecode-synthetic-{cfg.monkey}-seed{cfg.seed}",
                                 attributes=attributes, **fields)
    return write_reaching_mat(path, attributes=attributes, **fields)
