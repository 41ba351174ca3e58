"""A recipe's network in its deployed form with random weights: pruned, put on the quantisation
grid or converted to float16 as the recipe's training leaves it (an RSNN starts from the trainer's
fluctuation-driven initialisation, so it spikes; the Kalman filter, zeros until fitted, gets drawn
matrices). Latency and the agreement of step paths do not depend on trained values, so the
benchmarks and tests of those use it."""

from __future__ import annotations

import torch

from motordecode.decoders.registry import family_of
from motordecode.recipes import get_recipe, override

RSNN_INPUT_RATE_HZ = 5.0  # the nominal input rate of an RSNN's initialisation (it fires at 4 and 50 ms)


def deployed_network(name: str, n_channels: int, step_ms: float = 4.0, seed: int = 0, n_outputs: int = 2,
                     overrides: dict | None = None, input_rate_hz: float = RSNN_INPUT_RATE_HZ):
    """(recipe, network in eval mode) of recipe ``name`` (with ``overrides`` of its fields) for
    ``n_channels`` channels of samples ``step_ms`` apart, its weights drawn with ``seed``; an RSNN
    initialised for inputs firing at ``input_rate_hz``."""
    from motordecode.training.prune import apply_masks, global_l1_masks
    from motordecode.training.quantize import quantize_weights

    recipe = override(get_recipe(name), overrides or {})
    torch.manual_seed(seed)
    model = family_of(recipe).build(recipe, n_channels, n_outputs, step_ms).eval()
    if hasattr(recipe, "sigma_u"):  # an RSNN: the trainer's initialisation, so that it spikes
        from motordecode.decoders.rsnn.lif import fluctuation_driven_init

        fluctuation_driven_init(model.lif, input_rate_hz, sigma_u=recipe.sigma_u,
                                feedforward_share=recipe.feedforward_share)
    if getattr(recipe, "prune_rate", 0):
        apply_masks(model.pruned_weights(), global_l1_masks(model.pruned_weights(), recipe.prune_rate))
    if getattr(recipe, "quant_bits", 0):
        quantize_weights(model.pruned_weights(), recipe.quant_bits, recipe.quant_frac_bits)
    if getattr(recipe, "half", False):
        model = model.half()
    if getattr(recipe, "model", None) == "kalman":
        model = random_kalman(model, transient_steps=3)
    return recipe, model


def random_kalman(model, transient_steps: int):
    """A Kalman module of ``model``'s sizes (which holds zeros until fitted) with drawn matrices: a
    stable transition near 0.9 I, small gains and offsets, ``transient_steps`` transient stages."""
    from motordecode.decoders.classical.kalman import KalmanDecoder

    states, channels = model.transition.shape[1], model.gain.shape[2]
    stages = transient_steps + 1
    module = KalmanDecoder(channels, states, model.n_outputs, model.window.width, transient_steps)
    with torch.no_grad():
        module.transition.copy_(0.9 * torch.eye(states) + 0.02 * torch.randn(stages, states, states))
        module.gain.copy_(0.05 * torch.randn(stages, states, channels))
        module.offset.copy_(0.1 * torch.randn(stages, states))
        module.initial.copy_(torch.randn(states))
    module.reset()
    return module.eval()
