"""Calibration of the synthetic sessions: the published recipes on an easy and a realistic session.

Generates the default Indy session (300 s, seed 0) at both difficulties, trains each recipe with
its published settings on both (in parallel processes), and prints test R2 side by side with the
published value on the real benchmark sessions (mean over the six). The realistic
generator is calibrated so that the recipes land where they land on the real sessions.

    python benchmarks/calibrate_synthetic.py [--recipes ann2d,snn3d,aegru-pruned] [--duration 300] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

PUBLISHED_ROWS = {"ann2d": "ANN2D", "ann3d": "ANN3D", "snn3d": "SNN3D", "snn2": "SNN streaming", "aegru": "AEGRU",
                  "aegru-pruned": "AEGRU pruned 50%", "tinyrsnn": "tinyRSNN", "bigrsnn": "bigRSNN"}


def _train(job: tuple[str, str, str]) -> tuple[str, str, float]:
    from motordecode.pipeline import train_run
    from motordecode.recipes import get_recipe

    name, difficulty, data = job
    out = Path(data).parent / f"{name}-{difficulty}"
    row = train_run(get_recipe(name), data, seed=0, out=out, progress=False, threads=1)
    return name, difficulty, row["r2"]


def _published(name: str) -> str:
    """The published R2 (mean over the six benchmark sessions, motordecode.report.published)."""
    from motordecode.report.published import SUMMARY

    row = SUMMARY.get(PUBLISHED_ROWS.get(name, ""), {})
    return f"{row['r2']:.2f}" if "r2" in row else "-"


def main() -> None:
    from motordecode.data.synthetic import SynthConfig, write_synthetic

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default="ann2d,snn3d,aegru-pruned")
    parser.add_argument("--duration", type=float, default=300.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dir", default=None, help="where the sessions and runs go (default: a temporary folder)")
    args = parser.parse_args()
    folder = Path(args.dir or tempfile.mkdtemp(prefix="calibrate-"))
    files = {d: write_synthetic(folder / f"indy_{d}.mat", SynthConfig(duration_s=args.duration, difficulty=d))
             for d in ("easy", "realistic")}
    jobs = [(name, d, str(files[d])) for name in args.recipes.split(",") for d in files]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        scores = {(n, d): r2 for n, d, r2 in pool.map(_train, jobs)}
    print(f"Indy, {args.duration:g} s, seed 0, published recipes, test R2 (runs in {folder})")
    print("| recipe | easy | realistic | published (real sessions, mean) |")
    print("|---|---|---|---|")
    for name in args.recipes.split(","):
        print(f"| `{name}` | {scores[(name, 'easy')]:.3f} | {scores[(name, 'realistic')]:.3f} | {_published(name)} |")


if __name__ == "__main__":
    main()
