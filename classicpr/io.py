"""Low-level I/O: image reading, atomic writes, checksummed array containers.

Every file classicpr writes goes through :func:`atomic_write` (temporary file in the
same folder, fsync, rename), so a killed process never leaves a half-written file under
its final name. Arrays are stored with :func:`save_arrays`: a plain ``.npz`` (no pickle)
holding a JSON header with a kind, a format version and a SHA-256 of the arrays.
"""
from __future__ import annotations

import contextlib
import hashlib
import io as _io
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Dict, Iterator, Mapping, Tuple, Union

import cv2
import numpy as np

from .errors import CorruptFileError, ImageReadError

log = logging.getLogger("classicpr")

PathLike = Union[str, os.PathLike]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

#: Decoded images larger than this many pixels are read at reduced resolution by OpenCV's
#: IMREAD_REDUCED_* flags, bounding memory for gigapixel files.
MAX_DECODE_PIXELS = 64_000_000


def list_images(folder: PathLike) -> list:
    """Sorted image file names (relative to ``folder``, recursive) with a known image extension."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageReadError(f"image folder not found: {folder}")
    names = [
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    ]
    return sorted(names)


def _header_size(path: Path) -> Tuple[int, int]:
    """(width, height) after EXIF orientation, from the file header only (Pillow, lazy)."""
    try:
        from PIL import Image
        with Image.open(str(path)) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except Exception:
        return 0, 0
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


_REDUCED = {
    (True, 2): cv2.IMREAD_REDUCED_GRAYSCALE_2, (True, 4): cv2.IMREAD_REDUCED_GRAYSCALE_4,
    (True, 8): cv2.IMREAD_REDUCED_GRAYSCALE_8, (False, 2): cv2.IMREAD_REDUCED_COLOR_2,
    (False, 4): cv2.IMREAD_REDUCED_COLOR_4, (False, 8): cv2.IMREAD_REDUCED_COLOR_8,
}


def read_image(path: PathLike, gray: bool = True, max_side: int | None = None
               ) -> Tuple[np.ndarray, float]:
    """Read an image as 8-bit, respecting its EXIF orientation, optionally downscaled.

    Parameters
    ----------
    path : path-like
        Image file.
    gray : bool
        Return a grayscale ``(H, W)`` array if True, else BGR ``(H, W, 3)``.
    max_side : int, optional
        If given, the image is resized (INTER_AREA) so that its long side is at most this.
        Very large files are decoded at reduced resolution directly, so memory stays bounded.

    Returns
    -------
    image : (H, W) or (H, W, 3) uint8 array
        16-bit images are scaled to 8 bit, alpha is dropped, palette images are expanded.
    scale : float
        ``image`` pixels per original pixel (1.0 when not resized). Original coordinates are
        ``image coordinates / scale``.

    Raises
    ------
    ImageReadError
        When the file is missing, empty, not an image or truncated beyond decoding.
    """
    path = Path(path)
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise ImageReadError(f"cannot read image {path}: {exc.__class__.__name__}") from None
    if data.size == 0:
        raise ImageReadError(f"cannot read image {path}: empty file")
    full_w, full_h = _header_size(path)
    reduce = 1
    limit = MAX_DECODE_PIXELS if max_side is None else max(4 * max_side * max_side, 1)
    while full_w * full_h / (reduce * reduce) > limit and reduce < 8:
        reduce *= 2
    # full-size decodes keep 16-bit depth so that it can be scaled by the image's own range
    flags = _REDUCED[(gray, reduce)] if reduce > 1 else (
        (cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR) | cv2.IMREAD_ANYDEPTH)
    try:
        image = cv2.imdecode(data, flags)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise ImageReadError(f"cannot decode image {path}: not an image, or corrupt")
    if image.dtype != np.uint8:  # 16-bit or float: stretch the image's own range to 8 bits
        hi = float(np.nanmax(image)) if image.size else 1.0
        image = cv2.convertScaleAbs(np.nan_to_num(image.astype(np.float32)),
                                    alpha=255.0 / hi if hi > 0 else 1.0)
    scale = 1.0
    if reduce > 1 and full_w > 0:
        scale = image.shape[1] / full_w
    if max_side is not None:
        image, f = downscale(image, max_side)
        scale *= f
    return image, scale


def downscale(image: np.ndarray, max_side: int) -> Tuple[np.ndarray, float]:
    """Resize (INTER_AREA) so that the long side is at most ``max_side``.

    Returns
    -------
    image : (H', W'[, C]) array (the input itself when already small enough)
    scale : float
        New pixels per input pixel (1.0 when not resized).
    """
    if max(image.shape[:2]) <= max_side:
        return image, 1.0
    f = max_side / max(image.shape[:2])
    new = (max(1, round(image.shape[1] * f)), max(1, round(image.shape[0] * f)))
    return cv2.resize(image, new, interpolation=cv2.INTER_AREA), f


def image_size(path: PathLike) -> Tuple[int, int]:
    """(width, height) of an image in pixels after EXIF orientation (header only if possible)."""
    w, h = _header_size(Path(path))
    if w > 0:
        return w, h
    img, _ = read_image(path, gray=True)
    return img.shape[1], img.shape[0]


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "wb") -> Iterator:
    """Open a temporary file next to ``path``; on success fsync and rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: PathLike, obj) -> None:
    """Write JSON atomically (indent 1, keys in insertion order)."""
    with atomic_write(path, "w") as fh:
        json.dump(obj, fh, indent=1)


def write_png(path: PathLike, image: np.ndarray) -> None:
    """Write an 8-bit image as PNG atomically."""
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"could not encode PNG for {path}")
    with atomic_write(path) as fh:
        fh.write(buf.tobytes())


def _checksum(arrays: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_arrays(path: PathLike, kind: str, version: int, arrays: Mapping[str, np.ndarray],
                meta: Mapping | None = None) -> None:
    """Save named arrays to a checksummed, versioned ``.npz`` (written atomically, no pickle).

    Parameters
    ----------
    path : path-like
        Destination file.
    kind : str
        What the file holds (e.g. ``"classicpr.vocabulary"``); checked on load.
    version : int
        Format version; a loader refuses versions newer than it knows.
    arrays : mapping of str to ndarray
        Numeric arrays (object arrays are refused).
    meta : mapping, optional
        JSON-serialisable metadata stored beside the arrays.
    """
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    for k, v in arrays.items():
        if v.dtype == object:
            raise TypeError(f"array {k!r} has dtype object; classicpr files never hold pickles")
    header = {"kind": kind, "version": int(version), "sha256": _checksum(arrays),
              "meta": dict(meta or {})}
    payload = dict(arrays)
    payload["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buf = _io.BytesIO()
    np.savez(buf, **payload)
    with atomic_write(path) as fh:
        fh.write(buf.getbuffer())


def load_arrays(path: PathLike, kind: str, max_version: int) -> Tuple[Dict[str, np.ndarray], dict]:
    """Load a file written by :func:`save_arrays`, checking kind, version and checksum.

    Returns
    -------
    arrays : dict of str to ndarray
    meta : dict

    Raises
    ------
    CorruptFileError
        Not a classicpr file of this kind, a newer format version, or a checksum mismatch
        (flipped byte, truncation).
    """
    path = Path(path)
    if not path.is_file():
        raise CorruptFileError(f"{kind} file not found: {path}")
    try:
        with np.load(str(path), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # zipfile.BadZipFile, ValueError, zlib/CRC errors, EOFError ...
        raise CorruptFileError(
            f"{path} is not a readable classicpr {kind} file ({exc.__class__.__name__}: {exc})"
        ) from None
    raw = arrays.pop("__header__", None)
    if raw is None:
        raise CorruptFileError(f"{path} is not a classicpr file (no header)")
    try:
        header = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CorruptFileError(f"{path}: header is corrupt") from None
    if header.get("kind") != kind:
        raise CorruptFileError(f"{path} holds {header.get('kind')!r}, expected {kind!r}")
    if int(header.get("version", -1)) > max_version:
        raise CorruptFileError(
            f"{path} has format version {header.get('version')}, newer than this classicpr "
            f"understands ({max_version}); upgrade classicpr")
    if _checksum(arrays) != header.get("sha256"):
        raise CorruptFileError(f"{path}: checksum mismatch, the file is corrupt")
    return arrays, header.get("meta", {})
