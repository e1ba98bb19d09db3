"""joblib plumbing shared by every per-image stage.

``n_jobs=N`` means N cores in all: :func:`run_parallel` runs every task with one OpenCV
and one faiss thread (:func:`single_threaded_opencv`), and in a joblib worker also with one
BLAS thread, so that N workers never run N x cores threads; workers return numpy arrays or
small records only (``cv2.KeyPoint`` does not pickle). A joblib backend can be chosen globally with
:func:`use_backend` (e.g. ``"dask"`` on a dask.distributed cluster).
"""
from __future__ import annotations

import contextlib
import os
from typing import Callable, Iterable, Iterator, Optional, Sequence

import joblib
from tqdm.auto import tqdm

_BACKEND: dict = {"name": None}


def effective_n_jobs(n_jobs: Optional[int]) -> int:
    """Number of workers for ``n_jobs`` (None or -1 = all cores, as in joblib)."""
    if n_jobs is None or n_jobs == -1:
        return os.cpu_count() or 1
    if not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be a positive integer or -1, got {n_jobs!r}")
    return n_jobs


_LIMITED = {"blas": False}


def single_threaded_opencv() -> None:
    """Give OpenCV and faiss (OpenMP) one thread in this process."""
    import cv2
    import faiss
    cv2.setNumThreads(1)
    faiss.omp_set_num_threads(1)


def thread_counts() -> dict:
    """Threads OpenCV, faiss and each BLAS / OpenMP library of this process would use."""
    import cv2
    import faiss
    from threadpoolctl import threadpool_info
    return {"opencv": cv2.getNumThreads(), "faiss": faiss.omp_get_max_threads(),
            **{f"{i['user_api']}:{i['internal_api']}": i["num_threads"] for i in threadpool_info()}}


def _single_threaded_task(func: Callable, item):
    """Run one task in a worker with one thread for OpenCV, faiss and BLAS (OpenBLAS / MKL,
    through threadpoolctl; the worker's own process, so the limit stays there)."""
    single_threaded_opencv()
    if not _LIMITED["blas"]:  # inspecting the loaded libraries costs milliseconds: once
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=1)
        _LIMITED["blas"] = True
    return func(item)


@contextlib.contextmanager
def use_backend(name: Optional[str], **kwargs) -> Iterator[None]:
    """Run every classicpr parallel stage inside this block on joblib backend ``name``.

    ``use_backend("dask", scheduler_address="tcp://...")`` needs ``dask.distributed``; a
    ``Client`` to that address is created for the block.
    """
    if name is None or name == "loky":
        yield
        return
    client = None
    if name == "dask":
        try:
            from dask.distributed import Client
        except ImportError:
            from .errors import ClassicPRError
            raise ClassicPRError("the dask backend needs: pip install 'dask[distributed]'") from None
        address = kwargs.pop("scheduler_address", None)
        client = Client(address) if address else Client(processes=True)
    old = dict(_BACKEND)
    _BACKEND.update(name=name)
    try:
        with joblib.parallel_backend(name, **kwargs):
            yield
    finally:
        _BACKEND.update(old)
        if client is not None:
            client.close()


def run_parallel(func: Callable, items: Sequence, n_jobs: Optional[int] = None,
                 desc: str = "", progress: bool = True, ordered: bool = True) -> Iterable:
    """Apply ``func`` to every item with joblib, yielding results (in order) with a progress bar.

    With one job (or one item) everything runs in this process, with no pickling, and
    with one OpenCV and one faiss thread; in joblib workers BLAS gets one thread too.
    """
    n = effective_n_jobs(n_jobs)
    bar = tqdm(total=len(items), desc=desc, disable=not progress or len(items) == 0,
               leave=False, dynamic_ncols=True)
    try:
        if (n == 1 or len(items) <= 1) and _BACKEND["name"] is None:
            if len(items):
                single_threaded_opencv()
            for item in items:
                yield func(item)
                bar.update(1)
            return
        n_workers = n if _BACKEND["name"] is None else -1
        parallel = joblib.Parallel(n_jobs=n_workers, return_as="generator" if ordered
                                   else "generator_unordered", batch_size=1)
        for res in parallel(joblib.delayed(_single_threaded_task)(func, item) for item in items):
            yield res
            bar.update(1)
    finally:
        bar.close()
