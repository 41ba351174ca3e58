"""The cost of the full reproduction grid (every recipe x 6 sessions x 5 seeds) on this machine.

One cell per recipe and monkey is trained at real size on one core, as `motordecode reproduce`
runs a cell: a generated 2,400 s session (600,000 bins of 4 ms; Indy 96 channels, Loco 192), every
training stage cut to ``--epochs`` epochs. A cell with the recipe's published schedule then takes

    T_cell = T_outside + sum over stages of (published epochs x seconds of the stage's last epoch)

where T_outside is the cell's time outside its epochs (loading, initialisation, pruning decisions,
test evaluation) as measured. tinyRSNN's pruning is counted as 3 candidates of ``prune_epochs``
(0.40 accepted, 0.50 rejected, 0.45: the published models stopped at 0.42-0.50; at most 5). The
RSNN pre-training is timed the same way on ``--pretrain-copies`` sessions' worth of windows (the
generated session repeated) and its epochs scaled to the monkey's three sessions (an epoch's cost
is proportional to its windows: the same batches through the same network); it is counted once
per (monkey, seed), as `reproduce` schedules it.

With ``--duration`` shorter than ``--real-duration`` (the default 2,400 s), every measured time
is multiplied by their ratio: an epoch, like the test stream, is proportional to the session's
length (the same windows and steps, more of them); the fixed costs scaled with it make the
projection an upper bound.

With ``--device cuda`` every cell and pre-training trains on the GPU (``train_run(device=...)``),
one at a time per GPU (``--workers`` defaults to the GPUs found; worker k on GPU k mod the GPUs, as
``reproduce`` places them), and the hours are GPU-hours: each
task holds one GPU (and one CPU thread) for its time.

Printed: per recipe, the measured epoch times and the projected cell time per monkey; the CPU-hours
(GPU-hours with ``--device cuda``) of the grid (every recipe x 6 sessions x 5 seeds + pre-trainings); its wall time on these cores and
on a 64-core cluster (tasks packed on the cores, never shorter than the longest
pre-training + fine-tuning chain), beside the references' GPU-hours.

    python benchmarks/bench_grid_cost.py [--epochs 1] [--duration 2400] [--real-duration 2400] [--recipes all] [--workers 2]
                                         [--device cpu|cuda[:N]]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

CACHE = Path(__file__).resolve().parent / ".cache"
SESSIONS, SEEDS = {"indy": 3, "loco": 3}, 5
PRUNE_CANDIDATES = 3
REFERENCE_GPU_HOURS = {"tinyrsnn": 6.0, "bigrsnn": 12.0}  # per seed, RTX A4000 (RSNN repository README)


def session(monkey: str, duration: float) -> Path:
    from motordecode.data.synthetic import SynthConfig, write_synthetic

    path = CACHE / f"grid_cost_{monkey}_{int(duration)}s.mat"
    if not path.exists():
        CACHE.mkdir(exist_ok=True)
        write_synthetic(path, SynthConfig(monkey=monkey, duration_s=duration, seed={"indy": 1, "loco": 4}[monkey]))
    return path


def short(recipe, epochs: int):
    """The recipe with every stage cut to ``epochs`` (one pruning candidate)."""
    from dataclasses import fields

    from motordecode.recipes import override

    names = {f.name for f in fields(recipe)}
    cut = {k: epochs for k in ("epochs", "finetune_epochs", "pretrain_epochs", "prune_epochs") if k in names
           and getattr(recipe, k) > 0}
    if getattr(recipe, "prune_start", 0) > 0:
        cut["prune_max"] = recipe.prune_start
    return override(recipe, cut)


def full_epochs(recipe) -> dict:
    """Epochs per stage of the published schedule (pruning: PRUNE_CANDIDATES candidates)."""
    stages = {"train": recipe.epochs} if hasattr(recipe, "epochs") else {}
    if getattr(recipe, "finetune_epochs", 0) and getattr(recipe, "prune_rate", 0) > 0:
        stages["finetune"] = recipe.finetune_epochs
    if getattr(recipe, "prune_start", 0) > 0:
        stages["prune"] = PRUNE_CANDIDATES * recipe.prune_epochs
    return stages


def projected(history: list, outside_s: float, stages: dict) -> tuple[float, dict]:
    """(projected seconds, last epoch's seconds per stage): the stages of ``stages`` at their
    published epochs, any other recorded stage (a closed-form fit) as measured, once."""
    last, once = {}, 0.0
    for h in history:
        if "seconds" in h:
            last[h["stage"]] = h["seconds"]
            once += 0.0 if h["stage"] in stages else h["seconds"]
    return outside_s + once + sum(n * last.get(stage, 0.0) for stage, n in stages.items()), last


def measure(job: dict) -> dict:
    """One cut-down cell (or pre-training) on one thread, with its projection."""
    import torch

    from motordecode.pipeline import train_run
    from motordecode.pretraining import pretrain_run
    from motordecode.recipes import get_recipe

    from motordecode.workers import worker_device, worker_index

    torch.set_num_threads(1)
    job = {**job, "device": worker_device(job["device"], worker_index())}  # worker k on GPU k mod the GPUs
    recipe = get_recipe(job["recipe"])
    cut = short(recipe, job["epochs"])
    out = Path(job["out"])
    started = time.perf_counter()
    if job["kind"] == "pretrain":
        copies = job["copies"]
        path = pretrain_run(cut, [job["data"]] * copies, seed=0, out=out, threads=1, device=job["device"])
        blob = torch.load(path, weights_only=True)
        total = time.perf_counter() - started
        spent = sum(h.get("seconds", 0.0) for h in blob["history"])
        stages = {h["stage"]: recipe.pretrain_epochs * 3 / copies for h in blob["history"]}
        seconds, last = projected(blob["history"], total - spent, stages)
        return {**job, "measured_s": total, "last_epoch_s": last, "projected_s": seconds}
    row = train_run(cut, job["data"], seed=0, out=out, progress=False, threads=1, pretrain=(), pretrained=job.get("pretrained"),
                    device=job["device"])
    total = time.perf_counter() - started
    spent = sum(h.get("seconds", 0.0) for h in row.get("history", []))
    stages = full_epochs(recipe)
    seconds, last = projected(row.get("history", []), total - spent, stages)
    return {**job, "measured_s": total, "last_epoch_s": last, "projected_s": seconds, "stages": stages, "r2": row["r2"]}


def main() -> None:
    import tempfile

    from motordecode.decoders.registry import family_of
    from motordecode.recipes import get_recipe, recipe_names

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1, help="epochs per stage actually trained")
    parser.add_argument("--duration", type=float, default=2400.0, help="seconds per generated session")
    parser.add_argument("--real-duration", type=float, default=2400.0,
                        help="seconds of a real session: measured times are scaled by real-duration / duration")
    parser.add_argument("--recipes", default="all")
    parser.add_argument("--monkeys", default="indy,loco")
    parser.add_argument("--workers", type=int, default=None, help="parallel tasks (default: the cores, or the GPUs)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N: where every task trains")
    parser.add_argument("--pretrain-copies", type=int, default=1,
                        help="sessions' worth of windows the pre-training is timed on (its epochs scaled to 3)")
    args = parser.parse_args()
    from motordecode.devices import resolve_device
    from motordecode.workers import local_pool

    device = resolve_device(args.device)
    gpus = torch_cuda_count() if device.type == "cuda" else 0
    if args.workers is None:
        args.workers = max(1, gpus) if device.type == "cuda" else (os.cpu_count() or 1)
    unit = "GPU" if device.type == "cuda" else "CPU"
    names = recipe_names() if args.recipes == "all" else args.recipes.split(",")
    monkeys = args.monkeys.split(",")
    data = {m: str(session(m, args.duration)) for m in monkeys}
    root = Path(tempfile.mkdtemp(prefix="md-grid-cost-"))
    jobs = []
    for name in names:
        recipe = get_recipe(name)
        pretrains = family_of(recipe).pretrains and recipe.pretrain_epochs > 0  # by default: the RSNNs
        for m in monkeys:
            if pretrains:
                jobs.append({"kind": "pretrain", "recipe": name, "monkey": m, "data": data[m], "epochs": args.epochs,
                             "device": args.device,
                             "copies": args.pretrain_copies, "out": str(root / f"pre-{name}-{m}")})
            jobs.append({"kind": "cell", "recipe": name, "monkey": m, "data": data[m], "epochs": args.epochs,
                         "device": args.device,
                         "out": str(root / f"{name}-{m}"),
                         "pretrained": str(root / f"pre-{name}-{m}") if pretrains else None})
    scale = args.real_duration / args.duration
    started = time.perf_counter()
    results = []
    with local_pool(args.workers, 1) as pool:  # reproduce's pool: pinned, spawned; pre-trainings first
        pre = [pool.submit(measure, j) for j in jobs if j["kind"] == "pretrain"]
        cells = [pool.submit(measure, j) for j in jobs if j["kind"] == "cell" and not j["pretrained"]]
        results += [f.result() for f in pre]
        cells += [pool.submit(measure, j) for j in jobs if j["kind"] == "cell" and j["pretrained"]]
        results += [f.result() for f in cells]
    for r in results:  # to real size
        r["projected_s"] *= scale
        r["last_epoch_s"] = {k: v * scale for k, v in r["last_epoch_s"].items()}
    print(f"{len(jobs)} cut-down runs ({args.epochs} epochs per stage) in {time.perf_counter() - started:.0f} s on "
          f"{args.workers} workers, one thread each, device {device}; sessions of {args.duration:g} s, times scaled x{scale:g} "
          f"to {args.real_duration:g} s")
    print("\n| recipe | monkey | task | measured (s) | last epoch per stage, at real size (s) | published epochs | "
          "projected at real size (min) |")
    print("|---|---|---|---|---|---|---|")
    cell_s, pre_s = {}, {}
    for r in sorted(results, key=lambda r: (r["recipe"], r["monkey"], r["kind"] != "pretrain")):
        epochs = r["stages"] if r["kind"] == "cell" else {"pretrain": get_recipe(r["recipe"]).pretrain_epochs}
        (pre_s if r["kind"] == "pretrain" else cell_s)[r["recipe"], r["monkey"]] = r["projected_s"]
        print(f"| `{r['recipe']}` | {r['monkey']} | {'pre-training (per 3 sessions)' if r['kind'] == 'pretrain' else 'cell'} "
              f"| {r['measured_s']:.0f} | " + (", ".join(f"{k} {v:.1f}" for k, v in r["last_epoch_s"].items()) or "closed form")
              + " | " + (", ".join(f"{k} {v}" for k, v in epochs.items()) or "-") + f" | {r['projected_s'] / 60:.1f} |")
    per_recipe = {}
    for name in names:
        cells = sum(SESSIONS[m] * SEEDS * cell_s[name, m] for m in monkeys)
        pres = sum(SEEDS * pre_s.get((name, m), 0.0) for m in monkeys)
        per_recipe[name] = (cells + pres) / 3600
    total_h = sum(per_recipe.values())
    chain_h = max(pre_s.get((n, m), 0.0) + cell_s[n, m] for n in names for m in monkeys) / 3600
    print(f"\n| recipe | {unit}-hours for 6 sessions x 5 seeds | reference GPU-hours (5 seeds) |\n|---|---|---|")
    for name, hours in per_recipe.items():
        ref = REFERENCE_GPU_HOURS.get(name)
        print(f"| `{name}` | {hours:.2f} | " + (f"{SEEDS * ref:.0f} (RTX A4000)" if ref else "-") + " |")
    here = max(1, gpus) if device.type == "cuda" else (os.cpu_count() or 1)
    print(f"\nwhole grid ({len(names)} recipes x 6 sessions x {SEEDS} seeds): {total_h:.1f} {unit}-hours; "
          f"wall time on {here} {'GPUs' if gpus else 'cores'} >= {total_h / here:.1f} h, on 64 "
          f"{'GPUs' if gpus else 'cores'} >= {max(total_h / 64, chain_h):.1f} h (longest chain {chain_h:.1f} h)")
    print(json.dumps({"device": str(device), "unit": f"{unit}-hours", "per_recipe_hours": per_recipe,
                      "total_hours": total_h, "chain_hours": chain_h}))


def torch_cuda_count() -> int:
    import torch

    return torch.cuda.device_count()




if __name__ == "__main__":
    main()
