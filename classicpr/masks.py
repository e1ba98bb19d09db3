"""Pixel masks of verified images: the projected query box, GrabCut of the query's object.

``"projected"`` -- the benchmark paper's own pixel baseline: the query box projected by
the homography, filled and clipped to the image (:func:`projected_mask`).

``"grabcut"`` (default) -- the projected box where the box moves as one rigid plane;
elsewhere the query's object, segmented in the query box by GrabCut
(:func:`segment_query`), localised and segmented in the database image by
:mod:`classicpr.objects`.

``"grabcut-region"`` -- GrabCut refinement of the projected region inside the database
image, seeded by verification (inlier keypoints sure foreground, far outside the region
sure background), on a crop at reduced resolution, with guards (too small a result, or one
that drops the inliers, falls back to the projected region) (:func:`refine_region`). It
carves texture out of planar boxes, so it is not the default.

With ``"grabcut"``, GrabCut in a database image also learns its colour models from the
query's own object and surroundings, placed beside the crop (:func:`colour_exemplar`,
:func:`with_exemplar`).

A GrabCut mask is delivered without its stray regions: specks far from the object's
largest region (:func:`drop_stray_regions`).

GrabCut initialisations are seeded (``cv2.setRNGSeed``), so masks are deterministic.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from .config import MaskConfig
from .io import resize_by
from .regions import mask_bbox, rasterize_polygons

@dataclasses.dataclass
class MaskResult:
    """A database-image mask and how it was made.

    Attributes
    ----------
    mask : (H, W) bool array
    method : str
        "grabcut-region" if refinement was accepted, else "projected" (the region was too
        small, a GrabCut seed set was empty, or the guards rejected GrabCut's result).
    """

    mask: np.ndarray
    method: str


def grabcut_crop(image: np.ndarray, mask: np.ndarray, pad: int, work_side: int):
    """The part of an image around a mask that GrabCut runs on, at reduced resolution.

    Parameters
    ----------
    image : (H, W, 3) uint8 array
    mask : (H, W) bool array
        Non-empty.
    pad : int
        Pixels kept around the mask's bounding box.
    work_side : int
        Long side of the returned crop (never enlarged).

    Returns
    -------
    small : (h, w, 3) uint8 array
    small_mask : (h, w) uint8 array
    factor : float
        Crop pixels per image pixel.
    crop_box : (x1, y1, x2, y2) ints
        The crop in image pixels (x2, y2 exclusive).
    """
    h, w = image.shape[:2]
    ys, xs = np.nonzero(mask)
    cx1, cy1 = max(0, int(xs.min()) - pad), max(0, int(ys.min()) - pad)
    cx2, cy2 = min(w, int(xs.max()) + pad + 1), min(h, int(ys.max()) + pad + 1)
    f = min(1.0, work_side / max(cx2 - cx1, cy2 - cy1))
    crop = image[cy1:cy2, cx1:cx2]
    small = resize_by(crop, f) if f < 1 else crop
    small_mask = cv2.resize(mask[cy1:cy2, cx1:cx2].astype(np.uint8),
                            (small.shape[1], small.shape[0]), interpolation=cv2.INTER_NEAREST)
    return small, small_mask, f, (cx1, cy1, cx2, cy2)


def paste_back(small_mask: np.ndarray, crop_box, shape) -> np.ndarray:
    """A crop's (h, w) 0/1 mask back at full resolution in an image of ``shape`` (H, W)."""
    cx1, cy1, cx2, cy2 = crop_box
    full = np.zeros(shape[:2], bool)
    full[cy1:cy2, cx1:cx2] = cv2.resize(small_mask.astype(np.uint8) * 255, (cx2 - cx1, cy2 - cy1),
                                        interpolation=cv2.INTER_LINEAR) > 127
    return full


def _query_rect(image: np.ndarray, box, work_side: int):
    """The query image at GrabCut's working resolution and the box in it.

    Returns
    -------
    small : (h, w, 3) uint8 array
    rect : (4,) ints x1, y1, x2, y2 (inclusive, inside ``small``)
    """
    h, w = image.shape[:2]
    f = min(1.0, work_side / max(h, w))
    small = resize_by(image, f) if f < 1 else image
    x1, y1, x2, y2 = np.round(np.asarray(box, np.float64) * f).astype(int)
    x1, y1 = max(x1, 0), max(y1, 0)
    x2, y2 = min(x2, small.shape[1] - 1), min(y2, small.shape[0] - 1)
    return small, (int(x1), int(y1), int(x2), int(y2))


def segment_query(image: np.ndarray, box, config: MaskConfig = MaskConfig()) -> Optional[np.ndarray]:
    """The object inside the query box, by GrabCut with rectangle initialisation.

    Parameters
    ----------
    image : (H, W, 3) uint8 BGR array
        The query image.
    box : (4,) x1, y1, x2, y2
        The query box (inside the image).

    Returns
    -------
    (H, W) bool array, or None when GrabCut finds no plausible object (segment outside
    [min_object_fraction, max_object_fraction] of the box, or GrabCut fails).
    """
    h, w = image.shape[:2]
    small, (x1, y1, x2, y2) = _query_rect(image, box, config.work_side)
    if x2 - x1 < 8 or y2 - y1 < 8:
        return None
    gc = np.zeros(small.shape[:2], np.uint8)
    cv2.setRNGSeed(config.seed)
    try:
        cv2.grabCut(small, gc, (x1, y1, x2 - x1, y2 - y1),
                    np.zeros((1, 65)), np.zeros((1, 65)), config.iterations + 1,
                    cv2.GC_INIT_WITH_RECT)
    except cv2.error:
        return None
    fg = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.uint8)
    frac = fg.sum() / float((x2 - x1 + 1) * (y2 - y1 + 1))
    if not config.min_object_fraction <= frac <= config.max_object_fraction:
        return None
    return cv2.resize(fg, (w, h), interpolation=cv2.INTER_NEAREST) > 0


@dataclasses.dataclass
class ColourExemplar:
    """The query's object as GrabCut's colour models see it.

    Attributes
    ----------
    pixels : (h, w, 3) uint8 BGR array
        The query image around its box (half the box's size on each side), at the query
        segment's working resolution.
    is_object : (h, w) bool array
        The query segment there.
    """

    pixels: np.ndarray
    is_object: np.ndarray


def colour_exemplar(image: np.ndarray, segment: np.ndarray, box,
                    config: MaskConfig = MaskConfig()) -> Optional[ColourExemplar]:
    """The query's object and its surroundings, for GrabCut in database images.

    A database crop's own prior (the query segment carried there) is approximate: it
    holds background where the object moved or deformed, and GrabCut's colour models
    learn from it. Placed beside the crop (:func:`with_exemplar`), the query's own pixels,
    its segment sure foreground and the rest sure background, teach both models the
    object's and its surroundings' colours as the query shows them.

    Parameters
    ----------
    image : (H, W, 3) uint8 BGR array
        The query image.
    segment : (H, W) bool array
        The query segment (:func:`segment_query`).
    box : (4,) x1, y1, x2, y2
        The query box.
    config : MaskConfig
        ``work_side`` applies (the query segment's working resolution).

    Returns
    -------
    ColourExemplar, or None when the segment has no pixel there.
    """
    small, (x1, y1, x2, y2) = _query_rect(image, box, config.work_side)
    on = cv2.resize(segment.astype(np.uint8), (small.shape[1], small.shape[0]),
                    interpolation=cv2.INTER_NEAREST) > 0
    bw, bh = x2 - x1, y2 - y1
    cx1, cy1 = max(0, x1 - bw // 2), max(0, y1 - bh // 2)
    cx2, cy2 = min(small.shape[1], x2 + bw // 2 + 1), min(small.shape[0], y2 + bh // 2 + 1)
    is_object = on[cy1:cy2, cx1:cx2]
    if not is_object.any():
        return None
    return ColourExemplar(np.ascontiguousarray(small[cy1:cy2, cx1:cx2]), is_object.copy())


def with_exemplar(small: np.ndarray, labels: np.ndarray, exemplar: ColourExemplar
                  ) -> Tuple[np.ndarray, np.ndarray]:
    """A GrabCut crop and its labels with the query's exemplar placed to their right.

    Parameters
    ----------
    small : (h, w, 3) uint8 array
    labels : (h, w) uint8 array
        GrabCut labels of ``small``.
    exemplar : ColourExemplar
        Scaled to the crop's height; its object pixels labelled sure foreground, the rest
        sure background, so that GrabCut never relabels them but learns from them.

    Returns
    -------
    pixels : (h, w + w_e, 3) uint8 array
    labels : (h, w + w_e) uint8 array
        The crop's labels are the first ``w`` columns.
    """
    sh = small.shape[0]
    eh, ew = exemplar.is_object.shape
    nw = max(8, int(round(ew * sh / eh)))
    pixels = cv2.resize(exemplar.pixels, (nw, sh), interpolation=cv2.INTER_AREA)
    on = cv2.resize(exemplar.is_object.astype(np.uint8), (nw, sh),
                    interpolation=cv2.INTER_NEAREST) > 0
    extra = np.where(on, cv2.GC_FGD, cv2.GC_BGD).astype(np.uint8)
    return (np.ascontiguousarray(np.concatenate([small, pixels], axis=1)),
            np.ascontiguousarray(np.concatenate([labels, extra], axis=1)))


def drop_stray_regions(mask: np.ndarray, max_fraction: float, min_gap: float,
                       work_side: int = 512) -> np.ndarray:
    """The mask without its stray regions: connected regions (8-connected) smaller than
    ``max_fraction`` of the largest and farther from it than ``min_gap`` times the
    diagonal of its bounding box.

    GrabCut leaves such specks where the background's colours resemble the object's; they
    add few pixels but widen the mask's bounding box. A part of the object cut off by an
    occluder or a thin gap lies near the largest region, or is large, and stays.

    Parameters
    ----------
    mask : (H, W) bool array
    max_fraction : float
        Regions at least this fraction of the largest region's area stay (0: every region
        stays).
    min_gap : float
        Regions within this distance of the largest region, as a fraction of its bounding
        box's diagonal, stay.
    work_side : int
        The regions are found in blocks of f x f pixels, f the smallest integer that brings
        the mask's bounding box to this long side (a block holding any pixel of the mask
        counts): regions closer than f pixels are one, distances are measured to f pixels.

    Returns
    -------
    (H, W) bool array (``mask`` itself when nothing is dropped)
    """
    if max_fraction <= 0:
        return mask
    bbox = mask_bbox(mask)
    if bbox is None:
        return mask
    # the straight segment between two of its pixels stays inside the mask's bounding box,
    # so distances measured in the crop are the image's
    x0, y0, x1, y1 = bbox
    crop = mask[y0: y1 + 1, x0: x1 + 1]
    f = max(1, -(-max(crop.shape) // work_side))
    h, w = -(-crop.shape[0] // f), -(-crop.shape[1] // f)
    padded = cv2.copyMakeBorder(crop.view(np.uint8), 0, h * f - crop.shape[0], 0,
                                w * f - crop.shape[1], cv2.BORDER_CONSTANT, value=0)
    # an integer factor: each output pixel is the mean of one f x f block, which one pixel
    # of 65,535 keeps above 0 up to f = 255
    blocks = cv2.resize(padded.astype(np.uint16) * np.uint16(65535), (w, h),
                        interpolation=cv2.INTER_AREA)
    blocks = (blocks > 0).view(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(blocks, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    small = np.flatnonzero(areas < max_fraction * areas.max()) + 1
    if not len(small):
        return mask
    gaps, diagonal = region_gaps(labels, stats, small)
    stray = np.zeros(n, bool)
    stray[small] = gaps > min_gap * diagonal
    if not stray.any():
        return mask
    kept = mask.copy()
    in_stray = cv2.resize(stray[labels].view(np.uint8), (w * f, h * f),
                          interpolation=cv2.INTER_NEAREST)[: crop.shape[0], : crop.shape[1]] > 0
    kept[y0: y1 + 1, x0: x1 + 1] &= ~in_stray
    return kept


def region_gaps(labels: np.ndarray, stats: np.ndarray, regions: Sequence[int]
                ) -> Tuple[np.ndarray, float]:
    """How far regions of a mask lie from its largest region.

    Parameters
    ----------
    labels : (H, W) int32 array
    stats : (n, 5) int32 array
        The labelling and the statistics of ``cv2.connectedComponentsWithStats`` (label 0,
        row 0: the background).
    regions : sequence of int
        The labels of the regions to measure.

    Returns
    -------
    gaps : (len(regions),) float array
        Shortest distance in pixels from each region to the largest (0 for the largest).
    diagonal : float
        The diagonal of the largest region's bounding box, in pixels.
    """
    largest = int(np.argmax(stats[1:, cv2.CC_STAT_AREA])) + 1
    gap = cv2.distanceTransform((labels != largest).view(np.uint8), cv2.DIST_L2,
                                cv2.DIST_MASK_PRECISE)
    gaps = np.zeros(len(regions))
    for j, k in enumerate(regions):
        x, y, bw, bh = stats[k, :4]
        box = (slice(y, y + bh), slice(x, x + bw))
        gaps[j] = gap[box][labels[box] == k].min()
    diagonal = float(np.hypot(stats[largest, cv2.CC_STAT_WIDTH], stats[largest, cv2.CC_STAT_HEIGHT]))
    return gaps, diagonal


def mask_polygon(mask: np.ndarray) -> Optional[np.ndarray]:
    """Outline of the largest connected region of a mask as a (K, 2) float x, y polygon."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    c = max(contours, key=cv2.contourArea)
    c = cv2.approxPolyDP(c, 1.0, True).reshape(-1, 2).astype(np.float64)
    return c if len(c) >= 3 else None


def projected_mask(quad: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """The quad filled and clipped to an image of ``size = (width, height)``: (H, W) bool."""
    return rasterize_polygons([quad], size)


def refine_region(image: np.ndarray, quad: np.ndarray, inlier_points: Optional[np.ndarray],
                  config: MaskConfig = MaskConfig()) -> MaskResult:
    """("grabcut-region") Refine the projected quad into a mask with seeded GrabCut.

    Parameters
    ----------
    image : (H, W, 3) uint8 BGR array
        The database image at full resolution.
    quad : (4, 2) float array
        Projected query box (x, y), may extend beyond the image.
    inlier_points : (P, 2) float array or None
        Verified inlier locations in the database image (sure foreground seeds).
    config : MaskConfig

    Returns
    -------
    MaskResult
    """
    h, w = image.shape[:2]
    region = projected_mask(quad, (w, h))
    area = int(region.sum())
    if config.method != "grabcut-region":
        return MaskResult(region, "projected")
    if area < 64:
        return MaskResult(region, "projected")
    ys, xs = np.nonzero(region)
    diag = float(np.hypot(xs.max() - xs.min(), ys.max() - ys.min()))
    pad = int(np.ceil(config.margin * diag)) + 2
    small, reg_small, f, (cx1, cy1, cx2, cy2) = grabcut_crop(image, region, 2 * pad,
                                                            config.work_side)
    sh, sw = small.shape[:2]
    k = max(1, int(round(pad * f)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    near = cv2.dilate(reg_small, kernel)
    gc = np.full((sh, sw), cv2.GC_BGD, np.uint8)
    gc[near > 0] = cv2.GC_PR_BGD
    gc[reg_small > 0] = cv2.GC_PR_FGD
    pts = np.zeros((0, 2))
    if inlier_points is not None and len(inlier_points):
        pts = (np.asarray(inlier_points, np.float64) - [cx1, cy1]) * f
        pts = pts[(pts[:, 0] >= 0) & (pts[:, 1] >= 0) & (pts[:, 0] < sw) & (pts[:, 1] < sh)]
        r = max(1, int(round(0.01 * max(sw, sh))))
        seeds = np.zeros((sh, sw), np.uint8)
        for x, y in np.rint(pts).astype(int):
            cv2.circle(seeds, (int(x), int(y)), r, 1, -1)
        gc[(seeds > 0) & (reg_small > 0)] = cv2.GC_FGD
    n_bg = int(np.count_nonzero((gc == cv2.GC_BGD) | (gc == cv2.GC_PR_BGD)))
    n_fg = int(np.count_nonzero((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)))
    if n_bg < 64 or n_fg < 64:
        return MaskResult(region, "projected")
    cv2.setRNGSeed(config.seed)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(small, gc, None, bgd, fgd, config.iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return MaskResult(region, "projected")
    fg_small = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.uint8)
    fg_small &= near  # never grow beyond the margin band
    kept = fg_small.sum() / max(reg_small.sum(), 1)
    if kept < config.min_keep:
        return MaskResult(region, "projected")
    if len(pts):
        ip = np.clip(np.rint(pts).astype(int), 0, [sw - 1, sh - 1])
        cover = fg_small[ip[:, 1], ip[:, 0]].mean()
        if cover < config.min_inlier_cover:
            return MaskResult(region, "projected")
    return MaskResult(paste_back(fg_small, (cx1, cy1, cx2, cy2), (h, w)), "grabcut-region")
