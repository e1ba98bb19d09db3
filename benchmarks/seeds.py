"""A benchmark over vocabulary seeds: mean, standard deviation and range of the image mAP,
S-mIoU and pmAP-S of the default pipeline, its variants and the rankings alone.

    python benchmarks/seeds.py ../shared/data/prmini-dev prmini WORK [--seeds 0,1,2,3,4] [--n-jobs 2] [--configurations "default pipeline,without expansion"]

The seed draws k-means' sample and initialisation and the Hamming projection. Each seed
gets an index of its own, ``WORK/seed-S``, all of them reading one feature store
(``WORK/features``), so that the images' SIFT is extracted once. Every configuration of a
seed runs on that seed's index; per-seed figures are printed as they come, and the table
at the end.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from classicpr.config import Config  # noqa: E402
from classicpr.evaluate import evaluate_benchmark  # noqa: E402
from classicpr.io import write_json  # noqa: E402

#: Configuration name -> parameters set on the default.
CONFIGURATIONS = {
    "default pipeline": {},
    "without expansion": {"retrieval.expansion": "none"},
    "without verified neighbours": {"retrieval.neighbours": 0},
    "without either": {"retrieval.neighbours": 0, "retrieval.expansion": "none"},
    "ASMK* ranking alone": {"verify.shortlist": 0, "retrieval.expansion": "none"},
    "ASMK* + hqe, ranking alone": {"verify.shortlist": 0, "retrieval.expansion": "hqe"},
    "bag of words, ranking alone": {"verify.shortlist": 0, "retrieval.expansion": "none",
                                    "retrieval.scoring": "bow"},
}
#: Reported scores (keys of evaluate's result).
METRICS = ("mAP", "mIoU_S", "pmAP_S")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root")
    ap.add_argument("name")
    ap.add_argument("work")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--configurations", default=",".join(CONFIGURATIONS),
                    help="comma-separated names of the configurations to run (default: all)")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    chosen = [c.strip() for c in args.configurations.split(",")]
    unknown = [c for c in chosen if c not in CONFIGURATIONS]
    if unknown:
        ap.error(f"--configurations: unknown {unknown}; choose among {list(CONFIGURATIONS)}")
    work = Path(args.work)
    (work / "features").mkdir(parents=True, exist_ok=True)
    (work / "results").mkdir(exist_ok=True)
    scores = {c: [] for c in chosen}
    for seed in seeds:
        index_dir = work / f"seed-{seed}"
        index_dir.mkdir(exist_ok=True)
        if not (index_dir / "features").exists():
            (index_dir / "features").symlink_to((work / "features").resolve())
        for name in chosen:
            config = Config().updated({"vocabulary.seed": seed, **CONFIGURATIONS[name]})
            result = evaluate_benchmark(args.root, args.name, index_dir, config,
                                        n_jobs=args.n_jobs, progress=False)
            write_json(work / "results" / f"seed-{seed}, {name}.json", result)
            row = [result[m][p] for m in METRICS for p in ("medium", "hard")]
            scores[name].append(row)
            print(f"seed {seed}, {name}: " + ", ".join(
                f"{m} {row[2 * k]:.2f} / {row[2 * k + 1]:.2f}" for k, m in enumerate(METRICS)),
                flush=True)
    print(f"\n| seeds {args.seeds}: mean (sd), range | " + " | ".join(METRICS) + " |")
    print("|---" * (len(METRICS) + 1) + "|")
    for name, rows in scores.items():
        a = np.array(rows)
        sd = a.std(axis=0, ddof=1) if len(a) > 1 else np.zeros(a.shape[1])
        cells = []
        for k, metric in enumerate(METRICS):
            m, h = 2 * k, 2 * k + 1
            if metric != "mAP" and CONFIGURATIONS[name].get("verify.shortlist") == 0:
                cells.append("-")  # a ranking alone has no regions
                continue
            cells.append(f"{a[:, m].mean():.1f} / {a[:, h].mean():.1f} ({sd[m]:.1f} / "
                         f"{sd[h]:.1f}), {a[:, m].min():.1f}-{a[:, m].max():.1f} / "
                         f"{a[:, h].min():.1f}-{a[:, h].max():.1f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
