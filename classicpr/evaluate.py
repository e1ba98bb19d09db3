"""A benchmark end to end: index, run every query, score, export in the official format.

Also scores result files made by any method (``score_result_files``), so published numbers
and classicpr's can be compared with the same code, in clean or official-quirks mode.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np

from .blas import environment
from .datasets import RevisitopDataset, load_label_polygons, load_revisitop, protocol_gnd
from .errors import ClassicPRError
from .config import Config
from .index import Index
from .formats import coco_results, write_mask
from .io import PathLike, image_size, list_images, write_json
from .metrics import (Prediction, clean_pair_iou, clean_pixel_scores, image_map,
                      official_pair_iou, official_pixel_scores, per_query_scores,
                      precision_recall_curve)
from .parallel import run_parallel
from .pipeline import QUERY_STAGES, run_query

log = logging.getLogger("classicpr")

_INDEX_CACHE: Dict[str, Index] = {}


def _cached_index(root: str, mtime: float) -> Index:
    key = f"{root}@{mtime}"
    if key not in _INDEX_CACHE:
        _INDEX_CACHE.clear()
        _INDEX_CACHE[key] = Index.load(root)
    return _INDEX_CACHE[key]


def check_benchmark(ds: RevisitopDataset, need_labels: bool, allow_missing: bool) -> RevisitopDataset:
    """Say precisely what is missing from a benchmark folder; restrict to present images if allowed."""
    miss = ds.missing_images()
    n_db, n_q = len(miss["database"]), len(miss["queries"])
    if n_db or n_q:
        listing = ", ".join((miss["database"] + miss["queries"])[:10])
        msg = (f"{ds.image_dir}: {n_db} of {len(ds.imlist)} database images and {n_q} of "
               f"{len(ds.qimlist)} query images are missing (e.g. {listing})")
        if not allow_missing:
            raise ClassicPRError(msg + "; download them (classicpr download) or pass "
                                 "--allow-missing to evaluate on the images present")
        log.warning("%s; evaluating on the images present", msg)
        ds = ds.restricted_to_present()
    if need_labels and not ds.has_labels():
        raise ClassicPRError(f"pixel labels missing: {ds.label_index_path()} not found")
    return ds


def _query_worker(args):
    (index_root, mtime, image, box, config, label_paths, export_dir, formats, q,
     query_mask) = args
    index = _cached_index(index_root, mtime)
    timing: Dict[str, float] = {}
    results = run_query(index, image, box, config, n_jobs=1, timing=timing,
                        query_mask=query_mask)
    ranking = np.array([r.image_id for r in results], np.int64)
    polygons, ious, coco = {}, {}, []
    for r in results:
        if not r.localised:
            continue
        polygons[r.image_id] = r.polygon.astype(np.float32)
        if export_dir is not None:
            entry = write_mask(export_dir, f"{q}_{r.image_id}", r.mask, index.image_path(r.image_id),
                               formats, r.image_id, r.inliers + r.score)
            if entry is not None:
                coco.append(dict(entry, query_id=q))
    by_id = {r.image_id: r for r in results}
    for i, lp in label_paths.items():
        r = by_id.get(i)
        polys = load_label_polygons(lp)
        size = index.image_size(i)
        pred = Prediction(r.polygon, r.mask) if r is not None and r.localised else None
        ious[i] = clean_pair_iou(pred, polys, size)
    return q, ranking, polygons, ious, timing, coco


def pixel_metrics(ds: RevisitopDataset, ranks: np.ndarray,
                  polygons: Mapping[Tuple[int, int], np.ndarray],
                  clean_ious: Mapping[Tuple[int, int], Tuple[float, float]],
                  official: bool, labels: Mapping[str, Path]) -> Tuple[dict, List[str]]:
    """mIoU and pixel mAP (percent) in clean or official-quirks mode.

    ``labels`` is ``ds.load_labels()``, already loaded by the caller.
    """
    if not official:
        return clean_pixel_scores(ranks, ds.gnd, clean_ious), []
    predicted, oious = {}, {}
    for q, g in enumerate(ds.gnd):
        for i in list(g.get("easy", [])) + list(g.get("hard", [])):
            pts = polygons.get((q, int(i)))
            if pts is not None and len(pts):
                predicted[(q, int(i))] = True
                lp = labels.get(f"{q}_{int(i)}")
                if lp is None:
                    raise ClassicPRError(f"no label for pair {q}_{i} in {ds.label_index_path()}")
                oious[(q, int(i))] = official_pair_iou(pts, load_label_polygons(lp))
    return official_pixel_scores(ds.name, ranks, ds.gnd, predicted, oious)


def _positive_labels(ds: RevisitopDataset, labels: Mapping[str, Path], q: int) -> Dict[int, Path]:
    out = {}
    for i in list(ds.gnd[q].get("easy", [])) + list(ds.gnd[q].get("hard", [])):
        key = f"{q}_{int(i)}"
        if key not in labels:
            raise ClassicPRError(f"no label for query-positive pair {key} in {ds.label_index_path()}")
        out[int(i)] = labels[key]
    return out


@dataclasses.dataclass(frozen=True)
class Distractors:
    """Unrelated images added to a benchmark's database (R1M-style).

    Attributes
    ----------
    folder : path-like
        E.g. ``revisitop/data/revisitop1m/jpg``.
    names : sequence of str, optional
        Paths relative to ``folder`` (e.g. the lines of ``revisitop1m.txt``); default: every
        image found there, sorted. One that cannot be read is skipped with a log line.
    """

    folder: PathLike
    names: Optional[Sequence[str]] = None


def evaluate_benchmark(root: PathLike, name: str, index_dir: PathLike,
                       config: Config = Config(), n_jobs: Optional[int] = None,
                       export_dir: Optional[PathLike] = None, official: bool = False,
                       allow_missing: bool = False, progress: bool = True,
                       distractors: Optional[Distractors] = None,
                       export_formats: Sequence[str] = ("png",),
                       query_masks: Optional[Mapping[int, np.ndarray]] = None) -> dict:
    """Index a revisitop-layout benchmark, run all its queries and score them.

    Parameters
    ----------
    root : path-like
        Folder holding ``revisitop/data/NAME``.
    name : str
        Data set name (``roxford5k``, ``rparis6k``, ``prmini``, ...).
    index_dir : path-like
        Index folder (built, or reused and completed, with ``config.features`` and
        ``config.vocabulary``).
    config : Config
    n_jobs : int, optional
        Cores in all; queries run in parallel, one core each.
    export_dir : path-like, optional
        Write ``ranks.npy``, ``matching_result.npy`` and the masks of localised results
        here, in ``export_formats``.
    official : bool
        Score with the published scripts' quirks (see ``docs/metrics.md``).
    allow_missing : bool
        Evaluate on the images present when some are missing.
    progress : bool
    export_formats : sequence of {"png", "labelme", "coco"}
        ``masks/{q}_{i}.png``, ``labelme/{q}_{i}.json`` and one ``coco_results.json``
        (image_id = database index, query_id = query index); see :mod:`classicpr.formats`.
    distractors : Distractors, optional
        Their ids follow the benchmark's own images (the revisitop convention), so rankings
        have ``n_db + n_distractors`` rows; the vocabulary is trained on the benchmark's
        images only.
    query_masks : mapping of int to (H, W) bool array, optional
        Known masks of some queries' objects (query number -> mask of the query image),
        used instead of GrabCut's segment of their boxes: how far a perfect query segment
        would take the pipeline (``benchmarks/query_segments.py``).

    Returns
    -------
    dict
        What ``classicpr evaluate --json`` writes: scores in percent, ``pairs`` (the clean
        D and S IoU of every query-positive pair), ``timing_s``, the ``config`` and the
        ``environment`` (library versions and BLAS kernels, :func:`classicpr.blas.environment`).
    """
    ds = load_revisitop(root, name)
    ds = check_benchmark(ds, need_labels=False, allow_missing=allow_missing)
    has_labels = ds.has_labels()
    labels = ds.load_labels() if has_labels else {}
    t0 = time.perf_counter()
    db_files = [ds.db_file(i) for i in range(len(ds.imlist))]
    image_dir, names = ds.image_dir, db_files
    if distractors is not None:
        image_dir, db_files, extra = database_with_distractors(
            ds.image_dir, db_files, distractors.folder, distractors.names, index_dir)
        names = db_files + extra
    index = Index.build(image_dir, index_dir, names=names, vocab_size=config.vocabulary.size,
                        feature_config=config.features, seed=config.vocabulary.seed,
                        n_jobs=n_jobs, progress=progress, train_names=db_files,
                        signature_bits=config.vocabulary.signature_bits,
                        ordered_names=db_files)
    if index.names[: len(db_files)] != db_files:
        bad = sorted(set(db_files) - set(index.names))
        reasons = dict(index.skipped)
        raise ClassicPRError(
            f"{len(bad)} database images could not be indexed: "
            + "; ".join(f"{reasons.get(n, n)}" for n in bad[:5])
            + ("; ..." if len(bad) > 5 else "")
            + ". Replace them (classicpr download) and run again: the index keeps the "
            "images already done")
    if distractors is not None:
        log.info("database: %d benchmark images + %d distractors (%d skipped)", len(db_files),
                 len(index.names) - len(db_files), len(names) - len(index.names))
    t_index = time.perf_counter() - t0
    index_root = str(Path(index_dir).resolve())
    mtime = (Path(index_dir) / "index.npz").stat().st_mtime
    if export_dir is not None:
        Path(export_dir).mkdir(parents=True, exist_ok=True)
    jobs = []
    for q in range(len(ds.qimlist)):
        lp = _positive_labels(ds, labels, q) if has_labels else {}
        jobs.append((index_root, mtime, str(ds.image_dir / ds.query_file(q)), ds.query_box(q),
                     config, lp, export_dir, tuple(export_formats), q,
                     None if query_masks is None else query_masks.get(q)))
    nq, n_db = len(ds.qimlist), len(index.names)
    ranks = np.zeros((n_db, nq), np.int64)
    polygons, clean_ious, per_query, counts, coco = {}, {}, [], {}, []
    stages: Dict[str, List[float]] = {}
    t1 = time.perf_counter()
    for q, ranking, polys, ious, timing, entries in run_parallel(
            _query_worker, jobs, n_jobs, desc="queries", progress=progress):
        coco.extend(entries)
        ranks[:, q] = ranking
        polygons.update({(q, i): p for i, p in polys.items()})
        clean_ious.update({(q, i): v for i, v in ious.items()})
        for k in QUERY_STAGES:
            stages.setdefault(k, []).append(timing[k])
        per_query.append(sum(v[-1] for v in stages.values()))
        for k, v in timing.items():
            if k.startswith("count_") or k.endswith("_s"):
                counts.setdefault(k.replace("count_", ""), []).append(v)
    t_queries = time.perf_counter() - t1
    out = _scores(ds, n_db, ranks, polygons, clean_ious, official, labels if has_labels else None)
    if distractors is not None:
        out["distractors"] = n_db - len(db_files)
    out["timing_s"] = {"index_build": t_index, "queries_total": t_queries,
                       "per_query_median": float(np.median(per_query)) if per_query else 0.0,
                       "synthesis_per_query_median": float(np.median(counts.get("synthesis_s", [0]))),
                       "expansion_per_query_median": float(np.median(counts.get("expansion_s", [0]))),
                       "stage_medians": {k: float(np.median(v)) for k, v in stages.items()},
                       "stage_means": {k: float(np.mean(v)) for k, v in stages.items()}}
    out["verification"] = {k: int(sum(v)) for k, v in counts.items() if not k.endswith("_s")}
    out["config"] = config.to_dict()
    out["environment"] = environment()
    if export_dir is not None:
        export_official(export_dir, ranks, polygons)
        if "coco" in export_formats:
            write_json(Path(export_dir) / "coco_results.json", coco_results(coco))
    return out


def _scores(ds: RevisitopDataset, n_db: int, ranks: np.ndarray,
            polygons: Mapping[Tuple[int, int], np.ndarray],
            clean_ious: Mapping[Tuple[int, int], Tuple[float, float]], official: bool,
            labels: Optional[Mapping[str, Path]]) -> dict:
    """The result dict of a run: image mAP, pixel scores when there are labels, per-pair
    IoUs, the mode and any warnings of the official scripts' quirks."""
    out = {"dataset": ds.name, "queries": len(ds.qimlist), "database": n_db}
    out["mAP"] = image_map(ranks, ds.gnd)["mAP"]
    out["pr_curve"] = {p: precision_recall_curve(ranks, protocol_gnd(ds.gnd, p)).round(4).tolist()
                       for p in ("medium", "hard")}
    out["per_query"] = [dict(query=ds.qimlist[q], **scores) for q, scores in enumerate(
        per_query_scores(ranks, ds.gnd, clean_ious if labels is not None else None))]
    warnings: List[str] = []
    if labels is not None:
        scores, warnings = pixel_metrics(ds, ranks, polygons, clean_ious, official, labels)
        out.update(scores)
        out["pairs"] = [{"query": ds.qimlist[q], "image": ds.imlist[i], "q": q, "i": i,
                         "iou_D": 100 * d, "iou_S": 100 * s_}
                        for (q, i), (d, s_) in sorted(clean_ious.items())]
    out["mode"] = "official_quirks" if official else "clean"
    if warnings:
        out["warnings"] = warnings
    return out


def database_with_distractors(image_dir: PathLike, db_files: Sequence[str], distractors: PathLike,
                              distractor_names: Optional[Sequence[str]], index_dir: PathLike
                              ) -> Tuple[Path, List[str], List[str]]:
    """One image folder for a benchmark plus distractors: ``INDEX/images`` holds two
    symbolic links, ``db`` (the benchmark's images) and ``distractors``.

    Returns
    -------
    image_dir : Path
        ``INDEX/images``.
    db_names, distractor_names : list of str
        Names relative to it (``db/...``, ``distractors/...``).
    """
    distractors = Path(distractors)
    if not distractors.is_dir():
        raise ClassicPRError(f"distractor folder not found: {distractors}")
    if distractor_names is None:
        distractor_names = list_images(distractors)
    if len(distractor_names) == 0:
        raise ClassicPRError(f"no distractor images in {distractors}")
    view = Path(index_dir) / "images"
    view.mkdir(parents=True, exist_ok=True)
    for link, target in (("db", Path(image_dir)), ("distractors", distractors)):
        path, target = view / link, target.resolve()
        if path.is_symlink():
            if Path(os.readlink(path)) == target:
                continue
            raise ClassicPRError(f"{index_dir} was built with {link} images from "
                                 f"{os.readlink(path)}, not {target}; use another index folder")
        tmp = view / f".{link}.tmp"
        tmp.unlink(missing_ok=True)
        try:
            os.symlink(target, tmp, target_is_directory=True)
            os.replace(tmp, path)
        except OSError as exc:
            raise ClassicPRError(f"cannot link {target} into {view} ({exc}); distractors need "
                                 "a file system with symbolic links") from None
    return view, [f"db/{n}" for n in db_files], [f"distractors/{n}" for n in distractor_names]


#: Query-name prefixes of prmini-dev's planar scenes, whose label is the query box projected
#: by a published homography.
PLANAR_PREFIXES = ("homogr_", "hpatches_")


def planar_pair_correspondences(ds: RevisitopDataset):
    """Ratio-test correspondences of every planar query-positive pair of a prmini-style
    benchmark (queries named with :data:`PLANAR_PREFIXES`), for homography studies.

    Yields
    ------
    (q, i, box, query_kps, db_kps, qi, di, size, label) : query and database ids, the query
    box (4,), in-box query keypoints (M, 4), database keypoints (N, 4), correspondences
    qi, di (P,), database (width, height) and the label polygon (K, 2).
    """
    from .features import FeatureConfig, extract_image, rootsift
    from .invfile import features_in_box
    from .verify import ratio_correspondences
    labels = ds.load_labels()
    for q, name in enumerate(ds.qimlist):
        if not name.startswith(PLANAR_PREFIXES):
            continue
        box = ds.query_box(q)
        qk, qd, _ = extract_image(ds.image_dir / ds.query_file(q), FeatureConfig())
        inside = features_in_box(qk, box)
        qk, qd = qk[inside], qd[inside]
        for i in list(ds.gnd[q]["easy"]) + list(ds.gnd[q]["hard"]):
            dk, dd, size = extract_image(ds.image_dir / ds.db_file(i), FeatureConfig())
            qi, di = ratio_correspondences(rootsift(qd), rootsift(dd))
            yield q, int(i), box, qk, dk, qi, di, size, load_label_polygons(labels[f"{q}_{i}"])[0]


def export_official(export_dir: PathLike, ranks: np.ndarray,
                    polygons: Mapping[Tuple[int, int], np.ndarray]) -> None:
    """Write DIR/ranks.npy and DIR/matching_result.npy in the PROxford/PRParis format.

    matching_result.npy is a dict (the benchmark's format, so it is a pickle inside .npy):
    'qimlist_{q}_imlist_{i}' -> (K, 2) float32 x, y polygon, for every predicted pair.
    """
    export_dir = Path(export_dir)
    from .io import atomic_write
    with atomic_write(export_dir / "ranks.npy") as fh:
        np.save(fh, np.asarray(ranks, np.int64))
    table = {f"qimlist_{q}_imlist_{i}": np.asarray(p, np.float32) for (q, i), p in polygons.items()}
    with atomic_write(export_dir / "matching_result.npy") as fh:
        np.save(fh, np.array(table, dtype=object), allow_pickle=True)


def score_result_files(root: PathLike, name: str, ranks_path: PathLike, matching_path: PathLike,
                       masks_dir: Optional[PathLike] = None, official: bool = False,
                       allow_missing: bool = False) -> dict:
    """Score official-format result files (any method's) against a benchmark's labels.

    Parameters
    ----------
    ranks_path : path-like
        ``ranks.npy``: int (n_db, n_queries).
    matching_path : path-like
        ``matching_result.npy``: dict 'qimlist_{q}_imlist_{i}' -> (K, 2) x, y points. It is a
        pickled dict (the benchmark's own format): only score files you trust.
    masks_dir : path-like, optional
        ``{q}_{i}.png`` masks that take precedence over polygons (clean mode).
    """
    ds = load_revisitop(root, name)
    ds = check_benchmark(ds, need_labels=True, allow_missing=allow_missing)
    try:
        ranks = np.load(ranks_path, allow_pickle=False)
    except Exception as exc:
        raise ClassicPRError(f"{ranks_path}: not a numpy int array ({exc.__class__.__name__})") from None
    if ranks.ndim != 2 or ranks.shape != (len(ds.imlist), len(ds.qimlist)) or ranks.dtype.kind not in "iu":
        raise ClassicPRError(f"{ranks_path}: expected int array of shape "
                             f"({len(ds.imlist)}, {len(ds.qimlist)}), got {ranks.dtype} {ranks.shape}")
    not_permutation = np.flatnonzero(
        (np.sort(ranks, axis=0) != np.arange(len(ds.imlist))[:, None]).any(axis=0))
    if len(not_permutation):
        q = int(not_permutation[0])
        column = ranks[:, q]
        what = (f"ids outside [0, {len(ds.imlist)})" if (column < 0).any()
                or (column >= len(ds.imlist)).any() else "repeated ids")
        raise ClassicPRError(
            f"{ranks_path}: each column must rank every database image once; "
            f"{len(not_permutation)} columns do not (query {q}, {ds.qimlist[q]}: {what})")
    if masks_dir is not None and not Path(masks_dir).is_dir():
        raise ClassicPRError(f"masks folder not found: {masks_dir}")
    try:
        table = np.load(matching_path, allow_pickle=True).item()
        if not isinstance(table, dict):
            raise TypeError("not a dict")
    except Exception as exc:
        raise ClassicPRError(f"{matching_path}: not a matching_result dict ({exc})") from None
    polygons = {}
    for key, pts in table.items():
        parts = str(key).split("_")
        try:
            q, i = int(parts[1]), int(parts[3])
            pts = np.asarray(pts, np.float64).reshape(-1, 2)
        except (IndexError, ValueError, TypeError):
            raise ClassicPRError(f"{matching_path}: bad entry {key!r}") from None
        polygons[(q, i)] = pts
    labels = ds.load_labels()
    clean_ious = {}
    for q in range(len(ds.qimlist)):
        for i, lp in _positive_labels(ds, labels, q).items():
            size = image_size(ds.image_dir / ds.db_file(i))
            mask = None
            if masks_dir is not None:
                mp = Path(masks_dir) / f"{q}_{i}.png"
                if mp.is_file():
                    m = cv2.imread(str(mp), cv2.IMREAD_GRAYSCALE)
                    if m is None or m.shape != (size[1], size[0]):
                        raise ClassicPRError(f"{mp}: not a {size[0]}x{size[1]} mask PNG")
                    mask = m > 127
            pts = polygons.get((q, i))
            pred = Prediction(pts if pts is not None and len(pts) else None, mask)
            clean_ious[(q, i)] = clean_pair_iou(pred, load_label_polygons(lp), size)
    return _scores(ds, len(ds.imlist), ranks, polygons, clean_ious, official, labels)
