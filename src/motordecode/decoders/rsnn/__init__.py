"""The RSNN family: tinyRSNN and bigRSNN (Liu et al. 2024), recurrent LIF networks with a leaky
readout, trained with pre-training, fine-tuning, iterative pruning and float16 conversion."""

from __future__ import annotations

from motordecode.decoders.registry import Family
from motordecode.recipes import changed_lengths, samples_in
from motordecode.decoders.rsnn.recipe import HEADS, RECIPES, RSNNRecipe


class RSNNFamily(Family):
    name = "rsnn"
    recipe_type = RSNNRecipe
    recipes = RECIPES
    checkpoint_kinds = ("tinyrsnn",)
    pretrains = True
    published = {"tinyrsnn": ("tinyRSNN",), "bigrsnn": ("bigRSNN",)}

    def config(self, recipe, n_channels: int, n_outputs: int, step_ms: float):
        """The recipe's network on samples ``step_ms`` apart (fed as ~network_dt_ms sub-steps)."""
        from motordecode.decoders.rsnn.model import RSNNConfig

        substeps = recipe.substeps(step_ms)
        k = recipe.tau_scale
        heads = tuple((k * syn, k * mem) for syn, mem in HEADS[recipe.heads])
        return RSNNConfig(n_channels=n_channels, hidden=recipe.hidden, n_outputs=n_outputs,
                          tau_mem_ms=k * recipe.tau_mem_ms, tau_syn_ms=k * recipe.tau_syn_ms, readout_heads=heads,
                          dt_ms=step_ms / substeps, dropout=recipe.dropout, substeps=substeps)

    def build(self, recipe, n_channels, n_outputs, step_ms):
        from motordecode.decoders.rsnn.model import RSNN

        return RSNN(self.config(recipe, n_channels, n_outputs, step_ms))

    def decoder(self, model, recipe, step_ms, mode=None):
        from motordecode.decoders.rsnn.model import RSNNDecoder

        self.resolve_mode(mode)
        return RSNNDecoder(model, model.config.n_channels)

    def trainer(self, recipe, recording, split, **options):
        from motordecode.decoders.rsnn.trainer import SpikingTrainer

        return SpikingTrainer(recipe, recording, split, **options)

    def pretrainer(self, recipe, recordings, **options):
        from motordecode.decoders.rsnn.pretrainer import SpikingPretrainer

        return SpikingPretrainer(recipe, recordings, **options)

    def describe(self, recipe, step_ms):
        substeps = recipe.substeps(step_ms)
        return {"network": {"step_ms": step_ms / substeps, "substeps": substeps, "half": recipe.half}}

    def notices(self, recipe, step_ms):
        return changed_lengths(recipe, {
            "network_dt_ms": (step_ms / recipe.substeps(step_ms), step_ms),
            **{name: (samples_in(getattr(recipe, name), step_ms) * step_ms, step_ms) for name in ("window_ms", "stride_ms")}})

    def import_checkpoint(self, kind, path):
        from motordecode.decoders.rsnn.checkpoint import load_stork_checkpoint

        return load_stork_checkpoint(path)

FAMILY = RSNNFamily()
