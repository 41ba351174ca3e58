"""Decoders: the GRU family (AEGRU, vanilla GRU) and their training-only autoencoder branch."""
