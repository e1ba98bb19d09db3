"""The regions of exported masks besides each mask's largest: how large, how far, how much
of each lies on the labelled object.

    classicpr evaluate ROOT --name NAME --export EXPORT --set mask.stray_region_fraction=0
    python benchmarks/stray_regions.py ROOT NAME EXPORT [--gaps 0.1,0.25,0.5,1]

For every exported mask of a query-positive pair with a label and more than one connected
region (8-connected, at the image's resolution), each region other than the largest is
described by its area as a fraction of the largest's, its gap to the largest (the
shortest distance, in diagonals of the largest's bounding box) and the share of its pixels
inside the label. Regions are grouped by gap and by area (under or over a fifth of the
largest); a region is "on the object" when most of its pixels are inside the label. With
``--list`` every region is printed too; with ``--time``, the median time of
:func:`classicpr.masks.drop_stray_regions` (default parameters) per exported mask, at the
mask's size and scaled to 6,000 x 4,000 pixels (a 24 Mpx camera photo).
"""
import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from classicpr.config import MaskConfig
from classicpr.datasets import load_label_polygons, load_revisitop
from classicpr.masks import drop_stray_regions, region_gaps
from classicpr.regions import rasterize_polygons


def regions(mask: np.ndarray, label: np.ndarray):
    """(area fraction, gap in diagonals, share inside the label) of each region of ``mask``
    (H, W) bool other than its largest (:func:`classicpr.masks.region_gaps`); ``label``
    (H, W) bool."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
    if n <= 2:
        return []
    areas = stats[1:, cv2.CC_STAT_AREA]
    others = [k for k in range(1, n) if k != int(np.argmax(areas)) + 1]
    gaps, diagonal = region_gaps(labels, stats, others)
    return [(areas[k - 1] / areas.max(), g / diagonal, label[labels == k].mean())
            for k, g in zip(others, gaps)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root")
    ap.add_argument("name")
    ap.add_argument("export", help="folder written by classicpr evaluate --export")
    ap.add_argument("--gaps", default="0.1,0.25,0.5,1", help="gap bin edges, in diagonals")
    ap.add_argument("--list", action="store_true", help="print every region")
    ap.add_argument("--time", action="store_true", help="time drop_stray_regions")
    args = ap.parse_args(argv)
    ds = load_revisitop(args.root, args.name)
    labels = ds.load_labels()
    rows = []
    for path in sorted(Path(args.export, "masks").glob("*.png")):
        key = path.stem
        if key not in labels:
            continue
        mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 0
        h, w = mask.shape
        label = rasterize_polygons(load_label_polygons(labels[key]), (w, h))
        image = ds.imlist[int(key.split("_")[1])]
        rows += [(image, *r) for r in regions(mask, label)]
    if args.list:
        for image, fraction, gap, inside in sorted(rows, key=lambda r: r[2]):
            print(f"{gap:6.3f} diagonals  {fraction:7.4f} of the largest  "
                  f"{inside:4.2f} on the object  {image}")
    edges = [0.0] + [float(g) for g in args.gaps.split(",")] + [np.inf]
    print(f"{len(rows)} regions besides the largest, in "
          f"{len({r[0] for r in rows})} masks")
    print("gap (diagonals)  area < 0.2: regions, on the object   area >= 0.2: regions, on the object")
    for lo, hi in zip(edges[:-1], edges[1:]):
        cells = []
        for small in (True, False):
            sel = [r for r in rows if lo <= r[2] < hi and (r[1] < 0.2) == small]
            cells.append(f"{len(sel):4d}, {sum(r[3] > 0.5 for r in sel):4d}")
        print(f"{lo:5.2f}-{hi:<5.2f}        {cells[0]}                       {cells[1]}")
    if args.time:
        config = MaskConfig()
        masks = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) > 0
                 for p in sorted(Path(args.export, "masks").glob("*.png"))]
        for name, size in (("at its size", None), ("at 6,000 x 4,000", (6000, 4000))):
            times = []
            for mask in masks:
                if size is not None:
                    mask = cv2.resize(mask.view(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
                t = time.perf_counter()
                drop_stray_regions(mask, config.stray_region_fraction, config.stray_region_gap)
                times.append(time.perf_counter() - t)
            print(f"drop_stray_regions, {len(masks)} masks {name}: median {np.median(times) * 1e3:.1f} ms, "
                  f"max {max(times) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
