"""Data: reading recordings, binning, labels, splits, features and synthetic sessions."""

from motordecode.data.recording import Recording
from motordecode.data.load import load_recording

__all__ = ["Recording", "load_recording"]
