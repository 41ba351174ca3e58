"""The NeuroBench family: the primate-reaching baselines ANN2D, ANN3D, SNN2 and SNN3D, with
NeuroBench's buffers and parameter names, so the published weights load and their footprint and
operation counts match the leaderboard."""

from __future__ import annotations

from motordecode.decoders.neurobench.recipe import RECIPES, NeuroBenchRecipe
from motordecode.decoders.registry import Family
from motordecode.recipes import changed_lengths


class NeuroBenchFamily(Family):
    name = "neurobench"
    recipe_type = NeuroBenchRecipe
    recipes = RECIPES
    pretrains = True
    checkpoint_kinds = ("ann2d", "ann3d", "snn2", "snn3d")

    def build(self, recipe, n_channels, n_outputs, step_ms):
        from motordecode.decoders.neurobench.models import BaselineConfig, build_baseline

        return build_baseline(BaselineConfig(recipe.model, n_channels, n_outputs, recipe.window_samples(step_ms),
                                             recipe.bins, step_ms))

    def decoder(self, model, recipe, step_ms, mode=None):
        from motordecode.decoders.neurobench.fast_step import NeuroBenchDecoder

        self.resolve_mode(mode)
        return NeuroBenchDecoder(model, model.config.n_channels)

    def trainer(self, recipe, recording, split, **options):
        from motordecode.decoders.neurobench.trainer import BaselineTrainer

        return BaselineTrainer(recipe, recording, split, **options)

    def describe(self, recipe, step_ms):
        return {"features": {"window_samples": recipe.window_samples(step_ms), "bins": recipe.bins}}

    def notices(self, recipe, step_ms):
        return changed_lengths(recipe, {"window_ms": (recipe.window_samples(step_ms) * step_ms, step_ms),
                                        "sequence_ms": (recipe.sequence_samples(step_ms) * step_ms, step_ms)})

    def import_checkpoint(self, kind, path):
        from motordecode.decoders.neurobench.checkpoint import load_neurobench_checkpoint

        return load_neurobench_checkpoint(kind, path)


FAMILY = NeuroBenchFamily()
