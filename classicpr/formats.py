"""Masks in the formats other tools read: labelme polygons and COCO run-length encoding.

``labelme`` -- one JSON per image (labelme's own format, which is also the PROxford /
PRParis label format): the mask's outer contours as polygons. A hole is cut into its
outer contour through a zero-width bridge, so the union of the filled polygons (how
labelme, the benchmark's evaluation and classicpr rasterise labels) is the mask.

``coco`` -- one COCO *results* file: a list of ``{"image_id", "category_id",
"segmentation": {"size": [H, W], "counts": "..."}, "score", "bbox": [x, y, w, h]}`` with
the mask in COCO's compressed RLE, encoded by pycocotools itself
(``pip install "classicpr[coco]"``), as pycocotools' ``COCO.loadRes``, CVAT's and
FiftyOne's COCO importers read it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from .errors import ClassicPRError
from .io import PathLike, write_json, write_png

FORMATS = ("png", "labelme", "coco")


def parse_formats(text: str) -> List[str]:
    """``"png,coco"`` -> ["png", "coco"] (ValueError naming the known formats)."""
    out = [f.strip().lower() for f in str(text).split(",") if f.strip()]
    bad = [f for f in out if f not in FORMATS]
    if bad or not out:
        raise ValueError(f"--format takes a comma-separated list of {', '.join(FORMATS)}; "
                         f"got {text!r}")
    return out


def mask_polygons(mask: np.ndarray) -> List[np.ndarray]:
    """Polygons whose filled union is the mask: one per outer contour, holes bridged in.

    Parameters
    ----------
    mask : (H, W) bool array

    Returns
    -------
    list of (K, 2) float arrays of x, y pixel coordinates.
    """
    contours, hierarchy = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP,
                                           cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return []
    hierarchy = hierarchy[0]
    polygons = []
    for k, c in enumerate(contours):
        if hierarchy[k][3] >= 0:  # a hole: handled with its parent
            continue
        outer = c.reshape(-1, 2)
        if cv2.contourArea(outer.astype(np.float32), oriented=True) < 0:
            outer = outer[::-1]
        child = hierarchy[k][2]
        while child >= 0:
            hole = contours[child].reshape(-1, 2)
            if cv2.contourArea(hole.astype(np.float32), oriented=True) > 0:
                hole = hole[::-1]  # opposite orientation to the outer contour
            d = ((outer[:, None, :].astype(np.int64) - hole[None, :, :]) ** 2).sum(-1)
            i, j = np.unravel_index(np.argmin(d), d.shape)
            outer = np.concatenate([outer[: i + 1], hole[j:], hole[: j + 1], outer[i:]])
            child = hierarchy[child][0]
        polygons.append(outer.astype(np.float64))
    return polygons


def labelme_json(mask: np.ndarray, image_path: str, label: str = "object",
                 score: Optional[float] = None) -> Dict:
    """A labelme annotation of one mask.

    Parameters
    ----------
    mask : (H, W) bool array
    image_path : str
        Written as ``imagePath`` (relative to the JSON file, as labelme expects).
    label : str
    score : float, optional
        Written into each shape's ``description``.
    """
    h, w = mask.shape
    shapes = [{"label": label, "points": p.tolist(), "group_id": None, "shape_type": "polygon",
               "flags": {}, "description": "" if score is None else f"score {score:.4f}"}
              for p in mask_polygons(mask) if len(p) >= 3]
    return {"version": "5.0.1", "flags": {}, "shapes": shapes, "imagePath": image_path,
            "imageData": None, "imageHeight": int(h), "imageWidth": int(w)}


def coco_result(mask: np.ndarray, image_id: int, score: float, category_id: int = 1) -> Dict:
    """One COCO results entry with the mask as compressed RLE (pycocotools)."""
    try:
        from pycocotools import mask as coco_mask
    except ImportError:
        raise ClassicPRError("COCO output needs pycocotools: pip install 'classicpr[coco]'") from None
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    bbox = coco_mask.toBbox(rle).tolist()
    return {"image_id": int(image_id), "category_id": int(category_id),
            "segmentation": {"size": [int(v) for v in rle["size"]],
                             "counts": rle["counts"].decode("ascii")},
            "score": float(score), "bbox": [float(v) for v in bbox]}


def coco_results(entries: Sequence[Dict]) -> List[Dict]:
    """The results list, best score first (as COCO's evaluation expects)."""
    return sorted(entries, key=lambda e: -e["score"])


def write_mask(out_dir: PathLike, stem: str, mask: np.ndarray, image_path: PathLike,
               formats: Sequence[str], image_id: int, score: float) -> Optional[Dict]:
    """Write one mask as ``masks/STEM.png`` and / or ``labelme/STEM.json`` under
    ``out_dir`` (atomically); return its COCO results entry when "coco" is asked for (the
    caller writes all entries into one file with :func:`coco_results`)."""
    out_dir = Path(out_dir)
    if "png" in formats:
        write_png(out_dir / "masks" / f"{stem}.png", mask.astype(np.uint8) * 255)
    if "labelme" in formats:
        rel = os.path.relpath(Path(image_path).resolve(), (out_dir / "labelme").resolve())
        write_json(out_dir / "labelme" / f"{stem}.json", labelme_json(mask, rel, score=score))
    return coco_result(mask, image_id, score) if "coco" in formats else None
