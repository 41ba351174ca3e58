"""Command-line interface: ``motordecode data list|fetch|info|synth``, ``devices``, ``train``, ``evaluate``,
``import-checkpoint``, ``export``, ``serve``, ``replay``, ``sweep``, ``reproduce``, ``report`` and ``demo``, thin over the public API and the decoder registry.

Errors a user can cause print one line on stderr and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from motordecode import __version__
from motordecode.data.sessions import ZENODO_FILES_URL
from motordecode.errors import ConfigError, MotordecodeError
from motordecode.decoders.registry import families
from motordecode.recipes import recipe_names

DEFAULT_DATA_DIR = os.environ.get("MOTORDECODE_DATA", "data")
# the flag behind a setting an error names (MotordecodeError.setting): the library's messages say
# "data" or "resume", the command line adds how to give it here
FLAG_HINTS = {"data": "pass --data FILE", "out": "pass another --out (or --resume to continue a run)",
              "out_new": "pass another --out",
              "step": "pass --step torch", "resume": "run the same train command with --resume",
              "seeds": "pass --seeds as integers or ranges, e.g. --seeds 0-4 or --seeds 0,2,5",
              "executor": "add --executor dask to join a cluster with --scheduler",
              "device": "pass --device auto, cpu, cuda or cuda:N ('motordecode devices' lists the GPUs found)",
              "threads_per_worker": "pass --threads-per-worker N (at least 1) or share"}


def _json(obj) -> str:
    def default(o):
        if hasattr(o, "tolist"):
            return o.tolist()
        raise TypeError(f"cannot serialise {type(o).__name__}")
    return json.dumps(obj, indent=2, default=default)


# -- commands ------------------------------------------------------------------------------------
def cmd_data_list(args) -> int:
    from motordecode.data.sessions import CATALOG, describe_generated, generated_files, session_status

    rows = [session_status(s, args.dir, verify=not args.no_verify) for s in CATALOG.values()]
    if args.json:
        print(_json(rows))
        return 0
    print(f"sessions of Zenodo record 583331 in {Path(args.dir).resolve()}:")
    for bench in (True, False):
        print("benchmark sessions:" if bench else "other sessions (pre-training):")
        for r in (r for r in rows if r["benchmark"] == bench):
            print(f"  {r['name']:<18} {r['monkey']:<5} {r['channels']:>3} ch  {r['status']}")
    generated = generated_files(args.dir)
    if generated:
        print("generated sessions (motordecode data synth or reproduce --synthetic; not recordings):")
        for name, settings in generated.items():
            print(f"  {name}  {describe_generated(settings)}")
    return 0


def cmd_data_fetch(args) -> int:
    from motordecode.data.download import fetch_session
    from motordecode.data.sessions import get_session

    for name in args.sessions:  # validate every name before downloading anything
        get_session(name)
    for name in args.sessions:
        path, what = fetch_session(name, args.dir, base_url=args.base_url, timeout=args.timeout,
                                   progress=_progress_bar(name) if sys.stderr.isatty() else None)
        print(f"{name}: {what} -> {path}")
    return 0


def _progress_bar(name: str):
    from tqdm import tqdm

    bar = tqdm(unit="B", unit_scale=True, desc=name, leave=False)

    def update(done, total):
        bar.total = total
        bar.n = done
        bar.refresh()
    return update


def cmd_data_info(args) -> int:
    from motordecode.data.load import load_recording
    from motordecode.data.summary import format_summary, summarize

    recording = load_recording(args.file, bin_width_s=None if args.bin_width_ms is None else args.bin_width_ms / 1e3,
                               heldout=args.heldout)
    info = summarize(recording)
    print(_json(info) if args.json else format_summary(info))
    return 0


def cmd_data_synth(args) -> int:
    from motordecode.data.synthetic import SynthConfig, write_synthetic

    cfg = SynthConfig(monkey=args.monkey, duration_s=args.duration, seed=args.seed, difficulty=args.difficulty)
    path = write_synthetic(args.out, cfg, fmt=args.format)
    note = "" if cfg.monkey in path.name.lower() else (
        f" (note: NeuroBench's loader needs '{cfg.monkey}' in the file name)")
    print(f"wrote {path}: {cfg.monkey}, {cfg.n_channels} channels, {cfg.duration_s:g} s, seed {cfg.seed}, "
          f"{cfg.difficulty}{note}")
    return 0


def cmd_devices(args) -> int:
    from motordecode.devices import device_report, format_report

    report = device_report()
    print(_json(report) if args.json else format_report(report))
    return 0


def _format_row(row: dict) -> str:
    """The run's row in each inference mode, then the published rows of the same system."""
    from motordecode.decoders.registry import family_of, get_recipe
    from motordecode.report.tables import metrics_table

    family = family_of(get_recipe(row["recipe"]))
    name = f"{row['recipe']} {row.get('session', '')}".strip()
    rows = [{**row, "label": f"{name} ({row.get('mode', family.modes[0])})"}]
    rows += [{**row, **row[mode], "label": f"{name} ({mode})"} for mode in family.modes[1:] if mode in row]
    return metrics_table(rows, published=family.published.get(row["recipe"], ()))


def cmd_train(args) -> int:
    from motordecode.pipeline import train_run
    from motordecode.recipes import get_recipe, override

    recipe = override(get_recipe(args.recipe), args.set or [])
    out = args.out or f"runs/{recipe.name}-{Path(args.data).stem}-seed{args.seed}"
    try:
        row = train_run(recipe, args.data, seed=args.seed, out=out, resume=args.resume, progress=not args.quiet,
                        pretrain=args.pretrain or (), pretrained=args.pretrained, heldout=args.heldout,
                        device=args.device)
    except KeyboardInterrupt as exc:
        _interrupted_training(exc, args, out)
        raise
    if args.json:
        print(_json(row))
    else:
        print(f"run: {out}")
        print(_format_row(row))
    return 0


def _interrupted_training(exc: KeyboardInterrupt, args, out: str) -> None:
    """On Ctrl-C: where training stopped (the epoch reached) and the exact command that resumes."""
    import shlex

    from motordecode.runs import CONFIG_FILE

    if hasattr(exc, "reached"):
        print(f"motordecode: {exc.reached()}.", file=sys.stderr)
    if (Path(out) / CONFIG_FILE).is_file():
        argv = list(args.argv) + ([] if args.resume else ["--resume"])
        if args.out is None:
            argv += ["--out", out]
        print(f"motordecode: resume with: {shlex.join(['motordecode', *argv])}", file=sys.stderr)


def cmd_evaluate(args) -> int:
    from motordecode.pipeline import evaluate_run

    row = evaluate_run(args.run_dir, data=args.data, write=not args.no_write, progress=True, device=args.device)
    print(_json(row) if args.json else _format_row(row))
    return 0


def cmd_import_checkpoint(args) -> int:
    from motordecode.importing import import_checkpoint

    run_dir = import_checkpoint(args.kind, args.file, args.out)
    print(f"run: {run_dir} (evaluate with: motordecode evaluate {run_dir} --data FILE)")
    return 0


def cmd_export(args) -> int:
    from motordecode.export.exporter import export_run

    manifest = export_run(args.run_dir, args.format, args.out, mode=args.mode, data=args.data, progress=True)
    if args.json:
        print(_json(manifest))
        return 0
    print(f"exported {manifest['recipe']} ({manifest.get('mode', '')}) as {args.format} to {args.out}")
    sizes = manifest.get("sizes", {})
    if "host_sections" in sizes:
        host, arm = sizes["host_sections"], sizes["cortex_m4_sections"]
        consts = ", ".join(f"{key} {sizes[key]:,} B" for key in ("weights", "biases", "tables") if key in sizes)
        print(f"  code {host['text']:,} B, data {host['data'] + host['bss']:,} B (host, -Os); state {sizes['state']:,} B; "
              f"{consts}")
        print("  Cortex-M4: " + (f"code {arm['text']:,} B, data {arm['data'] + arm['bss']:,} B" if arm
                                 else "arm-none-eabi-gcc not installed (Debian: gcc-arm-none-eabi)"))
    for key in ("model_bytes", "file_bytes"):
        if key in sizes:
            print(f"  file {sizes[key]:,} B")
    a = manifest["agreement"]
    print("  test split: " + ", ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}" for k, v in a.items()))
    return 0


def _check_seconds(value, flag: str, allow_zero: bool) -> None:
    """ConfigError unless ``value`` (an option's seconds) is None or finite and > 0 (>= 0)."""
    bound = ">= 0" if allow_zero else "> 0"
    if value is not None and not (abs(value) < float("inf") and (value >= 0 if allow_zero else value > 0)):
        raise ConfigError(f"{flag} must be a finite number of seconds {bound}, got {value}.")


def cmd_serve(args) -> int:
    from motordecode.api import load_run
    from motordecode.serve.server import serve
    from motordecode.serve.sinks import open_sink, refuse_sink_equal_to_source
    from motordecode.serve.sources import open_source

    _check_seconds(args.duration, "--duration", allow_zero=False)
    _check_seconds(args.timeout, "--timeout", allow_zero=True)
    if args.max_gap < 0:
        raise ConfigError(f"--max-gap must be >= 0 samples, got {args.max_gap}.")
    if args.max_count is not None and args.max_count < 1:
        raise ConfigError(f"--max-count must be >= 1, got {args.max_count}.")
    refuse_sink_equal_to_source(args.source, args.sink)
    run = load_run(args.run_dir)
    source = open_source(args.source, run, fast=args.fast, part=args.part, timeout_s=args.timeout)
    sink = open_sink(args.sink, run.config["n_outputs"], overwrite=args.overwrite)
    status = 1.0 if (args.status or sys.stderr.isatty()) and not args.json else 0.0
    summary = serve(run, source, sink, mode=args.mode, step=args.step, duration=args.duration,
                    max_gap=args.max_gap, on_bad=args.on_bad, max_count=args.max_count, status_every_s=status)
    if args.json:
        print(_json(summary))
    else:
        p = lambda v: "-" if v is None else f"{v:.0f}"  # noqa: E731
        print(f"{summary['outcome']}: {summary['samples']} samples, latency p50 {p(summary['p50_us'])} us, "
              f"p99 {p(summary['p99_us'])} us, max {p(summary['max_us'])} us; deadline misses {summary['misses']} "
              f"(> {summary['deadline_us']:.0f} us); gaps {summary['gaps']} ({summary['filled']} samples filled, "
              f"{summary['resets']} resets); late {summary['late']}; bad {summary['bad']}")
    if args.on_bad == "exit" and summary["bad"]:
        print(f"motordecode: error: {summary['outcome']}; stopped there (--on-bad exit). Every sample before it "
              "is in the sink.", file=sys.stderr)
        return 2
    return 0


def cmd_replay(args) -> int:
    from motordecode.data.load import load_recording
    from motordecode.serve.replay import replay

    _check_seconds(args.timeout, "--timeout", allow_zero=True)
    if args.samples is not None and args.samples < 1:
        raise ConfigError(f"--samples must be >= 1, got {args.samples}.")
    if not args.rate > 0:
        raise ConfigError(f"--rate must be > 0 (times real time; inf: as fast as possible), got {args.rate}.")
    recording = load_recording(args.file)
    summary = replay(recording, args.sink, rate=args.rate, samples=args.samples, timeout_s=args.timeout,
                     what=str(args.file))
    print(f"{summary['outcome']}: {summary['samples']} samples of {recording.n_channels} channels "
          f"({recording.step_s * 1e3:g} ms) published to {args.sink}")
    return 0


def cmd_sweep(args) -> int:
    from motordecode.sweep import (DEFAULT_THETAS, delta_points, nk_points, parse_grid, parse_list, prune_points,
                                   run_sweep, sweep_table)

    points = None
    if args.grid:
        if args.kind != "nk":
            raise ConfigError("--grid belongs to the nk sweep.")
        points = nk_points(parse_grid(args.grid))
    if args.thetas and args.kind != "delta":
        raise ConfigError("--thetas belongs to the delta sweep.")
    if args.rates:
        if args.kind not in ("prune", "delta"):
            raise ConfigError("--rates belongs to the prune and delta sweeps.")
        if args.kind == "prune":
            points = prune_points(parse_list(args.rates, "--rates"))
    if args.kind == "delta" and (args.thetas or args.rates):
        thetas = parse_list(args.thetas, "--thetas") if args.thetas else DEFAULT_THETAS
        points = delta_points(thetas, parse_list(args.rates, "--rates") if args.rates else None)
    seeds = parse_list(args.seeds, "--seeds", int)
    out = args.out or f"runs/sweep-{args.kind}-{Path(args.data).stem}"
    rows = run_sweep(args.kind, args.data, out, seeds=seeds, workers=args.workers, points=points,
                     settings=args.set or [], threads_per_worker=args.threads_per_worker, device=args.device)
    print(sweep_table(rows))
    print(f"table {Path(out) / 'sweep.md'}, plot {Path(out) / 'sweep.png'}, rows {Path(out) / 'sweep.json'}")
    return 0


def cmd_reproduce(args) -> int:
    from motordecode.reproduce import FINISHED, SYNTHETIC_DURATION_S, parse_seeds, real_sessions, reproduce, \
        synthetic_configs

    if args.synthetic == bool(args.data_dir):
        raise ConfigError("pass either --synthetic (generated sessions) or --data-dir DIR (the real sessions).")
    if args.duration is not None and not args.synthetic:
        raise ConfigError("--duration sets the length of generated sessions; it goes with --synthetic.")
    names = [s for s in (args.sessions or "").split(",") if s] or None
    seeds = parse_seeds(args.seeds)
    if args.synthetic:  # generated by reproduce, after every check
        sessions = synthetic_configs(SYNTHETIC_DURATION_S if args.duration is None else args.duration, names)
    else:
        sessions = real_sessions(Path(args.data_dir), names)
    recipes = [r for r in args.recipes.split(",") if r]
    try:
        outcomes = reproduce(args.out, recipes=recipes, seeds=seeds, sessions=sessions,
                             settings=args.set or [], workers=args.workers, progress=sys.stderr.isatty(),
                             executor=args.executor, scheduler=args.scheduler,
                             threads_per_worker=args.threads_per_worker, device=args.device)
    except KeyboardInterrupt:  # a second signal: the workers were ended at once
        print(f"motordecode: interrupted; the cells resume from their last checkpoints with: "
              f"{_reproduce_command(args)}", file=sys.stderr)
        return 130
    failed = [o for o in outcomes if o["status"] == "failed"]
    finished = [o for o in outcomes if o["status"] in FINISHED]
    stopped_by = next((o["stopped_by"] for o in outcomes if "stopped_by" in o), None)
    print(f"{len(finished)} of {len(outcomes)} cells finished in {args.out}; "
          f"'motordecode report {args.out}' writes the tables and plots.")
    if failed:
        print("failed cells: " + "; ".join(f"{o['recipe_name']} {o['session']} seed {o['seed']} ({o['error']})"
                                          for o in failed), file=sys.stderr)
    if stopped_by is not None and len(finished) + len(failed) < len(outcomes):
        print(f"stopped by {stopped_by}; resume with: {_reproduce_command(args)}", file=sys.stderr)
        return {"SIGINT": 130, "SIGTERM": 143}.get(stopped_by, 1)
    return 1 if failed else 0


def _reproduce_command(args) -> str:
    """The command line that runs the grid ``args`` describes again (and so resumes it)."""
    import shlex

    words = ["motordecode", "reproduce", "--out", args.out, "--recipes", args.recipes, "--seeds", args.seeds]
    words += (["--synthetic"] + (["--duration", repr(args.duration)] if args.duration is not None else [])
              if args.synthetic else ["--data-dir", args.data_dir])
    words += ["--sessions", args.sessions] if args.sessions else []
    words += [word for setting in args.set or [] for word in ("--set", setting)]
    words += ["--workers", str(args.workers), "--threads-per-worker", str(args.threads_per_worker),
              "--device", args.device, "--executor", args.executor]
    words += ["--scheduler", args.scheduler] if args.scheduler else []
    return shlex.join(words)


def cmd_report(args) -> int:
    from motordecode.report.grid import write_report

    path = write_report(args.dir)
    print(path.read_text())
    print(f"report {path}, plots {Path(args.dir) / 'pareto.png'} and {Path(args.dir) / 'sessions.png'}, "
          f"rows {Path(args.dir) / 'results.json'}")
    return 0


DEMO_SETTINGS = ("epochs=12", "finetune_epochs=3")


def cmd_demo(args) -> int:
    import shutil

    from motordecode.data.load import load_recording
    from motordecode.data.summary import format_summary, summarize
    from motordecode.data.synthetic import SynthConfig, write_synthetic
    from motordecode.pipeline import train_run
    from motordecode.recipes import get_recipe, override
    from motordecode.runs import CONFIG_FILE

    cfg = SynthConfig(monkey="indy", duration_s=args.duration, seed=args.seed, difficulty=args.difficulty)
    path = Path(args.dir) / f"indy_synthetic_seed{args.seed}.mat"
    print(f"1. generating a synthetic Indy session ({cfg.duration_s:g} s, seed {cfg.seed}, {cfg.difficulty}: "
          f"as hard as the real sessions unless easy) -> {path}")
    write_synthetic(path, cfg)
    print("2. reading, binning (4 ms), labelling and splitting it as NeuroBench does:")
    print(format_summary(summarize(load_recording(path))))
    recipe = override(get_recipe("aegru-pruned"), list(DEMO_SETTINGS) + (args.set or []))
    run_dir = Path(args.dir) / "aegru-pruned"
    if (run_dir / CONFIG_FILE).is_file():  # the demo's own previous run
        shutil.rmtree(run_dir)
    print(f"3. training AEGRU ({recipe.epochs} epochs; the published recipe runs 50), pruning 50%, "
          f"fine-tuning {recipe.finetune_epochs} epochs, quantising to Q1.7 -> {run_dir}")
    row = train_run(recipe, path, seed=args.seed, out=run_dir)
    print(f"4. test split, both inference modes, next to the published AEGRU "
          f"(trained {row['timings']['train_s']:.0f} s):")
    print(_format_row(row))
    print(f"5. predicted against true velocity: {run_dir / 'predictions.png'}")
    return 0


# -- parser --------------------------------------------------------------------------------------
def _device_option(parser, what: str) -> None:
    parser.add_argument("--device", default="auto", metavar="DEVICE",
                        help=f"{what} auto (default: a CUDA GPU when torch finds one, else the CPU), cpu, cuda or "
                             "cuda:N; 'motordecode devices' shows what is found")


def _threads_per_worker(text: str):
    if text == "share":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number or 'share', got {text!r}") from None


def _threads_option(parser) -> None:
    parser.add_argument("--threads-per-worker", type=_threads_per_worker, default=1, metavar="N",
                        help="BLAS, OpenMP, numba and torch threads of each worker: N, or share (cores / workers); "
                             "default 1, so a run's numbers do not depend on the worker count")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="motordecode", description="Decode finger velocity from motor-cortex spikes.")
    parser.add_argument("--version", action="version", version=f"motordecode {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    data = commands.add_parser("data", help="list, fetch, inspect or synthesise recordings")
    data_cmds = data.add_subparsers(dest="data_command", metavar="ACTION")
    data_cmds.required = True

    p = data_cmds.add_parser("list", help="sessions of the record, which are present and verified")
    p.add_argument("--dir", default=DEFAULT_DATA_DIR, help="data directory (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--no-verify", action="store_true", help="skip the MD5 check of present files")
    p.set_defaults(func=cmd_data_list)

    p = data_cmds.add_parser("fetch", help="download sessions from Zenodo (resumes, checks MD5)")
    p.add_argument("sessions", nargs="+", metavar="SESSION", help="session name, e.g. indy_20170131_02")
    p.add_argument("--dir", default=DEFAULT_DATA_DIR, help="data directory (default: %(default)s)")
    p.add_argument("--base-url", default=ZENODO_FILES_URL, help="mirror to download from (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=60.0, help="network timeout in seconds")
    p.set_defaults(func=cmd_data_fetch)

    p = data_cmds.add_parser("info", help="summary of a recording file (.mat v7.3, NWB, v5 .mat, .npz)")
    p.add_argument("file", help="recording file")
    p.add_argument("--bin-width-ms", type=float, default=None, help="bin width for v7.3 and NWB files (default 4)")
    p.add_argument("--heldout", choices=("include", "exclude"), default="include",
                   help="NWB files with held-out units: count them or leave them out")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_data_info)

    p = data_cmds.add_parser("synth", help="write a synthetic session in the real v7.3 layout")
    p.add_argument("--out", required=True, help="output .mat file (include indy/loco in the name for NeuroBench)")
    p.add_argument("--monkey", choices=("indy", "loco"), default="indy", help="96 (indy) or 192 (loco) channels")
    p.add_argument("--duration", type=float, default=300.0, help="seconds (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--difficulty", choices=("realistic", "easy"), default="realistic",
                   help="realistic (default): drift, untuned units, shared variability, pauses, as hard as the real "
                        "sessions; easy: every unit well tuned")
    p.add_argument("--format", choices=("mat", "nwb"), default="mat",
                   help="mat: MATLAB v7.3 as on Zenodo; nwb: NWB as on DANDI (needs motordecode[nwb])")
    p.set_defaults(func=cmd_data_synth)

    p = commands.add_parser("devices", help="the device --device auto picks, torch's CUDA version, the GPUs found")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_devices)

    p = commands.add_parser("train", help="train a recipe (" + ", ".join(recipe_names()) + ")")
    p.add_argument("recipe", help="recipe name: " + ", ".join(recipe_names()))
    p.add_argument("--data", required=True, help="session .mat (v7.3) or binned recording (.npz, v5 .mat)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--out", default=None, help="run directory (default: runs/RECIPE-DATA-seedN)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe field, e.g. epochs=5")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--pretrain", nargs="+", metavar="FILE",
                   help="recipes with a pre-training stage (" + ", ".join(
                       name for family in families().values() if family.pretrains for name in family.recipes)
                   + "): pre-train on these recordings (default: the benchmark sessions "
                        "of the same monkey next to --data, when it is one)")
    p.add_argument("--pretrained", metavar="PATH",
                   help="start from this pre-trained network (a pretrained.pt, or the directory holding it, e.g. "
                        "RUN_DIR/pretrain of an earlier run) instead of pre-training again")
    p.add_argument("--heldout", choices=("include", "exclude"), default="include",
                   help="NWB files with held-out units (Neural Latents MC_RTT): use them as inputs or leave them out")
    _device_option(p, "train on")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the metrics row as JSON")
    p.set_defaults(func=cmd_train)

    p = commands.add_parser("import-checkpoint", help="turn a published checkpoint into a run directory")
    kinds = [kind for family in families().values() for kind in family.checkpoint_kinds]
    p.add_argument("kind", help="checkpoint kind: " + ", ".join(kinds))
    p.add_argument("file", help="the checkpoint file (e.g. tinyRSNN-1.pth)")
    p.add_argument("--out", required=True, help="run directory to create")
    p.set_defaults(func=cmd_import_checkpoint)

    p = commands.add_parser("evaluate", help="re-evaluate a saved run and rewrite its metrics.json")
    p.add_argument("run_dir", help="run directory written by 'motordecode train'")
    p.add_argument("--data", default=None, help="evaluate on this file instead of the run's own")
    p.add_argument("--no-write", action="store_true", help="print only; leave metrics.json as it is")
    _device_option(p, "checked as train checks it (the evaluation itself runs on the CPU, where its numbers are "
                      "defined):")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_evaluate)

    p = commands.add_parser("export", help="a trained run as integer C code, an ONNX step graph or a NIR "
                                           "graph, checked against the Python model")
    p.add_argument("run_dir", help="run directory written by 'motordecode train'")
    p.add_argument("--format", required=True, choices=("c", "onnx", "nir"),
                   help="c: integer C99 decoder + main.c (GRU and delta GRU families); onnx: the one-sample step; "
                        "nir: tinyRSNN, bigRSNN, SNN2 as NIR graphs")
    p.add_argument("--out", required=True, help="new directory to write")
    p.add_argument("--mode", default=None, help="inference mode (GRU: windowed or stateful; default: the published one)")
    p.add_argument("--data", default=None, help="the recording to check on (default: the run's own)")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(func=cmd_export)

    p = commands.add_parser("serve", help="live decoding: samples from a source, velocities to a sink, with "
                                          "per-sample latency")
    p.add_argument("run_dir", help="run directory written by 'motordecode train'")
    p.add_argument("--source", required=True,
                   help="replay:FILE (a session or binned recording), lsl:NAME or redis:URL/STREAM")
    p.add_argument("--sink", required=True, help="file:PATH.csv, file:PATH.npz, lsl:NAME or redis:URL/STREAM")
    p.add_argument("--timeout", type=float, default=5.0,
                   help="live sources: end after this many seconds without a sample or a server (default 5)")
    p.add_argument("--mode", default=None, help="inference mode (GRU: windowed or stateful)")
    p.add_argument("--step", choices=("auto", "fast", "torch"), default="auto",
                   help="the decode step: fast (compiled), torch (the PyTorch model, the reference) or auto "
                        "(default: fast where the decoder has it)")
    p.add_argument("--fast", action="store_true", help="replay as fast as possible instead of at the bin width")
    p.add_argument("--part", choices=("all", "test"), default="all",
                   help="replay the whole recording or its test split (the decoder window filled from before it)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--max-gap", type=int, default=25,
                   help="missing samples filled with zeros up to this many; a longer jump of the sample index "
                        "(forward, or back) resets the decoder")
    p.add_argument("--on-bad", choices=("drop", "exit"), default="drop",
                   help="a sample that fails its checks: drop it, count and log it (default), or stop (exit 2)")
    p.add_argument("--max-count", type=int, default=None,
                   help="the largest plausible spike count of a channel in one bin (default: 5 kHz x the bin "
                        "width, at least 10); above it a sample is bad")
    p.add_argument("--overwrite", action="store_true",
                   help="a file sink may replace an existing file (when the stream ends); without it, refused")
    p.add_argument("--status", action="store_true", help="print the status line even when stderr is not a terminal")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_serve)

    p = commands.add_parser("replay", help="publish a recording sample by sample to Redis (BRAND's layout) or LSL, "
                                           "for 'serve' to read")
    p.add_argument("file", help="a session (.mat v7.3, NWB; 4 ms bins) or a binned recording (its own bins)")
    p.add_argument("--sink", required=True, help="redis:URL/STREAM or lsl:NAME")
    p.add_argument("--rate", type=float, default=1.0,
                   help="speed, times real time (default 1: one sample per bin width; inf: as fast as possible)")
    p.add_argument("--samples", type=int, default=None, help="publish the first this many samples only")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="lsl: seconds to wait for a consumer (serve) to connect (default 30)")
    p.set_defaults(func=cmd_replay)

    p = commands.add_parser("sweep", help="the AEGRU paper's (N, k) grid or pruning-rate sweep, or the delta "
                                          "GRU's thresholds, in parallel")
    p.add_argument("kind", choices=("nk", "prune", "delta"),
                   help="nk: Fig. 3 grid; prune: Fig. 4 rates 0-0.9; delta: deltagru thresholds beside aegru-pruned")
    p.add_argument("--data", required=True, help="session .mat (v7.3) or binned recording")
    p.add_argument("--out", default=None, help="sweep directory (default: runs/sweep-KIND-DATA)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default: %(default)s)")
    p.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1), help="parallel runs (default: cores)")
    _threads_option(p)
    p.add_argument("--grid", default=None, help="nk points as NxK, e.g. 100x5,200x10 (N samples of 4 ms)")
    p.add_argument("--rates", default=None, help="pruning rates, e.g. 0,0.5,0.9")
    p.add_argument("--thetas", default=None, help="delta: thresholds (theta_x = theta_u = theta_h), e.g. 0,0.1,0.2")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe field for every run")
    _device_option(p, "train every run on (with cuda, worker k on GPU k mod the GPUs)")
    p.set_defaults(func=cmd_sweep)

    p = commands.add_parser("reproduce", help="every (recipe, session, seed) cell as a run directory")
    p.add_argument("--out", required=True, help="grid directory")
    p.add_argument("--recipes", default="aegru-pruned,ann2d,snn2,wiener",
                   help="comma-separated recipes, or all (default: %(default)s)")
    p.add_argument("--seeds", default="0-4", help="seeds, e.g. 0-4 or 0,2 (default: %(default)s)")
    p.add_argument("--synthetic", action="store_true",
                   help="six generated stand-ins for the benchmark sessions (indy_20160622_01_synthetic, ...)")
    p.add_argument("--duration", type=float, default=None, help="--synthetic: seconds per session (default 300)")
    p.add_argument("--data-dir", default=None, help="the real benchmark sessions (checked by MD5)")
    p.add_argument("--sessions", default=None, help="comma-separated session names (default: all six)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a field of every recipe that has it, or RECIPE.KEY=VALUE for one recipe")
    p.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1), help="parallel cells (default: cores)")
    _threads_option(p)
    p.add_argument("--device", default="auto", metavar="DEVICE",
                   help="train the cells on: auto (default: the GPUs when torch finds one, else the CPU), cpu, cuda "
                        "(worker k on GPU k mod the GPUs) or cuda:N (every worker on GPU N)")
    p.add_argument("--executor", choices=("local", "dask"), default="local",
                   help="local: a process pool here; dask: a loopback Dask cluster, or --scheduler's")
    p.add_argument("--scheduler", default=None, help="join this Dask scheduler, e.g. tcp://host:8786")
    p.set_defaults(func=cmd_reproduce)

    p = commands.add_parser("report", help="tables and plots of a reproduced grid, beside the published numbers")
    p.add_argument("dir", help="grid directory written by 'motordecode reproduce'")
    p.set_defaults(func=cmd_report)

    p = commands.add_parser("demo", help="the main job on the embedded default (a synthetic session)")
    p.add_argument("--dir", default="demo_out", help="output directory (default: %(default)s)")
    p.add_argument("--duration", type=float, default=300.0, help="seconds of synthetic data")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--difficulty", choices=("realistic", "easy"), default="realistic",
                   help="synthetic session difficulty (default: %(default)s)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe field")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # usage errors exit with status 2 as well
    args.argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return args.func(args)
    except MotordecodeError as exc:
        hint = FLAG_HINTS.get(getattr(exc, "setting", None))
        print(f"motordecode: error: {exc}" + (f" On the command line: {hint}." if hint else ""), file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # permissions, full disk, missing directories
        print(f"motordecode: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("motordecode: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so in one line; MOTORDECODE_DEBUG=1 shows the traceback
        if os.environ.get("MOTORDECODE_DEBUG"):
            raise
        print(f"motordecode: internal error: {type(exc).__name__}: {exc}. Please report it; run again "
              "with MOTORDECODE_DEBUG=1 for the traceback.", file=sys.stderr)
        return 1
