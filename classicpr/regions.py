"""Boxes, polygons and masks: validation, projection, clipping, rasterising, IoU.

Coordinates are (x, y) pixels, x to the right, y down; the centre of the top-left pixel is
(0, 0). A box is ``(x1, y1, x2, y2)``; a polygon is an ``(K, 2)`` array of x, y vertices;
a mask is an ``(H, W)`` bool or uint8 array.
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence, Tuple

import cv2
import numpy as np

from .errors import ClassicPRError

#: Fractional bits used when rasterising polygons with OpenCV (1/16 px vertex precision).
_SHIFT = 4


def parse_box(text: str) -> np.ndarray:
    """Parse ``"x1,y1,x2,y2"`` from the command line into a float array (ClassicPRError if bad)."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 4:
        raise ClassicPRError(f"--box needs four numbers x1,y1,x2,y2, got {text!r}")
    try:
        vals = np.array([float(p) for p in parts])
    except ValueError:
        raise ClassicPRError(f"--box needs four numbers x1,y1,x2,y2, got {text!r}") from None
    return vals


def validate_box(box, size: Tuple[int, int]) -> np.ndarray:
    """Check a query box against an image of ``size = (width, height)`` and clip it.

    Returns
    -------
    (4,) float64 array x1, y1, x2, y2 inside the image.

    Raises
    ------
    ClassicPRError
        Not four finite numbers, inverted (x2 <= x1 or y2 <= y1), or no overlap with the image.
    """
    try:
        b = np.asarray(box, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ClassicPRError(f"box must be four numbers x1, y1, x2, y2, got {box!r}") from None
    if b.shape != (4,) or not np.all(np.isfinite(b)):
        raise ClassicPRError(f"box must be four finite numbers x1, y1, x2, y2, got {box!r}")
    x1, y1, x2, y2 = b
    if x2 <= x1 or y2 <= y1:
        raise ClassicPRError(f"box {b.tolist()} is inverted or has zero area (need x1 < x2, y1 < y2)")
    w, h = size
    c = np.array([max(x1, 0.0), max(y1, 0.0), min(x2, w - 1.0), min(y2, h - 1.0)])
    if c[2] <= c[0] or c[3] <= c[1]:
        raise ClassicPRError(f"box {b.tolist()} lies outside the {w}x{h} image")
    return c


def box_corners(box: Sequence[float]) -> np.ndarray:
    """The four corners of a box as a (4, 2) polygon, clockwise from top-left."""
    x1, y1, x2, y2 = box
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float64)


def project_points(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 3x3 homography to (N, 2) points; returns (N, 2) float64."""
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    ph = np.c_[pts, np.ones(len(pts))] @ np.asarray(H, np.float64).T
    with np.errstate(divide="ignore", invalid="ignore"):
        return ph[:, :2] / ph[:, 2:3]


def corner_error(quad: np.ndarray, label: np.ndarray, size: Tuple[int, int]) -> Optional[float]:
    """Pixel error of a projected box against a label that is the same box projected by a
    reference homography and clipped to the image.

    Parameters
    ----------
    quad : (4, 2) array
        The predicted corners (x, y).
    label : (K, 2) array
        The label polygon (clipped to the image, so corners may be cut off).
    size : (width, height)

    Returns
    -------
    The largest distance from a predicted corner inside the image to its nearest label
    vertex, or None when no corner falls inside the image.
    """
    w, h = size
    inside = (quad[:, 0] >= 0) & (quad[:, 0] <= w - 1) & (quad[:, 1] >= 0) & (quad[:, 1] <= h - 1)
    if not inside.any():
        return None
    return float(np.linalg.norm(quad[inside, None, :] - label[None, :, :], axis=2).min(axis=1).max())


def polygon_area(poly: np.ndarray) -> float:
    """Signed area (shoelace) of a (K, 2) polygon; positive when clockwise in image axes."""
    p = np.asarray(poly, np.float64)
    if len(p) < 3:
        return 0.0
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def is_simple_quad(quad: np.ndarray) -> bool:
    """True if a (4, 2) quadrilateral does not self-intersect and is convex."""
    q = np.asarray(quad, np.float64)
    if q.shape != (4, 2) or not np.all(np.isfinite(q)):
        return False
    cross = []
    for i in range(4):
        a, b, c = q[i], q[(i + 1) % 4], q[(i + 2) % 4]
        cross.append((b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0]))
    cross = np.array(cross)
    return bool(np.all(cross > 0) or np.all(cross < 0))


def rasterize_polygons(polygons: Iterable[np.ndarray], size: Tuple[int, int]) -> np.ndarray:
    """Fill polygons (union) into a mask of ``size = (width, height)``, clipped to the image.

    A pixel is inside when its centre is inside a polygon (OpenCV's fill rule, with 1/16 px
    vertex precision).

    Returns
    -------
    (H, W) bool array.
    """
    w, h = int(size[0]), int(size[1])
    mask = np.zeros((h, w), np.uint8)
    pts = []
    for p in polygons:
        p = np.asarray(p, np.float64).reshape(-1, 2)
        if len(p) < 3 or not np.all(np.isfinite(p)):
            continue
        # keep far-away vertices within int32 range after the shift; the image is unaffected
        lim = 4 * max(w, h) + 16
        p = np.clip(p, -lim, lim)
        pts.append(np.rint(p * (1 << _SHIFT)).astype(np.int32))
    if pts:
        cv2.fillPoly(mask, pts, 1, lineType=cv2.LINE_8, shift=_SHIFT)
    return mask.astype(bool)


def mask_bbox(mask: np.ndarray) -> Optional[Tuple[int, int, int, int]]:
    """Inclusive pixel bounding box (x1, y1, x2, y2) of a mask, or None if empty."""
    ys = np.flatnonzero(mask.any(axis=1))
    if len(ys) == 0:
        return None
    xs = np.flatnonzero(mask.any(axis=0))
    return int(xs[0]), int(ys[0]), int(xs[-1]), int(ys[-1])


def box_iou(a: Optional[Tuple[int, int, int, int]], b: Optional[Tuple[int, int, int, int]]) -> float:
    """IoU of two inclusive pixel boxes (0 if either is None)."""
    if a is None or b is None:
        return 0.0
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    inter = max(iw, 0) * max(ih, 0)
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two equal-size masks (0 when both are empty)."""
    a, b = a.astype(bool), b.astype(bool)
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {a.shape} vs {b.shape}")
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 0.0
