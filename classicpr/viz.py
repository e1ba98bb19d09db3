"""Pictures of results: mask overlays, ranked-results grids and a static HTML report.

Colours (BGR): green = correct result (a localised positive), red = wrong result (a
localised non-positive), orange = missed (a positive without a region), grey = not
verified and not a positive;
the predicted mask is a translucent fill with its polygon outline, the ground truth (when
known) a yellow outline.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import List, Optional, Sequence

import cv2
import numpy as np

from .io import PathLike, atomic_write

GREEN, RED, GREY, YELLOW, BLUE, ORANGE = ((60, 180, 60), (40, 40, 220), (150, 150, 150),
                                          (0, 220, 255), (220, 120, 0), (0, 140, 255))


def overlay(image: np.ndarray, mask: Optional[np.ndarray], polygon: Optional[np.ndarray] = None,
            colour=BLUE, label: str = "", gt_polygons: Sequence[np.ndarray] = (),
            alpha: float = 0.45) -> np.ndarray:
    """Draw a translucent mask, its polygon outline, ground-truth outlines and a label.

    Parameters
    ----------
    image : (H, W, 3) uint8 BGR
    mask : (H, W) bool or None
    polygon : (K, 2) float x, y or None
    gt_polygons : sequence of (K, 2) arrays
    Returns
    -------
    (H, W, 3) uint8 BGR image.
    """
    out = image.copy()
    if mask is not None and mask.any():
        tint = np.zeros_like(out)
        tint[:] = colour
        m = mask.astype(bool)
        out[m] = (out[m] * (1 - alpha) + tint[m] * alpha).astype(np.uint8)
    t = max(2, round(max(image.shape[:2]) / 300))
    for g in gt_polygons:
        cv2.polylines(out, [np.rint(g).astype(np.int32)], True, YELLOW, t, cv2.LINE_AA)
    if polygon is not None:
        cv2.polylines(out, [np.rint(polygon).astype(np.int32)], True, colour, t, cv2.LINE_AA)
    if label:
        s = max(0.5, max(image.shape[:2]) / 900)
        cv2.putText(out, label, (8, int(30 * s)), cv2.FONT_HERSHEY_SIMPLEX, s, (0, 0, 0), 4 * t, cv2.LINE_AA)
        cv2.putText(out, label, (8, int(30 * s)), cv2.FONT_HERSHEY_SIMPLEX, s, (255, 255, 255), t, cv2.LINE_AA)
    return out


def _tile(image: np.ndarray, side: int, border, text: str) -> np.ndarray:
    h, w = image.shape[:2]
    f = side / max(h, w)
    small = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    tile = np.full((side + 34, side, 3), 255, np.uint8)
    y0, x0 = (side - small.shape[0]) // 2, (side - small.shape[1]) // 2
    tile[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
    cv2.rectangle(tile, (0, 0), (side - 1, side - 1), border, 5)
    cv2.putText(tile, text, (4, side + 24), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return tile


def results_grid(query: np.ndarray, box: Sequence[float], tiles: List[dict], side: int = 240,
                 cols: int = 6) -> np.ndarray:
    """A query-plus-top-results grid.

    Parameters
    ----------
    query : (H, W, 3) uint8 BGR query image
    box : x1, y1, x2, y2
    tiles : list of dict
        Each with 'image' (an overlay, BGR), 'text' and 'status' in {"correct", "wrong",
        "missed", "unverified"}, in rank order.
    """
    q = query.copy()
    x1, y1, x2, y2 = [int(round(v)) for v in box]
    cv2.rectangle(q, (x1, y1), (x2, y2), BLUE, max(2, round(max(q.shape[:2]) / 250)))
    cells = [_tile(q, side, BLUE, "query")]
    colour = {"correct": GREEN, "wrong": RED, "missed": ORANGE, "unverified": GREY}
    for t in tiles:
        cells.append(_tile(t["image"], side, colour[t["status"]], t["text"]))
    rows = []
    for r in range(0, len(cells), cols):
        row = cells[r:r + cols]
        row += [np.full_like(cells[0], 255)] * (cols - len(row))
        rows.append(np.hstack(row))
    return np.vstack(rows)


def _pr_svg(curves: dict) -> str:
    """Inline SVG of interpolated precision against recall, one line per protocol."""
    if not curves:
        return ""
    w, h, m = 360, 260, 40
    colours = {"medium": "#1f77b4", "hard": "#d62728"}
    lines, legend = [], []
    for k, (name, pts) in enumerate(curves.items()):
        xy = " ".join(f"{m + r * (w - 2 * m):.1f},{h - m - p * (h - 2 * m):.1f}" for r, p in pts)
        colour = colours.get(name, "#333")
        lines.append(f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='{xy}'/>")
        legend.append(f"<text x='{w - m - 70}' y='{m + 16 * k}' fill='{colour}'>"
                      f"{html.escape(name)}</text>")
    ticks = "".join(
        f"<text x='{m + t * (w - 2 * m) - 8:.0f}' y='{h - m + 16}'>{t:.1f}</text>"
        f"<text x='{m - 30}' y='{h - m - t * (h - 2 * m) + 4:.0f}'>{t:.1f}</text>"
        for t in (0.0, 0.5, 1.0))
    return (f"<h2>Precision and recall</h2><svg width='{w}' height='{h}' "
            f"font-size='12'>"
            f"<rect x='{m}' y='{m}' width='{w - 2 * m}' height='{h - 2 * m}' fill='none' "
            f"stroke='#999'/>{''.join(lines)}{''.join(legend)}{ticks}"
            f"<text x='{w / 2 - 20:.0f}' y='{h - 6}'>recall</text>"
            f"<text x='4' y='{m - 10}'>precision</text></svg>")


def _per_query_table(rows: list) -> str:
    """Per-query AP and S-mIoU (medium / hard), worst medium AP first."""
    if not rows:
        return ""

    def cell(v):
        return "-" if v is None else f"{v:.1f}"
    order = sorted(rows, key=lambda r: (r["AP"].get("medium") is None, r["AP"].get("medium") or 0))
    body = "".join(
        f"<tr><td>{html.escape(str(r['query']))}</td><td>{cell(r['AP'].get('medium'))}</td>"
        f"<td>{cell(r['AP'].get('hard'))}</td><td>{cell(r['mIoU_S'].get('medium'))}</td>"
        f"<td>{cell(r['mIoU_S'].get('hard'))}</td></tr>" for r in order)
    return ("<h2>Per query (worst first)</h2><table><tr><th>query</th><th>AP medium</th>"
            "<th>AP hard</th><th>S-mIoU medium</th><th>S-mIoU hard</th></tr>" + body + "</table>")


def write_report(folder: PathLike, title: str, metrics: dict, queries: List[dict]) -> Path:
    """A static ``index.html`` (no server, no external assets) linking every query's grid.

    Parameters
    ----------
    metrics : dict
        The scores (``classicpr evaluate --json``): the metric table, and when present the
        precision-recall curves (``pr_curve``, drawn as inline SVG) and the per-query
        table (``per_query``, worst AP first).
    queries : list of dict with 'name' and 'grid' (path relative to folder)
    """
    folder = Path(folder)
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v.get('medium', float('nan')):.2f}</td>"
        f"<td>{v.get('hard', float('nan')):.2f}</td></tr>"
        for k, v in metrics.items()
        if isinstance(v, dict) and isinstance(v.get("medium"), (int, float)))
    curves = _pr_svg(metrics.get("pr_curve", {}))
    per_query = _per_query_table(metrics.get("per_query", []))
    items = "".join(
        f"<h3>{html.escape(q['name'])}</h3><a href='{html.escape(q['grid'])}'>"
        f"<img src='{html.escape(q['grid'])}' style='max-width:100%'></a>" for q in queries)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #999;padding:4px 10px}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Frames: green = correct result, red = wrong result, orange = missed (a true match
without a region), grey = not verified (and not a match). Blue fill: predicted mask;
yellow outline: ground truth.</p>
<table><tr><th>metric (%)</th><th>medium</th><th>hard</th></tr>{rows}</table>
{curves}{per_query}
{items}</body></html>"""
    path = folder / "index.html"
    with atomic_write(path, "w") as fh:
        fh.write(page)
    return path
