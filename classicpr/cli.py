"""Command line: thin wrappers that parse, call the library and print.

User errors (bad files, bad parameters) print one line ``classicpr: error: ...`` and exit 2.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np

from .errors import ClassicPRError

log = logging.getLogger("classicpr")


def _int_at_least(minimum: int, what: str):
    """An argparse type: an integer >= minimum, with a message naming what was expected."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {v}")
        return v
    return parse


_positive_int = _int_at_least(1, "a positive integer")
_non_negative_int = _int_at_least(0, "an integer >= 0")


def _n_jobs(text: str) -> int:
    if text.strip() == "-1":
        return -1
    return _positive_int(text)


def _add_jobs(p):
    p.add_argument("--n-jobs", type=_n_jobs, default=None,
                   help="cores to use in all (default: all; -1 = all)")


def _add_verify(p):
    p.add_argument("--shortlist", type=_non_negative_int, default=100,
                   help="top BoW results verified (0 = BoW ranking only)")
    p.add_argument("--verify", choices=("ratio", "words"), default="ratio",
                   help="correspondences: descriptor ratio test (default) or shared words")
    p.add_argument("--weak-localisation", action="store_true",
                   help="also give a region to unverified images where a similarity transform "
                        "has >= 6 inliers (best effort; most such regions are on wrong images)")
    p.add_argument("--mask", choices=("projected", "grabcut", "grabcut-region"), default="grabcut",
                   help="region of a verified image: GrabCut object segment carried by its own "
                        "homography where the object moves independently, else the projected box "
                        "(grabcut, default); the projected box only; or GrabCut refinement of the region")


def _verify_config(args):
    from .verify import VerifyConfig
    return VerifyConfig(shortlist=args.shortlist, method=args.verify,
                        min_weak_inliers=6 if args.weak_localisation else 0)


def _feature_config(args):
    from .features import FeatureConfig
    return FeatureConfig(max_side=getattr(args, "max_side", 1024) or 1024)


def cmd_vocab(args) -> int:
    from .features import FeatureStore, extract_to_store
    from .index import sample_training_descriptors
    from .io import list_images
    from .vocabulary import Vocabulary
    names = list_images(args.image_dir)
    if not names:
        raise ClassicPRError(f"no images found in {args.image_dir}")
    store = FeatureStore(Path(str(args.out) + ".features"), _feature_config(args))
    done, _ = extract_to_store(args.image_dir, names, store, args.n_jobs, not args.quiet)
    from .vocabulary import TRAINING_PER_WORD
    train = sample_training_descriptors(store, done, TRAINING_PER_WORD * args.size, args.seed)
    if len(train) < args.size:
        raise ClassicPRError(f"only {len(train)} descriptors in {args.image_dir}; "
                             f"--size {args.size} needs at least as many")
    vocab = Vocabulary.train(train, args.size, seed=args.seed, n_jobs=args.n_jobs)
    vocab.save(args.out)
    print(f"vocabulary of {vocab.size} words trained on {len(train)} descriptors -> {args.out}")
    return 0


def cmd_index(args) -> int:
    from .index import Index
    from .vocabulary import Vocabulary
    vocab = Vocabulary.load(args.vocab) if args.vocab else None
    index = Index.build(args.image_dir, args.out, vocabulary=vocab, vocab_size=args.vocab_size,
                        feature_config=_feature_config(args), seed=args.seed,
                        n_jobs=args.n_jobs, progress=not args.quiet)
    print(f"indexed {len(index.names)} images ({len(index.skipped)} skipped) with "
          f"{index.vocabulary.size} words -> {args.out}; "
          f"{index.nbytes_per_image() / 1024:.1f} KiB per image")
    for name, reason in index.skipped:
        print(f"  skipped {name}: {reason}")
    return 0


def _load_index(path):
    from .index import Index
    return Index.load(path)


def cmd_search(args) -> int:
    from .regions import parse_box
    index = _load_index(args.index)
    box = parse_box(args.box) if args.box else None
    _, _, words, _ = index.query_features(args.image, box)
    ids, scores = index.retrieve(words, top=args.top)
    for i, s in zip(ids, scores):
        print(f"{index.names[i]}\t{s:.4f}")
    return 0


def cmd_query(args) -> int:
    from .io import read_image, write_json, write_png
    from .masks import MaskConfig
    from .pipeline import run_query
    from .regions import parse_box
    from .viz import overlay
    index = _load_index(args.index)
    box = parse_box(args.box) if args.box else None
    results = run_query(index, args.image, box, _verify_config(args),
                        MaskConfig(method=args.mask), top=args.top, mask_top=args.top,
                        n_jobs=args.n_jobs)
    out = Path(args.out)
    rows = []
    for rank, r in enumerate(results):
        row = {"rank": rank + 1, "image": r.name, "score": r.score, "inliers": r.inliers,
               "verified": r.verified,
               "polygon": None if r.polygon is None else r.polygon.round(2).tolist()}
        if r.mask is not None:
            stem = Path(r.name).with_suffix("").as_posix().replace("/", "__")
            write_png(out / "masks" / f"{rank + 1:03d}_{stem}.png", r.mask.astype(np.uint8) * 255)
            img, _ = read_image(index.image_dir / r.name, gray=False)
            write_png(out / "overlays" / f"{rank + 1:03d}_{stem}.png",
                      overlay(img, r.mask, r.polygon, label=f"#{rank + 1} inliers {r.inliers}"))
            row["mask"] = f"masks/{rank + 1:03d}_{stem}.png"
        rows.append(row)
        print(f"{rank + 1:3d}  {r.name}\tscore {r.score:.4f}\tinliers {r.inliers}"
              + ("\tverified" if r.verified else ""))
    write_json(out / "results.json", rows)
    print(f"results, masks and overlays -> {out}")
    return 0


def _print_table(result: dict) -> None:
    keys = [k for k in ("mAP", "mIoU_D", "mIoU_S", "pmAP_D", "pmAP_S") if k in result]
    print(f"{'metric':8s} {'medium':>8s} {'hard':>8s}")
    for k in keys:
        print(f"{k:8s} {result[k].get('medium', float('nan')):8.2f} {result[k].get('hard', float('nan')):8.2f}")
    for w in result.get("warnings", []):
        print("warning:", w)


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate_benchmark
    from .io import write_json
    from .masks import MaskConfig
    distractor_names = None
    if args.distractor_list:
        if not args.distractors:
            raise ClassicPRError("--distractor-list needs --distractors DIR")
        try:
            distractor_names = [ln.strip() for ln in Path(args.distractor_list).read_text().splitlines()
                                if ln.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise ClassicPRError(f"cannot read --distractor-list {args.distractor_list}: {exc}") from None
    if args.max_distractors is not None:
        if not args.distractors:
            raise ClassicPRError("--max-distractors needs --distractors DIR")
        if distractor_names is None:
            from .io import list_images
            distractor_names = list_images(args.distractors)
        distractor_names = distractor_names[: args.max_distractors]
    default_dir = f"classicpr-index-{args.name}" + ("+distractors" if args.distractors else "")
    index_dir = args.index_dir or Path(default_dir)
    result = evaluate_benchmark(args.root, args.name, index_dir,
                                _verify_config(args),
                                MaskConfig(method=args.mask),
                                n_jobs=args.n_jobs, export_dir=args.export,
                                official=args.official_quirks, allow_missing=args.allow_missing,
                                vocab_size=args.vocab_size, seed=args.seed,
                                progress=not args.quiet, distractors=args.distractors,
                                distractor_names=distractor_names)
    _print_table(result)
    if args.json:
        write_json(args.json, result)
    return 0


def cmd_score(args) -> int:
    from .evaluate import score_result_files
    from .io import write_json
    result = score_result_files(args.root, args.name, args.ranks, args.matching, args.masks,
                                args.official_quirks, args.allow_missing)
    _print_table(result)
    if args.json:
        write_json(args.json, result)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="classicpr", description=(
        "Classical pixel retrieval: SIFT + visual words + RANSAC + masks."))
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    parser.add_argument("--backend", choices=("loky", "dask"), default="loky",
                        help="joblib backend for every parallel stage (dask: a dask.distributed cluster)")
    parser.add_argument("--scheduler", help="with --backend dask: scheduler address, e.g. tcp://10.0.0.1:8786 "
                        "(default: a local cluster)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("vocab", help="train a visual vocabulary on a folder of images")
    p.add_argument("image_dir")
    p.add_argument("--out", required=True, help="vocabulary file (.npz)")
    p.add_argument("--size", type=_positive_int, required=True, help="number of words (<= 65536)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-side", type=_positive_int, default=1024)
    _add_jobs(p)
    p.set_defaults(func=cmd_vocab)

    p = sub.add_parser("index", help="index a folder of images (resumes partial work)")
    p.add_argument("image_dir")
    p.add_argument("--out", required=True, help="index folder")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--vocab", help="a vocabulary trained by `classicpr vocab`")
    g.add_argument("--vocab-size", type=_positive_int, help="train a vocabulary of this size")
    p.add_argument("--max-side", type=_positive_int, default=1024)
    p.add_argument("--seed", type=int, default=0)
    _add_jobs(p)
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("search", help="image-level retrieval (BoW only)")
    p.add_argument("index")
    p.add_argument("image")
    p.add_argument("--box", help="x1,y1,x2,y2 in query pixels")
    p.add_argument("--top", type=_positive_int, default=10)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("query", help="pixel retrieval: ranked images with masks and overlays")
    p.add_argument("index")
    p.add_argument("image")
    p.add_argument("--box", help="x1,y1,x2,y2 in query pixels")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--top", type=_positive_int, default=10)
    _add_verify(p)
    _add_jobs(p)
    p.set_defaults(func=cmd_query)

    for name, func, helptext in (("evaluate", cmd_evaluate, "run a benchmark in the revisitop layout"),
                                 ("score", cmd_score, "score official-format result files")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("root", help="folder holding revisitop/data/NAME")
        p.add_argument("--name", required=True, help="data set name, e.g. roxford5k, prmini")
        p.add_argument("--json", help="write the scores here")
        p.add_argument("--official-quirks", action="store_true",
                       help="reproduce the published evaluation scripts (README, Metrics)")
        p.add_argument("--allow-missing", action="store_true",
                       help="evaluate on the images present when some are missing")
        if name == "evaluate":
            p.add_argument("--index-dir", help="index folder (default ./classicpr-index-NAME; resumes)")
            p.add_argument("--export", help="write ranks.npy, matching_result.npy, masks/ here")
            p.add_argument("--distractors", help="folder of distractor images added to the database "
                           "(R1M: revisitop/data/revisitop1m/jpg); ids follow the benchmark's")
            p.add_argument("--distractor-list", help="file listing the distractors to use, one path "
                           "relative to --distractors per line (e.g. revisitop1m.txt)")
            p.add_argument("--max-distractors", type=_positive_int,
                           help="use only the first N distractors (e.g. 100000 for R100k-style runs)")
            _add_verify(p)
            p.add_argument("--vocab-size", type=_positive_int)
            p.add_argument("--seed", type=int, default=0)
            _add_jobs(p)
        else:
            p.add_argument("--ranks", required=True)
            p.add_argument("--matching", required=True)
            p.add_argument("--masks", help="folder of {q}_{i}.png masks (precedence over polygons)")
        p.set_defaults(func=func)

    p = sub.add_parser("download", help="fetch Revisited Oxford/Paris or R1M into the revisitop layout")
    p.add_argument("dataset", choices=("roxford5k", "rparis6k", "revisitop1m", "labels"))
    p.add_argument("--root", required=True, help="folder that will hold revisitop/data/NAME")
    p.add_argument("--mirror", help="base URL of the image archives (default: the published host)")
    p.add_argument("--rar", help="with 'labels': the pixel_retrieval_benchmarks.rar file")
    p.add_argument("--keep-archives", action="store_true")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("bench", help="speed and memory of every stage at growing database sizes")
    p.add_argument("--sizes", default="100,1000,5000", help="comma-separated database sizes")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--work-dir", help="folder for generated images and indexes (reused)")
    p.add_argument("--photos", action="append", help="folder of source photos (default: scikit-image's)")
    p.add_argument("--queries", type=_positive_int, default=5)
    p.add_argument("--exhaustive-queries", type=_non_negative_int, default=1)
    p.add_argument("--overhead-images", type=_positive_int, default=100,
                   help="images for the build-overhead and 2-job ratios (generated if more than the sizes)")
    p.add_argument("--repeats", type=_positive_int, default=3)
    p.add_argument("--vocab-size", type=_positive_int, default=4096)
    _add_jobs(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("demo", help="build a small pixel-retrieval set from bundled photos and run it")
    p.add_argument("--out", default="classicpr-demo")
    p.add_argument("--seed", type=int, default=0)
    _add_jobs(p)
    p.set_defaults(func=cmd_demo)
    return parser


def cmd_download(args) -> int:
    from .download import download_dataset, unpack_labels
    if args.dataset == "labels":
        if not args.rar:
            raise ClassicPRError("'classicpr download labels' needs --rar pixel_retrieval_benchmarks.rar")
        print(f"labels unpacked into {unpack_labels(args.rar, args.root)}")
        return 0
    report = download_dataset(args.dataset, args.root, args.mirror, progress=not args.quiet,
                              keep_archives=args.keep_archives)
    if report["missing"] or report["corrupt"]:
        print(f"{args.dataset}: {len(report['missing'])} images missing, {len(report['corrupt'])} "
              f"corrupt, e.g. {(report['missing'] + report['corrupt'])[:10]}")
        return 1
    print(f"{args.dataset} is complete in {args.root}")
    return 0


def cmd_bench(args) -> int:
    from .bench import format_table, run_bench
    try:
        sizes = [int(v) for v in args.sizes.split(",")]
    except ValueError:
        raise ClassicPRError(f"--sizes must be integers separated by commas, got {args.sizes!r}") from None
    if not sizes or min(sizes) < 1:
        raise ClassicPRError("--sizes must be positive")
    result = run_bench(sizes, args.json, args.work_dir, args.photos, args.n_jobs, args.queries,
                       args.exhaustive_queries, args.overhead_images, args.repeats,
                       args.vocab_size)
    print(format_table(result))
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo
    result = run_demo(args.out, seed=args.seed, n_jobs=args.n_jobs, progress=not args.quiet)
    _print_table(result)
    print(f"report: {Path(args.out) / 'report' / 'index.html'}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(message)s")
    from .parallel import use_backend
    try:
        if args.scheduler and args.backend != "dask":
            raise ClassicPRError("--scheduler needs --backend dask")
        with use_backend(None if args.backend == "loky" else "dask", scheduler_address=args.scheduler):
            return args.func(args)
    except ClassicPRError as exc:
        print(f"classicpr: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # parameter validation in the library
        print(f"classicpr: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("classicpr: interrupted (work done so far is kept and resumes)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
