"""False localisations: regions given to database images that do not show the query object.

    python benchmarks/false_localisation.py bench ROOT NAME [--set KEY=VALUE ...]
    python benchmarks/false_localisation.py landmarks IMAGE_DIR [--set KEY=VALUE ...]

``bench``: every query of a revisitop-layout benchmark; a region on an image that is
neither a positive nor junk of the query is false. ``landmarks``: a folder of landmark
photos named ``paris_<landmark>_<n>.jpg`` (e.g. the RParis6k sample); each photo queries
the others with its whole frame; a region on a photo of another landmark is false, one on
the same landmark is true. The index is built in ``--work`` (reused). Prints counts of
true and false regions, how they were made, and the false rate among all regions.
"""
import argparse
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from classicpr import Config, Index, run_query  # noqa: E402
from classicpr.config import parse_assignments  # noqa: E402
from classicpr.datasets import load_revisitop  # noqa: E402
from classicpr.io import list_images  # noqa: E402


def count(results, is_true):
    c = Counter()
    for r in results:
        if r.localised:
            c[("true" if is_true(r) else "false", "synthesis" if r.view_tilt > 1 else
               "weak" if r.weak else "plain")] += 1
    return c


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("bench", "landmarks"))
    ap.add_argument("root")
    ap.add_argument("name", nargs="?")
    ap.add_argument("--work", default="/tmp/classicpr-false-localisation")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--n-jobs", type=int, default=2)
    args = ap.parse_args(argv)
    config = Config().updated(parse_assignments(args.set)).updated({"mask.top": 0})
    total = Counter()
    if args.mode == "bench":
        ds = load_revisitop(args.root, args.name)
        index = Index.build(ds.image_dir, Path(args.work) / args.name,
                            names=[ds.db_file(i) for i in range(len(ds.imlist))],
                            n_jobs=args.n_jobs, progress=False)
        for q in range(len(ds.qimlist)):
            good = set(ds.gnd[q].get("easy", [])) | set(ds.gnd[q].get("hard", []))
            junk = set(ds.gnd[q].get("junk", []))
            res = [r for r in run_query(index, ds.image_dir / ds.query_file(q), ds.query_box(q),
                                        config, n_jobs=args.n_jobs) if r.image_id not in junk]
            total += count(res, lambda r: r.image_id in good)
    else:
        names = list_images(args.root)
        landmark = {n: re.sub(r"^paris_|_\d+\.\w+$", "", n) for n in names}
        index = Index.build(args.root, Path(args.work) / "landmarks", names=names,
                            n_jobs=args.n_jobs, progress=False)
        for n in names:
            res = [r for r in run_query(index, Path(args.root) / n, None, config,
                                        n_jobs=args.n_jobs) if r.name != n]
            total += count(res, lambda r: landmark[r.name] == landmark[n])
    regions = sum(total.values())
    false = sum(v for (kind, _), v in total.items() if kind == "false")
    print(dict(sorted(total.items())))
    print(f"regions {regions}, false {false} ({100 * false / max(regions, 1):.1f} %)")


if __name__ == "__main__":
    main()
