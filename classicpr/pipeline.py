"""One query end to end: retrieve -> verify -> project -> refine.

``run_query`` is what ``Index.query`` and ``classicpr query`` call; ``evaluate.py`` calls it
once per benchmark query. Follow a query from here: features inside the box
(``Index.query_features``), tf-idf shortlist (``Index.retrieve``), correspondences and
RANSAC per shortlisted image (``verify.verify_pair``), re-ranking (verified images first,
by inliers), then a region and mask per localised image (``masks``: the projected box, or
with ``method="grabcut"`` the query's GrabCut segment carried by an object homography).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

from .features import FeatureStore, rootsift
from .index import Index
from .io import read_image
from .masks import (MaskConfig, MaskResult, mask_polygon, projected_mask, refine_region,
                    segment_query, transfer_segment)
from .parallel import run_parallel, single_threaded_opencv
from .verify import (Verification, VerifyConfig, object_motion, ratio_correspondences,
                     verify_pair, word_correspondences)


@dataclasses.dataclass
class QueryResult:
    """One database image in a query's ranked results.

    Attributes
    ----------
    image_id : int
        Database index.
    name : str
        Database image name.
    score : float
        BoW (tf-idf cosine) score.
    inliers : int
        RANSAC inliers of the homography (also reported when it failed the gate).
    H : (3, 3) float64 array or None
        Homography query -> database image.
    polygon : (4, 2) float64 array or None
        Projected query box (x, y), unclipped; for a ``weak`` result, projected by a
        similarity transform.
    mask : (H, W) bool array or None
        Pixel mask (for the localised results whose masks were computed).
    mask_method : str
        "projected", "object" (query segment carried by ``object_H``), "grabcut-region",
        or "" (no mask).
    object_H : (3, 3) float64 array or None
        With ``MaskConfig(method="grabcut")``: the homography of the correspondences on the
        query's object segment, when the object moves independently of its surroundings.
    """

    image_id: int
    name: str
    score: float
    inliers: int = 0
    H: Optional[np.ndarray] = None
    polygon: Optional[np.ndarray] = None
    mask: Optional[np.ndarray] = None
    mask_method: str = ""
    db_points: Optional[np.ndarray] = None
    weak: bool = False
    object_H: Optional[np.ndarray] = None

    @property
    def verified(self) -> bool:
        """True when a homography passed the inlier gate and the degeneracy checks."""
        return self.H is not None

    @property
    def localised(self) -> bool:
        """True when the box has a region in this image (verified, or weakly localised)."""
        return self.polygon is not None


def _verify_batch(args) -> List[Tuple[Verification, Optional[Verification]]]:
    """Verify candidates; with ``on_object`` also fit the object's own homography.

    Descriptors (ratio method) are read from the feature store here, one candidate at a
    time, so memory stays bounded however long the shortlist is.
    """
    single_threaded_opencv()
    qkps, qwords, qdesc, box, cands, config, on_object, min_motion, store = args
    out = []
    if qwords.ndim == 2:  # multiple assignment: feature j appears once per assigned word
        qfeat = np.repeat(np.arange(len(qwords)), qwords.shape[1])
        qflat = qwords.reshape(-1)
        valid = qflat >= 0
        qfeat, qflat = qfeat[valid], qflat[valid]
    else:
        qfeat, qflat = np.arange(len(qwords)), qwords
    qroot = rootsift(qdesc) if config.method == "ratio" else None
    for name, dwords, dkps, size, fscale in cands:
        if config.method == "ratio":
            qi, di = ratio_correspondences(qroot, rootsift(store.load(name)[1]), config.ratio)
        else:
            qi, di = word_correspondences(qflat, dwords, config.max_per_word)
            qi = qfeat[qi]
        v = verify_pair(qkps, dkps, qi, di, box, size, config, fscale)
        obj = None
        if on_object is not None and v.verified:
            sel = on_object[qi]
            obj = verify_pair(qkps, dkps, qi[sel], di[sel], box, size, config, fscale)
            if not obj.verified or object_motion(v, obj) <= min_motion:
                obj = None
        out.append((v, obj))
    return out


def _mask_one(args) -> MaskResult:
    single_threaded_opencv()
    path, quad, points, config = args
    image, _ = read_image(path, gray=False)
    return refine_region(image, quad, points, config)


def _query_segment(image, box, config: MaskConfig) -> Optional[np.ndarray]:
    """GrabCut segment of the object in the query box (None if there is no plausible one)."""
    import cv2
    if isinstance(image, np.ndarray):
        colour = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    else:
        colour, _ = read_image(image, gray=False)
    return segment_query(colour, box, config)


def run_query(index: Index, image, box=None, verify_config: VerifyConfig = VerifyConfig(),
              mask_config: MaskConfig = MaskConfig(), top: Optional[int] = None,
              mask_top: Optional[int] = None, n_jobs: Optional[int] = 1,
              timing: Optional[Dict[str, float]] = None) -> List[QueryResult]:
    """Run one pixel-retrieval query.

    Parameters
    ----------
    index : Index
    image : path-like or (H, W[, 3]) uint8 array
        Query image.
    box : (4,) x1, y1, x2, y2, optional
        Query box (whole image if None).
    verify_config, mask_config
    top : int, optional
        Return only the first ``top`` results (default: the whole database ranking).
    mask_top : int, optional
        Compute masks for at most this many localised results (default: all of them).
    n_jobs : int
        Cores for verification and masks.
    timing : dict, optional
        Filled with seconds spent in "features", "retrieval", "verification", "masks".

    Returns
    -------
    list of QueryResult, best first: verified images by inliers, then the rest (weakly
    localised or not) by BoW score.
    """
    t = timing if timing is not None else {}
    t0 = time.perf_counter()
    qkps, qdesc, qwords, qsize = index.query_features(image, box)
    if box is None:
        box = np.array([0, 0, qsize[0] - 1, qsize[1] - 1], np.float64)
    from .regions import validate_box
    box = validate_box(box, qsize)
    t1 = time.perf_counter()
    ids, scores = index.retrieve(qwords)
    t2 = time.perf_counter()
    short = ids[: verify_config.shortlist]
    store = None
    if verify_config.method == "ratio" and len(short):
        if index.root is None or not (index.root / "features").is_dir():
            from .errors import ClassicPRError
            raise ClassicPRError("ratio verification reads descriptors from the index's "
                                 "feature store (INDEX/features), which is missing; use "
                                 "verification by words (--verify words)")
        store = FeatureStore(index.root / "features", index.feature_config)
    cands = []
    for i in short:
        dwords, dkps = index.invfile.image_features(int(i))
        size = tuple(int(v) for v in index.invfile.sizes[i])
        fscale = max(size) / index.feature_config.max_side
        cands.append((index.names[i], dwords, dkps, size, fscale))
    n_batches = max(1, min(len(cands), 4 * (n_jobs or 1) if n_jobs != 1 else 1))
    bounds = np.linspace(0, len(cands), n_batches + 1).astype(int)
    if verify_config.multiple_assignment > 1 and verify_config.method == "words":
        vwords = index.vocabulary.assign_multi(rootsift(qdesc), verify_config.multiple_assignment)
    else:
        vwords = qwords
    segment = on_object = None
    t_seg = time.perf_counter()
    if mask_config.method == "grabcut" and len(short):
        segment = _query_segment(image, box, mask_config)
        if segment is not None:
            xy = np.clip(np.rint(qkps[:, :2]).astype(int), 0, [qsize[0] - 1, qsize[1] - 1])
            on_object = segment[xy[:, 1], xy[:, 0]]
    t_seg = time.perf_counter() - t_seg  # part of the mask stage
    jobs = [(qkps, vwords, qdesc if store is not None else None, box, cands[a:b], verify_config,
             on_object, mask_config.object_motion, store)
            for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    pairs: List[Tuple[Verification, Optional[Verification]]] = [
        p for batch in run_parallel(_verify_batch, jobs, n_jobs, progress=False) for p in batch]
    t3 = time.perf_counter()
    results = [QueryResult(int(i), index.names[i], float(s)) for i, s in zip(ids, scores)]
    for r, (v, obj) in zip(results, pairs):
        r.inliers = v.inliers
        r.H = v.H
        if v.localised:
            r.polygon, r.db_points, r.weak = v.quad, v.db_points, v.weak
        if obj is not None:
            r.object_H = obj.H
    head = results[: len(short)]
    # verified images first, by inliers; then the rest by BoW score
    head.sort(key=lambda r: (not r.verified, -r.inliers if r.verified else 0, -r.score, r.image_id))
    results[: len(short)] = head
    localised = [r for r in results if r.localised]
    if mask_top is not None:
        localised = localised[:mask_top]
    if index.image_dir is None and mask_config.method == "grabcut":
        raise ValueError("masks need the database images: the index has no image_dir")
    # region refinement applies to verified images only; weak localisations keep the box
    refine = [r for r in localised if mask_config.method == "grabcut-region" and r.verified]
    for r in localised:
        if mask_config.method == "grabcut-region" and r.verified:
            continue
        size = tuple(int(v) for v in index.invfile.sizes[r.image_id])
        if r.object_H is not None and segment is not None:
            mask = transfer_segment(segment, r.object_H, size)
            poly = mask_polygon(mask)
            if poly is not None:
                r.mask, r.polygon, r.mask_method = mask, poly, "object"
                continue
        r.mask, r.mask_method = projected_mask(r.polygon, size), "projected"
    mjobs = [(index.image_dir / r.name, r.polygon, r.db_points, mask_config) for r in refine]
    for r, m in zip(refine, run_parallel(_mask_one, mjobs, n_jobs, progress=False)):
        r.mask, r.mask_method = m.mask, m.method
    t4 = time.perf_counter()
    t.update(features=t1 - t0, retrieval=t2 - t1, verification=t3 - t2 - t_seg,
             masks=t4 - t3 + t_seg)
    return results if top is None else results[:top]
