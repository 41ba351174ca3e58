"""The delta GRU family: a GRU that steps once per sample with one carried state and multiplies
its weights only by the input and state changes above a threshold (DeltaGRU / EdgeDRNN), trained
on the stream, pruned and quantised to Q1.7 like ``aegru-pruned``."""

from __future__ import annotations

from motordecode.decoders.delta.recipe import RECIPES, DeltaRecipe
from motordecode.decoders.registry import Family
from motordecode.recipes import changed_lengths, samples_in


class DeltaFamily(Family):
    name = "delta"
    recipe_type = DeltaRecipe
    recipes = RECIPES
    pretrains = True

    def build(self, recipe, n_channels, n_outputs, step_ms):
        from motordecode.decoders.delta.model import DeltaConfig, DeltaGRUNet

        return DeltaGRUNet(DeltaConfig(n_channels=n_channels, hidden=recipe.hidden, n_outputs=n_outputs,
                                       theta_x=recipe.theta_x, theta_u=recipe.theta_u, theta_h=recipe.theta_h))

    def decoder(self, model, recipe, step_ms, mode=None):
        from motordecode.decoders.delta.inference import make_decoder

        self.resolve_mode(mode)
        return make_decoder(model, recipe, step_ms)

    def trainer(self, recipe, recording, split, **options):
        from motordecode.decoders.delta.trainer import DeltaTrainer

        return DeltaTrainer(recipe, recording, split, **options)

    def describe(self, recipe, step_ms):
        return {"window": {"n_sub": 1, "sub_width_samples": recipe.sub_width(step_ms), "step_ms": step_ms,
                           "window_ms": recipe.sub_width(step_ms) * step_ms},
                "delta": {"theta_x": recipe.theta_x, "theta_u": recipe.theta_u, "theta_h": recipe.theta_h}}

    def notices(self, recipe, step_ms):
        return changed_lengths(recipe, {"window_ms": (recipe.sub_width(step_ms) * step_ms, step_ms),
                                        "tbptt_ms": (samples_in(recipe.tbptt_ms, step_ms) * step_ms, step_ms)})


FAMILY = DeltaFamily()
