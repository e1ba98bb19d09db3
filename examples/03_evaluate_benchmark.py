"""Evaluate a benchmark in the revisitop layout (demo by default; prmini-dev, roxford5k...).

Example: python examples/03_evaluate_benchmark.py --root ../shared/data/prmini-dev --name prmini
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import benchmark_arguments, benchmark_root  # noqa: E402


def main(argv=None):
    ap = benchmark_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    ap.add_argument("--official-quirks", action="store_true")
    args = ap.parse_args(argv)
    from classicpr.demo import write_pictures
    from classicpr.evaluate import evaluate_benchmark
    root = benchmark_root(args)
    work = Path(args.work) / f"eval-{args.name}"
    result = evaluate_benchmark(root, args.name, work / "index", n_jobs=args.n_jobs,
                                export_dir=work / "export", official=args.official_quirks)
    print(json.dumps({k: v for k, v in result.items() if k != "timing_s"}, indent=1))
    if (root / "revisitop" / "data" / args.name).is_dir():
        page = write_pictures(root, args.name, work / "export", work / "report", result)
        print(f"report: {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
