"""Where training runs: the CPU or a CUDA GPU, chosen by one setting, ``device``.

    "auto"     cuda:0 when torch finds a CUDA GPU, else the CPU
    "cpu"      the CPU (today's code path and numbers, exactly)
    "cuda"     the current CUDA device (cuda:0 unless torch.cuda.set_device chose another)
    "cuda:N"   CUDA device N (0 <= N < torch.cuda.device_count())

:func:`resolve_device` turns the setting into a ``torch.device`` or raises a one-line
:class:`~motordecode.errors.ConfigError` (``setting="device"``) that says what to do: install a CUDA
build of torch (README: GPU), pick an index that exists, or use "cpu" / "auto".
:func:`device_report` is what ``motordecode devices`` prints. A trained model always comes back on
the CPU; evaluation, streaming and export run there.
"""

from __future__ import annotations

import torch

from motordecode.errors import ConfigError

CHOICES = "auto, cpu, cuda or cuda:N"


def _refuse(spec: str, why: str) -> ConfigError:
    return ConfigError(f"device {spec!r}: {why}", setting="device")


def _no_cuda(spec: str) -> ConfigError:
    if torch.version.cuda is None:
        why = (f"this torch ({torch.__version__}) was built without CUDA; install a CUDA build of torch "
               "(README: GPU) or use device 'cpu' or 'auto'.")
    else:
        why = (f"torch {torch.__version__} (CUDA {torch.version.cuda}) finds no usable GPU (no GPU, no driver, or "
               "CUDA_VISIBLE_DEVICES hides them; 'motordecode devices' shows what it finds); use device 'cpu' "
               "or 'auto'.")
    return _refuse(spec, why)


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """The ``torch.device`` the setting ``spec`` names ("auto", "cpu", "cuda", "cuda:N" or a
    ``torch.device``); ConfigError for CUDA where there is none, an index past the GPUs found, or
    any other text."""
    if not isinstance(spec, (str, torch.device)):
        raise _refuse(str(spec), f"expected one of {CHOICES}, got a {type(spec).__name__}.")
    given, text = str(spec), str(spec).strip().lower()
    if text == "auto":
        return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    kind, colon, index = text.partition(":")
    if kind != "cuda" or (colon and not (index.isascii() and index.isdecimal())):
        raise _refuse(given, f"unknown device; use {CHOICES}.")
    if not torch.cuda.is_available():
        raise _no_cuda(given)
    count = torch.cuda.device_count()
    number = int(index) if index else 0  # not torch.cuda.current_device(): that would start CUDA here
    if number >= count:
        found = "cuda:0" if count == 1 else f"cuda:0 to cuda:{count - 1}"
        raise _refuse(given, f"this machine has {count} CUDA device{'s' if count != 1 else ''} ({found}); "
                            f"use one of them, or 'auto'.")
    return torch.device("cuda", number)


def device_facts(device: torch.device) -> dict:
    """What a record says about a device: {"device": "cpu" | "cuda:N"} and, for a GPU, its name
    under "gpu"."""
    device = torch.device(device)
    if device.type != "cuda":
        return {"device": str(device)}
    index = device.index if device.index is not None else torch.cuda.current_device()
    return {"device": f"cuda:{index}", "gpu": torch.cuda.get_device_name(index)}


def device_report() -> dict:
    """The device "auto" picks, torch's version and CUDA version (None for a CPU build), and each
    CUDA device found: index, name, memory in bytes, compute capability."""
    devices = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            devices.append({"device": f"cuda:{index}", "name": props.name, "memory_bytes": int(props.total_memory),
                            "capability": f"{props.major}.{props.minor}"})
    return {"auto": str(resolve_device("auto")), "torch": torch.__version__, "cuda": torch.version.cuda,
            "cuda_devices": devices}


def format_report(report: dict) -> str:
    """:func:`device_report` as text lines."""
    lines = [f"auto picks: {report['auto']}",
             f"torch {report['torch']}, built with CUDA {report['cuda']}"]
    if not report["cuda_devices"]:
        lines.append("CUDA devices: none" + (" (a CPU build of torch; README: GPU)" if report["cuda"] is None else ""))
    for d in report["cuda_devices"]:
        lines.append(f"{d['device']}: {d['name']}, {d['memory_bytes'] / 2**30:.1f} GiB, "
                     f"compute capability {d['capability']}")
    return "\n".join(lines)
