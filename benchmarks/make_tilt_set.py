"""Build ``prtilt``: an extreme-viewpoint pixel-retrieval set in the PROxford layout.

    python benchmarks/make_tilt_set.py ../shared/data/prmini-dev OUT [--seed 0]

For each planar query of prmini-dev (the queries whose label is a projected box: the
"homogr" scenes and HPatches v_dogman), the whole query photo is seen from three synthetic
viewpoints with absolute tilt t = 2 (easy; 60 degrees), 2.8 and 4 (hard; 69 and 75.5
degrees), in the affine camera model of ASIFT (Morel and Yu 2009):
``A = s R(psi) diag(1 / t, 1) R(phi)``, with the tilt direction phi uniform in [0, 180),
the in-plane rotation psi uniform in [0, 360), and s chosen so that the projected box spans
a uniform 25-60 % of the long side of a 1024-px canvas, at a uniform position where it
fits. The canvas background is one of prmini-dev's distractor photos. The warp is rendered
with anti-aliasing along each axis (Gaussian of sigma 0.8 sqrt(c^2 - 1) for a compression
c, as in ASIFT), then the whole view gets a Gaussian blur of sigma 1, a gamma uniform in
[0.7, 1.4] and JPEG quality 75. The label is the query box projected by the exact warp,
clipped to the canvas. Database = the views + prmini-dev's distractors. Queries keep their
prmini-dev photos and boxes. Scenes photographed several times (query names that differ
only by a trailing number, e.g. LePoint1, 2, 3) show the same object: each one's views are
junk for the others. Everything is drawn from one seeded generator.
"""
import argparse
import json
import pickle
import re
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from classicpr.datasets import load_revisitop  # noqa: E402

TILTS = ((2.0, "easy"), (2.8, "hard"), (4.0, "hard"))
PLANAR_PREFIXES = ("homogr_", "hpatches_")
CANVAS = 1024


def rotation(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def render_view(photo: np.ndarray, box: np.ndarray, background: np.ndarray, tilt: float,
                rng: np.random.Generator):
    """One synthetic view: (image (H, W, 3) uint8, label quad (4, 2), 3x3 warp)."""
    phi, psi = rng.uniform(0, 180), rng.uniform(0, 360)
    span = rng.uniform(0.25, 0.60)
    h, w = photo.shape[:2]
    corners = np.array([[box[0], box[1]], [box[2], box[1]], [box[2], box[3]], [box[0], box[3]]])
    # step 1: rotate the photo by phi (no scale change) into a canvas that holds it whole
    R1 = rotation(phi)
    pts = np.array([[0, 0], [w, 0], [w, h], [0, h]], float) @ R1.T
    off = -pts.min(0)
    size1 = np.ceil(pts.max(0) - pts.min(0)).astype(int)
    M1 = np.hstack([R1, off[:, None]])
    img1 = cv2.warpAffine(photo, M1, (int(size1[0]), int(size1[1])), flags=cv2.INTER_LINEAR)
    valid1 = cv2.warpAffine(np.full((h, w), 255, np.uint8), M1, (int(size1[0]), int(size1[1])))
    # step 2: the linear part compressing x by t, then rotating by psi; its scale s puts the
    # box at the drawn span of the canvas
    L = rotation(psi) @ np.diag([1.0 / tilt, 1.0])
    box1 = corners @ R1.T + off
    ext = np.ptp(box1 @ L.T, axis=0).max()
    s = span * CANVAS / ext
    # anti-aliasing before the compression: x shrinks by s / t, y by s (in img1's axes)
    cx, cy = tilt / s, 1.0 / s
    sx, sy = (0.8 * np.sqrt(max(c * c - 1.0, 0.0)) for c in (cx, cy))
    if sx > 0.1 or sy > 0.1:
        img1 = cv2.GaussianBlur(img1, (0, 0), sigmaX=max(sx, 0.01), sigmaY=max(sy, 0.01))
    bh, bw = background.shape[:2]
    f = CANVAS / max(bh, bw)
    canvas = cv2.resize(background, (round(bw * f), round(bh * f)), interpolation=cv2.INTER_AREA)
    ch, cw = canvas.shape[:2]
    quad0 = box1 @ (s * L).T
    lo, hi = quad0.min(0), quad0.max(0)
    free = np.array([cw, ch]) - (hi - lo)
    t = np.array([rng.uniform(0, max(free[0], 0)), rng.uniform(0, max(free[1], 0))]) - lo
    M2 = np.hstack([s * L, t[:, None]])
    warped = cv2.warpAffine(img1, M2, (cw, ch), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(valid1, M2, (cw, ch), flags=cv2.INTER_LINEAR).astype(np.float32) / 255
    view = (warped * alpha[..., None] + canvas * (1 - alpha[..., None])).astype(np.float32)
    view = cv2.GaussianBlur(view, (0, 0), 1.0)
    gamma = rng.uniform(0.7, 1.4)
    view = np.clip(255.0 * (np.clip(view, 0, 255) / 255.0) ** gamma, 0, 255).astype(np.uint8)
    H = np.vstack([np.hstack([s * L @ R1, (s * L @ off + t)[:, None]]), [0, 0, 1]])
    quad = cv2.perspectiveTransform(corners.reshape(-1, 1, 2), H).reshape(-1, 2)
    _, clipped = cv2.intersectConvexConvex(
        quad.astype(np.float32), np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], np.float32))
    return view, clipped.reshape(-1, 2).astype(float), H


def make_tilt_set(prmini_root: Path, out: Path, seed: int = 0) -> dict:
    ds = load_revisitop(prmini_root, "prmini")
    used = set()
    for g in ds.gnd:
        used |= set(g.get("easy", [])) | set(g.get("hard", [])) | set(g.get("junk", []))
    distractors = [i for i in range(len(ds.imlist)) if i not in used]
    queries = [q for q, n in enumerate(ds.qimlist) if n.startswith(PLANAR_PREFIXES)]
    rng = np.random.default_rng(seed)
    data = out / "revisitop" / "data" / "prtilt"
    jpg, labels = data / "jpg", out / "labels" / "prtilt"
    for d in (jpg, labels):
        d.mkdir(parents=True, exist_ok=True)
    imlist, gnd, qimlist, label_paths = [], [], [], {}
    backgrounds = [cv2.imread(str(ds.image_dir / ds.db_file(i))) for i in distractors]
    views = []  # (query position, image name, label quad, protocol)
    for qpos, q in enumerate(queries):
        photo = cv2.imread(str(ds.image_dir / ds.query_file(q)))
        box = np.asarray(ds.query_box(q), float)
        qimlist.append(ds.qimlist[q])
        shutil.copyfile(ds.image_dir / ds.query_file(q), jpg / ds.query_file(q))
        gnd.append({"bbx": list(map(float, box)), "easy": [], "hard": [], "junk": []})
        for tilt, protocol in TILTS:
            bg = backgrounds[int(rng.integers(len(backgrounds)))]
            view, quad, _ = render_view(photo, box, bg, tilt, rng)
            name = f"tilt_{ds.qimlist[q]}_t{tilt:.1f}"
            cv2.imwrite(str(jpg / f"{name}.jpg"), view, [cv2.IMWRITE_JPEG_QUALITY, 75])
            views.append((qpos, name, quad, protocol, view.shape))
    for qpos, name, quad, protocol, shape in views:
        i = len(imlist)
        imlist.append(name)
        gnd[qpos][protocol].append(i)
        rel = f"labels/prtilt/{qpos}_{i}.json"
        label = {"imagePath": f"{name}.jpg", "imageHeight": int(shape[0]), "imageWidth": int(shape[1]),
                 "shapes": [{"label": "object", "shape_type": "polygon", "points": quad.tolist()}]}
        (out / rel).write_text(json.dumps(label))
        label_paths[f"{qpos}_{i}"] = rel
    # queries of one scene photographed several times (e.g. homogr_LePoint1, 2, 3) show the
    # same object: each one's views are junk (neither positive nor negative) for the others
    family = [re.sub(r"\d+_q$", "", n) for n in qimlist]
    for a in range(len(qimlist)):
        for b in range(len(qimlist)):
            if a != b and family[a] == family[b] and family[a] != qimlist[a]:
                gnd[a]["junk"] += gnd[b]["easy"] + gnd[b]["hard"]
    for i in distractors:
        shutil.copyfile(ds.image_dir / ds.db_file(i), jpg / ds.db_file(i))
        imlist.append(ds.imlist[i])
    with open(data / "gnd_prtilt.pkl", "wb") as fh:
        pickle.dump({"imlist": imlist, "qimlist": qimlist, "gnd": gnd}, fh)
    np.save(out / "prtilt_pair2labelpath.npy", np.array(label_paths, dtype=object), allow_pickle=True)
    (out / "SOURCES.md").write_text(
        "prtilt: made by classicpr's benchmarks/make_tilt_set.py from prmini-dev "
        f"(seed {seed}); see that script's docstring for the generator.\n")
    return {"queries": len(qimlist), "database": len(imlist), "views": len(views)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("prmini_root", help="the prmini-dev folder (PROxford layout)")
    ap.add_argument("out", help="output folder (holds revisitop/data/prtilt)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print(make_tilt_set(Path(args.prmini_root), Path(args.out), args.seed))


if __name__ == "__main__":
    main()
