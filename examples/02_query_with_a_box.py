"""Query an index with an image and a box: masks and overlay PNGs of the top results.

Default: the demo index and its first query. Example:
python examples/02_query_with_a_box.py --index my_index --image q.jpg --box 10,20,300,400
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_WORK, demo_root  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", default=str(DEFAULT_WORK / "index"))
    ap.add_argument("--image")
    ap.add_argument("--box", help="x1,y1,x2,y2")
    ap.add_argument("--out", default=str(DEFAULT_WORK / "query"))
    ap.add_argument("--top", type=int, default=5)
    args = ap.parse_args(argv)
    from classicpr.datasets import load_revisitop
    from classicpr import Index, run_query
    from classicpr.io import read_image_at_size, write_png
    from classicpr.regions import parse_box
    from classicpr.viz import overlay
    if args.image is None:
        ds = load_revisitop(demo_root(), "demo")
        image, box = ds.image_dir / ds.query_file(0), ds.query_box(0)
        if not (Path(args.index) / "index.npz").is_file():
            Index.build(ds.image_dir, args.index, names=[ds.db_file(i) for i in range(len(ds.imlist))])
    else:
        image, box = args.image, parse_box(args.box) if args.box else None
    index = Index.load(args.index)
    out = Path(args.out)
    for rank, r in enumerate(run_query(index, image, box, top=args.top)):
        print(f"#{rank + 1} {r.name} score {r.score:.3f} inliers {r.inliers}"
              + (" verified" if r.verified else ""))
        if r.mask is not None:
            img = read_image_at_size(index.image_path(r.image_id), index.image_size(r.image_id))
            write_png(out / f"{rank + 1:02d}_mask.png", r.mask.astype(np.uint8) * 255)
            write_png(out / f"{rank + 1:02d}_overlay.png", overlay(img, r.mask, r.polygon, label=f"#{rank + 1}"))
    print(f"masks and overlays in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
