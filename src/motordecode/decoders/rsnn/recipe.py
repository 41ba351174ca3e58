"""The RSNN family's recipes: tinyRSNN and bigRSNN (RSNN repository defaults; times in ms)."""

from __future__ import annotations

from dataclasses import dataclass

from motordecode.recipes import RecipeFields, check, numbers, samples_in


@dataclass(frozen=True)
class RSNNRecipe(RecipeFields):
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
        check(self.name, checks)
        self.prune_step_list()

    def prune_step_list(self) -> list[float]:
        return numbers(self.name, "prune_steps", self.prune_steps, positive=True)

    def substeps(self, step_ms: float) -> int:
        """Network steps per recording sample: round(sample / network_dt_ms), at least 1."""
        return samples_in(step_ms, self.network_dt_ms)


HEADS = {"tiny": ((10.0, 50.0),),
         "big": ((10.0, 50.0), (5.0, 20.0), (20.0, 20.0), (10.0, 30.0), (30.0, 100.0))}

RECIPES = {
    "tinyrsnn": RSNNRecipe("tinyrsnn", prune_start=0.4, half=True),
    "bigrsnn": RSNNRecipe("bigrsnn", hidden=1024, heads="big", ub_strength=0.0),
}
