"""Objects that are not one plane: localisation by Hough voting, then a GrabCut mask.

A homography describes a rigid plane. A person, an animal or a car seen at another moment
deforms, turns and moves against its background, and the correspondences on it agree only
locally. Following Lowe (2004, section 7.3), every correspondence between a query feature
on the object (the query's GrabCut segment) and a database feature predicts a similarity
transform from its two keypoints (scale ratio, orientation change, position), hence where
the object's centre lands. The predictions vote in a 4-D Hough space with broad bins
(orientation 30 degrees, scale a factor of 2, location a quarter of the projected object
size), each vote going to the two nearest bins of every dimension; the largest cluster of
at least ``min_votes`` votes localises the object. A least-squares similarity on the
cluster's correspondences, with outliers beyond a tolerance removed, carries the query
segment into the database image.

:func:`object_mask` then segments the object there with GrabCut: the carried segment is
probable foreground, the matched points are sure foreground, the rest of a crop padded by
half the object's size around it is probable background, and the crop's border ring is
background. The query's own object and surroundings, placed beside the crop as sure
foreground and background (:func:`classicpr.masks.colour_exemplar`), teach GrabCut's
colour models what the object looks like where the carried segment holds background.

A box drawn around an object also holds some of its background, and so does the query's
GrabCut segment (ground between a cow's legs, the wall behind a swan). Where the object
moved against that background, the background's own motion separates them: the query's
features outside the box give it (a homography, verified like any other), and the
correspondences it explains (:func:`follows_motion`) are left out of the votes and become
GrabCut's sure background.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

import cv2
import numpy as np

from .config import MaskConfig
from .masks import ColourExemplar, grabcut_crop, paste_back, with_exemplar


@dataclasses.dataclass
class ObjectLocation:
    """Where the query's object lies in a database image.

    Attributes
    ----------
    transform : (2, 3) float64 array
        Similarity query -> database pixels, fitted on the cluster's correspondences.
    inliers : (K,) int array
        Indices (into the correspondences given) that agree with it.
    votes : int
        Size of the Hough cluster.
    follows_background : bool
        The cluster was found among votes most of which follow the background's motion,
        after the votes that moved against it found none: where the object stood in the
        query's view of its background, if it did not move; where it was, if it did.
    """

    transform: np.ndarray
    inliers: np.ndarray
    votes: int
    follows_background: bool = False


def _similarity_votes(query_kps, db_kps, qi, di, centre):
    """Per correspondence: log2 scale ratio, rotation (degrees) and predicted centre."""
    scale = np.log2(np.maximum(db_kps[di, 2], 1e-3) / np.maximum(query_kps[qi, 2], 1e-3))
    rot = np.mod(db_kps[di, 3] - query_kps[qi, 3], 360.0)
    a = np.deg2rad(rot)
    d = np.asarray(centre, np.float64) - query_kps[qi, :2]
    sigma = np.exp2(scale)
    cx = db_kps[di, 0] + sigma * (np.cos(a) * d[:, 0] - np.sin(a) * d[:, 1])
    cy = db_kps[di, 1] + sigma * (np.sin(a) * d[:, 0] + np.cos(a) * d[:, 1])
    return scale, rot, np.column_stack([cx, cy])


def hough_localise(query_kps: np.ndarray, db_kps: np.ndarray, qi: np.ndarray, di: np.ndarray,
                   object_box: np.ndarray, min_votes: int = 3, angle_bin: float = 30.0
                   ) -> Optional[ObjectLocation]:
    """Localise an object from its correspondences by Hough voting of similarity transforms.

    Parameters
    ----------
    query_kps : (M, 4) float array
        x, y, scale, orientation (degrees, OpenCV's convention) of the query features.
    db_kps : (N, 4) float array
    qi, di : (P,) int arrays
        Correspondences of query features on the object.
    object_box : (4,) x1, y1, x2, y2
        The object's extent in the query (sets the location bin size).
    min_votes : int
        Smallest cluster that localises the object (Lowe: 3).
    angle_bin : float
        Orientation bin, degrees.

    Returns
    -------
    ObjectLocation, or None when no cluster reaches ``min_votes`` or the fit degenerates.
    """
    if len(qi) < min_votes:
        return None
    x1, y1, x2, y2 = np.asarray(object_box, np.float64)
    size = max(x2 - x1, y2 - y1, 1.0)
    scale, rot, centre = _similarity_votes(query_kps, db_kps, qi, di, ((x1 + x2) / 2, (y1 + y2) / 2))
    n_angle = int(round(360.0 / angle_bin))
    # continuous bin coordinates; each vote goes to the 2 nearest bins per dimension
    fa = rot / angle_bin
    fs = scale  # one bin per factor of 2
    width = 0.25 * size * np.exp2(np.floor(fs) + 0.5)  # location bin: 1/4 object size
    fx, fy = centre[:, 0] / width, centre[:, 1] / width
    keys, owners = [], []
    for da in (0, 1):
        a = (np.floor(fa - 0.5).astype(np.int64) + da) % n_angle
        for ds in (0, 1):
            s = np.floor(fs - 0.5).astype(np.int64) + ds
            for dx in (0, 1):
                x = np.floor(fx - 0.5).astype(np.int64) + dx
                for dy in (0, 1):
                    y = np.floor(fy - 0.5).astype(np.int64) + dy
                    keys.append(np.column_stack([a, s, x, y]))
                    owners.append(np.arange(len(qi)))
    keys, owners = np.concatenate(keys), np.concatenate(owners)
    # a correspondence votes once per bin; count distinct query and database features
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    best, best_members = 0, None
    counts = np.bincount(inverse)
    for b in np.argsort(-counts, kind="stable")[:10]:
        if counts[b] < min_votes:
            break
        members = np.unique(owners[inverse == b])
        distinct = min(len(np.unique(qi[members])), len(np.unique(di[members])))
        if distinct > best:
            best, best_members = distinct, members
    if best < min_votes:
        return None
    src = query_kps[qi[best_members], :2].astype(np.float64)
    dst = db_kps[di[best_members], :2].astype(np.float64)
    tol = 0.25 * size * float(np.exp2(np.median(scale[best_members])))
    members = best_members
    for _ in range(3):  # least squares, outliers beyond half a location bin removed
        T, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS) if len(src) >= 3 else (None, None)
        if T is None:
            return None
        err = np.linalg.norm(src @ T[:, :2].T + T[:, 2] - dst, axis=1)
        keep = err < tol
        if keep.all() or keep.sum() < min_votes:
            break
        src, dst, members = src[keep], dst[keep], members[keep]
    scale_change = float(np.hypot(T[0, 0], T[1, 0]))
    if not np.isfinite(T).all() or not 1 / 30 < scale_change < 30 or len(members) < min_votes:
        return None
    return ObjectLocation(T, members, int(best))


def object_mask(image: np.ndarray, segment: np.ndarray, seeds: np.ndarray,
                config: MaskConfig = MaskConfig(), background_seeds: Optional[np.ndarray] = None,
                exemplar: Optional[ColourExemplar] = None) -> Optional[np.ndarray]:
    """GrabCut segmentation of an object in a database image around where it was carried.

    Parameters
    ----------
    image : (H, W, 3) uint8 BGR array
        The database image.
    segment : (H, W) bool array
        The query's object segment carried into the database image (the prior).
    seeds : (P, 2) float array
        Matched object points in the database image (x, y): sure foreground.
    config : MaskConfig
        ``work_side``, ``iterations`` and ``seed`` apply.
    background_seeds : (B, 2) float array, optional
        Points of the database image known to be background (x, y): sure background.
        Applied after ``seeds``, so a point that is both is background.
    exemplar : ColourExemplar, optional
        The query's object and surroundings (:func:`classicpr.masks.colour_exemplar`):
        GrabCut runs on the crop with the exemplar beside it, so that its colour models
        also learn from the query's pixels.

    Returns
    -------
    (H, W) bool array, or None when the prior is empty or GrabCut fails.
    """
    ys, xs = np.nonzero(segment)
    if len(xs) < 16:
        return None
    # the object may have moved or grown: half its size around it
    pad = int(np.ceil(0.5 * max(np.ptp(xs), np.ptp(ys)))) + 4
    small, prior, f, crop_box = grabcut_crop(image, segment, pad, config.work_side)
    cx1, cy1 = crop_box[:2]
    sh, sw = small.shape[:2]
    # the object may lie anywhere in the crop: all of it is open to GrabCut
    gc = np.full((sh, sw), cv2.GC_PR_BGD, np.uint8)
    gc[prior > 0] = cv2.GC_PR_FGD
    # the crop's border ring is background: the object is inside the padded box
    ring = max(2, int(round(0.03 * max(sh, sw))))
    gc[:ring, :], gc[-ring:, :], gc[:, :ring], gc[:, -ring:] = (cv2.GC_BGD,) * 4
    r = max(1, int(round(0.01 * max(sw, sh))))
    _draw_seeds(gc, seeds, (cx1, cy1), f, r, cv2.GC_FGD)
    if background_seeds is not None:
        _draw_seeds(gc, background_seeds, (cx1, cy1), f, r, cv2.GC_BGD)
    if not ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).any():
        return None
    pixels, labels = (small, gc) if exemplar is None else with_exemplar(small, gc, exemplar)
    cv2.setRNGSeed(config.seed)
    try:
        cv2.grabCut(pixels, labels, None, np.zeros((1, 65)), np.zeros((1, 65)),
                    config.iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return None
    gc = labels[:, :sw]
    fg = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.uint8)
    if fg.sum() < 16:
        return None
    return paste_back(fg, crop_box, image.shape)


def _draw_seeds(gc: np.ndarray, points: np.ndarray, origin, factor: float, radius: int,
                label: int) -> None:
    """Mark discs of ``radius`` around image points (P, 2) x, y with a GrabCut label, in
    a crop starting at ``origin`` and scaled by ``factor``; points outside are skipped."""
    sh, sw = gc.shape
    pts = (np.asarray(points, np.float64).reshape(-1, 2) - np.asarray(origin, np.float64)) * factor
    for x, y in np.rint(pts).astype(int):
        if 0 <= x < sw and 0 <= y < sh:
            cv2.circle(gc, (int(x), int(y)), radius, int(label), -1)


def follows_motion(H: np.ndarray, query_points: np.ndarray, db_points: np.ndarray,
                   tolerance: float) -> np.ndarray:
    """Which correspondences a motion model explains.

    Parameters
    ----------
    H : (3, 3) float array
        Homography query -> database pixels (e.g. the background's motion).
    query_points, db_points : (P, 2) float arrays
        x, y of each correspondence in the query and in the database image.
    tolerance : float
        Largest distance (database pixels) between a database point and its query point
        carried by ``H``.

    Returns
    -------
    (P,) bool array
    """
    if len(query_points) == 0:
        return np.zeros(0, bool)
    carried = cv2.perspectiveTransform(
        np.asarray(query_points, np.float64).reshape(-1, 1, 2), np.asarray(H, np.float64)).reshape(-1, 2)
    return np.linalg.norm(carried - np.asarray(db_points, np.float64), axis=1) < tolerance


def carry_segment(segment: np.ndarray, transform: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Warp a query segment (H_q, W_q) bool into a database image of ``size`` by a 2x3 transform."""
    return cv2.warpAffine(segment.astype(np.uint8) * 255, np.asarray(transform, np.float64),
                          (int(size[0]), int(size[1])), flags=cv2.INTER_LINEAR) > 127
