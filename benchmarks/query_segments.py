"""How good is the query's GrabCut segment, and how far would a perfect one take the pipeline?

    python benchmarks/query_segments.py ../shared/data/prmini-dev PRVIDEO prvideolast [--index-dir I --json OUT]

For a prvideo set (``benchmarks/make_video_set.py``), every query is a labelled frame of
prmini-dev, so its object's true mask is known. For each query this prints the IoU of
GrabCut's segment of the query box (``classicpr.masks.segment_query``, the default mask
settings) with that mask. With ``--index-dir``, the whole benchmark is then evaluated
twice on that index: as is, and with each query's true mask given as its segment
(``evaluate_benchmark(query_masks=...)``), and the scores of both are printed: the gap is
what a perfect query segment is worth.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from classicpr.config import Config  # noqa: E402
from classicpr.datasets import load_label_polygons, load_revisitop  # noqa: E402
from classicpr.evaluate import evaluate_benchmark  # noqa: E402
from classicpr.io import image_size, read_image, write_json  # noqa: E402
from classicpr.masks import segment_query  # noqa: E402
from classicpr.regions import mask_iou, rasterize_polygons  # noqa: E402

SCORES = ("mAP", "mIoU_D", "mIoU_S", "pmAP_D", "pmAP_S")


def query_labels(prmini_root: Path, root: Path, name: str):
    """The prvideo set and, per query, the true mask of its object (from prmini-dev's label
    of the query's frame)."""
    prmini = load_revisitop(prmini_root, "prmini")
    frame_label = {}
    for key, path in prmini.load_labels().items():
        frame_label[prmini.imlist[int(key.split("_")[1])]] = path
    ds = load_revisitop(root, name)
    masks = {}
    for q, qname in enumerate(ds.qimlist):
        video, frame = qname.rsplit("_q", 1)
        polygons = load_label_polygons(frame_label[f"{video}_{int(frame):05d}"])
        masks[q] = rasterize_polygons(polygons, image_size(ds.image_dir / ds.query_file(q)))
    return ds, masks


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("prmini_root")
    ap.add_argument("root")
    ap.add_argument("name")
    ap.add_argument("--index-dir")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    ds, masks = query_labels(Path(args.prmini_root), Path(args.root), args.name)
    config = Config()
    ious = []
    for q, qname in enumerate(ds.qimlist):
        image, _ = read_image(ds.image_dir / ds.query_file(q), gray=False)
        segment = segment_query(image, ds.query_box(q), config.mask)
        iou = mask_iou(segment, masks[q]) if segment is not None else 0.0
        x1, y1, x2, y2 = ds.query_box(q)
        fill = masks[q].sum() / max(1.0, float((x2 - x1) * (y2 - y1)))
        ious.append(iou)
        print(f"{qname:36s} object {100 * fill:5.1f} % of the box   segment IoU "
              f"{100 * iou:5.1f}" + ("   (no segment)" if segment is None else ""))
    print(f"mean segment IoU {100 * np.mean(ious):.1f} over {len(ious)} queries")
    out = {"segment_iou": dict(zip(ds.qimlist, ious))}
    if args.index_dir:
        for label, given in (("GrabCut segment", None), ("true mask", masks)):
            result = evaluate_benchmark(args.root, args.name, args.index_dir, config,
                                        n_jobs=args.n_jobs, progress=False, query_masks=given)
            pairs = [p["iou_S"] for p in result["pairs"]]
            out[label] = {k: result[k] for k in SCORES}
            out[label]["mean_pair_S_iou"] = float(np.mean(pairs))
            print(f"{label:16s} " + "  ".join(
                f"{k} {result[k]['medium']:.2f} / {result[k]['hard']:.2f}" for k in SCORES)
                + f"  mean pair S-IoU {np.mean(pairs):.1f}")
    if args.json:
        write_json(args.json, out)


if __name__ == "__main__":
    main()
