"""Progress on stderr. Training: a tqdm bar per epoch on a terminal; without one (nohup, CI, a
redirected stderr) a plain line at the end of every epoch and, within a long epoch, every
``LINE_EVERY_S`` seconds, so a log shows that the run is alive and how far it is. Long steps
without batches (an export's check, an evaluation): :func:`working`."""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager

LINE_EVERY_S = 30.0


class LineProgress:
    """The part of tqdm's face the trainers use (``update``, ``set_postfix``, ``close``), printing
    lines instead of redrawing a bar: ``DESC: batch i/n, loss ...`` every ``every_s`` seconds and
    ``DESC: done in S s, loss ..., val_r2 ...`` when closed."""

    def __init__(self, total: int, desc: str, every_s: float = LINE_EVERY_S, file=None):
        self.total, self.desc, self.every_s = total, desc, every_s
        self.file = file or sys.stderr
        self.n, self.postfix = 0, {}
        self.started = self.last = time.monotonic()

    def _print(self, text: str) -> None:
        print(f"{self.desc}: {text}", file=self.file, flush=True)

    def _postfix(self) -> str:
        return "".join(f", {k} {v}" for k, v in self.postfix.items())

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            self._print(f"batch {self.n}/{self.total}{self._postfix()}")

    def set_postfix(self, **values) -> None:
        self.postfix.update(values)

    def close(self) -> None:
        self._print(f"done in {time.monotonic() - self.started:.1f} s{self._postfix()}")


def progress_bar(total: int, desc: str):
    """A tqdm bar on a terminal, else a :class:`LineProgress`."""
    if not sys.stderr.isatty():
        return LineProgress(total, desc)
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="batch", leave=True, file=sys.stderr, dynamic_ncols=True)


@contextmanager
def working(what: str, every_s: float = LINE_EVERY_S, file=None):
    """Announce a long step without a bar: ``what ...`` when it starts, ``what: N s so far`` every
    ``every_s`` seconds while it runs (from a background thread) and ``what: done in N s`` at the end."""
    file = file or sys.stderr
    started = time.monotonic()
    stop = threading.Event()
    print(f"{what} ...", file=file, flush=True)

    def tick():
        while not stop.wait(every_s):
            print(f"{what}: {time.monotonic() - started:.0f} s so far", file=file, flush=True)

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join()
    print(f"{what}: done in {time.monotonic() - started:.1f} s", file=file, flush=True)
