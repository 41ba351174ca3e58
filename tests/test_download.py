"""Downloads against a local HTTP server: resume, MD5 check, atomic rename, offline message."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest

from motordecode.data.download import fetch_file, fetch_session
from motordecode.errors import ChecksumError, DownloadError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class _Server(http.server.ThreadingHTTPServer):
    cut_first_transfer_at: int | None = None
    ranges: list


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        server = self.server
        start = 0
        header = self.headers.get("Range")
        server.ranges.append(header)
        if header:
            start = int(header.split("=")[1].split("-")[0])
            if start >= len(PAYLOAD):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.cut_first_transfer_at is not None:
            body = body[: server.cut_first_transfer_at]
            server.cut_first_transfer_at = None
        self.wfile.write(body)


@pytest.fixture
def server():
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.ranges = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _url(server):
    return f"http://127.0.0.1:{server.server_address[1]}/indy_test.mat"


def test_interrupted_download_resumes_and_verifies(server, tmp_path):
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    data_dir, part = tmp_path / "data", tmp_path / "cache" / "indy_test.mat.part"
    server.cut_first_transfer_at = 300_000
    with pytest.raises(DownloadError, match="resume"):
        fetch_file(_url(server), data_dir / "indy_test.mat", md5, partial=part, timeout=5)
    assert part.stat().st_size == 300_000
    assert not data_dir.exists() or not any(data_dir.iterdir())  # nothing half-written in the data dir
    fetch_file(_url(server), data_dir / "indy_test.mat", md5, partial=part, timeout=5)
    assert server.ranges == [None, "bytes=300000-"]
    assert (data_dir / "indy_test.mat").read_bytes() == PAYLOAD
    assert not part.exists()
    assert sorted(p.name for p in data_dir.iterdir()) == ["indy_test.mat"]


def test_checksum_mismatch_discards_the_download(server, tmp_path):
    part = tmp_path / "cache" / "x.part"
    with pytest.raises(ChecksumError, match="does not match the known 0+"):
        fetch_file(_url(server), tmp_path / "data" / "indy_test.mat", "0" * 32, partial=part, timeout=5)
    assert not part.exists()
    assert not (tmp_path / "data" / "indy_test.mat").exists()


def test_offline_names_the_url_and_the_destination(tmp_path, monkeypatch):
    monkeypatch.setenv("MOTORDECODE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DownloadError) as info:
        fetch_session("indy_20170131_02", tmp_path / "data", base_url="http://127.0.0.1:9/files", timeout=2)
    message = str(info.value)
    assert "http://127.0.0.1:9/files/indy_20170131_02.mat" in message
    assert str(tmp_path / "data" / "indy_20170131_02.mat") in message
    assert "2790b1c869564afaa7772dbf9e42d784" in message
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())


def test_existing_file_with_wrong_md5_is_left_untouched(tmp_path):
    (tmp_path / "indy_20170131_02.mat").write_bytes(b"not the session")
    with pytest.raises(ChecksumError, match="left untouched"):
        fetch_session("indy_20170131_02", tmp_path, base_url="http://127.0.0.1:9", timeout=2)
    assert (tmp_path / "indy_20170131_02.mat").read_bytes() == b"not the session"
