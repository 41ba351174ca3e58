"""Compile an exported C decoder with the system compiler, run it through its stdin/stdout contract,
and measure its code and data sizes (host, and Cortex-M where ``arm-none-eabi-gcc`` is installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from motordecode.errors import ConfigError

CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-pedantic", "-Werror", "-ffp-contract=off"]
ARM_FLAGS = ["-std=c99", "-Os", "-mcpu=cortex-m4", "-mthumb", "-ffp-contract=off"]


def compiler() -> str:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise ConfigError("no C compiler found (cc); install one (Debian: apt-get install gcc) or set CC.")
    return cc


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise ConfigError(f"{' '.join(command[:2])} ... failed (exit {result.returncode}):\n{result.stderr.strip()[-2000:]}")
    return result


def build(source_dir: Path, out_dir: Path) -> Path:
    """Compile decoder.c + main.c of ``source_dir`` into ``out_dir``/decoder; returns the binary."""
    binary = out_dir / "decoder"
    _run([compiler(), *CFLAGS, "-o", str(binary), str(source_dir / "decoder.c"), str(source_dir / "main.c"), "-lm"])
    return binary


SIZEOF_PROBE = '#include <stdio.h>\n#include "decoder.h"\nint main(void) { printf("%lu\\n", (unsigned long)sizeof(md_state)); return 0; }\n'


def state_bytes(source_dir: Path, work_dir: Path) -> int:
    """sizeof(md_state) on this host, from a compiled probe."""
    (work_dir / "probe.c").write_text(SIZEOF_PROBE)
    _run([compiler(), "-std=c99", "-I", str(source_dir), "-o", str(work_dir / "probe"), str(work_dir / "probe.c")])
    return int(_run([str(work_dir / "probe")]).stdout)


def section_sizes(source_dir: Path, work_dir: Path, cc: str | None = None, flags=None) -> dict:
    """{"text", "data", "bss"} bytes of decoder.c alone, compiled at -Os by ``cc`` (default: the host's)."""
    obj = work_dir / ("decoder-arm.o" if cc else "decoder.o")
    _run([cc or compiler(), *(flags or ["-std=c99", "-Os"]), "-c", "-o", str(obj), str(source_dir / "decoder.c")])
    size = shutil.which("arm-none-eabi-size") if cc else shutil.which("size")
    if size is None:
        raise ConfigError("the `size` tool (binutils) is missing; install binutils.")
    text, data, bss = (int(v) for v in _run([size, str(obj)]).stdout.splitlines()[1].split()[:3])
    obj.unlink()
    return {"text": text, "data": data, "bss": bss}


def arm_sizes(source_dir: Path, work_dir: Path) -> dict | None:
    """Cortex-M4 section sizes, or None where arm-none-eabi-gcc is not installed."""
    cc = shutil.which("arm-none-eabi-gcc")
    if cc is None:
        return None
    return section_sizes(source_dir, work_dir, cc, ARM_FLAGS)


def run_binary_lines(binary: Path, samples: np.ndarray, options=()) -> list[str]:
    """The program's output lines for ``samples`` (T, C) fed on stdin, one per sample."""
    text = "\n".join(" ".join(map(str, row)) for row in np.asarray(samples, dtype=np.int64)) + "\n"
    lines = _run([str(binary), *options], input=text).stdout.splitlines()
    if len(lines) != len(samples):
        raise ConfigError(f"{binary} printed {len(lines)} lines for {len(samples)} samples.")
    return lines


def run_binary(binary: Path, samples: np.ndarray, raw: bool = False) -> np.ndarray:
    """The program's outputs for ``samples`` (T, C) as a (T, D) array (``raw``: the integer outputs)."""
    lines = run_binary_lines(binary, samples, ["-r"] if raw else [])
    return np.loadtxt(lines, dtype=np.int64 if raw else np.float64, ndmin=2)
