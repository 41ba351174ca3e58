"""Training, pruning and quantisation of decoders."""
