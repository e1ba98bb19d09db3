"""Low-level I/O: image reading, atomic writes, checksummed array containers.

Every file classicpr writes goes through :func:`atomic_write` (temporary file in the
same folder, fsync, rename), so a killed process never leaves a half-written file under
its final name. Arrays are stored with :func:`save_arrays` / :func:`array_writer`: a plain
uncompressed ``.npz`` (no pickle) holding a JSON header with a kind, a format version and a
SHA-256 per array; large files are written from chunks and read memory-mapped.
"""
from __future__ import annotations

import contextlib
import hashlib
import io as _io
import json
import logging
import os
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Dict, Iterable, Iterator, Mapping, Optional, Tuple, Union

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
    """(width, height) after EXIF orientation, from the file header only (Pillow, lazy).

    Pillow's decompression-bomb limit (89 Mpx warns, 179 Mpx refuses) guards decoding,
    which Pillow does not do here: the size of a file that large is what lets OpenCV decode
    it at reduced resolution, so the check is off while the header is read."""
    try:
        from PIL import Image
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                with Image.open(str(path)) as im:
                    w, h = im.size
                    orientation = im.getexif().get(0x0112, 1)
            finally:
                Image.MAX_IMAGE_PIXELS = limit
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
    """Read an image as 8-bit, respecting its EXIF orientation, optionally downscaled
    (:func:`read_image_and_size` without the size)."""
    image, scale, _ = read_image_and_size(path, gray, max_side)
    return image, scale


def read_image_and_size(path: PathLike, gray: bool = True, max_side: int | None = None
                        ) -> Tuple[np.ndarray, float, Tuple[int, int]]:
    """Read an image as 8-bit, respecting its EXIF orientation, optionally downscaled, and
    its size in original pixels.

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
    size : (width, height)
        The original image's, after EXIF orientation: the decoded image's before any
        downscaling, or the header's where the file was decoded reduced (not
        ``image.shape / scale``, which rounding can put pixels off).

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
    size = (image.shape[1], image.shape[0])
    if reduce > 1 and full_w > 0:
        scale = image.shape[1] / full_w
        size = (full_w, full_h)
    if max_side is not None:
        image, f = downscale(image, max_side)
        scale *= f
    return image, scale, size


def as_bgr(image: np.ndarray, what: str = "image") -> np.ndarray:
    """An image array as OpenCV's colour layout, checked.

    Parameters
    ----------
    image : (H, W), (H, W, 1), (H, W, 3) BGR or (H, W, 4) BGRA uint8 array
    what : str
        What the array is, for the error message.

    Returns
    -------
    (H, W, 3) uint8 BGR array (the input itself when it already is one).

    Raises
    ------
    ImageReadError
        For another dtype or shape, or an empty array.
    """
    a = np.asarray(image)
    if (a.dtype != np.uint8 or a.ndim not in (2, 3) or a.size == 0
            or (a.ndim == 3 and a.shape[2] not in (1, 3, 4))):
        raise ImageReadError(f"{what} must be a non-empty (H, W) or (H, W, 3) uint8 BGR array, "
                             f"got {a.dtype} {a.shape}")
    if a.ndim == 2 or a.shape[2] == 1:
        return cv2.cvtColor(a.reshape(a.shape[:2]), cv2.COLOR_GRAY2BGR)
    if a.shape[2] == 4:
        return cv2.cvtColor(a, cv2.COLOR_BGRA2BGR)
    return a


def read_image_at_size(path: PathLike, size: Optional[Tuple[int, int]] = None,
                       gray: bool = False) -> np.ndarray:
    """An image in the frame of its original pixels, which masks and regions use.

    Parameters
    ----------
    path : path-like
    size : (width, height), optional
        The image's original size (e.g. ``Index.image_size``); default: the file's own
        (:func:`read_image_and_size`).
    gray : bool

    Returns
    -------
    (height, width[, 3]) uint8 array: the image as :func:`read_image` decodes it, resized
    to ``size`` where it was decoded reduced (a file above ``MAX_DECODE_PIXELS``).
    """
    image, _, original = read_image_and_size(path, gray=gray)
    size = original if size is None else (int(size[0]), int(size[1]))
    if (image.shape[1], image.shape[0]) != size:
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    return image


def resize_by(image: np.ndarray, f: float, interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    """``image`` resized by the factor ``f`` as ``cv2.resize(image, None, fx=f, fy=f)``
    does, except that a side rounding to 0 pixels (a strip a few pixels thin) becomes 1
    instead of failing inside OpenCV.

    Parameters
    ----------
    image : (H, W[, C]) array
    f : float
        Output pixels per input pixel.
    interpolation : int
        OpenCV interpolation flag.

    Returns
    -------
    (h, w[, C]) array, h = max(1, round(H * f)), w = max(1, round(W * f)).
    """
    h, w = image.shape[:2]
    size = (int(np.rint(w * f)), int(np.rint(h * f)))
    if min(size) >= 1:
        return cv2.resize(image, None, fx=f, fy=f, interpolation=interpolation)
    return cv2.resize(image, (max(1, size[0]), max(1, size[1])), interpolation=interpolation)


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


def _data_bytes(a: np.ndarray) -> memoryview:
    """The raw C-order bytes of ``a`` without a copy when it is contiguous."""
    return memoryview(np.ascontiguousarray(a).reshape(-1).view(np.uint8))


class ArrayWriter:
    """Stream named arrays into a checksummed, versioned ``.npz``, one array at a time.

    The container is a plain uncompressed ``.npz`` (``np.load`` reads it) whose
    ``__header__`` member holds JSON: kind, format version, metadata and, per array, its
    dtype, shape and the SHA-256 of its data. Arrays can be written from chunks
    (:meth:`add_chunks`), so a file larger than memory is written with bounded memory, and
    being uncompressed it can be memory-mapped by :func:`load_arrays`. Use through
    :func:`array_writer`, which writes atomically.
    """

    def __init__(self, zf: zipfile.ZipFile):
        self._zip = zf
        self.entries: Dict[str, dict] = {}

    def add(self, name: str, array: np.ndarray) -> None:
        """Write one whole array."""
        array = np.asarray(array)
        self.add_chunks(name, array.dtype, array.shape, [array])

    def add_chunks(self, name: str, dtype, shape: Tuple[int, ...], chunks: Iterable[np.ndarray]
                   ) -> None:
        """Write an array of ``shape`` from consecutive C-order chunks along axis 0.

        Raises
        ------
        ValueError
            The chunks do not add up to ``shape`` or have another dtype.
        """
        dtype, shape = np.dtype(dtype), tuple(int(v) for v in shape)
        if dtype == object:
            raise TypeError(f"array {name!r} has dtype object; classicpr files never hold pickles")
        if name in self.entries or name == "__header__":
            raise ValueError(f"array {name!r} written twice or reserved")
        h = hashlib.sha256()
        written, expected = 0, int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        with self._zip.open(name + ".npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array_header_1_0(
                fh, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                     "shape": shape})
            for chunk in chunks:
                chunk = np.asarray(chunk)
                if chunk.dtype != dtype:
                    raise ValueError(f"array {name!r}: chunk of dtype {chunk.dtype}, not {dtype}")
                data = _data_bytes(chunk)
                h.update(data)
                fh.write(data)
                written += data.nbytes
        if written != expected:
            raise ValueError(f"array {name!r}: chunks hold {written} bytes, shape {shape} "
                             f"needs {expected}")
        self.entries[name] = {"dtype": np.lib.format.dtype_to_descr(dtype), "shape": list(shape),
                              "sha256": h.hexdigest()}


@contextlib.contextmanager
def array_writer(path: PathLike, kind: str, version: int, meta: Mapping | None = None
                 ) -> Iterator[ArrayWriter]:
    """Context manager yielding an :class:`ArrayWriter` on ``path`` (atomic: the file
    appears under its name only when the block completes).

    Parameters
    ----------
    path : path-like
    kind : str
        What the file holds (e.g. ``"classicpr.index"``); checked on load.
    version : int
        Format version; a loader refuses versions newer than it knows.
    meta : mapping, optional
        JSON-serialisable metadata stored beside the arrays.
    """
    with atomic_write(path) as fh:
        with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            writer = ArrayWriter(zf)
            yield writer
            header = {"kind": kind, "version": int(version), "arrays": writer.entries,
                      "meta": dict(meta or {})}
            zf.writestr("__header__.npy", _npy_bytes(
                np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)))


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = _io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=False)
    return buf.getvalue()


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
    with array_writer(path, kind, version, meta) as w:  # the writer refuses object arrays
        for k, v in arrays.items():
            w.add(k, v)


#: Bytes read at a time when checking the digest of a memory-mapped array.
_HASH_BLOCK = 1 << 24


def read_npy_header(fh) -> Tuple[Tuple[int, ...], bool, np.dtype]:
    """Read a ``.npy`` header from a file object positioned at its start.

    Returns
    -------
    shape, fortran_order, dtype; the file is left at the start of the data.
    """
    version = np.lib.format.read_magic(fh)
    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                   else np.lib.format.read_array_header_2_0)
    return read_header(fh)


def _member_data_offset(fh, info: zipfile.ZipInfo) -> int:
    """File offset of a stored zip member's data (after its local header)."""
    fh.seek(info.header_offset)
    local = fh.read(30)
    if len(local) != 30 or local[:4] != b"PK\x03\x04":
        raise CorruptFileError("bad zip local header")
    name_len, extra_len = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
    return info.header_offset + 30 + name_len + extra_len


def _mapped_array(path: Path, info: zipfile.ZipInfo, entry: dict, verify: bool) -> np.ndarray:
    """Memory-map one stored ``.npy`` member (after checking its digest by streaming it)."""
    if info.compress_type != zipfile.ZIP_STORED:
        raise CorruptFileError(f"{path}: member {info.filename} is compressed; cannot map it")
    with open(path, "rb") as fh:
        start = _member_data_offset(fh, info)
        fh.seek(start)
        shape, fortran, dtype = read_npy_header(fh)
        data_start = fh.tell()
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        h, left = hashlib.sha256(), nbytes if verify else 0
        while left > 0:  # read (not mapped) so checking does not make the pages resident
            block = fh.read(min(left, _HASH_BLOCK))
            if not block:
                raise CorruptFileError(f"{path}: member {info.filename} is truncated")
            h.update(block)
            left -= len(block)
    if fortran or (verify and h.hexdigest() != entry.get("sha256")):
        raise CorruptFileError(f"{path}: checksum mismatch, the file is corrupt")
    if nbytes == 0:
        return np.zeros(shape, dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=data_start, shape=tuple(shape))


def load_arrays(path: PathLike, kind: str, max_version: int, mmap: bool = False,
                verify: bool = True) -> Tuple[Dict[str, np.ndarray], dict]:
    """Load a file written by :func:`save_arrays` / :func:`array_writer`, checking kind,
    version and checksums.

    Parameters
    ----------
    path : path-like
    kind : str
        Expected kind.
    max_version : int
        Newest format version the caller understands.
    mmap : bool
        Memory-map the arrays (read-only) instead of reading them: only the pages a caller
        touches become resident. Digests are still checked, by streaming the file.
    verify : bool
        Check the digests of memory-mapped arrays (only a caller that checked this very
        file moments ago should pass False).

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
        with zipfile.ZipFile(path) as zf:
            infos = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}
            if "__header__" not in infos:
                raise CorruptFileError(f"{path} is not a classicpr file (no header)")
            with zf.open(infos.pop("__header__")) as fh:
                raw = np.lib.format.read_array(fh, allow_pickle=False)
            try:
                header = json.loads(raw.tobytes().decode())
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise CorruptFileError(f"{path}: header is corrupt") from None
            if header.get("kind") != kind:
                raise CorruptFileError(f"{path} holds {header.get('kind')!r}, expected {kind!r}")
            if int(header.get("version", -1)) > max_version:
                raise CorruptFileError(
                    f"{path} has format version {header.get('version')}, newer than this "
                    f"classicpr understands ({max_version}); upgrade classicpr")
            entries = header.get("arrays")
            if entries is None:
                raise CorruptFileError(f"{path} was written by an older classicpr (no per-array "
                                       "digests): rebuild it")
            if set(entries) != set(infos):
                raise CorruptFileError(f"{path}: arrays do not match its header, the file is corrupt")
            arrays = {}
            for name, info in infos.items():
                if mmap:
                    arrays[name] = _mapped_array(path, info, entries[name], verify)
                else:
                    with zf.open(info) as fh:
                        a = np.lib.format.read_array(fh, allow_pickle=False)
                    if hashlib.sha256(_data_bytes(a)).hexdigest() != entries[name].get("sha256"):
                        raise CorruptFileError(f"{path}: checksum mismatch, the file is corrupt")
                    arrays[name] = a
                if (list(arrays[name].shape) != entries[name].get("shape")
                        or np.lib.format.dtype_to_descr(arrays[name].dtype) != entries[name].get("dtype")):
                    raise CorruptFileError(f"{path}: array {name} does not match its header")
    except CorruptFileError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ValueError, CRC errors, EOFError ...
        raise CorruptFileError(
            f"{path} is not a readable classicpr {kind} file ({exc.__class__.__name__}: {exc})"
        ) from None
    return arrays, header.get("meta", {})


class LazyMappedArrays(Mapping):
    """The arrays of an uncompressed container, each memory-mapped only when asked for.

    The container is opened and its header checked once; afterwards every ``self[name]``
    maps just that array (an open and an mmap, ~10x cheaper than re-reading the zip
    directory and header) and no file handle or mapping is held in between. For readers
    that return to many files many times, such as the postings merge of a million-image
    build (thousands of parts, each read once per word block).

    Parameters
    ----------
    path : path-like
    kind : str
    max_version : int
    verify : bool
        Check the arrays' digests once, on opening.

    The metadata is not kept (thousands of parts each list their image names); read it with
    :func:`load_arrays`.
    """

    def __init__(self, path: PathLike, kind: str, max_version: int, verify: bool = True):
        self.path = Path(path)
        arrays, _ = load_arrays(self.path, kind, max_version, mmap=True, verify=verify)
        # (offset, dtype, shape) of mapped arrays; empty arrays are kept as they are
        self._layout = {name: ((a.offset, a.dtype, a.shape) if isinstance(a, np.memmap)
                               else np.asarray(a)) for name, a in arrays.items()}

    def __getitem__(self, name: str) -> np.ndarray:
        entry = self._layout[name]
        if isinstance(entry, np.ndarray):
            return entry
        offset, dtype, shape = entry
        return np.memmap(self.path, dtype=dtype, mode="r", offset=offset, shape=shape)

    def __iter__(self) -> Iterator[str]:
        return iter(self._layout)

    def __len__(self) -> int:
        return len(self._layout)
