"""Command line: thin wrappers that parse, call the library and print.

User errors (bad files, bad parameters) print one line ``classicpr: error: ...`` and exit 2.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from pathlib import Path
from typing import List, Optional

from .errors import ClassicPRError, ImageReadError

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


#: Command-line shortcuts for config keys (each also settable with --set KEY=VALUE); their
#: types, choices and help come from classicpr.config.
CONFIG_FLAGS = {
    "scoring": {"--scoring": "retrieval.scoring", "--expansion": "retrieval.expansion"},
    "query": {"--shortlist": "verify.shortlist", "--verify": "verify.method",
              "--mask": "mask.method"},
    "index": {"--vocab-size": "vocabulary.size", "--seed": "vocabulary.seed",
              "--max-side": "features.max_side", "--signature-bits": "vocabulary.signature_bits"},
}


def _config_field(key: str):
    import dataclasses as dc
    from .config import SECTIONS
    section, name = key.split(".")
    return next(f for f in dc.fields(SECTIONS[section]) if f.name == name)


def _add_config_flags(p, groups, presets: bool = True):
    """Flags for config keys (types, choices, help from classicpr.config); each defaults to
    None = 'leave the preset's value'."""
    from .config import PRESETS, parse_value
    for group in groups:
        for flag, key in CONFIG_FLAGS[group].items():
            f = _config_field(key)

            def parse(text, key=key, f=f):
                try:
                    return parse_value(key, f, text)
                except ValueError as exc:
                    raise argparse.ArgumentTypeError(str(exc)) from None
            p.add_argument(flag, dest=key, type=parse, default=argparse.SUPPRESS,
                           choices=f.metadata.get("choices"), metavar=key.split(".")[1].upper()
                           if not f.metadata.get("choices") else None,
                           help=f"{f.metadata['help']} [{key}, default {f.default!r}]")
    if presets:
        p.add_argument("--weak-localisation", action="store_true",
                       help="also give a region to unverified images where a similarity transform "
                            "has >= 6 inliers (verify.min_weak_inliers=6; most such regions are "
                            "on wrong images)")
        p.add_argument("--preset", choices=tuple(PRESETS), default="default",
                       help="named settings (classicpr config --preset NAME shows them)")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="any config key, e.g. --set verify.ratio=0.8 (classicpr config --list); "
                            "repeatable, applied after the preset and the flags above")


def config_from_args(args):
    """The Config of parsed arguments: preset, then flags, then --set."""
    from .config import Config, parse_assignments
    config = Config.preset(getattr(args, "preset", "default"))
    flags = {key: getattr(args, key) for group in CONFIG_FLAGS.values() for key in group.values()
             if hasattr(args, key)}
    if getattr(args, "weak_localisation", False):
        flags["verify.min_weak_inliers"] = 6
    config = config.updated(flags)
    return config.updated(parse_assignments(getattr(args, "set", [])))


def cmd_vocab(args) -> int:
    from .features import FeatureStore, extract_to_store
    from .index import train_vocabulary
    from .io import list_images
    config = config_from_args(args)
    names = list_images(args.image_dir)
    if not names:
        raise ClassicPRError(f"no images found in {args.image_dir}")
    store = FeatureStore(Path(str(args.out) + ".features"), config.features)
    done, _ = extract_to_store(args.image_dir, names, store, args.n_jobs, not args.quiet)
    size = config.vocabulary.size
    vocab = train_vocabulary(store, done, size, config.vocabulary.seed, args.n_jobs,
                             config.vocabulary.signature_bits)
    if size is not None and vocab.size < size:
        raise ClassicPRError(f"only {vocab.size} descriptors in {args.image_dir}; "
                             f"--vocab-size {size} needs at least as many")
    vocab.save(args.out)
    print(f"vocabulary of {vocab.size} words -> {args.out}")
    return 0


def cmd_index(args) -> int:
    from .index import Index
    from .vocabulary import Vocabulary
    config = config_from_args(args)
    vocab = Vocabulary.load(args.vocab) if args.vocab else None
    if vocab is not None and config.vocabulary.size not in (None, vocab.size):
        raise ClassicPRError(f"--vocab {args.vocab} has {vocab.size} words, not --vocab-size "
                             f"{config.vocabulary.size}")
    index = Index.build(args.image_dir, args.out, vocabulary=vocab,
                        vocab_size=config.vocabulary.size, feature_config=config.features,
                        seed=config.vocabulary.seed, n_jobs=args.n_jobs, progress=not args.quiet,
                        signature_bits=config.vocabulary.signature_bits)
    print(f"indexed {len(index.names)} images ({len(index.skipped)} skipped) with "
          f"{index.vocabulary.size} words -> {args.out}; "
          f"{index.nbytes_per_image() / 1024:.1f} KiB per image")
    for name, reason in index.skipped:
        print(f"  skipped {name}: {reason}")
    return 0


def _load_index(path, image_dir=None):
    from .index import Index
    return Index.load(path, image_dir)


def cmd_search(args) -> int:
    from .pipeline import extract_query, rank_database
    from .regions import parse_box
    config = config_from_args(args)
    index = _load_index(args.index)
    box = parse_box(args.box) if args.box else None
    _, ids, scores = rank_database(index, extract_query(index, args.image, box), config)
    for i, s in zip(ids[: args.top], scores[: args.top]):
        print(f"{index.names[i]}\t{s:.4f}")
    return 0


def cmd_query(args) -> int:
    from .io import read_image, read_image_at_size, write_json, write_png
    from .formats import coco_results, parse_formats, write_mask
    from .pipeline import few_features_warning, run_query
    from .regions import parse_box
    from .viz import overlay
    config = config_from_args(args)
    index = _load_index(args.index, args.image_dir)
    box = parse_box(args.box) if args.box else None
    query_mask = read_image(args.query_mask, gray=True)[0] > 127 if args.query_mask else None
    formats = parse_formats(args.format)
    timing: dict = {}
    results = run_query(index, args.image, box, config, top=args.top, n_jobs=args.n_jobs,
                        timing=timing, query_mask=query_mask)
    coco: list = []
    n_features = int(timing["count_query_features"])
    warnings = [w for w in [few_features_warning(n_features, config.verify.min_inliers)] if w]
    out = Path(args.out)
    rows = []
    for rank, r in enumerate(results):
        row = {"rank": rank + 1, "image": r.name, "score": r.score, "inliers": r.inliers,
               "verified": r.verified, "mask_method": r.mask_method,
               "relay": None if r.relay is None else index.names[r.relay],
               "neighbour": None if r.neighbour is None else index.names[r.neighbour],
               "polygon": None if r.polygon is None else r.polygon.round(2).tolist()}
        if r.mask is not None:
            stem = f"{rank + 1:03d}_" + Path(r.name).with_suffix("").as_posix().replace("/", "__")
            entry = write_mask(out, stem, r.mask, index.image_path(r.image_id), formats,
                               r.image_id, r.inliers + r.score)
            if entry is not None:
                coco.append(dict(entry, file_name=r.name))
            try:
                img = read_image_at_size(index.image_path(r.image_id),
                                         index.image_size(r.image_id))
            except ImageReadError as exc:
                log.warning("no overlay for %s: %s", r.name, exc)
            else:
                write_png(out / "overlays" / f"{stem}.png",
                          overlay(img, r.mask, r.polygon, label=r.caption(rank + 1)))
            row.update({f"mask_{f}": p for f, p in (("png", f"masks/{stem}.png"),
                                                    ("labelme", f"labelme/{stem}.json"))
                        if f in formats})
        rows.append(row)
        print(f"{rank + 1:3d}  {r.name}\tscore {r.score:.4f}\tinliers {r.inliers}"
              + ("\tverified" if r.verified else "")
              + (f"\tneighbour of {index.names[r.neighbour]}" if r.neighbour is not None
                 else ""))
    write_json(out / "results.json", {"query": {"image": str(args.image), "box": args.box,
                                                "index": str(args.index),
                                                "features": n_features},
                                      "warnings": warnings,
                                      "config": config.to_dict(), "results": rows})
    if "coco" in formats:
        write_json(out / "coco_results.json", coco_results(coco))
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
    from .evaluate import Distractors, evaluate_benchmark
    from .io import list_images, write_json
    config = config_from_args(args)
    distractors = None
    if (args.distractor_list or args.max_distractors) and not args.distractors:
        raise ClassicPRError("--distractor-list and --max-distractors need --distractors DIR")
    if args.distractors:
        names = None
        if args.distractor_list:
            try:
                names = [ln.strip() for ln in Path(args.distractor_list).read_text().splitlines()
                         if ln.strip()]
            except (OSError, UnicodeDecodeError) as exc:
                raise ClassicPRError(f"cannot read --distractor-list {args.distractor_list}: "
                                     f"{exc}") from None
        if args.max_distractors is not None:
            names = (names if names is not None else list_images(args.distractors))
            names = names[: args.max_distractors]
        distractors = Distractors(args.distractors, names)
    default_dir = f"classicpr-index-{args.name}" + ("+distractors" if args.distractors else "")
    from .formats import parse_formats
    formats = parse_formats(args.format)
    export = args.export or (Path(args.report) / "export" if args.report else None)
    result = evaluate_benchmark(args.root, args.name, args.index_dir or Path(default_dir), config,
                                n_jobs=args.n_jobs, export_dir=export,
                                official=args.official_quirks, allow_missing=args.allow_missing,
                                progress=not args.quiet, distractors=distractors,
                                export_formats=formats)
    _print_table(result)
    if args.json:
        write_json(args.json, result)
    if args.report:
        from .demo import write_pictures
        page = write_pictures(args.root, args.name, export, args.report, result)
        print(f"report: {page}")
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


def _global_flags(parser, defaults: bool) -> None:
    """-q, -v, --backend, --scheduler: accepted before the subcommand and after it (on the
    subcommand they default to SUPPRESS, so they do not undo a flag given before it)."""
    d = (lambda v: v) if defaults else (lambda v: argparse.SUPPRESS)
    parser.add_argument("-q", "--quiet", action="store_true", default=d(False),
                        help="no progress bars")
    parser.add_argument("-v", "--verbose", action="store_true", default=d(False),
                        help="log details (and let faiss and OpenCV print their own messages)")
    parser.add_argument("--backend", choices=("loky", "dask"), default=d("loky"),
                        help="joblib backend for every parallel stage (dask: a dask.distributed "
                             "cluster)")
    parser.add_argument("--scheduler", default=d(None),
                        help="with --backend dask: scheduler address, e.g. tcp://10.0.0.1:8786 "
                             "(default: a local cluster)")


def _parser_vocab(sub, common):
    p = sub.add_parser("vocab", parents=[common], help="train a visual vocabulary on a folder of images")
    p.add_argument("image_dir")
    p.add_argument("--out", required=True, help="vocabulary file (.npz)")
    _add_config_flags(p, ["index"], presets=False)
    _add_jobs(p)
    p.set_defaults(func=cmd_vocab)


def _parser_index(sub, common):
    p = sub.add_parser("index", parents=[common], help="index a folder of images (resumes partial work)")
    p.add_argument("image_dir")
    p.add_argument("--out", required=True, help="index folder")
    p.add_argument("--vocab", help="a vocabulary trained by `classicpr vocab` (default: train "
                   "one on these images)")
    _add_config_flags(p, ["index"], presets=False)
    _add_jobs(p)
    p.set_defaults(func=cmd_index)


def _parser_search(sub, common):
    p = sub.add_parser("search", parents=[common],
                       help="image-level retrieval (ASMK* or BoW, no verification; "
                       "--expansion hqe expands the query without geometry)")
    p.add_argument("index")
    p.add_argument("image")
    p.add_argument("--box", help="x1,y1,x2,y2 in query pixels")
    p.add_argument("--top", type=_positive_int, default=10)
    _add_config_flags(p, ["scoring"])
    p.set_defaults(func=cmd_search)


def _add_image_dir(p) -> None:
    p.add_argument("--image-dir", help="where the database images are, if they moved since "
                   "the index was built (masks and overlays read them)")


def _parser_query(sub, common):
    p = sub.add_parser("query", parents=[common],
                       help="pixel retrieval: ranked images with masks and overlays")
    p.add_argument("index")
    p.add_argument("image")
    p.add_argument("--box", help="x1,y1,x2,y2 in query pixels")
    p.add_argument("--query-mask", help="the query's object as an image of the query's size "
                   "(white = object), used instead of GrabCut's segment of the box; the box "
                   "defaults to the mask's bounding box")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--top", type=_positive_int, default=10)
    p.add_argument("--format", default="png", help="mask files: any of png, labelme, coco "
                   "(comma-separated; coco needs pip install 'classicpr[coco]')")
    _add_image_dir(p)
    _add_config_flags(p, ["scoring", "query"])
    _add_jobs(p)
    p.set_defaults(func=cmd_query)


def _benchmark_arguments(p) -> None:
    p.add_argument("root", help="folder holding revisitop/data/NAME")
    p.add_argument("--name", required=True, help="data set name, e.g. roxford5k, prmini")
    p.add_argument("--json", help="write the scores here")
    p.add_argument("--official-quirks", action="store_true",
                   help="reproduce the published evaluation scripts (docs/metrics.md)")
    p.add_argument("--allow-missing", action="store_true",
                   help="evaluate on the images present when some are missing")


def _parser_evaluate(sub, common):
    p = sub.add_parser("evaluate", parents=[common], help="run a benchmark in the revisitop layout")
    _benchmark_arguments(p)
    p.add_argument("--index-dir", help="index folder (default ./classicpr-index-NAME; resumes)")
    p.add_argument("--export", help="write ranks.npy, matching_result.npy and the masks here")
    p.add_argument("--format", default="png", help="mask files with --export: any of png, "
                   "labelme, coco (comma-separated)")
    p.add_argument("--report", help="write an HTML report here: scores, precision-recall "
                   "curves, a per-query table and result grids (exports to REPORT/export "
                   "without --export)")
    p.add_argument("--distractors", help="folder of distractor images added to the database "
                   "(R1M: revisitop/data/revisitop1m/jpg); ids follow the benchmark's")
    p.add_argument("--distractor-list", help="file listing the distractors to use, one path "
                   "relative to --distractors per line (e.g. revisitop1m.txt)")
    p.add_argument("--max-distractors", type=_positive_int,
                   help="use only the first N distractors (e.g. 100000 for R100k-style runs)")
    _add_config_flags(p, ["scoring", "query", "index"])
    _add_jobs(p)
    p.set_defaults(func=cmd_evaluate)


def _parser_score(sub, common):
    p = sub.add_parser("score", parents=[common], help="score official-format result files")
    _benchmark_arguments(p)
    p.add_argument("--ranks", required=True)
    p.add_argument("--matching", required=True)
    p.add_argument("--masks", help="folder of {q}_{i}.png masks (precedence over polygons)")
    p.set_defaults(func=cmd_score)


def _parser_config(sub, common):
    p = sub.add_parser("config", parents=[common],
                       help="show a preset's full configuration, or every key with its meaning")
    p.add_argument("--preset", default="default", help="preset to show")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--list", action="store_true", help="every key, its default and meaning")
    p.set_defaults(func=cmd_config)


def _parser_download(sub, common):
    p = sub.add_parser("download", parents=[common],
                       help="fetch Revisited Oxford/Paris or R1M into the revisitop layout")
    p.add_argument("dataset", choices=("roxford5k", "rparis6k", "revisitop1m", "labels"))
    p.add_argument("--root", required=True, help="folder that will hold revisitop/data/NAME")
    p.add_argument("--mirror", help="base URL of the image archives (default: the published host)")
    p.add_argument("--rar", help="with 'labels': the pixel_retrieval_benchmarks.rar file")
    p.add_argument("--keep-archives", action="store_true")
    p.set_defaults(func=cmd_download)


def _parser_bench(sub, common):
    p = sub.add_parser("bench", parents=[common],
                       help="speed and memory of every stage at growing database sizes")
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


def _parser_serve(sub, common):
    p = sub.add_parser("serve", parents=[common],
                       help="a local page to query an index by drawing a box (needs classicpr[web])")
    p.add_argument("index")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: "
                   "this machine only)")
    p.add_argument("--port", type=_positive_int, default=8000)
    p.add_argument("--top", type=_positive_int, default=10, help="results shown per query")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest accepted upload")
    _add_image_dir(p)
    _add_config_flags(p, ["scoring", "query"])
    _add_jobs(p)
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    from .serve import serve
    serve(args.index, host=args.host, port=args.port, config=config_from_args(args),
          top=args.top, n_jobs=args.n_jobs or 1, max_upload_mb=args.max_upload_mb,
          image_dir=args.image_dir)
    return 0


def _parser_demo(sub, common):
    p = sub.add_parser("demo", parents=[common],
                       help="build a small pixel-retrieval set from bundled photos and run it")
    p.add_argument("--out", default="classicpr-demo")
    p.add_argument("--seed", type=int, default=0)
    _add_jobs(p)
    p.set_defaults(func=cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="classicpr", description=(
        "Classical pixel retrieval: SIFT + visual words + RANSAC + masks."))
    _global_flags(parser, defaults=True)
    common = argparse.ArgumentParser(add_help=False)
    _global_flags(common, defaults=False)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_parser_vocab, _parser_index, _parser_search, _parser_query, _parser_evaluate,
                _parser_score, _parser_config, _parser_download, _parser_bench, _parser_serve,
                _parser_demo):
        add(sub, common)
    return parser


def cmd_config(args) -> int:
    from .config import Config, describe_all, parse_assignments
    if args.list:
        print(describe_all())
        return 0
    config = Config.preset(args.preset).updated(parse_assignments(args.set))
    print(config.to_json())
    return 0


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


def _attach_box_values(argv: List[str]) -> List[str]:
    """``--box -50,-50,300,300`` -> ``--box=-50,-50,300,300``: argparse would read a value
    that starts with '-' as an option."""
    out, k = [], 0
    while k < len(argv):
        if argv[k] == "--box" and k + 1 < len(argv) and re.fullmatch(r"-[0-9.,eE+\-\s]*", argv[k + 1]):
            out.append(f"--box={argv[k + 1]}")
            k += 2
        else:
            out.append(argv[k])
            k += 1
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_attach_box_values(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(message)s")
    if not args.verbose:
        logging.getLogger("distributed").setLevel(logging.ERROR)
    from .parallel import use_backend
    try:
        if args.scheduler and args.backend != "dask":
            raise ClassicPRError("--scheduler needs --backend dask")
        with use_backend(None if args.backend == "loky" else "dask", scheduler_address=args.scheduler):
            status = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except ClassicPRError as exc:
        print(f"classicpr: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # parameter validation in the library
        print(f"classicpr: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("classicpr: interrupted (work done so far is kept and resumes)", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader (head, less, grep -m) closed the pipe: stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:  # a path that is a file, no permission, a full disk
        if args.verbose:
            log.info("where it was raised:", exc_info=True)
        print(f"classicpr: error: {exc} (work already written is kept: run again once this "
              "is fixed)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
