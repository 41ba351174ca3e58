"""Random seeds: every job takes a seed from 0 to 2**63 - 1 (numpy's generators refuse negative
seeds, torch's refuse seeds past 64 bits); anything else is refused before any work."""

from __future__ import annotations

from motordecode.errors import ConfigError

MAX_SEED = 2**63 - 1


def check_seed(seed) -> int:
    """``seed`` as an int; ConfigError unless it is an integer in [0, MAX_SEED]."""
    if isinstance(seed, bool) or not hasattr(seed, "__index__"):  # int and numpy integers
        raise ConfigError(f"seed must be an integer, got {seed!r}.")
    seed = int(seed)
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed must be a non-negative integer up to 2**63 - 1, got {seed}.")
    return seed
