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


def fresh_process_stream(run_dir, data, out):
    """The run's Stream over the test part of ``data``, decoded in a new interpreter (this one's torch
    may have been reconfigured by the libraries earlier tests loaded) and saved to ``out``."""
    code = ("import sys, numpy as np, motordecode as md; from motordecode.data.splits import default_split; "
            "run = md.load_run(sys.argv[1]); rec = run.load_recording(sys.argv[2]); test = default_split(rec).test; "
            "s = run.stream(); s.reset(history=rec.spikes[:test[0]]); "
            "np.save(sys.argv[3], np.array([s.push(x) for x in rec.spikes[test]]))")
    done = subprocess.run([sys.executable, "-c", code, str(run_dir), str(data), str(out)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return np.load(out)


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
    if step == "torch":  # the Stream decoded in a fresh process, as serve's is: the same torch setup, the same bits
        expected = fresh_process_stream(run.path, indy_file, tmp_path / "expected.npy")
        np.testing.assert_allclose(table[:, 2:4], expected, rtol=1e-6, atol=0)  # the CSV keeps 7 digits
    else:
        stream = run.stream()
        stream.reset(history=recording.spikes[:test[0]])
        expected = np.array([stream.push(sample) for sample in recording.spikes[test]])
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
    indices = list(range(0, 50)) + list(range(60, 100)) + [99, 80] + list(range(200, 260))  # gap 10, late 2, gap 100
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
    assert not (tmp_path / "f.csv").exists()  # the stream never started: no file was created


def test_a_sample_with_the_wrong_channel_count_is_dropped_and_a_recording_refused(runs, tmp_path, loco_file):
    counts = (np.random.default_rng(2).random((3, 96)) < 0.1).astype(np.float32)
    source = ListSource([(0, counts[0]), (1, np.zeros(95)), (2, counts[2])])
    notices = io.StringIO()
    summary = serve(runs["aegru-pruned"], source, FileSink(str(tmp_path / "v.csv"), 2), status_stream=notices)
    assert (summary["samples"], summary["bad"], summary["gaps"], summary["filled"]) == (2, 1, 1, 1)
    assert "bad sample (sample 1): 95 channels; this decoder reads 96; dropped" in notices.getvalue()
    _, table = read_csv(tmp_path / "v.csv")
    np.testing.assert_array_equal(table[:, 1], [0, 2])
    result = cli("serve", runs["aegru-pruned"].path, "--source", f"replay:{loco_file}", "--sink",
                 f"file:{tmp_path / 'w.csv'}", "--fast")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "192" in result.stderr and "96" in result.stderr
    assert not (tmp_path / "w.csv").exists()


def test_sigint_mid_stream_keeps_every_decoded_sample(runs, indy_file, tmp_path):
    run = runs["wiener"]
    out = tmp_path / "v.csv"
    process = subprocess.Popen([sys.executable, "-m", "motordecode", "serve", str(run.path), "--source",
                                f"replay:{indy_file}", "--sink", f"file:{out}", "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 201):  # header + 200
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


# -- issue 23: every sample checked, nothing lost -------------------------------------------------

def add_entries(sock, entries, stream="spikes"):
    """Raw entries (dicts of fields) added to ``stream`` at once, in order."""
    import redis

    client = redis.Redis(unix_socket_path=str(sock))
    for fields in entries:
        client.xadd(stream, fields)
    client.close()


def good_entry(i, counts):
    return {"samples": counts.astype("<i2").tobytes(), "sync": json.dumps({"sample": i}),
            "ts": np.uint64(time.monotonic_ns()).tobytes()}


def decode_by_hand(run, samples, mode=None, zeros=()):
    """The run's stream over ``samples``, with zero samples at the positions ``zeros`` (dropped ones)."""
    stream, out = run.stream(mode), []
    for i, counts in enumerate(samples):
        velocity = stream.push(np.zeros_like(counts) if i in zeros else counts)
        if i not in zeros:
            out.append(velocity)
    return np.array(out)


def test_negative_counts_are_dropped_and_never_poison_a_stateful_decoder(runs, indy_file, redis_server, tmp_path):
    _, sock = redis_server
    run = runs["aegru-pruned"]
    samples = run.load_recording(indy_file).spikes[:300].astype(np.int16)
    poisoned = samples.copy()
    poisoned[100] = -32768  # e.g. counts above 32767 sent as int16
    add_entries(sock, [good_entry(i, counts) for i, counts in enumerate(poisoned)])
    out = tmp_path / "v.csv"
    result = cli("serve", run.path, "--mode", "stateful", "--source", f"redis:unix://{sock}/spikes", "--sink",
                 f"file:{out}", "--timeout", "1", "--json")
    assert result.returncode == 0, result.stderr
    _, table = read_csv(out)
    assert np.isfinite(table[:, 2:4]).all()  # before: NaN from sample 100 on
    summary = json.loads(result.stdout)
    assert (summary["samples"], summary["bad"], summary["gaps"], summary["filled"]) == (299, 1, 1, 1)
    entry_id = __import__("redis").Redis(unix_socket_path=str(sock)).xrange("spikes")[100][0].decode()
    assert f"bad sample ({entry_id}): count -32768 at channel 0 is negative; dropped" in result.stderr
    np.testing.assert_array_equal(table[:, 1], [i for i in range(300) if i != 100])
    assert_same_velocities(table[:, 2:4], decode_by_hand(run, samples.astype(np.float32), "stateful", zeros={100}))

    out.unlink()  # --on-bad exit: stops at the bad sample with exit 2; every sample before it is kept
    result = cli("serve", run.path, "--mode", "stateful", "--source", f"redis:unix://{sock}/spikes", "--sink",
                 f"file:{out}", "--timeout", "1", "--on-bad", "exit", "--json")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    summary = json.loads(result.stdout)
    assert summary["samples"] == 100 and summary["bad"] == 1 and summary["outcome"].startswith("bad sample (")
    assert "error: bad sample" in result.stderr and "negative" in result.stderr
    _, table = read_csv(out)
    assert len(table) == 100


def test_malformed_redis_entries_are_bad_samples_not_internal_errors(runs, indy_file, redis_server, tmp_path):
    _, sock = redis_server
    run = runs["wiener"]
    samples = run.load_recording(indy_file).spikes[:40].astype(np.int16)
    counts = samples[0].astype("<i2").tobytes()
    ts = np.uint64(1).tobytes()
    malformed = [({"samples": counts[:-1], "sync": '{"sample": 0}', "ts": ts}, "not a whole number of int16"),
                 ({"samples": counts, "sync": '{"sample": 0}', "ts": b""}, "ts holds 0 bytes"),
                 ({"samples": counts, "sync": '{"sample": 0}', "ts": b"1234"}, "ts holds 4 bytes"),
                 ({"samples": counts, "sync": "NaN", "ts": ts}, "sync must be a JSON dict"),
                 ({"samples": counts, "sync": "{bad", "ts": ts}, "sync is not JSON"),
                 ({"samples": counts, "sync": "[1, 2]", "ts": ts}, "sync must be a JSON dict"),
                 ({"samples": counts, "sync": '{"sample": NaN}', "ts": ts}, "not a sample index"),
                 ({"samples": counts, "sync": '{"sample": 1.5}', "ts": ts}, "not a sample index"),
                 ({"samples": counts, "sync": '{"sample": "7"}', "ts": ts}, "not a sample index"),
                 ({"samples": counts, "sync": '{"sample": -3}', "ts": ts}, "not a sample index"),
                 ({"counts": counts, "sync": '{"sample": 0}', "ts": ts}, "no 'samples' or 'crossings' field"),
                 ({"samples": counts[:-2], "sync": '{"sample": 0}', "ts": ts}, "95 channels; this decoder reads 96"),
                 ({"samples": np.full(96, 30000, "<i2").tobytes(), "sync": '{"sample": 0}', "ts": ts},
                  "above the plausible 20 per bin")]
    entries = [good_entry(i, c) for i, c in enumerate(samples[:20])]
    entries += [fields for fields, _ in malformed]  # between sample 19 and 20
    entries += [good_entry(i, c) for i, c in enumerate(samples[20:], start=20)]
    add_entries(sock, entries)
    out = tmp_path / "v.csv"
    result = cli("serve", run.path, "--source", f"redis:unix://{sock}/spikes", "--sink", f"file:{out}",
                 "--timeout", "1", "--json")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["samples"], summary["bad"], summary["gaps"], summary["late"]) == (40, len(malformed), 0, 0)
    logged = [line for line in result.stderr.splitlines() if "bad sample" in line]
    assert len(logged) == len(malformed)
    for line, (_, fragment) in zip(logged, malformed):
        assert fragment in line and line.endswith("; dropped")
    ids = [entry_id.decode() for entry_id, _ in __import__("redis").Redis(unix_socket_path=str(sock)).xrange("spikes")]
    for line, entry_id in zip(logged, ids[20:]):  # each logged with its entry id
        assert f"bad sample ({entry_id}):" in line
    _, table = read_csv(out)
    np.testing.assert_array_equal(table[:, 1], np.arange(40))
    assert_same_velocities(table[:, 2:4], decode_by_hand(run, samples.astype(np.float32)))


def test_a_label_jump_resets_and_goes_on_from_the_new_index(runs, tmp_path):
    run = runs["aegru-pruned"]
    counts = (np.random.default_rng(3).random((100, 96)) < 0.1).astype(np.float32)
    source = ListSource([(i, counts[i]) for i in range(50)] + [(10**12, counts[50])]
                        + [(i, counts[i]) for i in range(51, 100)])
    notices = io.StringIO()
    summary = serve(run, source, FileSink(str(tmp_path / "v.csv"), 2), max_gap=25, status_stream=notices)
    assert (summary["samples"], summary["late"], summary["resets"], summary["gaps"]) == (100, 0, 2, 1)
    assert "behind sample 1000000000000: decoder state reset" in notices.getvalue()
    _, table = read_csv(tmp_path / "v.csv")
    stream = run.stream()
    expected = [stream.push(counts[i]) for i in range(50)]
    stream.reset()
    expected.append(stream.push(counts[50]))
    stream.reset()
    expected += [stream.push(counts[i]) for i in range(51, 100)]
    assert_same_velocities(table[:, 2:4], np.array(expected))


def test_an_existing_file_is_never_destroyed(runs, indy_file, tmp_path):
    out = tmp_path / "v.csv"
    out.write_text("my earlier results\n")
    base = ["serve", runs["wiener"].path, "--source", f"replay:{indy_file}", "--sink", f"file:{out}", "--fast"]
    result = cli(*base, "--mode", "bogus")  # before: the file truncated, then the bad mode refused
    assert out.read_text() == "my earlier results\n"
    assert result.returncode == 2 and "the file exists" in result.stderr and "--overwrite" in result.stderr
    result = cli(*base, "--overwrite", "--mode", "bogus")  # refused before the file is touched
    assert result.returncode == 2 and "Traceback" not in result.stderr and "mode" in result.stderr
    assert out.read_text() == "my earlier results\n"
    result = cli(*base, "--overwrite", "--json")
    assert result.returncode == 0, result.stderr
    header, table = read_csv(out)
    assert header[0] == "timestamp" and len(table) == json.loads(result.stdout)["samples"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.csv"]  # no temporary file left
    npz = tmp_path / "v.npz"
    npz.write_bytes(b"kept")
    with pytest.raises(ConfigError, match="the file exists"):
        FileSink(str(npz), 2)
    assert npz.read_bytes() == b"kept"


def test_a_sink_equal_to_the_source_is_refused(runs, indy_file, tmp_path):
    recording = runs["wiener"].load_recording(indy_file)
    binned = tmp_path / "rec.npz"
    np.savez(binned, spikes=recording.spikes, velocity=recording.velocity, bin_width_s=recording.step_s)
    (tmp_path / "link.npz").symlink_to(binned)
    before = binned.read_bytes()
    result = cli("serve", runs["wiener"].path, "--source", f"replay:{binned}", "--sink", f"file:{binned}", "--fast")
    assert binned.read_bytes() == before  # before: the recording overwritten by the velocities
    assert result.returncode == 2 and "is the source" in result.stderr, result.stderr
    for sink in (f"file:{binned}", f"file:{tmp_path / 'link.npz'}", f"file:{tmp_path / '.' / 'rec.npz'}"):
        result = cli("serve", runs["wiener"].path, "--source", f"replay:{binned}", "--sink", sink, "--fast",
                     "--overwrite")
        assert result.returncode == 2 and "is the source" in result.stderr, result.stderr
    assert binned.read_bytes() == before
    from motordecode.serve.sinks import refuse_sink_equal_to_source
    for same in ("redis:unix:///tmp/r.sock/spikes", "lsl:spikes"):
        with pytest.raises(ConfigError, match="read its own output"):
            refuse_sink_equal_to_source(same, same)


def test_a_failed_write_keeps_whole_rows_and_names_the_file(runs, indy_file, tmp_path):
    """A real write failure: the kernel's file size limit (RLIMIT_FSIZE) cuts a write short, then refuses."""
    import resource

    out = tmp_path / "v.csv"
    limit = 4000

    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run([sys.executable, "-m", "motordecode", "serve", str(runs["wiener"].path), "--source",
                             f"replay:{indy_file}", "--sink", f"file:{out}", "--fast"], capture_output=True,
                            text=True, preexec_fn=limited)
    text = out.read_text()
    assert text.endswith("\n") and len(text) <= limit  # before: the last row cut mid-number (a row may end at the limit)
    header, table = read_csv(out)
    assert header[0] == "timestamp" and table.shape[1] == 5 and len(table) > 10
    np.testing.assert_array_equal(table[:, 1], np.arange(len(table)))
    assert result.returncode == 2 and "internal error" not in result.stderr
    assert "File too large" in result.stderr and str(out) in result.stderr  # before: no path
    assert f"the file holds the {len(table)} whole rows" in result.stderr


def test_a_full_disk_keeps_whole_rows_and_names_the_file(runs, indy_file, tmp_path, monkeypatch, capsys):
    import errno
    import os

    from motordecode.cli import main

    out = tmp_path / "v.csv"
    real_write, calls = os.write, {"n": 0}

    def full_after_30_rows(fd, data):
        if os.path.realpath(f"/proc/self/fd/{fd}") != os.path.realpath(out):
            return real_write(fd, data)
        calls["n"] += 1
        if calls["n"] == 32:  # the header, 30 rows, then half a row and a full disk
            return real_write(fd, data[:len(data) // 2])
        if calls["n"] > 32:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_after_30_rows)
    code = main(["serve", str(runs["wiener"].path), "--source", f"replay:{indy_file}", "--sink", f"file:{out}",
                 "--fast"])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert code == 2 and "internal error" not in err
    assert "No space left on device" in err and str(out) in err and "the file holds the 30 whole rows" in err
    text = out.read_text()
    assert text.endswith("\n")
    header, table = read_csv(out)
    assert table.shape == (30, 5)
    np.testing.assert_array_equal(table[:, 1], np.arange(30))


def test_negative_or_not_finite_options_are_refused(runs, indy_file, tmp_path, capsys):
    from motordecode.cli import main
    from motordecode.serve.sources import open_source

    base = ["serve", str(runs["wiener"].path), "--source", f"replay:{indy_file}", "--sink",
            f"file:{tmp_path / 'v.csv'}", "--fast"]
    for option, value in (("--timeout", "-1"), ("--timeout", "nan"), ("--max-gap", "-1"), ("--duration", "-1"),
                          ("--duration", "0"), ("--duration", "nan"), ("--max-count", "0")):
        assert main([*base, option, value]) == 2
        err = capsys.readouterr().err
        assert f"error: {option} must be" in err, err
    assert not (tmp_path / "v.csv").exists()
    run = runs["wiener"]
    with pytest.raises(ConfigError, match="timeout must be a finite number"):
        open_source(f"replay:{indy_file}", run, timeout_s=-1)
    for bad in ({"duration": -1.0}, {"max_gap": -1}, {"max_gap": 2.5}, {"on_bad": "ignore"}, {"max_count": 0}):
        with pytest.raises(ConfigError):
            serve(run, ListSource([]), FileSink(str(tmp_path / "v.csv"), 2), **bad)


def test_serve_decodes_what_replay_published_over_redis(runs, indy_file, redis_server, tmp_path):
    import redis

    _, sock = redis_server
    run = runs["aegru-pruned"]
    url = f"unix://{sock}"
    result = cli("replay", indy_file, "--sink", f"redis:{url}/spikes", "--rate", "inf", "--samples", "1500")
    assert result.returncode == 0, result.stderr
    assert "1500 samples of 96 channels (4 ms) published" in result.stdout
    entries = redis.Redis(unix_socket_path=str(sock)).xrange("spikes")
    _, first = entries[0]
    assert set(first) == {b"samples", b"sync", b"ts"} and len(first[b"samples"]) == 2 * 96
    assert len(first[b"ts"]) == 8 and json.loads(first[b"sync"]) == {"sample": 0}
    out = tmp_path / "v.csv"
    result = cli("serve", run.path, "--source", f"redis:{url}/spikes", "--sink", f"file:{out}", "--timeout", "1",
                 "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["samples"] == 1500 and summary["gaps"] == summary["late"] == summary["bad"] == 0
    _, table = read_csv(out)
    np.testing.assert_array_equal(table[:, 1], np.arange(1500))
    samples = run.load_recording(indy_file).spikes[:1500]
    assert_same_velocities(table[:, 2:4], decode_by_hand(run, samples))


def test_replay_refuses_bad_options_and_unknown_sinks(indy_file, tmp_path):
    for args, fragment in ((["--sink", "file:x.csv"], "unknown replay sink"), (["--sink", "lsl:x", "--rate", "0"],
                                                                                "--rate must be > 0"),
                           (["--sink", "lsl:x", "--rate", "nan"], "--rate must be > 0"),
                           (["--sink", "lsl:x", "--samples", "0"], "--samples must be >= 1"),
                           (["--sink", f"redis:unix://{tmp_path}/none.sock/spikes"], "cannot reach Redis")):
        result = cli("replay", indy_file, *args)
        assert result.returncode == 2 and fragment in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_serve_decodes_what_replay_published_over_lsl(runs, indy_file, lsl, tmp_path):
    run = runs["wiener"]
    name = f"md-replay-{time.time_ns()}"
    producer = subprocess.Popen([sys.executable, "-m", "motordecode", "replay", str(indy_file), "--sink", f"lsl:{name}",
                                 "--rate", "4", "--samples", "500", "--timeout", "60"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert lsl.resolve_byprop("name", name, minimum=1, timeout=30), "replay's outlet did not appear"
    out = tmp_path / "v.csv"
    result = cli("serve", run.path, "--source", f"lsl:{name}", "--sink", f"file:{out}", "--timeout", "3", "--json")
    assert result.returncode == 0, result.stderr
    stdout, stderr = producer.communicate(timeout=60)
    assert producer.returncode == 0 and "recording ended: 500 samples" in stdout, stderr
    summary = json.loads(result.stdout)
    assert summary["samples"] == 500 and summary["gaps"] == summary["late"] == summary["bad"] == 0
    _, table = read_csv(out)
    samples = run.load_recording(indy_file).spikes[:500]
    assert_same_velocities(table[:, 2:4], decode_by_hand(run, samples))


@pytest.mark.parametrize("counts,fragment", [
    (np.array([0, 3, -1], np.int16), "count -1 at channel 2 is negative"),
    (np.array([0, 21, 1], np.uint8), "count 21 at channel 1 is above the plausible 20 per bin"),
    (np.array([0, 1, np.nan], np.float32), "count nan at channel 2 is not finite"),
    (np.array([0, np.inf, 1]), "count inf at channel 1 is not finite"),
    (np.array([0.5, 1, 1], np.float32), "count 0.5 at channel 0 is not an integer"),
    (np.array([-0.0, -2.0, 1]), "count -2 at channel 1 is negative"),
    (np.array([1, 2], np.int16), "2 channels; this decoder reads 3"),
    (np.array(["a", "b", "c"]), "not numbers"),
    (np.array([1, 2, 3], ">i2"), None), (np.array([1, -2, 3], ">i2"), "count -2 at channel 1 is negative"),
    ([1, 2, 20], None), (np.array([0, 20, 0], np.int64), None), (np.array([0, 2, 1], np.float32), None)])
def test_every_check_of_a_live_sample(counts, fragment):
    from motordecode.decoders.samples import max_plausible_count, sample_problem

    assert max_plausible_count(0.004) == 20 and max_plausible_count(0.05) == 250 and max_plausible_count(1e-3) == 10
    problem = sample_problem(counts, 3, 20)
    assert problem == fragment if fragment is None else fragment in problem
