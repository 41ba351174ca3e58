"""Every recipe's numbers on one recording, to check that a refactor leaves them unchanged.

``train`` trains each recipe (short settings, seed 0) and writes its metrics row to OUT/RECIPE.json;
``compare`` prints two such directories side by side: test R2, effective operations, footprint,
and whether every number of the rows (timings aside) is identical. Run ``train`` on the code
before the change (e.g. ``PYTHONPATH=/path/to/old/src``) and after it.

    python benchmarks/recipe_fingerprint.py train --out /tmp/before [--data ../shared/data/m1_stevenson_2011.mat]
    python benchmarks/recipe_fingerprint.py compare /tmp/before /tmp/after
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "m1_stevenson_2011.mat"
SETTINGS = {  # short runs: long enough to move every weight, short enough for ~20 min on one core
    "wiener": {}, "kalman": {},
    "aegru": {"epochs": 10}, "aegru-pruned": {"epochs": 10, "finetune_epochs": 3}, "gru": {"epochs": 10},
    "ann2d": {"epochs": 10}, "ann3d": {"epochs": 10}, "snn2": {"epochs": 10}, "snn3d": {"epochs": 5},
    "tinyrsnn": {"epochs": 10, "prune_epochs": 2}, "bigrsnn": {"epochs": 2},
    "deltagru": {"epochs": 10, "finetune_epochs": 2},
}
IGNORED = ("timings", "history", "data", "versions", "provenance")


def train(out: Path, data: Path, names: list[str]) -> None:
    from motordecode.pipeline import train_run
    from motordecode.recipes import get_recipe, override

    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        recipe = override(get_recipe(name), SETTINGS[name])
        row = train_run(recipe, data, seed=0, out=out / f"run-{name}", progress=False)
        (out / f"{name}.json").write_text(json.dumps(row, indent=2, default=float) + "\n")
        print(f"{name}: R2 {row['r2']:.4f}", flush=True)


def _numbers(row: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in row.items():
        if key in IGNORED:
            continue
        if isinstance(value, dict):
            flat.update(_numbers(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def compare(before: Path, after: Path) -> None:
    print("| recipe | settings | test R2 before / after | eff. MACs before / after | eff. ACs before / after "
          "| footprint (B) before / after | every number identical |")
    print("|---|---|---|---|---|---|---|")
    for name, settings in SETTINGS.items():
        if not (before / f"{name}.json").is_file() or not (after / f"{name}.json").is_file():
            continue
        b, a = (json.loads((d / f"{name}.json").read_text()) for d in (before, after))
        fb, fa = _numbers(b), _numbers(a)
        differ = sorted(k for k in set(fb) | set(fa) if fb.get(k) != fa.get(k))
        shown = ", ".join(f"{k}={v}" for k, v in settings.items()) or "defaults"
        r2 = f"{b['r2']:.4f} / {a['r2']:.4f}"
        if "stateful" in b:
            r2 += f" (stateful {b['stateful']['r2']:.4f} / {a['stateful']['r2']:.4f})"
        print(f"| `{name}` | {shown} | {r2} | {b['effective_macs']:.1f} / {a['effective_macs']:.1f} | "
              f"{b['effective_acs']:.1f} / {a['effective_acs']:.1f} | {b['footprint_bytes']} / {a['footprint_bytes']} "
              f"| {'yes' if not differ else 'no: ' + ', '.join(differ)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("train")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--recipes", default=",".join(SETTINGS))
    p = commands.add_parser("compare")
    p.add_argument("before", type=Path)
    p.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "train":
        train(args.out, args.data, args.recipes.split(","))
    else:
        compare(args.before, args.after)


if __name__ == "__main__":
    main()
