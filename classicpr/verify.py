"""Spatial verification: tentative correspondences, RANSAC homography, degeneracy checks.

Correspondences, three ways. ``method="ratio"`` (default) matches the query's in-box
RootSIFT descriptors to each candidate's descriptors, read from the index's feature store,
with Lowe's ratio test. ``method="hamming"`` and ``method="words"`` need no raw
descriptors: a query feature and a database feature correspond when they fall in the same
visual word (Philbin et al., "fast spatial matching", from the direct index); "hamming"
keeps only pairs whose Hamming-embedding signatures are close (Jegou et al. 2008), one
per query feature and per database feature (the closest), while "words" keeps every pair
of non-bursty words. A weak geometric consistency filter (dominant rotation and scale change)
runs before RANSAC. Plain word correspondences carry far more outliers on strong viewpoint
changes (``docs/benchmarks.md``, "Verification").

The homography is estimated with OpenCV's USAC MAGSAC++ (deterministic: OpenCV's USAC
seeds its own generator), the fastest of OpenCV's estimators at equal accuracy on planar
pairs with published homographies (``benchmarks/homography.py``).
"""
from __future__ import annotations

import dataclasses
from math import lgamma, log
from typing import Optional, Tuple

import cv2
import numpy as np

from .config import VerifyConfig
from .embedding import hamming
from .regions import box_corners, is_simple_quad, polygon_area, project_points


@dataclasses.dataclass
class Verification:
    """Outcome of verifying one database image.

    Attributes
    ----------
    inliers : int
        Number of RANSAC inliers (0 if not estimated).
    H : (3, 3) float64 array or None
        Homography from query to database image pixels; None if rejected.
    quad : (4, 2) float64 array or None
        The query box projected into the database image (unclipped).
    query_points, db_points : (n_inliers, 2) float32 arrays
        Query and database-image locations (x, y) of the inliers.
    log_nfa : float
        log10 of the homography's number of false alarms (:func:`log_nfa`; inf if none).
    view_tilt : float
        1.0 for plain verification; the tilt of the synthesised query view that verified it.
    reason : str
        Why the image was not verified ("" when verified).
    weak : bool
        True when the homography failed but a similarity transform with at least
        ``min_weak_inliers`` inliers localises the box (``quad`` set, ``H`` None). Such
        images are ranked as unverified but still get a best-effort region (opt-in, see
        :class:`VerifyConfig`).
    """

    inliers: int = 0
    H: Optional[np.ndarray] = None
    quad: Optional[np.ndarray] = None
    query_points: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 2), np.float32))
    db_points: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 2), np.float32))
    log_nfa: float = float("inf")
    view_tilt: float = 1.0
    reason: str = ""
    weak: bool = False

    @property
    def verified(self) -> bool:
        return self.H is not None

    @property
    def localised(self) -> bool:
        return self.quad is not None


def word_correspondences(query_words: np.ndarray, db_words: np.ndarray,
                         max_per_word: int = 4) -> Tuple[np.ndarray, np.ndarray]:
    """All pairs of features that share a visual word, skipping bursty words.

    Parameters
    ----------
    query_words : (M,) int array
    db_words : (N,) int array
    max_per_word : int
        Words with more than this many features on either side are skipped.

    Returns
    -------
    qi, di : (P,) int64 arrays of indices into the query and database features.
    """
    qw = np.asarray(query_words, np.int64)
    dw = np.asarray(db_words, np.int64)
    if len(qw) == 0 or len(dw) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    q_order = np.argsort(qw, kind="stable")
    d_order = np.argsort(dw, kind="stable")
    q_sorted, d_sorted = qw[q_order], dw[d_order]
    uq, q_start, q_count = np.unique(q_sorted, return_index=True, return_counts=True)
    d_start = np.searchsorted(d_sorted, uq, side="left")
    d_count = np.searchsorted(d_sorted, uq, side="right") - d_start
    keep = (d_count > 0) & (q_count <= max_per_word) & (d_count <= max_per_word)
    qs, qc, ds, dc = q_start[keep], q_count[keep], d_start[keep], d_count[keep]
    if len(qs) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    n_pairs = qc * dc
    word_of_pair = np.repeat(np.arange(len(qs)), n_pairs)
    within = np.arange(n_pairs.sum()) - np.repeat(np.cumsum(n_pairs) - n_pairs, n_pairs)
    qi = q_order[qs[word_of_pair] + within // dc[word_of_pair]]
    di = d_order[ds[word_of_pair] + within % dc[word_of_pair]]
    return qi, di


#: Method "hamming": words with more features than this on either side are skipped (the
#: signatures separate bursts far better than plain words, so the limit is loose).
HAMMING_MAX_PER_WORD = 32


def hamming_correspondences(query_words: np.ndarray, query_signatures: np.ndarray,
                            db_words: np.ndarray, db_signatures: np.ndarray,
                            max_distance: int = 24, query_feature: Optional[np.ndarray] = None
                            ) -> Tuple[np.ndarray, np.ndarray]:
    """Pairs of features in the same word whose signatures differ in at most
    ``max_distance`` bits, one per query feature and per database feature (the closest).

    Parameters
    ----------
    query_words, db_words : (K,), (N,) int arrays
    query_signatures, db_signatures : (K, W), (N, W) uint64 arrays
    max_distance : int
    query_feature : (K,) int array, optional
        The query feature of each entry, when a feature is entered in several words
        (multiple assignment); default: entry k is feature k.

    Returns
    -------
    qi, di : (P,) int64 arrays of indices into the query features and database features.
    """
    qi, di = word_correspondences(query_words, db_words, HAMMING_MAX_PER_WORD)
    if len(qi) == 0:
        return qi, di
    d = hamming(np.asarray(query_signatures)[qi], np.asarray(db_signatures)[di]).astype(np.int64)
    keep = d <= max_distance
    qi, di, d = qi[keep], di[keep], d[keep]
    if query_feature is not None:
        qi = np.asarray(query_feature, np.int64)[qi]
    order = np.lexsort((di, qi, d))  # closest first
    qi, di = qi[order], di[order]
    first = np.sort(np.unique(qi, return_index=True)[1])  # each query feature's closest
    qi, di = qi[first], di[first]
    first = np.sort(np.unique(di, return_index=True)[1])  # ... and each database feature's
    return qi[first], di[first]


def consistent_correspondences(query_kps: np.ndarray, db_kps: np.ndarray, qi: np.ndarray,
                               di: np.ndarray, angle_bin: float = 30.0, scale_bin: float = 0.5
                               ) -> np.ndarray:
    """Weak geometric consistency (Jegou et al. 2008): keep the correspondences that agree
    with the dominant change of orientation and log-scale.

    Each pair votes in a 2-D histogram of (orientation difference, log2 scale ratio); pairs
    in the peak bin or its 8 neighbours (orientation wraps around) are kept. For a rigid or
    planar object most true matches share one rotation and one scale change, while chance
    matches through a shared word spread evenly, so RANSAC then sees far fewer outliers.

    Returns
    -------
    (P,) bool array over the input pairs.
    """
    if len(qi) == 0:
        return np.zeros(0, bool)
    dang = np.mod(db_kps[di, 3] - query_kps[qi, 3], 360.0)
    dscale = np.log2(np.maximum(db_kps[di, 2], 1e-3) / np.maximum(query_kps[qi, 2], 1e-3))
    na = int(round(360.0 / angle_bin))
    a = np.minimum((dang / angle_bin).astype(np.int64), na - 1)
    s = np.floor(dscale / scale_bin).astype(np.int64)
    s -= s.min()
    ns = int(s.max()) + 1
    hist = np.zeros((na, ns + 2), np.int64)
    np.add.at(hist, (a, s + 1), 1)
    # smooth over neighbours (circular in orientation) and find the peak
    smooth = sum(np.roll(np.roll(hist, da, axis=0), ds, axis=1)
                 for da in (-1, 0, 1) for ds in (-1, 0, 1))
    pa, ps = np.unravel_index(np.argmax(smooth), smooth.shape)
    da = np.abs(((a - pa + na // 2) % na) - na // 2)
    return (da <= 1) & (np.abs(s + 1 - ps) <= 1)


def ratio_correspondences(query_desc: np.ndarray, db_desc: np.ndarray, ratio: float = 0.85
                          ) -> Tuple[np.ndarray, np.ndarray]:
    """Lowe ratio-test matches between RootSIFT descriptors (exhaustive, BLAS).

    Parameters
    ----------
    query_desc : (M, D) float32 array, unit rows
    db_desc : (N, D) float32 array, unit rows
    ratio : float
        A match is kept when its distance is below ``ratio`` times the second nearest.

    Returns
    -------
    qi, di : (P,) int64 arrays.
    """
    if len(query_desc) < 1 or len(db_desc) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    import faiss  # exact inner-product k-NN with a fused top-k: 4x faster than numpy here
    index = faiss.IndexFlatIP(db_desc.shape[1])
    index.add(np.ascontiguousarray(db_desc, np.float32))
    sims, nn = index.search(np.ascontiguousarray(query_desc, np.float32), 2)
    d = np.sqrt(np.maximum(2.0 - 2.0 * sims, 0.0))  # unit vectors: L2 from inner product
    keep = d[:, 0] < ratio * d[:, 1]
    rows = np.flatnonzero(keep)
    return rows.astype(np.int64), nn[keep, 0].astype(np.int64)


def log_nfa(residuals: np.ndarray, n: int, area: float, sample_size: int = 4,
            min_error: float = 0.5) -> float:
    """log10 of the number of false alarms of a model (a-contrario test, ORSA / AC-RANSAC,
    Moisan and Stival 2004; Moisan, Moulon and Monasse 2012).

    For the k correspondences with the smallest residuals,
    ``NFA(k) = (n - s) C(n, k) C(k, s) alpha_k^(k - s)``, where ``alpha_k`` is the
    probability that a database point placed uniformly at random in the image falls within
    the k-th smallest residual of its prediction (``pi e_k^2 / area``): the expected number
    of models as good as this one among all the models that chance correspondences could
    give. A model is meaningful when ``min_k NFA(k) < 1``.

    Parameters
    ----------
    residuals : (m,) float array
        Reprojection errors in the database image (pixels), of the correspondences the
        model was fitted on.
    n : int
        Number of tentative correspondences the model was selected among (>= m).
    area : float
        Database image area in pixels.
    sample_size : int
        Correspondences of a minimal sample (4 for a homography).
    min_error : float
        Residuals below this are counted as this (keypoint localisation noise).

    Returns
    -------
    float
        ``min_k log10 NFA(k)`` over k = sample_size + 1 ... m (inf when m <= sample_size).
    """
    e = np.sort(np.maximum(np.asarray(residuals, np.float64), min_error))
    s, m = sample_size, len(e)
    if m <= s or n <= s:
        return float("inf")
    k = np.arange(s + 1, m + 1)
    alpha = np.minimum(np.pi * e[k - 1] ** 2 / max(area, 1.0), 1.0)
    lg = np.vectorize(lgamma)
    log_c_nk = (lgamma(n + 1) - lg(k + 1) - lg(n - k + 1)) / log(10)
    log_c_ks = (lg(k + 1) - lgamma(s + 1) - lg(k - s + 1)) / log(10)
    values = np.log10(n - s) + log_c_nk + log_c_ks + (k - s) * np.log10(alpha)
    return float(values.min())


def check_homography(H: np.ndarray, box: np.ndarray, db_size: Tuple[int, int],
                     config: VerifyConfig) -> Tuple[Optional[np.ndarray], str]:
    """Project the query box and reject degenerate homographies.

    Returns
    -------
    quad : (4, 2) array or None
    reason : str, empty when the homography is accepted
    """
    if H is None or not np.all(np.isfinite(H)) or abs(H[2, 2]) < 1e-12:
        return None, "no homography"
    H = H / H[2, 2]
    quad = project_points(H, box_corners(box))
    if not np.all(np.isfinite(quad)):
        return None, "box projects to infinity"
    if not is_simple_quad(quad):
        return None, "projected box is self-intersecting or concave"
    src_area = (box[2] - box[0]) * (box[3] - box[1])
    dst_area = polygon_area(quad)
    if dst_area <= 0:
        return None, "homography flips the image"
    change = dst_area / max(src_area, 1e-9)
    if not (1.0 / config.max_scale_change ** 2 <= change <= config.max_scale_change ** 2):
        return None, f"area scale change {change:.3g} is implausible"
    if dst_area < config.min_area_fraction * db_size[0] * db_size[1]:
        return None, "projected box is tiny"
    w, h = db_size
    # The projected box must overlap the image
    if quad[:, 0].max() < 0 or quad[:, 1].max() < 0 or quad[:, 0].min() > w or quad[:, 1].min() > h:
        return None, "projected box is outside the image"
    return quad, ""


def verify_pair(query_kps: np.ndarray, db_kps: np.ndarray, qi: np.ndarray, di: np.ndarray,
                box: np.ndarray, db_size: Tuple[int, int], config: VerifyConfig = VerifyConfig(),
                feature_scale: float = 1.0, log_nfa_offset: float = 0.0) -> Verification:
    """Estimate a query -> database homography from tentative correspondences.

    Parameters
    ----------
    query_kps : (M, 4) float array
        Query keypoints (x, y, scale, orientation), original pixels.
    db_kps : (N, 4) float array
        Database keypoints.
    qi, di : (P,) int arrays
        Tentative correspondences (indices into query_kps, db_kps).
    box : (4,) array
        Query box x1, y1, x2, y2.
    db_size : (width, height)
    config : VerifyConfig
    feature_scale : float
        Original pixels per feature pixel of the database image (``ransac_threshold`` is
        multiplied by it).
    log_nfa_offset : float
        Added to the model's log10 NFA: log10 of the number of such tests made for this
        image (multiple synthesised views).

    Returns
    -------
    Verification
    """
    n_tentative = len(qi)
    if config.weak_geometry and len(qi):
        keep = consistent_correspondences(query_kps, db_kps, qi, di)
        qi, di = qi[keep], di[keep]
    if len(qi) < 4:
        return Verification(reason=f"only {len(qi)} tentative correspondences")
    src = np.ascontiguousarray(query_kps[qi, :2], np.float32)
    dst = np.ascontiguousarray(db_kps[di, :2], np.float32)
    thr = config.ransac_threshold * max(feature_scale, 1.0)
    try:
        H, inl = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, thr, maxIters=config.max_iters,
                                    confidence=0.999)
    except cv2.error as exc:  # degenerate input (all points identical, ...)
        return Verification(reason=f"RANSAC failed: {str(exc).splitlines()[-1][:80]}")
    if H is None or inl is None:
        return Verification(reason="RANSAC found no model")
    inl = inl.ravel().astype(bool)
    # one correspondence per query feature and per database feature among the inliers
    inl_idx = np.flatnonzero(inl)
    _, first_q = np.unique(qi[inl_idx], return_index=True)
    inl_idx = inl_idx[first_q]
    _, first_d = np.unique(di[inl_idx], return_index=True)
    inl_idx = np.sort(inl_idx[first_d])
    n_inl = len(inl_idx)
    result = Verification(inliers=n_inl, query_points=src[inl_idx], db_points=dst[inl_idx])
    if n_inl < config.min_inliers:
        result.reason = f"{n_inl} inliers < {config.min_inliers}"
        return _weak_localisation(result, src, dst, box, db_size, config, thr)
    if config.refit and n_inl >= 8:
        # final least-squares fit on all inliers (Levenberg-Marquardt on reprojection error),
        # kept only if it explains at least as many correspondences at the same threshold
        H_ls, _ = cv2.findHomography(src[inl], dst[inl], 0)
        if H_ls is not None and np.all(np.isfinite(H_ls)):
            def support(M):
                p = cv2.perspectiveTransform(src.reshape(-1, 1, 2), M).reshape(-1, 2)
                return int((np.linalg.norm(p - dst, axis=1) < thr).sum())
            if support(H_ls) >= support(H):
                H = H_ls
    quad, reason = check_homography(H, np.asarray(box, np.float64), db_size, config)
    if quad is None:
        result.reason = reason
        return _weak_localisation(result, src, dst, box, db_size, config, thr)
    # significance of the model: residuals of the de-duplicated inliers, among all the
    # tentative correspondences it was selected from
    residual = np.linalg.norm(cv2.perspectiveTransform(
        src[inl_idx].reshape(-1, 1, 2).astype(np.float64), H).reshape(-1, 2) - dst[inl_idx], axis=1)
    result.log_nfa = log_nfa_offset + log_nfa(residual, max(n_tentative, n_inl),
                                              float(db_size[0]) * float(db_size[1]))
    if config.acceptance == "a-contrario" and result.log_nfa >= 0:
        result.reason = f"not meaningful (log10 NFA {result.log_nfa:.1f} >= 0)"
        return _weak_localisation(result, src, dst, box, db_size, config, thr)
    result.H = H / H[2, 2]
    result.quad = quad
    return result


def inlier_coverage(inlier_points: np.ndarray, feature_points: np.ndarray, box,
                    H: Optional[np.ndarray] = None, db_size: Optional[Tuple[int, int]] = None,
                    grid: int = 4) -> float:
    """Share of the box's ``grid`` x ``grid`` cells holding features that also hold an inlier.

    A textured rigid plane leaves inliers all over the box; matches that cover only part
    of it (an object moving against a changing background) leave cells empty. With ``H``
    and ``db_size``, cells whose centre the homography maps outside the database image are
    left out: they cannot be matched (a zoom, a crop).

    Parameters
    ----------
    inlier_points : (K, 2) float array
        Query-side inlier positions.
    feature_points : (M, 2) float array
        Positions of all the query's in-box features.
    box : (4,) x1, y1, x2, y2
    H : (3, 3) array, optional
        Query -> database homography.
    db_size : (width, height), optional

    Returns
    -------
    float in [0, 1] (0 when no cell counts).
    """
    x1, y1, x2, y2 = np.asarray(box, np.float64)

    def cells(p):
        p = np.asarray(p, np.float64).reshape(-1, 2)
        gx = np.clip(((p[:, 0] - x1) / max(x2 - x1, 1e-9) * grid).astype(int), 0, grid - 1)
        gy = np.clip(((p[:, 1] - y1) / max(y2 - y1, 1e-9) * grid).astype(int), 0, grid - 1)
        return set((gx * grid + gy).tolist())
    occupied = cells(feature_points)
    if H is not None and db_size is not None:
        g = (np.arange(grid) + 0.5) / grid
        centres = np.array([[x1 + gx * (x2 - x1), y1 + gy * (y2 - y1)] for gx in g for gy in g])
        p = cv2.perspectiveTransform(centres.reshape(-1, 1, 2), np.asarray(H, np.float64)).reshape(-1, 2)
        inside = (p[:, 0] >= 0) & (p[:, 1] >= 0) & (p[:, 0] < db_size[0]) & (p[:, 1] < db_size[1])
        occupied &= set(np.flatnonzero(inside).tolist())
    return len(cells(inlier_points) & occupied) / len(occupied) if occupied else 0.0


def perspective_ratio(H: np.ndarray, box) -> float:
    """Largest over smallest projective depth ``h3 . (x, y, 1)`` at the box corners: 1 for an
    affine map, large when the homography foreshortens the box (a plane seen obliquely)."""
    w = box_corners(np.asarray(box, np.float64)) @ np.asarray(H, np.float64)[2, :2] + H[2, 2]
    if np.any(w <= 0):
        return float("inf")
    return float(w.max() / w.min())


def anisotropy(H: np.ndarray, box) -> float:
    """Largest over smallest singular value of the homography's linear part (its
    Jacobian) at the box centre: 1 for a similarity, the tilt ``1 / cos(theta)`` for a
    plane seen at angle theta from a frontal view (an affine view of it), inf where the
    map folds there."""
    H = np.asarray(H, np.float64)
    x1, y1, x2, y2 = np.asarray(box, np.float64)
    c = np.array([(x1 + x2) / 2, (y1 + y2) / 2, 1.0])
    w = H[2] @ c
    if w <= 0:
        return float("inf")
    p = (H[:2] @ c) / w
    jacobian = (H[:2, :2] - np.outer(p, H[2, :2])) / w
    s = np.linalg.svd(jacobian, compute_uv=False)
    return float(s[0] / s[1]) if s[1] > 0 else float("inf")


def _weak_localisation(result: Verification, src: np.ndarray, dst: np.ndarray, box,
                       db_size, config: VerifyConfig, thr: float) -> Verification:
    """Fit a similarity transform (4 DoF, 2-point RANSAC) when the homography failed."""
    if config.min_weak_inliers <= 0 or len(src) < max(config.min_weak_inliers, 2):
        return result
    try:
        A, inl = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC,
                                             ransacReprojThreshold=thr, maxIters=2000,
                                             confidence=0.99)
    except cv2.error:
        return result
    if A is None or inl is None or int(inl.sum()) < config.min_weak_inliers:
        return result
    S = np.vstack([A, [0, 0, 1]])
    quad, _ = check_homography(S, np.asarray(box, np.float64), db_size, config)
    if quad is not None:
        result.quad, result.weak = quad, True
        keep = inl.ravel().astype(bool)
        result.query_points, result.db_points = src[keep], dst[keep]
    return result


def verify_views(view_kps: np.ndarray, view_of: np.ndarray, db_kps: np.ndarray, qi: np.ndarray,
                 di: np.ndarray, box: np.ndarray, db_size: Tuple[int, int], tilt: float,
                 config: VerifyConfig = VerifyConfig(), feature_scale: float = 1.0
                 ) -> Verification:
    """Verify a candidate from the correspondences of synthesised query views.

    Parameters
    ----------
    view_kps : (N, 4) float array
        Features of the views (x, y in query pixels; scale and orientation in each view).
    view_of : (N,) int array
        View of each feature.
    db_kps : (D, 4) float array
    qi, di : (P,) int arrays
        Correspondences (indices into ``view_kps`` and ``db_kps``).
    box, db_size, config, feature_scale
        As for :func:`verify_pair`.
    tilt : float
        The views' tilt (recorded in the result).

    Returns
    -------
    Verification
        With ``config.synthesis_fit == "view"`` the accepted homography of the view with
        the most inliers; with ``"pooled"`` one homography over all views' correspondences,
        after removing those that repeat a database feature and a query position within
        2 px (neighbouring views detect the same point). Not verified when none is accepted.
    """
    best = Verification(reason="no view verified")
    if config.synthesis_fit == "pooled":
        key = np.column_stack([np.floor(view_kps[qi, :2] / 2.0).astype(np.int64), di])
        _, first = np.unique(key, axis=0, return_index=True)
        keep = np.sort(first)
        best = verify_pair(view_kps, db_kps, qi[keep], di[keep], box, db_size,
                           dataclasses.replace(config, weak_geometry=False), feature_scale)
    else:
        views = view_of[qi]
        tested = np.unique(views)
        # one homography per view is one test per view: the a-contrario bound counts them
        # all (NFA multiplied by the number of views), so that trying more views does not
        # raise the number of false alarms
        extra = float(np.log10(max(len(np.unique(view_of)), 1)))
        for v in tested:
            sel = views == v
            if sel.sum() < config.min_inliers:
                continue
            r = verify_pair(view_kps, db_kps, qi[sel], di[sel], box, db_size, config,
                            feature_scale, log_nfa_offset=extra)
            if r.verified and (not best.verified or r.inliers > best.inliers):
                best = r
    best.view_tilt = tilt
    return best
