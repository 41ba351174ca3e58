"""Does a GPU training give the CPU's results? Every trainable recipe, the same seeds, on both devices.

Each recipe is trained with ``recipe_fingerprint``'s short settings on one recording, for
``--seeds`` seeds, once per device (``train_run(device=...)``). Printed per recipe and device: the
mean and spread (sample standard deviation) of the test R2 over the seeds, the largest CPU-CUDA
difference of one seed's R2 beside the CPU's own seed-to-seed spread (training noise), and whether
the footprint, the parameter count and the dense operations are identical (they depend on the
architecture only). The effective operations depend on the trained weights and activity, so they
are printed side by side, not required to match.

Where there is no CUDA device the CPU half runs alone, says so, and exits 0: its seed spread is
the noise a GPU run is judged against.

    python benchmarks/bench_device_agreement.py [--seeds 0,1,2] [--recipes gru,tinyrsnn,...] [--data FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recipe_fingerprint import DEFAULT_DATA, SETTINGS  # noqa: E402

ARCHITECTURE = ("footprint_bytes", "parameter_count", "dense_ops")


def trained(name: str, data: Path, seed: int, device: str, root: Path) -> dict:
    from motordecode.pipeline import train_run
    from motordecode.recipes import get_recipe, override

    recipe = override(get_recipe(name), SETTINGS[name])
    return train_run(recipe, data, seed=seed, out=root / f"{name}-{device.replace(':', '')}-seed{seed}",
                     progress=False, device=device)


def spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else float("nan")


def main() -> None:
    import torch

    from motordecode.decoders.registry import family_of
    from motordecode.recipes import get_recipe

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--recipes", default=",".join(n for n in SETTINGS if n not in ("wiener", "kalman")))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--device", default="cuda", help="the GPU to compare with the CPU")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    names = args.recipes.split(",")
    devices = ["cpu"] + ([args.device] if torch.cuda.is_available() else [])
    if len(devices) == 1:
        print(f"no CUDA device (torch {torch.__version__}, built with CUDA {torch.version.cuda}): only the CPU half "
              "runs; its seed spread is the training noise a GPU run is judged against.")
    root = Path(tempfile.mkdtemp(prefix="md-device-agreement-"))
    rows = {(n, d, s): trained(n, args.data, s, d, root) for n in names for d in devices for s in seeds}
    print(f"\ndata: {args.data.name}; seeds {seeds}; settings of recipe_fingerprint.py; torch {torch.__version__}")
    print("\n| recipe | family | device | test R2 mean | R2 std over seeds | max |R2 cpu - R2 gpu| (same seed) | "
          "footprint, parameters, dense ops identical | effective MACs / ACs |")
    print("|---|---|---|---|---|---|---|---|")
    summary = {}
    for name in names:
        family = family_of(get_recipe(name)).name
        for device in devices:
            r2 = [rows[name, device, s]["r2"] for s in seeds]
            gap = (max(abs(rows[name, "cpu", s]["r2"] - rows[name, device, s]["r2"]) for s in seeds)
                   if device != "cpu" else float("nan"))
            same = all(rows[name, device, s].get(k) == rows[name, "cpu", s].get(k) for s in seeds for k in ARCHITECTURE)
            ops = rows[name, device, seeds[0]]
            print(f"| `{name}` | {family} | {device} | {statistics.fmean(r2):.4f} | {spread(r2):.4f} | "
                  f"{'-' if device == 'cpu' else f'{gap:.4f}'} | {'-' if device == 'cpu' else ('yes' if same else 'NO')} | "
                  f"{ops.get('effective_macs', 0):.0f} / {ops.get('effective_acs', 0):.0f} |")
            summary[f"{name}@{device}"] = {"r2": r2, "architecture_identical": same}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
