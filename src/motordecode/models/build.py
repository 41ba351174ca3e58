"""Build the decoder (and its training-only branch) that a recipe describes."""

from __future__ import annotations

from motordecode.models.autoencoder import AutoencoderBranch
from motordecode.models.gru_decoder import GRUDecoder, GRUDecoderConfig


def decoder_config(recipe, n_channels: int, n_outputs: int = 2) -> GRUDecoderConfig:
    return GRUDecoderConfig(n_channels=n_channels, hidden=recipe.hidden, n_outputs=n_outputs,
                            input_fc=recipe.model == "aegru", batchnorm=recipe.batchnorm,
                            layernorm=recipe.layernorm, dropout=recipe.dropout,
                            scale_outputs=recipe.standardize_labels)


def build_decoder(recipe, n_channels: int, n_outputs: int = 2) -> GRUDecoder:
    return GRUDecoder(decoder_config(recipe, n_channels, n_outputs))


def build_branch(recipe, n_channels: int) -> AutoencoderBranch | None:
    """AEGRU's autoencoder branch, or None (vanilla GRU, or a zero reconstruction weight)."""
    if recipe.model != "aegru" or recipe.pnll_weight == 0:
        return None
    return AutoencoderBranch(n_channels, recipe.hidden, recipe.logvar_hidden)
