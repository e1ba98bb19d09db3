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

from classicpr.datasets import load_revisitop
from classicpr.evaluate import planar_pair_correspondences
from classicpr.regions import box_corners, corner_error, project_points

METHODS = {"RANSAC": cv2.RANSAC, "LMEDS": cv2.LMEDS, "USAC_DEFAULT": cv2.USAC_DEFAULT,
           "USAC_MAGSAC": cv2.USAC_MAGSAC, "USAC_ACCURATE": cv2.USAC_ACCURATE}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "prmini-dev"))
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    pairs = [(qk[qi, :2], dk[di, :2], box, size, gt) for _, _, box, qk, dk, qi, di, size, gt
             in planar_pair_correspondences(load_revisitop(args.root, "prmini"))]
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
            err = corner_error(project_points(H, box_corners(box)), gt, size)
            if err is not None:
                errs.append(err)
        print(f"{name:14s} {ok:>5d}/{len(pairs):<2d} {np.median(errs):>13.2f} {np.max(errs):>10.2f} "
              f"{1000 * np.median(times):>8.2f}")


if __name__ == "__main__":
    main()
