"""Projected regions vs GrabCut masks on prmini-dev, S-mIoU split by image source.

prmini-dev mixes planar scenes (homogr_*, hpatches_*: the label is the whole projected box)
and video objects (davis_*: the label is a silhouette inside the box). A refinement must
help the second without damaging the first. Usage::

    python benchmarks/prmini_masks.py [--root ../shared/data/prmini-dev] [--verify ratio]
"""
import argparse
import json
from pathlib import Path

import numpy as np

from classicpr.evaluate import evaluate_benchmark
from classicpr.config import Config


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "prmini-dev"))
    ap.add_argument("--index-dir", default="/tmp/classicpr-prmini-index")
    ap.add_argument("--verify", default="ratio", choices=("ratio", "words"))
    ap.add_argument("--methods", default="projected,grabcut,grabcut-region")
    ap.add_argument("--n-jobs", type=int, default=2)
    args = ap.parse_args(argv)
    rows = {}
    for method in args.methods.split(","):
        config = Config().updated({"verify.method": args.verify, "mask.method": method})
        r = evaluate_benchmark(args.root, "prmini", args.index_dir, config, n_jobs=args.n_jobs,
                               progress=False)
        split = {"planar": [], "video": []}
        for pair in r["pairs"]:
            split["video" if pair["query"].startswith("davis") else "planar"].append(pair["iou_S"] / 100)
        rows[method] = {"S-mIoU medium": r["mIoU_S"]["medium"], "S-mIoU hard": r["mIoU_S"]["hard"],
                        "pmAP-S medium": r["pmAP_S"]["medium"], "pmAP-S hard": r["pmAP_S"]["hard"],
                        "pair S-IoU planar": 100 * float(np.mean(split["planar"])),
                        "pair S-IoU video": 100 * float(np.mean(split["video"])),
                        "s/query": r["timing_s"]["per_query_median"]}
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
