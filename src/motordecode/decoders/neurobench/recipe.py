"""The NeuroBench family's recipes: ANN2D, ANN3D, SNN2, SNN3D."""

from __future__ import annotations

from dataclasses import dataclass

from motordecode.recipes import RecipeFields, check, samples_in


@dataclass(frozen=True)
class NeuroBenchRecipe(RecipeFields):
    """The NeuroBench baselines. NeuroBench publishes no training code for them; the defaults are
    the training setup of the public code the architectures come from (AdamW, cosine, MSE)."""
    name: str
    model: str = "ann2d"            # ann2d | ann3d | snn2 | snn3d
    bin_ms: float = 4.0             # sample width when reading a session .mat
    window_ms: float = 200.0        # input buffer: 50 samples of 4 ms (at least ``bins`` samples)
    bins: int = 7                   # ANN3D / SNN3D: bins of window // bins samples
    epochs: int = 50
    pretrain_epochs: int = 0        # > 0: pre-train on several sessions first (--pretrain FILE ...)
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
            (self.pretrain_epochs >= 0, "pretrain_epochs must be >= 0"),
            (self.lr > 0 and self.weight_decay >= 0, "lr must be > 0 and weight_decay >= 0"),
        ]
        check(self.name, checks)

    def window_samples(self, step_ms: float) -> int:
        """Samples in the input buffer: round(window_ms / sample width), at least ``bins``."""
        return samples_in(self.window_ms, step_ms, minimum=self.bins)

    def sequence_samples(self, step_ms: float) -> int:
        """SNN2: samples in one training sequence, at least 2."""
        return samples_in(self.sequence_ms, step_ms, minimum=2)


RECIPES = {
    "ann2d": NeuroBenchRecipe("ann2d"),
    "ann3d": NeuroBenchRecipe("ann3d", model="ann3d"),
    "snn2": NeuroBenchRecipe("snn2", model="snn2", batch_size=32),
    "snn3d": NeuroBenchRecipe("snn3d", model="snn3d"),
}
