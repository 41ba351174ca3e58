"""Download session files with resume, MD5 check and an atomic rename.

A transfer is written to ``CACHE/partial/NAME.part``, outside the data directory (CACHE is
``$MOTORDECODE_CACHE``, default ``~/.cache/motordecode``). A later fetch resumes it with an HTTP
Range request. Only a complete file whose MD5 matches is moved into the data directory, by
``os.replace`` (via a temporary name in the data directory when the two are on different file
systems), so the data directory never holds a half-written session.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import urllib.error
import urllib.request
from pathlib import Path

from motordecode.data.sessions import ZENODO_FILES_URL, get_session, md5sum
from motordecode.errors import ChecksumError, ConfigError, DownloadError
from motordecode.fileio import atomic_write_path

CHUNK = 1 << 20


def partial_dir() -> Path:
    root = os.environ.get("MOTORDECODE_CACHE") or Path.home() / ".cache" / "motordecode"
    return Path(root) / "partial"


def _by_hand(url: str, final: Path, md5: str | None) -> str:
    check = f" (MD5 {md5})" if md5 else ""
    return f"Download {url} by hand and save it as {final}{check}."


def fetch_file(url: str, final: str | os.PathLike, md5: str | None = None, *,
               partial: str | os.PathLike | None = None, timeout: float = 60.0, progress=None) -> Path:
    """Download ``url`` to ``final``, resuming ``partial``; verify ``md5``; rename atomically."""
    final = Path(final)
    part = Path(partial) if partial else partial_dir() / (final.name + ".part")
    try:
        part.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the download cache {part.parent}: {exc.strerror or exc}.") from None
    offset = part.stat().st_size if part.exists() else 0
    try:
        request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            resumed = offset and response.status == 206
            total = response.headers.get("Content-Length")
            total = int(total) + (offset if resumed else 0) if total else None
            with open(part, "ab" if resumed else "wb") as out:
                done = offset if resumed else 0
                while block := response.read(CHUNK):
                    out.write(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
            if total is not None and done < total:
                raise DownloadError(
                    f"transfer of {url} stopped at {done} of {total} bytes; run the fetch again to "
                    f"resume (partial data kept at {part}). " + _by_hand(url, final, md5)
                )
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not offset:  # 416: the partial file is already complete
            raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}. " + _by_hand(url, final, md5)) from None
    except ValueError as exc:  # malformed URL
        raise DownloadError(f"cannot download {url!r}: {exc}. Give an http(s) URL.") from None
    except (urllib.error.URLError, socket.timeout, http.client.HTTPException, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        kept = f" Partial data kept at {part}; the next fetch resumes it." if part.exists() and part.stat().st_size else ""
        raise DownloadError(f"cannot download {url} ({reason}); are you offline? "
                            + _by_hand(url, final, md5) + kept) from None
    except OSError as exc:  # local: disk full, permissions
        raise DownloadError(f"cannot write {part}: {exc.strerror or exc}. Free space or choose another "
                            "cache with MOTORDECODE_CACHE.") from None
    if md5 is not None:
        actual = md5sum(part)
        if actual != md5:
            part.unlink()
            raise ChecksumError(f"{url}: MD5 {actual} does not match the known {md5}; the download "
                                "was discarded, fetch it again.")
    _move_into_place(part, final)
    return final


def _move_into_place(part: Path, final: Path) -> None:
    try:
        os.replace(part, final)
        return
    except OSError:
        pass  # different file systems: copy to a temporary name next to the target, then rename
    with atomic_write_path(final) as tmp, open(tmp, "wb") as out, open(part, "rb") as src:
        shutil.copyfileobj(src, out, CHUNK)
        out.flush()
        os.fsync(out.fileno())
    part.unlink()


def fetch_session(name: str, directory: str | os.PathLike, *, base_url: str = ZENODO_FILES_URL,
                  timeout: float = 60.0, progress=None) -> tuple[Path, str]:
    """Fetch one catalog session into ``directory``; returns (path, what happened)."""
    session = get_session(name)
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory} is a file, not a data directory.")
    final = directory / session.filename
    if final.exists():
        if session.md5 is None:
            return final, "already present (no known MD5 to check)"
        if md5sum(final) == session.md5:
            return final, "already present, MD5 verified"
        raise ChecksumError(f"{final} exists but its MD5 does not match {session.md5}; move it away "
                            "and fetch again (it is left untouched).")
    directory.mkdir(parents=True, exist_ok=True)
    url = base_url.rstrip("/") + "/" + session.filename
    fetch_file(url, final, session.md5, timeout=timeout, progress=progress)
    return final, "downloaded, MD5 verified" if session.md5 else "downloaded (no known MD5 to check)"
