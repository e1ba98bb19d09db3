"""Downloads of Revisited Oxford / Paris (and R1M) into the revisitop layout.

* transfers resume (HTTP Range) from ``ROOT/.downloads/<file>.part`` and show a progress bar;
* ground truth files are checked against SHA-256 digests stored here (computed from the
  official files);
* archives are extracted safely (no absolute paths, no ``..``) into a temporary folder and
  their images moved into ``ROOT/revisitop/data/NAME/jpg`` (atomic per file);
* afterwards every image the ground truth lists must be present and decode; what is missing
  or corrupt is listed;
* a second run does nothing; an unreachable host gives a one-line message.

The image hosts are the ones published by the revisitop project; the Oxford group has
since re-released the images, so ``--mirror`` overrides the image base URL.
"""
from __future__ import annotations

import dataclasses
import hashlib
import http.client
import logging
import os
import shutil
import socket
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from tqdm.auto import tqdm

from .errors import ClassicPRError
from .io import PathLike, atomic_write

log = logging.getLogger("classicpr")

GND_BASE = "http://cmp.felk.cvut.cz/revisitop/data/datasets"
GND_SHA256 = {
    "roxford5k": "ba7967754bd2d7d2210a5799f9c45ad5835e269a80ef9d3eba44caa35816c471",
    "rparis6k": "d2e729a5293dda7dda8a15c8383424a42e4964a2c4cfea2f32fa85d11d2df499",
}
LABELS_PAGE = ("https://github.com/anguoyuan/Pixel_retrieval-Segmented_instance_retrieval "
               "(README: pixel_retrieval_benchmarks.rar, hosted at sgvr.kaist.ac.kr/~guoyuan/Segment_retrieval/)")


@dataclasses.dataclass(frozen=True)
class DatasetSource:
    """Where a data set's files live.

    Attributes
    ----------
    name : str
    image_base : str
        Base URL of the image archives (overridable with --mirror).
    archives : tuple of str
        Archive file names under ``image_base``.
    gnd_url : str or None
    gnd_sha256 : str or None
    """

    name: str
    image_base: str
    archives: tuple
    gnd_url: Optional[str]
    gnd_sha256: Optional[str]


SOURCES: Dict[str, DatasetSource] = {
    "roxford5k": DatasetSource("roxford5k", "http://www.robots.ox.ac.uk/~vgg/data/oxbuildings",
                               ("oxbuild_images.tgz",), f"{GND_BASE}/roxford5k/gnd_roxford5k.pkl",
                               GND_SHA256["roxford5k"]),
    "rparis6k": DatasetSource("rparis6k", "http://www.robots.ox.ac.uk/~vgg/data/parisbuildings",
                              ("paris_1.tgz", "paris_2.tgz"), f"{GND_BASE}/rparis6k/gnd_rparis6k.pkl",
                              GND_SHA256["rparis6k"]),
    "revisitop1m": DatasetSource("revisitop1m", "http://ptak.felk.cvut.cz/revisitop/revisitop1m/jpg",
                                 tuple(f"revisitop1m.{i}.tar.gz" for i in range(1, 101)), None, None),
}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(url: str, dest: Path, sha256: Optional[str] = None, progress: bool = True,
          timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest``, resuming a partial ``.part`` file with an HTTP Range.

    The file appears under ``dest`` only once complete (and, if ``sha256`` is given, only
    if its digest matches; a mismatching file is deleted and an error raised).
    """
    dest = Path(dest)
    if dest.is_file() and (sha256 is None or _sha256(dest) == sha256):
        return dest
    part = dest.with_name(dest.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.is_file() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # already complete
            resp = None
        else:
            raise ClassicPRError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, socket.timeout, ConnectionError, OSError,
            http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise ClassicPRError(f"cannot reach {url}: {reason} (check the network, or use --mirror)") from None
    if resp is not None:
        with resp:
            resumed = have and resp.status == 206
            total = resp.headers.get("Content-Length")
            total = int(total) + (have if resumed else 0) if total else None
            mode = "ab" if resumed else "wb"
            bar = tqdm(total=total, initial=have if resumed else 0, unit="B", unit_scale=True,
                       desc=dest.name, disable=not progress, leave=False)
            try:
                with open(part, mode) as fh:
                    while True:
                        try:
                            chunk = resp.read(1 << 16)
                        except (socket.timeout, ConnectionError, OSError,
                                http.client.HTTPException) as exc:
                            raise ClassicPRError(
                                f"transfer of {url} interrupted ({exc.__class__.__name__}); "
                                "run the same command again to resume") from None
                        if not chunk:
                            break
                        fh.write(chunk)
                        bar.update(len(chunk))
            finally:
                bar.close()
            if total is not None and part.stat().st_size < total:
                raise ClassicPRError(f"transfer of {url} ended early ({part.stat().st_size} of "
                                     f"{total} bytes); run the same command again to resume")
    if sha256 is not None:
        got = _sha256(part)
        if got != sha256:
            part.unlink()
            raise ClassicPRError(f"{url}: SHA-256 mismatch (got {got[:16]}..., expected "
                                 f"{sha256[:16]}...); the corrupt download was deleted")
    os.replace(part, dest)
    return dest


def _safe_members(tar: tarfile.TarFile):
    for m in tar.getmembers():
        p = Path(m.name)
        if m.isfile() and not p.is_absolute() and ".." not in p.parts:
            yield m


def extract_images(archive: Path, jpg_dir: Path) -> int:
    """Extract the .jpg files of a tar archive into ``jpg_dir`` (flattened), atomically per file."""
    jpg_dir.mkdir(parents=True, exist_ok=True)
    n = 0
    try:
        with tarfile.open(archive) as tar, tempfile.TemporaryDirectory(dir=jpg_dir.parent) as tmp:
            for m in _safe_members(tar):
                if not m.name.lower().endswith(".jpg"):
                    continue
                src = tar.extractfile(m)
                if src is None:
                    continue
                tmp_file = Path(tmp) / Path(m.name).name
                with open(tmp_file, "wb") as fh:
                    shutil.copyfileobj(src, fh)
                os.replace(tmp_file, jpg_dir / Path(m.name).name)
                n += 1
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ClassicPRError(f"archive {archive} is corrupt ({exc.__class__.__name__}: {exc}); "
                             "delete it and download again") from None
    return n


def check_images(jpg_dir: Path, names: Sequence[str], decode: bool = True) -> Dict[str, List[str]]:
    """Images of ``names`` (no extension) that are missing from, or do not decode in, ``jpg_dir``."""
    import cv2
    missing, corrupt = [], []
    for n in names:
        p = jpg_dir / f"{n}.jpg"
        if not p.is_file():
            missing.append(n)
        elif decode and cv2.imread(str(p), cv2.IMREAD_REDUCED_GRAYSCALE_8) is None:
            corrupt.append(n)
    return {"missing": missing, "corrupt": corrupt}


def download_dataset(name: str, root: PathLike, mirror: Optional[str] = None,
                     source: Optional[DatasetSource] = None, progress: bool = True,
                     keep_archives: bool = False) -> Dict[str, List[str]]:
    """Fetch a data set's ground truth and images into ``root`` (revisitop layout).

    Returns the completeness report {'missing': [...], 'corrupt': [...]}.
    """
    src = source or SOURCES.get(name)
    if src is None:
        raise ClassicPRError(f"unknown data set {name!r}; choose from {sorted(SOURCES)}")
    root = Path(root)
    data_dir = root / "revisitop" / "data" / name
    jpg_dir = data_dir / "jpg"
    done_marker = data_dir / ".classicpr-complete"
    if done_marker.is_file():
        log.info("%s is complete in %s; nothing to do", name, data_dir)
        return {"missing": [], "corrupt": []}
    names: Optional[List[str]] = None
    if src.gnd_url:
        gnd_path = fetch(src.gnd_url, data_dir / f"gnd_{name}.pkl", src.gnd_sha256, progress)
        from .datasets import load_revisitop
        ds = load_revisitop(root, name)
        names = list(ds.imlist) + list(ds.qimlist)
        log.info("ground truth %s verified", gnd_path)
    else:
        txt = fetch(f"{src.image_base.rstrip('/')}/{name}.txt", data_dir / f"{name}.txt", None, progress)
        names = [Path(line.strip()).stem for line in txt.read_text().splitlines() if line.strip()]
    if names and not check_images(jpg_dir, names, decode=False)["missing"]:
        archives_needed = []
    else:
        archives_needed = list(src.archives)
    base = (mirror or src.image_base).rstrip("/")
    for arch in archives_needed:
        path = fetch(f"{base}/{arch}", root / ".downloads" / arch, None, progress)
        n = extract_images(path, jpg_dir)
        log.info("%s: %d images extracted", arch, n)
        if not keep_archives:
            path.unlink()
    report = check_images(jpg_dir, names)
    if not report["missing"] and not report["corrupt"]:
        with atomic_write(done_marker, "w") as fh:
            fh.write(f"{len(names)} images\n")
    return report


def unpack_labels(rar_path: PathLike, root: PathLike) -> Path:
    """Unpack the PROxford/PRParis label archive (pixel_retrieval_benchmarks.rar) into ``root``.

    Needs the ``rarfile`` package and an unrar tool (``unrar``, ``unar`` or ``bsdtar``);
    without them, raises an error that spells out the manual steps.
    """
    rar_path, root = Path(rar_path), Path(root)
    manual = (f"unpack it by hand: install unrar (e.g. `apt-get install unrar-free` or "
              f"`brew install rar`), run `unrar x {rar_path} {root}/`, and check that "
              f"{root}/oxford_pair2labelpath.npy and {root}/paris_pair2labelpath.npy exist; "
              f"the archive is linked from {LABELS_PAGE}")
    if not rar_path.is_file():
        raise ClassicPRError(f"label archive not found: {rar_path}; download it from {LABELS_PAGE}")
    try:
        import rarfile
    except ImportError:
        raise ClassicPRError("the rarfile package is not installed (pip install rarfile); or "
                             + manual) from None
    try:
        with rarfile.RarFile(str(rar_path)) as rf:
            for m in rf.infolist():
                p = Path(m.filename)
                if p.is_absolute() or ".." in p.parts:
                    raise ClassicPRError(f"{rar_path}: unsafe member {m.filename}")
            rf.extractall(str(root))
    except (rarfile.Error, OSError) as exc:
        raise ClassicPRError(f"cannot unpack {rar_path} ({exc}); " + manual) from None
    return root
