"""End-to-end latency of ``motordecode serve`` over Redis (a real redis-server on a unix socket) and
over LSL (loopback-only configuration), for a stretch of real-time replay at 4 ms.

A producer in this process publishes the samples of a generated 96-channel session at 4 ms; the
``serve`` command (a separate process, one decoder) reads them, decodes each with the run's stream
and publishes the velocity; its summary gives, per sample, the time from arrival to velocity
sent: p50, p99, max, and the deadline misses (> 4 ms). Both transports are measured in one run.

    python benchmarks/bench_serve_latency.py [--seconds 600] [--recipe aegru-pruned] [--mode stateful] [--step fast]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

import motordecode as md
from motordecode.data.synthetic import SynthConfig, write_synthetic
from motordecode.serve.lsl_io import loopback_config
from motordecode.serve.redis_io import sample_fields

STEP_S = 0.004


def paced(samples: np.ndarray, seconds: float):
    """(index, counts) at 4 ms for ``seconds``, cycling through the session's samples."""
    start, total = time.perf_counter(), int(seconds / STEP_S)
    for i in range(total):
        wait = start + i * STEP_S - time.perf_counter()
        if wait > 0:
            time.sleep(wait)  # no spinning: the producer must not take the serve process's core
        yield i, samples[i % len(samples)]


def serve_command(run_dir: Path, source: str, sink: str, mode: str, step: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "motordecode", "serve", str(run_dir), "--source", source,
                             "--sink", sink, "--mode", mode, "--step", step, "--timeout", "3", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def over_redis(run_dir: Path, samples: np.ndarray, seconds: float, mode: str, step: str, work: Path) -> dict:
    import redis

    sock = work / "redis.sock"
    server = subprocess.Popen([shutil.which("redis-server"), "--port", "0", "--unixsocket", str(sock),
                               "--save", "", "--appendonly", "no", "--dir", str(work)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not sock.exists():
            time.sleep(0.02)
        client = redis.Redis(unix_socket_path=str(sock))
        process = serve_command(run_dir, f"redis:unix://{sock}/spikes", f"redis:unix://{sock}/velocity", mode, step)
        time.sleep(3.0)  # the command starts (imports, loads the run) before the stream begins
        for i, counts in paced(samples, seconds):
            client.xadd("spikes", sample_fields(i, counts, time.monotonic_ns()), maxlen=100_000, approximate=True)
        out, err = process.communicate(timeout=120)
        if process.returncode:
            raise RuntimeError(err)
        return json.loads(out)
    finally:
        server.terminate()
        server.wait()


def over_lsl(run_dir: Path, samples: np.ndarray, seconds: float, mode: str, step: str) -> dict:
    import pylsl

    name = f"md-bench-{os.getpid()}"
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(f"{name}-spikes", "SpikeCounts", samples.shape[1], 250, "int16",
                                                 f"{name}-src"))
    process = serve_command(run_dir, f"lsl:{name}-spikes", f"lsl:{name}-velocity", mode, step)
    found = pylsl.resolve_byprop("name", f"{name}-velocity", minimum=1, timeout=60)
    inlet = pylsl.StreamInlet(found[0])
    inlet.open_stream(timeout=10)
    outlet.wait_for_consumers(timeout=60)
    def drain():  # a consumer of the velocity outlet, as a cursor display would be
        while process.poll() is None:
            inlet.pull_chunk(timeout=0.2)

    threading.Thread(target=drain, daemon=True).start()
    for _, counts in paced(samples, seconds):
        outlet.push_sample(counts.astype(np.int16).tolist())
    out, err = process.communicate(timeout=120)
    if process.returncode:
        raise RuntimeError(err)
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--recipe", default="aegru-pruned")
    parser.add_argument("--mode", default="stateful")
    parser.add_argument("--step", choices=("fast", "torch"), default="fast", help="serve's decode step path")
    args = parser.parse_args()
    loopback_config()  # before pylsl is imported anywhere
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = write_synthetic(work / "indy_bench.mat", SynthConfig(monkey="indy", duration_s=120, seed=3))
        run = md.train(args.recipe, data, out=work / "run", epochs=2, finetune_epochs=1)
        samples = run.load_recording(data).spikes
        results = {"redis": over_redis(run.path, samples, args.seconds, args.mode, args.step, work),
                   "lsl": over_lsl(run.path, samples, args.seconds, args.mode, args.step)}
    print(f"{args.recipe} ({args.mode}, {args.step} step), {args.seconds:g} s of 4 ms samples ({int(args.seconds / STEP_S):,}), "
          "arrival to velocity sent, one serve process")
    print("| transport | samples | p50 (us) | p99 (us) | max (us) | misses (> 4 ms) | gaps | late |")
    print("|---|---|---|---|---|---|---|---|")
    for transport, s in results.items():
        print(f"| {transport} | {s['samples']:,} | {s['p50_us']:.0f} | {s['p99_us']:.0f} | {s['max_us']:.0f} | "
              f"{s['misses']} | {s['gaps']} | {s['late']} |")


if __name__ == "__main__":
    main()
