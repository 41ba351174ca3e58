"""Catalog of the reaching sessions of Zenodo record 583331, local paths and MD5 checks.

The six benchmark sessions of the NeuroBench primate-reaching task carry the MD5 sums NeuroBench
checks; the other 96-channel Indy and all Loco sessions of the record (used for pre-training by
the RSNN entries) have no known sums here. The 192-channel Indy sessions of April 2016 are left out.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from motordecode.data.generated import generator_settings
from motordecode.errors import ConfigError

ZENODO_RECORD = 583331
ZENODO_FILES_URL = f"https://zenodo.org/record/{ZENODO_RECORD}/files/"
CHANNELS = {"indy": 96, "loco": 192}

BENCHMARK_MD5 = {
    "indy_20170131_02": "2790b1c869564afaa7772dbf9e42d784",
    "indy_20160630_01": "197413a5339630ea926cbd22b8b43338",
    "indy_20160622_01": "c33d5fff31320d709d23fe445561fb6e",
    "loco_20170301_05": "47342da09f9c950050c9213c3df38ea3",
    "loco_20170215_02": "739b70762d838f3a1f358733c426bb02",
    "loco_20170210_03": "4cae63b58c4cb9c8abd44929216c703b",
}

PRETRAINING = (
    "indy_20160624_03 indy_20160627_01 indy_20160915_01 indy_20160916_01 indy_20160921_01 "
    "indy_20160927_04 indy_20160927_06 indy_20160930_02 indy_20160930_05 indy_20161005_06 "
    "indy_20161006_02 indy_20161007_02 indy_20161011_03 indy_20161013_03 indy_20161014_04 "
    "indy_20161017_02 indy_20161024_03 indy_20161025_04 indy_20161026_03 indy_20161027_03 "
    "indy_20161206_02 indy_20161207_02 indy_20161212_02 indy_20161220_02 indy_20170123_02 "
    "indy_20170124_01 indy_20170127_03 loco_20170213_02 loco_20170214_02 loco_20170216_02 "
    "loco_20170217_02 loco_20170227_04 loco_20170228_02 loco_20170302_02"
).split()


@dataclass(frozen=True)
class Session:
    name: str
    monkey: str
    channels: int
    benchmark: bool
    md5: str | None

    @property
    def filename(self) -> str:
        return f"{self.name}.mat"

    @property
    def url(self) -> str:
        return ZENODO_FILES_URL + self.filename


def _session(name: str, benchmark: bool) -> Session:
    monkey = name.split("_")[0]
    return Session(name, monkey, CHANNELS[monkey], benchmark, BENCHMARK_MD5.get(name))


CATALOG = {s.name: s for s in
           [_session(n, True) for n in BENCHMARK_MD5] + [_session(n, False) for n in PRETRAINING]}


STAND_IN_SUFFIX = "_synthetic"


def stand_in_name(session: str) -> str:
    """The file stem of a generated stand-in for a session of the record: ``indy_20160622_01`` ->
    ``indy_20160622_01_synthetic``, never the session's own name (a stand-in name is kept)."""
    return session if session.endswith(STAND_IN_SUFFIX) else session + STAND_IN_SUFFIX


def stands_in_for(stem: str) -> str | None:
    """The catalog session that a file named ``stem`` stands in for (see :func:`stand_in_name`), or None."""
    name = stem[: -len(STAND_IN_SUFFIX)] if stem.endswith(STAND_IN_SUFFIX) else None
    return name if name in CATALOG else None


def get_session(name: str) -> Session:
    """Catalog entry of a session name (with or without .mat)."""
    key = name[:-4] if name.endswith(".mat") else name
    if key not in CATALOG:
        raise ConfigError(
            f"unknown session '{name}'. Benchmark sessions: {', '.join(BENCHMARK_MD5)}; "
            "`motordecode data list` shows all."
        )
    return CATALOG[key]


def expected_channels_for(stem: str) -> int | None:
    """Channel count of a known session or of its stand-in (by file stem), None for any other file."""
    entry = CATALOG.get(stem) or CATALOG.get(stands_in_for(stem) or "")
    return entry.channels if entry else None


def md5sum(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def session_status(session: Session, directory: str | os.PathLike, verify: bool = True) -> dict:
    """Presence and checksum state of one session in ``directory``. A generated file under the
    session's name (:mod:`motordecode.data.generated`) is not the session: ``present`` is False and
    ``generated`` holds its settings."""
    path = Path(directory) / session.filename
    row = {"name": session.name, "monkey": session.monkey, "channels": session.channels,
           "benchmark": session.benchmark, "present": path.is_file(), "path": str(path),
           "md5": session.md5, "verified": None, "status": "absent"}
    if not row["present"]:
        return row
    generated = generator_settings(path)
    if generated is not None:
        row.update(present=False, generated=generated,
                   status=f"absent: {path.name} is a generated file ({describe_generated(generated)}), not the "
                          "recording; move it away")
        return row
    if session.md5 is None:
        row["status"] = "present (no known MD5)"
    elif not verify:
        row["status"] = "present (not checked)"
    else:
        row["verified"] = md5sum(path) == session.md5
        row["status"] = "verified" if row["verified"] else "MD5 MISMATCH"
    return row


def generated_files(directory: str | os.PathLike) -> dict[str, dict]:
    """{file name: generator settings} of the generated sessions in ``directory`` that do not bear a
    session's name (those are reported by :func:`session_status`)."""
    directory = Path(directory)
    if not directory.is_dir():
        return {}
    found = {}
    for path in sorted(directory.iterdir()):
        if path.suffix.lower() in (".mat", ".nwb") and path.stem not in CATALOG and path.is_file():
            settings = generator_settings(path)
            if settings is not None:
                found[path.name] = settings
    return found


def describe_generated(settings: dict) -> str:
    """``synthetic indy, 300 s, seed 0, realistic`` for a generator's settings."""
    return (f"synthetic {settings.get('monkey', '?')}, {settings.get('duration_s', float('nan')):g} s, "
            f"seed {settings.get('seed', '?')}, {settings.get('difficulty', '?')}")


def default_pretraining_files(data: str | os.PathLike) -> list[Path]:
    """The RSNN default: the benchmark sessions of the same monkey as ``data`` (itself included),
    looked up next to it; for a generated stand-in (:func:`stand_in_name`), the stand-ins of those
    sessions. Empty when ``data`` is neither; an error when one of them is missing (``motordecode
    data fetch`` gets them, ``--pretrain`` picks others)."""
    data = Path(data)
    stand_in = stands_in_for(data.stem)
    session = CATALOG.get(stand_in or data.stem)
    if session is None or not session.benchmark:
        return []
    names = [s.name for s in CATALOG.values() if s.benchmark and s.monkey == session.monkey]
    files = [data.parent / f"{stand_in_name(name) if stand_in else name}.mat" for name in names]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise ConfigError(f"pre-training uses the {session.monkey} benchmark sessions next to {data.name}; "
                          f"missing: {', '.join(missing)}. Fetch them with 'motordecode data fetch', pass "
                          "--pretrain FILE ..., or --set pretrain_epochs=0.")
    return files


def monkey_of(name: str) -> str | None:
    return next((m for m in ("indy", "loco") if m in name.lower()), None)
