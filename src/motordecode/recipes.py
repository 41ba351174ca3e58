"""Recipes: named, complete decoder configurations with the published defaults.

A recipe fixes the features, the model, the training, and the compression. The CLI and the sweeps
pick a recipe and override single fields with ``key=value`` strings (:func:`override`).

Window lengths are in milliseconds and are mapped onto the recording's sample spacing: a sub-window
of ``window_ms / n_sub`` ms covers ``max(1, round(sub_ms / step_ms))`` samples (20 samples of 4 ms for
the published 400 ms in 5 sub-windows; 2 bins of 50 ms on a 50 ms recording).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from motordecode.errors import ConfigError


def _numbers(recipe: str, field: str, text: str, positive: bool) -> list[float]:
    """A comma-separated list of numbers (all > 0, or all >= 0); ConfigError otherwise."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"recipe {recipe!r}: {field} must be comma-separated numbers, got {text!r}.") from None
    if not values or any(v <= 0 if positive else v < 0 for v in values):
        raise ConfigError(f"recipe {recipe!r}: {field} must be {'positive' if positive else 'non-negative'}, "
                          f"got {text!r}.")
    return values


def _require(name: str, checks: list[tuple[bool, str]]) -> None:
    """Raise ConfigError with the first failed check's message."""
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"recipe {name!r}: {message}.")


@dataclass(frozen=True)
class Recipe:
    name: str
    # model
    model: str = "aegru"            # "aegru" (input FC + autoencoder branch) or "gru" (vanilla)
    hidden: int = 32
    logvar_hidden: int = 128
    batchnorm: bool = False
    layernorm: bool = False
    dropout: float = 0.0
    # features
    window_ms: float = 400.0        # N samples of 4 ms (N = 100)
    n_sub: int = 5                  # k sub-windows, the GRU steps of the windowed decoder
    train_steps: int = 0            # sub-windows per training example (0: n_sub)
    transform: str = "log_softplus"
    bin_ms: float = 4.0             # sample width when reading a session .mat
    # training
    epochs: int = 50
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-3
    mse_weight: float = 10.0
    pnll_weight: float = 1.0
    jitter_p: float = 0.5
    standardize_labels: bool = True  # train on (v - mean) / std of the training labels (see models)
    # compression
    prune_rate: float = 0.0
    finetune_epochs: int = 10
    finetune_lr: float = 1e-4
    quant_bits: int = 0             # 0: float32 weights; 8 with quant_frac_bits 7: Q1.7
    quant_frac_bits: int = 7

    def __post_init__(self):
        checks = [
            (self.model in ("aegru", "gru"), f"model must be 'aegru' or 'gru', got {self.model!r}"),
            (self.hidden >= 1 and self.logvar_hidden >= 1, "hidden sizes must be >= 1"),
            (0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}"),
            (self.window_ms > 0 and self.n_sub >= 1, "window_ms must be > 0 and n_sub >= 1"),
            (self.train_steps >= 0, "train_steps must be >= 0"),
            (self.transform in ("log_softplus", "none"), f"transform must be log_softplus or none, got {self.transform!r}"),
            (self.bin_ms > 0, "bin_ms must be > 0"),
            (self.epochs >= 1 and self.batch_size >= 1, "epochs and batch_size must be >= 1"),
            (self.lr > 0 and self.finetune_lr > 0 and self.weight_decay >= 0, "learning rates must be > 0"),
            (0.0 <= self.jitter_p <= 1.0, f"jitter_p must be in [0, 1], got {self.jitter_p}"),
            (0.0 <= self.prune_rate < 1.0, f"prune_rate must be in [0, 1), got {self.prune_rate}"),
            (self.finetune_epochs >= 0, "finetune_epochs must be >= 0"),
            (self.quant_bits == 0 or 0 <= self.quant_frac_bits < self.quant_bits <= 16,
             "quant_bits must be 0 (float) or 2..16 with 0 <= quant_frac_bits < quant_bits"),
            (not (self.batchnorm and self.model == "gru"), "batchnorm follows the input FC, which the vanilla GRU lacks"),
        ]
        _require(self.name, checks)

    @property
    def steps_per_example(self) -> int:
        return self.train_steps or self.n_sub

    def sub_width(self, step_s: float) -> int:
        """Samples per sub-window on a recording with sample spacing ``step_s``."""
        return max(1, round(self.window_ms / self.n_sub / (step_s * 1000.0)))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SpikingRecipe:
    """tinyRSNN / bigRSNN (RSNN repository defaults). Time constants and windows in ms."""
    name: str
    model: str = "rsnn"
    hidden: int = 64
    heads: str = "tiny"             # readout heads: "tiny" (one, 10/50 ms) or "big" (five)
    tau_mem_ms: float = 20.0
    tau_syn_ms: float = 10.0
    tau_scale: float = 1.0          # multiplies every nominal time constant (hidden and readout)
    network_dt_ms: float = 4.0      # the network's step; coarser bins are fed as sub-steps (see RSNN)
    dropout: float = 0.3
    bin_ms: float = 4.0             # binary 4 ms bins when reading a session .mat
    # data regime
    window_ms: float = 2000.0       # training windows of 2 s ...
    stride_ms: float = 400.0        # ... cut every 0.4 s (offsets 0, 100, ..., 400 steps of 4 ms)
    val_fraction: float = 0.175     # last share of train + validation held out by time (~13% of a session)
    # training
    pretrain_epochs: int = 100      # on the pre-training sessions (skipped without any)
    epochs: int = 200               # fine-tuning on the session
    batch_size: int = 250
    lr: float = 2e-3
    sigma_u: float = 0.5            # fluctuation-driven initialisation
    feedforward_share: float = 0.9
    lb_strength: float = 100.0      # lower bound: per neuron, >= lb_threshold spikes per window
    lb_threshold: float = 1e-3
    ub_strength: float = 0.01       # upper bound: population mean <= ub_threshold spikes per window
    ub_threshold: float = 10.0
    standardize_labels: bool = True  # train on v / std(v); the scale is folded into the readout weights
    # compression
    prune_start: float = 0.0        # 0: no pruning; tinyRSNN: 0.40
    prune_steps: str = "0.1,0.05"
    prune_max: float = 0.8
    prune_epochs: int = 100
    prune_tolerance: float = 0.02   # accept a rate if train R2 >= (1 - tolerance) x unpruned
    half: bool = False              # convert to float16 at the end

    def __post_init__(self):
        checks = [
            (self.model == "rsnn", f"model must be 'rsnn', got {self.model!r}"),
            (self.hidden >= 1, "hidden must be >= 1"),
            (self.heads in HEADS, f"heads must be one of {', '.join(HEADS)}, got {self.heads!r}"),
            (self.tau_mem_ms > 0 and self.tau_syn_ms > 0 and self.tau_scale > 0, "time constants must be > 0"),
            (self.network_dt_ms > 0, "network_dt_ms must be > 0"),
            (0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}"),
            (self.bin_ms > 0 and self.window_ms > 0 and self.stride_ms > 0, "bin, window and stride must be > 0"),
            (0.0 < self.val_fraction < 1.0, f"val_fraction must be in (0, 1), got {self.val_fraction}"),
            (self.pretrain_epochs >= 0 and self.epochs >= 1 and self.batch_size >= 1, "epochs and batch_size must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (self.sigma_u > 0 and 0.0 < self.feedforward_share <= 1.0, "sigma_u > 0 and feedforward_share in (0, 1]"),
            (self.lb_strength >= 0 and self.ub_strength >= 0, "regulariser strengths must be >= 0"),
            (0.0 <= self.prune_start <= self.prune_max < 1.0, "need 0 <= prune_start <= prune_max < 1"),
            (self.prune_epochs >= 0 and 0.0 <= self.prune_tolerance < 1.0, "prune_epochs >= 0, prune_tolerance in [0, 1)"),
        ]
        _require(self.name, checks)
        self.prune_step_list()

    def prune_step_list(self) -> list[float]:
        return _numbers(self.name, "prune_steps", self.prune_steps, positive=True)

    def substeps(self, step_s: float) -> int:
        """Network steps per recording sample: round(sample / network_dt_ms), at least 1."""
        return max(1, round(step_s * 1000.0 / self.network_dt_ms))

    def steps(self, length_ms: float, step_s: float) -> int:
        """Samples covering ``length_ms`` on a recording with sample spacing ``step_s``."""
        return max(1, round(length_ms / (step_s * 1000.0)))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class BaselineRecipe:
    """The NeuroBench baselines. NeuroBench publishes no training code for them; the defaults are
    the training setup of the public code the architectures come from (AdamW, cosine, MSE)."""
    name: str
    model: str = "ann2d"            # ann2d | ann3d | snn2 | snn3d
    bin_ms: float = 4.0             # sample width when reading a session .mat
    window_ms: float = 200.0        # input buffer: 50 samples of 4 ms (at least ``bins`` samples)
    bins: int = 7                   # ANN3D / SNN3D: bins of window // bins samples
    epochs: int = 50
    batch_size: int = 512           # samples (ANN2D, ANN3D, SNN3D) or sequences (SNN2: 32)
    lr: float = 5e-3
    weight_decay: float = 0.01
    cosine_epochs: int = 64         # T_max of the cosine schedule
    sequence_ms: float = 2000.0     # SNN2: training sequences (BPTT) of 2 s

    def __post_init__(self):
        checks = [
            (self.model in ("ann2d", "ann3d", "snn2", "snn3d"), f"model must be ann2d, ann3d, snn2 or snn3d, got {self.model!r}"),
            (self.bin_ms > 0 and self.window_ms > 0 and self.sequence_ms > 0, "bin, window and sequence lengths must be > 0"),
            (self.bins >= 1, "bins must be >= 1"),
            (self.epochs >= 1 and self.batch_size >= 1 and self.cosine_epochs >= 1, "epochs and batch_size must be >= 1"),
            (self.lr > 0 and self.weight_decay >= 0, "lr must be > 0 and weight_decay >= 0"),
        ]
        _require(self.name, checks)

    def window_samples(self, step_s: float) -> int:
        """Samples in the input buffer: round(window_ms / sample width), at least ``bins``."""
        return max(self.bins, round(self.window_ms / (step_s * 1000.0)))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LinearRecipe:
    """The classical decoders: a Wiener filter (ridge on a count history) or a Kalman filter."""
    name: str
    model: str = "wiener"           # "wiener" or "kalman"
    bin_ms: float = 4.0             # sample width when reading a session .mat (binned files keep theirs)
    count_ms: float = 50.0          # width of one count bin (a trailing sum of samples)
    history: int = 10               # Wiener: count bins of history (10 x 50 ms = 500 ms)
    alphas: str = "1e-4,3e-4,1e-3,3e-3,1e-2,3e-2,0.1,0.3,1,3,10,30,100"  # Wiener: ridge grid (x N)
    steady_state: bool = True       # Kalman: the limit gain for every step (else transient gains first)
    ridge: float = 1e-3             # Kalman: added to the observation noise, x its mean variance

    def __post_init__(self):
        checks = [
            (self.model in ("wiener", "kalman"), f"model must be 'wiener' or 'kalman', got {self.model!r}"),
            (self.bin_ms > 0 and self.count_ms > 0, "bin_ms and count_ms must be > 0"),
            (self.history >= 1, "history must be >= 1"),
            (self.ridge >= 0, "ridge must be >= 0"),
        ]
        _require(self.name, checks)
        self.alpha_list()

    def alpha_list(self) -> list[float]:
        return _numbers(self.name, "alphas", self.alphas, positive=False)

    def count_samples(self, step_s: float) -> int:
        """Samples per count bin: round(count_ms / sample width), at least 1."""
        return max(1, round(self.count_ms / (step_s * 1000.0)))

    def to_dict(self) -> dict:
        return asdict(self)


HEADS = {"tiny": ((10.0, 50.0),),
         "big": ((10.0, 50.0), (5.0, 20.0), (20.0, 20.0), (10.0, 30.0), (30.0, 100.0))}

RECIPES = {
    "aegru": Recipe("aegru"),
    "aegru-pruned": Recipe("aegru-pruned", prune_rate=0.5, quant_bits=8, quant_frac_bits=7),
    "gru": Recipe("gru", model="gru", pnll_weight=0.0),
    "tinyrsnn": SpikingRecipe("tinyrsnn", prune_start=0.4, half=True),
    "bigrsnn": SpikingRecipe("bigrsnn", hidden=1024, heads="big", ub_strength=0.0),
    "ann2d": BaselineRecipe("ann2d"),
    "ann3d": BaselineRecipe("ann3d", model="ann3d"),
    "snn2": BaselineRecipe("snn2", model="snn2", batch_size=32),
    "snn3d": BaselineRecipe("snn3d", model="snn3d"),
    "wiener": LinearRecipe("wiener"),
    "kalman": LinearRecipe("kalman", model="kalman"),
}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ConfigError(f"unknown recipe {name!r}; choose from {', '.join(RECIPES)}.") from None


def _parse(kind, text: str, key: str):
    if kind is bool or kind == "bool":
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"--set {key}={text}: expected true or false.")
    try:
        return {"int": int, "float": float, "str": str}.get(kind, kind)(text)
    except ValueError:
        raise ConfigError(f"--set {key}={text}: expected a value of type {kind}.") from None


def override(recipe, assignments: list[str] | dict):
    """A copy of ``recipe`` with fields set from ``key=value`` strings (or a dict of values)."""
    types = {f.name: f.type for f in fields(type(recipe)) if f.name != "name"}
    items = assignments.items() if isinstance(assignments, dict) else [_split(a) for a in assignments]
    changes = {}
    for key, value in items:
        if key not in types:
            raise ConfigError(f"unknown recipe field {key!r}; fields are: {', '.join(types)}.")
        changes[key] = _parse(types[key], value, key) if isinstance(value, str) else value
    return replace(recipe, **changes)


def _split(assignment: str) -> tuple[str, str]:
    key, sep, value = assignment.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set expects key=value, got {assignment!r}.")
    return key.strip(), value.strip()


def is_spiking(recipe) -> bool:
    return isinstance(recipe, SpikingRecipe)


def is_linear(recipe) -> bool:
    return isinstance(recipe, LinearRecipe)


def is_baseline(recipe) -> bool:
    return isinstance(recipe, BaselineRecipe)


def streams(recipe) -> bool:
    """True for decoders evaluated as one stream of samples (all but the GRU decoders)."""
    return is_spiking(recipe) or is_linear(recipe) or is_baseline(recipe)


def recipe_from_dict(data: dict):
    kinds = {"rsnn": SpikingRecipe, "wiener": LinearRecipe, "kalman": LinearRecipe,
             **{name: BaselineRecipe for name in ("ann2d", "ann3d", "snn2", "snn3d")}}
    kind = kinds.get(data.get("model"), Recipe)
    known = {f.name for f in fields(kind)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"saved recipe has unknown fields {', '.join(sorted(unknown))}.")
    return kind(**data)
