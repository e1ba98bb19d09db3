"""Which OpenBLAS kernels faiss and OpenCV run, and a record of the numeric environment.

The faiss-cpu and OpenCV wheels each bundle their own OpenBLAS (0.3.15 at faiss-cpu 1.15,
OpenCV 5.0), older than numpy's. An OpenBLAS that does not know a CPU falls back to its
generic "Prescott" kernels. On a Xeon that numpy's OpenBLAS runs with its AVX-512
("SkylakeX") kernels, the index build from stored features (faiss' k-means, word
assignment) then took three times as long, verification (faiss' k-NN) one and a half
times, and, since the order of the floating-point sums differs, k-means trained another
vocabulary than the same code on a CPU that the old OpenBLAS knows (docs/benchmarks.md,
Reproducibility).

:func:`prefer_detected_blas_kernel` runs when classicpr is imported, before faiss or OpenCV
is loaded. Where the ``OPENBLAS_CORETYPE`` environment variable is unset, it sets it to
the kernel family numpy's OpenBLAS detected for this CPU, so that every OpenBLAS loaded
later in the process and in its joblib workers (which inherit the environment) runs the
kernels of the CPU. A family the old OpenBLAS may not know is mapped to the nearest one it
does (Sapphire Rapids and Cooper Lake to Skylake-X). Nothing changes where the variable is
set, where numpy does not use OpenBLAS (MKL, Apple Accelerate), or where faiss or OpenCV
was imported first.
"""
from __future__ import annotations

import os
import platform
import sys
from typing import Dict, List, Optional

#: Kernel families numpy's OpenBLAS may report (lower case) -> a name OpenBLAS 0.3.15
#: accepts in ``OPENBLAS_CORETYPE`` (checked on the faiss-cpu and OpenCV wheels: it takes
#: "SkylakeX", "Haswell" and "Zen", and falls back to Prescott for "Cooperlake").
#: Families not listed are left to each library.
KERNEL_FOR_OLD_OPENBLAS = {
    "skylakex": "SkylakeX", "cooperlake": "SkylakeX", "sapphirerapids": "SkylakeX",
    "haswell": "Haswell", "zen": "Zen",
}


def _numpy_openblas_architecture() -> Optional[str]:
    """Kernel family that numpy's OpenBLAS detected for this CPU, or None."""
    import importlib

    from threadpoolctl import threadpool_info
    importlib.import_module("numpy")  # loads numpy's OpenBLAS, for threadpoolctl to see
    for lib in threadpool_info():
        if lib.get("internal_api") == "openblas" and "numpy" in str(lib.get("filepath", "")):
            return lib.get("architecture")
    return None


def prefer_detected_blas_kernel() -> Optional[str]:
    """Set ``OPENBLAS_CORETYPE`` to the kernels numpy's OpenBLAS chose, if it is unset.

    Returns
    -------
    str or None
        The value set, or None when nothing was changed.
    """
    if os.environ.get("OPENBLAS_CORETYPE") or "faiss" in sys.modules or "cv2" in sys.modules:
        return None
    try:
        architecture = _numpy_openblas_architecture()
    except Exception:  # threadpoolctl cannot inspect this platform's libraries
        return None
    kernel = KERNEL_FOR_OLD_OPENBLAS.get(str(architecture).lower())
    if kernel is not None:
        os.environ["OPENBLAS_CORETYPE"] = kernel
    return kernel


def environment() -> Dict[str, object]:
    """Versions and BLAS kernels that classicpr's results depend on.

    Returns
    -------
    dict with "python", "platform", "classicpr", "numpy", "opencv", "faiss" (versions),
    "openblas_coretype" (the environment variable, or None) and "blas": one entry per BLAS
    library loaded ("library": file name, "api", "version", "kernels": the architecture it
    runs, where it reports one).
    """
    import cv2
    import faiss
    import numpy
    from threadpoolctl import threadpool_info

    from . import __version__
    blas: List[Dict[str, Optional[str]]] = [
        {"library": os.path.basename(str(lib.get("filepath", ""))),
         "api": lib.get("internal_api"), "version": lib.get("version"),
         "kernels": lib.get("architecture")}
        for lib in threadpool_info() if lib.get("user_api") == "blas"]
    return {"python": platform.python_version(), "platform": platform.platform(),
            "classicpr": __version__, "numpy": numpy.__version__, "opencv": cv2.__version__,
            "faiss": faiss.__version__,
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"), "blas": blas}
