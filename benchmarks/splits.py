"""Per-source splits of a ``classicpr evaluate --json`` result: pairs localised, IoU.

    python benchmarks/splits.py RESULT.json [RESULT2.json ...]

Pairs are grouped by the source their database image comes from: prmini-dev's planar
scenes ("homogr", "hpatches") and video objects ("davis"), prtilt's views by tilt
("t2.0", "t2.8", "t4.0"), anything else as "other". For each group: number of
query-positive pairs, how many have a region (IoU_D > 0), how many have S-IoU > 0.5, and
the mean D and S IoU (percent).
"""
import json
import re
import sys
from collections import defaultdict


def source(image: str) -> str:
    m = re.search(r"_t(\d+\.\d)$", image)
    if m:
        return f"tilt {m.group(1)}"
    for prefix in ("homogr", "hpatches", "davis"):
        if image.startswith(prefix):
            return "video objects" if prefix == "davis" else "planar"
    return "other"


def splits(result: dict) -> dict:
    groups = defaultdict(list)
    for pair in result.get("pairs", []):
        groups[source(pair["image"])].append(pair)
    out = {}
    for name, pairs in sorted(groups.items()):
        n = len(pairs)
        out[name] = {"pairs": n,
                     "with_region": sum(p["iou_D"] > 0 for p in pairs),
                     "S_iou_above_0.5": sum(p["iou_S"] > 50 for p in pairs),
                     "mean_D": sum(p["iou_D"] for p in pairs) / n,
                     "mean_S": sum(p["iou_S"] for p in pairs) / n}
    return out


def main(argv=None):
    for path in (argv if argv is not None else sys.argv[1:]):
        result = json.load(open(path))
        print(f"{path}: mAP {result['mAP']['medium']:.1f} / {result['mAP']['hard']:.1f}, "
              f"S-mIoU {result['mIoU_S']['medium']:.1f} / {result['mIoU_S']['hard']:.1f}, "
              f"D-mIoU {result['mIoU_D']['medium']:.1f} / {result['mIoU_D']['hard']:.1f}, "
              f"{result['timing_s']['per_query_median']:.2f} s / query")
        for name, row in splits(result).items():
            print(f"  {name:14s} pairs {row['pairs']:3d}  with region {row['with_region']:3d}  "
                  f"S-IoU > 0.5 {row['S_iou_above_0.5']:3d}  mean D {row['mean_D']:5.1f}  "
                  f"mean S {row['mean_S']:5.1f}")


if __name__ == "__main__":
    main()
