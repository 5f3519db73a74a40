"""The zoo's downloader against a real HTTP server on 127.0.0.1.

The server serves bytes from a dict, honours `Range: bytes=N-` (206 + Content-Range),
can hang up after a given number of bytes, can send slowly, and records every request.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
import tarfile
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import shared_path

from converters.atomic import partial_path
from converters.spec import ConversionError
from models.convert import convert_zoo
from models.download import DownloadError, HostUnreachable, download
from models.registry import Source, ZooModel


class FileServer:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_after: dict[str, int] = {}  # path -> bytes sent before hanging up (once)
        self.ignore_range = False
        self.pause = 0.0  # seconds between 64 KiB pieces of a body
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                wanted = self.headers.get("Range")
                server.requests.append((self.path, wanted))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", wanted or "")
                if match and not server.ignore_range:
                    start = int(match.group(1))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                cut = server.cut_after.pop(self.path, None)
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                for offset in range(0, len(body), 1 << 16):
                    try:
                        self.wfile.write(body[offset:offset + (1 << 16)])
                    except ConnectionError:  # the client was killed
                        return
                    if server.pause:
                        time.sleep(server.pause)

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@pytest.fixture(scope="module")
def running_server():
    files = FileServer()
    files.start()
    yield files
    files.stop()


@pytest.fixture
def server(running_server):
    """The module's server, emptied for each test."""
    running_server.files.clear()
    running_server.cut_after.clear()
    running_server.requests.clear()
    running_server.ignore_range = False
    running_server.pause = 0.0
    return running_server


PAYLOAD = bytes(range(256)) * 1200  # 307,200 bytes, several read chunks


def sha256(data: bytes) -> tuple[str, str]:
    return "sha256", hashlib.sha256(data).hexdigest()


def test_full_download(server, tmp_path):
    server.files["/weights.bin"] = PAYLOAD
    dest = tmp_path / "cache" / "weights.bin"
    download(f"{server.url}/weights.bin", dest, sha256(PAYLOAD), quiet=True)
    assert dest.read_bytes() == PAYLOAD
    assert sorted(os.listdir(dest.parent)) == ["weights.bin"], "no partial file is left"
    assert server.requests == [("/weights.bin", None)]


def test_cut_off_download_resumes_with_a_range_request(server, tmp_path):
    server.files["/w.bin"] = PAYLOAD
    server.cut_after["/w.bin"] = 100_000
    dest = tmp_path / "w.bin"
    part = partial_path(dest)
    with pytest.raises(DownloadError, match=r"stopped after 100000 of 307200 bytes.*resume"):
        download(f"{server.url}/w.bin", dest, sha256(PAYLOAD), quiet=True)
    assert not dest.exists(), "an interrupted download must not look complete"
    assert part.stat().st_size == 100_000
    download(f"{server.url}/w.bin", dest, sha256(PAYLOAD), quiet=True)
    assert server.requests[-1] == ("/w.bin", "bytes=100000-")
    assert dest.read_bytes() == PAYLOAD
    assert not part.exists()


def test_resume_restarts_when_the_server_ignores_range(server, tmp_path):
    server.files["/w.bin"] = PAYLOAD
    server.ignore_range = True
    dest = tmp_path / "w.bin"
    partial_path(dest).write_bytes(PAYLOAD[:5000])
    download(f"{server.url}/w.bin", dest, ("sha1", hashlib.sha1(PAYLOAD).hexdigest()), quiet=True)
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_is_refused_and_nothing_is_left(server, tmp_path):
    server.files["/w.bin"] = PAYLOAD
    dest = tmp_path / "w.bin"
    wrong = ("sha1", hashlib.sha1(b"the official file").hexdigest())
    with pytest.raises(DownloadError, match=r"sha1 [0-9a-f]{40} does not match the published"):
        download(f"{server.url}/w.bin", dest, wrong, quiet=True)
    assert list(tmp_path.iterdir()) == []


def test_404_is_a_clear_error(server, tmp_path):
    url = f"{server.url}/gone.caffemodel"
    with pytest.raises(DownloadError) as error:
        download(url, tmp_path / "gone.caffemodel", quiet=True)
    assert "HTTP 404" in str(error.value) and url in str(error.value)
    assert "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []


def tiny_model(base_url: str, prototxt: bytes, caffemodel: bytes, archive: str | None = None,
               ) -> ZooModel:
    """A zoo entry for shared/models/tiny whose files are served by the test server."""
    if archive:
        url = f"{base_url}/{archive}"
        sources = (Source("prototxt", "deploy.prototxt", url, archive=archive),
                   Source("weights", "tiny.caffemodel", url, archive=archive))
    else:
        sources = (Source("prototxt", "deploy.prototxt", f"{base_url}/deploy.prototxt",
                          sha256=sha256(prototxt)[1]),
                   Source("weights", "tiny.caffemodel", f"{base_url}/tiny.caffemodel",
                          sha1=hashlib.sha1(caffemodel).hexdigest()))
    return ZooModel(name="tiny_test", aliases=(), description="test net", folder="tiny",
                    licence="test", input_size=(35, 35), sources=sources, default_layer="conv1",
                    mean=(104.0, 117.0, 123.0))


@pytest.fixture
def tiny_files():
    folder = shared_path("models", "tiny")
    return (folder / "deploy.prototxt").read_bytes(), (folder / "tiny.caffemodel").read_bytes()


def test_zoo_model_is_downloaded_verified_cached_and_converted(server, tmp_path, tiny_files):
    prototxt, caffemodel = tiny_files
    server.files["/deploy.prototxt"], server.files["/tiny.caffemodel"] = prototxt, caffemodel
    model = tiny_model(server.url, prototxt, caffemodel)
    cache, root = tmp_path / "cache", tmp_path / "models"
    result = convert_zoo(model, cache=cache, root=root, quiet=True)
    assert (cache / "tiny" / "tiny.caffemodel").read_bytes() == caffemodel
    assert sorted(p.name for p in (root / "tiny_test").iterdir()) == [
        "layers.txt", "network.json", "weights.safetensors"]
    description = json.loads((root / "tiny_test" / "network.json").read_text())
    assert description["preprocessing"] == {"channel_order": "BGR", "scale": 255.0,
                                            "mean": [104.0, 117.0, 123.0], "std": [1.0, 1.0, 1.0]}
    assert [f.status for f in result.files] == ["verified", "verified"]
    assert result.warnings == []
    served = len(server.requests)
    convert_zoo(model, cache=cache, root=root, quiet=True)
    assert len(server.requests) == served, "a second conversion must use the cache"


def test_a_class_list_that_cannot_be_fetched_only_warns(server, tmp_path, tiny_files):
    prototxt, caffemodel = tiny_files
    server.files["/deploy.prototxt"], server.files["/tiny.caffemodel"] = prototxt, caffemodel
    names = Source("classes", "labels.txt", f"{server.url}/labels.txt")  # not served: 404
    model = replace(tiny_model(server.url, prototxt, caffemodel), classes=(names,))
    result = convert_zoo(model, cache=tmp_path / "cache", root=tmp_path / "models", quiet=True)
    assert [f.status for f in result.files] == ["verified", "verified", "unavailable"]
    assert not (tmp_path / "models" / "tiny_test" / "labels.txt").exists()
    [text] = result.warnings
    assert "no class names for tiny_test" in text and "HTTP 404" in text and "--labels" in text
    server.files["/labels.txt"] = b"a\nb\n"  # served now: a second conversion gets it
    convert_zoo(model, cache=tmp_path / "cache", root=tmp_path / "models", quiet=True)
    assert (tmp_path / "models" / "tiny_test" / "labels.txt").read_text() == "a\nb\n"


def test_a_class_list_that_cannot_be_read_only_warns(server, tmp_path, tiny_files):
    prototxt, caffemodel = tiny_files
    server.files["/deploy.prototxt"], server.files["/tiny.caffemodel"] = prototxt, caffemodel
    server.files["/names.mat"] = b"not a MATLAB file"
    names = Source("classes", "names.mat", f"{server.url}/names.mat")
    model = replace(tiny_model(server.url, prototxt, caffemodel), classes=(names,))
    result = convert_zoo(model, cache=tmp_path / "cache", root=tmp_path / "models", quiet=True)
    assert [f.status for f in result.files] == ["verified", "verified", "unavailable"]
    assert not (tmp_path / "models" / "tiny_test" / "labels.txt").exists()
    [text] = result.warnings
    assert "no class names for tiny_test" in text and "not a readable MATLAB file" in text


def test_member_of_a_tar_gz_archive(server, tmp_path, tiny_files):
    prototxt, caffemodel = tiny_files
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in [("tiny/deploy.prototxt", prototxt),
                           ("tiny/tiny.caffemodel", caffemodel)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    server.files["/tiny.tar.gz"] = buffer.getvalue()
    model = tiny_model(server.url, prototxt, caffemodel, archive="tiny.tar.gz")
    result = convert_zoo(model, cache=tmp_path / "cache", root=tmp_path / "models", quiet=True)
    assert (tmp_path / "cache" / "tiny" / "tiny.caffemodel").read_bytes() == caffemodel
    assert server.requests == [("/tiny.tar.gz", None)], "the archive is fetched once"
    assert [f.status for f in result.files] == ["unverifiable", "unverifiable"]


def test_unreachable_host_says_how_to_use_a_mirror(tmp_path, tiny_files):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    model = tiny_model(f"http://127.0.0.1:{port}", *tiny_files)
    with pytest.raises(HostUnreachable) as error:
        convert_zoo(model, cache=tmp_path / "cache", root=tmp_path / "models", quiet=True)
    message = str(error.value)
    assert f"cannot reach 127.0.0.1:{port}" in message
    assert "make convert MODEL=tiny_test FROM=" in message and "DREAMZOO_MIRROR" in message
    assert isinstance(error.value, ConversionError) and "\n" not in message
    assert not (tmp_path / "models").exists()
    assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*")), os.listdir(tmp_path)


def test_downloaded_file_that_fails_to_parse_is_an_error(server, tmp_path, tiny_files):
    prototxt, _ = tiny_files
    garbage = b"\xff" * 4096
    server.files["/deploy.prototxt"], server.files["/tiny.caffemodel"] = prototxt, garbage
    model = tiny_model(server.url, prototxt, garbage)
    with pytest.raises(ConversionError, match=r"tiny\.caffemodel: not a valid caffemodel"):
        convert_zoo(model, cache=tmp_path / "cache", root=tmp_path / "models", quiet=True)
    assert not (tmp_path / "models" / "tiny_test").exists()


def test_cache_path_is_layout_of_a_mirror(server, tmp_path, tiny_files):
    """A filled download cache works as FROM= for the next machine."""
    prototxt, caffemodel = tiny_files
    server.files["/deploy.prototxt"], server.files["/tiny.caffemodel"] = prototxt, caffemodel
    model = tiny_model(server.url, prototxt, caffemodel)
    convert_zoo(model, cache=tmp_path / "cache", root=tmp_path / "a", quiet=True)
    server.files.clear()
    result = convert_zoo(model, mirror=tmp_path / "cache", root=tmp_path / "b")
    assert [Path(f.path).parent.name for f in result.files] == ["tiny", "tiny"]
    assert [f.status for f in result.files] == ["verified", "verified"]
