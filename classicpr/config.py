"""Every parameter of classicpr in one place: default, meaning, validation, named presets.

A :class:`Config` has four sections, each a frozen dataclass whose fields carry their own
help text and bounds (``field metadata``), so that the command line, ``classicpr config``,
the JSON files classicpr writes and the validation all read the same list::

    features    how SIFT is extracted (fixed when an index is built)
    vocabulary  the visual vocabulary trained when an index is built
    retrieval   how the database is ranked before verification, and query expansion
    verify      spatial verification of the shortlist
    mask        the region and pixel mask of each localised result

Keys are spelled ``section.field`` (``verify.ratio``), as in ``--set verify.ratio=0.8``.
Presets (:data:`PRESETS`) are named sets of such keys applied over the defaults:

``default``
    what ``classicpr query`` and ``classicpr evaluate`` run without options.
``fast``
    verification through shared visual words (no descriptor reads), no view synthesis,
    the projected box as mask: an eighth of the default's query time, about 10 points
    less mAP and 20 less S-mIoU on prmini-dev.
``paper``
    the benchmark paper's SIFT+SP recipe (An et al., ICCV 2023): bag-of-words order,
    ratio matching of the query against every database image, RANSAC with a gate of 12
    inliers, rank by inliers, region = projected box, no query expansion.
"""
from __future__ import annotations

import dataclasses
import json
import numbers
from typing import Any, Dict, Mapping, Optional, Tuple

from .errors import ClassicPRError


def _param(default, help: str, *, choices: Optional[Tuple] = None, low=None, high=None,
           none: Optional[str] = None):
    """A config field: its default, meaning, allowed values (``choices`` or the closed range
    [low, high]) and, if None is allowed, what None means."""
    return dataclasses.field(default=default, metadata={
        "help": help, "choices": choices, "low": low, "high": high, "none": none})


def parse_tilts(text: str) -> Tuple[float, ...]:
    """``"2,4"`` -> (2.0, 4.0); empty text -> () (no synthesis).

    Raises
    ------
    ValueError
        For a tilt that is not a number > 1.
    """
    out = []
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        try:
            t = float(part)
        except ValueError:
            raise ValueError(f"verify.synthesis_tilts must be numbers separated by commas, "
                             f"got {text!r}") from None
        if not 1.0 < t <= 16.0:
            raise ValueError(f"verify.synthesis_tilts: each tilt must be in (1, 16], got {t}")
        out.append(t)
    return tuple(out)


class _Section:
    """Validation, help and (de)serialisation shared by the config sections."""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            _check_value(type(self).SECTION, f, getattr(self, f.name))
        self._check()

    def _check(self) -> None:
        """Checks across fields or beyond type and range (sections override it)."""

    @classmethod
    def describe(cls) -> Dict[str, Dict[str, Any]]:
        """``{field: {"default", "help", ...}}`` for every field of the section."""
        return {f.name: {"default": f.default, **{k: v for k, v in f.metadata.items() if v is not None}}
                for f in dataclasses.fields(cls)}


def _check_value(section: str, f: dataclasses.Field, value) -> None:
    key, meta = f"{section}.{f.name}", f.metadata
    if value is None:
        if meta.get("none") is None:
            raise ValueError(f"{key} cannot be None")
        return
    kind = type(f.default) if f.default is not None else int
    abstract = {int: numbers.Integral, float: numbers.Real}.get(kind, kind)
    if (kind is not bool and isinstance(value, bool)) or not isinstance(value, abstract):
        raise ValueError(f"{key} must be {kind.__name__}, got {value!r}")
    if meta.get("choices") is not None and value not in meta["choices"]:
        raise ValueError(f"{key} must be one of {', '.join(map(str, meta['choices']))}; got {value!r}")
    low, high = meta.get("low"), meta.get("high")
    if low is not None and value < low or high is not None and value > high:
        bounds = (f">= {low}" if high is None else f"<= {high}" if low is None
                  else f"in [{low}, {high}]")
        raise ValueError(f"{key} must be {bounds}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class FeatureConfig(_Section):
    """How local features are extracted (one setting per index: queries use the index's).

    Attributes
    ----------
    max_side, max_features, contrast_threshold
        See each field's ``help`` (``FeatureConfig.describe()``).
    """

    SECTION = "features"
    max_side: int = _param(1024, "images are resized so that their long side is at most this "
                           "many pixels before SIFT (the benchmark paper works at ~1024)", low=32)
    max_features: int = _param(4000, "keep at most this many keypoints per image, strongest "
                               "first (0 = all): keeps all of a typical photo's 2-4k and bounds "
                               "foliage or gravel that make 10k+", low=0)
    contrast_threshold: float = _param(0.04, "OpenCV SIFT contrastThreshold (OpenCV's and "
                                       "Lowe's default)", low=0.0)


@dataclasses.dataclass(frozen=True)
class VocabularyConfig(_Section):
    """The visual vocabulary trained when an index is built without a given vocabulary.

    Attributes
    ----------
    size, seed, signature_bits
        See each field's ``help``.
    """

    SECTION = "vocabulary"
    size: Optional[int] = _param(None, "number of visual words", low=1, high=65536,
                                 none="the power of two nearest (training descriptors / 40), "
                                      "in [256, 16384]")
    seed: int = _param(0, "seed of k-means (training sample and initialisation)")
    signature_bits: int = _param(
        128, "length of the Hamming-embedding signature kept for every feature (8 bytes per "
        "64 bits): 128 ranks better, 64 halves the signatures' memory", choices=(64, 128))


@dataclasses.dataclass(frozen=True)
class RetrievalConfig(_Section):
    """How the database is ranked before verification, and query expansion.

    Attributes
    ----------
    scoring, alpha, tau, query_assignments, expansion, expansion_top, hqe_threshold,
    hqe_min_matches, hqe_min_fraction, expansion_region, neighbours, neighbour_sources,
    neighbour_hops, neighbour_regions
        See each field's ``help`` (``RetrievalConfig.describe()``).
    """

    SECTION = "retrieval"
    scoring: str = _param(
        "asmk", "'asmk' = ASMK* selective match kernel over the index's Hamming "
        "signatures (one binary vector per word and image, bursts counted once); 'bow' = "
        "tf-idf cosine of bags of words", choices=("asmk", "bow"))
    alpha: float = _param(3.0, "'asmk': selectivity exponent (Tolias et al.'s 3)", low=1.0)
    tau: float = _param(0.0, "'asmk': word similarities at or below this count 0 (in [-1, 1), "
                        "Tolias et al.'s 0)", low=-1.0, high=0.99)
    query_assignments: int = _param(
        5, "'asmk': each query feature counts in its this many nearest words (multiple "
        "assignment on the query side only, as in asmk)", low=1, high=32)
    expansion: str = _param(
        "aqe", "'aqe' = average query expansion: after verification, the query is "
        "expanded with the features of the best verified images (expansion_region), the "
        "database ranked again and new shortlisted images verified; 'hqe' = Hamming query "
        "expansion, without geometry: before verification, the first-ranked images whose "
        "Hamming correspondences with the query are close enough (hqe_threshold, "
        "hqe_min_matches, hqe_min_fraction) expand it with all their features, and the "
        "database is ranked again; 'none' = off", choices=("none", "aqe", "hqe"))
    expansion_top: int = _param(
        5, "'aqe': at most this many verified images (most inliers first) expand the query; "
        "'hqe': the first this many images of the ranking are tried", low=1)
    hqe_threshold: float = _param(
        0.25, "'hqe': most differing bits of a correspondence's signatures, as a fraction "
        "of their length (a quarter: 90 % of true same-word pairs are closer, chance pairs "
        "rarely are)", low=0.0, high=0.5)
    hqe_min_matches: int = _param(
        8, "'hqe': fewest such correspondences (one per query feature and per image "
        "feature) that make an image reliable enough to expand the query (as "
        "verify.min_inliers)", low=1)
    hqe_min_fraction: float = _param(
        0.2, "'hqe': ... and the smallest fraction they must be of the correspondences "
        "within verify.hamming_threshold (for prmini-dev's unrelated images, at most 8 % "
        "of those are this close)", low=0.0, high=1.0)
    expansion_region: str = _param(
        "image", "which features of each expanding image join the query: 'image' = "
        "all of them (the object's surroundings too, as query expansion with whole-image "
        "descriptors does); 'box' = with 'aqe', those its homography maps back inside the "
        "query box (Chum et al.'s spatially constrained expansion), with 'hqe' (no "
        "homography) those in Hamming correspondences with the query's",
        choices=("image", "box"))
    neighbours: int = _param(
        3, "verified neighbours: after relay localisation, each of the best verified images "
        "ranks the database by its whole frame, and those of its this many most similar "
        "images that verify against it (Hamming correspondences of stored features) rank "
        "right after the verified ones (0 = off)", low=0)
    neighbour_sources: int = _param(
        5, "verified neighbours: at most this many images look for neighbours in each "
        "round (first the verified ones, most inliers first; then the neighbours found in "
        "the round before)", low=1)
    neighbour_hops: int = _param(
        2, "verified neighbours: rounds; the neighbours found in one round look for "
        "neighbours in the next", low=1)
    neighbour_regions: bool = _param(
        True, "verified neighbours: each neighbour is matched, as a relay is (the image's "
        "features in its region, its mask the object), against the localised images near "
        "it (among its nearest whole frames, or ranking it among theirs; neighbours "
        "localised so included), and localised by the one that verifies it with most "
        "inliers; the others get no region (False = no neighbour gets one)")


@dataclasses.dataclass(frozen=True)
class VerifyConfig(_Section):
    """Spatial verification of the shortlist (:mod:`classicpr.verify`).

    Attributes
    ----------
    shortlist, method, hamming_threshold, hamming_retry_threshold, hamming_localisation,
    query_assignments, ratio, acceptance, min_inliers, weak_geometry, max_per_word,
    ransac_threshold, max_iters, refit, max_scale_change, min_area_fraction, synthesis_tilts,
    synthesis_candidates, synthesis_features, synthesis_fit, min_weak_inliers, relay_images,
    relay_candidates, relay_retrieval, relay_background_placed
        See each field's ``help`` (``VerifyConfig.describe()``).
    """

    SECTION = "verify"
    shortlist: Optional[int] = _param(
        100, "how many top BoW results are verified (0 = BoW ranking only)", low=0,
        none="every database image (exhaustive verification)")
    method: str = _param(
        "ratio", "correspondences: 'ratio' = RootSIFT ratio-test matching against the "
        "descriptors in INDEX/features; 'hamming' = features sharing a visual word whose "
        "Hamming signatures differ in at most hamming_threshold of their bits (no "
        "descriptors needed); 'words' = features sharing a visual word",
        choices=("ratio", "hamming", "words"))
    hamming_threshold: float = _param(
        0.375, "method 'hamming': most differing bits of a correspondence's signatures, as a "
        "fraction of their length (24 of 64 bits, Jegou et al.'s threshold)", low=0.0, high=0.5)
    hamming_retry_threshold: float = _param(
        0.3125, "method 'hamming': a shortlisted image that neither plain verification nor "
        "the synthesised views verify is verified once more with only the correspondences "
        "whose signatures differ in at most this fraction of their bits: fewer, surer pairs, "
        "for when chance pairs outnumber the true ones (extreme zoom); the a-contrario test "
        "counts both tries. Off at 0, or at or above hamming_threshold", low=0.0, high=0.5)
    hamming_localisation: str = _param(
        "image", "method 'hamming', mask method 'grabcut': how an image is localised that "
        "the Hamming correspondences verify but do not place as a rigid plane. 'image' = "
        "with ratio-test correspondences, as method 'ratio' localises it, on its SIFT "
        "descriptors: from INDEX/features where it is there, else extracted again from "
        "its file (which GrabCut reads anyway; about 0.2 s per image); 'signatures' = "
        "with the Hamming correspondences (no descriptors, noisier object votes)",
        choices=("image", "signatures"))
    query_assignments: int = _param(
        5, "method 'hamming': each feature of the query (and of a relay) is matched in its "
        "this many nearest words (multiple assignment on the query side, as "
        "retrieval.query_assignments)", low=1,
        high=32)
    ratio: float = _param(0.85, "Lowe's ratio for method 'ratio' (a little looser than 0.8, "
                          "since RANSAC follows)", low=0.0, high=1.0)
    acceptance: str = _param(
        "a-contrario", "when a homography is accepted: 'a-contrario' = its number of false "
        "alarms is below 1 (ORSA: as many inliers this close are unlikely by chance among "
        "this many correspondences) and it has at least min_inliers inliers; 'inliers' = "
        "at least min_inliers inliers", choices=("a-contrario", "inliers"))
    min_inliers: int = _param(8, "fewest RANSAC inliers of an accepted homography (with "
                              "acceptance 'inliers', common SIFT gates are 10-20)", low=5)
    weak_geometry: bool = _param(True, "keep only correspondences consistent with the dominant "
                                 "rotation and scale change before RANSAC")
    max_per_word: int = _param(4, "method 'words': words with more features than this in the "
                               "query or the candidate are ignored", low=1)
    ransac_threshold: float = _param(6.0, "RANSAC reprojection threshold in pixels of the "
                                     "max_side-px feature image (scaled per image)", low=0.0)
    max_iters: int = _param(10000, "RANSAC iterations at most (MAGSAC++ stops earlier when "
                            "confident)", low=1)
    refit: bool = _param(True, "refit the homography by least squares on its inliers (kept "
                         "only if it explains at least as many correspondences)")
    max_scale_change: float = _param(30.0, "a homography whose area scale at the box exceeds "
                                     "this factor squared (or its inverse) is degenerate", low=1.0)
    min_area_fraction: float = _param(0.0005, "the projected box must cover at least this "
                                      "fraction of the database image", low=0.0, high=1.0)
    synthesis_tilts: str = _param(
        "2.8", "affine view synthesis of the query box for candidates that fail plain "
        "verification: tilts tried in order, one step each, with ASIFT's directions "
        "(empty = off)")
    synthesis_candidates: int = _param(
        40, "at most this many unverified images are matched to the views of each tilt "
        "step, those most similar to the views' own visual words first (0 = off)", low=0)
    synthesis_features: int = _param(
        1500, "SIFT features of one tilt step, shared equally by its views (strongest "
        "first): bounds the matching cost per candidate", low=100)
    synthesis_fit: str = _param(
        "view", "'view' = one homography per synthesised view, the best accepted one kept; "
        "'pooled' = one homography over the matches of all views of a step, duplicates "
        "within 2 px removed", choices=("view", "pooled"))
    min_weak_inliers: int = _param(0, "when the homography fails, a similarity transform with "
                                   "at least this many inliers still gives a (weak, unverified) "
                                   "region; 0 = off (most weak regions mark wrong images)", low=0)
    relay_images: int = _param(
        3, "relay localisation: this many verified results (most inliers first, with a "
        "mask) each act as a query, their mask as its region, for the best-ranked images "
        "not localised yet; an image a relay verifies gets the relay's mask carried over "
        "(0 = off)", low=0)
    relay_candidates: int = _param(
        5, "relay localisation: how many of the best-ranked images not localised are "
        "verified against the relays", low=0)
    relay_retrieval: int = _param(
        5, "relay localisation: each relay also ranks the database by its own region's "
        "visual words, and this many of its best-ranked images not localised yet are "
        "verified against it too (0 = only the query's ranking)", low=0)
    relay_background_placed: bool = _param(
        True, "relay localisation: results whose object the query placed only with votes "
        "that mostly follow the background's motion (where the object was, if it moved) "
        "are among those relays try to localise, and relay nothing themselves (false: "
        "such a location is kept like any other)")


    def _check(self) -> None:
        parse_tilts(self.synthesis_tilts)


@dataclasses.dataclass(frozen=True)
class MaskConfig(_Section):
    """The region and mask of each localised result (:mod:`classicpr.masks`).

    Attributes
    ----------
    method, top, work_side, iterations, plane_coverage, plane_perspective, plane_anisotropy,
    query_colours, min_votes, background_tolerance, min_object_fraction, max_object_fraction,
    margin, min_keep, min_inlier_cover, stray_region_fraction, stray_region_gap, seed
        See each field's ``help`` (``MaskConfig.describe()``).
    """

    SECTION = "mask"
    method: str = _param(
        "grabcut", "'projected' = the query box projected by the homography; 'grabcut' = "
        "the projected box where the box moves as one rigid plane, else the query's object "
        "(its GrabCut segment) localised by Hough voting of its matches and segmented by "
        "GrabCut in the database image; "
        "'grabcut-region' = GrabCut refinement of the projected region",
        choices=("projected", "grabcut", "grabcut-region"))
    top: Optional[int] = _param(None, "compute masks for at most this many localised results, "
                                "best first", low=0, none="every localised result returned")
    work_side: int = _param(384, "long side of the image or crop GrabCut runs on", low=32)
    iterations: int = _param(4, "GrabCut iterations", low=1)
    plane_coverage: float = _param(
        0.85, "'grabcut': a verified image keeps the projected box (a rigid plane) when the "
        "homography's inliers reach at least this fraction of the 4x4 cells of the query "
        "box that hold features; below it the matches cover only part of the box (a moving "
        "or deforming object, a changed background) and the object is localised and "
        "segmented instead", low=0.0, high=1.0)
    plane_perspective: float = _param(
        1.5, "'grabcut': a verified image also keeps the projected box when its homography "
        "foreshortens the box this much (ratio of the largest to the smallest projective "
        "depth over the box corners; of the background's homography where that carries at "
        "least half of the inliers, being fitted to more of them): a plane seen obliquely, "
        "which an object moving in front of a background (near-affine motion) is not; "
        "where the background's motion is known and carries fewer than half of the "
        "inliers, the box moved against its background and is not kept",
        low=1.0)
    plane_anisotropy: float = _param(
        1.5, "'grabcut': a verified image also keeps the projected box when its homography "
        "stretches the box this much more in one direction than in the other (ratio of the "
        "singular values of its linear part at the box centre; of the background's "
        "homography as for plane_perspective): a plane seen obliquely from afar, which "
        "foreshortens without perspective; an object moving in front of its background "
        "turns and scales, near-similarly", low=1.0)
    query_colours: bool = _param(
        True, "'grabcut': GrabCut in a database image also learns its colour models from the "
        "query's object and surroundings (the query segment sure foreground, the rest of "
        "the box's neighbourhood sure background, placed beside the crop); False = from "
        "the database crop alone")
    min_votes: int = _param(
        3, "'grabcut': smallest Hough cluster of the object's correspondences that localises "
        "it (Lowe's 3)", low=3)
    background_tolerance: float = _param(
        0.02, "'grabcut': where the query's surroundings (features outside the box) verify a "
        "homography into the database image, correspondences it carries to within this "
        "fraction of the image's long side are background, not the object (0: off)", low=0.0)
    min_object_fraction: float = _param(0.10, "'grabcut': the query segment must cover at "
                                        "least this fraction of the box", low=0.0, high=1.0)
    max_object_fraction: float = _param(0.95, "'grabcut': ... and at most this fraction",
                                        low=0.0, high=1.0)
    margin: float = _param(0.08, "'grabcut-region': probable-background band around the "
                           "region, as a fraction of its bounding-box diagonal", low=0.0)
    min_keep: float = _param(0.45, "'grabcut-region': a refined mask smaller than this "
                             "fraction of the region is rejected", low=0.0, high=1.0)
    min_inlier_cover: float = _param(0.85, "'grabcut-region': a refined mask must contain this "
                                     "fraction of the inliers", low=0.0, high=1.0)
    stray_region_fraction: float = _param(
        0.2, "a GrabCut mask delivered drops its stray regions: those smaller than this "
        "fraction of its largest region and farther from it than stray_region_gap "
        "(0: keeps every region)", low=0.0, high=1.0)
    stray_region_gap: float = _param(
        0.25, "... distance from the largest region, as a fraction of the diagonal of its "
        "bounding box, beyond which a small region is stray", low=0.0)
    seed: int = _param(0, "seed of OpenCV's RNG for GrabCut's initialisation")


SECTIONS = {"features": FeatureConfig, "vocabulary": VocabularyConfig,
            "retrieval": RetrievalConfig, "verify": VerifyConfig, "mask": MaskConfig}


@dataclasses.dataclass(frozen=True)
class Config:
    """All of classicpr's parameters.

    Attributes
    ----------
    features : FeatureConfig
    vocabulary : VocabularyConfig
    retrieval : RetrievalConfig
    verify : VerifyConfig
    mask : MaskConfig

    Examples
    --------
    >>> cfg = Config.preset("fast").updated({"verify.shortlist": 200})
    >>> cfg.verify.method, cfg.verify.shortlist
    ('words', 200)
    """

    features: FeatureConfig = FeatureConfig()
    vocabulary: VocabularyConfig = VocabularyConfig()
    retrieval: RetrievalConfig = RetrievalConfig()
    verify: VerifyConfig = VerifyConfig()
    mask: MaskConfig = MaskConfig()

    def to_dict(self) -> Dict[str, Dict[str, Any]]:
        """Nested plain dict ``{section: {field: value}}`` (JSON-serialisable)."""
        return {name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Any]]) -> "Config":
        """The inverse of :meth:`to_dict`; sections or fields left out keep their defaults.

        Raises
        ------
        ValueError
            For an unknown section or field (naming the known ones) or an invalid value.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a config must be a mapping of sections, got {type(data).__name__}")
        unknown = set(data) - set(SECTIONS)
        if unknown:
            raise ValueError(f"unknown config section(s) {sorted(unknown)}; known: {list(SECTIONS)}")
        parts = {}
        for name, section in SECTIONS.items():
            values = data.get(name, {})
            if not isinstance(values, Mapping):
                raise ValueError(f"config section {name!r} must be a mapping, got {values!r}")
            known = [f.name for f in dataclasses.fields(section)]
            bad = set(values) - set(known)
            if bad:
                raise ValueError(f"unknown key(s) {sorted(f'{name}.{k}' for k in bad)}; "
                                 f"known {name} keys: {', '.join(known)}")
            parts[name] = section(**values)
        return cls(**parts)

    def updated(self, updates: Mapping[str, Any]) -> "Config":
        """A copy with dotted keys (``{"verify.ratio": 0.8}``) replaced; values may be
        strings as typed on a command line (:func:`parse_value`)."""
        data = self.to_dict()
        for key, value in updates.items():
            section, _, name = str(key).partition(".")
            if section not in SECTIONS or not name:
                raise ValueError(f"unknown config key {key!r}; keys are section.field with "
                                 f"section one of {list(SECTIONS)} (see 'classicpr config')")
            fields = {f.name: f for f in dataclasses.fields(SECTIONS[section])}
            if name not in fields:
                raise ValueError(f"unknown config key {key!r}; known {section} keys: "
                                 f"{', '.join(fields)}")
            data[section][name] = (parse_value(key, fields[name], value)
                                   if isinstance(value, str) else value)
        return Config.from_dict(data)

    @classmethod
    def preset(cls, name: str) -> "Config":
        """The named preset (see :data:`PRESETS`)."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
        return cls().updated(PRESETS[name])

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)


def parse_value(key: str, f: dataclasses.Field, text: str):
    """A field's value from command-line text ('none'/'all' for None where allowed)."""
    t = text.strip()
    if t.lower() in ("none", "all", "null") and f.metadata.get("none") is not None:
        return None
    kind = type(f.default) if f.default is not None else int
    try:
        if kind is bool:
            if t.lower() in ("1", "true", "yes", "on"):
                return True
            if t.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(t)
        return kind(t)
    except ValueError:
        raise ValueError(f"{key} expects {kind.__name__}, got {text!r}") from None


def parse_assignments(items) -> Dict[str, str]:
    """``["verify.ratio=0.8", ...]`` -> ``{"verify.ratio": "0.8"}``."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects key=value (e.g. verify.ratio=0.8), got {item!r}")
        out[key.strip()] = value
    return out


#: Named presets: dotted keys applied over the defaults.
PRESETS: Dict[str, Dict[str, Any]] = {
    "default": {},
    "fast": {"verify.method": "words", "verify.synthesis_candidates": 0,
             "mask.method": "projected"},
    "paper": {"verify.shortlist": None, "verify.method": "ratio", "verify.refit": False,
              "verify.min_weak_inliers": 0, "verify.acceptance": "inliers",
              "verify.min_inliers": 12, "verify.synthesis_candidates": 0,
              "mask.method": "projected", "retrieval.scoring": "bow",
              "retrieval.expansion": "none", "verify.relay_images": 0,
              "retrieval.neighbours": 0},
}


def describe_all() -> str:
    """Every key with its default and meaning, as the text of ``classicpr config --list``."""
    lines = []
    for name, section in SECTIONS.items():
        for field, info in section.describe().items():
            extra = []
            if info.get("choices"):
                extra.append("one of " + ", ".join(map(str, info["choices"])))
            if info.get("none"):
                extra.append(f"none = {info['none']}")
            lines.append(f"{name}.{field} = {info['default']!r}\n    {info['help']}"
                         + (f" ({'; '.join(extra)})" if extra else ""))
    return "\n".join(lines)


def check_index_time(config: Config, index_features: FeatureConfig) -> None:
    """Refuse a query config whose features differ from the index's (features are fixed
    when an index is built)."""
    if config.features != FeatureConfig() and config.features != index_features:
        raise ClassicPRError(f"features are fixed by the index ({dataclasses.asdict(index_features)}); "
                             "features.* settings apply when an index is built")
