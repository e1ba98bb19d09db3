"""Affine view synthesis of the query box (ASIFT sampling), for extreme viewpoint changes.

SIFT is invariant to similarity transforms and tolerates a change of viewpoint up to a
transition tilt of about 2 (60 degrees). Beyond it, ASIFT (Morel and Yu 2009) simulates the
tilt: the image is seen under the affine camera ``diag(1 / t, 1) R(phi)`` (rotate by phi,
anti-alias along x with a Gaussian of sigma ``0.8 sqrt(t^2 - 1)``, compress x by t), for
tilts t and directions phi in [0, 180) spaced ``72 / t`` degrees, and SIFT runs on each view.
Only the query side is synthesised, and only its box (with a 10 % margin), so the database
index does not grow and a query pays for synthesis once, not per candidate.

Views are grouped in steps, one tilt per step, tried in order (as MODS does): a candidate
that fails plain verification is matched to the views of the first step, then the next,
until one gives an accepted model. Keypoint positions are mapped back to the query's
original pixels; scale and orientation stay in the view's frame (they are compared only
with features of the same view).
"""
from __future__ import annotations

import dataclasses
from typing import List, Sequence

import cv2
import numpy as np

from .config import FeatureConfig
from .features import detect_sift


@dataclasses.dataclass
class ViewFeatures:
    """SIFT features of the synthesised views of one tilt step.

    Attributes
    ----------
    tilt : float
    angles : (V,) float array
        Tilt direction phi of each view, degrees.
    keypoints : (N, 4) float32 array
        x, y in the query image's original pixels; scale and orientation in the view frame.
    descriptors : (N, 128) uint8 array
    view : (N,) int array
        Which view (index into ``angles``) each feature comes from.
    """

    tilt: float
    angles: np.ndarray
    keypoints: np.ndarray
    descriptors: np.ndarray
    view: np.ndarray

    def of_view(self, v: int) -> np.ndarray:
        """Indices of the features of view ``v``."""
        return np.flatnonzero(self.view == v)


def view_angles(tilt: float) -> np.ndarray:
    """ASIFT's tilt directions for ``tilt``: 0, 72/t, 144/t, ... below 180 degrees."""
    step = 72.0 / tilt
    return np.arange(0.0, 180.0 - 1e-6, step)


def synthesize_views(gray: np.ndarray, scale: float, box: Sequence[float], tilt: float,
                     config: FeatureConfig = FeatureConfig()) -> ViewFeatures:
    """SIFT features of the query box seen at ``tilt`` from every ASIFT direction.

    Parameters
    ----------
    gray : (H, W) uint8 array
        The query image at feature resolution (``scale`` pixels per original pixel).
    scale : float
    box : (4,) x1, y1, x2, y2
        Query box in original pixels; features whose back-mapped position falls outside it
        are dropped.
    tilt : float
        Absolute tilt t > 1 (t = 1 / cos(latitude)).
    config : FeatureConfig

    Returns
    -------
    ViewFeatures
    """
    x1, y1, x2, y2 = (float(v) * scale for v in box)
    mx, my = 0.1 * (x2 - x1), 0.1 * (y2 - y1)
    h, w = gray.shape
    cx1, cy1 = int(max(0, np.floor(x1 - mx))), int(max(0, np.floor(y1 - my)))
    cx2, cy2 = int(min(w, np.ceil(x2 + mx) + 1)), int(min(h, np.ceil(y2 + my) + 1))
    crop = gray[cy1:cy2, cx1:cx2]
    ch, cw = crop.shape
    angles = view_angles(tilt)
    kps_all: List[np.ndarray] = []
    desc_all: List[np.ndarray] = []
    view_all: List[np.ndarray] = []
    sigma = 0.8 * np.sqrt(tilt * tilt - 1.0)
    for v, phi in enumerate(angles):
        a = np.deg2rad(phi)
        R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        corners = np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], float) @ R.T
        off = -corners.min(0)
        rw, rh = np.ceil(corners.max(0) - corners.min(0)).astype(int)
        A1 = np.hstack([R, off[:, None]])
        rotated = cv2.warpAffine(crop, A1, (int(rw), int(rh)), flags=cv2.INTER_LINEAR)
        valid = cv2.warpAffine(np.full_like(crop, 255), A1, (int(rw), int(rh)), flags=cv2.INTER_NEAREST)
        rotated = cv2.GaussianBlur(rotated, (0, 0), sigmaX=sigma, sigmaY=0.01)
        vw = max(1, int(round(rw / tilt)))
        A2 = np.array([[1.0 / tilt, 0, 0], [0, 1.0, 0]])
        view = cv2.warpAffine(rotated, A2, (vw, int(rh)), flags=cv2.INTER_LINEAR)
        vmask = cv2.warpAffine(valid, A2, (vw, int(rh)), flags=cv2.INTER_NEAREST)
        vmask = cv2.erode(vmask, np.ones((5, 5), np.uint8))  # no keypoints on the warp's border
        kps, desc = detect_sift(view, config, 1.0, vmask)
        if len(kps) == 0:
            continue
        M = np.vstack([np.diag([1.0 / tilt, 1.0]) @ A1, [0, 0, 1]])  # crop -> view
        back = cv2.perspectiveTransform(kps[:, :2].reshape(-1, 1, 2).astype(np.float64),
                                        np.linalg.inv(M)).reshape(-1, 2)
        xy = (back + [cx1, cy1] + 0.5) / scale - 0.5
        inside = ((xy[:, 0] >= box[0]) & (xy[:, 0] <= box[2]) & (xy[:, 1] >= box[1])
                  & (xy[:, 1] <= box[3]))
        k = kps[inside].copy()
        k[:, :2] = xy[inside]
        k[:, 2] /= scale
        kps_all.append(k)
        desc_all.append(desc[inside])
        view_all.append(np.full(int(inside.sum()), v, np.int32))
    if not kps_all:
        return ViewFeatures(tilt, angles, np.zeros((0, 4), np.float32),
                            np.zeros((0, 128), np.uint8), np.zeros(0, np.int32))
    return ViewFeatures(tilt, angles, np.concatenate(kps_all).astype(np.float32),
                        np.concatenate(desc_all), np.concatenate(view_all))
