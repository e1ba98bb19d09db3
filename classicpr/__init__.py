"""classicpr: classical pixel retrieval (segmented instance retrieval) on the CPU.

Pipeline, one module per stage::

    features.py    SIFT / RootSIFT local features, feature store on disk
    vocabulary.py  visual-word vocabulary (k-means) and fast word assignment
    invfile.py     tf-idf inverted file + direct index (word ids and geometry per image)
    verify.py      correspondences through shared words, RANSAC homography, re-ranking
    masks.py       projected query box -> GrabCut pixel mask
    metrics.py     revisitop mAP, PROxford/PRParis mIoU and pixel mAP (clean + official quirks)

Assembly: ``index.py`` (the Index object), ``pipeline.py`` (one query end to end),
``evaluate.py`` (a benchmark end to end). Coordinates are always (x, y) pixels of the
original image, x to the right, y down.
"""
__version__ = "0.1.0"

from .errors import ClassicPRError

__all__ = ["ClassicPRError", "Index", "QueryResult", "load_revisitop", "__version__"]


def __getattr__(name):  # lazy imports keep `import classicpr` cheap
    if name in ("Index",):
        from .index import Index
        return Index
    if name in ("QueryResult",):
        from .pipeline import QueryResult
        return QueryResult
    if name == "load_revisitop":
        from .datasets import load_revisitop
        return load_revisitop
    raise AttributeError(name)
