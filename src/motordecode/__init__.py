"""motordecode: decode finger velocity from motor-cortex spike recordings.

The data flow is Recording -> Split -> Features -> Decoder -> Metrics; see README.md.
"""

__version__ = "0.1.0"
