"""The embedded demo: a small pixel-retrieval benchmark made from photos bundled with
scikit-image, with exact ground truth, written in the PROxford layout, then run end to end.

Each object photo is pasted into other photos under a random homography (rotation, scale,
perspective), with blur, an illumination change and a partial occlusion; its ground truth
polygon is the pasted outline. Untouched photos are distractors. ``--seed`` makes it
deterministic; no network is used (the photos ship inside scikit-image).
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from .config import Config
from .evaluate import evaluate_benchmark
from .io import atomic_write, read_image_at_size, write_json, write_png
from .datasets import load_label_polygons, load_revisitop
from .viz import overlay, results_grid, write_report

OBJECTS = ("chelsea", "coffee", "astronaut")
BACKGROUNDS = ("rocket", "immunohistochemistry", "hubble_deep_field", "camera", "page", "moon",
               "horse", "coins")
CANVAS = (640, 480)


def _photo(name: str) -> np.ndarray:
    from skimage import data
    img = getattr(data, name)()
    if img.dtype != np.uint8:
        img = (255 * (img.astype(np.float64) / max(img.max(), 1))).astype(np.uint8)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_RGBA2BGR)
    else:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    return img


def _background(name: str, rng) -> np.ndarray:
    bg = cv2.resize(_photo(name), CANVAS, interpolation=cv2.INTER_AREA)
    return bg


def _paste(bg: np.ndarray, obj: np.ndarray, rng, hard: bool):
    """Paste ``obj`` into ``bg`` under a random homography; retried until the pasted
    object is a plausible view (convex, 5-45 % of the canvas)."""
    for _ in range(50):
        out = _try_paste(bg, obj, rng, hard)
        area = abs(cv2.contourArea(out[1].astype(np.float32)))
        if 0.02 * CANVAS[0] * CANVAS[1] <= area <= 0.45 * CANVAS[0] * CANVAS[1]:
            return out
    return out


def _try_paste(bg: np.ndarray, obj: np.ndarray, rng, hard: bool):
    h, w = obj.shape[:2]
    side = rng.uniform(90, 160) if hard else rng.uniform(220, 300)
    s = side / max(h, w)
    ang = np.deg2rad(rng.uniform(-70, 70) if hard else rng.uniform(-12, 12))
    persp = rng.uniform(-2.5e-4, 2.5e-4, 2) if hard else rng.uniform(-1e-4, 1e-4, 2)
    S = np.diag([s, s, 1.0])
    R = np.array([[np.cos(ang), -np.sin(ang), 0], [np.sin(ang), np.cos(ang), 0], [0, 0, 1]])
    P = np.array([[1, 0, 0], [0, 1, 0], [persp[0] / s, persp[1] / s, 1]])
    H = R @ S @ P
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
    pc = cv2.perspectiveTransform(corners[None], H)[0]
    span = pc.max(0) - pc.min(0)
    tx = rng.uniform(10, max(11, CANVAS[0] - span[0] - 10)) - pc[:, 0].min()
    ty = rng.uniform(10, max(11, CANVAS[1] - span[1] - 10)) - pc[:, 1].min()
    H = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]]) @ H
    warped = cv2.warpPerspective(obj, H, CANVAS, flags=cv2.INTER_LINEAR)
    m = cv2.warpPerspective(np.full((h, w), 255, np.uint8), H, CANVAS) > 127
    out = bg.copy()
    out[m] = warped[m]
    gain = rng.uniform(0.7, 1.3) if hard else rng.uniform(0.85, 1.15)
    out = np.clip(out.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    sigma = rng.uniform(1.0, 2.2) if hard else rng.uniform(0, 0.8)
    if sigma > 0.1:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    quad = cv2.perspectiveTransform(corners[None], H)[0]
    # partial occlusion: a grey block over a corner of the object
    occ = rng.uniform(0.1, 0.25)
    c = quad[rng.integers(4)]
    r = occ * np.sqrt(abs(cv2.contourArea(quad.astype(np.float32))))
    cv2.rectangle(out, tuple(int(v) for v in c - r / 2), tuple(int(v) for v in c + r / 2),
                  (128, 128, 128), -1)
    return out, quad


def make_demo_dataset(root, seed: int = 0) -> Path:
    """Write the demo benchmark under ``root`` (PROxford layout, data set name ``demo``)."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    jpg = root / "revisitop" / "data" / "demo" / "jpg"
    jpg.mkdir(parents=True, exist_ok=True)
    backgrounds = [_background(b, rng) for b in BACKGROUNDS]
    imlist, qimlist, gnd, pair2label = [], [], [], {}
    labels_dir = root / "labels" / "demo"

    def save(name, img):
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        with atomic_write(jpg / f"{name}.jpg") as fh:
            fh.write(buf.tobytes())

    for q, obj_name in enumerate(OBJECTS):
        obj = _photo(obj_name)
        # query: the object, upright, in a background of its own
        qbg = backgrounds[(q + 5) % len(backgrounds)]
        f = 260 / max(obj.shape[:2])
        small = cv2.resize(obj, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        qimg = qbg.copy()
        y0, x0 = 60 + 20 * q, 80 + 40 * q
        qimg[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
        qname = f"{obj_name}_query"
        save(qname, qimg)
        qimlist.append(qname)
        entry = {"bbx": [x0, y0, x0 + small.shape[1] - 1, y0 + small.shape[0] - 1],
                 "easy": [], "hard": [], "junk": []}
        for k, hard in enumerate((False, False, True)):
            bg = backgrounds[int(rng.integers(len(backgrounds)))]
            img, quad = _paste(bg, obj, rng, hard)
            name = f"{obj_name}_{k}"
            i = len(imlist)
            imlist.append(name)
            save(name, img)
            entry["hard" if hard else "easy"].append(i)
            write_json(labels_dir / f"{q}_{i}.json", {
                "imagePath": f"../../revisitop/data/demo/jpg/{name}.jpg",
                "imageHeight": CANVAS[1], "imageWidth": CANVAS[0],
                "shapes": [{"label": obj_name, "shape_type": "polygon",
                            "points": quad.round(2).tolist()}]})
            pair2label[f"{q}_{i}"] = f"labels/demo/{q}_{i}.json"
        gnd.append(entry)
    for d, bg in enumerate(backgrounds[:4]):
        name = f"distractor_{d}"
        imlist.append(name)
        save(name, bg)
    # the benchmark's own formats: a pickle (gnd) and a pickled dict in .npy
    with atomic_write(root / "revisitop" / "data" / "demo" / "gnd_demo.pkl") as fh:
        pickle.dump({"imlist": imlist, "qimlist": qimlist, "gnd": gnd}, fh)
    with atomic_write(root / "demo_pair2labelpath.npy") as fh:
        np.save(fh, np.array(pair2label, dtype=object), allow_pickle=True)
    return root


def write_pictures(root, name: str, export_dir, report_dir, metrics: dict, top: int = 5) -> Path:
    """Grids, per-result overlays and index.html for an evaluated benchmark."""
    ds = load_revisitop(root, name)
    ranks = np.load(Path(export_dir) / "ranks.npy")
    matching = np.load(Path(export_dir) / "matching_result.npy", allow_pickle=True).item()
    labels = ds.load_labels() if ds.has_labels() else {}
    report_dir = Path(report_dir)
    queries = []
    for q in range(len(ds.qimlist)):
        qimg = read_image_at_size(ds.image_dir / ds.query_file(q))
        positives = set(ds.gnd[q]["easy"]) | set(ds.gnd[q]["hard"])
        tiles = []
        order = [int(i) for i in ranks[:, q]]
        # the top results, then every positive ranked below them (so misses are visible)
        shown = order[:top] + [i for i in order[top:] if i in positives]
        for i in shown:
            rank = order.index(i)
            img = read_image_at_size(ds.image_dir / ds.db_file(i))
            poly = matching.get(f"qimlist_{q}_imlist_{i}")
            mp = Path(export_dir) / "masks" / f"{q}_{i}.png"
            mask = cv2.imread(str(mp), cv2.IMREAD_GRAYSCALE) > 127 if mp.is_file() else None
            gt = load_label_polygons(labels[f"{q}_{i}"]) if f"{q}_{i}" in labels else []
            if poly is None:
                status = "missed" if i in positives else "unverified"
            else:
                status = "correct" if i in positives else "wrong"
            ov = overlay(img, mask, poly, gt_polygons=gt, label=f"#{rank + 1}")
            write_png(report_dir / "overlays" / f"{q}_{rank + 1}.png", ov)
            tiles.append({"image": ov, "status": status,
                          "text": f"#{rank + 1} {ds.imlist[i][:22]}"})
        grid = results_grid(qimg, ds.query_box(q), tiles)
        write_png(report_dir / f"grid_{q}.png", grid)
        queries.append({"name": f"query {q}: {ds.qimlist[q]}", "grid": f"grid_{q}.png"})
    return write_report(report_dir, f"classicpr results: {name}", metrics, queries)


def run_demo(out, seed: int = 0, n_jobs: Optional[int] = None, progress: bool = True) -> dict:
    """Build the demo benchmark, evaluate it and write the report; returns the scores."""
    out = Path(out)
    root = make_demo_dataset(out / "data", seed)
    config = Config().updated({"vocabulary.seed": seed})
    result = evaluate_benchmark(root, "demo", out / "index", config, n_jobs=n_jobs,
                                export_dir=out / "export", progress=progress)
    write_json(out / "scores.json", result)
    write_pictures(root, "demo", out / "export", out / "report", result)
    return result
