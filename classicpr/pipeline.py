"""One query end to end: retrieve -> verify -> project -> refine.

``run_query`` is what ``Index.query`` and ``classicpr query`` call; ``evaluate.py`` calls it
once per benchmark query. Follow a query from here: features inside the box
(``Index.query_features``), tf-idf shortlist (``Index.retrieve``), correspondences and
RANSAC per shortlisted image (``verify.verify_pair``), re-ranking (verified images first,
by inliers), then a mask per verified image (``masks.grabcut_mask``).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Dict, List, Optional

import numpy as np

from .features import FeatureStore, rootsift
from .index import Index
from .io import read_image
from .masks import MaskConfig, MaskResult, grabcut_mask, projected_mask
from .parallel import run_parallel, single_threaded_opencv
from .verify import (Verification, VerifyConfig, ratio_correspondences, verify_pair,
                     word_correspondences)


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
        Pixel mask (for the verified results whose masks were computed).
    mask_method : str
        "grabcut", "projected" or "" (no mask).
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

    @property
    def verified(self) -> bool:
        """True when a homography passed the inlier gate and the degeneracy checks."""
        return self.H is not None

    @property
    def localised(self) -> bool:
        """True when the box has a region in this image (verified, or weakly localised)."""
        return self.polygon is not None


def _verify_batch(args) -> List[Verification]:
    single_threaded_opencv()
    qkps, qwords, qdesc, box, cands, config = args
    out = []
    if qwords.ndim == 2:  # multiple assignment: feature j appears once per assigned word
        qfeat = np.repeat(np.arange(len(qwords)), qwords.shape[1])
        qflat = qwords.reshape(-1)
        valid = qflat >= 0
        qfeat, qflat = qfeat[valid], qflat[valid]
    else:
        qfeat, qflat = np.arange(len(qwords)), qwords
    qroot = rootsift(qdesc) if config.method == "ratio" else None
    for dwords, dkps, size, ddesc, fscale in cands:
        if config.method == "ratio":
            qi, di = ratio_correspondences(qroot, rootsift(ddesc), config.ratio)
        else:
            qi, di = word_correspondences(qflat, dwords, config.max_per_word)
            qi = qfeat[qi]
        out.append(verify_pair(qkps, dkps, qi, di, box, size, config, fscale))
    return out


def _mask_one(args) -> MaskResult:
    single_threaded_opencv()
    path, quad, points, config = args
    image, _ = read_image(path, gray=False)
    return grabcut_mask(image, quad, points, config)


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
        Compute masks for at most this many verified results (default: all verified).
    n_jobs : int
        Cores for verification and masks.
    timing : dict, optional
        Filled with seconds spent in "features", "retrieval", "verification", "masks".

    Returns
    -------
    list of QueryResult, best first: verified images by inliers, then the rest by score.
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
        ddesc = store.load(index.names[i])[1] if store is not None else None
        cands.append((dwords, dkps, size, ddesc, fscale))
    n_batches = max(1, min(len(cands), 4 * (n_jobs or 1) if n_jobs != 1 else 1))
    bounds = np.linspace(0, len(cands), n_batches + 1).astype(int)
    if verify_config.multiple_assignment > 1 and verify_config.method == "words":
        vwords = index.vocabulary.assign_multi(rootsift(qdesc), verify_config.multiple_assignment)
    else:
        vwords = qwords
    jobs = [(qkps, vwords, qdesc if store is not None else None, box, cands[a:b], verify_config)
            for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    verifs: List[Verification] = [v for batch in run_parallel(_verify_batch, jobs, n_jobs,
                                                                progress=False) for v in batch]
    t3 = time.perf_counter()
    results = [QueryResult(int(i), index.names[i], float(s)) for i, s in zip(ids, scores)]
    for r, v in zip(results, verifs):
        r.inliers = v.inliers
        r.H = v.H
        if v.localised:
            r.polygon, r.db_points, r.weak = v.quad, v.db_points, v.weak
    head = results[: len(short)]
    # verified images first, by inliers; then the rest by BoW score
    head.sort(key=lambda r: (not r.verified, -r.inliers if r.verified else 0, -r.score, r.image_id))
    results[: len(short)] = head
    localised = [r for r in results if r.localised]
    if mask_top is not None:
        localised = localised[:mask_top]
    if index.image_dir is None and mask_config.method == "grabcut":
        raise ValueError("masks need the database images: the index has no image_dir")
    # GrabCut refines verified regions only; weak localisations keep the projected region
    refine = [r for r in localised if mask_config.method == "grabcut" and r.verified]
    for r in localised:
        if not (mask_config.method == "grabcut" and r.verified):
            size = tuple(int(v) for v in index.invfile.sizes[r.image_id])
            r.mask, r.mask_method = projected_mask(r.polygon, size), "projected"
    mjobs = [(index.image_dir / r.name, r.polygon, r.db_points, mask_config) for r in refine]
    for r, m in zip(refine, run_parallel(_mask_one, mjobs, n_jobs, progress=False)):
        r.mask, r.mask_method = m.mask, m.method
    t4 = time.perf_counter()
    t.update(features=t1 - t0, retrieval=t2 - t1, verification=t3 - t2, masks=t4 - t3)
    return results if top is None else results[:top]
