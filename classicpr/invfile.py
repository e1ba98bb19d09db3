"""Inverted file (tf-idf bag of visual words) and direct index, as flat arrays.

* Inverted file: the postings of every word (image id, term count, where the posting's
  features start in the image, and the image's ASMK* vector in that word), word-major (CSC
  layout: ``inv_indptr``, ``inv_images``, ``inv_counts``, ``inv_starts``), so a query
  touches only the postings of its own words. The vector of a posting with one feature is
  that feature's signature in the direct index; only postings of several features store
  their vector (``inv_multi_vectors``, word-major, ``inv_multi_indptr``).
  tf-idf weights use ``idf = log(N / df)`` and L2-normalised image vectors; ``idf`` and
  the image ``norms`` are stored.
* Direct index: for every image, the word id, quantised geometry and Hamming signature of
  each of its features (concatenated arrays + ``offsets``, DBoW2-style). Spatial
  verification uses it to form correspondences between features that share a word,
  without raw descriptors.

Building is out of core. Images are turned into *chunks* (:func:`chunk_arrays`: the same
arrays for a few hundred images, written to disk as they are made), and
:func:`merge_chunks` streams any number of chunks into one index, word block by word
block, holding one block of postings at a time: peak memory does not grow with the
database, and the result can be memory-mapped. An index is itself a chunk, so adding images
merges the old index with the new chunks and the idf and norms stay exact.

Geometry is quantised to keep the index small: x, y as uint16 fractions of the image
width/height (resolution < 0.1 px for images up to 6,500 px), scale as float16 and
orientation as uint8 (1.4 degree steps).
"""
from __future__ import annotations

from typing import Callable, Dict, Iterable, Mapping, Optional, Sequence, Tuple

import numpy as np
from tqdm.auto import tqdm

from .embedding import hamming, majority_signatures, selective_similarity

XY_LEVELS = 65535


def features_in_box(keypoints: np.ndarray, box: Optional[np.ndarray]) -> np.ndarray:
    """Boolean mask of the keypoints whose (x, y) lies inside ``box`` = (x1, y1, x2, y2)."""
    if box is None:
        return np.ones(len(keypoints), bool)
    x1, y1, x2, y2 = box
    x, y = keypoints[:, 0], keypoints[:, 1]
    return (x >= x1) & (x <= x2) & (y >= y1) & (y <= y2)


def quantise_geometry(keypoints: np.ndarray, size: Tuple[int, int]) -> Dict[str, np.ndarray]:
    """Compact geometry of ``(N, 4)`` keypoints (x, y, scale, orientation) for the direct index."""
    w, h = max(size[0], 1), max(size[1], 1)
    xy = np.empty((len(keypoints), 2), np.uint16)
    xy[:, 0] = np.clip(np.rint(keypoints[:, 0] / w * XY_LEVELS), 0, XY_LEVELS)
    xy[:, 1] = np.clip(np.rint(keypoints[:, 1] / h * XY_LEVELS), 0, XY_LEVELS)
    scale = keypoints[:, 2].astype(np.float16)
    angle = np.rint(np.mod(keypoints[:, 3], 360.0) / 360.0 * 256).astype(np.int64) % 256
    return {"xy": xy, "scale": scale, "angle": angle.astype(np.uint8)}


def dequantise_geometry(xy: np.ndarray, scale: np.ndarray, angle: np.ndarray,
                        size: Tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`quantise_geometry`: ``(N, 4)`` float32 x, y, scale, orientation."""
    out = np.empty((len(xy), 4), np.float32)
    out[:, 0] = xy[:, 0].astype(np.float32) / XY_LEVELS * max(size[0], 1)
    out[:, 1] = xy[:, 1].astype(np.float32) / XY_LEVELS * max(size[1], 1)
    out[:, 2] = scale.astype(np.float32)
    out[:, 3] = angle.astype(np.float32) * (360.0 / 256)
    return out


#: Arrays of a chunk (and of a whole index); see :func:`chunk_arrays` for shapes and dtypes.
CHUNK_KEYS = ("inv_indptr", "inv_images", "inv_counts", "inv_starts", "inv_multi_indptr",
              "inv_multi_vectors", "offsets", "words", "xy", "scale", "angle", "signatures",
              "sizes")
#: dtype of each posting array in a merge, and the word pointer it is laid out by.
POSTING_DTYPES = {"inv_images": np.int32, "inv_counts": np.uint8, "inv_starts": np.uint16,
                  "inv_multi_vectors": np.uint64}
POSTING_INDPTR = {"inv_images": "inv_indptr", "inv_counts": "inv_indptr",
                  "inv_starts": "inv_indptr", "inv_multi_vectors": "inv_multi_indptr"}
#: Most features of one image (a posting's first feature is a uint16 offset in its image).
MAX_FEATURES_PER_IMAGE = 65535
#: Term counts are stored as uint8 and saturate here (the most features of one word in one
#: image is 83 on prmini-dev and 126 in 10,000 bench images); the ASMK* vector of a
#: posting is the majority of all its features whatever its count.
MAX_TERM_COUNT = 255
#: Postings merged at once (about 30 bytes each in flight: ~30 MB per block).
POSTINGS_PER_BLOCK = 1_000_000


def word_dtype(n_words: int) -> np.dtype:
    """Word-id dtype of the direct index: uint16 up to 65,536 words, uint32 beyond."""
    return np.dtype(np.uint16 if n_words <= 65536 else np.uint32)


def chunk_arrays(words_per_image: Sequence[np.ndarray], keypoints_per_image: Sequence[np.ndarray],
                 sizes: Sequence[Tuple[int, int]], n_words: int,
                 signatures_per_image: Optional[Sequence[np.ndarray]] = None
                 ) -> Dict[str, np.ndarray]:
    """Inverted file and direct index arrays of a few images.

    Each image's features are stored sorted by word, so the features of one posting (one
    word in one image) are consecutive, and the posting's ASMK* vector is their majority:
    the feature's own signature for a posting of one feature, stored apart for the others.

    Parameters
    ----------
    words_per_image : list of (N_i,) int arrays
        Visual word of each feature of each image.
    keypoints_per_image : list of (N_i, 4) float arrays
        x, y, scale, orientation of the same features (original pixels).
    sizes : list of (width, height)
    n_words : int
        Vocabulary size.
    signatures_per_image : list of (N_i, W) uint64 arrays, optional
        Hamming-embedding signatures of the same features (W = bits / 64; 128-bit zeros
        if None).

    Returns
    -------
    dict with ``inv_indptr`` (n_words + 1,) int64, ``inv_images`` (P,) int32 (image ids
    within the chunk), ``inv_counts`` (P,) uint8 (saturating at :data:`MAX_TERM_COUNT`),
    ``inv_starts`` (P,) uint16 (the
    posting's first feature, counted from its image's first), ``inv_multi_indptr``
    (n_words + 1,) int64 and ``inv_multi_vectors`` (M, W) uint64 (the ASMK* vectors of the
    M postings of more than one feature, word-major: bitwise majority of their features'
    signatures, computed once here so that a query only reads them), ``offsets`` (n + 1,)
    int64, ``words`` (F,),
    ``xy`` (F, 2) uint16, ``scale`` (F,) float16, ``angle`` (F,) uint8, ``signatures``
    (F, W) uint64, ``sizes`` (n, 2) int32.
    """
    if not (len(words_per_image) == len(keypoints_per_image) == len(sizes)):
        raise ValueError("words_per_image, keypoints_per_image and sizes differ in length")
    if signatures_per_image is None:
        signatures_per_image = [np.zeros((len(w), 2), np.uint64) for w in words_per_image]
    example = np.asarray(signatures_per_image[0]) if len(signatures_per_image) else np.zeros((0, 2))
    width = example.shape[1] if example.ndim == 2 else 1
    geo = {"xy": [np.zeros((0, 2), np.uint16)], "scale": [np.zeros(0, np.float16)],
           "angle": [np.zeros(0, np.uint8)]}
    lengths, sorted_words, sorted_sigs = [], [np.zeros(0, np.int64)], [np.zeros((0, width), np.uint64)]
    for i, (w, kp, sig, size) in enumerate(zip(words_per_image, keypoints_per_image,
                                                signatures_per_image, sizes)):
        w = np.asarray(w, np.int64)
        if not len(w) == len(kp) == len(sig):
            raise ValueError(f"image {i}: {len(w)} words, {len(kp)} keypoints and "
                             f"{len(sig)} signatures")
        if len(w) > MAX_FEATURES_PER_IMAGE:
            raise ValueError(f"image {i}: {len(w)} features; at most {MAX_FEATURES_PER_IMAGE} "
                             "can be indexed (lower features.max_features)")
        if len(w) and (w.min() < 0 or w.max() >= n_words):
            raise ValueError(f"image {i}: word ids outside [0, {n_words})")
        order = np.argsort(w, kind="stable")
        g = quantise_geometry(np.asarray(kp, np.float32).reshape(-1, 4)[order], size)
        for k in geo:
            geo[k].append(g[k])
        sorted_words.append(w[order])
        sorted_sigs.append(np.asarray(sig, np.uint64).reshape(len(w), width)[order])
        lengths.append(len(w))
    words = np.concatenate(sorted_words)
    offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    image_of = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    # postings: unique (word, image) pairs with their term counts, word-major
    n = max(len(lengths), 1)
    pair, first, counts = np.unique(words * n + image_of, return_index=True, return_counts=True)
    post_word, post_image = np.divmod(pair, n)
    # each image's features are sorted by word, so a posting's features are the run of
    # ``counts`` features from ``first`` in the chunk
    signatures = np.concatenate(sorted_sigs)
    multi = counts > 1
    return {"inv_indptr": _word_pointer(post_word, n_words),
            "inv_images": post_image.astype(np.int32),
            "inv_counts": np.minimum(counts, MAX_TERM_COUNT).astype(np.uint8),
            "inv_starts": (first - offsets[post_image]).astype(np.uint16),
            "inv_multi_indptr": _word_pointer(post_word[multi], n_words),
            "inv_multi_vectors": majority_signatures(signatures, first[multi], counts[multi]),
            "offsets": offsets,
            "words": words.astype(word_dtype(n_words)),
            "xy": np.concatenate(geo["xy"]), "scale": np.concatenate(geo["scale"]),
            "angle": np.concatenate(geo["angle"]), "signatures": signatures,
            "sizes": np.asarray(sizes, np.int32).reshape(-1, 2)}


def gather_rows(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``array[rows]`` for an (N, W) array, in memory or memory-mapped: each row is copied
    as one block of W items, about twice as fast as numpy's 2-D fancy indexing on scattered
    rows."""
    array = np.asarray(array)
    if array.ndim != 2 or not array.flags.c_contiguous or array.shape[1] == 0:
        return array[rows]
    block = np.dtype((np.void, array.shape[1] * array.itemsize))
    return array.view(block).reshape(-1)[rows].view(array.dtype).reshape(-1, array.shape[1])


def _word_pointer(words: np.ndarray, n_words: int) -> np.ndarray:
    """CSC pointer (n_words + 1,) int64 of word-major entries with these (sorted) words."""
    return np.r_[0, np.cumsum(np.bincount(words, minlength=n_words))].astype(np.int64)


class MemorySink:
    """Collects what :func:`merge_chunks` writes into a dict of in-memory arrays (same
    interface as :class:`classicpr.io.ArrayWriter`)."""

    def __init__(self):
        self.arrays: Dict[str, np.ndarray] = {}

    def add(self, name: str, array: np.ndarray) -> None:
        self.arrays[name] = np.asarray(array)

    def add_chunks(self, name: str, dtype, shape, chunks: Iterable[np.ndarray]) -> None:
        parts = [np.asarray(c, dtype) for c in chunks]
        self.arrays[name] = (np.concatenate(parts) if parts else np.zeros(shape, dtype)).reshape(shape)


def merge_chunks(n_words: int, load_chunk: Callable[[int], Mapping[str, np.ndarray]],
                 n_chunks: int, sink, progress: bool = False) -> int:
    """Stream chunks into one index: postings word block by word block, direct index chunk
    by chunk, then tf-idf weights recomputed over all images.

    Parameters
    ----------
    n_words : int
    load_chunk : callable
        ``load_chunk(k)`` returns the arrays of chunk ``k`` (:func:`chunk_arrays` keys;
        memory-mapped arrays are fine: only slices are read). Called several times per chunk.
    n_chunks : int
    sink : ArrayWriter or MemorySink
        Receives the arrays of the merged index (:data:`CHUNK_KEYS` + ``idf``, ``norms``,
        ``image_words``).
    progress : bool
        Show a progress bar over the word blocks (long for million-image databases).

    Returns
    -------
    int : number of images.
    """
    # pass 1: sizes, feature counts, document frequencies and postings of several features
    df, multi_df = np.zeros(n_words, np.int64), np.zeros(n_words, np.int64)
    image_base, feature_base, sizes = [0], [0], []
    for k in range(n_chunks):
        c = load_chunk(k)
        chunk_indptr = np.asarray(c["inv_indptr"])
        if len(chunk_indptr) != n_words + 1:
            raise ValueError(f"chunk {k} was made with another vocabulary size")
        df += np.diff(chunk_indptr)
        multi_df += np.diff(np.asarray(c["inv_multi_indptr"]))
        sizes.append(np.asarray(c["sizes"]))
        image_base.append(image_base[-1] + len(sizes[-1]))
        feature_base.append(feature_base[-1] + int(c["offsets"][-1]))
    n_images, n_features = image_base[-1], feature_base[-1]
    idf = np.where(df > 0, np.log(max(n_images, 1) / np.maximum(df, 1)), 0.0).astype(np.float32)
    # pass 2: image norms of the tf-idf vectors, and each image's number of distinct words
    norms, image_words = [], []
    for k in range(n_chunks):
        c = load_chunk(k)
        word_of = np.repeat(np.arange(n_words), np.diff(c["inv_indptr"]))
        w = np.asarray(c["inv_counts"], np.float64) * idf[word_of]
        images = np.asarray(c["inv_images"])
        norms.append(np.sqrt(np.bincount(images, w ** 2, minlength=len(c["sizes"]))))
        image_words.append(np.bincount(images, minlength=len(c["sizes"])))
    sink.add("idf", idf)
    sink.add("norms", (np.concatenate(norms) if norms else np.zeros(0)).astype(np.float32))
    sink.add("image_words", (np.concatenate(image_words) if image_words else np.zeros(0)
                             ).astype(np.int32))
    sink.add("sizes", np.concatenate(sizes) if sizes else np.zeros((0, 2), np.int32))
    # direct index: chunk after chunk
    sink.add("offsets", np.concatenate(
        [[0]] + [np.asarray(load_chunk(k)["offsets"][1:]) + feature_base[k] for k in range(n_chunks)]
    ).astype(np.int64))
    width = np.asarray(load_chunk(0)["signatures"][:0]).shape[1] if n_chunks else 2
    for key, dtype, tail in (("words", word_dtype(n_words), ()), ("xy", np.uint16, (2,)),
                             ("scale", np.float16, ()), ("angle", np.uint8, ()),
                             ("signatures", np.uint64, (width,))):
        sink.add_chunks(key, dtype, (n_features,) + tail,
                        (np.asarray(load_chunk(k)[key], dtype) for k in range(n_chunks)))
    # postings: word blocks of bounded size; chunks are in image order, so a stable sort by
    # word keeps each word's postings sorted by image
    indptr = np.r_[0, np.cumsum(df)].astype(np.int64)
    multi_indptr = np.r_[0, np.cumsum(multi_df)].astype(np.int64)
    sink.add("inv_indptr", indptr)
    sink.add("inv_multi_indptr", multi_indptr)
    n_postings, n_multi = int(indptr[-1]), int(multi_indptr[-1])
    cuts = np.unique(np.r_[0, np.searchsorted(indptr[:-1], np.arange(POSTINGS_PER_BLOCK, n_postings,
                                                                     POSTINGS_PER_BLOCK)), n_words])
    blocks = [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:])]

    bar = tqdm(total=len(POSTING_DTYPES) * len(blocks), desc="merging postings", leave=False,
               dynamic_ncols=True, disable=not progress)

    def postings(key: str):
        dtype = POSTING_DTYPES[key]
        for w0, w1 in blocks:
            bar.update(1)
            words, values = [], []
            for k in range(n_chunks):
                c = load_chunk(k)
                block_indptr = np.asarray(c[POSTING_INDPTR[key]][w0:w1 + 1])  # read once per chunk
                a, b = int(block_indptr[0]), int(block_indptr[-1])
                if b == a:
                    continue
                words.append(np.repeat(np.arange(w0, w1), np.diff(block_indptr)))
                v = np.asarray(c[key][a:b])
                values.append(v + image_base[k] if key == "inv_images" else v)
            if words:
                order = np.argsort(np.concatenate(words), kind="stable")
                yield np.concatenate(values)[order].astype(dtype)

    for key, shape in (("inv_images", (n_postings,)), ("inv_counts", (n_postings,)),
                       ("inv_starts", (n_postings,)), ("inv_multi_vectors", (n_multi, width))):
        sink.add_chunks(key, POSTING_DTYPES[key], shape, postings(key))
    bar.close()
    return n_images


class InvertedFile:
    """Read-only tf-idf inverted file plus direct index (arrays in memory or memory-mapped).

    Parameters
    ----------
    n_words : int
        Vocabulary size.
    arrays : mapping
        :data:`CHUNK_KEYS` plus ``idf``, ``norms`` and ``image_words``, as written by
        :func:`merge_chunks`.
    """

    def __init__(self, n_words: int, arrays: Mapping[str, np.ndarray]):
        self.n_words = int(n_words)
        missing = [k for k in CHUNK_KEYS + ("idf", "norms", "image_words") if k not in arrays]
        if missing:
            raise ValueError(f"inverted file arrays missing: {missing}")
        self.inv_indptr = np.asarray(arrays["inv_indptr"])
        self.inv_images, self.inv_counts = arrays["inv_images"], arrays["inv_counts"]
        self.inv_starts = arrays["inv_starts"]
        self.inv_multi_indptr = np.asarray(arrays["inv_multi_indptr"])
        self.inv_multi_vectors = arrays["inv_multi_vectors"]
        self.idf, self.norms = np.asarray(arrays["idf"]), np.asarray(arrays["norms"])
        self.image_words = np.asarray(arrays["image_words"])
        self.offsets, self.sizes = np.asarray(arrays["offsets"]), np.asarray(arrays["sizes"])
        self.words, self.xy = arrays["words"], arrays["xy"]
        self.scale, self.angle = arrays["scale"], arrays["angle"]
        self.signatures = arrays["signatures"]

    @classmethod
    def from_images(cls, n_words: int, words_per_image, keypoints_per_image, sizes,
                    signatures_per_image=None, chunk: int = 500) -> "InvertedFile":
        """Build in memory from per-image words, keypoints and signatures (see
        :func:`chunk_arrays`), through the same chunked merge as an on-disk build."""
        sigs = signatures_per_image
        chunks = [chunk_arrays(words_per_image[a:a + chunk], keypoints_per_image[a:a + chunk],
                               sizes[a:a + chunk], n_words,
                               None if sigs is None else sigs[a:a + chunk])
                  for a in range(0, len(sizes), chunk)]
        sink = MemorySink()
        merge_chunks(n_words, chunks.__getitem__, len(chunks), sink)
        return cls(n_words, sink.arrays)

    @property
    def n_images(self) -> int:
        return len(self.sizes)

    def _postings(self, unique_words: np.ndarray, indptr: Optional[np.ndarray] = None
                  ) -> Tuple[np.ndarray, np.ndarray]:
        """Positions of the postings of ``unique_words`` (U,) and their lengths (U,), word by
        word in that order (``indptr``: another word-major pointer, e.g. the several-feature
        postings' ``inv_multi_indptr``)."""
        indptr = self.inv_indptr if indptr is None else indptr
        starts, ends = indptr[unique_words], indptr[unique_words + 1]
        lens = ends - starts
        total = int(lens.sum())
        pos = np.repeat(starts - np.cumsum(np.r_[0, lens[:-1]]), lens) + np.arange(total)
        return pos, lens

    def posting_vectors(self, words: np.ndarray, pos: np.ndarray,
                        images: Optional[np.ndarray] = None) -> np.ndarray:
        """ASMK* vectors of the postings of ``words``.

        Parameters
        ----------
        words : (U,) int array
            Distinct words.
        pos : (P,) int array
            Their postings' positions (:meth:`_postings`).
        images : (P,) int array, optional
            The postings' images (``inv_images[pos]``), if already read.

        Returns
        -------
        (P, W) uint64 array: per posting, its image's majority vector in the word.
        """
        if images is None:
            images = np.asarray(self.inv_images[pos], np.int64)
        # every posting's first feature's signature: the vector of a single-feature posting
        first = self.offsets[images] + np.asarray(self.inv_starts[pos], np.int64)
        out = gather_rows(self.signatures, first)
        # the several-feature postings among them are, in the same word order, those of
        # inv_multi_vectors for these words
        multi = np.flatnonzero(np.asarray(self.inv_counts[pos]) > 1)
        if len(multi):
            at, _ = self._postings(words, self.inv_multi_indptr)
            out[multi] = gather_rows(self.inv_multi_vectors, at)
        return out

    def query_asmk(self, words: np.ndarray, vectors: np.ndarray, alpha: float = 3.0,
                   tau: float = 0.0) -> np.ndarray:
        """ASMK* similarity of a query with every database image
        (:mod:`classicpr.embedding`).

        Parameters
        ----------
        words : (U,) int array
            The query's distinct visual words.
        vectors : (U, W) uint64 array
            Its aggregated binary vector in each of them.
        alpha, tau : float
            Selectivity exponent and threshold.

        Returns
        -------
        (n_images,) float32 array in [0, 1]; 0 for an empty query.
        """
        scores = np.zeros(self.n_images, np.float64)
        words = np.asarray(words, np.int64)
        if len(words) == 0 or self.n_images == 0:
            return scores.astype(np.float32)
        vectors = np.asarray(vectors, np.uint64)
        bits = 64 * vectors.shape[1]
        # words in groups of about POSTINGS_PER_BLOCK postings: memory stays bounded
        per_word = self.inv_indptr[words + 1] - self.inv_indptr[words]
        group = np.cumsum(per_word) // POSTINGS_PER_BLOCK
        for g in np.unique(group):
            sel = np.flatnonzero(group == g)
            pos, lens = self._postings(words[sel])
            if len(pos) == 0:
                continue
            images = np.asarray(self.inv_images[pos], np.int64)
            db_vectors = self.posting_vectors(words[sel], pos, images)
            sim = selective_similarity(hamming(np.repeat(vectors[sel], lens, axis=0), db_vectors),
                                       bits, alpha, tau)
            scores += np.bincount(images, sim, minlength=self.n_images)
        norm = np.sqrt(self.image_words.astype(np.float64) * len(words))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(norm > 0, scores / norm, 0.0).astype(np.float32)

    def query(self, words: np.ndarray) -> np.ndarray:
        """Cosine similarity of a query bag of words with every database image.

        Parameters
        ----------
        words : (M,) int array
            Visual words of the query's features (those inside its box).

        Returns
        -------
        (n_images,) float32 array of scores in [0, 1]; 0 for an empty query.
        """
        scores = np.zeros(self.n_images, np.float32)
        words = np.asarray(words, np.int64)
        if len(words) == 0 or self.n_images == 0:
            return scores
        uw, tf = np.unique(words, return_counts=True)
        q = tf.astype(np.float32) * self.idf[uw]
        qn = float(np.linalg.norm(q))
        if qn == 0:
            return scores
        # only the postings of the query's own words are touched (and, when the index is
        # memory-mapped, read from disk)
        pos, lens = self._postings(uw)
        if len(pos) == 0:
            return scores
        contrib = np.asarray(self.inv_counts[pos], np.float32) * np.repeat(q * self.idf[uw], lens)
        scores = np.bincount(self.inv_images[pos], contrib, minlength=self.n_images).astype(np.float32)
        with np.errstate(invalid="ignore", divide="ignore"):
            scores = np.where(self.norms > 0, scores / (self.norms * qn), 0.0)
        return scores.astype(np.float32)

    def image_features(self, i: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Direct index of image ``i`` (features sorted by word): word ids ``(N,)``,
        keypoints ``(N, 4)`` float32 and signatures ``(N, W)`` uint64."""
        a, b = self.offsets[i], self.offsets[i + 1]
        kp = dequantise_geometry(np.asarray(self.xy[a:b]), np.asarray(self.scale[a:b]),
                                 np.asarray(self.angle[a:b]), tuple(self.sizes[i]))
        return np.asarray(self.words[a:b]), kp, np.asarray(self.signatures[a:b])

    def nbytes(self) -> Dict[str, int]:
        """Bytes of each part of the index (in memory, or on disk when memory-mapped)."""
        inv = sum(a.nbytes for a in (self.inv_indptr, self.inv_images, self.inv_counts,
                                     self.inv_starts, self.inv_multi_indptr, self.idf,
                                     self.norms, self.image_words))
        direct = sum(a.nbytes for a in (self.words, self.xy, self.scale, self.angle,
                                        self.offsets, self.sizes))
        return {"inverted_file": int(inv), "direct_index": int(direct),
                "signatures": int(self.signatures.nbytes),
                "posting_vectors": int(self.inv_multi_vectors.nbytes)}

    def state(self) -> Dict[str, np.ndarray]:
        """The arrays that fully describe the inverted file (a chunk of a later merge)."""
        return {"inv_indptr": self.inv_indptr, "inv_images": self.inv_images,
                "inv_counts": self.inv_counts, "inv_starts": self.inv_starts,
                "inv_multi_indptr": self.inv_multi_indptr,
                "inv_multi_vectors": self.inv_multi_vectors,
                "offsets": self.offsets, "words": self.words, "xy": self.xy, "scale": self.scale,
                "angle": self.angle, "signatures": self.signatures, "sizes": self.sizes, "idf": self.idf, "norms": self.norms,
                "image_words": self.image_words}
