"""The live loop: each sample from the source is checked, decoded by the run's stream (the compiled
fast step path by default, or the PyTorch ``Stream``) and sent to the sink; its latency is measured
from its arrival to the velocity written.

The garbage collector's full passes take ~50 ms over the objects of torch and the run, a dozen
deadlines each: the objects that exist when the stream starts are frozen out of collection
(``gc.freeze``) until it ends.

Faults, each with one defined behaviour:

- every sample is checked before the decoder sees it (:func:`~motordecode.decoders.samples.sample_problem`:
  its channel count, and finite, non-negative, whole counts of at most ``max_count``), and so is the
  entry it came in (the source's ``problem``: unreadable counts, labels or timestamp); a bad sample
  is dropped, counted as bad and logged with its entry id (``on_bad`` "exit": the loop stops at it
  instead, the summary's outcome says so). A dropped sample leaves a gap, handled as below;
- a gap in the sample indices of up to ``max_gap`` samples is filled with zero samples (decoded,
  not written) so the decoder's clock stays right; a longer jump forward resets the decoder state
  and goes on from the new index;
- a sample at most ``max_gap`` + 1 behind the last one decoded is dropped and counted as late; a
  jump further back (a producer that restarted) resets the decoder state and goes on from there;
- SIGINT or SIGTERM stop the loop after the sample in hand (a source waiting for data ends at
  once); in every case the sink is closed (flushed) and the summary reported, so no decoded sample
  is lost.
"""

from __future__ import annotations

import gc
import signal
import sys
import threading
import time

import numpy as np

from motordecode.decoders.samples import max_plausible_count, sample_problem
from motordecode.errors import ConfigError
from motordecode.serve.timing import LatencyLog


class Stopped:
    """Set by SIGINT / SIGTERM while the loop runs; the previous handlers come back afterwards."""

    def __init__(self):
        self.signal = None

    def __enter__(self):
        self.previous = {}
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            self.previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum, frame):
        self.signal = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        return False


STEPS = ("auto", "fast", "torch")
ON_BAD = ("drop", "exit")


def check_options(duration, max_gap, on_bad, max_count) -> None:
    """ConfigError for options out of range (each must be a number that makes sense)."""
    if duration is not None and not (np.isfinite(duration) and duration > 0):
        raise ConfigError(f"duration must be a finite number of seconds > 0, got {duration}.")
    if isinstance(max_gap, bool) or not isinstance(max_gap, (int, np.integer)) or max_gap < 0:
        raise ConfigError(f"max_gap must be a whole number of samples >= 0, got {max_gap!r}.")
    if on_bad not in ON_BAD:
        raise ConfigError(f"unknown on_bad {on_bad!r}; choose from {', '.join(ON_BAD)}.")
    if max_count is not None and (isinstance(max_count, bool) or not isinstance(max_count, (int, np.integer))
                                  or max_count < 1):
        raise ConfigError(f"max_count must be a whole number >= 1, got {max_count!r}.")


def ready_stream(run, mode: str | None, step: str, source, notices):
    """(stream, step path used): the run's stream in ``mode`` on ``step`` ("auto": the fast step
    path where the decoder has one, else the PyTorch ``Stream`` with a notice), warmed (its first
    calls allocate), reset to the source's history, and the objects so far frozen out of the
    garbage collector."""
    from motordecode.decoders.base import Stream
    from motordecode.decoders.fast import FastStream

    if step not in STEPS:
        raise ConfigError(f"unknown step path {step!r}; choose from {', '.join(STEPS)}.")
    decoder = run.decoder(mode)
    if step == "torch":
        stream = Stream(decoder)
    else:
        try:
            stream, step = FastStream(decoder), "fast"
        except ConfigError as exc:
            if step == "fast":
                raise
            print(f"motordecode serve: {exc} Decoding with the PyTorch stream.", file=notices, flush=True)
            stream, step = Stream(decoder), "torch"
    for _ in range(3):
        stream.push(np.zeros(decoder.n_channels, np.float32))
    history = getattr(source, "history", None)
    stream.reset(history=history if history is not None and len(history) else None)
    gc.collect()
    gc.freeze()  # no 50 ms full collections over torch's objects mid-stream
    return stream, step


def serve(run, source, sink, *, mode: str | None = None, step: str = "auto", duration: float | None = None,
          max_gap: int = 25, on_bad: str = "drop", max_count: int | None = None, status_every_s: float = 0.0,
          status_stream=sys.stderr) -> dict:
    """Decode ``source`` into ``sink`` with ``run``'s stream in ``mode``; returns the summary.
    ``step``: "fast", the compiled step path, "torch", the PyTorch model's ``Stream``, or "auto"
    (fast where the decoder has it); the summary names the path used. ``on_bad``: "drop" (count
    and log a bad sample, go on) or "exit" (stop at it; the outcome starts with "bad sample");
    ``max_count``: the largest plausible count of a channel in one bin (default
    :func:`~motordecode.decoders.samples.max_plausible_count` of the bin width). A sink has
    ``write`` and ``close`` and may have ``start``, called once the stream is ready; it is closed
    whatever happens."""
    check_options(duration, max_gap, on_bad, max_count)
    max_count = max_plausible_count(run.config["step_s"]) if max_count is None else int(max_count)
    log = LatencyLog(int(round(run.config["step_s"] * 1e9)))
    outcome, started = None, False

    def notice(message):
        print(f"motordecode serve: {message}", file=status_stream, flush=True)

    def end_now(now):
        """Why the loop ends after the sample in hand, or None."""
        if stopped.signal:
            return f"stopped by {stopped.signal}"
        if duration is not None and now - start >= duration:
            return "duration reached"
        return None

    with Stopped() as stopped:  # from here on, a signal ends the stream cleanly (warming included)
        try:
            stream, step = ready_stream(run, mode, step, source, status_stream)
            channels = stream.decoder.n_channels
            if hasattr(sink, "start"):  # a sink may have one (the file sinks create their file there)
                sink.start()  # a run that failed before here created no file
            started = True
            expected, start, last_status = None, time.perf_counter(), time.perf_counter()
            source.stopping = lambda: stopped.signal is not None  # a waiting source ends at once on a signal
            for sample in (() if stopped.signal else source):  # a signal while warming: no sample read
                problem = sample.problem or sample_problem(sample.counts, channels, max_count)
                if problem:
                    log.bad += 1
                    where = sample.entry or f"sample {sample.index}"
                    if on_bad == "exit":
                        outcome = f"bad sample ({where}): {problem}"
                        break
                    notice(f"bad sample ({where}): {problem}; dropped")
                    if outcome := end_now(time.perf_counter()):
                        break
                    continue
                counts = np.asarray(sample.counts, dtype=np.float32)
                if expected is not None and sample.index < expected:
                    behind = expected - 1 - sample.index
                    if behind <= max_gap:
                        log.late += 1
                        if outcome := end_now(time.perf_counter()):
                            break
                        continue
                    log.resets += 1
                    stream.reset()
                    notice(f"sample {sample.index} is {behind + 1} behind sample {expected - 1}: decoder state "
                           "reset, going on from it")
                elif expected is not None and sample.index > expected:
                    missing = sample.index - expected
                    log.gaps += 1
                    if missing <= max_gap:
                        log.filled += missing
                        for _ in range(missing):
                            stream.push(np.zeros(channels, np.float32))
                        action = "filled with zeros"
                    else:
                        log.resets += 1
                        stream.reset()
                        action = "decoder state reset"
                    notice(f"{missing} samples missing before sample {sample.index}: {action}")
                velocity = stream.push(counts)
                latency_ns = time.perf_counter_ns() - sample.arrived_ns
                sink.write(sample.timestamp, sample.index, velocity, latency_ns / 1e3)
                log.add(latency_ns)
                expected = sample.index + 1
                now = time.perf_counter()
                if status_every_s and now - last_status >= status_every_s:
                    print("\r" + log.status_line(), end="", file=status_stream, flush=True)
                    last_status = now
                if outcome := end_now(now):
                    break
        finally:
            gc.unfreeze()
            sink.close()
            if outcome is None and stopped.signal:
                outcome = f"stopped by {stopped.signal}"
            outcome = outcome or getattr(source, "end_reason", "source ended")
            if status_every_s and started:
                print("", file=status_stream, flush=True)
    return {**log.summary(), "outcome": outcome, "step": step}
