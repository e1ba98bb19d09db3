"""Evaluation: revisitop image mAP and mP@k, PROxford/PRParis mIoU and pixel mAP.

Clean definitions (the default; see ``docs/metrics.md``):

* image mAP: revisitop's trapezoid AP with junk images removed from the ranking; queries
  with no positive under a protocol are left out of the mean (as in revisitop).
* IoU of a pair (query q, positive database image i): the prediction (a mask, or a polygon
  filled and clipped to the image) against the union of the label's filled polygons.
  "S" = IoU of the two masks, "D" = IoU of their pixel bounding boxes. A positive with no
  prediction has IoU 0.
* mIoU: mean IoU over a query's positives, then mean over queries.
* pixel mAP at threshold t: revisitop mAP in which a positive counts as positive only if its
  IoU > t (otherwise it is a wrong result); a query with positives of which none passes has
  AP 0. Averaged over t = 0.50, 0.55, ..., 0.95. "pmAP_D" thresholds D, "pmAP_S" S.

``mode="official"`` reproduces the benchmark authors' published scripts (evaluation_code/
mious.py, mAP@k.py, utils/iou_compute.py, utils/evaluate_pixel.py) behaviour for behaviour;
each quirk is implemented in a function of its own and documented where it is used.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np

from .datasets import protocol_gnd
from .regions import box_iou, mask_bbox, mask_iou, rasterize_polygons

log = logging.getLogger("classicpr")

PIXEL_THRESHOLDS = tuple(np.round(np.arange(0.50, 0.951, 0.05), 2))
#: Queries the official pixel mAP skips (by data set name substring), quirk (e).
OFFICIAL_IGNORED_QUERIES = {"oxford": (56, 63), "paris": (57, 59)}


# --------------------------------------------------------------------------- image level
def average_precision(positive_ranks: np.ndarray, n_positives: int) -> float:
    """revisitop AP: trapezoids of the precision-recall curve.

    Parameters
    ----------
    positive_ranks : (P,) int array
        Sorted 0-based ranks of the retrieved positives, junk already removed.
    n_positives : int
        Number of positives of the query (> 0).
    """
    ranks = np.asarray(positive_ranks, np.float64)
    if n_positives <= 0:
        raise ValueError("n_positives must be > 0")
    if len(ranks) == 0:
        return 0.0
    j = np.arange(len(ranks), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        p0 = np.where(ranks == 0, 1.0, j / np.where(ranks == 0, 1, ranks))
    p1 = (j + 1) / (ranks + 1)
    return float(np.sum((p0 + p1) / 2.0) / n_positives)


def _positive_ranks(ranking: np.ndarray, ok: np.ndarray, junk: np.ndarray) -> np.ndarray:
    """0-based ranks of the positives in ``ranking`` after removing junk before them."""
    pos = np.flatnonzero(np.isin(ranking, ok))
    junk_pos = np.flatnonzero(np.isin(ranking, junk))
    return pos - np.searchsorted(junk_pos, pos)


def revisitop_map(ranks: np.ndarray, gnd: Sequence[Mapping], kappas: Sequence[int] = (),
                  empty: str = "skip") -> Tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """mAP and mean precision at k, as revisitop's ``compute_map``.

    Parameters
    ----------
    ranks : (n_db, n_queries) int array
        Column q = database indices ranked for query q (revisitop convention).
    gnd : sequence of dict
        Per query 'ok' (positives) and 'junk' database indices (see ``protocol_gnd``).
    kappas : sequence of int
        k values for mP@k.
    empty : {"skip", "zero"}
        A query without positives is left out of the mean ("skip", revisitop) or scores 0.

    Returns
    -------
    map : float (in [0, 1]; 0 if no query has positives)
    aps : (n_queries,) float array (nan for skipped queries)
    pr : (len(kappas),) float array
    prs : (n_queries, len(kappas)) float array
    """
    ranks = np.asarray(ranks)
    nq = len(gnd)
    if ranks.ndim != 2 or ranks.shape[1] != nq:
        raise ValueError(f"ranks must have shape (n_db, {nq}), got {ranks.shape}")
    aps = np.full(nq, np.nan)
    prs = np.full((nq, len(kappas)), np.nan)
    for q in range(nq):
        ok = np.asarray(gnd[q]["ok"], np.int64)
        junk = np.asarray(gnd[q].get("junk", []), np.int64)
        if len(ok) == 0:
            if empty == "zero":
                aps[q], prs[q] = 0.0, 0.0
            continue
        pos = _positive_ranks(ranks[:, q], ok, junk)
        aps[q] = average_precision(pos, len(ok))
        if len(pos):
            pos1 = pos + 1
            for j, k in enumerate(kappas):
                kq = min(pos1.max(), k)
                prs[q, j] = np.count_nonzero(pos1 <= kq) / kq
        else:
            prs[q] = 0.0
    valid = ~np.isnan(aps)
    m = float(aps[valid].mean()) if valid.any() else 0.0
    pr = prs[valid].mean(axis=0) if valid.any() else np.zeros(len(kappas))
    return m, aps, pr, prs


def image_map(ranks: np.ndarray, gnd: Sequence[Mapping], kappas: Sequence[int] = (1, 5, 10)
              ) -> Dict[str, dict]:
    """mAP and mP@k (percent) under the easy, medium and hard protocols."""
    out = {"mAP": {}, "mP@k": {}}
    for p in ("easy", "medium", "hard"):
        m, _, pr, _ = revisitop_map(ranks, protocol_gnd(gnd, p), kappas)
        out["mAP"][p] = 100 * m
        out["mP@k"][p] = {int(k): 100 * float(v) for k, v in zip(kappas, pr)}
    return out


def precision_recall_curve(ranks: np.ndarray, gnd: Sequence[Mapping],
                           recall_levels: Sequence[float] = tuple(np.linspace(0, 1, 21))
                           ) -> np.ndarray:
    """Interpolated precision at fixed recall levels, averaged over the queries that have
    positives (junk removed from the ranking, as for mAP).

    Parameters
    ----------
    ranks : (n_db, n_queries) int array
    gnd : sequence of dict with 'ok' and 'junk' (see ``protocol_gnd``)
    recall_levels : sequence of float in [0, 1]

    Returns
    -------
    (len(recall_levels), 2) float array of (recall, precision).
    """
    levels = np.asarray(recall_levels, np.float64)
    curves = []
    for q, g in enumerate(gnd):
        ok = np.asarray(g["ok"], np.int64)
        if len(ok) == 0:
            continue
        pos = np.sort(_positive_ranks(np.asarray(ranks)[:, q], ok, np.asarray(g.get("junk", []), np.int64)))
        if len(pos) == 0:
            curves.append(np.zeros(len(levels)))
            continue
        recall = np.arange(1, len(pos) + 1) / len(ok)
        precision = np.arange(1, len(pos) + 1) / (pos + 1)
        # interpolated precision: the best precision at this recall or beyond
        best = np.maximum.accumulate(precision[::-1])[::-1]
        at = np.searchsorted(recall, levels - 1e-12, side="left")
        curves.append(np.where(at < len(best), best[np.minimum(at, len(best) - 1)], 0.0))
    mean = np.mean(curves, axis=0) if curves else np.zeros(len(levels))
    return np.column_stack([levels, mean])


def per_query_scores(ranks: np.ndarray, gnd: Sequence[Mapping],
                     ious: Optional[Mapping[Tuple[int, int], Tuple[float, float]]] = None
                     ) -> List[Dict[str, Dict[str, Optional[float]]]]:
    """AP and (with pair IoUs) mean S-IoU of each query, percent, medium and hard; None
    where the query has no positives under a protocol."""
    out: List[Dict[str, Dict[str, Optional[float]]]] = [{"AP": {}, "mIoU_S": {}} for _ in gnd]
    for proto, pg in _protocol_lists(gnd).items():
        _, aps, _, _ = revisitop_map(ranks, pg)
        for q, g in enumerate(pg):
            has = len(g["ok"]) > 0
            out[q]["AP"][proto] = 100 * float(aps[q]) if has else None
            if ious is not None:
                out[q]["mIoU_S"][proto] = (100 * float(np.mean([ious.get((q, int(i)), (0.0, 0.0))[1]
                                                                for i in g["ok"]])) if has else None)
    return out


# --------------------------------------------------------------------------- pair IoU
@dataclasses.dataclass
class Prediction:
    """A predicted region in a database image: a polygon and/or a mask.

    Attributes
    ----------
    polygon : (K, 2) float array of x, y or None
        May extend beyond the image (it is clipped when rasterised).
    mask : (H, W) bool array or None
        Takes precedence over the polygon in clean scoring.
    """

    polygon: Optional[np.ndarray] = None
    mask: Optional[np.ndarray] = None

    def is_empty(self) -> bool:
        no_poly = self.polygon is None or len(np.asarray(self.polygon).reshape(-1, 2)) == 0
        return no_poly and (self.mask is None or not np.any(self.mask))


def clean_pair_iou(prediction: Optional[Prediction], label_polygons: Sequence[np.ndarray],
                   size: Tuple[int, int]) -> Tuple[float, float]:
    """(D, S) IoU of a prediction with a label, both filled and clipped to the image.

    Parameters
    ----------
    prediction : Prediction or None
        None or empty = no prediction = IoU 0.
    label_polygons : list of (K, 2) arrays
    size : (width, height) of the database image.
    """
    if prediction is None or prediction.is_empty():
        return 0.0, 0.0
    gt = rasterize_polygons(label_polygons, size)
    if prediction.mask is not None:
        pred = np.asarray(prediction.mask).astype(bool)
        if pred.shape != gt.shape:
            raise ValueError(f"mask shape {pred.shape} differs from image size {gt.shape}")
    else:
        pred = rasterize_polygons([prediction.polygon], size)
    return box_iou(mask_bbox(pred), mask_bbox(gt)), mask_iou(pred, gt)


def official_pair_iou(points: np.ndarray, label_polygons: Sequence[np.ndarray]
                      ) -> Tuple[float, float]:
    """(D, S) IoU computed the way the published ``utils/iou_compute.py`` does.

    Quirk (b): coordinates are truncated to integers; both masks live on a square canvas
    whose side is the largest coordinate of prediction and label (not the image size), so
    nothing is clipped to the image and pixels at the largest coordinate fall off; box
    slices that start at a negative corner wrap around (Python slicing: a box from x = -5
    covers only the last 5 columns of the canvas, or nothing); the prediction is filled as
    one polygon of its raw points; the label's polygons are pooled into one box for D.
    This follows the published revision that reads predictions as (x, y) points (commit
    b5e530b of utils/iou_compute.py); a later revision swaps x and y of the prediction
    only, which is not what produced the fixture's official numbers.
    """
    tp = np.trunc(np.asarray(points, np.float64).reshape(-1, 2)).astype(np.int64)
    gpolys = [np.trunc(np.asarray(p, np.float64).reshape(-1, 2)).astype(np.int64)
              for p in label_polygons]
    gp = np.concatenate(gpolys)
    side = int(max(tp[:, 0].max(), tp[:, 1].max(), gp[:, 0].max(), gp[:, 1].max()))
    side = max(side, 0)

    def iou(a, b):
        inter = np.count_nonzero(np.logical_and(a, b))
        union = np.count_nonzero(a) + np.count_nonzero(b) - inter
        return inter / union if union else float("nan")

    test = np.zeros((side, side), bool)
    test[tp[:, 1].min():tp[:, 1].max() + 1, tp[:, 0].min():tp[:, 0].max() + 1] = True
    gt = np.zeros((side, side), bool)
    gt[gp[:, 1].min():gp[:, 1].max() + 1, gp[:, 0].min():gp[:, 0].max() + 1] = True
    d = iou(test, gt)

    test_s = np.zeros((side, side), np.uint8)
    if side > 0:
        cv2.fillPoly(test_s, [tp.astype(np.int32)], 1)
    gt_s = np.zeros((side, side), np.uint8)
    for p in gpolys:
        if side > 0:
            cv2.fillPoly(gt_s, [p.astype(np.int32)], 1)
    s = iou(test_s, gt_s)
    return d, s


# --------------------------------------------------------------------------- pixel level
def _protocol_lists(gnd: Sequence[Mapping]):
    return {p: protocol_gnd(gnd, p) for p in ("medium", "hard")}


def clean_pixel_scores(ranks: np.ndarray, gnd: Sequence[Mapping],
                       ious: Mapping[Tuple[int, int], Tuple[float, float]]) -> Dict[str, dict]:
    """Clean mIoU (D, S) and pixel mAP (D, S), percent, medium and hard.

    Parameters
    ----------
    ranks : (n_db, n_queries) int array
    gnd : revisitop gnd list (with 'easy', 'hard', 'junk')
    ious : mapping (q, i) -> (D, S)
        IoU of every query-positive pair; a missing pair counts as IoU 0.
    """
    out = {k: {} for k in ("mIoU_D", "mIoU_S", "pmAP_D", "pmAP_S")}
    for proto, pg in _protocol_lists(gnd).items():
        for which, col in (("D", 0), ("S", 1)):
            per_query = []
            for q, g in enumerate(pg):
                if len(g["ok"]):
                    per_query.append(np.mean([ious.get((q, int(i)), (0.0, 0.0))[col]
                                              for i in g["ok"]]))
            out[f"mIoU_{which}"][proto] = 100 * float(np.mean(per_query)) if per_query else 0.0
            maps = []
            for t in PIXEL_THRESHOLDS:
                tg = []
                for q, g in enumerate(pg):
                    passing = [int(i) for i in g["ok"] if ious.get((q, int(i)), (0.0, 0.0))[col] > t]
                    tg.append({"ok": np.asarray(passing, np.int64), "junk": g["junk"],
                               "n_ok": len(g["ok"])})
                maps.append(_thresholded_map(ranks, tg))
            out[f"pmAP_{which}"][proto] = 100 * float(np.mean(maps))
    return out


def _thresholded_map(ranks, tg) -> float:
    """Mean AP over queries that have positives; AP 0 when none passes the threshold."""
    aps = []
    for q, g in enumerate(tg):
        if g["n_ok"] == 0:
            continue
        if len(g["ok"]) == 0:
            aps.append(0.0)
            continue
        pos = _positive_ranks(ranks[:, q], g["ok"], g["junk"])
        aps.append(average_precision(pos, len(g["ok"])))
    return float(np.mean(aps)) if aps else 0.0


def official_pixel_scores(dataset_name: str, ranks: np.ndarray, gnd: Sequence[Mapping],
                          predicted: Mapping[Tuple[int, int], bool],
                          ious: Mapping[Tuple[int, int], Tuple[float, float]]
                          ) -> Tuple[Dict[str, dict], List[str]]:
    """mIoU (D, S) and pixel mAP as the published scripts compute them (percent).

    Quirks, as observed in the authors' code:

    (a) medium mIoU skips easy positives without a prediction; hard positives without a
        prediction count 0 (in both protocols). A query left with no IoU is skipped.
    (c) pixel mAP thresholds the D (box) IoU; no S-based pixel mAP exists there.
    (d) in pixel mAP a query with no positive above the threshold is skipped, not scored 0;
        when every query is skipped at a threshold the published code divides by zero:
        here that threshold scores 0 and a warning is returned.
    (e) queries 56 and 63 (data sets named *oxford*) and 57 and 59 (*paris*) are passed
        over in pixel mAP but stay in the denominator, so they score 0.
    (f) pairs missing from the IoU table (easy positives without a prediction) are dropped
        from the positives in pixel mAP.

    Parameters
    ----------
    predicted : mapping (q, i) -> bool
        Whether the result file holds a non-empty prediction for the pair.
    ious : mapping (q, i) -> (D, S)
        :func:`official_pair_iou` for every predicted pair.

    Returns
    -------
    scores : dict with mIoU_D, mIoU_S, pmAP_D (medium, hard)
    warnings : list of str
    """
    warnings: List[str] = []
    # --- mIoU (mious.py): the IoU table it builds is reused by pixel mAP
    table: Dict[Tuple[int, int], Tuple[float, float]] = {}
    med = {0: [], 1: []}
    hard = {0: [], 1: []}
    for q, g in enumerate(gnd):
        qm = {0: [], 1: []}
        qh = {0: [], 1: []}
        for i in g.get("hard", []):
            v = ious[(q, int(i))] if predicted.get((q, int(i))) else (0.0, 0.0)
            table[(q, int(i))] = v
            for c in (0, 1):
                qm[c].append(v[c])
                qh[c].append(v[c])
        for i in g.get("easy", []):
            if not predicted.get((q, int(i))):
                continue  # quirk (a)
            v = ious[(q, int(i))]
            table[(q, int(i))] = v
            for c in (0, 1):
                qm[c].append(v[c])
        for c in (0, 1):
            med[c].append(np.mean(qm[c]) if qm[c] else np.nan)
            hard[c].append(np.mean(qh[c]) if qh[c] else np.nan)
    scores = {"mIoU_D": {}, "mIoU_S": {}, "pmAP_D": {}}
    for proto, lists in (("medium", med), ("hard", hard)):
        for c, key in ((0, "mIoU_D"), (1, "mIoU_S")):
            vals = np.asarray(lists[c], np.float64)
            scores[key][proto] = 100 * float(np.nanmean(vals)) if np.any(~np.isnan(vals)) else 0.0
    # --- pixel mAP (mAP@k.py + evaluate_pixel.compute_maps)
    ignore = ()
    for key, qs in OFFICIAL_IGNORED_QUERIES.items():
        if key in dataset_name:
            ignore = qs
    nq = len(gnd)
    for proto, pg in _protocol_lists(gnd).items():
        maps = []
        for t in PIXEL_THRESHOLDS:
            total, nempty = 0.0, 0
            for q, g in enumerate(pg):
                if q in ignore:
                    continue  # quirk (e): neither scored nor removed from the denominator
                ok = [int(i) for i in g["ok"] if (q, int(i)) in table  # quirk (f)
                      and table[(q, int(i))][0] > t]  # quirk (c): box IoU
                if not ok:
                    nempty += 1  # quirk (d)
                    continue
                pos = _positive_ranks(ranks[:, q], np.asarray(ok), g["junk"])
                total += average_precision(pos, len(ok))
            if nq - nempty == 0:
                warnings.append(f"official pixel mAP ({proto}, t={t:.2f}): no query has a "
                                "positive above the threshold; the published code divides by "
                                "zero here, classicpr scores this threshold 0")
                maps.append(0.0)
            else:
                maps.append(total / (nq - nempty))
        scores["pmAP_D"][proto] = 100 * float(np.mean(maps))
    return scores, warnings
