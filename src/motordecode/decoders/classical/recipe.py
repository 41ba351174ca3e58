"""The classical family's recipes: the Wiener filter and the Kalman filter."""

from __future__ import annotations

from dataclasses import dataclass

from motordecode.recipes import RecipeFields, check, numbers, samples_in

RIDGE_GRID = "1e-4,3e-4,1e-3,3e-3,1e-2,3e-2,0.1,0.3,1,3,10,30,100"


@dataclass(frozen=True)
class ClassicalRecipe(RecipeFields):
    """The classical decoders: a Wiener filter (ridge on a count history) or a Kalman filter."""
    name: str
    model: str = "wiener"           # "wiener" or "kalman"
    bin_ms: float = 4.0             # sample width when reading a session .mat (binned files keep theirs)
    count_ms: float = 50.0          # width of one count bin (a trailing sum of samples)
    history: int = 10               # Wiener: count bins of history (10 x 50 ms = 500 ms)
    alphas: str = RIDGE_GRID        # Wiener: ridge strengths tried (x N samples)
    steady_state: bool = True       # Kalman: the limit gain for every step (else transient gains first)
    ridge: float = 1e-3             # Kalman: added to the observation noise, x its mean variance

    def __post_init__(self):
        checks = [
            (self.model in ("wiener", "kalman"), f"model must be 'wiener' or 'kalman', got {self.model!r}"),
            (self.bin_ms > 0 and self.count_ms > 0, "bin_ms and count_ms must be > 0"),
            (self.history >= 1, "history must be >= 1"),
            (self.ridge >= 0, "ridge must be >= 0"),
        ]
        check(self.name, checks)
        self.alpha_list()

    def alpha_list(self) -> list[float]:
        return numbers(self.name, "alphas", self.alphas, positive=False)

    def count_samples(self, step_ms: float) -> int:
        """Samples per count bin: round(count_ms / sample width), at least 1."""
        return samples_in(self.count_ms, step_ms)


RECIPES = {
    "wiener": ClassicalRecipe("wiener"),
    "kalman": ClassicalRecipe("kalman", model="kalman"),
}
