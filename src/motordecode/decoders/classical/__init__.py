"""The classical family: the Wiener filter and the Kalman filter, closed-form fits in seconds."""

from __future__ import annotations

from motordecode.decoders.registry import Family
from motordecode.recipes import changed_lengths
from motordecode.decoders.classical.recipe import RECIPES, ClassicalRecipe


class ClassicalFamily(Family):
    name = "classical"
    recipe_type = ClassicalRecipe
    recipes = RECIPES

    def build(self, recipe, n_channels, n_outputs, step_ms):
        from motordecode.decoders.classical.kalman import KalmanDecoder
        from motordecode.decoders.classical.wiener import WienerDecoder

        if recipe.model == "wiener":
            return WienerDecoder(n_channels, n_outputs, recipe.history, recipe.count_samples(step_ms))
        return KalmanDecoder(n_channels, 2 * n_outputs, n_outputs, recipe.count_samples(step_ms))

    def decoder(self, model, recipe, step_ms, mode=None):
        from motordecode.decoders.classical.fast_step import ClassicalDecoder

        self.resolve_mode(mode)
        return ClassicalDecoder(model, model.window.recent.shape[1])

    def trainer(self, recipe, recording, split, **options):
        from motordecode.decoders.classical.fit import ClassicalTrainer

        return ClassicalTrainer(recipe, recording, split, **options)

    def describe(self, recipe, step_ms):
        count = recipe.count_samples(step_ms)
        return {"features": {"count_samples": count, "count_ms": count * step_ms,
                             "history": recipe.history if recipe.model == "wiener" else 1}}

    def notices(self, recipe, step_ms):
        return changed_lengths(recipe, {"count_ms": (recipe.count_samples(step_ms) * step_ms, step_ms)})


FAMILY = ClassicalFamily()
