"""How well is a verified neighbour localised, and how well would carrying its matched
image's region by the whole-frame homography do?

    python benchmarks/neighbour_regions.py ROOT NAME INDEX [--n-jobs 2]

ROOT and NAME are a benchmark in the revisitop layout with labels (e.g.
``../shared/data/prmini-dev prmini``), INDEX its classicpr index. Every query runs with the
default configuration. For each verified neighbour that is a positive, prints the S-IoU
with the label of: the region the pipeline gives it (``localise_neighbours``: the region
of a localised image near it, verified against it as a relay; 0 where it gets none); the
mask of the image it matched (or the mask carried into that image, along a chain of
neighbours) carried by the two frames' whole-frame homography; and that carried mask
refined by GrabCut seeded with it (``objects.object_mask``). Then the means.
"""
import argparse
import dataclasses
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from classicpr import Config, Index, run_query  # noqa: E402
from classicpr.datasets import load_label_polygons, load_revisitop  # noqa: E402
from classicpr.io import read_image  # noqa: E402
from classicpr.metrics import Prediction, clean_pair_iou  # noqa: E402
from classicpr.objects import object_mask  # noqa: E402
from classicpr.pipeline import frame_query, verify_shortlist  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root")
    ap.add_argument("name")
    ap.add_argument("index")
    ap.add_argument("--n-jobs", type=int, default=2)
    args = ap.parse_args(argv)
    ds = load_revisitop(args.root, args.name)
    labels = ds.load_labels()
    index = Index.load(args.index)
    config = Config()
    # the neighbour stage's own verification (pipeline.verified_neighbours)
    whole_frame = dataclasses.replace(config.verify, method="hamming", synthesis_candidates=0,
                                      query_assignments=1)
    scores = []
    for q in range(len(ds.qimlist)):
        results = run_query(index, ds.image_dir / ds.query_file(q), ds.query_box(q), config,
                            n_jobs=args.n_jobs)
        positives = set(ds.gnd[q]["easy"] + ds.gnd[q]["hard"])
        # the masks that whole-frame carrying starts from: not the neighbours' own
        masks = {r.image_id: r.mask for r in results if r.mask is not None and r.neighbour is None}
        for r in results:  # neighbours come in the order found: sources first
            if r.neighbour is None or r.neighbour not in masks:
                continue
            checked = verify_shortlist(index, frame_query(index, r.neighbour), [r.image_id],
                                       whole_frame, None, args.n_jobs)
            H = checked[r.image_id].plain.H
            if H is None:
                continue
            w, h = index.image_size(r.image_id)
            carried = cv2.warpPerspective(masks[r.neighbour].astype(np.uint8), H, (w, h),
                                          flags=cv2.INTER_NEAREST) > 0
            masks[r.image_id] = carried
            if r.image_id not in positives:
                continue
            label = load_label_polygons(labels[f"{q}_{r.image_id}"])
            refined = object_mask(read_image(index.image_path(r.image_id), gray=False)[0],
                                  carried, np.zeros((0, 2)), config.mask)
            s = [clean_pair_iou(Prediction(None, m), label, (w, h))[1] if m is not None else 0.0
                 for m in (r.mask, carried, refined)]
            scores.append(s)
            print(f"{ds.qimlist[q]:28s} {r.name:36s} from {index.names[r.neighbour]:36s} "
                  f"S-IoU localised {100 * s[0]:5.1f}  carried {100 * s[1]:5.1f}  "
                  f"GrabCut {100 * s[2]:5.1f}", flush=True)
    if scores:
        mean = 100 * np.mean(scores, axis=0)
        print(f"{len(scores)} positive neighbours: mean S-IoU localised {mean[0]:.1f}, "
              f"carried {mean[1]:.1f}, GrabCut {mean[2]:.1f}")


if __name__ == "__main__":
    main()
