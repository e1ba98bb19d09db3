"""classicpr: classical pixel retrieval (segmented instance retrieval) on the CPU.

Layers, each importing only from those below it (docs/design.md)::

    faces      cli.py  demo.py  bench.py  download.py  viz.py
    assembly   evaluate.py  (a benchmark end to end)
               pipeline.py  (one query: features -> retrieve -> verify -> rank -> masks)
               index.py     (storage: build, load, add, retrieve, read one image's features)
    stages     features.py  vocabulary.py  invfile.py  verify.py  masks.py  datasets.py
               metrics.py
    bottom     config.py  io.py  regions.py  parallel.py  errors.py  blas.py

Coordinates are always (x, y) pixels of the original image, x to the right, y down.

Python use::

    from classicpr import Config, Index, run_query
    index = Index.build("photos/", "my-index")
    results = run_query(index, "query.jpg", box=(10, 20, 300, 400),
                        config=Config.preset("default"), top=10)
"""
__version__ = "0.2.0"

from .blas import prefer_detected_blas_kernel

prefer_detected_blas_kernel()  # before faiss or OpenCV loads its own, older OpenBLAS

from .config import PRESETS, Config  # noqa: E402
from .errors import ClassicPRError

__all__ = ["ClassicPRError", "Config", "PRESETS", "Index", "QueryResult", "run_query",
           "evaluate_benchmark", "load_revisitop", "__version__"]

_LAZY = {"Index": "index", "QueryResult": "pipeline", "run_query": "pipeline",
         "evaluate_benchmark": "evaluate", "load_revisitop": "datasets"}


def __getattr__(name):  # lazy imports keep `import classicpr` cheap (no OpenCV, no faiss)
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(name)
