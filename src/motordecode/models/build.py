"""Build the decoder (and its training-only branch) that a recipe describes."""

from __future__ import annotations

from motordecode.models.autoencoder import AutoencoderBranch
from motordecode.models.baselines import BASELINES, BaselineConfig, build_baseline
from motordecode.models.gru_decoder import GRUDecoder, GRUDecoderConfig
from motordecode.models.kalman import KalmanDecoder
from motordecode.models.rsnn import RSNN, RSNNConfig
from motordecode.models.wiener import WienerDecoder
from motordecode.recipes import HEADS


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


def rsnn_config(recipe, n_channels: int, n_outputs: int, step_ms: float) -> RSNNConfig:
    """The recipe's network on a recording with samples of ``step_ms`` (fed as sub-steps if coarse)."""
    substeps = recipe.substeps(step_ms / 1000.0)
    k = recipe.tau_scale
    heads = tuple((k * syn, k * mem) for syn, mem in HEADS[recipe.heads])
    return RSNNConfig(n_channels=n_channels, hidden=recipe.hidden, n_outputs=n_outputs,
                      tau_mem_ms=k * recipe.tau_mem_ms, tau_syn_ms=k * recipe.tau_syn_ms, readout_heads=heads,
                      dt_ms=step_ms / substeps, dropout=recipe.dropout, substeps=substeps)


def build_rsnn(recipe, n_channels: int, n_outputs: int, step_ms: float) -> RSNN:
    return RSNN(rsnn_config(recipe, n_channels, n_outputs, step_ms))


def baseline_config(recipe, n_channels: int, n_outputs: int, step_s: float) -> BaselineConfig:
    return BaselineConfig(recipe.model, n_channels, n_outputs, recipe.window_samples(step_s), recipe.bins,
                          step_s * 1000.0)


def build_model(recipe, n_channels: int, n_outputs: int, step_s: float):
    """The decoder a recipe describes, on a recording with sample spacing ``step_s``."""
    if recipe.model in BASELINES:
        return build_baseline(baseline_config(recipe, n_channels, n_outputs, step_s))
    if recipe.model == "wiener":
        return WienerDecoder(n_channels, n_outputs, recipe.history, recipe.count_samples(step_s))
    if recipe.model == "kalman":
        return KalmanDecoder(n_channels, 2 * n_outputs, n_outputs, recipe.count_samples(step_s))
    if recipe.model == "rsnn":
        return build_rsnn(recipe, n_channels, n_outputs, step_s * 1000.0)
    return build_decoder(recipe, n_channels, n_outputs)
