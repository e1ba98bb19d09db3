"""Word assignment: exact nearest centroid vs classicpr's spill tree, speed and agreement.

Real RootSIFT descriptors are extracted from a folder of photos; vocabularies are trained
with faiss k-means (``--sizes``); 100k held-out descriptors are assigned exactly (faiss
flat, BLAS) and with ``Vocabulary.assign``. Usage::

    python benchmarks/assignment.py --images ../shared/data/prmini-dev/revisitop/data/prmini/jpg \
        --images ../shared/data/rparis6k-sample/jpg --sizes 4096,16384,65536
"""
import argparse
import json
import time

import numpy as np

from classicpr.features import FeatureConfig, extract_image, rootsift
from classicpr.io import list_images
from classicpr.vocabulary import Vocabulary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", action="append", required=True)
    ap.add_argument("--sizes", default="4096,16384,65536")
    ap.add_argument("--n-queries", type=int, default=100_000)
    ap.add_argument("--kmeans-iters", type=int, default=10)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    parts = []
    for folder in args.images:
        for name in list_images(folder):
            parts.append(extract_image(f"{folder}/{name}", FeatureConfig())[1])
    x = rootsift(np.concatenate(parts))
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
        row = {"k": k, "train_descriptors": len(train), "train_s": round(t_train, 1),
               "exact_s_per_100k": times["exact"][0] * 1e5 / len(queries),
               "fast_s_per_100k": times["fast"][0] * 1e5 / len(queries),
               "speedup": times["exact"][0] / times["fast"][0], "agreement": agree,
               "method": "tree" if vocab.uses_tree else "exact"}
        rows.append(row)
        print(json.dumps(row))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
