"""motordecode serve: replay -> file equals the Stream and the run's metrics; gaps, late and
malformed samples, and a SIGINT mid-stream, each give their documented behaviour."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import motordecode as md
from motordecode.data.splits import default_split
from motordecode.errors import ConfigError
from motordecode.metrics.r2 import r2_per_axis
import motordecode.serve.server as serve_module
from motordecode.serve.server import serve
from motordecode.serve.sinks import FileSink
from motordecode.serve.sources import Sample

SHORT = {"aegru-pruned": {"epochs": 2, "finetune_epochs": 1},
         "tinyrsnn": {"hidden": 32, "batch_size": 16, "epochs": 2, "prune_epochs": 1, "prune_steps": "0.1",
                      "prune_max": 0.5, "prune_tolerance": 0.9},
         "wiener": {}}


@pytest.fixture(scope="module")
def runs(indy_file, tmp_path_factory):
    base = tmp_path_factory.mktemp("serve-runs")
    return {name: md.train(name, indy_file, out=base / name, **overrides) for name, overrides in SHORT.items()}


def cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "motordecode", *map(str, args)], capture_output=True, text=True,
                          **kwargs)


def read_csv(path):
    with open(path) as fh:
        rows = list(csv.reader(fh))
    return rows[0], np.array(rows[1:], dtype=np.float64)


def assert_same_velocities(got, expected):
    """Equal to float32 rounding (the fast step sums in its own order), relative to the largest."""
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("name,step", [("aegru-pruned", "fast"), ("aegru-pruned", "torch"), ("tinyrsnn", "fast"),
                                       ("wiener", "fast")])
def test_replay_to_file_equals_the_stream_and_the_metrics(runs, indy_file, tmp_path, name, step):
    run = runs[name]
    result = cli("serve", run.path, "--source", f"replay:{indy_file}", "--sink", f"file:{tmp_path / 'v.csv'}",
                 "--fast", "--part", "test", "--step", step, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["step"] == step
    header, table = read_csv(tmp_path / "v.csv")
    assert header == ["timestamp", "index", "vx", "vy", "latency_us"]
    recording = run.load_recording(indy_file)
    test = default_split(recording).test
    assert summary["samples"] == len(table) == len(test) and summary["outcome"] == "source ended"
    np.testing.assert_array_equal(table[:, 1], test)
    stream = run.stream()
    stream.reset(history=recording.spikes[:test[0]])
    expected = np.array([stream.push(sample) for sample in recording.spikes[test]])
    if step == "torch":
        np.testing.assert_allclose(table[:, 2:4], expected, rtol=1e-6, atol=0)  # the CSV keeps 7 digits
    else:
        assert_same_velocities(table[:, 2:4], expected)
    r2 = r2_per_axis(table[:, 2:4], recording.velocity[test]).mean()
    assert abs(r2 - run.metrics["r2"]) < 1e-5
    assert summary["p99_us"] > 0 and summary["misses"] >= 0


class ListSource:
    def __init__(self, samples, history=None):
        self.samples, self.history = samples, history

    def __iter__(self):
        for index, counts in self.samples:
            yield Sample(index, index * 0.004, counts, time.perf_counter_ns())


def test_gaps_are_filled_or_reset_and_late_samples_dropped(runs, tmp_path):
    run = runs["aegru-pruned"]
    rng = np.random.default_rng(0)
    counts = (rng.random((200, 96)) < 0.1).astype(np.float32)
    indices = list(range(0, 50)) + list(range(60, 100)) + [99, 42] + list(range(200, 260))  # gap 10, late 2, gap 100
    source = ListSource([(i, counts[i % 200]) for i in indices])
    summary = serve(run, source, FileSink(str(tmp_path / "v.csv"), 2), max_gap=25)
    assert (summary["gaps"], summary["filled"], summary["resets"], summary["late"]) == (2, 10, 1, 2)
    _, table = read_csv(tmp_path / "v.csv")
    assert summary["samples"] == len(table) == 50 + 40 + 60
    # the same decoding by hand: zeros in the short gap, a fresh state after the long one
    stream = run.stream()
    expected = [stream.push(counts[i]) for i in range(50)]
    for _ in range(10):
        stream.push(np.zeros(96))
    expected += [stream.push(counts[i]) for i in range(60, 100)]
    stream.reset()
    expected += [stream.push(counts[i % 200]) for i in range(200, 260)]
    assert_same_velocities(table[:, 2:4], np.array(expected))


def test_the_step_path_is_the_fast_one_where_the_decoder_has_it(runs, tmp_path, monkeypatch):
    run = runs["wiener"]
    counts = (np.random.default_rng(1).random((40, 96)) < 0.1).astype(np.float32)
    used = []
    original = serve_module.ready_stream

    def recording(*args, **kwargs):
        stream, step = original(*args, **kwargs)
        used.append(type(stream).__name__)
        return stream, step

    monkeypatch.setattr(serve_module, "ready_stream", recording)
    summary = serve(run, ListSource(list(enumerate(counts))), FileSink(str(tmp_path / "a.csv"), 2))
    assert summary["step"] == "fast" and used == ["FastStream"]
    summary = serve(run, ListSource(list(enumerate(counts))), FileSink(str(tmp_path / "t.csv"), 2), step="torch")
    assert summary["step"] == "torch" and used[-1] == "Stream"
    _, fast_table = read_csv(tmp_path / "a.csv")
    _, torch_table = read_csv(tmp_path / "t.csv")
    assert_same_velocities(fast_table[:, 2:4], torch_table[:, 2:4])

    decoder = run.decoder()  # a decoder without a fast step (a plug-in family's): auto falls back, with a notice
    monkeypatch.setattr(decoder, "fast_step", lambda: None)
    monkeypatch.setattr(type(run), "decoder", lambda self, mode=None: decoder)
    notices = io.StringIO()
    summary = serve(run, ListSource(list(enumerate(counts))), FileSink(str(tmp_path / "p.csv"), 2),
                    status_stream=notices)
    assert summary["step"] == "torch" and used[-1] == "Stream" and "no fast step path" in notices.getvalue()
    with pytest.raises(ConfigError, match="no fast step path"):
        serve(run, ListSource(list(enumerate(counts))), FileSink(str(tmp_path / "f.csv"), 2), step="fast")
    assert (tmp_path / "f.csv").exists()  # the sink was closed (its header flushed) although the stream never started


def test_a_sample_with_the_wrong_channel_count_is_an_error_naming_both(runs, tmp_path, loco_file):
    source = ListSource([(0, np.zeros(96)), (1, np.zeros(95))])
    with pytest.raises(ConfigError, match="sample 1 has 95 channels; this decoder reads 96"):
        serve(runs["aegru-pruned"], source, FileSink(str(tmp_path / "v.csv"), 2))
    _, table = read_csv(tmp_path / "v.csv")
    assert len(table) == 1  # the sample before it was written and flushed
    result = cli("serve", runs["aegru-pruned"].path, "--source", f"replay:{loco_file}", "--sink",
                 f"file:{tmp_path / 'w.csv'}", "--fast")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "192" in result.stderr and "96" in result.stderr


def test_sigint_mid_stream_keeps_every_decoded_sample(runs, indy_file, tmp_path):
    run = runs["wiener"]
    out = tmp_path / "v.csv"
    process = subprocess.Popen([sys.executable, "-m", "motordecode", "serve", str(run.path), "--source",
                                f"replay:{indy_file}", "--sink", f"file:{out}", "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 200):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["outcome"] == "stopped by SIGINT"
    _, table = read_csv(out)
    assert 200 <= len(table) == summary["samples"] < 10_000  # paced at 4 ms: stopped well before the end
    recording = run.load_recording(indy_file)
    stream = run.stream()
    expected = np.array([stream.push(sample) for sample in recording.spikes[:len(table)]])
    assert_same_velocities(table[:, 2:4], expected)


def test_bad_serve_options_are_clear_errors(runs, indy_file, tmp_path):
    for args, fragment in ((["--source", "udp:x"], "unknown source"), (["--sink", "udp:x"], "unknown sink"),
                           (["--sink", f"file:{tmp_path}/no/v.csv"], "does not exist"),
                           (["--sink", f"file:{tmp_path}/v.txt"], ".csv or .npz"),
                           (["--source", f"redis:unix://{tmp_path}/none.sock/spikes"], "cannot reach Redis")):
        full = {"--source": f"replay:{indy_file}", "--sink": f"file:{tmp_path / 'v.csv'}"}
        full[args[0]] = args[1]
        result = cli("serve", runs["wiener"].path, *[x for kv in full.items() for x in kv], "--fast")
        assert result.returncode == 2 and fragment in result.stderr and "Traceback" not in result.stderr


@pytest.fixture
def redis_server(tmp_path):
    """A real redis-server on a unix socket in a temporary directory (no TCP port: --port 0)."""
    import shutil

    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is missing: `make test` installs it (Debian package redis-server).")
    sock = tmp_path / "redis.sock"
    process = subprocess.Popen([server, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
                                "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while not sock.exists() and time.time() < deadline:
        time.sleep(0.02)
    assert sock.exists(), "redis-server did not start"
    yield process, sock
    process.terminate()
    process.wait(timeout=10)


def produce(sock, samples, stream="spikes", step_s=0.004):
    """A BRAND-style producer: one entry per sample, int16 counts, sync label and monotonic ns."""
    import redis

    client = redis.Redis(unix_socket_path=str(sock))
    start = time.perf_counter()
    for i, counts in enumerate(samples):
        while time.perf_counter() < start + i * step_s:
            time.sleep(0.0005)
        client.xadd(stream, {"samples": counts.astype("<i2").tobytes(), "sync": json.dumps({"sample": i}),
                             "ts": np.uint64(time.monotonic_ns()).tobytes()})
    client.close()


def test_redis_source_and_sink_through_a_real_server(runs, indy_file, redis_server):
    import threading

    import redis

    _, sock = redis_server
    run = runs["aegru-pruned"]
    samples = run.load_recording(indy_file).spikes[:1500]
    url = f"unix://{sock}"
    process = subprocess.Popen([sys.executable, "-m", "motordecode", "serve", str(run.path), "--source",
                                f"redis:{url}/spikes", "--sink", f"redis:{url}/velocity", "--timeout", "1.5",
                                "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    producer = threading.Thread(target=produce, args=(sock, samples))
    producer.start()
    producer.join()
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["samples"] == len(samples) and summary["outcome"] == "no sample for 1.5 s"
    assert summary["gaps"] == summary["late"] == 0
    entries = redis.Redis(unix_socket_path=str(sock)).xrange("velocity")
    assert [json.loads(fields[b"sync"])["sample"] for _, fields in entries] == list(range(len(samples)))
    velocity = np.array([np.frombuffer(fields[b"velocity"], dtype="<f4") for _, fields in entries])
    stream = run.stream()
    expected = np.array([stream.push(sample) for sample in samples])
    assert_same_velocities(velocity, expected)


def test_a_vanished_redis_server_ends_the_stream_cleanly(runs, indy_file, redis_server, tmp_path):
    import threading

    process_redis, sock = redis_server
    run = runs["wiener"]
    samples = run.load_recording(indy_file).spikes[:400]
    out = tmp_path / "v.csv"
    process = subprocess.Popen([sys.executable, "-m", "motordecode", "serve", str(run.path), "--source",
                                f"redis:unix://{sock}/spikes", "--sink", f"file:{out}", "--timeout", "3", "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    producer = threading.Thread(target=produce, args=(sock, samples))
    producer.start()
    producer.join()
    deadline = time.time() + 30
    while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < len(samples) + 1):
        time.sleep(0.05)
    process_redis.kill()  # the server goes away while serve is waiting for more
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0 and "Traceback" not in stderr, stderr
    summary = json.loads(stdout)
    assert summary["outcome"].endswith("gone for 3 s") and summary["samples"] == len(samples)
    _, table = read_csv(out)
    assert len(table) == len(samples)


@pytest.fixture(scope="module")
def lsl(tmp_path_factory):
    """pylsl, imported only after LSLAPICFG points at the loopback-only configuration."""
    import os

    from motordecode.serve.lsl_io import LOOPBACK_CFG, loopback_config

    if "pylsl" not in sys.modules:
        os.environ.pop("LSLAPICFG", None)
        path = loopback_config(tmp_path_factory.mktemp("lsl"))
    else:
        path = os.environ["LSLAPICFG"]
    assert open(path).read() == LOOPBACK_CFG
    import pylsl

    return pylsl


def test_lsl_runs_on_the_loopback_configuration(lsl):
    import os

    config = open(os.environ["LSLAPICFG"]).read()
    for setting in ("ResolveScope = machine", "IPv6 = disable", "KnownPeers = {127.0.0.1}",
                    "ListenAddress = 127.0.0.1", "AddressesOverride = {127.0.0.1}", "TTLOverride = 0"):
        assert setting in config


def test_lsl_source_and_sink_on_loopback(runs, indy_file, lsl):
    import threading

    run = runs["aegru-pruned"]
    samples = run.load_recording(indy_file).spikes[:1000]
    name = f"md-test-{time.time_ns()}"
    outlet = lsl.StreamOutlet(lsl.StreamInfo(f"{name}-spikes", "SpikeCounts", 96, 250, "int16", f"{name}-src"))
    process = subprocess.Popen([sys.executable, "-m", "motordecode", "serve", str(run.path), "--source",
                                f"lsl:{name}-spikes", "--sink", f"lsl:{name}-velocity", "--timeout", "3", "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    found = lsl.resolve_byprop("name", f"{name}-velocity", minimum=1, timeout=30)
    assert found, "serve's outlet did not appear"
    inlet = lsl.StreamInlet(found[0])
    inlet.open_stream(timeout=10)
    assert outlet.wait_for_consumers(timeout=30)

    def push():
        start = time.perf_counter()
        for i, counts in enumerate(samples):
            while time.perf_counter() < start + i * 0.004:
                time.sleep(0.0005)
            outlet.push_sample(counts.astype(np.int16).tolist())

    producer = threading.Thread(target=push)
    producer.start()
    received, deadline = [], time.time() + 60
    while len(received) < len(samples) and time.time() < deadline:
        values, _ = inlet.pull_sample(timeout=0.5)
        if values is not None:
            received.append(values)
    producer.join()
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["samples"] == len(samples) == len(received) and summary["gaps"] == 0
    stream = run.stream()
    expected = np.array([stream.push(sample) for sample in samples])
    assert_same_velocities(np.array(received), expected)  # in order, nothing missing


def test_sigint_while_waiting_for_a_quiet_source_stops_at_once(runs, redis_server, tmp_path):
    _, sock = redis_server
    out = tmp_path / "v.csv"
    process = subprocess.Popen([sys.executable, "-m", "motordecode", "serve", str(runs["wiener"].path), "--source",
                                f"redis:unix://{sock}/spikes", "--sink", f"file:{out}", "--timeout", "60", "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while not out.exists() and time.time() < deadline:  # the sink exists once serve is reading
        time.sleep(0.05)
    time.sleep(0.5)
    sent = time.time()
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert time.time() - sent < 5  # not the 60 s timeout
    assert json.loads(stdout)["outcome"] == "stopped by SIGINT"
