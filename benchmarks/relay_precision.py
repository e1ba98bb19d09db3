"""What relay localisation localises: positives, junk and negatives of each query.

    python benchmarks/relay_precision.py ROOT NAME INDEX [--queries A,B] [--set KEY=VALUE ...]

Runs every query of a revisitop-layout benchmark with the default configuration (and the
``--set`` changes) on an index built by ``classicpr evaluate ROOT --name NAME --index-dir
INDEX`` (with ``--distractors``, the distractors are negatives of every query), and counts
the results whose region came through a relay (``QueryResult.relay``) by what the ground
truth says of them; each negative is printed with its query, rank and relay. ``--queries``
keeps the queries whose name holds one of the given strings.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from classicpr import Config, Index, run_query  # noqa: E402
from classicpr.config import parse_assignments  # noqa: E402
from classicpr.datasets import load_revisitop  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root")
    ap.add_argument("name")
    ap.add_argument("index")
    ap.add_argument("--queries", default="", help="comma-separated parts of query names")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--n-jobs", type=int, default=2)
    args = ap.parse_args(argv)
    keep = [k for k in args.queries.split(",") if k]
    ds = load_revisitop(args.root, args.name)
    index = Index.load(args.index)
    config = Config().updated(parse_assignments(args.set))
    # by file stem: an index built with distractors keeps the benchmark's images in a
    # folder of their own
    db_id = {Path(ds.db_file(i)).stem: i for i in range(len(ds.imlist))}
    counts = {"positive": 0, "junk": 0, "negative": 0}
    for q in range(len(ds.qimlist)):
        if keep and not any(k in ds.qimlist[q] for k in keep):
            continue
        positives = set(ds.gnd[q].get("easy", [])) | set(ds.gnd[q].get("hard", []))
        junk = set(ds.gnd[q].get("junk", []))
        results = run_query(index, ds.image_dir / ds.query_file(q), ds.query_box(q), config,
                            n_jobs=args.n_jobs)
        for rank, r in enumerate(results):
            if r.relay is None:
                continue
            i = db_id.get(Path(r.name).stem)  # None for a distractor
            kind = "positive" if i in positives else "junk" if i in junk else "negative"
            counts[kind] += 1
            if kind == "negative":
                print(f"{ds.qimlist[q]}: rank {rank} {r.name} ({r.inliers} inliers) through "
                      f"{index.names[r.relay]}", flush=True)
    print(f"localised through relays: {counts}")
    return counts


if __name__ == "__main__":
    main()
