"""Index any folder of images (resumable), then print the index's size.

Default: the demo images. Example: python examples/01_index_a_folder.py --images ~/photos
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_WORK, demo_root  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", help="folder of images (default: the demo images)")
    ap.add_argument("--index", default=str(DEFAULT_WORK / "index"), help="index folder")
    ap.add_argument("--n-jobs", type=int, default=None)
    args = ap.parse_args(argv)
    from classicpr.index import Index
    images = args.images or demo_root() / "revisitop" / "data" / "demo" / "jpg"
    index = Index.build(images, args.index, n_jobs=args.n_jobs)
    print(f"{len(index.names)} images indexed in {args.index} ({len(index.skipped)} skipped), "
          f"{index.vocabulary.size} words, {index.nbytes_per_image() / 1024:.1f} KiB per image")
    return 0


if __name__ == "__main__":
    sys.exit(main())
