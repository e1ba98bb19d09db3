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
