"""Word assignment: exact nearest centroid vs classicpr's spill tree, speed and quality.

Real RootSIFT descriptors are extracted from a folder of photos; vocabularies are trained
with faiss k-means (``--sizes``); 100k held-out descriptors are assigned exactly (faiss
flat, BLAS) and with ``Vocabulary.assign``. Two quality measures:

* agreement: the fraction of descriptors given their exact nearest word;
* repeatability: the fraction of geometrically verified matches whose two descriptors get
  the same word, which is what retrieval needs. Matches are Lowe ratio-test matches that
  are inliers of a MAGSAC++ fundamental matrix (OpenCV, seeded) between two photos of the
  same folder, kept for pairs with at least 50 inliers.

Usage::

    python benchmarks/assignment.py --images ../shared/data/prmini-dev/revisitop/data/prmini/jpg \
        --images ../shared/data/rparis6k-sample/jpg --sizes 4096,16384,65536
"""
import argparse
import json
import time

import cv2
import numpy as np

from classicpr.features import FeatureConfig, extract_image, rootsift
from classicpr.io import list_images
from classicpr.verify import ratio_correspondences
from classicpr.vocabulary import Vocabulary

MIN_PAIR_INLIERS = 50


def verified_matches(images):
    """Matches between photos of the same folder that a fundamental matrix verifies.

    Parameters
    ----------
    images : list of (folder, (N_i, 4) keypoints, (N_i, 128) RootSIFT)

    Returns
    -------
    (P, 2) int64 array of descriptor rows into the concatenation of all images' descriptors.
    """
    starts = np.cumsum([0] + [len(d) for _, _, d in images])
    out = []
    for a in range(len(images)):
        for b in range(a + 1, len(images)):
            (fa, ka, da), (fb, kb, db) = images[a], images[b]
            if fa != fb:
                continue
            qi, di = ratio_correspondences(da, db)
            if len(qi) < MIN_PAIR_INLIERS:
                continue
            cv2.setRNGSeed(0)
            F, inl = cv2.findFundamentalMat(ka[qi, :2], kb[di, :2], cv2.USAC_MAGSAC, 1.0,
                                            0.999, 10000)
            if F is None or inl is None or inl.sum() < MIN_PAIR_INLIERS:
                continue
            keep = inl.ravel().astype(bool)
            out.append(np.stack([starts[a] + qi[keep], starts[b] + di[keep]], 1))
    return np.concatenate(out) if out else np.zeros((0, 2), np.int64)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", action="append", required=True)
    ap.add_argument("--sizes", default="4096,16384,65536")
    ap.add_argument("--n-queries", type=int, default=100_000)
    ap.add_argument("--kmeans-iters", type=int, default=10)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    images = []
    for folder in args.images:
        for name in list_images(folder):
            kps, desc, _ = extract_image(f"{folder}/{name}", FeatureConfig())
            images.append((folder, kps, rootsift(desc)))
    x = np.concatenate([d for _, _, d in images])
    matches = verified_matches(images)
    print(f"{len(images)} photos, {len(x)} descriptors, {len(matches)} verified matches")
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(x))
    queries, train = x[perm[: args.n_queries]], x[perm[args.n_queries:]]
    rows = []
    for k in [int(s) for s in args.sizes.split(",")]:
        t0 = time.perf_counter()
        vocab = Vocabulary.train(train, k, seed=0, n_iter=args.kmeans_iters, n_jobs=args.n_jobs)
        t_train = time.perf_counter() - t0
        times = {}
        for mode in ("exact", "fast"):
            runs = []
            for _ in range(3):
                t0 = time.perf_counter()
                ids = vocab.assign(queries, n_jobs=args.n_jobs, exact=(mode == "exact"))
                runs.append(time.perf_counter() - t0)
            times[mode] = (float(np.median(runs)), ids)
        agree = float((times["exact"][1] == times["fast"][1]).mean())
        repeat = {}
        for mode in ("exact", "fast"):
            words = vocab.assign(x, n_jobs=args.n_jobs, exact=(mode == "exact"))
            repeat[mode] = float((words[matches[:, 0]] == words[matches[:, 1]]).mean())
        row = {"k": k, "train_descriptors": len(train), "train_s": round(t_train, 1),
               "exact_s_per_100k": times["exact"][0] * 1e5 / len(queries),
               "fast_s_per_100k": times["fast"][0] * 1e5 / len(queries),
               "speedup": times["exact"][0] / times["fast"][0], "agreement": agree,
               "repeatability_exact": repeat["exact"], "repeatability_fast": repeat["fast"],
               "verified_matches": len(matches),
               "method": "tree" if vocab.uses_tree else "exact"}
        rows.append(row)
        print(json.dumps(row))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
