"""Warnings about a run's results: a setting the data adjusted, a stage that found nothing to do, a
number computed on too little data. They do not stop a run; they must not pass silently either.

A module that notices one calls :func:`warn` (Python's :mod:`warnings`, category
:class:`MotordecodeWarning`, so ``warnings.filterwarnings`` applies as usual). :func:`collecting`
gathers them for one job: each distinct message is printed once, as one line on stderr
(``motordecode: warning: ...``), and kept in the list it yields; the pipeline writes that list to
metrics.json under ``warnings``. Collectors nest: an inner one's messages reach the outer one too.
"""

from __future__ import annotations

import sys
import warnings
from contextlib import contextmanager


class MotordecodeWarning(UserWarning):
    """A result that needs a second look: what was adjusted, skipped or measured on too little data."""


def warn(message: str) -> None:
    """Issue ``message`` as a :class:`MotordecodeWarning`."""
    warnings.warn(message, MotordecodeWarning, stacklevel=2)


@contextmanager
def collecting():
    """Collect the MotordecodeWarnings issued inside the block: yields the list of their messages
    (each once, in order), printing each new one as one line on stderr; other warnings are shown
    as usual."""
    messages: list[str] = []
    outer = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, MotordecodeWarning):
            return outer(message, category, filename, lineno, file, line)
        text = str(message)
        if text not in messages:
            messages.append(text)
            if getattr(outer, "collects", False):  # the outer collector prints it (once)
                outer(message, category, filename, lineno, file, line)
            else:
                print(f"motordecode: warning: {text}", file=sys.stderr, flush=True)

    show.collects = True
    with warnings.catch_warnings():
        warnings.simplefilter("always", MotordecodeWarning)
        warnings.showwarning = show
        yield messages
