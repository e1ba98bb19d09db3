"""Visual vocabulary: k-means over RootSIFT descriptors and fast word assignment.

Training uses faiss' k-means (seeded, BLAS-based, far faster than scikit-learn's
MiniBatchKMeans at k = 65,536). Assignment is exact nearest-centroid search (faiss flat
index) for small vocabularies and, for k >= ``TREE_MIN_WORDS``, a two-level search tree
with spill: the k words are grouped under ``TREE_CELLS`` coarse centres, every word is
listed under its ``TREE_SPILL`` nearest coarse centres, and a descriptor is compared only
with the words listed under its nearest coarse centre (one BLAS product per cell). Chosen
by measurement (``benchmarks/assignment.py``, ``docs/benchmarks.md``): at k = 65,536 it is
7x faster than exact search and keeps 99.5 % of its word repeatability on verified matches;
smaller spills, PCA-reduced search, learned word lists and faiss IVF-PQ / HNSW were slower
at equal repeatability or less repeatable at equal speed. The tree is built
deterministically (seeded k-means) and stored as plain arrays in the vocabulary file.
"""
from __future__ import annotations

import contextlib
import logging
import time
from typing import Iterator, Optional

import faiss
import numpy as np

from .embedding import HammingEmbedding
from .invfile import word_dtype
from .io import PathLike, load_arrays, save_arrays

log = logging.getLogger("classicpr")

VOCAB_KIND = "classicpr.vocabulary"
VOCAB_VERSION = 1
#: Vocabularies with at least this many words are searched with the spill tree.
TREE_MIN_WORDS = 4096
TREE_CELLS = 256
TREE_SPILL = 16
MAX_WORDS = 65536


#: Default upper bound of trained vocabularies: k-means cost grows as k^2 (training set ~ 32 k),
#: and 16,384 words train in about 10 minutes on 2 cores. Larger vocabularies (up to 65,536)
#: can be trained explicitly with ``classicpr vocab --size``.
DEFAULT_MAX_WORDS = 16384
#: Training descriptors per word used by default (faiss recommends >= 39; 32 keeps the
#: k-means estimate stable and bounds the cost).
TRAINING_PER_WORD = 32


def default_vocabulary_size(n_descriptors: int) -> int:
    """A vocabulary size for a training set: the power of two nearest ``n / 40``, in
    [256, DEFAULT_MAX_WORDS].

    About 40 training descriptors per centroid keeps k-means estimates stable.
    """
    k = max(256, min(DEFAULT_MAX_WORDS, n_descriptors // 40))
    return int(2 ** round(np.log2(k)))


def _set_threads(n_jobs: Optional[int]) -> None:
    from .parallel import effective_n_jobs
    faiss.omp_set_num_threads(effective_n_jobs(n_jobs))


@contextlib.contextmanager
def _search_threads(n_jobs: Optional[int]) -> Iterator[None]:
    """faiss and BLAS with ``n_jobs`` threads for one nearest-word search."""
    from threadpoolctl import threadpool_limits
    from .parallel import effective_n_jobs
    _set_threads(n_jobs)
    with threadpool_limits(limits=effective_n_jobs(n_jobs), user_api="blas"):
        yield


class Vocabulary:
    """A set of ``k`` visual words (centroids) with a fast nearest-word search.

    Parameters
    ----------
    centroids : (k, D) float32 array
        Word centres in RootSIFT space.
    tree : dict of arrays, optional
        The spill tree ('cells' (C, D) float32, 'indptr' (C + 1,) int64, 'members' (M,)
        int32), built if missing and k >= TREE_MIN_WORDS.
    embedding : HammingEmbedding, optional
        The signatures of descriptors in these words (learned with the vocabulary by
        :meth:`train`; see :meth:`with_embedding` for a vocabulary given without one).
    """

    def __init__(self, centroids: np.ndarray, tree: Optional[dict] = None,
                 embedding: Optional[HammingEmbedding] = None):
        centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        if centroids.ndim != 2 or len(centroids) < 1:
            raise ValueError(f"centroids must be a non-empty (k, D) array, got {centroids.shape}")
        if len(centroids) > MAX_WORDS:
            raise ValueError(f"at most {MAX_WORDS} words are supported, got {len(centroids)}")
        self.centroids = centroids
        self._sq = (centroids.astype(np.float64) ** 2).sum(1).astype(np.float32)
        self.tree = tree
        if embedding is not None and embedding.n_words != len(centroids):
            raise ValueError(f"the Hamming embedding has {embedding.n_words} words, the "
                             f"vocabulary {len(centroids)}")
        self.embedding = embedding
        if self.tree is None and self.uses_tree:
            self.tree = self._build_tree()

    @property
    def size(self) -> int:
        return len(self.centroids)

    @property
    def uses_tree(self) -> bool:
        return self.size >= TREE_MIN_WORDS

    @property
    def word_dtype(self):
        """Smallest unsigned dtype that holds a word id (as in the direct index)."""
        return word_dtype(self.size)

    def _build_tree(self) -> dict:
        n_cells = min(TREE_CELLS, max(16, self.size // 40))  # >= 40 words per cell
        km = faiss.Kmeans(self.centroids.shape[1], n_cells, niter=20, seed=1234,
                          max_points_per_centroid=self.size, min_points_per_centroid=1)
        km.train(self.centroids)
        cells = km.centroids
        _, near = _flat_search(cells, self.centroids, min(TREE_SPILL, n_cells))
        owner = near.reshape(-1)
        word = np.repeat(np.arange(self.size), near.shape[1])
        order = np.lexsort((word, owner))
        indptr = np.searchsorted(owner[order], np.arange(n_cells + 1)).astype(np.int64)
        return {"cells": cells, "indptr": indptr, "members": word[order].astype(np.int32)}

    def _nearest(self, x: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        # argmin ||x - c||^2 = argmax (x.c - |c|^2 / 2)
        scores = x @ self.centroids[candidates].T - 0.5 * self._sq[candidates]
        return candidates[np.argmax(scores, axis=1)]

    def _assign_tree(self, x: np.ndarray) -> np.ndarray:
        t = self.tree
        _, cell = _flat_search(t["cells"], x, 1)
        cell = cell[:, 0]
        out = np.empty(len(x), np.int64)
        order = np.argsort(cell, kind="stable")
        bounds = np.searchsorted(cell[order], np.arange(len(t["cells"]) + 1))
        for c in np.flatnonzero(np.diff(bounds)):
            rows = order[bounds[c]:bounds[c + 1]]
            members = t["members"][t["indptr"][c]:t["indptr"][c + 1]]
            out[rows] = self._nearest(x[rows], members.astype(np.int64))
        return out

    def assign(self, descriptors: np.ndarray, n_jobs: Optional[int] = 1,
               exact: bool = False) -> np.ndarray:
        """Nearest visual word of every descriptor.

        Parameters
        ----------
        descriptors : (N, D) float32 array
            RootSIFT descriptors (see :func:`classicpr.features.rootsift`).
        n_jobs : int
            Threads for the search (1 inside joblib workers).
        exact : bool
            Force exact search (the reference for measuring agreement).

        Returns
        -------
        (N,) array of word ids, dtype :attr:`word_dtype`.
        """
        descriptors = np.ascontiguousarray(descriptors, dtype=np.float32)
        if descriptors.ndim != 2 or descriptors.shape[1] != self.centroids.shape[1]:
            raise ValueError(f"descriptors must have shape (N, {self.centroids.shape[1]}), "
                             f"got {descriptors.shape}")
        if len(descriptors) == 0:
            return np.zeros(0, self.word_dtype)
        with _search_threads(n_jobs):
            if exact or not self.uses_tree:
                ids = _flat_search(self.centroids, descriptors, 1)[1][:, 0]
            else:
                ids = self._assign_tree(descriptors)
        return ids.astype(self.word_dtype)

    def assign_multiple(self, descriptors: np.ndarray, m: int, n_jobs: Optional[int] = 1
                        ) -> np.ndarray:
        """The ``m`` nearest words of every descriptor (exact search; for the query side of
        multiple assignment, a few thousand descriptors).

        Returns
        -------
        (N, m) int64 array, nearest first (``m`` is capped at the vocabulary size).
        """
        descriptors = np.ascontiguousarray(descriptors, dtype=np.float32).reshape(
            -1, self.centroids.shape[1])
        m = max(1, min(int(m), self.size))
        if len(descriptors) == 0:
            return np.zeros((0, m), np.int64)
        with _search_threads(n_jobs):
            return _flat_search(self.centroids, descriptors, m)[1].astype(np.int64)

    def with_embedding(self, descriptors: np.ndarray, seed: int = 0, bits: int = 128
                       ) -> "Vocabulary":
        """This vocabulary with a ``bits``-bit Hamming embedding learned on ``descriptors``
        ((N, D) RootSIFT), assigned to their words as database features are (:meth:`assign`),
        so that the medians split the population each word receives."""
        x = np.ascontiguousarray(descriptors, np.float32)
        return Vocabulary(self.centroids, self.tree, HammingEmbedding.train(
            x, self.assign(x, n_jobs=None), self.size, seed, bits))

    @classmethod
    def train(cls, descriptors: np.ndarray, size: int, seed: int = 0, n_iter: int = 10,
              n_jobs: Optional[int] = None, signature_bits: int = 128,
              embedding_descriptors: Optional[np.ndarray] = None) -> "Vocabulary":
        """Train a vocabulary with k-means.

        Parameters
        ----------
        descriptors : (N, D) float32 array
            Training RootSIFT descriptors (N >= size); at most ``TRAINING_PER_WORD * size``
            of them are used (a seeded uniform subsample).
        size : int
            Number of words k, 1 <= k <= 65,536.
        seed : int
            Seeds both the subsampling and k-means initialisation.
        n_iter : int
            k-means iterations.
        n_jobs : int, optional
            Threads used by faiss (None = all cores).
        signature_bits : {64, 128}
            Length of the Hamming-embedding signatures learned with the words.
        embedding_descriptors : (M, D) float32 array, optional
            RootSIFT descriptors the embedding's medians are learned on (default: the
            k-means training sample).

        Returns
        -------
        Vocabulary
        """
        if not isinstance(size, (int, np.integer)) or not 1 <= size <= MAX_WORDS:
            raise ValueError(f"vocabulary size must be an integer in [1, {MAX_WORDS}], got {size!r}")
        x = np.ascontiguousarray(descriptors, dtype=np.float32)
        if x.ndim != 2 or len(x) < size:
            raise ValueError(f"need at least {size} training descriptors for {size} words, "
                             f"got {len(x)}")
        rng = np.random.default_rng(seed)
        max_training = TRAINING_PER_WORD * int(size)
        if len(x) > max_training:
            x = x[np.sort(rng.choice(len(x), max_training, replace=False))]
        _set_threads(n_jobs)
        t0 = time.perf_counter()
        km = faiss.Kmeans(x.shape[1], int(size), niter=n_iter, seed=int(seed) + 1,
                          max_points_per_centroid=max(1, len(x) // size + 1),
                          min_points_per_centroid=1, verbose=False)  # faiss: no console warning
        if len(x) < 20 * size:
            log.info("k-means: %d descriptors for %d words is few (%d per word)", len(x), size,
                     len(x) // size)
        km.train(x)
        log.info("k-means: %d words from %d descriptors in %.1f s", size, len(x),
                 time.perf_counter() - t0)
        return cls(km.centroids).with_embedding(
            x if embedding_descriptors is None else embedding_descriptors, seed, signature_bits)

    def fingerprint(self) -> str:
        """SHA-256 of the centroids and Hamming embedding (identifies the vocabulary words
        and signatures were computed with)."""
        import hashlib
        h = hashlib.sha256(np.ascontiguousarray(self.centroids, np.float32).tobytes())
        if self.embedding is not None:
            for a in self.embedding.state().values():
                h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()

    def state(self) -> dict:
        """Arrays that fully describe the vocabulary (for saving)."""
        arrays = {"centroids": self.centroids}
        if self.tree is not None:
            arrays.update({f"tree_{k}": v for k, v in self.tree.items()})
        if self.embedding is not None:
            arrays.update({f"he_{k}": v for k, v in self.embedding.state().items()})
        return arrays

    @classmethod
    def from_state(cls, arrays: dict) -> "Vocabulary":
        tree = None
        if "tree_cells" in arrays:
            tree = {k: arrays[f"tree_{k}"] for k in ("cells", "indptr", "members")}
        embedding = HammingEmbedding.from_state({k[3:]: v for k, v in arrays.items()
                                                 if k.startswith("he_")})
        return cls(arrays["centroids"], tree, embedding)

    def save(self, path: PathLike) -> None:
        """Write the vocabulary (centroids + search tree) to a checksummed ``.npz``."""
        save_arrays(path, VOCAB_KIND, VOCAB_VERSION, self.state(), meta={"size": self.size})

    @classmethod
    def load(cls, path: PathLike) -> "Vocabulary":
        """Read a vocabulary written by :meth:`save` (refuses corrupt or foreign files)."""
        arrays, _ = load_arrays(path, VOCAB_KIND, VOCAB_VERSION)
        return cls.from_state(arrays)


def _flat_search(base: np.ndarray, queries: np.ndarray, k: int):
    """Exact k nearest rows of ``base`` (L2) for every query row: (distances, ids)."""
    index = faiss.IndexFlatL2(base.shape[1])
    index.add(np.ascontiguousarray(base, np.float32))
    return index.search(np.ascontiguousarray(queries, np.float32), k)
