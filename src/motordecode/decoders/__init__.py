"""Decoder families, one package each, and the face they share.

- :mod:`~motordecode.decoders.registry`: which families exist, recipe lookup, dispatch;
- :mod:`~motordecode.decoders.base`: the streaming face (``initial_state``, ``step``, ``sequence``)
  and :class:`~motordecode.decoders.base.Stream`;
- ``gru/`` (AEGRU, vanilla GRU), ``rsnn/`` (tinyRSNN, bigRSNN), ``neurobench/`` (ANN2D, ANN3D,
  SNN2, SNN3D), ``classical/`` (Wiener, Kalman).
"""

from motordecode.decoders.registry import Family, families, family_of, get_recipe, recipes, register, unregister

__all__ = ["Decoder", "Family", "Stream", "families", "family_of", "get_recipe", "recipes", "register",
           "unregister"]


def __getattr__(name: str):
    """``Decoder`` and ``Stream`` on first use: the registry alone does not import torch."""
    if name in ("Decoder", "Stream"):
        from motordecode.decoders import base

        return getattr(base, name)
    raise AttributeError(f"module 'motordecode.decoders' has no attribute {name!r}")
