"""Time of the verified-neighbours stage on a large index, and of one whole-frame ranking.

    python benchmarks/neighbour_cost.py INDEX [--queries 5]

INDEX is any classicpr index, e.g. one of ``classicpr bench``'s (WORK/n10000/index). Each
query is the middle half of a random database image (as the bench's queries), run with
the default configuration except Hamming verification (no feature store needed) and
projected masks; prints the neighbour stage's time, the pairs it verified and the
neighbours it found, per query and as medians.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from classicpr import Config, Index, run_query  # noqa: E402
from classicpr.pipeline import frame_ranking  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("index")
    ap.add_argument("--queries", type=int, default=5)
    ap.add_argument("--n-jobs", type=int, default=2)
    args = ap.parse_args(argv)
    index = Index.load(args.index)
    config = Config().updated({"mask.method": "projected", "mask.top": 20,
                               "verify.method": "hamming"})
    rng = np.random.default_rng(0)
    stage, ranking = [], []
    for k in rng.choice(len(index.names), args.queries, replace=False).tolist():
        w, h = index.image_size(k)
        timing = {}
        run_query(index, index.image_path(k), (0.25 * w, 0.25 * h, 0.75 * w, 0.75 * h), config,
                  n_jobs=args.n_jobs, timing=timing)
        t0 = time.perf_counter()
        frame_ranking(index, k, config.retrieval)
        ranking.append(time.perf_counter() - t0)
        stage.append(timing["neighbours"])
        print(f"{index.names[k]}: neighbour stage {1000 * stage[-1]:.0f} ms, "
              f"{int(timing['count_neighbours_tried'])} pairs verified, "
              f"{int(timing['count_neighbours_found'])} found; one whole-frame ranking "
              f"{1000 * ranking[-1]:.0f} ms", flush=True)
    print(f"{len(index.names)} images: neighbour stage {1000 * np.median(stage):.0f} ms, "
          f"one whole-frame ranking {1000 * np.median(ranking):.0f} ms (medians)")


if __name__ == "__main__":
    main()
