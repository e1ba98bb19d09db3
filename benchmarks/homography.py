"""RANSAC variants on the planar pairs of prmini-dev: recall, corner error, time.

Correspondences: RootSIFT ratio test (0.85) between the query's in-box features and the
database image. For every method: how many of the 21 pairs reach 12 inliers, the corner
error of the projected box against the label (which is the box projected by the published
homography; corners inside the image), and the median time per pair. Usage::

    python benchmarks/homography.py [--root ../shared/data/prmini-dev]
"""
import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from classicpr.datasets import load_label_polygons, load_revisitop
from classicpr.features import FeatureConfig, extract_image, rootsift
from classicpr.invfile import features_in_box
from classicpr.regions import box_corners, project_points
from classicpr.verify import ratio_correspondences

METHODS = {"RANSAC": cv2.RANSAC, "LMEDS": cv2.LMEDS, "USAC_DEFAULT": cv2.USAC_DEFAULT,
           "USAC_MAGSAC": cv2.USAC_MAGSAC, "USAC_ACCURATE": cv2.USAC_ACCURATE}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "prmini-dev"))
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    ds = load_revisitop(args.root, "prmini")
    labels = ds.load_labels()
    pairs = []
    for q, name in enumerate(ds.qimlist):
        if not name.startswith(("homogr_", "hpatches_")):
            continue
        box = ds.query_box(q)
        qk, qd, _ = extract_image(ds.image_dir / ds.query_file(q), FeatureConfig())
        keep = features_in_box(qk, box)
        qk, qd = qk[keep], qd[keep]
        for i in ds.gnd[q]["easy"] + ds.gnd[q]["hard"]:
            dk, dd, size = extract_image(ds.image_dir / ds.db_file(i), FeatureConfig())
            qi, di = ratio_correspondences(rootsift(qd), rootsift(dd))
            gt = load_label_polygons(labels[f"{q}_{i}"])[0]
            pairs.append((qk[qi, :2], dk[di, :2], box, size, gt))
    print(f"{'method':14s} {'verified':>8s} {'median err px':>13s} {'max err px':>10s} {'ms/pair':>8s}")
    for name, flag in METHODS.items():
        errs, times, ok = [], [], 0
        for src, dst, box, size, gt in pairs:
            thr = 6.0 * max(size) / 1024
            t0 = time.perf_counter()
            H, inl = (cv2.findHomography(src, dst, flag, thr, maxIters=10000, confidence=0.999)
                      if len(src) >= 4 else (None, None))
            times.append(time.perf_counter() - t0)
            if H is None or inl is None or inl.sum() < 12:
                continue
            ok += 1
            quad = project_points(H, box_corners(box))
            w, h = size
            inside = (quad[:, 0] >= 0) & (quad[:, 0] <= w - 1) & (quad[:, 1] >= 0) & (quad[:, 1] <= h - 1)
            if inside.any():
                errs.append(np.linalg.norm(quad[inside, None] - gt[None], axis=2).min(1).max())
        print(f"{name:14s} {ok:>5d}/{len(pairs):<2d} {np.median(errs):>13.2f} {np.max(errs):>10.2f} "
              f"{1000 * np.median(times):>8.2f}")


if __name__ == "__main__":
    main()
