"""motordecode: decode finger velocity from motor-cortex spike recordings.

The data flow is file -> Recording -> features -> decoder -> metrics row (docs/architecture.md).
The public API: :func:`load_recording`, :func:`train`, :func:`load_run`, :func:`evaluate`,
:class:`Run` and :class:`Stream` (imported on first use, so the command line starts fast).
"""

__version__ = "0.1.0"

_API = {"load_recording": "motordecode.data.load", "train": "motordecode.api", "load_run": "motordecode.api",
        "evaluate": "motordecode.api", "Run": "motordecode.api", "Stream": "motordecode.decoders.base"}
__all__ = list(_API)


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'motordecode' has no attribute {name!r}")
