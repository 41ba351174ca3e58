"""The GRU family: AEGRU (the BioCAS 2024 challenge winner; its autoencoder branch trains only)
and the vanilla GRU, trained on sub-window counts, pruned, quantised to Q1.7, and run windowed
(as published) or stateful."""

from __future__ import annotations

from motordecode.decoders.gru.recipe import RECIPES, GRURecipe
from motordecode.decoders.registry import Family
from motordecode.recipes import changed_lengths


class GRUFamily(Family):
    name = "gru"
    recipe_type = GRURecipe
    recipes = RECIPES
    modes = ("windowed", "stateful")
    pretrains = True
    published = {"aegru": ("AEGRU",), "aegru-pruned": ("AEGRU pruned 50%",)}

    def build(self, recipe, n_channels, n_outputs, step_ms):
        from motordecode.decoders.gru.model import GRUDecoder, GRUDecoderConfig

        return GRUDecoder(GRUDecoderConfig(n_channels=n_channels, hidden=recipe.hidden, n_outputs=n_outputs,
                                           input_fc=recipe.model == "aegru", batchnorm=recipe.batchnorm,
                                           layernorm=recipe.layernorm, dropout=recipe.dropout,
                                           scale_outputs=recipe.standardize_labels))

    def decoder(self, model, recipe, step_ms, mode=None):
        from motordecode.decoders.gru.inference import make_decoder

        return make_decoder(model, recipe, model.config.n_channels, step_ms, self.resolve_mode(mode))

    def trainer(self, recipe, recording, split, **options):
        from motordecode.decoders.gru.trainer import Trainer

        return Trainer(recipe, recording, split, **options)

    def describe(self, recipe, step_ms):
        sub_width = recipe.sub_width(step_ms)
        return {"window": {"n_sub": recipe.n_sub, "sub_width_samples": sub_width, "step_ms": step_ms,
                           "window_ms": recipe.n_sub * sub_width * step_ms}}

    def notices(self, recipe, step_ms):
        return changed_lengths(recipe, {"window_ms": (recipe.n_sub * recipe.sub_width(step_ms) * step_ms, step_ms)})


FAMILY = GRUFamily()
