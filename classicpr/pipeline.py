"""One query end to end, in named stages: features -> retrieve -> verify -> rank -> masks.

:func:`run_query` is what ``classicpr query`` runs and what ``evaluate.py`` calls once per
benchmark query. Each stage is a function that takes and returns small records:

1. :func:`extract_query` -- SIFT features inside the query box and their visual words
   (:class:`QueryFeatures`), and the features around the box (:class:`QueryContext`).
2. :func:`rank_database` -- the ranking of the whole database (:func:`retrieve`: ASMK* or
   tf-idf bag of words), expanded without geometry by the reliable first-ranked images
   with ``retrieval.expansion`` "hqe" (:func:`reliable_images`).
3. :func:`verify_shortlist` -- correspondences and a RANSAC homography for each of the top
   ``verify.shortlist`` images (:class:`classicpr.verify.Verification`), in parallel; then
   synthesised tilted views of the query box (:mod:`classicpr.views`) for the images most
   similar to them that failed; on verified images whose box is not one rigid plane, the
   query's object localised by Hough voting (:mod:`classicpr.objects`), apart from the
   background where the features around the box give the background's motion (with
   Hamming correspondences, localised again with the image's descriptors); then
   query expansion with the best verified images (:func:`expansion_features`) ranks
   and verifies again.
4. :func:`rank_results` -- verified images first by inliers, then the rest by their ranking score
   (:class:`QueryResult`).
5. :func:`compute_masks` -- a region and pixel mask for each localised result: the
   projected box, or GrabCut of the localised object (:mod:`classicpr.masks`,
   :mod:`classicpr.objects`).
6. :func:`relay_localise` -- the best verified results, each with its mask as a query,
   localise the best-ranked images the query itself could not verify.
7. :func:`verified_neighbours` -- images that show the same scene as a verified image rank
   next, localised where the object verifies against a localised image near them.
8. :func:`classicpr.masks.drop_stray_regions` -- the GrabCut masks delivered lose their
   stray regions.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .config import (Config, MaskConfig, RetrievalConfig, VerifyConfig, check_index_time,
                     parse_tilts)
from .embedding import majority_signatures
from .errors import ClassicPRError, ImageReadError
from .features import detect_sift, extract_image, read_gray, rootsift
from .index import Index, StoredImage
from .invfile import features_in_box
from .io import as_bgr, read_image_at_size
from .masks import (ColourExemplar, colour_exemplar, drop_stray_regions, mask_polygon,
                    projected_mask, refine_region, segment_query)
from .objects import ObjectLocation, carry_segment, follows_motion, hough_localise, object_mask
from .parallel import effective_n_jobs, run_parallel
from .regions import mask_bbox, project_points, validate_box
from .verify import (Verification, anisotropy, hamming_correspondences, inlier_coverage,
                     perspective_ratio, ratio_correspondences, verify_pair, verify_views,
                     word_correspondences)
from .views import synthesize_views, view_angles
from .vocabulary import Vocabulary

log = logging.getLogger("classicpr")


@dataclasses.dataclass
class QueryFeatures:
    """The query: its in-box features and where they are.

    Attributes
    ----------
    keypoints : (M, 4) float32 array
        x, y, scale, orientation of the features inside the box (original pixels).
    descriptors : (M, 128) uint8 array
    words : (M,) int array
        Visual word of each feature.
    signatures : (M, W) uint64 array
        Hamming-embedding signature of each feature in its word (W = bits / 64).
    size : (width, height)
        Of the query image.
    box : (4,) float64 array
        x1, y1, x2, y2 (the whole image when no box was given).
    gray : (h, w) uint8 array or None
        The query at feature resolution (for view synthesis; not sent to workers).
    scale : float
        Pixels of ``gray`` per original pixel.
    context : QueryContext or None
        The features outside the box (None for a whole-image query).
    hamming : HammingQuery or None
        Filled by :meth:`with_hamming` for Hamming verification.
    """

    keypoints: np.ndarray
    descriptors: np.ndarray
    words: np.ndarray
    signatures: np.ndarray
    size: Tuple[int, int]
    box: np.ndarray
    gray: Optional[np.ndarray] = None
    scale: float = 1.0
    context: Optional["QueryContext"] = None
    hamming: Optional["HammingQuery"] = None

    def with_hamming(self, index: Index, assignments: int) -> "QueryFeatures":
        """Fill ``hamming`` (once per number of assignments); returns self."""
        if self.hamming is None or self.hamming.assignments != assignments:
            self.hamming = hamming_query(index.vocabulary, rootsift(self.descriptors),
                                         assignments, self.words, self.signatures)
        return self


@dataclasses.dataclass
class HammingQuery:
    """Query features as Hamming verification matches them: each in its ``assignments``
    nearest words (multiple assignment on the query side, Jegou et al. 2010), with its
    signature in each.

    Attributes
    ----------
    words : (K,) int array
    signatures : (K, W) uint64 array
    feature : (K,) int64 array
        The feature each entry belongs to (K = features x assignments).
    assignments : int
    """

    words: np.ndarray
    signatures: np.ndarray
    feature: np.ndarray
    assignments: int

    @classmethod
    def one_word(cls, words: np.ndarray, signatures: np.ndarray) -> "HammingQuery":
        """Features each in its one word (M,), with its signature (M, W): as the index
        stores database features."""
        words = np.asarray(words)
        return cls(words, signatures, np.arange(len(words), dtype=np.int64), 1)

    def subset(self, features: np.ndarray) -> "HammingQuery":
        """The entries of ``features`` (F,) int array, renumbered 0 .. F - 1 in that order."""
        features = np.asarray(features, np.int64)
        renumber = np.full(int(max(self.feature.max(initial=-1), features.max(initial=-1))) + 1,
                           -1, np.int64)
        renumber[features] = np.arange(len(features))
        new = renumber[self.feature]
        keep = new >= 0
        return HammingQuery(self.words[keep], self.signatures[keep], new[keep], self.assignments)


def hamming_query(vocabulary: Vocabulary, x: np.ndarray, assignments: int,
                  words: Optional[np.ndarray] = None, signatures: Optional[np.ndarray] = None
                  ) -> HammingQuery:
    """Assign (M, D) RootSIFT descriptors ``x`` to their ``assignments`` nearest words and
    embed them in each; with one assignment, the given ``words`` (M,) and ``signatures``
    (M, W) (the features' own, as the index assigns database features) are used when given."""
    n = len(x)
    if assignments == 1:
        w = vocabulary.assign(x, n_jobs=1) if words is None else np.asarray(words)
        sig = vocabulary.embedding.signatures(x, w) if signatures is None else signatures
        return HammingQuery.one_word(w, sig)
    nearest = vocabulary.assign_multiple(x, assignments)
    feature = np.repeat(np.arange(n, dtype=np.int64), nearest.shape[1])
    w = nearest.reshape(-1)
    return HammingQuery(w, vocabulary.embedding.signatures(x[feature], w), feature,
                        assignments)


@dataclasses.dataclass
class QueryContext:
    """The query's features outside its box: the scene around the object.

    Where a database image shows the same scene, their motion is the background's, and
    the in-box correspondences that follow it are background, not the object
    (:func:`_with_object`).

    Attributes
    ----------
    keypoints : (B, 4) float32 array
    descriptors : (B, 128) uint8 array
    words : (B,) int array or None
        Filled by :meth:`with_words` for verification by shared words.
    hamming : HammingQuery or None
        Filled by :meth:`with_hamming` for Hamming verification.
    """

    keypoints: np.ndarray
    descriptors: np.ndarray
    words: Optional[np.ndarray] = None
    hamming: Optional[HammingQuery] = None

    def with_words(self, index: Index) -> "QueryContext":
        """Fill ``words`` (once: kept for later calls); returns self."""
        if self.words is None:
            self.words = index.vocabulary.assign(rootsift(self.descriptors), n_jobs=1)
        return self

    def with_hamming(self, index: Index, assignments: int) -> "QueryContext":
        """Fill ``hamming`` (once per number of assignments); returns self."""
        if self.hamming is None or self.hamming.assignments != assignments:
            self.hamming = hamming_query(index.vocabulary, rootsift(self.descriptors),
                                         assignments)
        return self


@dataclasses.dataclass
class ObjectCue:
    """What verification needs of the query's object (its GrabCut segment).

    Attributes
    ----------
    on_object : (M,) bool array
        Which query features lie on the segment.
    box : (4,) float array
        The segment's bounding box x1, y1, x2, y2.
    plane_coverage, plane_perspective, min_votes, background_tolerance, plane_anisotropy
        See :class:`classicpr.config.MaskConfig`.
    may_be_plane : bool
        Whether a homography whose inliers cover the box (or foreshortened like a plane)
        makes the match a rigid plane; False where the box is known to hold an object
        apart from its surroundings (a relay's segmented object,
        :func:`relay_region`), so that a homography of the background around it cannot
        carry the box.
    """

    on_object: np.ndarray
    box: np.ndarray
    plane_coverage: float
    plane_perspective: float
    min_votes: int
    background_tolerance: float
    plane_anisotropy: float
    may_be_plane: bool = True


def object_cue(segment: np.ndarray, keypoints: np.ndarray, config: MaskConfig) -> ObjectCue:
    """The cue of an object given as a non-empty (H, W) bool segment of the image whose
    (M, 4) ``keypoints`` are the query's: which of them lie on it, and its bounding box."""
    h, w = segment.shape
    xy = np.clip(np.rint(keypoints[:, :2]).astype(int), 0, [w - 1, h - 1])
    return ObjectCue(segment[xy[:, 1], xy[:, 0]], np.array(mask_bbox(segment), np.float64),
                     config.plane_coverage, config.plane_perspective, config.min_votes,
                     config.background_tolerance, config.plane_anisotropy)


@dataclasses.dataclass
class PairVerification:
    """Verification of one database image.

    Attributes
    ----------
    plain : Verification
        The homography (plain or from synthesised views).
    rigid : bool
        The homography is accepted, and its inliers cover the query box
        (:func:`classicpr.verify.inlier_coverage`) or it foreshortens or stretches the box
        like a plane seen obliquely (:func:`classicpr.verify.perspective_ratio`,
        :func:`classicpr.verify.anisotropy`): the box moves as one rigid plane.
    object_location : ObjectLocation or None
        Where the query's object is, from the Hough clustering of its correspondences, when
        the box is not one rigid plane.
    object_points : (K, 2) float32 array or None
        Database positions of the object's matched features (GrabCut seeds).
    background_points : (B, 2) float32 array or None
        Database positions of correspondences that follow the background's motion, when
        the object moved against it (GrabCut background seeds).
    """

    plain: Verification
    rigid: bool = False
    object_location: Optional[ObjectLocation] = None
    object_points: Optional[np.ndarray] = None
    background_points: Optional[np.ndarray] = None


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
        Ranking score (ASMK* similarity, or tf-idf cosine with ``retrieval.scoring="bow"``).
    inliers : int
        RANSAC inliers of the homography (also reported when it failed the gate).
    H : (3, 3) float64 array or None
        Homography query -> database image.
    polygon : (K, 2) float64 array or None
        The region (x, y), unclipped: the projected query box, or the outline of an object
        mask; for a ``weak`` result, the box projected by a similarity transform.
    mask : (H, W) bool array or None
        Pixel mask (for the localised results whose masks were computed).
    mask_method : str
        "projected", "object" (GrabCut of the localised object), "object-carried" (the
        query segment carried by the object's similarity, where GrabCut failed),
        "grabcut-region", or "" (no mask).
    db_points : (P, 2) float32 array or None
        Inlier locations in the database image.
    weak : bool
        True for a similarity-transform region of an unverified image.
    rigid : bool
        Verified, and the box moves as one rigid plane (see :class:`PairVerification`).
    object_location : ObjectLocation or None
        The query's object localised by Hough voting (``mask.method="grabcut"``) on a
        verified image whose box is not one rigid plane (None once a relay localised the
        image: its region is then the relay's).
    object_points : (K, 2) float32 array or None
        Matched object points in the database image.
    background_points : (B, 2) float32 array or None
        Points of the database image that follow the background's motion.
    view_tilt : float
        1.0, or the tilt of the synthesised query view whose homography verified the image.
    relay : int or None
        For an image verified through another verified result (relay localisation,
        :func:`relay_localise`): that result's image id; ``inliers`` and ``db_points`` are
        then those of the relay's match, ``H`` the composed query -> image homography.
    neighbour : int or None
        For an image ranked as a verified neighbour (:func:`verified_neighbours`): the
        image whose whole frame it matches. It has a region only where the region of a
        localised image near it verifies against it (:func:`localise_neighbours`;
        ``relay`` then names that image).
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
    rigid: bool = False
    object_location: Optional[ObjectLocation] = None
    object_points: Optional[np.ndarray] = None
    background_points: Optional[np.ndarray] = None
    view_tilt: float = 1.0
    relay: Optional[int] = None
    neighbour: Optional[int] = None

    @property
    def verified(self) -> bool:
        """True when a homography was accepted and passed the degeneracy checks."""
        return self.H is not None

    @property
    def localised(self) -> bool:
        """True when the query has a region in this image (verified, or weakly localised)."""
        return self.polygon is not None

    @property
    def placed_by_background(self) -> bool:
        """True when the query localised this image's object only with votes that mostly
        follow the background's motion (:attr:`ObjectLocation.follows_background`): where
        the object was, if it moved."""
        return self.object_location is not None and self.object_location.follows_background

    @property
    def box_only(self) -> bool:
        """True when the query verified this image but placed its object neither as a rigid
        plane nor by Hough voting: its region is the projected box, a guess where the
        object moved against the background the homography follows."""
        return self.verified and self.relay is None and not self.rigid and (
            self.object_location is None)

    def caption(self, rank: int) -> str:
        """What an overlay of this result at 1-based ``rank`` says about it."""
        if self.neighbour is not None:
            return f"#{rank} neighbour of a localised image" + (
                f", inliers {self.inliers}" if self.relay is not None else "")
        return f"#{rank} inliers {self.inliers}" + (" via a relay" if self.relay is not None
                                                    else "")


# ---------------------------------------------------------------------- 1. query features
def extract_query(index: Index, image, box=None) -> QueryFeatures:
    """SIFT features of the query inside its box, with their visual words, and those
    outside it (``context``).

    Parameters
    ----------
    index : Index
        Gives the feature settings and the vocabulary.
    image : path-like or (H, W[, 3]) uint8 array
    box : (4,) x1, y1, x2, y2, optional
        Whole image if None.

    Raises
    ------
    ValueError
        For a box that is not inside the image.
    """
    gray, scale, size = read_gray(image, index.feature_config.max_side)
    kps, desc = detect_sift(gray, index.feature_config, scale)
    valid = None if box is None else validate_box(box, size)
    inside = features_in_box(kps, valid)
    box = np.array([0, 0, size[0] - 1, size[1] - 1], np.float64) if valid is None else valid
    context = None if valid is None else QueryContext(kps[~inside], desc[~inside])
    return query_in_words(index, kps[inside], desc[inside], size, box, context, gray, scale)


def query_in_words(index: Index, keypoints: np.ndarray, descriptors: np.ndarray,
                   size: Tuple[int, int], box: np.ndarray,
                   context: Optional["QueryContext"] = None, gray: Optional[np.ndarray] = None,
                   scale: float = 1.0) -> QueryFeatures:
    """Query features (M, 4) keypoints and (M, 128) descriptors, each in its visual word
    with its Hamming signature, as the index assigns database features."""
    x = rootsift(descriptors)
    words = index.vocabulary.assign(x, n_jobs=1)
    return QueryFeatures(keypoints, descriptors, words,
                         index.vocabulary.embedding.signatures(x, words), size, box, gray,
                         scale, context)


# ---------------------------------------------------------------------- 2. retrieval
@dataclasses.dataclass
class RetrievalQuery:
    """The query as the ranking compares it (computed once, reused by query expansion).

    Attributes
    ----------
    words : (M,) int array
        "bow": the visual word of each in-box feature; "asmk": the distinct words of the
        features' multiple assignments, sorted (U,).
    vectors : (U, W) uint64 array or None
        "asmk": the aggregated binary vector in each word; None for "bow".
    """

    words: np.ndarray
    vectors: Optional[np.ndarray] = None


def retrieval_query(index: Index, query: QueryFeatures, config: RetrievalConfig
                    ) -> RetrievalQuery:
    """The query's bag of words ("bow") or its ASMK* vectors, each feature assigned to its
    ``config.query_assignments`` nearest words ("asmk")."""
    if config.scoring == "bow":
        return RetrievalQuery(query.words)
    x = rootsift(query.descriptors)
    nearest = index.vocabulary.assign_multiple(x, config.query_assignments)
    return RetrievalQuery(*index.vocabulary.embedding.aggregate(x, nearest))


def retrieve(index: Index, query: RetrievalQuery, config: RetrievalConfig,
             expansion: Sequence[Tuple[np.ndarray, np.ndarray]] = ()
             ) -> Tuple[np.ndarray, np.ndarray]:
    """Rank the whole database for a query (``config.scoring``).

    Parameters
    ----------
    index : Index
    query : RetrievalQuery
        From :func:`retrieval_query` with the same ``config``.
    config : RetrievalConfig
    expansion : sequence of (words (K,), signatures (K, W) uint64)
        Features of the best verified database images (average query expansion,
        :func:`expansion_features`): with "asmk", each source (the query
        and each image) votes once per word for the bits of the expanded vector; with
        "bow", their words are added to the query's bag.

    Returns
    -------
    ids : (n,) int64 array, best first
    scores : (n,) float32 array
    """
    if config.scoring == "bow":
        return index.retrieve(np.concatenate([query.words] + [np.asarray(w) for w, _ in expansion]))
    words, vectors = query.words, query.vectors
    if expansion:
        words, vectors = _expanded_vectors(words, vectors, expansion)
    return index.retrieve_asmk(words, vectors, config.alpha, config.tau)


def stored_ranking(index: Index, words: np.ndarray, signatures: np.ndarray,
                   config: RetrievalConfig) -> np.ndarray:
    """The database ranked for stored features of a database image: their words (K,) and
    signatures (K, W), one word per feature, scored with ``config.scoring`` (for "asmk"
    the signatures of a word taken by bitwise majority as its vector).

    Returns
    -------
    ids : (n,) int64 array, best first.
    """
    if config.scoring == "bow":
        return index.retrieve(words)[0]
    unique, vectors = _majority_by_word(words, signatures)
    return index.retrieve_asmk(unique, vectors, config.alpha, config.tau)[0]


def _majority_by_word(words: np.ndarray, vectors: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Distinct words (sorted) and the bitwise majority of the vectors in each; a tie takes
    the word's first vector in input order."""
    words = np.asarray(words, np.int64)
    order = np.argsort(words, kind="stable")
    unique, start, count = np.unique(words[order], return_index=True, return_counts=True)
    return unique, majority_signatures(np.asarray(vectors, np.uint64)[order], start, count)


def _expanded_vectors(words: np.ndarray, vectors: np.ndarray,
                      expansion: Sequence[Tuple[np.ndarray, np.ndarray]]
                      ) -> Tuple[np.ndarray, np.ndarray]:
    """Bitwise majority, per word, of the query's vector and of each expanding image's
    (itself the majority of its features' signatures in that word); ties keep the query's
    bit or, in words the query lacks, the first image's."""
    per_image = [_majority_by_word(w, sig) for w, sig in expansion]
    return _majority_by_word(np.concatenate([words] + [w for w, _ in per_image]),
                             np.concatenate([vectors] + [v for _, v in per_image]))


def reliable_images(index: Index, query: QueryFeatures, ids: np.ndarray, config: Config
                    ) -> List[Tuple[int, np.ndarray]]:
    """Hamming query expansion's reliable images: those among the first
    ``retrieval.expansion_top`` of a ranking ``ids`` whose Hamming correspondences with
    the query are close. Of the correspondences within ``verify.hamming_threshold`` of
    the signature bits (each query feature in its ``retrieval.query_assignments``
    nearest words; one pair per query feature and per image feature,
    :func:`classicpr.verify.hamming_correspondences`), at least
    ``retrieval.hqe_min_matches``, and at least ``retrieval.hqe_min_fraction`` of them,
    must lie within ``retrieval.hqe_threshold``. No geometry (Tolias and Jegou 2014): a
    quarter of the bits holds 90 % of true same-word pairs, while between unrelated
    images few pairs are that close, and with a coarse vocabulary the count alone grows
    with the number of pairs, so the fraction is required too.

    Returns
    -------
    list of (database id, (P,) int array: its features in correspondences within
    ``verify.hamming_threshold``), in ranking order.
    """
    rcfg = config.retrieval
    hamming = query.with_hamming(index, rcfg.query_assignments).hamming
    reliable = []
    for i in np.asarray(ids[: rcfg.expansion_top]).tolist():
        cand = index.candidate(i)
        n_bits = 64 * cand.signatures.shape[1]
        (_, close), (_, within) = (hamming_correspondences(
            hamming.words, hamming.signatures, cand.words, cand.signatures,
            int(fraction * n_bits), hamming.feature)
            for fraction in (rcfg.hqe_threshold, config.verify.hamming_threshold))
        if len(close) >= max(rcfg.hqe_min_matches, rcfg.hqe_min_fraction * len(within)):
            reliable.append((i, within))
    return reliable


def rank_database(index: Index, query: QueryFeatures, config: Config,
                  stats: Optional[Dict[str, float]] = None
                  ) -> Tuple[RetrievalQuery, np.ndarray, np.ndarray]:
    """The database ranked for a query before verification: :func:`retrieve`, then, with
    ``retrieval.expansion`` "hqe", Hamming query expansion (:func:`reliable_images`).

    Returns
    -------
    ranked_as : RetrievalQuery
        The query as ranked (without the expansion; average query expansion expands it).
    ids : (n,) int64 array, best first
    scores : (n,) float32 array
    """
    stats = stats if stats is not None else {}
    ranked_as = retrieval_query(index, query, config.retrieval)
    ids, scores = retrieve(index, ranked_as, config.retrieval)
    if config.retrieval.expansion == "hqe":
        t0 = time.perf_counter()
        ids, scores = _hamming_expansion(index, query, ranked_as, ids, scores, config, stats)
        stats["hqe_s"] = time.perf_counter() - t0
    return ranked_as, ids, scores


def _hamming_expansion(index: Index, query: QueryFeatures, ranked_as: RetrievalQuery,
                       ids: np.ndarray, scores: np.ndarray, config: Config,
                       stats: Dict[str, float]) -> Tuple[np.ndarray, np.ndarray]:
    """Hamming query expansion: the reliable images' (:func:`reliable_images`) features
    expand the query as average query expansion's do, and the database is ranked again;
    the ranking is kept where no image is reliable. ``retrieval.expansion_region``
    "image": all their features; "box" (without a homography, the box cannot be mapped):
    those in correspondences with the query's."""
    reliable = reliable_images(index, query, ids, config)
    stats["expansion_images"] = len(reliable)
    if not reliable:
        return ids, scores
    expansion = []
    for i, matched in reliable:
        cand = index.candidate(i)
        keep = slice(None) if config.retrieval.expansion_region == "image" else matched
        expansion.append((cand.words[keep], cand.signatures[keep]))
    return retrieve(index, ranked_as, config.retrieval, expansion)


# ---------------------------------------------------------------------- 3. verification
#: Database images' SIFT keypoints (N, 4) and descriptors (N, 128) by image id, read from
#: the feature store or extracted again from the image files (:func:`image_descriptors`)
#: and kept across a query's stages; None where they could not be had.
ImageFeatures = Dict[int, Optional[Tuple[np.ndarray, np.ndarray]]]


def _verify_batch(args) -> List[PairVerification]:
    """Verify a batch of candidates in a worker; descriptors (ratio method) are read from
    the feature store one candidate at a time, so memory stays bounded. ``log_tests`` is
    added to every model's log10 NFA (the homography tests each candidate can get)."""
    query, cue, candidates, config, store, log_tests = args
    ratio = config.method == "ratio"
    roots = _query_roots(query) if ratio else None
    out = []
    for cand in candidates:
        if ratio:
            cand, descriptors = _with_stored_keypoints(cand, store)
            out.append(_verify_by_ratio(query, roots, cue, cand, descriptors, config, log_tests))
            continue
        qi, di = _word_correspondences(query.words, query.hamming, cand, config)
        v = verify_pair(query.keypoints, cand.keypoints, qi, di, query.box, cand.size, config,
                        cand.feature_scale, log_tests)
        out.append(_with_object(PairVerification(v), query, cue, cand, qi, di,
                                lambda: _word_correspondences(query.context.words,
                                                              query.context.hamming, cand, config),
                                config))
    return out


def _query_roots(query: QueryFeatures) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """RootSIFT of the query's descriptors (M, 128) and of its context's (None without)."""
    context = query.context
    return rootsift(query.descriptors), (rootsift(context.descriptors)
                                         if context is not None else None)


def _verify_by_ratio(query: QueryFeatures, roots: Tuple[np.ndarray, Optional[np.ndarray]],
                     cue: Optional[ObjectCue], cand: StoredImage, descriptors: np.ndarray,
                     config: VerifyConfig, log_tests: float = 0.0) -> PairVerification:
    """One candidate verified with ratio-test correspondences between the query's RootSIFT
    (``roots``, :func:`_query_roots`) and the candidate's ``descriptors`` (N, 128) uint8, in
    the order of ``cand.keypoints``; localised by :func:`_with_object`."""
    qroot, croot = roots
    droot = rootsift(descriptors)
    qi, di = ratio_correspondences(qroot, droot, config.ratio)
    v = verify_pair(query.keypoints, cand.keypoints, qi, di, query.box, cand.size, config,
                    cand.feature_scale, log_tests)
    return _with_object(PairVerification(v), query, cue, cand, qi, di,
                        lambda: ratio_correspondences(croot, droot, config.ratio), config)


def _verify_candidates(query: QueryFeatures, cue: Optional[ObjectCue],
                       candidates: Sequence[StoredImage], config: VerifyConfig, store,
                       log_tests: float, n_jobs: Optional[int]) -> List[PairVerification]:
    """Plain verification of ``candidates`` in parallel batches (:func:`_verify_batch`),
    in their order."""
    jobs = [(query, cue, batch, config, store, log_tests)
            for batch in _batches(candidates, n_jobs)]
    return [p for batch in run_parallel(_verify_batch, jobs, n_jobs, progress=False)
            for p in batch]


def _retries_strict_hamming(config: VerifyConfig) -> bool:
    """Whether a shortlisted image that nothing verifies with Hamming correspondences (plain
    or through synthesised views) is verified once more with only those within
    ``config.hamming_retry_threshold``: where chance pairs outnumber the few true ones
    (extreme zoom, little overlap), the true ones alone can be meaningful to the
    a-contrario test. Both plain tries count in the number of false alarms (x2), so a
    chance model is no likelier to pass."""
    return (config.method == "hamming"
            and 0 < config.hamming_retry_threshold < config.hamming_threshold)


def _word_correspondences(words: Optional[np.ndarray], hamming: Optional[HammingQuery],
                          cand: StoredImage, config: VerifyConfig
                          ) -> Tuple[np.ndarray, np.ndarray]:
    """Correspondences through shared visual words between query features and a
    candidate's: ``config.method`` "hamming" uses ``hamming``, "words" the features'
    ``words`` (M,)."""
    if config.method == "hamming":
        return hamming_correspondences(hamming.words, hamming.signatures, cand.words,
                                       cand.signatures, _max_bits(config, cand),
                                       hamming.feature)
    return word_correspondences(words, cand.words, config.max_per_word)


def _max_bits(config: VerifyConfig, cand: StoredImage) -> int:
    """verify.hamming_threshold in bits of the index's signatures."""
    return int(config.hamming_threshold * 64 * cand.signatures.shape[1])


def _with_stored_keypoints(cand: StoredImage, store) -> Tuple[StoredImage, np.ndarray]:
    """The candidate with the feature store's keypoints (the order of its descriptors, and
    full precision), and its descriptors (N, 128) uint8."""
    keypoints, descriptors, _ = store.load(cand.name)
    return dataclasses.replace(cand, keypoints=keypoints, words=None, signatures=None), descriptors


def _with_object(pv: PairVerification, query: QueryFeatures, cue: Optional[ObjectCue],
                 cand: StoredImage, qi: np.ndarray, di: np.ndarray,
                 context_correspondences: Callable[[], Tuple[np.ndarray, np.ndarray]],
                 config: VerifyConfig) -> PairVerification:
    """For a verified image: rigid plane, or an object to localise by Hough voting.

    The box is a rigid plane when the homography's inliers cover it, or when the
    homography foreshortens it (perspective) or stretches it (anisotropy, a plane seen
    from afar) as a plane seen obliquely. Foreshortening is read off the
    best-supported homography that explains the inliers: a few inliers in one part of
    the box fit its perspective loosely, so where the background's motion (below)
    carries at least half of them, the background's homography is read instead (9
    inliers on a fence behind a car foreshortened the box 1.7 times, the 600 of the
    street around it 1.1 times). Where the background's motion carries fewer, the box
    moved against its background: an object in motion, not a plane seen obliquely (8
    inliers on a scooter that drove on foreshortened the box 12 times).

    The object's votes are its correspondences (``qi``, ``di`` on the query segment). When
    the features around the box (``query.context``, matched by ``context_correspondences``)
    verify a homography of their own, that is the background's motion: correspondences it
    explains within ``cue.background_tolerance`` of the image's long side are background
    (the query segment also holds some) and are left out of the votes; if the rest still
    localise the object, the background points seed GrabCut's background. Otherwise every
    correspondence on the segment votes, when the object did not move against its
    background (at least half of its votes follow the background's motion) or nothing
    around it matched. An object that moved and whose own votes do not localise it gets
    no location: the votes that follow the background are then mostly background on the
    segment's fringe, and would place the object where it was. Where most votes follow
    the background, the two cannot be told apart (a parked car; a horse that jumped on,
    whose segment held the fence behind it): the location found is marked
    ``follows_background``, and relays may place the object instead
    (:func:`relay_localise`, ``verify.relay_background_placed``).

    Unverified images are not localised this way: clusters of 3-10 agreeing votes occur by
    chance on unrelated images about as often as on true ones (docs/benchmarks.md)."""
    v = pv.plain
    if not v.verified:
        return pv
    if cue is None:
        pv.rigid = True
        return pv
    tolerance = cue.background_tolerance * max(cand.size)
    motion: List[Optional[Verification]] = []  # the background's, matched once if needed

    def background() -> Optional[Verification]:
        if not motion:
            motion.append(_background_motion(query, cand, context_correspondences, config)
                          if tolerance > 0 else None)
        return motion[0]

    def oblique(H: np.ndarray) -> bool:
        return (perspective_ratio(H, query.box) >= cue.plane_perspective
                or anisotropy(H, query.box) >= cue.plane_anisotropy)

    if cue.may_be_plane:
        pv.rigid = inlier_coverage(v.query_points, query.keypoints[:, :2], query.box, v.H,
                                   cand.size) >= cue.plane_coverage
        if not pv.rigid and oblique(v.H):
            H = v.H
            if background() is not None:
                follow = follows_motion(background().H, v.query_points, v.db_points, tolerance)
                H = background().H if 2 * follow.sum() >= v.inliers else None
            pv.rigid = H is not None and oblique(H)
        if pv.rigid:
            return pv
    votes, loc = cue.on_object[qi], None
    if background() is not None:
        still = follows_motion(background().H, query.keypoints[qi, :2],
                               cand.keypoints[di, :2], tolerance)
        moved = votes & ~still
        loc = hough_localise(query.keypoints, cand.keypoints, qi[moved], di[moved], cue.box,
                             cue.min_votes)
        if loc is not None:
            votes = moved
            pv.background_points = np.concatenate(
                [background().db_points, cand.keypoints[di[still], :2]]).astype(np.float32)
        elif 2 * (votes & still).sum() < votes.sum():
            return pv
    if loc is None:
        loc = hough_localise(query.keypoints, cand.keypoints, qi[votes], di[votes], cue.box,
                             cue.min_votes)
        if loc is not None and background() is not None:
            loc.follows_background = True
    if loc is not None:
        pv.object_location = loc
        pv.object_points = cand.keypoints[di[votes][loc.inliers], :2].astype(np.float32)
    return pv


def _background_motion(query: QueryFeatures, cand: StoredImage,
                       context_correspondences: Callable[[], Tuple[np.ndarray, np.ndarray]],
                       config: VerifyConfig) -> Optional[Verification]:
    """The homography of the query's surroundings into a candidate, verified like any
    other (None when the query has no context or it does not verify)."""
    if query.context is None or len(query.context.keypoints) < 4:
        return None
    ci, cdi = context_correspondences()
    w, h = query.size
    v = verify_pair(query.context.keypoints, cand.keypoints, ci, cdi,
                    np.array([0, 0, w - 1, h - 1], np.float64), cand.size, config,
                    cand.feature_scale)
    return v if v.verified else None


def verify_shortlist(index: Index, query: QueryFeatures, shortlist: Sequence[int],
                     config: VerifyConfig, cue: Optional[ObjectCue] = None,
                     n_jobs: Optional[int] = 1, stats: Optional[Dict[str, float]] = None,
                     retrieval: Optional[RetrievalConfig] = None,
                     read: Optional[ImageFeatures] = None) -> Dict[int, PairVerification]:
    """Verify the shortlisted database images, then (view synthesis) the most similar
    images that failed, in parallel batches.

    Plain verification runs on every shortlisted image. If any failed and
    ``config.synthesis_tilts`` is set, the query box is synthesised at the first tilt
    (:func:`classicpr.views.synthesize_views`, once per query); the views' own visual words
    query the inverted file, and the ``config.synthesis_candidates`` best-scoring images
    not verified yet (inside the shortlist or not: at extreme tilts the plain BoW score no
    longer ranks the right images first) are matched to the views. The next tilt is tried
    only for those still unverified among its own candidates. Images verified plainly are
    never matched to views. With Hamming correspondences, shortlisted images still
    unverified are then tried once more with the surest of them
    (:func:`_retries_strict_hamming`), and with ``config.hamming_localisation`` "image"
    those verified but not as a rigid plane are localised from their image files
    (:func:`_localise_from_images`).

    Parameters
    ----------
    index : Index
    query : QueryFeatures
    shortlist : sequence of int
        Database ids to verify.
    config : VerifyConfig
    cue : ObjectCue, optional
        The query's object: when given, each image whose box is not one rigid plane gets
        the object's Hough localisation.
    n_jobs : int
    stats : dict, optional
        Filled with counts: "plain_verified", "synthesis_tried", "synthesis_verified",
        "views", "strict_verified" (by the Hamming retry), "image_localisation_tried",
        "image_localised", and the seconds "synthesis_s" (view synthesis and view
        matching) and "image_localisation_s".
    retrieval : RetrievalConfig, optional
        How the synthesised views rank the database.
    read : dict, optional
        Database images' features already read (:data:`ImageFeatures`), filled with those
        read for localisation from the images.

    Returns
    -------
    dict image id -> PairVerification, for every image verified or tried.
    """
    stats = stats if stats is not None else {}
    stats.update(plain_verified=0, synthesis_tried=0, synthesis_verified=0, views=0,
                 synthesis_s=0.0, strict_verified=0, image_localisation_tried=0,
                 image_localised=0, image_localisation_s=0.0)
    if len(shortlist) == 0:
        return {}
    store = None
    if config.method == "ratio":
        store = index.feature_store()
        if store is None:
            raise ClassicPRError("ratio verification reads descriptors from the index's feature "
                                 "store (INDEX/features), which is missing; verify by words "
                                 "instead (--verify words)")
    candidates = [index.candidate(int(i)) for i in shortlist]
    # workers need no pixels, nor the context without an object to localise
    context = query.context if cue is not None else None
    if config.method == "hamming":
        query.with_hamming(index, config.query_assignments)
        if context is not None:
            context.with_hamming(index, config.query_assignments)
    elif context is not None and config.method == "words":
        context.with_words(index)
    sent = dataclasses.replace(query, gray=None, context=context)
    retry = _retries_strict_hamming(config)
    log_tests = float(np.log10(2.0)) if retry else 0.0
    plain = _verify_candidates(sent, cue, candidates, config, store, log_tests, n_jobs)
    verified = {c.image_id: p for c, p in zip(candidates, plain)}
    stats["plain_verified"] = sum(p.plain.verified for p in plain)
    if not (query.gray is None or config.synthesis_candidates == 0
            or all(p.plain.verified for p in plain)):
        _verify_views(index, query, verified, config, retrieval, store, n_jobs, stats)
    if retry:
        failed = [c for c in candidates if not verified[c.image_id].plain.verified]
        strict = dataclasses.replace(config, hamming_threshold=config.hamming_retry_threshold)
        retried = _verify_candidates(sent, cue, failed, strict, store, log_tests, n_jobs)
        for c, p in zip(failed, retried):
            if p.plain.verified:
                verified[c.image_id] = p
        stats["strict_verified"] = sum(p.plain.verified for p in retried)
    if (config.method == "hamming" and config.hamming_localisation == "image"
            and cue is not None and index.image_dir is not None and len(query.descriptors)):
        _localise_from_images(index, sent, cue, verified, config, n_jobs, stats, read)
    return verified


def _localise_from_images(index: Index, query: QueryFeatures, cue: ObjectCue,
                          verified: Dict[int, PairVerification], config: VerifyConfig,
                          n_jobs: Optional[int], stats: Dict[str, float],
                          read: Optional[ImageFeatures] = None) -> None:
    """``verify.hamming_localisation`` "image": each image that Hamming correspondences
    verified but did not place as a rigid plane is matched again, by the ratio test,
    to its SIFT descriptors (:func:`image_descriptors`: from the feature store where it
    is there, else extracted again from its image file, the very features the index
    holds). Where that verifies, its verification and object localisation replace the
    Hamming ones in ``verified`` (image id -> PairVerification); elsewhere, and where
    the image cannot be read, the Hamming ones stay.

    Hamming correspondences are many and noisy: enough to verify an image and to fit a
    plane that covers the box, but among them the few votes of a moving object do not
    stand out, and Hough voting picks chance clusters. Only these images are read, a few
    per query, and GrabCut reads their pixels anyway. Features already in ``read``
    (image id -> keypoints, descriptors) are not read again, and those read are added to
    it. ``stats`` gains "image_localisation_tried", "image_localised" and
    "image_localisation_s"."""
    t0 = time.perf_counter()
    read = {} if read is None else read
    ids = sorted(i for i, p in verified.items() if p.plain.verified and not p.rigid)
    stats["image_localisation_tried"] = len(ids)
    _read_features(index, ids, read, n_jobs)
    ids = [i for i in ids if read[i] is not None]
    items = [(index.candidate(i), read[i]) for i in ids]
    jobs = [(query, cue, batch, dataclasses.replace(config, method="ratio"))
            for batch in _batches(items, n_jobs)]
    found = [p for batch in run_parallel(_verify_batch_by_ratio, jobs, n_jobs, progress=False)
             for p in batch]
    localised = {i: pv for i, pv in zip(ids, found) if pv.plain.verified}
    verified.update(localised)
    stats["image_localised"] = len(localised)
    stats["image_localisation_s"] = time.perf_counter() - t0


def _verify_batch_by_ratio(args) -> List[PairVerification]:
    """In a worker: each (candidate, its keypoints and descriptors) of a batch verified and
    localised by the ratio test (:func:`_verify_by_ratio`), its keypoints those given."""
    query, cue, items, config = args
    roots = _query_roots(query)
    return [_verify_by_ratio(query, roots, cue, dataclasses.replace(
                cand, keypoints=keypoints, words=None, signatures=None), descriptors, config)
            for cand, (keypoints, descriptors) in items]


def _verify_views(index: Index, query: QueryFeatures, verified: Dict[int, PairVerification],
                  config: VerifyConfig, retrieval: Optional[RetrievalConfig], store,
                  n_jobs: Optional[int], stats: Dict[str, float]) -> None:
    """View synthesis: match the query box's synthesised tilted views to the images most
    similar to them that are not verified yet, one tilt at a time; ``verified`` (image id
    -> PairVerification) gains every image tried."""
    t0 = time.perf_counter()
    for tilt in parse_tilts(config.synthesis_tilts):
        per_view = max(1, config.synthesis_features // len(view_angles(tilt)))
        views = synthesize_views(query.gray, query.scale, query.box, tilt,
                                 dataclasses.replace(index.feature_config, max_features=per_view))
        stats["views"] += len(views.angles)
        if len(views.keypoints) == 0:
            continue
        view_root = rootsift(views.descriptors)
        view_words = index.vocabulary.assign(view_root, n_jobs=1)
        ids = _views_ranking(index, views.view, view_root, view_words, retrieval)[0]
        chosen = [int(i) for i in ids if not (int(i) in verified and verified[int(i)].plain.verified)]
        chosen = chosen[: config.synthesis_candidates]
        if not chosen:
            break
        view_hamming = (hamming_query(index.vocabulary, view_root, config.query_assignments,
                                      view_words)
                        if config.method == "hamming" else None)
        jobs = [(views, view_words, view_hamming, batch, query.box, config, store)
                for batch in _batches([index.candidate(i) for i in chosen], n_jobs)]
        found = [v for batch in run_parallel(_views_batch, jobs, n_jobs, progress=False)
                 for v in batch]
        stats["synthesis_tried"] += len(chosen)
        for i, v in zip(chosen, found):
            if v.verified:  # a homography across views: the box is a plane
                verified[i] = PairVerification(v, rigid=True)
                stats["synthesis_verified"] += 1
            elif i not in verified:
                verified[i] = PairVerification(v)
    stats["synthesis_s"] = time.perf_counter() - t0


def _views_ranking(index: Index, view_of: np.ndarray, view_root: np.ndarray,
                   view_words: np.ndarray, retrieval: Optional[RetrievalConfig]
                   ) -> Tuple[np.ndarray, np.ndarray]:
    """The database ranked by the synthesised views' features.

    With ``retrieval.scoring`` "asmk", each view is a query of its own (one word per
    feature) and an image's score is the sum of its ASMK* similarities to the views:
    aggregating the features of all views in one word would let the views that do not
    match outvote the one that does. Otherwise tf-idf of all views' words together.

    Parameters
    ----------
    index : Index
    view_of : (V,) int array
        The view of each feature.
    view_root : (V, 128) float32 array
        The features' RootSIFT descriptors.
    view_words : (V,) int array
        Their visual words.
    retrieval : RetrievalConfig or None

    Returns
    -------
    ids : (n,) int64 array, best first
    scores : (n,) float array, in the same order
    """
    if retrieval is None or retrieval.scoring != "asmk":
        return index.retrieve(view_words)
    scores = np.zeros(len(index.names), np.float64)
    for v in np.unique(view_of):
        mine = view_of == v
        words, vectors = index.vocabulary.embedding.aggregate(view_root[mine], view_words[mine])
        ids, similarity = index.retrieve_asmk(words, vectors, retrieval.alpha, retrieval.tau)
        scores[ids] += similarity
    order = np.argsort(-scores, kind="stable")
    return order, scores[order]


def _batches(items: Sequence, n_jobs: Optional[int]) -> List[Sequence]:
    """Split work into one batch (one core) or 4 batches per core (load balance)."""
    workers = effective_n_jobs(n_jobs)
    n_batches = 1 if workers == 1 else min(len(items), 4 * workers)
    bounds = np.linspace(0, len(items), n_batches + 1).astype(int)
    return [items[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _views_batch(args) -> List[Verification]:
    """Match the synthesised views of the query to a batch of candidates (in a worker)."""
    views, view_words, view_hamming, candidates, box, config, store = args
    vroot = rootsift(views.descriptors) if config.method == "ratio" else None
    # each view's features, words and Hamming entries (the same for every candidate)
    per_view = [(idx, view_words[idx],
                 None if view_hamming is None else view_hamming.subset(idx))
                for idx in (views.of_view(v) for v in range(len(views.angles)))]
    out = []
    for cand in candidates:
        if config.method == "ratio":
            cand, desc = _with_stored_keypoints(cand, store)
            qi, di = ratio_correspondences(vroot, rootsift(desc), config.ratio)
        else:  # bursty words are judged within each view
            pairs = [_word_correspondences(words, hamming, cand, config)
                     for _, words, hamming in per_view]
            qi = np.concatenate([idx[q] for (idx, _, _), (q, _) in zip(per_view, pairs)]
                                + [np.zeros(0, np.int64)])
            di = np.concatenate([d for _, d in pairs] + [np.zeros(0, np.int64)])
        out.append(verify_views(views.keypoints, views.view, cand.keypoints, qi, di, box,
                                cand.size, views.tilt, config, cand.feature_scale))
    return out


def expansion_features(index: Index, results: Sequence["QueryResult"], box: np.ndarray,
                       top: int, region: str = "image") -> List[Tuple[np.ndarray, np.ndarray]]:
    """What average query expansion adds to the query: the words and signatures of the first
    ``top`` verified results' features (``region`` "image": all of them; "box": those that
    each image's homography maps back inside the query box).

    Parameters
    ----------
    index : Index
    results : sequence of QueryResult
        Ranked (:func:`rank_results`): verified images come first, most inliers first.
    box : (4,) array
        The query box x1, y1, x2, y2.
    top : int
    region : {"image", "box"}

    Returns
    -------
    list of (words (K,), signatures (K, W) uint64), one per expanding image.
    """
    if region not in ("image", "box"):
        raise ValueError(f"expansion region must be 'image' or 'box', not {region!r}")
    out = []
    for r in [r for r in results if r.verified][:top]:
        cand = index.candidate(r.image_id)
        if region == "image":
            out.append((cand.words, cand.signatures))
            continue
        try:
            back = project_points(np.linalg.inv(r.H), cand.keypoints[:, :2])
        except np.linalg.LinAlgError:
            continue
        inside = features_in_box(back, box)
        if inside.any():
            out.append((cand.words[inside], cand.signatures[inside]))
    return out


# ---------------------------------------------------------------------- 4. ranking
def rank_results(index: Index, ids: np.ndarray, scores: np.ndarray,
                 verified: Mapping[int, PairVerification]) -> List[QueryResult]:
    """Results in final order: verified images first (most inliers first), then every
    other image in ranking order.

    Parameters
    ----------
    ids, scores : (n,) arrays
        The ranking of the whole database (:func:`retrieve`).
    verified : mapping image id -> PairVerification
        The images verification tried (verified or not).
    """
    results = [QueryResult(int(i), index.names[i], float(s)) for i, s in zip(ids, scores)]
    for r in results:
        pv = verified.get(r.image_id)
        if pv is None:
            continue
        v = pv.plain
        r.inliers, r.H, r.view_tilt = v.inliers, v.H, v.view_tilt
        if v.localised:
            r.polygon, r.db_points, r.weak = v.quad, v.db_points, v.weak
        r.rigid, r.object_location, r.object_points = pv.rigid, pv.object_location, pv.object_points
        r.background_points = pv.background_points
    order = sorted(range(len(results)), key=lambda k: (
        (0, -results[k].inliers, -results[k].score, results[k].image_id)
        if results[k].verified else (1, k, 0, 0)))
    return [results[k] for k in order]


def _expand(index: Index, query: QueryFeatures, ranked_as: RetrievalQuery, ids: np.ndarray,
            scores: np.ndarray, verified: Dict[int, PairVerification], cue: Optional[ObjectCue],
            config: Config, n_jobs: Optional[int], stats: Dict[str, float],
            read: Optional[ImageFeatures] = None):
    """Average query expansion: rank again with the best verified images' features, then
    verify the newly shortlisted images (plainly: their views were matched already)."""
    expansion = expansion_features(index, rank_results(index, ids, scores, verified),
                                   query.box, config.retrieval.expansion_top,
                                   config.retrieval.expansion_region)
    stats["expansion_images"] = len(expansion)
    if not expansion:
        return ids, scores, verified
    ids, scores = retrieve(index, ranked_as, config.retrieval, expansion)
    shortlist = ids if config.verify.shortlist is None else ids[: config.verify.shortlist]
    new = [int(i) for i in shortlist if int(i) not in verified]
    plain = dataclasses.replace(config.verify, synthesis_candidates=0)
    more = verify_shortlist(index, query, new, plain, cue, n_jobs, {}, read=read)
    stats["expansion_tried"] = len(new)
    stats["expansion_verified"] = sum(p.plain.verified for p in more.values())
    return ids, scores, {**verified, **more}


# ---------------------------------------------------------------------- 5. masks
def query_object_segment(image, query: QueryFeatures, config: MaskConfig,
                         given: Optional[np.ndarray] = None
                         ) -> Tuple[Optional[np.ndarray], Optional[ObjectCue],
                                    Optional[ColourExemplar]]:
    """GrabCut segment of the object in the query box (or the object's mask, ``given``),
    the cue verification uses, and the colour exemplar GrabCut uses in database images.

    Parameters
    ----------
    image : path-like or (H, W[, 3]) uint8 array
    query : QueryFeatures
    config : MaskConfig
    given : (H, W) bool array, optional
        The query's object, known: used as the segment instead of GrabCut's.

    Returns
    -------
    segment : (H, W) bool array or None
        None when GrabCut finds no plausible object.
    cue : ObjectCue or None
    exemplar : ColourExemplar or None
        None without a segment, or with ``config.query_colours`` False.

    Raises
    ------
    ValueError
        For a ``given`` mask of another size than the query image, or empty.
    """
    if isinstance(image, np.ndarray):
        colour = as_bgr(image, "the query image")
    else:
        colour = read_image_at_size(image, query.size)
    if given is None:
        segment = segment_query(colour, query.box, config)
    else:
        segment = np.asarray(given).astype(bool)
        w, h = query.size
        if segment.ndim != 2:
            raise ValueError(f"the query mask must be one (H, W) channel, got shape "
                             f"{segment.shape}")
        if segment.shape != (h, w):
            raise ValueError(f"the query mask is {segment.shape[1]} x {segment.shape[0]} "
                             f"pixels, the query image {w} x {h}")
        if not segment.any():
            raise ValueError("the query mask is empty")
    if segment is None:
        return None, None, None
    exemplar = colour_exemplar(colour, segment, query.box, config) if config.query_colours else None
    return segment, object_cue(segment, query.keypoints, config), exemplar


def _object_mask_one(args):
    """GrabCut of one database image around a carried segment: (mask or None, None), or
    (None, the reason) when the image cannot be read (moved or deleted since indexing)."""
    path, size, carried, points, background, config, exemplar = args
    try:
        image = read_image_at_size(path, size)
    except ImageReadError as exc:
        return None, str(exc)
    return object_mask(image, carried, points, config, background, exemplar), None


def _refine_one(args):
    """:func:`classicpr.masks.refine_region` of one database image: (MaskResult, None), or
    (None, the reason) when the image cannot be read."""
    path, size, quad, points, config = args
    try:
        image = read_image_at_size(path, size)
    except ImageReadError as exc:
        return None, str(exc)
    return refine_region(image, quad, points, config), None


def compute_masks(index: Index, results: Sequence[QueryResult], segment: Optional[np.ndarray],
                  config: MaskConfig, n_jobs: Optional[int] = 1,
                  exemplar: Optional[ColourExemplar] = None) -> None:
    """Fill ``mask``, ``mask_method`` and ``polygon`` of the localised results among
    ``results`` (at most ``config.top`` of them), in place.

    Rigid planes (and every verified image with ``method="projected"``) get the projected
    box; with ``method="grabcut"`` a localised object is segmented by GrabCut in the
    database image (:func:`classicpr.objects.object_mask`), falling back to the carried
    query segment, and a verified image whose object could not be localised keeps its
    projected box. "grabcut" and "grabcut-region" read database images
    (``index.image_path``). ``exemplar`` (:func:`query_object_segment`) joins GrabCut's
    colour models there.
    """
    localised = [r for r in results if r.localised]
    if config.top is not None:
        localised = localised[: config.top]
    plans = []
    for r in localised:
        size = index.image_size(r.image_id)
        if config.method == "grabcut-region" and r.verified:
            plans.append((r, "refine", None))
        elif (config.method == "grabcut" and segment is not None and not r.rigid
              and r.object_location is not None):
            plans.append((r, "object", carry_segment(segment, r.object_location.transform, size)))
        else:
            plans.append((r, "projected", None))
    _apply_mask_plans(index, plans, config, n_jobs, exemplar)


def _apply_mask_plans(index: Index, plans: Sequence[Tuple[QueryResult, str, Optional[np.ndarray]]],
                      config: MaskConfig, n_jobs: Optional[int],
                      exemplar: Optional[ColourExemplar] = None) -> None:
    """Fill the masks of results, in place: each planned "projected" (its polygon filled),
    "refine" (:func:`classicpr.masks.refine_region` of its polygon) or "object" (GrabCut
    around the carried (H, W) bool segment given, :func:`classicpr.objects.object_mask`;
    the carried segment itself where GrabCut fails; with the query's colour ``exemplar``).
    Database images are read in parallel workers; one that cannot be read (moved or
    deleted since indexing) is logged and keeps the mask that needs no pixels (the carried
    segment, or the projected region)."""
    refine = [r for r, how, _ in plans if how == "refine"]
    objects = [(r, carried) for r, how, carried in plans if how == "object"]
    for r, how, _ in plans:
        if how == "projected":
            r.mask, r.mask_method = projected_mask(r.polygon, index.image_size(r.image_id)), "projected"
    jobs = [(index.image_path(r.image_id), index.image_size(r.image_id), r.polygon, r.db_points,
             config) for r in refine]
    for r, (m, unread) in zip(refine, run_parallel(_refine_one, jobs, n_jobs, progress=False)):
        if m is None:
            log.warning("%s: its mask is the projected region", unread)
            r.mask, r.mask_method = projected_mask(r.polygon, index.image_size(r.image_id)), "projected"
        else:
            r.mask, r.mask_method = m.mask, m.method
    jobs = [(index.image_path(r.image_id), index.image_size(r.image_id), carried,
             r.object_points, r.background_points, config, exemplar) for r, carried in objects]
    for (r, carried), (m, unread) in zip(objects, run_parallel(_object_mask_one, jobs, n_jobs,
                                                               progress=False)):
        if unread is not None:
            log.warning("%s: its mask is the carried query segment", unread)
        mask, method = (m, "object") if m is not None else (carried, "object-carried")
        poly = mask_polygon(mask)
        if poly is not None:
            r.mask, r.polygon, r.mask_method = mask, poly, method
        else:
            r.mask, r.mask_method = projected_mask(r.polygon, index.image_size(r.image_id)), "projected"

# ---------------------------------------------------------------------- 6. relay localisation
def relay_region(relay: QueryResult, keypoints: np.ndarray, config: MaskConfig
                 ) -> Tuple[ObjectCue, np.ndarray]:
    """The object cue of a relay's mask on its (M, 4) ``keypoints`` and which of them
    form its region, (M,) bool: those on the mask where the mask is the projected query
    box, those in the mask's bounding box where GrabCut segmented it (see
    :func:`relay_query`). A segmented object is matched as an object, never as a rigid
    plane: the background in its bounding box often outnumbers it, and a homography of
    that background, which covers the box, would carry the mask to where the object was,
    not where it moved."""
    cue = object_cue(relay.mask, keypoints, config)
    if relay.mask_method == "projected":
        return cue, cue.on_object
    return dataclasses.replace(cue, may_be_plane=False), features_in_box(keypoints, cue.box)


def relay_ranking(index: Index, relay: QueryResult, config: Config) -> np.ndarray:
    """The database ranked for a relay's region (:func:`relay_region`) by its stored
    features (:func:`stored_ranking`), with ``config.retrieval``'s scoring.

    Returns
    -------
    ids : (n,) int64 array, best first (empty when the region holds no feature).
    """
    if not relay.mask.any():
        return np.zeros(0, np.int64)
    stored = index.candidate(relay.image_id)
    _, region = relay_region(relay, stored.keypoints, config.mask)
    if not region.any():
        return np.zeros(0, np.int64)
    return stored_ranking(index, stored.words[region], stored.signatures[region],
                          config.retrieval)


def image_descriptors(index: Index, image_ids: Sequence[int], n_jobs: Optional[int] = 1
                      ) -> List[Optional[Tuple[np.ndarray, np.ndarray]]]:
    """Each database image's SIFT keypoints (N, 4) float32 and descriptors (N, 128) uint8:
    from the feature store, or, where it was deleted, extracted again from the images in
    parallel (the same features: the index's feature settings); None for each when
    neither the store nor the image folder is there, and for an image that cannot be
    read (logged)."""
    store = index.feature_store()
    if store is not None:
        return [store.load(index.names[i])[:2] for i in image_ids]
    if index.image_dir is None:
        return [None] * len(image_ids)
    jobs = [(index.image_path(i), index.feature_config) for i in image_ids]
    return list(run_parallel(_extract_one, jobs, n_jobs, progress=False))


def relay_descriptors(index: Index, relays: Sequence[QueryResult], n_jobs: Optional[int] = 1
                      ) -> List[Optional[Tuple[np.ndarray, np.ndarray]]]:
    """Each relay image's features (:func:`image_descriptors`)."""
    return image_descriptors(index, [r.image_id for r in relays], n_jobs)


def _read_features(index: Index, image_ids: Sequence[int], read: ImageFeatures,
                   n_jobs: Optional[int]) -> None:
    """Add to ``read`` the features (:func:`image_descriptors`) of the images not in it."""
    missing = [i for i in image_ids if i not in read]
    if missing:
        read.update(zip(missing, image_descriptors(index, missing, n_jobs)))


def _extract_one(args):
    path, feature_config = args
    try:
        keypoints, descriptors, _ = extract_image(path, feature_config)
    except ImageReadError as exc:
        log.warning("features extracted again: %s; the index's words and signatures "
                    "stand in for them", exc)
        return None
    return keypoints, descriptors


def relay_query(index: Index, relay: QueryResult, method: str, config: MaskConfig,
                features: Optional[Tuple[np.ndarray, np.ndarray]] = None
                ) -> Optional[Tuple[QueryFeatures, ObjectCue]]:
    """A verified result with a mask, as a query: its features in its region (all others
    are the context), the mask's bounding box as its box, the mask as its object.

    Where the relay's mask is the projected query box (``mask_method`` "projected"), that
    mask is its region, exactly: the rectangle around an oblique plane also holds
    background, which other images may share and which would verify them through the
    relay. A GrabCut mask of an object is an estimate, and its region is the mask's
    bounding box, as a user's box around the object; the object is told from that
    background by voting with the features on the mask (the cue's ``on_object``), as for
    the query.

    Parameters
    ----------
    index : Index
    relay : QueryResult
        Verified, with ``mask`` set.
    method : {"ratio", "hamming", "words"}
        What verification matches. "ratio" and "hamming" take the relay's keypoints and
        descriptors (``features``, else :func:`relay_descriptors`), so that Hamming
        verification assigns each of them to its ``verify.query_assignments`` nearest
        words as it does the query's (``hamming`` is left for
        :meth:`QueryFeatures.with_hamming`); without descriptors, "hamming" and "words"
        use the index's stored words and
        signatures, each feature in its one word as the index assigned it
        (``descriptors`` left empty, ``hamming`` filled with that one assignment).
    config : MaskConfig
        The cue's object parameters.
    features : (keypoints (N, 4), descriptors (N, 128)), optional
        The relay's features, when already read.

    Returns
    -------
    (QueryFeatures, ObjectCue of its features), or None when the mask is empty or holds
    no feature.
    """
    if not relay.mask.any():
        return None
    if method in ("ratio", "hamming") and features is None:
        features = relay_descriptors(index, [relay])[0]
    with_descriptors = method in ("ratio", "hamming") and features is not None
    if with_descriptors:
        keypoints, descriptors = features
    else:
        stored = index.candidate(relay.image_id)
        keypoints, words, signatures = stored.keypoints, stored.words, stored.signatures
    cue, region = relay_region(relay, keypoints, config)
    on_mask = cue.on_object
    if not on_mask.any() or not region.any():
        return None
    size = index.image_size(relay.image_id)
    on_object = dataclasses.replace(cue, on_object=on_mask[region])
    if with_descriptors:
        context = QueryContext(keypoints[~region], descriptors[~region])
        return query_in_words(index, keypoints[region], descriptors[region], size, cue.box,
                              context), on_object
    no_descriptors = np.empty((0, 128), np.uint8)
    hamming = method == "hamming"
    context = QueryContext(keypoints[~region], no_descriptors,
                           None if hamming else words[~region],
                           HammingQuery.one_word(words[~region], signatures[~region])
                           if hamming else None)
    return QueryFeatures(keypoints[region], no_descriptors, words[region], signatures[region],
                         size, cue.box, context=context,
                         hamming=HammingQuery.one_word(words[region], signatures[region])
                         if hamming else None), on_object


def relay_localise(index: Index, results: List[QueryResult], config: Config,
                   n_jobs: Optional[int] = 1, stats: Optional[Dict[str, float]] = None,
                   read: Optional[ImageFeatures] = None,
                   exemplar: Optional[ColourExemplar] = None) -> List[QueryResult]:
    """Localise, through the best verified results, the best-ranked images that
    verification with the query did not localise, or localised only by the projected box
    (:attr:`QueryResult.box_only`: verified, but the object placed neither as a rigid
    plane nor by Hough voting, where it moved against the background that the homography
    follows) or by votes that mostly follow the background
    (:attr:`QueryResult.placed_by_background`: where the object was, if it moved).

    A video frame where the object turned, or a photo at a viewpoint too far from the
    query's, can still match a verified image in between. Each of the first
    ``verify.relay_images`` verified results with a mask (most inliers first; not those
    placed by the background, whose mask may be the background, unless
    ``verify.relay_background_placed`` is off) becomes a
    query (:func:`relay_query`: its features in its region, the mask its object) and
    is verified, like the query (same method, no view synthesis), against the first
    ``verify.relay_candidates`` results not localised yet (or placed only by such a
    guess) and the first
    ``verify.relay_retrieval`` such results in its own ranking (:func:`relay_ranking`:
    among many unrelated images, a frame where the object turned ranks far down the
    query's ranking but near the frame beside it); relays are tried in that order
    and the first that verifies an image localises it, if the relay's region moves as one
    rigid plane (only a relay whose mask is the projected query box can: a segmented
    object is always localised as an object, :func:`relay_region`) or the object is
    localised by Hough voting (a verified match that is neither, which the query itself
    would keep with its projected box, is not trusted second hand). A rigid match
    carries the relay's region by its homography; an object that moved is localised by
    Hough voting on the relay's mask and segmented by GrabCut around the carried mask
    (:func:`classicpr.objects.object_mask`), as for the query itself. Relayed images do
    not relay further: a wrong one would carry its error on.

    Parameters
    ----------
    index : Index
    results : list of QueryResult
        Ranked (:func:`rank_results`), masks computed (:func:`compute_masks`).
    config : Config
    n_jobs : int
    stats : dict, optional
        Filled with "relay_tried" (images verified against relays) and "relay_verified".
    read : dict, optional
        Database images' features already read (:data:`ImageFeatures`), filled with
        those read here.
    exemplar : ColourExemplar, optional
        The query's colour exemplar, for GrabCut of the objects localised here.

    Returns
    -------
    list of QueryResult: the same results (those localised through a relay updated in
    place, ``relay`` set), ranked again: verified with the query (in their order, also
    those a relay localised again), then localised through a relay, then the rest in
    their order.
    """
    stats = stats if stats is not None else {}
    stats.update(relay_tried=0, relay_verified=0)
    vcfg = config.verify
    guess = vcfg.relay_background_placed
    relays = [r for r in results if r.verified and r.mask is not None
              and not (guess and r.placed_by_background)][: vcfg.relay_images]
    pending = [r for r in results if _relay_may_place(r, guess)][: vcfg.relay_candidates]
    if not relays or not (pending or vcfg.relay_retrieval):
        return results
    by_id = {r.image_id: r for r in results}
    by_query = {r.image_id for r in results if r.verified}
    relayed = _verify_with_relays(index, relays, pending, by_id, config, n_jobs, stats, read)
    stats["relay_verified"] = len(relayed)
    _relay_masks(index, relayed, config.mask, n_jobs, exemplar)
    first = [r for r in results if r.image_id in by_query]
    then = [r for r in results if r.relay is not None and r.image_id not in by_query]
    return first + then + [r for r in results if not r.verified]


def _relay_may_place(result: QueryResult, background_placed: bool = True) -> bool:
    """Whether a relay may localise ``result``: not localised, or placed by the query only
    as a guess (its projected box, :attr:`QueryResult.box_only`, or, with
    ``background_placed``, by votes that follow the background,
    :attr:`QueryResult.placed_by_background`)."""
    return not result.localised or result.box_only or (
        background_placed and result.placed_by_background)


def _verify_with_relays(index: Index, relays: Sequence[QueryResult],
                        pending: List[QueryResult], by_id: Mapping[int, QueryResult],
                        config: Config, n_jobs: Optional[int], stats: Dict[str, float],
                        read: Optional[ImageFeatures] = None
                        ) -> List[Tuple[QueryResult, QueryResult, PairVerification]]:
    """The verification of :func:`relay_localise`: each relay in turn verified against the
    ``pending`` results still not localised and (with ``verify.relay_retrieval``) its own
    best-ranked ones; the results it localises updated in place (not their masks) and
    returned with their relay and verification. ``read`` keeps the images' features
    (:data:`ImageFeatures`) by image id across calls."""
    vcfg = config.verify
    read = {} if read is None else read
    if vcfg.method in ("ratio", "hamming"):
        _read_features(index, [r.image_id for r in relays], read, n_jobs)
    relayed = []
    for relay in relays:
        candidates = [r for r in pending if r.image_id != relay.image_id]
        if vcfg.relay_retrieval:
            tried = {r.image_id for r in pending}
            own = [by_id[i] for i in relay_ranking(index, relay, config).tolist()
                   if i in by_id and i not in tried and i != relay.image_id
                   and _relay_may_place(by_id[i], vcfg.relay_background_placed)]
            candidates += own[: vcfg.relay_retrieval]
        found = _relay_matches(index, relay, candidates, config, n_jobs, stats, read)
        for r in candidates:
            if r.image_id in found:
                _localise_through(r, relay, found[r.image_id])
                relayed.append((r, relay, found[r.image_id]))
        pending = [r for r in pending if r.relay is None]
    return relayed


def _relay_matches(index: Index, relay: QueryResult, candidates: Sequence[QueryResult],
                   config: Config, n_jobs: Optional[int], stats: Dict[str, float],
                   read: ImageFeatures) -> Dict[int, PairVerification]:
    """Verify ``candidates`` against ``relay`` as a query (:func:`relay_query`; the
    verification's method, no view synthesis) and return, by image id, the verifications
    that may localise them: verified, and a rigid plane or the object localised by Hough
    voting (a verified match that is neither, which the query itself would keep with its
    projected box, is not trusted second hand). ``stats["relay_tried"]`` counts the
    candidates verified."""
    vcfg, mcfg = config.verify, config.mask
    if not candidates:
        return {}
    built = relay_query(index, relay, vcfg.method, mcfg, read.get(relay.image_id))
    if built is None:
        return {}
    query, cue = built
    # matched as the query is, without view synthesis; stored one-word features as the
    # index assigned them
    plain = dataclasses.replace(vcfg, synthesis_candidates=0, query_assignments=(
        vcfg.query_assignments if len(query.descriptors) else 1))
    found = verify_shortlist(index, query, [r.image_id for r in candidates], plain,
                             cue if mcfg.method == "grabcut" else None, n_jobs, read=read)
    stats["relay_tried"] = stats.get("relay_tried", 0) + len(candidates)
    return {i: pv for i, pv in found.items()
            if pv.plain.verified and (pv.rigid or pv.object_location is not None)}


def _localise_through(result: QueryResult, relay: QueryResult, pv: PairVerification) -> None:
    """Give ``result`` the region that ``relay``'s verification ``pv`` carries from the
    relay (its mask is computed later, :func:`_relay_masks`), in place."""
    result.relay, result.inliers, result.db_points = relay.image_id, pv.plain.inliers, pv.plain.db_points
    result.H = pv.plain.H @ relay.H
    result.rigid = relay.rigid and pv.rigid
    result.object_location = None  # the query's own guess, which the relay replaces
    result.object_points, result.background_points = pv.object_points, pv.background_points
    result.polygon = project_points(pv.plain.H, relay.polygon)


def _relay_masks(index: Index, relayed: Sequence[Tuple[QueryResult, QueryResult, PairVerification]],
                 config: MaskConfig, n_jobs: Optional[int],
                 exemplar: Optional[ColourExemplar] = None) -> None:
    """Masks of the results localised through relays (as :func:`compute_masks`, the
    relay's mask standing for the query segment, the query's colour exemplar for the
    object's colours), in place."""
    plans = []
    for r, relay, pv in relayed:
        if config.method == "grabcut-region":
            plans.append((r, "refine", None))
        elif config.method == "grabcut" and not pv.rigid and pv.object_location is not None:
            plans.append((r, "object", carry_segment(relay.mask, pv.object_location.transform,
                                                     index.image_size(r.image_id))))
        else:
            plans.append((r, "projected", None))
    _apply_mask_plans(index, plans, config, n_jobs, exemplar)


# ---------------------------------------------------------------------- 7. verified neighbours
def frame_ranking(index: Index, image_id: int, config: RetrievalConfig) -> np.ndarray:
    """The database ranked for one database image's whole frame, by its stored features
    (:func:`stored_ranking`), with ``config.scoring``.

    Returns
    -------
    ids : (n,) int64 array, best first (the image itself included).
    """
    stored = index.candidate(image_id)
    return stored_ranking(index, stored.words, stored.signatures, config)


def nearest_frames(index: Index, image_id: int, config: RetrievalConfig) -> List[int]:
    """The ``config.neighbours`` database images nearest to one database image's whole
    frame (:func:`frame_ranking`, the image itself left out), nearest first."""
    ranked = [int(i) for i in frame_ranking(index, image_id, config) if int(i) != image_id]
    return ranked[: config.neighbours]


def frame_query(index: Index, image_id: int) -> QueryFeatures:
    """A database image's whole frame as a query for Hamming verification: its stored
    keypoints, words and signatures, each feature in its one word."""
    stored = index.candidate(image_id)
    w, h = index.image_size(image_id)
    return QueryFeatures(stored.keypoints, np.empty((0, 128), np.uint8), stored.words,
                         stored.signatures, (w, h), np.array([0.0, 0.0, w - 1.0, h - 1.0]),
                         hamming=HammingQuery.one_word(stored.words, stored.signatures))


def verified_neighbours(index: Index, results: List[QueryResult], config: Config,
                        n_jobs: Optional[int] = 1, stats: Optional[Dict[str, float]] = None,
                        read: Optional[ImageFeatures] = None,
                        exemplar: Optional[ColourExemplar] = None) -> List[QueryResult]:
    """Rank, right after the verified results, the images that show the same scene as a
    verified one: its verified neighbours.

    A video frame two steps from every frame the query or a relay localises, where the
    object turned or changed, matches neither; among many unrelated images its retrieval
    score is no better than theirs. Its neighbour frames match its whole frame, though.
    Each of the first ``retrieval.neighbour_sources`` verified results ranks the database by
    its whole frame (:func:`frame_ranking`); of its ``retrieval.neighbours`` most similar
    images, those not verified yet are verified against it, whole frame to whole frame,
    with Hamming correspondences of their stored features (no descriptor reads, no view
    synthesis), and those that verify are its neighbours. For ``retrieval.neighbour_hops``
    rounds, the neighbours found in one round look for neighbours in the next. The
    whole-frame match does not localise a neighbour: it says the scene is the same, not
    where the object is. With ``retrieval.neighbour_regions``, :func:`localise_neighbours`
    then matches the object's region in the localised images near each neighbour.

    Parameters
    ----------
    index : Index
    results : list of QueryResult
        Ranked, verified results first (:func:`relay_localise` or :func:`rank_results`).
        Only images among them can become neighbours.
    config : Config
    n_jobs : int
    stats : dict, optional
        Filled with "neighbours_tried" (pairs verified), "neighbours_found" and those of
        :func:`localise_neighbours`.
    read : dict, optional
        Relay features already read, for :func:`localise_neighbours`.
    exemplar : ColourExemplar, optional
        The query's colour exemplar, for GrabCut of the objects localised here.

    Returns
    -------
    list of QueryResult: the verified results, then the neighbours in the order found
    (``neighbour`` set; with a region where :func:`localise_neighbours` gave one), then
    the rest in their order.
    """
    stats = stats if stats is not None else {}
    stats.update(neighbours_tried=0, neighbours_found=0, neighbour_regions_tried=0,
                 neighbours_localised=0)
    rcfg = config.retrieval
    by_id = {r.image_id: r for r in results}
    sources = [r.image_id for r in results if r.verified][: rcfg.neighbour_sources]
    plain = dataclasses.replace(config.verify, method="hamming", synthesis_candidates=0,
                                query_assignments=1)
    found: List[int] = []
    nearest_of: Dict[int, List[int]] = {}
    for _ in range(rcfg.neighbour_hops):
        new = []
        for source in sources:
            nearest_of[source] = nearest = nearest_frames(index, source, rcfg)
            candidates = [i for i in nearest if i in by_id
                          and not by_id[i].verified and by_id[i].neighbour is None]
            if not candidates:
                continue
            checked = verify_shortlist(index, frame_query(index, source), candidates, plain,
                                       None, n_jobs)
            stats["neighbours_tried"] += len(candidates)
            for i in candidates:
                if checked[i].plain.verified:
                    by_id[i].neighbour = source
                    new.append(i)
        found += new
        sources = new[: rcfg.neighbour_sources]
        if not sources:
            break
    stats["neighbours_found"] = len(found)
    if not found:
        return results
    neighbours = [by_id[i] for i in found]
    if rcfg.neighbour_regions:
        localise_neighbours(index, neighbours, by_id, nearest_of, config, n_jobs, stats, read,
                            exemplar)
    return ([r for r in results if r.verified and r.neighbour is None] + neighbours
            + [r for r in results if not r.verified and r.neighbour is None])


def localise_neighbours(index: Index, neighbours: Sequence[QueryResult],
                        by_id: Mapping[int, QueryResult],
                        nearest_of: Mapping[int, Sequence[int]], config: Config,
                        n_jobs: Optional[int] = 1, stats: Optional[Dict[str, float]] = None,
                        read: Optional[ImageFeatures] = None,
                        exemplar: Optional[ColourExemplar] = None) -> None:
    """Localise verified neighbours through localised images whose whole frame they are
    near, where the object's region there verifies against them.

    A neighbour's whole-frame match (:func:`verified_neighbours`) says the scene is the
    same, not where the object is, which may have moved against it. Each neighbour is
    matched instead, as a relay is (:func:`relay_query`: the image's features in its
    region, its mask the object; the same verification, no view synthesis), against the
    localised images near it: the image it matched first, those whose whole-frame
    ranking held it among their ``retrieval.neighbours`` nearest, and those among the
    ``retrieval.neighbours`` nearest in its own whole-frame ranking
    (:func:`frame_ranking`), so that which images are near it does not depend on which
    verified results happened to find it. Of those that verify it as a rigid plane or
    with the object localised by Hough voting, the one with most inliers gives it its
    region and mask (``relay`` set to that image), whatever order they were found in.
    This goes in rounds: a neighbour localised in one round is a localised image for the
    neighbours near it in the next, so that the object is followed along a video frame
    by frame, each step verified on the object's own region; a neighbour not localised
    yet tries, in each round, the images near it that have been localised since.

    Parameters
    ----------
    index : Index
    neighbours : sequence of QueryResult
        The neighbours, ``neighbour`` set; those localised are updated in place.
    by_id : mapping of int to QueryResult
        Every result by image id, masks computed.
    nearest_of : mapping of int to sequence of int
        For each image whose whole frame :func:`verified_neighbours` ranked (its
        sources), its :func:`nearest_frames`; those of the other neighbours are ranked
        here.
    config : Config
    n_jobs : int
    stats : dict, optional
        Filled with "neighbour_regions_tried" (pairs verified) and "neighbours_localised".
    read : dict, optional
        Database images' features already read (:data:`ImageFeatures`, e.g. by
        :func:`relay_localise`), filled with those read here.
    exemplar : ColourExemplar, optional
        The query's colour exemplar, for GrabCut of the objects localised here.
    """
    stats = stats if stats is not None else {}
    stats.update(neighbour_regions_tried=0, neighbours_localised=0)
    read = {} if read is None else read

    def can_relay(i: int) -> bool:  # localised, by the query, a relay or this stage
        r = by_id.get(i)
        return r is not None and r.mask is not None and bool(r.mask.any())

    rcfg = config.retrieval

    near: Dict[int, List[int]] = {}  # image id -> the sources that ranked it nearest
    for source, nearest in nearest_of.items():
        for i in nearest:
            near.setdefault(i, []).append(source)

    def own_nearest(i: int) -> List[int]:  # the images nearest to its whole frame
        nearest = nearest_of[i] if i in nearest_of else nearest_frames(index, i, rcfg)
        return [j for j in nearest if j in by_id]

    near_of = {n.image_id: list(dict.fromkeys([n.neighbour, *near.get(n.image_id, ()),
                                               *own_nearest(n.image_id)]))
               for n in neighbours}
    tried: Dict[int, set] = {n.image_id: set() for n in neighbours}
    while True:
        # each neighbour not localised yet tries every image near it that has a region and
        # that it has not tried, grouped by that image; those localised in one round can
        # relay in the next
        by_relay: Dict[int, List[QueryResult]] = {}
        for n in neighbours:
            if n.localised:
                continue
            for i in near_of[n.image_id]:
                if i not in tried[n.image_id] and can_relay(i):
                    tried[n.image_id].add(i)
                    by_relay.setdefault(i, []).append(n)
        if not by_relay:
            break
        if config.verify.method in ("ratio", "hamming"):
            _read_features(index, list(by_relay), read, n_jobs)
        best: Dict[int, Tuple[QueryResult, PairVerification]] = {}
        for relay, pending in by_relay.items():
            counts = {"relay_tried": 0}
            found = _relay_matches(index, by_id[relay], pending, config, n_jobs, counts, read)
            stats["neighbour_regions_tried"] += counts["relay_tried"]
            for n in pending:
                pv = found.get(n.image_id)
                if pv is not None and (n.image_id not in best
                                       or pv.plain.inliers > best[n.image_id][1].plain.inliers):
                    best[n.image_id] = (by_id[relay], pv)
        new = []
        for n in neighbours:
            if n.image_id in best:
                relay, pv = best[n.image_id]
                _localise_through(n, relay, pv)
                new.append((n, relay, pv))
        _relay_masks(index, new, config.mask, n_jobs, exemplar)
        stats["neighbours_localised"] += len(new)


# ---------------------------------------------------------------------- the query
#: The stages :func:`run_query` times, in order (seconds in its ``timing``).
QUERY_STAGES = ("features", "retrieval", "verification", "masks", "relay", "neighbours")


def few_features_warning(n_features: int, min_inliers: int) -> Optional[str]:
    """What to tell a user whose query box holds too few features to verify anything
    (None when there are enough)."""
    if n_features >= min_inliers:
        return None
    return (f"the query box holds only {n_features} SIFT features (a homography needs "
            f"{min_inliers} inliers): no image can be verified and the ranking is by visual "
            "words alone; draw the box around a textured object")


def run_query(index: Index, image, box=None, config: Config = Config(),
              top: Optional[int] = None, n_jobs: Optional[int] = 1,
              timing: Optional[Dict[str, float]] = None,
              progress: Optional[Callable[[str], None]] = None,
              query_mask: Optional[np.ndarray] = None) -> List[QueryResult]:
    """Run one pixel-retrieval query.

    Parameters
    ----------
    index : Index
    image : path-like or (H, W[, 3]) uint8 array
        Query image.
    box : (4,) x1, y1, x2, y2, optional
        Query box (whole image if None, or the bounding box of ``query_mask``).
    config : Config
        ``verify`` and ``mask`` sections apply; ``features`` are the index's.
    top : int, optional
        Return only the first ``top`` results (default: the whole database ranking); masks
        are computed for the localised results among them. GrabCut masks are delivered
        without their stray regions (:func:`classicpr.masks.drop_stray_regions`), once
        relays and neighbours, which carry the masks as made, are done.
    n_jobs : int
        Cores for verification and masks.
    timing : dict, optional
        Filled with seconds spent in "features", "retrieval" (with Hamming query
        expansion), "verification" (of which "synthesis_s" in view synthesis), "expansion_s"
        (query expansion, either kind), "masks",
        "relay" (:func:`relay_localise`, with its masks), "neighbours"
        (:func:`verified_neighbours` and :func:`localise_neighbours`), and the counts of
        :func:`verify_shortlist`, :func:`relay_localise`, :func:`verified_neighbours` and
        :func:`localise_neighbours` ("count_plain_verified", "count_synthesis_tried", ...,
        "count_relay_verified", "count_neighbours_found", "count_neighbours_localised")
        and "count_query_features".
        A box with fewer features than ``verify.min_inliers`` is logged as a warning
        (:func:`few_features_warning`).
    progress : callable, optional
        Called with the name of each stage as it starts ("features", "retrieval",
        "verification", "masks", "relay", "neighbours"), e.g. to show a long query's progress
        on a page.
    query_mask : (H, W) bool array, optional
        The query's object, where it is known (a labelled frame, a mask drawn by hand):
        with ``mask.method="grabcut"`` it replaces GrabCut's segment of the box.

    Returns
    -------
    list of QueryResult, best first.

    Examples
    --------
    >>> index = Index.load("my-index")                                   # doctest: +SKIP
    >>> results = run_query(index, "query.jpg", (10, 20, 300, 400), Config.preset("fast"),
    ...                     top=10)                                      # doctest: +SKIP
    >>> results[0].name, results[0].inliers, results[0].mask.shape       # doctest: +SKIP
    """
    if not isinstance(config, Config):
        raise TypeError(f"config must be a Config (e.g. Config().updated({{...}})), got "
                        f"{type(config).__name__}")
    if isinstance(image, np.ndarray):
        image = as_bgr(image, "the query image")
    check_index_time(config, index.feature_config)
    tell = progress or (lambda stage: None)
    t0 = time.perf_counter()
    tell("features")
    if box is None and query_mask is not None and np.any(query_mask):
        box = mask_bbox(np.asarray(query_mask, bool))
    query = extract_query(index, image, box)
    t1 = time.perf_counter()
    warning = few_features_warning(len(query.keypoints), config.verify.min_inliers)
    if warning:
        log.warning("%s", warning)
    tell("retrieval")
    stats: Dict[str, float] = {}
    ranked_as, ids, scores = rank_database(index, query, config, stats)
    t2 = time.perf_counter()
    tell("verification")
    shortlist = ids if config.verify.shortlist is None else ids[: config.verify.shortlist]
    segment = cue = exemplar = None
    if config.mask.method == "grabcut" and len(shortlist):
        segment, cue, exemplar = query_object_segment(image, query, config.mask, query_mask)
    t_segment = time.perf_counter() - t2  # counted in the mask stage
    read: ImageFeatures = {}  # database images' features, read once for all stages
    verified = verify_shortlist(index, query, shortlist, config.verify, cue, n_jobs, stats,
                                config.retrieval, read)
    t_expansion = time.perf_counter()
    if config.retrieval.expansion == "aqe" and len(shortlist):
        ids, scores, verified = _expand(index, query, ranked_as, ids, scores, verified, cue, config,
                                        n_jobs, stats, read)
    t_expansion = time.perf_counter() - t_expansion
    t3 = time.perf_counter()
    results = rank_results(index, ids, scores, verified)
    if top is not None:
        results = results[:top]
    tell("masks")
    compute_masks(index, results, segment, config.mask, n_jobs, exemplar)
    t_relay = time.perf_counter()
    if config.verify.relay_images:
        tell("relay")
        results = relay_localise(index, results, config, n_jobs, stats, read, exemplar)
    t4 = time.perf_counter()
    if config.retrieval.neighbours:
        tell("neighbours")
        results = verified_neighbours(index, results, config, n_jobs, stats, read, exemplar)
    t5 = time.perf_counter()
    for r in results:
        if r.mask is not None and r.mask_method not in ("projected", ""):
            r.mask = drop_stray_regions(r.mask, config.mask.stray_region_fraction,
                                        config.mask.stray_region_gap)
    t_stray = time.perf_counter() - t5
    if timing is not None:
        timing.update(features=t1 - t0, retrieval=t2 - t1, verification=t3 - t2 - t_segment,
                      masks=t_relay - t3 + t_segment + t_stray, relay=t4 - t_relay,
                      neighbours=t5 - t4)
        timing.update({f"count_{k}" if not k.endswith("_s") else k: v for k, v in stats.items()})
        timing["expansion_s"] = t_expansion + stats.get("hqe_s", 0.0)
        timing["count_query_features"] = len(query.keypoints)
    return results
