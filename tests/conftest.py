"""Shared fixtures: small synthetic sessions in the real layout, and the real recording in ../shared."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

from motordecode.data.synthetic import SynthConfig, write_synthetic

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MOTORDECODE_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("synth")


# The shared 40 s sessions are "easy" (every unit well tuned): the tests train for one to ten
# epochs and need a strong signal; tests/test_synthetic.py and test_calibration.py cover "realistic".
@pytest.fixture(scope="session")
def indy_file(synth_dir) -> Path:
    return write_synthetic(synth_dir / "indy_synth.mat", SynthConfig(monkey="indy", duration_s=40, seed=1,
                                                                     difficulty="easy"))


@pytest.fixture(scope="session")
def loco_file(synth_dir) -> Path:
    return write_synthetic(synth_dir / "loco_synth.mat", SynthConfig(monkey="loco", duration_s=40, seed=2,
                                                                     difficulty="easy"))


@pytest.fixture(scope="session")
def indy_realistic_file(synth_dir) -> Path:
    return write_synthetic(synth_dir / "indy_realistic.mat", SynthConfig(monkey="indy", duration_s=40, seed=6))


@pytest.fixture(scope="session")
def stevenson_file() -> Path:
    path = SHARED / "data" / "m1_stevenson_2011.mat"
    if not path.is_file():
        pytest.fail(f"the real recording {path} is missing: the tests need ../shared/data next to the repository "
                    "(or MOTORDECODE_SHARED pointing at shared/).")
    return path


_START = {"torch_threads": torch.get_num_threads(), "sigint": signal.getsignal(signal.SIGINT)}


@pytest.fixture(autouse=True)
def _process_state_restored():
    """Every test starts from the session's torch thread count and SIGINT handler. Libraries change
    them behind a test's back (numba's OpenMP layer sets the thread count torch reads; a library's
    worker start-up can leave SIGINT ignored), and a later test that compares a subprocess with
    this process, or sends a subprocess SIGINT (which inherits an ignored SIGINT), would see it."""
    yield
    if torch.get_num_threads() != _START["torch_threads"]:
        torch.set_num_threads(_START["torch_threads"])
    if signal.getsignal(signal.SIGINT) is not _START["sigint"]:
        signal.signal(signal.SIGINT, _START["sigint"])
