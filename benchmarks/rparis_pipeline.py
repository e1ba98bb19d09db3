"""Image mAP of the whole pipeline against retrieval alone on the RParis6k sample.

    python benchmarks/rparis_pipeline.py ../shared/data/rparis6k-sample/jpg \
        ../shared/data/revisitop/gnd_rparis6k.pkl WORK [--seed S] [--set KEY=VALUE ...]

Real landmark photos that prmini-dev does not hold, with the official ground truth (as
``rparis_sample.py``): every present image with a related image queries the others with
its whole frame. Leave one out: the query is not in the database it searches (an index of
the other 30 images, with one vocabulary trained on all 31), so it can neither verify
itself nor expand or relay with itself. Prints the mAP of the ASMK* ranking alone
(``--shortlist 0``), of the whole pipeline, and of the whole pipeline without relay
localisation, each over the same queries, and the median seconds per query.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from classicpr import Config, Index, run_query  # noqa: E402
from classicpr.config import parse_assignments  # noqa: E402
from rparis_sample import query_ap, sample_ground_truth  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("image_dir")
    ap.add_argument("gnd")
    ap.add_argument("work", help="folder for the indexes (the full one is reused)")
    ap.add_argument("--seed", type=int, default=0,
                    help="vocabulary seed (the full index of seed S > 0 is WORK/full-seedS)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--n-jobs", type=int, default=2)
    args = ap.parse_args(argv)
    names, related = sample_ground_truth(args.image_dir, args.gnd)
    work = Path(args.work)
    full_dir = work / ("full" if args.seed == 0 else f"full-seed{args.seed}")
    full = Index.build(args.image_dir, full_dir, names=[n + ".jpg" for n in names],
                       seed=args.seed, n_jobs=args.n_jobs, progress=False)
    base = Config().updated(parse_assignments(args.set))
    configs = {"retrieval alone (ASMK*)": base.updated({"verify.shortlist": 0}),
               "whole pipeline": base,
               "whole pipeline, no relays": base.updated({"verify.relay_images": 0})}
    aps = {k: [] for k in configs}
    seconds = {k: [] for k in configs}
    queries = [n for n in names if related[n]]
    for n in queries:
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            (Path(tmp) / "features").symlink_to((full_dir / "features").resolve())
            others = [m + ".jpg" for m in names if m != n]
            index = Index.build(args.image_dir, tmp, names=others, vocabulary=full.vocabulary,
                                n_jobs=args.n_jobs, progress=False)
            for key, config in configs.items():
                t0 = time.perf_counter()
                results = run_query(index, Path(args.image_dir) / (n + ".jpg"), None, config,
                                    n_jobs=args.n_jobs)
                seconds[key].append(time.perf_counter() - t0)
                aps[key].append(query_ap([r.name[:-4] for r in results], n, related))
    for key in configs:
        print(f"{key}: mAP {100 * np.mean(aps[key]):.1f} over {len(queries)} queries, "
              f"{np.median(seconds[key]):.2f} s / query (median)")


if __name__ == "__main__":
    main()
