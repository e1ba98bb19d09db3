"""Local features: SIFT detection (OpenCV) and RootSIFT, plus an on-disk feature store.

Conventions: keypoints are ``(N, 4)`` float32 arrays of ``x, y, scale, orientation`` in the
pixels of the *original* image (x right, y down; scale = OpenCV keypoint size in original
pixels; orientation in degrees, OpenCV's convention). Descriptors are ``(N, 128)`` uint8 SIFT
descriptors; :func:`rootsift` turns them into float32 RootSIFT.

Images are downscaled so that their long side is at most ``max_side`` before detection (the
benchmark paper and most SIFT pipelines work at about 1024 px), which bounds both time and
the number of features.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .config import FeatureConfig
from .errors import ClassicPRError, ImageReadError
from .io import (PathLike, as_bgr, downscale, load_arrays, read_image_and_size,
                 read_npy_header, save_arrays, write_json)
from .parallel import run_parallel

log = logging.getLogger("classicpr")

FEATURES_KIND = "classicpr.features"
FEATURES_VERSION = 1


def rootsift(descriptors: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """RootSIFT (Arandjelovic & Zisserman 2012): L1-normalise, square root, L2-normalise.

    Parameters
    ----------
    descriptors : (N, D) array
        Non-negative SIFT descriptors (uint8 or float).
    eps : float
        Guards the division for all-zero descriptors.

    Returns
    -------
    (N, D) float32 array with unit L2 norm rows (all-zero rows stay zero).
    """
    d = np.array(descriptors, dtype=np.float32)  # a copy, modified in place below
    if d.ndim != 2:
        raise ValueError(f"descriptors must be a 2-D (N, D) array, got shape {d.shape}")
    np.abs(d, out=d)
    d /= d.sum(axis=1, keepdims=True) + eps
    np.sqrt(d, out=d)
    d /= np.sqrt(np.einsum("ij,ij->i", d, d))[:, None] + eps
    return d


def detect_sift(gray: np.ndarray, config: FeatureConfig = FeatureConfig(),
                scale: float = 1.0, mask: Optional[np.ndarray] = None
                ) -> Tuple[np.ndarray, np.ndarray]:
    """Detect SIFT keypoints and descriptors on an 8-bit grayscale image.

    Parameters
    ----------
    gray : (H, W) uint8 array
        Image, already downscaled by ``scale`` relative to the original.
    config : FeatureConfig
    scale : float
        Pixels of ``gray`` per original pixel; keypoints are returned in original pixels.
    mask : (H, W) uint8 array, optional
        Detect only where it is non-zero (e.g. the valid part of a warped view).

    Returns
    -------
    keypoints : (N, 4) float32 array of x, y, scale, orientation
    descriptors : (N, 128) uint8 array
    """
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"detect_sift needs a (H, W) uint8 image, got {gray.shape} {gray.dtype}")
    empty = np.zeros((0, 4), np.float32), np.zeros((0, 128), np.uint8)
    if min(gray.shape) < 16:  # too small for one octave: no keypoints, not an error
        return empty
    # OpenCV's defaults for the other parameters (3 layers, edge 10, sigma 1.6); CV_8U makes
    # OpenCV round and saturate the descriptors itself (the same values as rounding its
    # float output), sparing a float copy per image
    sift = cv2.SIFT_create(config.max_features, 3, config.contrast_threshold, 10, 1.6, cv2.CV_8U)
    kps, desc = sift.detectAndCompute(gray, mask)
    if desc is None or len(kps) == 0:
        return empty
    geom = np.empty((len(kps), 4), np.float32)
    geom[:, :2] = cv2.KeyPoint_convert(kps)  # in C++; 3x faster than reading k.pt in Python
    geom[:, 2] = [k.size for k in kps]
    geom[:, 3] = [k.angle for k in kps]
    if config.max_features and len(geom) > config.max_features:
        # OpenCV keeps ties at the cut; trim to the exact budget by response
        resp = np.array([k.response for k in kps])
        keep = np.sort(np.argsort(-resp, kind="stable")[: config.max_features])
        geom, desc = geom[keep], desc[keep]
    geom[:, :3] /= scale
    # Pixel-centre convention: OpenCV's pt is (x, y) with (0, 0) the centre of the first pixel;
    # a resize by `scale` maps centres as (x + 0.5) / scale - 0.5.
    geom[:, :2] += 0.5 / scale - 0.5
    return geom, np.ascontiguousarray(desc, dtype=np.uint8)


def read_gray(image: PathLike | np.ndarray, max_side: int
                     ) -> Tuple[np.ndarray, float, Tuple[int, int]]:
    """An image (file, or (H, W[, 3]) uint8 BGR array) as grayscale at feature resolution.

    Returns
    -------
    gray : (h, w) uint8 array
    scale : float
        Pixels of ``gray`` per original pixel.
    size : (width, height) of the original image.
    """
    if isinstance(image, np.ndarray):
        colour = as_bgr(image, "the image array")  # checked: uint8, 1, 3 or 4 channels
        gray = image if image.ndim == 2 else cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)
        size = (gray.shape[1], gray.shape[0])
        gray, scale = downscale(gray, max_side)
    else:
        gray, scale, size = read_image_and_size(image, gray=True, max_side=max_side)
    return gray, scale, size


def extract_image(path: PathLike | np.ndarray, config: FeatureConfig = FeatureConfig()
                  ) -> Tuple[np.ndarray, np.ndarray, Tuple[int, int]]:
    """Read one image (or take a (H, W[, 3]) uint8 BGR array) and extract its SIFT features.

    Returns
    -------
    keypoints : (N, 4) float32, descriptors : (N, 128) uint8, size : (width, height) of the
    original image.

    Raises
    ------
    ImageReadError
        If the image cannot be read.
    """
    gray, scale, size = read_gray(path, config.max_side)
    kps, desc = detect_sift(gray, config, scale)
    return kps, desc, size


class FeatureStore:
    """A folder of per-image feature files, ``<root>/<image name>.npz``, written atomically.

    A second extraction over the same images skips those already stored (resume). The
    folder's ``config.json`` records the :class:`FeatureConfig`; opening it with another
    config is refused rather than silently mixing features of two configs.
    """

    def __init__(self, root: PathLike, config: FeatureConfig = FeatureConfig()):
        self.root = Path(root)
        self.config = config
        cfg_path = self.root / "config.json"
        wanted = dataclasses.asdict(config)
        if cfg_path.is_file():
            try:
                found = json.loads(cfg_path.read_text())
            except (OSError, json.JSONDecodeError):
                found = None
            if found != wanted:
                raise ClassicPRError(
                    f"feature store {self.root} was made with config {found}, not {wanted}; "
                    "use another folder or delete it")
        else:
            write_json(cfg_path, wanted)

    def path(self, name: str) -> Path:
        return self.root / (name + ".npz")

    def has(self, name: str) -> bool:
        return self.path(name).is_file()

    def save(self, name: str, keypoints: np.ndarray, descriptors: np.ndarray,
             size: Tuple[int, int]) -> None:
        save_arrays(self.path(name), FEATURES_KIND, FEATURES_VERSION,
                    {"keypoints": keypoints, "descriptors": descriptors,
                     "size": np.asarray(size, np.int64)},
                    meta={"image": name})

    def count(self, name: str) -> int:
        """Number of features stored for an image (reads only the header of the file)."""
        import zipfile
        try:
            with zipfile.ZipFile(self.path(name)) as z, z.open("keypoints.npy") as fh:
                shape = read_npy_header(fh)[0]
            return int(shape[0])
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            return 0

    def load(self, name: str) -> Tuple[np.ndarray, np.ndarray, Tuple[int, int]]:
        """Keypoints (N, 4) float32, descriptors (N, 128) uint8 and (width, height).

        A file that is missing or fails its checks raises the error of
        :func:`classicpr.io.load_arrays`, saying how to repair it (a build of the index
        extracts missing files again)."""
        try:
            arrays, _ = load_arrays(self.path(name), FEATURES_KIND, FEATURES_VERSION)
        except ClassicPRError as exc:
            raise type(exc)(f"{exc}; delete it and run classicpr index (or evaluate) again, "
                            "which extracts the missing features of indexed images") from None
        return arrays["keypoints"], arrays["descriptors"], tuple(int(v) for v in arrays["size"])


def _extract_to_store(args) -> Tuple[str, Optional[int], Optional[str]]:
    name, path, store = args
    try:
        kps, desc, size = extract_image(path, store.config)
    except ImageReadError as exc:
        return name, None, str(exc)
    store.save(name, kps, desc, size)
    return name, len(kps), None


def extract_to_store(image_dir: PathLike, names: Sequence[str], store: FeatureStore,
                     n_jobs: Optional[int] = None, progress: bool = True
                     ) -> Tuple[List[str], List[Tuple[str, str]]]:
    """Extract features of ``image_dir/name`` for every name into ``store``, in parallel.

    Images already in the store (same config) are skipped, so an interrupted run resumes.
    Unreadable images are logged and reported, never raised.

    Returns
    -------
    done : list of str
        Names whose features are in the store after this call, in input order.
    skipped : list of (name, reason)
    """
    image_dir = Path(image_dir)
    todo = [n for n in names if not store.has(n)]
    if len(todo) < len(names):
        log.info("feature store %s: %d of %d images already done", store.root,
                 len(names) - len(todo), len(names))
    failed = {}
    jobs = [(n, image_dir / n, store) for n in todo]
    for name, count, err in run_parallel(_extract_to_store, jobs, n_jobs, desc="features",
                                         progress=progress, ordered=False):
        if err is not None:
            log.warning("skipping %s: %s", name, err)
            failed[name] = err
    done = [n for n in names if n not in failed]
    return done, sorted(failed.items())
