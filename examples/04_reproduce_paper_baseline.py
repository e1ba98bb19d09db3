"""The benchmark paper's SIFT+SP pixel baseline vs classicpr's default, side by side.

SIFT+SP (An et al., ICCV 2023), classicpr's ``paper`` preset: RootSIFT ratio matching of
the query against *every* database image, RANSAC homography, rank by inliers, region =
query box projected by the homography. classicpr's default verifies a BoW shortlist (top
100) with an a-contrario acceptance test, refits the homography on its inliers, matches
synthesised tilted views of the query to the images that fail, and segments the query's
object where the box is not one rigid plane. Default data: the demo; example:
python examples/04_reproduce_paper_baseline.py --root ../shared/data/prmini-dev --name prmini
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import benchmark_arguments, benchmark_root  # noqa: E402


def main(argv=None):
    ap = benchmark_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    args = ap.parse_args(argv)
    from classicpr import Config
    from classicpr.evaluate import evaluate_benchmark
    root = benchmark_root(args)
    index_dir = Path(args.work) / f"baseline-{args.name}" / "index"
    configs = {"SIFT+SP (preset paper)": Config.preset("paper"),
               "classicpr default": Config.preset("default")}
    rows = {}
    for label, config in configs.items():
        rows[label] = evaluate_benchmark(root, args.name, index_dir, config,
                                         n_jobs=args.n_jobs, progress=False)
    keys = ["mAP", "mIoU_D", "mIoU_S", "pmAP_D", "pmAP_S"]
    print(f"{'method':24s}" + "".join(f"{k + ' M/H':>16s}" for k in keys) + f"{'s/query':>9s}")
    for label, r in rows.items():
        cells = "".join(f"{r[k]['medium']:>9.1f}/{r[k]['hard']:<6.1f}" for k in keys)
        print(f"{label:24s}{cells}{r['timing_s']['per_query_median']:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
