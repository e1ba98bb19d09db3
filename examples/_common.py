"""Helpers shared by the examples: where the demo data lives, and making it on demand."""
from pathlib import Path

DEFAULT_WORK = Path("classicpr-examples")


def demo_root(work: Path = DEFAULT_WORK, seed: int = 0) -> Path:
    """The embedded demo benchmark (PROxford layout), made on first use."""
    from classicpr.demo import make_demo_dataset
    root = work / "demo-data"
    if not (root / "revisitop" / "data" / "demo" / "gnd_demo.pkl").is_file():
        make_demo_dataset(root, seed)
    return root


def benchmark_arguments(parser):
    """--root/--name (demo by default), --work and --n-jobs, shared by the benchmark examples."""
    parser.add_argument("--root", help="folder holding revisitop/data/NAME (default: the demo)")
    parser.add_argument("--name", default="demo", help="data set name, e.g. prmini, roxford5k")
    parser.add_argument("--work", default=str(DEFAULT_WORK), help="folder for indexes and outputs")
    parser.add_argument("--n-jobs", type=int, default=None)
    return parser


def benchmark_root(args) -> Path:
    """The data set root of the parsed arguments (the demo, made on first use, by default)."""
    return Path(args.root) if args.root else demo_root(Path(args.work))
