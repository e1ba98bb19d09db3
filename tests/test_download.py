"""Downloads against a local HTTP server on 127.0.0.1 (no network)."""
import hashlib
import io
import pickle
import socket
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import pytest

from classicpr.download import DatasetSource, download_dataset, fetch
from classicpr.errors import ClassicPRError


class _Server:
    def __init__(self):
        self.files, self.requests, self.cut_once = {}, [], set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                outer.requests.append((self.path, self.headers.get("Range")))
                data = outer.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                body = data[start:]
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path in outer.cut_once:
                    outer.cut_once.discard(self.path)
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


def _mini(server, drop=None):
    from skimage import data
    names = ["img_a", "img_b", "img_c", "q_0"]
    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for n, p in zip(names, photos):
            if n == drop:
                continue
            ok, jpg = cv2.imencode(".jpg", p)
            info = tarfile.TarInfo(f"mini/sub/{n}.jpg")
            info.size = len(jpg.tobytes())
            tar.addfile(info, io.BytesIO(jpg.tobytes()))
    gnd = pickle.dumps({"imlist": names[:3], "qimlist": names[3:],
                        "gnd": [{"bbx": [0, 0, 10, 10], "easy": [0], "hard": [], "junk": []}]})
    server.files["/img/mini.tgz"] = buf.getvalue()
    server.files["/gnd/gnd_mini.pkl"] = gnd
    return DatasetSource("mini", f"{server.url}/img", ("mini.tgz",), f"{server.url}/gnd/gnd_mini.pkl",
                         hashlib.sha256(gnd).hexdigest())


def test_interrupted_transfer_resumes_and_second_run_does_nothing(server, tmp_path):
    src = _mini(server)
    server.cut_once.add("/img/mini.tgz")
    with pytest.raises(ClassicPRError, match="again to resume"):
        download_dataset("mini", tmp_path, source=src, progress=False)
    assert (tmp_path / ".downloads" / "mini.tgz.part").is_file()
    assert not (tmp_path / ".downloads" / "mini.tgz").exists()  # never under its final name
    report = download_dataset("mini", tmp_path, source=src, progress=False)
    assert report == {"missing": [], "corrupt": []}
    ranges = [r for p, r in server.requests if p == "/img/mini.tgz"]
    assert ranges[0] is None and ranges[1].startswith("bytes=") and ranges[1] != "bytes=0-"
    assert len(list((tmp_path / "revisitop" / "data" / "mini" / "jpg").glob("*.jpg"))) == 4
    n = len(server.requests)
    assert download_dataset("mini", tmp_path, source=src, progress=False) == {"missing": [], "corrupt": []}
    assert len(server.requests) == n  # idempotent: nothing fetched


def test_corrupt_ground_truth_is_refused_and_deleted(server, tmp_path):
    src = _mini(server)
    server.files["/gnd/gnd_mini.pkl"] = b"tampered" + server.files["/gnd/gnd_mini.pkl"]
    with pytest.raises(ClassicPRError, match="SHA-256 mismatch"):
        download_dataset("mini", tmp_path, source=src, progress=False)
    assert not list((tmp_path / "revisitop" / "data" / "mini").glob("gnd_mini.pkl*"))


def test_incomplete_archive_lists_missing_images(server, tmp_path):
    src = _mini(server, drop="img_b")
    report = download_dataset("mini", tmp_path, source=src, progress=False)
    assert report["missing"] == ["img_b"]
    assert not (tmp_path / "revisitop" / "data" / "mini" / ".classicpr-complete").exists()


def test_corrupt_archive_gives_a_clear_error(server, tmp_path):
    src = _mini(server)
    server.files["/img/mini.tgz"] = b"not a tar file at all" * 100
    with pytest.raises(ClassicPRError, match="corrupt"):
        download_dataset("mini", tmp_path, source=src, progress=False)


def test_unreachable_host(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(ClassicPRError, match="cannot reach"):
        fetch(f"http://127.0.0.1:{port}/x.tgz", tmp_path / "x.tgz", progress=False)


def test_cli_download_labels_without_archive_explains(tmp_path, capsys):
    from classicpr.cli import main
    assert main(["download", "labels", "--root", str(tmp_path), "--rar", str(tmp_path / "p.rar")]) == 2
    assert "pixel_retrieval_benchmarks.rar" in capsys.readouterr().err
