"""Seconds of each stage of chosen queries of a benchmark, one query at a time.

    python benchmarks/stage_times.py ROOT NAME INDEX QUERY [QUERY ...] [--set KEY=VALUE] [--n-jobs 2]

ROOT and NAME are a benchmark in the revisitop layout (e.g. ``../shared/data/prmini-dev
prmini``), INDEX its classicpr index, each QUERY a query image's name (e.g.
``davis_car-roundabout_q``). ``classicpr evaluate`` reports each stage's median over all
queries; this prints every stage of the queries named, with the pairs that neighbour
regions verified and the neighbours localised.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from classicpr import Config, Index, run_query  # noqa: E402
from classicpr.config import parse_assignments  # noqa: E402
from classicpr.datasets import load_revisitop  # noqa: E402
from classicpr.pipeline import QUERY_STAGES  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root")
    ap.add_argument("name")
    ap.add_argument("index")
    ap.add_argument("queries", nargs="+")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--n-jobs", type=int, default=2)
    args = ap.parse_args(argv)
    ds = load_revisitop(args.root, args.name)
    index = Index.load(args.index)
    config = Config().updated(parse_assignments(args.set))
    for name in args.queries:
        if name not in ds.qimlist:
            ap.error(f"{name!r} is not a query of {args.name}")
        q = ds.qimlist.index(name)
        timing = {}
        run_query(index, ds.image_dir / ds.query_file(q), ds.query_box(q), config,
                  n_jobs=args.n_jobs, timing=timing)
        stages = "  ".join(f"{k} {timing[k]:.2f}" for k in QUERY_STAGES)
        print(f"{name:28s} {stages}  neighbour regions tried "
              f"{int(timing.get('count_neighbour_regions_tried', 0))}, localised "
              f"{int(timing.get('count_neighbours_localised', 0))}", flush=True)


if __name__ == "__main__":
    main()
